-- Token buckets per (selling partner, operation), kept in the client's store so a
-- fleet sharing a store shares one budget. Seeded from the model's usage plan
-- (rate, burst), corrected by the x-amzn-RateLimit-Limit response header.
-- The client reserves a token and waits for it instead of firing into a 429.
local _M = {}
local mt = { __index = _M }

local clock = require "spapi.clock"
local tonumber = tonumber
local memory = require "spapi.store.memory"
local take_from = memory.take_from

function _M.new(store, opts)
  opts = opts or {}
  -- the client paces itself a little below the granted rate (margin), so jitter
  -- between its clock and the server's does not turn into 429s
  -- the memory store's buckets are taken here, without a call through the store,
  -- unless the store replaces the memory store's take with its own
  return setmetatable({ store = store, scale = (opts.scale or 1) * (opts.margin or 0.9), keys = {},
    local_buckets = store.local_bucket ~= nil and rawequal(store.take, memory.take) }, mt)
end

-- key's record { rate, burst, read_at, bucket name, bucket }: the rate (scaled) and
-- burst in force, from the store (learned from x-amzn-RateLimit-Limit, here or by
-- another process sharing the store) or else the model's, read at most once a
-- second; with a store of this process (the memory store), its bucket itself.
local function refresh(self, key, rate, burst, now)
  local k = self.keys[key]
  if not k then
    k = { false, 1, now, "rl:" .. key, false }
    self.keys[key] = k
    if self.local_buckets then k[5] = self.store:local_bucket(k[4]) end
  end
  local r, b = self.store:get_rate(key)
  r, b = r or rate, b or burst
  k[1] = r and r > 0 and r * self.scale -- false: no limit
  k[2] = b and b > 0 and b or 1
  k[3] = now
  return k
end

--- The rate and burst in force for key.
function _M:limits(key, rate, burst)
  local r, b = self.store:get_rate(key)
  return (r or rate), (b or burst)
end

--- Reserve one request. Returns the seconds to wait before sending (0 = now), or
--- nil, needed when the wait would exceed max_wait (nothing reserved then).
--- rate, burst: the model's for key (the same on every call); now: the
--- caller's clock.now(), if it has just read it.
--- (Called on every request: the memory store's bucket is taken without a call
--- through the store.)
function _M.reserve(self, key, rate, burst, max_wait, now)
  now = now or clock.now()
  local k = self.keys[key]
  if k == nil or now - k[3] > 1 then k = refresh(self, key, rate, burst, now) end
  rate = k[1]
  if not rate then return 0 end
  local b = k[5]
  if b then return take_from(b, rate, k[2], now, max_wait) end
  return self.store:take(k[4], rate, k[2], now, max_wait)
end

--- Apply the x-amzn-RateLimit-Limit header (requests per second actually granted).
function _M:observe(key, header, model_rate, model_burst)
  local r = tonumber(header)
  if not r or r <= 0 then return end
  local cur = self:limits(key, model_rate, model_burst)
  if cur ~= r then self.store:set_rate(key, r, model_burst) end
  local k = self.keys[key]
  if k then k[3] = -math.huge end -- read again on the next reservation
end

return _M
