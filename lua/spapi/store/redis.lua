-- Redis store: one rate budget and one set of access tokens for a fleet of
-- processes and machines, behind the store contract of docs/extending.md.
--
--   local store = assert(require("spapi.store.redis").new{
--     url = "redis://[:password@]host:port[/db]", prefix = "spapi:",
--     connect_timeout = 1, command_timeout = 1, on_error = "local" | "fail" })
--
-- What it holds (under the prefix): short-lived access tokens and restricted data
-- tokens with their lifetime as the key's expiry, the rates learned from
-- x-amzn-RateLimit-Limit, the rate buckets (hashes) and the refresh locks. Client
-- secrets and refresh tokens never reach it.
--
-- take is one server-side script (EVALSHA) on Redis's clock (TIME): machines whose
-- clocks disagree still share one budget. lock is SET NX PX with a random owner:
-- a holder that dies releases nothing, the expiry does; unlock deletes the lock
-- only while it is still this store's (stricter than the contract's "whoever
-- holds it": a holder whose lock expired and went to another leaves it be).
--
-- When Redis does not answer (refused, timed out, closed) or answers with an
-- error: with on_error = "local" (the default) the store says so once and serves
-- from this process's memory store, trying Redis again at most once a second;
-- with "fail" every method returns nil, message (the contract's failure), which
-- the client returns as the call's error before anything is sent.
local _M = {}
local mt = { __index = _M }

local conn = require "spapi.redis.conn"
local scripts = require "spapi.redis.scripts"
local memory = require "spapi.store.memory"
local clock = require "spapi.clock"
local core = require "spapi.core"

local type, tonumber, tostring, setmetatable, rawget, ipairs = type, tonumber, tostring, setmetatable, rawget, ipairs
local fmt, floor, huge = string.format, math.floor, math.huge

local RETRY_AFTER = 1 -- seconds between attempts to reach a Redis that failed

-- the connection settings (with the password) live outside the store table, so
-- that dumping a store or a client shows none
local server_of = setmetatable({}, { __mode = "k" })

--- Parse "redis://[:password@]host[:port][/db]" → { host, port, password, db } | nil, message
function _M.parse_url(url)
  if type(url) ~= "string" then return nil, "redis must be a URL string (redis://[:password@]host:port[/db])" end
  local rest = url:match("^[Rr][Ee][Dd][Ii][Ss]://(.*)$")
  if not rest then return nil, "redis must be a redis:// URL (redis://[:password@]host:port[/db])" end
  local password
  local auth, hostpart = rest:match("^(.*)@([^@]*)$")
  if auth then
    local user, pw = auth:match("^([^:]*):(.*)$")
    if not user or user ~= "" then
      return nil, "redis URL: give the password as redis://:password@host (no user name)"
    end
    password = core.urldecode(pw)
    rest = hostpart
  end
  local host, port, db = rest:match("^([^:/]+):?(%d*)/?(%d*)$")
  if not host then return nil, "redis URL: expected host:port[/db] after redis://" end
  port = tonumber(port) or 6379
  if port < 1 or port > 65535 then return nil, "redis URL: the port must be 1..65535" end
  return { host = host, port = port, password = password ~= "" and password or nil, db = tonumber(db) or 0 }
end

local function warn(msg)
  local ngx = rawget(_G, "ngx")
  if ngx and ngx.log and ngx.WARN then ngx.log(ngx.WARN, msg) else io.stderr:write(msg, "\n") end
end

--- new{ url=, prefix=, connect_timeout=, command_timeout=, on_error=, fallback=, warn=,
---   retry_after= (seconds before trying a Redis that failed again, 1) }
--- → store | nil, message (a bad setting names it)
function _M.new(o)
  if type(o) == "string" then o = { url = o } end
  local s, err = _M.parse_url(o.url)
  if not s then return nil, "spapi: " .. err end
  for _, k in ipairs({ "connect_timeout", "command_timeout" }) do
    local v = o[k]
    if v ~= nil and (type(v) ~= "number" or not (v > 0)) then
      return nil, fmt("spapi: redis_%s must be a positive number of seconds (got %s)", k, tostring(v))
    end
  end
  local on_error = o.on_error or "local"
  if on_error ~= "local" and on_error ~= "fail" then
    return nil, fmt("spapi: on_store_error must be \"local\" or \"fail\" (got %s)", tostring(on_error))
  end
  local prefix = o.prefix or "spapi:"
  if type(prefix) ~= "string" then return nil, "spapi: redis_prefix must be a string" end
  s.connect_timeout, s.command_timeout = o.connect_timeout or 1, o.command_timeout or 1
  local self = setmetatable({
    prefix = prefix, on_error = on_error, where = fmt("%s:%d", s.host, s.port),
    fallback = o.fallback or memory.new(), warn = o.warn or warn,
    owner = core.hex(core.random_bytes(12)), -- this store's name on the locks it holds
    down_until = false, warned = false, retry_after = o.retry_after or RETRY_AFTER,
    stats = { commands = 0, connects = 0, fallbacks = 0 },
  }, mt)
  server_of[self] = conn.server(s)
  return self
end

function mt.__tostring(self)
  return fmt("spapi.store.redis(%s, prefix=%s)", self.where, self.prefix)
end

-- Redis did not answer: remember it for RETRY_AFTER seconds, say so once per outage.
local function went_down(self, err)
  self.down_until = clock.monotonic() + self.retry_after
  if not self.warned then
    self.warned = true
    if self.on_error == "local" then
      self.warn(fmt("spapi: warning: the redis store at %s does not answer (%s); this process uses its own "
        .. "memory store (tokens and rate limits not shared) until it does", self.where, tostring(err)))
    end
  end
end

-- One command → reply | nil, message, kind. A connection from the pool that
-- turns out dead (the server closed it while idle) is replaced once.
local function exec(self, ...)
  if self.down_until then
    if clock.monotonic() < self.down_until then return nil, "not answering", "down" end
  end
  local server = server_of[self]
  local st = self.stats
  local c, reused, kind = conn.get(server)
  if not c then return nil, reused, kind end
  if not reused then st.connects = st.connects + 1 end
  st.commands = st.commands + 1
  local r, err
  r, err, kind = c:command(...)
  if r == nil and kind ~= "reply" and reused and kind ~= "timeout" then
    -- the server closed the idle connections (a restart, an idle timeout): a fresh one
    conn.drain(server)
    c, reused, kind = conn.get(server)
    if not c then return nil, reused, kind end
    st.connects, st.commands = st.connects + 1, st.commands + 1
    r, err, kind = c:command(...)
  end
  if r == nil and kind ~= "reply" then return nil, err, kind end
  conn.put(server, c)
  if self.down_until then
    self.down_until = false
    if self.warned then
      self.warned = false
      if self.on_error == "local" then self.warn(fmt("spapi: the redis store at %s answers again", self.where)) end
    end
  end
  return r, err, kind
end

local shas = {} -- script name → SHA1 on the server (the same on every server)

-- EVALSHA of scripts[name] (SCRIPT LOAD on first use and after NOSCRIPT).
local function eval(self, name, key, ...)
  local sha = shas[name]
  for _ = 1, 2 do
    if not sha then
      local err, kind
      sha, err, kind = exec(self, "SCRIPT", "LOAD", scripts[name])
      if not sha then return nil, err, kind end
      shas[name] = sha
    end
    local r, err, kind = exec(self, "EVALSHA", sha, 1, self.prefix .. key, ...)
    if r ~= nil or kind ~= "reply" or not err:find("^NOSCRIPT") then return r, err, kind end
    sha, shas[name] = nil, nil
  end
end

-- Redis failed for operation `op`: the memory store's answer, or nil, message.
local function failed(self, op, err, kind, ...)
  if kind ~= "down" then went_down(self, err) end
  if self.on_error == "local" then
    self.stats.fallbacks = self.stats.fallbacks + 1
    local fb = self.fallback
    return fb[op](fb, ...)
  end
  if kind == "down" then err = "it did not answer a moment ago" end
  return nil, fmt("the redis store at %s failed (%s): %s", self.where, op, tostring(err))
end

function _M:get(key)
  local v, err, kind = exec(self, "GET", self.prefix .. key)
  if v == nil then return failed(self, "get", err, kind, key) end
  return v or nil
end

function _M:set(key, value, ttl)
  local ok, err, kind
  if ttl then
    local ms = floor(ttl * 1000)
    if ms < 1 then ms = 1 end
    ok, err, kind = exec(self, "SET", self.prefix .. key, value, "PX", ms)
  else
    ok, err, kind = exec(self, "SET", self.prefix .. key, value)
  end
  if ok == nil then return failed(self, "set", err, kind, key, value, ttl) end
  return true
end

function _M:delete(key)
  local ok, err, kind = exec(self, "DEL", self.prefix .. key)
  if ok == nil then return failed(self, "delete", err, kind, key) end
  return true
end

--- take(key, rate, burst, max_wait) → true, wait | false, wait | nil, message:
--- as the contract says, on Redis's clock.
function _M:take(key, rate, burst, max_wait)
  local mw = (max_wait == nil or max_wait == huge) and -1 or max_wait
  local r, err, kind = eval(self, "take", key, rate, burst, mw)
  if r == nil then return failed(self, "take", err, kind, key, rate, burst, max_wait) end
  return r[1] == 1, tonumber(r[2]) or 0
end

function _M:lock(key, ttl)
  local ms = floor((ttl or 30) * 1000)
  if ms < 1 then ms = 1 end
  local ok, err, kind = exec(self, "SET", self.prefix .. key, self.owner, "NX", "PX", ms)
  if ok == nil then return failed(self, "lock", err, kind, key, ttl) end
  return ok == "OK"
end

function _M:unlock(key)
  local ok, err, kind = eval(self, "unlock", key, self.owner)
  if ok == nil then return failed(self, "unlock", err, kind, key) end
  return true
end

return _M
