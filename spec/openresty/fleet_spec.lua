-- A real nginx with 2 workers calling the local sandbox, every worker with its
-- own client on one lua_shared_dict store (spec/support/fleet.lua runs the calls
-- in each worker's timer, in several light threads):
--   (2) 2 workers × 100 calls cause exactly one LWA token request;
--   (3) 2 workers calling an operation granted rate 10/s, burst 5: zero 429s,
--       finishing within 1.1× the theoretical time (N - burst) / rate.
-- With every transport this tree has (curl, and ngx once it exists).
local H = require "helpers"
local json = require "spapi.json"
local core = require "spapi.core"

local http = core.session{ timeout = 30 }

local function request(method, url, body)
  local status, _, raw = http:request{ method = method, url = url, body = body and json.encode(body) or nil,
    headers = { ["Content-Type"] = "application/json" } }
  assert.equal(200, status, raw)
  return json.decode(raw)
end

local transports = { "curl" }
if io.open(H.root .. "/lua/spapi/transport/ngx.lua") then transports[2] = "ngx" end

local runs = 0
-- post a run, wait (bounded) until every worker taking part has reported
local function run(srv, p, expected)
  runs = runs + 1
  p.id = runs
  request("POST", srv.url .. "/go", p)
  local out
  for _ = 1, 1200 do
    out = request("GET", srv.url .. "/result?id=" .. p.id)
    if #out.results == expected then return out end
    core.sleep(0.05)
  end
  error("the workers did not finish: " .. json.encode(out))
end

local function unique(tag)
  return "Atzr|fleet-" .. tag .. "-" .. core.hex(core.random_bytes(6))
end

describe("2 nginx workers on one shared-dict store", function()
  local srv, sb
  setup(function()
    sb = H.sandbox()
    -- the sandbox's workers load an API's program on their first request of it:
    -- warm both on listings_items (8 new connections, other selling partners), so
    -- that the rate proof measures pacing, not a module load inside the sandbox
    for i = 1, 8 do
      local token = H.sandbox_token{ refresh_token = "Atzr|fleet-warm-" .. (i % 2) }
      local s = core.session{ timeout = 10 }
      s:request{ method = "GET", url = sb.url .. "/listings/2021-08-01/items/A1SELLER?marketplaceIds=ATVPDKIKX0DER",
        headers = { ["x-amz-access-token"] = token } }
      s:close()
    end
    srv = H.nginx([[
      location = /go { content_by_lua_block { require("fleet").go() } }
      location = /result { content_by_lua_block { require("fleet").result() } }
    ]], [[
      lua_shared_dict spapi_fleet 1m;
      lua_shared_dict fleet_ctl 1m;
      init_worker_by_lua_block { require("fleet").init() }
    ]], { workers = 2 })
    for _ = 1, 200 do -- until both workers' timers wait for runs
      if request("GET", srv.url .. "/result?id=0").ready == 2 then return end
      core.sleep(0.05)
    end
    error("the nginx workers did not start")
  end)
  teardown(function() H.sandbox{ reset = true } end)

  for _, transport in ipairs(transports) do
    it("share one LWA token: 2 workers × 100 calls, one token request (" .. transport .. ")", function()
      H.sandbox{ reset = true }
      -- a generous grant, so that the calls are not paced; the token answer is
      -- slow, so that both workers (and their threads) ask while it is on its way
      assert(sb.control("/_sandbox/config", { limits = {
        ["fulfillment_outbound.getFeatures"] = { rate = 1000, burst = 1000 } } }))
      assert(sb.control("/_sandbox/faults", { operation = "lwa", kind = "delay", delay_ms = 300, count = 1 }))
      local out = run(srv, { endpoint = sb.endpoint, lwa_endpoint = sb.lwa_endpoint, transport = transport,
        refresh_token = unique("token"), op = "fulfillment_outbound.getFeatures",
        params = { marketplaceId = "ATVPDKIKX0DER" }, threads = 4, calls = 25 }, 2)
      local workers = {}
      for _, r in ipairs(out.results) do
        assert.equal(100, r.ok, r.first_error)
        assert.equal(0, r.failed, r.first_error)
        workers[#workers + 1] = r.worker
      end
      table.sort(workers)
      assert.same({ 0, 1 }, workers)
      local _, _, stats = H.sandbox_http("GET", "/_sandbox/stats")
      assert.equal(200, stats.requests["fulfillment_outbound.getFeatures"])
      assert.equal(1, stats.token_requests)
      assert.equal(1, stats.tokens_issued)
      -- waits shorter than nginx's millisecond were ngx.sleep(0): a warning each
      local log = require("spapi.nginx").read_file(srv.dir .. "/logs/error.log") or ""
      assert.is_nil(log:find("ngx.sleep(0) called", 1, true))
    end)

    it("share one restricted data token: 2 workers × 40 calls of a restricted operation, one RDT ("
      .. transport .. ")", function()
      H.sandbox{ reset = true }
      assert(sb.control("/_sandbox/config", { limits = {
        ["vendor_df_orders.getOrders"] = { rate = 1000, burst = 1000 } } }))
      -- the RDT answer is slow, so that every thread asks while it is on its way
      assert(sb.control("/_sandbox/faults", { operation = "tokens.createRestrictedDataToken", kind = "delay",
        delay_ms = 300, count = 1 }))
      local now = os.time()
      local out = run(srv, { endpoint = sb.endpoint, lwa_endpoint = sb.lwa_endpoint, transport = transport,
        refresh_token = unique("rdt"), op = "vendor_df_orders.getOrders",
        params = { status = "NEW", createdAfter = now - 86400, createdBefore = now }, threads = 4, calls = 10 }, 2)
      for _, r in ipairs(out.results) do
        assert.equal(40, r.ok, r.first_error)
      end
      local _, _, stats = H.sandbox_http("GET", "/_sandbox/stats")
      assert.equal(80, stats.requests["vendor_df_orders.getOrders"])
      assert.equal(1, stats.requests["tokens.createRestrictedDataToken"])
      assert.equal(1, stats.token_requests)
    end)

    it("share one rate budget: granted 10/s, burst 5, zero 429s within 1.1× (N - 5) / 10 (" .. transport .. ")",
      function()
      H.sandbox{ reset = true }
      local OP = "listings_items.searchListingsItems"
      assert(sb.control("/_sandbox/config", { limits = { [OP] = { rate = 10, burst = 5 } } }))
      local p = { endpoint = sb.endpoint, lwa_endpoint = sb.lwa_endpoint, transport = transport,
        refresh_token = unique("rate"), op = OP, params = { sellerId = "A1SELLER", marketplaceIds = { "ATVPDKIKX0DER" } },
        -- the model's usage plan says 5/s, burst 5; the sandbox answers
        -- x-amzn-RateLimit-Limit: 10.0. The client paces itself to 93% of the
        -- granted rate and burst (about 1.08× the theoretical time; the default
        -- margin, 0.9, would be 1.12×) so that network jitter costs no 429s.
        rate_margin = 0.93 }
      -- worker 0 makes one call and learns the granted rate; worker 1 never sees
      -- the header before the run: it paces by the rate worker 0 put in the store
      p.workers, p.threads, p.calls = { 0 }, 1, 1
      local warm = run(srv, p, 1)
      assert.equal(1, warm.results[1].ok, warm.results[1].first_error)
      core.sleep(0.5) -- both buckets (the client's and the sandbox's) full again
      p.workers, p.threads, p.calls = nil, 3, 10
      local out = run(srv, p, 2)
      local N, t1 = 0, 0
      for _, r in ipairs(out.results) do
        assert.equal(0, r.failed, r.first_error)
        N = N + r.ok
        if r.t1 > t1 then t1 = r.t1 end
      end
      assert.equal(60, N)
      local _, _, stats = H.sandbox_http("GET", "/_sandbox/stats")
      assert.equal(0, stats.throttled, transport)
      assert.equal(61, stats.requests[OP])
      local elapsed, theoretical = t1 - out.t0, (N - 5) / 10
      assert.is_true(elapsed >= theoretical, ("elapsed %.3f s < theoretical %.3f s: not paced"):format(elapsed, theoretical))
      assert.is_true(elapsed <= 1.1 * theoretical,
        ("elapsed %.3f s = %.3f× the theoretical %.3f s"):format(elapsed, elapsed / theoretical, theoretical))
    end)
  end
end)
