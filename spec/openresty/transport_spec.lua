-- The ngx transport (cosockets) inside a real nginx with two workers, against
-- the local sandbox: calls wait without blocking the worker, every request of
-- a client (LWA, RDT, API calls, document upload and download) goes through
-- it, bodies come by Content-Length or chunked, gzip'd documents are decoded,
-- failures carry the contract's kinds.
local H = require "helpers"
local core = require "spapi.core"
local json = require "spapi.json"

local SERVER = [[
  location = /ping     { content_by_lua_block { require("ngx_calls").ping() } }
  location = /features { content_by_lua_block { require("ngx_calls").features() } }
  location = /failure  { content_by_lua_block { require("ngx_calls").failure() } }
  location = /flow     { content_by_lua_block { require("ngx_calls").flow() } }
  location = /report   { content_by_lua_block { require("ngx_calls").report() } }
  location = /download { content_by_lua_block { require("ngx_calls").download() } }
  location = /chunked  { content_by_lua_block { require("ngx_calls").chunked() } }
  location = /batch    { content_by_lua_block { require("ngx_calls").batch() } }
]]

local function get(session, url)
  local status, _, body = session:request{ method = "GET", url = url }
  assert(status == 200, tostring(status) .. " " .. tostring(body))
  return assert(json.decode(body), body)
end

