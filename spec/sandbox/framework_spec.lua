-- The sandbox framework: start/stop/status (Lua and CLI), routing, the control
-- API, documents, and the small programs (reports, notifications, FBA inventory).
local H = require "helpers"
local sandbox = require "spapi.sandbox"
local core = require "spapi.core"
local schema = require "sandbox.schema"

local MP = "ATVPDKIKX0DER"

describe("sandbox lifecycle", function()
  it("starts, reports status and stops from Lua", function()
    local dir = H.tmpdir("sbx-life")
    local port = H.free_port()
    local h = assert(sandbox.start{ port = port, dir = dir })
    local ok = pcall(function()
      assert.equal("http://127.0.0.1:" .. port, h.endpoint)
      assert.equal(h.endpoint .. "/auth/o2/token", h.lwa_endpoint)
      local st = sandbox.status{ dir = dir }
      assert.is_true(st.running)
      assert.equal(port, st.port)
      assert.is_number(st.pid)
      local health = assert(h.control("/_sandbox/health"))
      assert.is_true(health.ok)
    end)
    h.stop()
    assert.is_true(ok)
    assert.is_false(sandbox.status{ dir = dir }.running)
    assert.is_false(core.tcp_probe("127.0.0.1", port) and true or false)
  end)

  it("starts and stops from the command line", function()
    local dir = H.tmpdir("sbx-cli")
    local port = H.free_port()
    local lua = _VERSION == "Lua 5.1" and "luajit" or "lua5.4"
    local bin = H.root .. "/bin/spapi"
    local p = io.popen(string.format("%s %s sandbox start --port %d --dir %s 2>&1", lua, bin, port, dir))
    local out = p:read("*a")
    p:close()
    local stopped = false
    local ok, err = pcall(function()
      assert.matches("endpoint=http://127.0.0.1:" .. port, out, 1, true)
      assert.matches("lwa_endpoint=http://127.0.0.1:" .. port .. "/auth/o2/token", out, 1, true)
      assert.matches("export SPAPI_ENDPOINT=http://127.0.0.1:" .. port, out, 1, true)
      local s = io.popen(string.format("%s %s sandbox status --dir %s", lua, bin, dir))
      assert.matches("^running", s:read("*a"))
      s:close()
      local status = H.sandbox_http("GET", "http://127.0.0.1:" .. port .. "/_sandbox/health")
      assert.equal(200, status)
      local st = io.popen(string.format("%s %s sandbox stop --dir %s", lua, bin, dir))
      assert.matches("stopped", st:read("*a"))
      st:close()
      stopped = true
      s = io.popen(string.format("%s %s sandbox status --dir %s", lua, bin, dir))
      assert.matches("not running", s:read("*a"))
      s:close()
    end)
    if not stopped then sandbox.stop{ dir = dir } end
    assert(ok, err)
  end)

  it("accepts only the credentials given at start", function()
    local dir = H.tmpdir("sbx-strict")
    local h = assert(sandbox.start{ port = H.free_port(), dir = dir, credentials = {
      { client_id = "amzn1.application-oa2-client.only", client_secret = "only-secret", refresh_tokens = { "Atzr|only" } } } })
    local ok, err = pcall(function()
      local function lwa(id, secret, rt)
        return H.sandbox_http("POST", h.lwa_endpoint, { body = "grant_type=refresh_token&refresh_token=" .. rt
          .. "&client_id=" .. id .. "&client_secret=" .. secret,
          headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } })
      end
      assert.equal(200, (lwa("amzn1.application-oa2-client.only", "only-secret", "Atzr%7Conly")))
      assert.equal(401, (lwa("amzn1.application-oa2-client.other", "only-secret", "Atzr%7Conly")))
      assert.equal(400, (lwa("amzn1.application-oa2-client.only", "only-secret", "Atzr%7Cother")))
    end)
    h.stop()
    assert(ok, err)
  end)
end)

