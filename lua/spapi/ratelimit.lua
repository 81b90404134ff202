-- Token buckets per (selling partner, operation), kept in the client's store so a
-- fleet sharing a store shares one budget. Seeded from the model's usage plan
-- (rate, burst), corrected by the x-amzn-RateLimit-Limit response header.
-- The client reserves a token and waits for it instead of firing into a 429.
local _M = {}
local mt = { __index = _M }

local clock = require "spapi.clock"
local tonumber = tonumber

function _M.new(store, opts)
  opts = opts or {}
  -- the client paces itself a little below the granted rate (margin), so jitter
  -- between its clock and the server's does not turn into 429s
  return setmetatable({ store = store, scale = (opts.scale or 1) * (opts.margin or 0.9), buckets = {},
    learned = {} }, mt)
end

-- The rate and burst the store holds for key (learned from x-amzn-RateLimit-Limit,
-- here or by another process sharing the store), read at most once a second.
local function learned(self, key, now)
  local r, b = self.store:get_rate(key)
  local l = { r or false, b or false, now }
  self.learned[key] = l
  return l
end

--- The rate and burst in force for key.
function _M:limits(key, rate, burst)
  local r, b = self.store:get_rate(key)
  return (r or rate), (b or burst)
end

--- Reserve one request. Returns the seconds to wait before sending (0 = now), or
--- nil, needed when the wait would exceed max_wait (nothing reserved then).
--- now: the caller's clock.now(), if it has just read it.
function _M:reserve(key, rate, burst, max_wait, now)
  now = now or clock.now()
  local l = self.learned[key]
  if l == nil or now - l[3] > 1 then l = learned(self, key, now) end
  rate, burst = l[1] or rate, l[2] or burst
  if not rate or rate <= 0 then return 0 end
  local bucket = self.buckets[key]
  if not bucket then bucket = "rl:" .. key; self.buckets[key] = bucket end
  return self.store:take(bucket, rate * self.scale, burst and burst > 0 and burst or 1, now, max_wait)
end

--- Apply the x-amzn-RateLimit-Limit header (requests per second actually granted).
function _M:observe(key, header, model_rate, model_burst)
  local r = tonumber(header)
  if not r or r <= 0 then return end
  local cur = self:limits(key, model_rate, model_burst)
  if cur ~= r then self.store:set_rate(key, r, model_burst) end
  self.learned[key] = nil -- read again on the next reservation
end

return _M