describe("the ngx transport in nginx", function()
  local sb, srv, s, ep
  setup(function()
    sb = H.sandbox{ reset = { speed = 0 } }
    assert(sb.control("/_sandbox/config", { rate_scale = 1000 }))
    srv = H.nginx(SERVER, nil, { workers = 2 })
    s = core.session{ timeout = 60 }
    ep = core.urlencode(sb.endpoint)
  end)
  teardown(function()
    assert(sb.control("/_sandbox/faults", nil, "DELETE"))
  end)

  it("is the default inside nginx (curl when asked for) and keeps its connections", function()
    local r1 = get(s, srv.url .. "/features?ep=" .. ep)
    assert.is_true(r1.ok, r1.message)
    assert.equal("ngx", r1.transport)
    assert.equal(3, r1.features)
    -- the same worker's next call reuses its pooled connection
    local r2
    for _ = 1, 20 do
      r2 = get(s, srv.url .. "/features?ep=" .. ep)
      if r2.pid == r1.pid then break end
    end
    assert.equal(r1.pid, r2.pid)
    assert.is_true(r2.stats.reused > r1.stats.reused)
    assert.equal(r1.stats.connections, r2.stats.connections)
    -- transport = "curl" still forces libcurl
    local r3 = get(s, srv.url .. "/features?transport=curl&ep=" .. ep)
    assert.is_true(r3.ok, r3.message)
    assert.equal("curl", r3.transport)
  end)

  it("answers 50 concurrent calls delayed 200 ms in about one delay, and /ping meanwhile", function()
    get(s, srv.url .. "/features?ep=" .. ep) -- a token for the workers that have none comes on their first call
    assert(sb.control("/_sandbox/faults", { kind = "delay", delay_ms = 200,
      operation = "fulfillment_outbound.getFeatures" }))
    -- one delayed call alone: the unit of the run's ratio
    local t = core.monotonic()
    assert.is_true(get(s, srv.url .. "/features?ep=" .. ep).ok)
    local one = core.monotonic() - t

    local m = s:multi()
    local calls, pings = {}, {}
    t = core.monotonic()
    for _ = 1, 50 do calls[m:add{ method = "GET", url = srv.url .. "/features?ep=" .. ep }] = true end
    -- the pings go once the calls are on their way
    local results = m:wait(0.05)
    for _ = 1, 6 do pings[m:add{ method = "GET", url = srv.url .. "/ping" }] = true end
    local got = #results
    while got < 56 do
      for _, r in ipairs(m:wait(1)) do
        results[#results + 1] = r
        got = got + 1
      end
    end
    local all = core.monotonic() - t
    m:close()

    local call_rs, ping_rs = {}, {}
    for _, r in ipairs(results) do
      assert.equal(200, r.status, tostring(r.err) .. " " .. tostring(r.body))
      local b = assert(json.decode(r.body))
      if calls[r.id] then call_rs[#call_rs + 1] = b else ping_rs[#ping_rs + 1] = b end
    end
    assert.equal(50, #call_rs)
    assert.equal(6, #ping_rs)
    local first_end = math.huge
    for _, c in ipairs(call_rs) do
      assert.is_true(c.ok, c.message)
      first_end = math.min(first_end, c.t1)
    end
    -- how many calls were in flight at once (blocking libcurl: one per worker, two)
    local most = 0
    for _, c in ipairs(call_rs) do
      local n = 0
      for _, o in ipairs(call_rs) do
        if o.t0 <= c.t0 and c.t0 < o.t1 then n = n + 1 end
      end
      most = math.max(most, n)
    end
    assert.is_true(most >= 25, "at most " .. most .. " calls were in flight at once")
    -- 50 calls took a few delays at most, not 25 (50 over two blocked workers)
    assert.is_true(all < 10 * one, string.format("50 calls took %.2fs, one %.2fs", all, one))
    -- pings were answered by a worker in the middle of a call (a worker blocked in
    -- libcurl answers none until its call ends); under load the accept may hand a
    -- ping to a worker whose calls have not started yet, so not every ping must be
    local busy = 0
    for _, p in ipairs(ping_rs) do
      for _, c in ipairs(call_rs) do
        if c.pid == p.pid and c.t0 <= p.t and p.t < c.t1 then busy = busy + 1 break end
      end
    end
    assert.is_true(busy >= 1, "no /ping was answered while its worker had a call in flight")
    assert(sb.control("/_sandbox/faults", nil, "DELETE"))
  end)

  it("runs client:batch in light threads: 20 calls delayed 200 ms take a few delays, not 20", function()
    get(s, srv.url .. "/features?ep=" .. ep)
    assert(sb.control("/_sandbox/faults", { kind = "delay", delay_ms = 200,
      operation = "fulfillment_outbound.getFeatures" }))
    local r = get(s, srv.url .. "/batch?n=20&ep=" .. ep)
    assert(sb.control("/_sandbox/faults", nil, "DELETE"))
    assert.equal(20, r.ok)
    assert.is_true(r.all < 5 * r.one, string.format("20 calls took %.2fs, one %.2fs", r.all, r.one))
  end)

  it("sends every request of a client through it: LWA, RDT, API calls, document upload and download", function()
    local r = get(s, srv.url .. "/flow?ep=" .. ep)
    assert.equal("ngx", r.transport)
    assert.is_true(r.rdt_call)
    assert.is_true(r.feed_document)
    assert.is_true(r.upload)
    assert.is_true(r.create_report)
    -- LWA, the RDT, getOrders, createFeedDocument, the upload, createReport
    assert.equal(6, r.requests)
    assert(sb.control("/_sandbox/clock", { advance = 120 }))
    local rep = get(s, srv.url .. "/report?ep=" .. ep .. "&id=" .. r.report_id)
    assert.is_true(rep.ok, rep.message or rep.status)
    assert.equal("GZIP", rep.compression)
    assert.matches("GET_MERCHANT_LISTINGS_ALL_DATA", rep.text, 1, true)
  end)

  it("reads a chunked body and gunzips the document", function()
    local url = core.urlencode(srv.url .. "/chunked")
    local r = get(s, srv.url .. "/download?ep=" .. ep .. "&gzip=1&url=" .. url)
    assert.is_true(r.ok, r.message)
    assert.equal(string.rep("sku\tquantity\nCHUNK-1\t12\n", 500), r.text) -- (ngx_calls.CHUNKED_TEXT)
  end)

  it("does not fail a call when the server closed the pooled connection while it was idle", function()
    -- a server that closes idle connections after 100 ms
    local backend = H.nginx([[
      keepalive_timeout 100ms;
      default_type application/json;
      location = /auth/o2/token { return 200 '{"access_token":"Atza|idle","token_type":"bearer","expires_in":3600}'; }
      location / { return 200 '{"payload":{"features":[{"featureName":"A"},{"featureName":"B"},{"featureName":"C"}]}}'; }
    ]])
    local bep = core.urlencode(backend.url)
    local r1 = get(s, srv.url .. "/features?ep=" .. bep)
    assert.is_true(r1.ok, r1.message)
    local r2
    for _ = 1, 20 do -- the same worker again, after the server dropped its connection
      core.sleep(0.3)
      r2 = get(s, srv.url .. "/features?ep=" .. bep)
      if r2.pid == r1.pid then break end
    end
    assert.equal(r1.pid, r2.pid)
    assert.is_true(r2.ok, r2.message)
    -- (nginx drops a pooled connection the peer closes; one closed in a race is sent again)
    assert.is_true(r2.stats.connections > r1.stats.connections or r2.stats.resent > r1.stats.resent)
  end)

  it("fails with the contract's kinds: connect, resolve, timeout, closed", function()
    local dead = core.urlencode("http://127.0.0.1:" .. H.free_port())
    local r = get(s, srv.url .. "/failure?ep=" .. dead)
    assert.is_false(r.ok)
    assert.equal("connect", r.kind)
    assert.matches("cannot connect to 127.0.0.1", r.message, 1, true)

    -- (this nginx has no `resolver`: the message says to add one)
    r = get(s, srv.url .. "/failure?ep=" .. core.urlencode("https://no-such-host.invalid"))
    assert.is_false(r.ok)
    assert.equal("resolve", r.kind)
    assert.matches("resolver", r.message, 1, true)

    get(s, srv.url .. "/failure?ep=" .. ep) -- (a token first: the faults below are the call's)
    assert(sb.control("/_sandbox/faults", { kind = "delay", delay_ms = 1500, count = 1,
      operation = "fulfillment_outbound.getFeatures" }))
    r = get(s, srv.url .. "/failure?timeout=0.3&ep=" .. ep)
    assert.is_false(r.ok)
    assert.equal("timeout", r.kind)

    assert(sb.control("/_sandbox/faults", { kind = "close", count = 1, operation = "fulfillment_outbound.getFeatures" }))
    r = get(s, srv.url .. "/failure?ep=" .. ep)
    assert.is_false(r.ok, json.encode(r))
    assert.equal("closed", r.kind, json.encode(r))
    assert(sb.control("/_sandbox/faults", nil, "DELETE"))
  end)
end)

describe("the ngx transport outside nginx", function()
  local cfg = { env = false, client_id = "amzn1.application-oa2-client.x", client_secret = "s", refresh_token = "Atzr|x" }

  it("is not the default, and asking for it says it needs nginx", function()
    local sp = assert(require("spapi").client(cfg))
    assert.equal("curl", sp.transport.name)
    local with = { transport = "ngx" }
    for k, v in pairs(cfg) do with[k] = v end
    local ok, err = pcall(require("spapi").client, with)
    assert.is_false(ok)
    assert.matches('transport = "ngx" needs nginx\'s cosockets', err, 1, true)
  end)
end)