describe("sandbox routing and control API", function()
  local sb, token
  before_each(function()
    sb = H.sandbox{ reset = true }
    token = H.sandbox_token()
  end)

  it("answers 404 NotFound for unknown paths and 400 for missing required parameters", function()
    local status, headers, body = H.sandbox_http("GET", "/no/such/thing", { token = token })
    assert.equal(404, status)
    assert.equal("NotFound", body.errors[1].code)
    assert.is_string(headers["x-amzn-requestid"])
    status, _, body = H.sandbox_http("GET", "/fba/outbound/2020-07-01/tracking", { token = token })
    assert.equal(400, status)
    assert.equal("InvalidInput", body.errors[1].code)
    assert.matches("packageNumber", body.errors[1].message)
    status, _, body = H.sandbox_http("POST", "/fba/outbound/2020-07-01/fulfillmentOrders", { token = token,
      body = "{not json", headers = { ["Content-Type"] = "application/json" } })
    assert.equal(400, status)
    assert.equal("InvalidInput", body.errors[1].code)
  end)

  it("decodes path parameters", function()
    assert(sb.control("/_sandbox/seed", { inventory = { { sku = "A/B C", quantity = 3 } } }))
    local status, _, body = H.sandbox_http("GET", "/fba/outbound/2020-07-01/features/inventory/BLANK_BOX/A%2FB%20C",
      { token = token, query = { marketplaceId = MP } })
    assert.equal(200, status)
    assert.equal("A/B C", body.payload.sellerSku)
    assert.is_true(body.payload.isEligible)
  end)

  it("counts requests and resets state, counters and the clock", function()
    for _ = 1, 3 do H.sandbox_http("GET", "/fba/outbound/2020-07-01/features", { token = token, query = { marketplaceId = MP } }) end
    local stats = assert(sb.control("/_sandbox/stats"))
    assert.equal(3, stats.requests["fulfillment_outbound.getFeatures"])
    assert.is_true(stats.tokens_issued >= 1)
    local c1 = assert(sb.control("/_sandbox/clock", { advance = 86400 }))
    assert(sb.control("/_sandbox/seed", { inventory = { { sku = "SKU-NEW", quantity = 1 } } }))
    assert(sb.reset())
    stats = assert(sb.control("/_sandbox/stats"))
    assert.is_nil(stats.requests["fulfillment_outbound.getFeatures"])
    assert.equal(0, stats.throttled)
    local c2 = assert(sb.control("/_sandbox/clock"))
    assert.is_true(c2.now < c1.now - 3600)
    local st, _, body = H.sandbox_http("GET", "/fba/outbound/2020-07-01/features/inventory/BLANK_BOX/SKU-NEW",
      { token = token, query = { marketplaceId = MP } })
    assert.equal(200, st) -- the token survives a reset
    assert.is_false(body.payload.isEligible)
  end)

  it("runs the clock faster when asked", function()
    local c1 = assert(sb.control("/_sandbox/clock", { speed = 3600 }))
    assert.equal(3600, c1.speed)
    core.sleep(0.3)
    local c2 = assert(sb.control("/_sandbox/clock"))
    assert.is_true(c2.now - c1.now >= 600, "clock moved " .. (c2.now - c1.now))
    local _, err = sb.control("/_sandbox/clock", { speed = "fast" })
    assert.matches("speed", err)
  end)

  it("rejects seed data no program knows and unknown control endpoints", function()
    local _, err = sb.control("/_sandbox/seed", { nothing_here = true })
    assert.is_string(err)
    _, err = sb.control("/_sandbox/nope", {})
    assert.matches("404", err)
    _, err = sb.control("/_sandbox/programs/no_such_api/thing", {})
    assert.matches("404", err)
  end)

  it("stores uploaded documents and serves them back", function()
    local up = assert(sb.control("/_sandbox/documents", { contentType = "text/tab-separated-values" }))
    assert.matches("^http://127%.0%.0%.1:%d+/_documents/", up.url)
    local status = H.sandbox_http("PUT", up.url, { body = "sku\tqty\nA\t1\n",
      headers = { ["Content-Type"] = "text/tab-separated-values" } })
    assert.equal(200, status)
    local s2, headers, _, raw = H.sandbox_http("GET", up.url)
    assert.equal(200, s2)
    assert.equal("sku\tqty\nA\t1\n", raw)
    assert.equal("text/tab-separated-values", headers["content-type"])
    local meta = assert(sb.control("/_sandbox/documents/" .. up.documentId))
    assert.equal("sku\tqty\nA\t1\n", meta.text)
    assert.equal(404, (H.sandbox_http("GET", "/_documents/amzn1.tortuga.nothing")))
  end)
end)

