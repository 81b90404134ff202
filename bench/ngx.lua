-- make bench: requests/s through an nginx handler that calls the benchmark
-- server with spapi, via the ngx transport (cosockets) and via the curl
-- transport (libcurl, blocking the worker), next to wrk straight at the
-- server, in one run. Prints the rates and their ratios (never fails on them).
-- usage: lua5.4 bench/ngx.lua <base_url of the benchmark server> <dir> [seconds] [connections]
local ng = require "spapi.nginx"
local core = require "spapi.core"

local base, dir = arg[1], arg[2]
local seconds, conns = tonumber(arg[3] or "3"), tonumber(arg[4] or "16")
local path = "/fba/outbound/2020-07-01/features?marketplaceId=ATVPDKIKX0DER"

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  return out
end

if not sh("command -v wrk"):find("wrk", 1, true) then
  print("ngx: wrk not found (apt-get install wrk): skipped")
  return
end

-- the handler: one client per worker and transport, built on first use
local HANDLER = [[
  content_by_lua_block {
    local CLIENTS = package.loaded.spapi_bench_clients or {}
    package.loaded.spapi_bench_clients = CLIENTS
    local sp = CLIENTS[ngx.var.transport]
    if not sp then
      sp = assert(require("spapi").client{ env = false, endpoint = %q, lwa_endpoint = %q,
        client_id = "bench", client_secret = "bench", refresh_token = "Atzr|bench", rate_scale = 1e9,
        transport = ngx.var.transport })
      CLIENTS[ngx.var.transport] = sp
    end
    local body, err = sp.fulfillment_outbound.getFeatures{ marketplaceId = "ATVPDKIKX0DER" }
    if not body then ngx.status = 502 ngx.say(tostring(err)) return end
    ngx.say(#body.payload.features)
  }
]]
local handler = HANDLER:format(base, base .. "/auth/o2/token")

local port = core.free_port()
local front = assert(ng.start{ dir = dir, port = port, workers = 1,
  server = ([[
    location = /ngx  { set $transport ngx;  %s }
    location = /curl { set $transport curl; %s }
  ]]):format(handler, handler) })

local function wrk(url, header)
  local out = sh(string.format("wrk -t1 -c%d -d%ds --latency %s %s", conns, seconds,
    header and ("-H '" .. header .. "'") or "", url))
  local rate = tonumber(out:match("Requests/sec:%s*([%d.]+)"))
  local non2xx = tonumber(out:match("Non%-2xx or 3xx responses:%s*(%d+)")) or 0
  if not rate then error("wrk failed on " .. url .. ":\n" .. out) end
  return rate, non2xx
end

local ok, err = pcall(function()
  -- warm: tokens and connections
  for _, t in ipairs{ "ngx", "curl" } do
    local status, _, body = core.session{}:request{ method = "GET", url = front.url .. "/" .. t }
    assert(status == 200, t .. " handler: " .. tostring(status) .. " " .. tostring(body))
  end
  local direct = wrk(base .. path, "x-amz-access-token: Atza|bench")
  local via_ngx, bad_ngx = wrk(front.url .. "/ngx")
  local via_curl, bad_curl = wrk(front.url .. "/curl")
  print(string.format("nginx handler, %d connections, 1 worker: ngx transport %.0f req/s, curl transport %.0f req/s,"
    .. " wrk straight at the server %.0f req/s", conns, via_ngx, via_curl, direct))
  print(string.format("ratios: ngx/direct %.2f, curl/direct %.2f, ngx/curl %.2f%s", via_ngx / direct,
    via_curl / direct, via_ngx / via_curl,
    (bad_ngx + bad_curl > 0) and string.format(" (non-2xx: ngx %d, curl %d)", bad_ngx, bad_curl) or ""))
end)
front.stop()
if not ok then error(err, 0) end
