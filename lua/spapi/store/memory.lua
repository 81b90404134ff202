-- Process-local store: the default for scripts and the REPL. The store contract
-- (get, set with ttl, delete, take from a token bucket, lock with expiry) is in
-- docs/extending.md; every store, this one included, is used only through it.
local _M = {}
local mt = { __index = _M }

local default_clock = require("spapi.clock")

-- The values (access tokens among them) live outside the store table, so that
-- dumping a client or its store shows none. They are keyed by the store's
-- expiry table, which an object delegating to the store (__index) shares.
local values_of = setmetatable({}, { __mode = "k" })

local function values(self)
  local e = self.expires
  local v = values_of[e]
  if not v then
    v = {}
    values_of[e] = v
  end
  return v
end

--- new([opts]) → store. opts.clock: { now = function() → seconds }, the clock of
--- expiries and buckets (default spapi.clock; tests inject one).
function _M.new(opts)
  local clock = opts and opts.clock or default_clock
  return setmetatable({ expires = {}, buckets = {}, locks = {}, now = clock.now }, mt)
end

function _M:get(key)
  local exp = self.expires[key]
  if exp and exp <= self.now() then
    values(self)[key], self.expires[key] = nil, nil
    return nil
  end
  return values(self)[key]
end

function _M:set(key, value, ttl)
  values(self)[key] = value
  self.expires[key] = ttl and (self.now() + ttl) or nil
  return true
end

function _M:delete(key)
  values(self)[key], self.expires[key] = nil, nil
  return true
end

--- take(key, rate, burst, max_wait) → true, wait | false, wait: one token from
--- key's bucket (full when new), reserved when it accrues within max_wait.
function _M:take(key, rate, burst, max_wait)
  local now = self.now()
  local b = self.buckets[key]
  if not b then
    b = { tokens = burst, last = now }
    self.buckets[key] = b
  end
  local tokens = b.tokens + (now - b.last) * rate
  if tokens > burst then tokens = burst end
  b.last = now
  local wait = tokens >= 1 and 0 or (1 - tokens) / rate
  if wait > max_wait then
    b.tokens = tokens
    return false, wait
  end
  b.tokens = tokens - 1
  return true, wait
end

function _M:lock(key, ttl)
  local now = self.now()
  local held = self.locks[key]
  if held and held > now then return false end
  self.locks[key] = now + ttl
  return true
end

function _M:unlock(key)
  self.locks[key] = nil
  return true
end

return _M