describe("sandbox small programs", function()
  local sb, token
  -- plain HTTP, and every 2xx body checked against the model's response schema
  local function api(method, path, o)
    local status, headers, body, raw = H.sandbox_http(method, path, o)
    assert(status, headers)
    if status < 300 and status ~= 204 then schema.assert_valid(method, path, status, body) end
    return status, headers, body, raw
  end
  before_each(function()
    sb = H.sandbox{ reset = true }
    assert(sb.control("/_sandbox/config", { rate_scale = 100 }))
    token = H.sandbox_token()
  end)

  it("runs a report to DONE and serves its gzip'd document", function()
    local status, _, body = api("POST", "/reports/2021-06-30/reports", { token = token, body = {
      reportType = "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA", marketplaceIds = { MP } } })
    assert.equal(202, status)
    local id = body.reportId
    status, _, body = api("GET", "/reports/2021-06-30/reports/" .. id, { token = token })
    assert.equal(200, status)
    assert.equal("IN_QUEUE", body.processingStatus)
    assert(sb.control("/_sandbox/clock", { advance = 45 }))
    _, _, body = api("GET", "/reports/2021-06-30/reports/" .. id, { token = token })
    assert.equal("IN_PROGRESS", body.processingStatus)
    assert(sb.control("/_sandbox/clock", { advance = 60 }))
    _, _, body = api("GET", "/reports/2021-06-30/reports/" .. id, { token = token })
    assert.equal("DONE", body.processingStatus)
    local doc_id = body.reportDocumentId
    status, _, body = api("GET", "/reports/2021-06-30/documents/" .. doc_id, { token = token })
    assert.equal(200, status, require("cjson").encode(body))
    assert.equal("GZIP", body.compressionAlgorithm)
    local s2, _, _, raw = H.sandbox_http("GET", body.url)
    assert.equal(200, s2)
    local text = assert(core.gunzip(raw))
    assert.matches("^sku\tfnsku", text)
    assert.matches("SKU%-RED%-MUG", text)
    -- listed, and cancelling a finished report is refused
    status, _, body = api("GET", "/reports/2021-06-30/reports", { token = token,
      query = { reportTypes = "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA" } })
    assert.equal(200, status)
    assert.equal(id, body.reports[1].reportId)
    assert.equal(400, (api("DELETE", "/reports/2021-06-30/reports/" .. id, { token = token })))
  end)

  it("manages notification destinations (grantless) and subscriptions", function()
    local grantless = H.sandbox_token{ scope = "sellingpartnerapi::notifications" }
    local status, _, body = api("POST", "/notifications/v1/destinations", { token = grantless, body = {
      name = "queue", resourceSpecification = { sqs = { arn = "arn:aws:sqs:us-east-1:123456789012:spapi" } } } })
    assert.equal(200, status)
    local dest = body.payload.destinationId
    assert.equal("arn:aws:sqs:us-east-1:123456789012:spapi", body.payload.resource.sqs.arn)
    _, _, body = api("GET", "/notifications/v1/destinations", { token = grantless })
    assert.equal(dest, body.payload[1].destinationId)
    status, _, body = api("POST", "/notifications/v1/subscriptions/FULFILLMENT_ORDER_STATUS", { token = token,
      body = { payloadVersion = "1.0", destinationId = dest } })
    assert.equal(200, status)
    local sub = body.payload.subscriptionId
    status, _, body = api("GET", "/notifications/v1/subscriptions/FULFILLMENT_ORDER_STATUS", { token = token })
    assert.equal(200, status)
    assert.equal(sub, body.payload.subscriptionId)
    -- by id: grantless operations
    assert.equal(403, (api("GET", "/notifications/v1/subscriptions/FULFILLMENT_ORDER_STATUS/" .. sub,
      { token = token })))
    status, _, body = api("GET", "/notifications/v1/subscriptions/FULFILLMENT_ORDER_STATUS/" .. sub,
      { token = grantless })
    assert.equal(200, status)
    assert.equal(dest, body.payload.destinationId)
    assert.equal(200, (api("DELETE", "/notifications/v1/subscriptions/FULFILLMENT_ORDER_STATUS/" .. sub,
      { token = grantless })))
    assert.equal(200, (api("DELETE", "/notifications/v1/destinations/" .. dest, { token = grantless })))
    assert.equal(404, (api("GET", "/notifications/v1/destinations/" .. dest, { token = grantless })))
  end)

  it("pages FBA inventory summaries and adds inventory (sandbox operations)", function()
    assert.equal(200, (api("POST", "/fba/inventory/v1/items", { token = token, body = {
      sellerSku = "SKU-FRESH", marketplaceId = MP, productName = "Fresh thing" } })))
    assert.equal(200, (api("POST", "/fba/inventory/v1/items/inventory", { token = token,
      headers = { ["x-amzn-idempotency-token"] = "t1" },
      body = { inventoryItems = { { sellerSku = "SKU-FRESH", marketplaceId = MP, quantity = 7 } } } })))
    local status, _, body = api("GET", "/fba/inventory/v1/summaries", { token = token, query = {
      granularityType = "Marketplace", granularityId = MP, marketplaceIds = MP, details = "true", sellerSkus = "SKU-FRESH" } })
    assert.equal(200, status)
    local s = body.payload.inventorySummaries[1]
    assert.equal("SKU-FRESH", s.sellerSku)
    assert.equal(7, s.inventoryDetails.fulfillableQuantity)
    assert.equal(7, s.totalQuantity)
    local list = {}
    for i = 1, 60 do list[i] = { sku = string.format("BULK-%02d", i), quantity = i } end
    assert(sb.control("/_sandbox/seed", { inventory = list }))
    local n, next_token, pages = 0, nil, 0
    repeat
      local q = { granularityType = "Marketplace", granularityId = MP, marketplaceIds = MP, nextToken = next_token }
      _, _, body = api("GET", "/fba/inventory/v1/summaries", { token = token, query = q })
      n = n + #body.payload.inventorySummaries
      pages = pages + 1
      next_token = body.pagination and body.pagination.nextToken
    until not next_token
    assert.equal(2, pages)
    assert.equal(5 + 1 + 60, n)
  end)
end)
