-- make bench: calls/s with the memory store and with the Redis store (a local
-- redis-server), their ratio, and the Redis round trips per call.
-- usage: lua5.4 bench/redis_store.lua <base_url> <redis_url> [N]
local spapi = require "spapi"
local clock = require "spapi.clock"

local base, redis_url, N = arg[1], arg[2], tonumber(arg[3] or "5000")
local params = { marketplaceId = "ATVPDKIKX0DER" }

local function client(extra)
  local cfg = { env = false, endpoint = base, lwa_endpoint = base .. "/auth/o2/token",
    client_id = "bench", client_secret = "bench", refresh_token = "Atzr|bench", rate_scale = 1e9 }
  for k, v in pairs(extra or {}) do cfg[k] = v end
  local sp = assert(spapi.client(cfg))
  for _ = 1, 50 do assert(sp.fulfillment_outbound.getFeatures(params)) end -- warm: token, connections, script
  return sp
end

local mem = client()
local red = client{ redis = redis_url, redis_prefix = "bench:" }

local function run(sp, n)
  local t0 = clock.monotonic()
  for _ = 1, n do
    local body, err = sp.fulfillment_outbound.getFeatures(params)
    if not body then error(tostring(err)) end
  end
  return n / (clock.monotonic() - t0)
end

local function median(list)
  table.sort(list)
  local n = #list
  if n % 2 == 1 then return list[(n + 1) / 2] end
  return (list[n / 2] + list[n / 2 + 1]) / 2
end

-- short rounds in turns (the machine's speed wanders): the ratio is the median
-- of the rounds' ratios, the rates each side's best round
local ROUNDS = 11
local n = math.max(100, math.floor(N / ROUNDS))
local ratios, best_mem, best_red = {}, 0, 0
local commands0 = red.store.stats.commands
for r = 1, ROUNDS do
  local a, b
  if r % 2 == 1 then a = run(mem, n) b = run(red, n) else b = run(red, n) a = run(mem, n) end
  ratios[#ratios + 1] = b / a
  if a > best_mem then best_mem = a end
  if b > best_red then best_red = b end
end
local trips = (red.store.stats.commands - commands0) / (ROUNDS * n)
print(string.format("store: memory %.0f calls/s, redis %.0f calls/s, ratio redis/memory %.2f (median of %d rounds)",
  best_mem, best_red, median(ratios), ROUNDS))
print(string.format("store: %.3f redis round trips per call (a bucket take each, the learned rate once a second;"
  .. " the token from the process's memo)", trips))
