-- Process-local store: the default for scripts and the REPL.
-- The store interface (shared with the ngx and redis stores):
--   store:get(key) → string|nil             store:set(key, value, ttl_seconds|nil)
--   store:delete(key)
--   store:take(key, rate, burst, now, max_wait) → wait_seconds | nil, wait_needed
--       atomic token-bucket reservation: a token is reserved (the bucket may go
--       into debt) when the caller would wait at most max_wait; the caller sleeps
--       the returned wait before sending.
--   store:set_rate(key, rate, burst) / store:get_rate(key) → rate, burst
--   store:lock(key, ttl) → true|false       store:unlock(key)
-- Values are strings so the same callers work with shared dicts and Redis.
local _M = {}
local mt = { __index = _M }

local clock = require("spapi.clock")

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

function _M.new()
  return setmetatable({ expires = {}, buckets = {}, locks = {}, rates = {} }, mt)
end

function _M:get(key)
  local exp = self.expires[key]
  if exp and exp <= clock.now() then
    values(self)[key], self.expires[key] = nil, nil
    return nil
  end
  return values(self)[key]
end

function _M:set(key, value, ttl)
  values(self)[key] = value
  self.expires[key] = ttl and (clock.now() + ttl) or nil
  return true
end

function _M:delete(key)
  values(self)[key], self.expires[key] = nil, nil
  return true
end

-- The token-bucket arithmetic on one bucket { tokens =, last = } (see store:take)
local function take_from(b, rate, burst, now, max_wait)
  local tokens = b.tokens + (now - b.last) * rate
  if tokens > burst then tokens = burst end
  b.last = now
  local wait = tokens >= 1 and 0 or (1 - tokens) / rate
  if max_wait and wait > max_wait then
    b.tokens = tokens
    return nil, wait
  end
  b.tokens = tokens - 1
  return wait
end

-- key's bucket, made full (its first take clamps the tokens to that take's burst)
local function bucket(self, key)
  local b = self.buckets[key]
  if not b then
    b = { tokens = math.huge, last = 0 }
    self.buckets[key] = b
  end
  return b
end

function _M:take(key, rate, burst, now, max_wait)
  return take_from(bucket(self, key), rate, burst, now, max_wait)
end

-- This store's fast path for the rate limiter of this process (other stores have
-- none): store:local_bucket(key) → the bucket itself, for memory.take_from(bucket,
-- rate, burst, now, max_wait), which is store:take without the look-ups.
_M.local_bucket = bucket
_M.take_from = take_from

function _M:set_rate(key, rate, burst)
  self.rates[key] = { rate, burst }
end

function _M:get_rate(key)
  local r = self.rates[key]
  if r then return r[1], r[2] end
end

function _M:lock(key, ttl)
  local now = clock.now()
  local held = self.locks[key]
  if held and held > now then return false end
  self.locks[key] = now + (ttl or 30)
  return true
end

function _M:unlock(key)
  self.locks[key] = nil
end

return _M
