-- Inside nginx the Redis store speaks RESP over cosockets (spapi.redis.resp):
-- two nginx instances (each its own prefix and port) and a plain-Lua process
-- (hiredis through the C core) draw on one rate budget and one token.
local H = require "helpers"
local core = require "spapi.core"
local json = require "spapi.json"

local OP = "fba_inventory.getInventorySummaries"
local LUA = _VERSION == "Lua 5.1" and "luajit" or "lua5.4"

local HANDLER = [[
  location /run { content_by_lua_block {
    local spapi = require "spapi"
    local clock = require "spapi.clock"
    local args = ngx.req.get_uri_args()
    local sp = assert(spapi.client{
      env = false, endpoint = args.endpoint, lwa_endpoint = args.endpoint .. "/auth/o2/token",
      client_id = "amzn1.application-oa2-client.fleet", client_secret = "fleet-secret",
      refresh_token = "Atzr|fleet-refresh-token", selling_partner_id = "A1FLEET",
      redis = args.redis, redis_prefix = "fleet:", rate_margin = 0.97, retry_base = 0.05, retry_cap = 0.3 })
    local MP = "ATVPDKIKX0DER"
    local params = { granularityType = "Marketplace", granularityId = MP, marketplaceIds = { MP } }
    local ok, errs, first, last = 0, {}, nil, nil
    for _ = 1, tonumber(args.n) do
      local t0 = clock.now()
      first = first or t0
      local body, resp = sp.fba_inventory.getInventorySummaries(params)
      last = clock.now()
      if body then ok = ok + 1 else errs[#errs + 1] = tostring(resp) end
    end
    ngx.say(spapi.json.encode{ ok = ok, errs = spapi.json.array(errs), first = first, last = last,
      cosockets = package.loaded["spapi.redis.resp"] ~= nil })
  } }
]]

describe("nginx and plain Lua sharing a Redis store", function()
  local sb, srv, a, b

  setup(function()
    srv = H.redis()
    a = H.nginx(HANDLER)
    b = H.nginx(HANDLER)
  end)
  teardown(function()
    a.stop()
    b.stop()
    srv.stop()
  end)

  local function read(path)
    local f = io.open(path)
    if not f then return "" end
    local s = f:read("*a")
    f:close()
    return s
  end

  -- run a shell command in the background → its pid
  local function background(cmd)
    local p = assert(io.popen(cmd .. " & echo $!"))
    local pid = assert(tonumber(p:read("*l")))
    p:close()
    return pid
  end

  local function wait_for(pid, limit)
    local t_end = core.monotonic() + limit
    while H.run("kill -0 " .. pid .. " 2>/dev/null") == 0 and core.monotonic() < t_end do core.sleep(0.05) end
    H.run("kill -9 " .. pid .. " 2>/dev/null")
  end

  it("two nginx instances and a plain-Lua process: one budget, one token, no 429", function()
    sb = H.sandbox{ reset = true }
    assert.equal("OK", srv.command("FLUSHALL"))
    assert(sb.control("/_sandbox/config", { limits = { [OP] = { rate = 20, burst = 5 } } }))
    local dir = H.tmpdir("fleet-ngx")
    local N = 60
    local enc = core.urlencode
    local pids = {}
    for i, ng in ipairs({ a, b }) do
      local url = string.format("%s/run?n=%d&endpoint=%s&redis=%s", ng.url, N, enc(sb.url), enc(srv.url))
      pids[#pids + 1] = background(string.format("curl -s -m 120 '%s' >'%s/ngx%d'", url, dir, i))
    end
    pids[#pids + 1] = background(string.format(
      "cd '%s' && env SPAPI_ROOT='%s' FLEET_ENDPOINT='%s' FLEET_REDIS='%s' FLEET_CALLS=%d FLEET_MARGIN=0.97"
      .. " %s spec/fleet/worker.lua >'%s/lua' 2>&1", H.root, H.root, sb.url, srv.url, N, LUA, dir))
    for _, pid in ipairs(pids) do wait_for(pid, 120) end

    local first, last, calls = math.huge, 0, 0
    for i = 1, 2 do
      local raw = read(dir .. "/ngx" .. i)
      local r = json.decode(raw)
      assert.is_table(r, "nginx " .. i .. " answered: " .. raw)
      assert.equal(N, r.ok, raw)
      assert.is_true(r.cosockets) -- the store spoke RESP over cosockets there
      calls = calls + r.ok
      first, last = math.min(first, r.first), math.max(last, r.last)
    end
    local out = read(dir .. "/lua")
    local _, oks = out:gsub("\nok ", "")
    assert.equal(N, oks, out)
    local f, l = out:match("done (%S+) (%S+)")
    calls = calls + oks
    first, last = math.min(first, tonumber(f)), math.max(last, tonumber(l))

    local s = assert(sb.control("/_sandbox/stats", nil, "GET"))
    assert.equal(0, s.throttled)
    assert.equal(3 * N, s.requests[OP])
    assert.equal(1, s.tokens_issued, read(a.dir .. "/logs/error.log") .. read(b.dir .. "/logs/error.log") .. out)
    -- one budget: the burst, then 20/s for all three together (three budgets would be ~3x faster)
    local min = (calls - 5) / 20
    local took = last - first
    io.stderr:write(string.format("\n[fleet/nginx] %d calls in %.2f s; minimum %.2f s; ratio %.3f\n",
      calls, took, min, took / min))
    assert.is_true(took >= min and took <= 1.1 * min,
      string.format("%d calls took %.2f s; the minimum is %.2f s (ratio %.3f)", calls, took, min, took / min))
  end)

  it("with Redis gone, a call from nginx goes through on the worker's own store; the warning is in the error log", function()
    sb = H.sandbox{ reset = true }
    local dead = "redis://127.0.0.1:" .. H.free_port()
    local url = string.format("%s/run?n=3&endpoint=%s&redis=%s", a.url, core.urlencode(sb.url), core.urlencode(dead))
    local status, _, body = core.session{ timeout = 60 }:request{ method = "GET", url = url }
    assert.equal(200, status, body)
    local r = assert(json.decode(body), body)
    assert.equal(3, r.ok, body)
    local log = read(a.dir .. "/logs/error.log")
    assert.matches("does not answer", log, 1, true)
    assert.matches("memory store", log, 1, true)
    assert.equal(3, assert(sb.control("/_sandbox/stats", nil, "GET")).requests[OP])
  end)
end)
