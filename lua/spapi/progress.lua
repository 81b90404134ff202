-- spapi.progress — progress of a long wait (transactions settling, pages of orders),
-- told to a callback and, on a terminal, shown as one line on stderr.
--
--   local progress = require "spapi.progress"
--   local p = progress.new{ label = "invoices", total = #orders, callback = fn }
--   p:update(3, "2 Processing")          -- 3 of total done
--   p:finish("12 Success, 1 Failure")
--
-- new{} options:
--   label     what is being waited for (shown first on the line)
--   total     how many things (nil: unknown, e.g. pages still coming)
--   callback  function(ev) called on every update and on finish, with
--             ev = { label, done, total, elapsed (seconds), note, finished (bool) };
--             an error in it propagates (it is the caller's code)
--   stream    where the line goes (default io.stderr)
--   tty       true / false: print the line or not (default: whether stderr is a
--             terminal — spapi.fs.isatty(2), the real isatty(); quiet when output is
--             redirected, in cron, in CI or inside nginx)
--   clock     function → seconds (default spapi.clock.monotonic)
--   interval  redraw the line at most every `interval` seconds (default 0.1); the
--             callback hears every update
-- progress.quiet: a progress object that tells nobody (what workflows use when the
-- caller passes progress = false).
local _M = {}

local clock = require "spapi.clock"
local fs = require "spapi.fs"

local type, tostring, error, setmetatable = type, tostring, error, setmetatable
local fmt = string.format

local Progress = {}
Progress.__index = Progress
Progress.__name = "spapi.Progress"

function _M.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("spapi.progress.new: options must be a table", 2) end
  if opts.callback ~= nil and type(opts.callback) ~= "function" then
    error("spapi.progress.new: 'callback' must be a function (got " .. type(opts.callback) .. ")", 2)
  end
  if opts.total ~= nil and type(opts.total) ~= "number" then
    error("spapi.progress.new: 'total' must be a number (got " .. type(opts.total) .. ")", 2)
  end
  local now = opts.clock or clock.monotonic
  local tty = opts.tty
  if tty == nil then tty = opts.stream == nil and fs.isatty(2) end
  local p = setmetatable({
    label = tostring(opts.label or "waiting"), total = opts.total, done = 0, note = nil,
    callback = opts.callback, stream = opts.stream or io.stderr, tty = tty and true or false,
    now = now, t0 = now(), interval = opts.interval or 0.1, drawn = nil, width = 0,
  }, Progress)
  return p
end

function Progress:_line(elapsed)
  local count = self.total and fmt("%d/%d", self.done, self.total) or tostring(self.done)
  local s = fmt("%s %s %.1fs", self.label, count, elapsed)
  if self.note and self.note ~= "" then s = s .. " " .. self.note end
  return s
end

function Progress:_draw(elapsed, final)
  if not self.tty then return end
  local t = self.now()
  if not final and self.drawn and t - self.drawn < self.interval then return end
  self.drawn = t
  local s = self:_line(elapsed)
  local pad = self.width > #s and (" "):rep(self.width - #s) or ""
  self.width = #s
  self.stream:write("\r", s, pad, final and "\n" or "")
  self.stream:flush()
end

function Progress:_tell(finished)
  local elapsed = self.now() - self.t0
  if self.callback then
    self.callback{ label = self.label, done = self.done, total = self.total, elapsed = elapsed,
                   note = self.note, finished = finished }
  end
  self:_draw(elapsed, finished)
end

--- p:update(done[, note]) — done: how many are finished so far
function Progress:update(done, note)
  if type(done) ~= "number" then error("spapi.progress: update: 'done' must be a number", 2) end
  self.done, self.note = done, note
  self:_tell(false)
end

--- p:finish([note]) — the wait is over (a final line ends with a newline)
function Progress:finish(note)
  if self.finished then return end
  self.finished = true
  if note ~= nil then self.note = note end
  self:_tell(true)
end

_M.quiet = function(opts)
  opts = opts or {}
  return _M.new{ label = opts.label, total = opts.total, tty = false }
end

_M.Progress = Progress
return _M
