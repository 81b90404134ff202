-- Token buckets per (client, selling partner, operation) with the model's
-- rate and burst (times the configured rate_scale), or the rate and burst granted
-- to the operation in the config (limits = { ["api.op"] = { rate =, burst = } },
-- as they are), in the lua_shared_dict "spapi_buckets". A tiny per-bucket lock
-- keeps workers consistent.
local _M = {}

local config = require "spapi.sandbox.config"
local ngx = ngx
local tonumber, floor, fmt, min = tonumber, math.floor, string.format, math.min

local DEFAULT_RATE, DEFAULT_BURST = 5, 10

-- the operation's grant from the config's limits, if any
local function granted(opname)
  local g = opname and config.get().limits
  g = g and g[opname]
  if g then return tonumber(g.rate), tonumber(g.burst) end
end

function _M.limits(op, opname)
  local r, b = granted(opname)
  if r then return r, b end
  local scale = tonumber(config.get().rate_scale) or 1
  local rate = (tonumber(op.rate) or DEFAULT_RATE) * scale
  local burst = (tonumber(op.burst) or DEFAULT_BURST) * scale
  if burst < 1 then burst = 1 end
  return rate, burst
end

function _M.header_value(op, opname)
  local rate = granted(opname)
  if not rate then rate = (tonumber(op.rate) or DEFAULT_RATE) * (tonumber(config.get().rate_scale) or 1) end
  if rate == floor(rate) then return fmt("%.1f", rate) end
  return fmt("%.4g", rate)
end

--- Take one token: true, or false when the bucket is empty.
function _M.take(key, op, opname)
  local rate, burst = _M.limits(op, opname)
  local d = ngx.shared.spapi_buckets
  -- one worker never yields between the read and the write below: no lock needed
  local lk = ngx.worker.count() > 1 and ("L" .. key) or nil
  local tries = 0
  while lk and not d:add(lk, true, 1) do
    tries = tries + 1
    if tries > 2000 then break end -- a stuck lock expires by itself; proceed
    -- the holder (another worker) keeps it for microseconds: just yield first
    ngx.sleep(tries < 100 and 0 or 0.001)
  end
  ngx.update_time() -- the time now, not the event loop's (a busy worker's is behind)
  local now = ngx.now()
  local s = d:get(key)
  local tokens, ts = burst, now
  if s then
    local a, b = s:match("^([^,]+),(.+)$")
    tokens, ts = tonumber(a) or burst, tonumber(b) or now
    tokens = min(burst, tokens + (now - ts) * rate)
  end
  local ok = tokens >= 1
  if ok then tokens = tokens - 1 end
  -- keep the bucket until it would be full again
  local ttl = rate > 0 and ((burst - tokens) / rate + 1) or 3600
  d:set(key, fmt("%.6f,%.3f", tokens, now), ttl)
  if lk then d:delete(lk) end
  return ok
end

function _M.flush()
  ngx.shared.spapi_buckets:flush_all()
end

return _M
