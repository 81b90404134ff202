-- Token buckets per (selling partner, operation), kept in the client's store so a
-- fleet sharing a store shares one budget. Seeded from the model's usage plan
-- (rate, burst), corrected by the x-amzn-RateLimit-Limit response header.
-- The client reserves a token and waits for it instead of firing into a 429.
local _M = {}
local mt = { __index = _M }

local default_clock = require "spapi.clock"
local tonumber, fmt = tonumber, string.format

--- new(store [, opts]) → limiter. opts.scale multiplies every rate (tests, a
--- sandbox run faster or slower); opts.margin (0.9) paces a little below the
--- granted rate and burst (a burst of at least 1), so jitter between our clock
--- and the server's is not a 429 — also when the burst has just been spent, where
--- a slower rate alone leaves the server's bucket no slack;
--- opts.clock: { now = function() → seconds } (default spapi.clock).
function _M.new(store, opts)
  opts = opts or {}
  local margin = opts.margin or 0.9
  return setmetatable({ store = store, scale = (opts.scale or 1) * margin, margin = margin, keys = {},
    now = (opts.clock or default_clock).now }, mt)
end

-- The rate and burst in force for key: the store's (learned from
-- x-amzn-RateLimit-Limit, here or by another process sharing the store) or else
-- the model's, read again at most once a second. → record { rate, burst, read_at }
local function limits_of(self, key, rate, burst)
  local now = self.now()
  local k = self.keys[key]
  if k and now - k.read_at <= 1 then return k end
  local stored, r, b = self.store:get("rate:" .. key), nil, nil
  if stored then r, b = stored:match("^(%S+) (%S+)$") end
  r, b = tonumber(r) or rate, tonumber(b) or burst
  k = { rate = r and r > 0 and r or false, burst = b and b >= 1 and b or 1, read_at = now } -- false: no limit
  self.keys[key] = k
  return k
end

--- The rate and burst in force for key (rate: unscaled; nil when unlimited).
function _M:limits(key, rate, burst)
  local k = limits_of(self, key, rate, burst)
  return k.rate or nil, k.burst
end

--- Reserve one request. rate, burst: the model's for key. → true, wait (the
--- seconds to wait before sending, 0 = now) | false, needed (the wait would
--- exceed max_wait: nothing reserved) | nil, message (the store failed).
function _M:reserve(key, rate, burst, max_wait)
  local k = limits_of(self, key, rate, burst)
  if not k.rate then return true, 0 end
  local burst = k.burst * self.margin
  return self.store:take("rl:" .. key, k.rate * self.scale, burst > 1 and burst or 1, max_wait)
end

--- Apply the x-amzn-RateLimit-Limit header (requests per second actually granted).
function _M:observe(key, header, model_rate, model_burst)
  local r = tonumber(header)
  if not r or r <= 0 then return end
  local cur, burst = self:limits(key, model_rate, model_burst)
  if cur ~= r then
    self.store:set("rate:" .. key, fmt("%.17g %.17g", r, burst or model_burst or 1))
    self.keys[key] = nil -- read again on the next reservation
  end
end

return _M
