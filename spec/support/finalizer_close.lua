-- Run by spec/core/http_spec.lua in a fresh process (a small heap: GC cycles are
-- short, so a finalizer runs in the middle of a C call often).
--   finalizer_close.lua request  a finalizer closes the session while
--                                session:request reads its request table
--   finalizer_close.lua wait     a finalizer closes the multi (after trying a
--                                nested wait) while multi:wait makes its results
-- Prints "fired=N refused=N bad=<the first wrong outcome, or none>" (refused: nested
-- waits refused); a crash is the failure.
local core = require "spapi.core"
local mode = arg[1]
local url = "http://127.0.0.1:" .. core.free_port() .. "/" -- nothing listens: each request fails at once
if _VERSION == "Lua 5.4" then collectgarbage("incremental", 1, 100) else collectgarbage("setpause", 1) end

local target, skip, fired, nested_err
local fin
local function arm()
  if newproxy then
    getmetatable(newproxy(true)).__gc = fin
  else
    setmetatable({}, { __gc = fin })
  end
end
function fin() -- one finalizer is always pending: one runs in every GC cycle
  arm()
  if not target then return end
  skip = skip - 1
  if skip >= 0 then return end
  local obj = target
  target, fired = nil, true
  if mode == "wait" then
    local _, e = pcall(obj.wait, obj, 0)
    nested_err = e
  end
  obj:close()
end
arm()

local n, refused, bad = 0, 0, nil
if mode == "request" then
  local headers = {}
  for i = 1, 300 do headers["X-N" .. i] = i + 0.5 end -- each becomes a string: an allocation
  for _ = 1, 300 do
    local s = core.session{ timeout = 2 }
    local req = { url = url, headers = headers }
    skip, fired = 0, false
    target = s
    local ok, err = pcall(s.request, s, req)
    target = nil
    if fired then
      n = n + 1
      if ok or not tostring(err):find("request: the session is closed", 1, true) then bad = bad or tostring(err) end
    end
    s:close()
  end
elseif mode == "wait" then
  local s = core.session{ timeout = 2 }
  for round = 1, 100 do
    local m = s:multi()
    for _ = 1, 30 do m:add{ url = url } end
    while m:count() > 0 do m:wait(0.05) end
    for _ = 1, 30 do m:add{ url = url } end
    core.sleep(0.02)
    skip, fired, nested_err = round % 8, false, nil
    target = m
    local ok, res = pcall(m.wait, m, 1)
    target = nil
    if fired then
      n = n + 1
      if type(nested_err) ~= "table" then refused = refused + 1 end
      if not ok then
        bad = bad or tostring(res)
      elseif type(nested_err) ~= "table" -- (a finalizer run before the results began may wait)
        and not tostring(nested_err):find("multi:wait: already waiting", 1, true) then
        bad = bad or ("nested wait: " .. tostring(nested_err))
      elseif pcall(m.wait, m, 0) then
        bad = bad or "the closed multi still waits"
      else
        for _, r in ipairs(res) do
          if r.kind ~= "connect" then bad = bad or ("result kind " .. tostring(r.kind)) end
        end
      end
    end
    m:close()
  end
  s:close()
else
  error("usage: finalizer_close.lua request|wait")
end
io.write("fired=", n, " refused=", refused, " bad=", bad or "none")
