-- One process of a fleet (spec/fleet/redis_fleet_spec.lua): FLEET_CALLS calls of
-- fba_inventory.getInventorySummaries through a client whose store is the Redis at
-- FLEET_REDIS. Prints, one line each, flushed as it goes:
--   start <wall time>
--   ok <i> <attempts> <wall time at the end of the call>
--   err <i> <kind> <code> <wall time>
--   done <wall time of the first call's start> <wall time of the last call's end>
-- Settings (environment): FLEET_ENDPOINT (the sandbox), FLEET_REDIS, FLEET_CALLS,
-- FLEET_POLICY (on_store_error), FLEET_LOCK_TTL (token_lock_ttl), FLEET_MARGIN (rate_margin).
local root = os.getenv("SPAPI_ROOT") or "."
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
local spapi = require "spapi"
local clock = require "spapi.clock"

local function env(k, default) local v = os.getenv(k) return (v and v ~= "") and v or default end
local out = io.stdout
local function say(...) out:write(table.concat({ ... }, " "), "\n") out:flush() end

local endpoint = assert(env("FLEET_ENDPOINT"), "FLEET_ENDPOINT")
local sp = assert(spapi.client{
  env = false, endpoint = endpoint, lwa_endpoint = endpoint .. "/auth/o2/token",
  client_id = "amzn1.application-oa2-client.fleet", client_secret = "fleet-secret",
  refresh_token = "Atzr|fleet-refresh-token", selling_partner_id = "A1FLEET",
  redis = env("FLEET_REDIS"), redis_prefix = "fleet:", on_store_error = env("FLEET_POLICY", "local"),
  redis_connect_timeout = 0.5, redis_command_timeout = 0.5,
  token_lock_ttl = tonumber(env("FLEET_LOCK_TTL", "10")), rate_margin = tonumber(env("FLEET_MARGIN", "0.9")),
  retry_base = 0.05, retry_cap = 0.3,
})
local MP = "ATVPDKIKX0DER"
local params = { granularityType = "Marketplace", granularityId = MP, marketplaceIds = { MP } }
say("start", string.format("%.6f", clock.now()))
local first, last
for i = 1, tonumber(env("FLEET_CALLS", "10")) do
  local t0 = clock.now()
  first = first or t0
  local body, resp = sp.fba_inventory.getInventorySummaries(params)
  last = clock.now()
  if body then
    say("ok", i, resp.attempts, string.format("%.6f", last))
  else
    say("err", i, tostring(resp.kind), tostring(resp.code), string.format("%.6f", last), (tostring(resp):gsub("%s+", " ")))
  end
end
say("done", string.format("%.6f", first or 0), string.format("%.6f", last or 0))
