-- spapi.request: operation + params → method, path, query, headers, body (pure).
local request = require "spapi.request"
local json = require "spapi.json"

local build = request.build

local function raises(pattern, fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error matching " .. pattern)
  assert.is_string(err)
  assert.truthy(err:find(pattern, 1, true), "error was: " .. err)
  return err
end

local DAY = "2024-01-02T03:04:05Z"

describe("spapi.request.build", function()
  describe("paths", function()
    it("substitutes and percent-encodes path parameters (MCF getFulfillmentOrder)", function()
      local r = build("fulfillment_outbound", "getFulfillmentOrder", { sellerFulfillmentOrderId = "A 1/2+3" })
      assert.equal("GET", r.method)
      assert.equal("/fba/outbound/2020-07-01/fulfillmentOrders/A%201%2F2%2B3", r.path)
      assert.equal("", r.query)
      assert.is_nil(r.body)
      assert.equal("fulfillment_outbound.getFulfillmentOrder", r.operation)
      assert.equal("/fba/outbound/2020-07-01/fulfillmentOrders/{sellerFulfillmentOrderId}", r.template)
      assert.same({ Accept = "application/json" }, r.headers)
    end)

    it("encodes listings SKUs with spaces, slashes, unicode and percent signs", function()
      local r = build("listings_items", "getListingsItem", {
        sellerId = "A2SELLER", sku = "AB/CD 10% caf\195\169", marketplaceIds = { "ATVPDKIKX0DER" },
      })
      assert.equal("/listings/2021-08-01/items/A2SELLER/AB%2FCD%2010%25%20caf%C3%A9", r.path)
      assert.equal("marketplaceIds=ATVPDKIKX0DER", r.query)
      r = build("listings_items", "deleteListingsItem", { sellerId = "S", sku = "x~y._-z", marketplaceIds = "M" })
      assert.equal("/listings/2021-08-01/items/S/x~y._-z", r.path)
    end)

    it("accepts an integral number for a string path parameter", function()
      local r = build("vendor_df_orders", "getOrder", { purchaseOrderNumber = 12345678 })
      assert.equal("/vendor/directFulfillment/orders/2021-12-28/purchaseOrders/12345678", r.path)
    end)

    it("rejects an empty path parameter", function()
      raises("parameter 'purchaseOrderNumber' must not be empty", function()
        build("vendor_df_orders", "getOrder", { purchaseOrderNumber = "" })
      end)
    end)

    it("checks the model's pattern (MFN shipment ids)", function()
      local id = "a1b2c3d4-0000-1111-2222-333344445555"
      assert.equal("/mfn/v0/shipments/" .. id, build("merchant_fulfillment", "getShipment", { shipmentId = id }).path)
      raises("parameter 'shipmentId' must match the pattern", function()
        build("merchant_fulfillment", "getShipment", { shipmentId = "x" })
      end)
    end)
  end)

  describe("queries", function()
    it("builds DF getOrders with dates, in model order", function()
      local r = build("vendor_df_orders", "getOrders", {
        createdBefore = DAY, createdAfter = 1704164645, status = "NEW", limit = 50,
        includeDetails = false, sortOrder = "DESC",
      })
      assert.equal("GET", r.method)
      assert.equal("/vendor/directFulfillment/orders/2021-12-28/purchaseOrders", r.path)
      assert.equal("status=NEW&limit=50&createdAfter=2024-01-02T03%3A04%3A05Z" ..
        "&createdBefore=2024-01-02T03%3A04%3A05Z&sortOrder=DESC&includeDetails=false", r.query)
    end)

    it("turns Unix seconds (with fractions) into UTC ISO 8601", function()
      local r = build("vendor_df_orders", "getOrders", { createdAfter = 0.9, createdBefore = 86400 })
      assert.equal("createdAfter=1970-01-01T00%3A00%3A00Z&createdBefore=1970-01-02T00%3A00%3A00Z", r.query)
    end)

    it("encodes csv arrays item by item (feeds processingStatuses, feedTypes)", function()
      local r = build("feeds", "getFeeds", {
        feedTypes = { "POST_ORDER_FULFILLMENT_DATA", "JSON_LISTINGS_FEED" },
        processingStatuses = { "DONE", "IN_QUEUE" }, pageSize = 10,
      })
      assert.equal("feedTypes=POST_ORDER_FULFILLMENT_DATA,JSON_LISTINGS_FEED&pageSize=10" ..
        "&processingStatuses=DONE,IN_QUEUE", r.query)
      r = build("feeds", "getFeeds", { marketplaceIds = { "A,B", "C D" } })
      assert.equal("marketplaceIds=A%2CB,C%20D", r.query)
    end)

    it("accepts a single string for an array parameter", function()
      local r = build("reports", "getReports", { reportTypes = "GET_FLAT_FILE_OPEN_LISTINGS_DATA" })
      assert.equal("reportTypes=GET_FLAT_FILE_OPEN_LISTINGS_DATA", r.query)
    end)

    it("checks enums of array items, naming the item", function()
      raises("parameter 'processingStatuses' item 2 must be one of CANCELLED, DONE, FATAL, IN_PROGRESS, IN_QUEUE (got \"BAD_VALUE\")",
        function() build("feeds", "getFeeds", { processingStatuses = { "DONE", "BAD_VALUE" } }) end)
    end)

    it("checks max_items", function()
      local many = {}
      for i = 1, 11 do many[i] = "T" .. i end
      raises("parameter 'feedTypes' must have at most 10 items (got 11)", function()
        build("feeds", "getFeeds", { feedTypes = many })
      end)
    end)

    it("rejects a table that is not a list for an array parameter", function()
      raises("parameter 'reportTypes' must be a list", function()
        build("reports", "getReports", { reportTypes = { a = "x" } })
      end)
    end)

    it("checks integer ranges", function()
      raises("parameter 'pageSize' must be <= 100 (got 500)", function()
        build("reports", "getReports", { pageSize = 500 })
      end)
      raises("parameter 'limit' must be >= 1 (got 0)", function()
        build("vendor_df_orders", "getOrders", { createdAfter = DAY, createdBefore = DAY, limit = 0 })
      end)
    end)

    it("encodes booleans as true/false", function()
      local r = build("fba_inventory", "getInventorySummaries", {
        granularityType = "Marketplace", granularityId = "ATVPDKIKX0DER", marketplaceIds = { "ATVPDKIKX0DER" },
        details = true, sellerSkus = { "SKU 1", "SKU/2" },
      })
      assert.equal("details=true&granularityType=Marketplace&granularityId=ATVPDKIKX0DER" ..
        "&sellerSkus=SKU%201,SKU%2F2&marketplaceIds=ATVPDKIKX0DER", r.query)
      raises("parameter 'details' must be a boolean (got \"yes\")", function()
        build("fba_inventory", "getInventorySummaries", {
          granularityType = "Marketplace", granularityId = "X", marketplaceIds = "X", details = "yes" })
      end)
    end)

    it("reports a paging token as the only parameter (exclusive paging)", function()
      local r = build("reports", "getReports", { nextToken = "abc+/=" })
      assert.equal("nextToken=abc%2B%2F%3D", r.query)
    end)

    it("omits optional empty arrays and json.null values", function()
      local r = build("feeds", "getFeeds", { feedTypes = {}, nextToken = json.null, pageSize = 5 })
      assert.equal("pageSize=5", r.query)
    end)
  end)

  describe("bodies", function()
    local order = {
      sellerFulfillmentOrderId = "ORDER-1", displayableOrderId = "ORDER-1",
      displayableOrderDate = DAY, displayableOrderComment = "Thanks",
      shippingSpeedCategory = "Standard",
      destinationAddress = { name = "Jane", addressLine1 = "1 Main St", stateOrRegion = "WA",
                             countryCode = "US", postalCode = "98101", city = "Seattle" },
      items = { { sellerSku = "SKU-1", sellerFulfillmentOrderItemId = "1", quantity = 2 } },
      notificationEmails = json.array(),
    }

    it("encodes MCF createFulfillmentOrder as JSON with Content-Type", function()
      local r = build("fulfillment_outbound", "createFulfillmentOrder", { body = order })
      assert.equal("POST", r.method)
      assert.equal("/fba/outbound/2020-07-01/fulfillmentOrders", r.path)
      assert.equal("application/json", r.headers["Content-Type"])
      assert.equal("application/json", r.headers.Accept)
      local back = json.decode(r.body)
      assert.equal("ORDER-1", back.sellerFulfillmentOrderId)
      assert.equal(2, back.items[1].quantity)
      assert.truthy(r.body:find('"notificationEmails":[]', 1, true))
    end)

    it("names the missing required body property", function()
      local partial = {}
      for k, v in pairs(order) do partial[k] = v end
      partial.items = nil
      raises("spapi: fulfillment_outbound.createFulfillmentOrder: parameter 'body' is missing required property 'items'",
        function() build("fulfillment_outbound", "createFulfillmentOrder", { body = partial }) end)
    end)

    it("passes a raw string body through", function()
      local r = build("fulfillment_outbound", "createFulfillmentOrder", { body = '{"raw":true}' })
      assert.equal('{"raw":true}', r.body)
      assert.equal("application/json", r.headers["Content-Type"])
    end)

    it("takes a single body parameter under its own name or as body, not both", function()
      local payload = { supplySourceCode = "SRC-1", alias = "Main", address = { name = "W", addressLine1 = "x",
                        stateOrRegion = "WA", countryCode = "US" } }
      local a = build("supply_sources", "createSupplySource", { payload = payload })
      local b = build("supply_sources", "createSupplySource", { body = payload })
      assert.same(json.decode(a.body), json.decode(b.body))
      raises("give the body as 'payload' or as 'body', not both", function()
        build("supply_sources", "createSupplySource", { payload = payload, body = payload })
      end)
    end)

    it("rejects a body that is neither table nor string, or that JSON cannot encode", function()
      raises("parameter 'body' must be a table or a JSON string (got number)", function()
        build("feeds", "createFeedDocument", { body = 42 })
      end)
      raises("parameter 'body' cannot be encoded as JSON", function()
        build("feeds", "createFeedDocument", { body = { contentType = "text/xml", f = function() end } })
      end)
    end)

    it("sends header parameters (FBA inventory idempotency token)", function()
      local r = build("fba_inventory", "addInventory", {
        ["x-amzn-idempotency-token"] = "tok-1",
        addInventoryRequestBody = { inventoryItems = { { sellerSku = "S", marketplaceId = "M", quantity = 1 } } },
      })
      assert.equal("tok-1", r.headers["x-amzn-idempotency-token"])
      assert.equal("/fba/inventory/v1/items/inventory", r.path)
      raises("missing required parameter 'x-amzn-idempotency-token'", function()
        build("fba_inventory", "addInventory", { body = {} })
      end)
    end)

    it("builds DF submitAcknowledgement and reports createReport", function()
      local r = build("vendor_df_orders", "submitAcknowledgement", { body = { orderAcknowledgements = json.array() } })
      assert.equal('{"orderAcknowledgements":[]}', r.body)
      r = build("reports", "createReport", { body = { reportType = "GET_X", marketplaceIds = { "ATVPDKIKX0DER" } } })
      assert.same({ reportType = "GET_X", marketplaceIds = { "ATVPDKIKX0DER" } }, json.decode(r.body))
      raises("parameter 'body' is missing required property 'marketplaceIds'", function()
        build("reports", "createReport", { body = { reportType = "GET_X" } })
      end)
    end)
  end)

  describe("programmer errors", function()
    it("names the missing required parameter and the operation", function()
      raises("spapi: vendor_df_orders.getOrders: missing required parameter 'createdAfter'", function()
        build("vendor_df_orders", "getOrders", { createdBefore = DAY })
      end)
    end)

    it("lists the enum on a bad value", function()
      raises("spapi: vendor_df_orders.getOrders: parameter 'status' must be one of NEW, SHIPPED, ACCEPTED, CANCELLED (got \"NOPE\")",
        function() build("vendor_df_orders", "getOrders", { createdAfter = DAY, createdBefore = DAY, status = "NOPE" }) end)
    end)

    it("names the wrong type", function()
      raises("spapi: vendor_df_orders.getOrders: parameter 'limit' must be an integer (got string)", function()
        build("vendor_df_orders", "getOrders", { createdAfter = DAY, createdBefore = DAY, limit = "10" })
      end)
      raises("parameter 'limit' must be an integer (got 2.5)", function()
        build("vendor_df_orders", "getOrders", { createdAfter = DAY, createdBefore = DAY, limit = 2.5 })
      end)
      raises("parameter 'createdAfter' must be an ISO 8601 date-time", function()
        build("vendor_df_orders", "getOrders", { createdAfter = "yesterday", createdBefore = DAY })
      end)
      raises("parameter 'sellerFulfillmentOrderId' must be a string (got table)", function()
        build("fulfillment_outbound", "getFulfillmentOrder", { sellerFulfillmentOrderId = {} })
      end)
    end)

    it("rejects unknown parameters and suggests the closest name", function()
      raises("spapi: vendor_df_orders.getOrders: unknown parameter 'limt' (did you mean 'limit'?)", function()
        build("vendor_df_orders", "getOrders", { createdAfter = DAY, createdBefore = DAY, limt = 1 })
      end)
      raises("unknown parameter 'MarketplaceIds' (did you mean 'marketplaceIds'?)", function()
        build("reports", "getReports", { MarketplaceIds = { "X" } })
      end)
      local err = raises("unknown parameter 'zzz'", function()
        build("reports", "getReports", { zzz = 1 })
      end)
      assert.falsy(err:find("did you mean", 1, true))
      raises("unknown parameter 'body'", function()
        build("reports", "getReport", { reportId = "1", body = {} })
      end)
    end)

    it("checks header length limits", function()
      raises("parameter 'x-amzn-fulfillment-service-id' must be at most 40 characters (got 41)", function()
        build("fulfillment_outbound_2026", "getOrder", { orderId = "O1", ["x-amzn-fulfillment-service-id"] = ("x"):rep(41) })
      end)
    end)

    it("rejects unknown operations and APIs", function()
      raises("spapi: vendor_df_orders.getOrdrs: unknown operation (did you mean 'getOrders'?)", function()
        build("vendor_df_orders", "getOrdrs", {})
      end)
      raises("spapi: unknown API \"nope\"", function() build("nope", "x", {}) end)
      raises("params must be a table (got string)", function() build("reports", "getReports", "x") end)
    end)

    it("points the error at the caller's line", function()
      local line = debug.getinfo(1, "l").currentline + 1
      local ok, err = pcall(function() build("vendor_df_orders", "getOrder", {}) end)
      assert.is_false(ok)
      assert.truthy(err:find("request_spec.lua:" .. line .. ":", 1, true), err)
    end)

    it("lets a wrapper move the error to its own caller with opts.level", function()
      local function wrapper(p)
        local r = build("vendor_df_orders", "getOrder", p, { level = 2 }) -- not a tail call
        return r
      end
      local line = debug.getinfo(1, "l").currentline + 1
      local ok, err = pcall(function() wrapper({}) end)
      assert.is_false(ok)
      assert.truthy(err:find("request_spec.lua:" .. line .. ":", 1, true), err)
    end)
  end)

  it("accepts the operation table itself as well as its key", function()
    local api = require "spapi.operations.tokens"
    local r = build(api, "createRestrictedDataToken", { body = { restrictedResources = {
      { method = "GET", path = "/mfn/v0/shipments/{shipmentId}" } } } })
    assert.equal("/tokens/2021-03-01/restrictedDataToken", r.path)
    assert.equal("POST", r.method)
    assert.equal("/mfn/v0/shipments/{shipmentId}", json.decode(r.body).restrictedResources[1].path)
  end)

  it("translates the models' regexes to Lua patterns, groups included", function()
    local validate = require "spapi.validate"
    local function matches(re, s)
      for _, p in ipairs(assert(validate.patterns(re), re)) do if s:find(p) then return true end end
      return false
    end
    assert.is_true(matches("^[a-zA-Z0-9]+$", "abc123")); assert.is_false(matches("^[a-zA-Z0-9]+$", "ab-c"))
    local u = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}"
    assert.is_true(matches(u, "x0123abcd-ffffy")); assert.is_false(matches(u, "0123abc-ffff"))
    assert.is_true(matches("^(a|b)$", "b")); assert.is_false(matches("^(a|b)$", "ab"))
    local version = "^[1-9](\\.[1-9])?$" -- merchant fulfillment's label format version
    assert.is_true(matches(version, "1")); assert.is_true(matches(version, "2.1"))
    assert.is_false(matches(version, "2.")); assert.is_false(matches(version, "0.1"))
    local email = "^([a-zA-Z0-9_\\-\\.]+)@([a-zA-Z0-9_\\-\\.]+)\\.([a-zA-Z]{2,5})$"
    assert.is_true(matches(email, "ops.team@example.co")); assert.is_false(matches(email, "ops@example"))
    assert.is_false(matches(email, "ops@example.toolongtld"))
    -- a repeated group is beyond a Lua pattern: left to the server
    assert.is_nil(validate.patterns("^(ab)+$"))
  end)
end)

describe("spapi.request.build with other collection formats", function()
  -- No model in scope uses them today; a hand-made table keeps the code honest.
  local api = { api = "fake", operations = { list = {
    method = "GET", path = "/things/{id}", consumes = "application/json",
    params = {
      { name = "id", ["in"] = "path", required = true, type = "string" },
      { name = "tags", ["in"] = "query", type = "array", collection_format = "multi", items = { type = "string" } },
      { name = "codes", ["in"] = "query", type = "array", collection_format = "pipes",
        items = { type = "integer", minimum = 1 } },
      { name = "q", ["in"] = "query", type = "number" },
    },
  } } }

  it("repeats the key for multi and joins with an encoded separator otherwise", function()
    local r = request.build(api, "list", { id = "x", tags = { "a b", "c&d" }, codes = { 1, 22 }, q = 0.25 })
    assert.equal("/things/x", r.path)
    assert.equal("tags=a%20b&tags=c%26d&codes=1%7C22&q=0.25", r.query)
  end)

  it("checks item types and ranges", function()
    local ok, err = pcall(request.build, api, "list", { id = "x", codes = { 1, 0 } })
    assert.is_false(ok)
    assert.truthy(err:find("spapi: fake.list: parameter 'codes' item 2 must be >= 1 (got 0)", 1, true), err)
    ok, err = pcall(request.build, api, "list", { id = "x", q = "1" })
    assert.truthy(err:find("parameter 'q' must be a number (got string)", 1, true), err)
  end)
end)

describe("spapi.request.build edge cases", function()
  it("encodes path segments that are only dots, which URL normalisation would drop", function()
    assert.equal("/vendor/directFulfillment/orders/2021-12-28/purchaseOrders/%2E%2E",
      request.build("vendor_df_orders", "getOrder", { purchaseOrderNumber = ".." }).path)
    assert.equal("/vendor/directFulfillment/orders/2021-12-28/purchaseOrders/%2E",
      request.build("vendor_df_orders", "getOrder", { purchaseOrderNumber = "." }).path)
    assert.equal("/vendor/directFulfillment/orders/2021-12-28/purchaseOrders/...",
      request.build("vendor_df_orders", "getOrder", { purchaseOrderNumber = "..." }).path)
  end)

  it("treats an empty list for a required array as missing", function()
    local ok, err = pcall(request.build, "reports", "getReportSchedules", { reportTypes = {} })
    assert.is_false(ok)
    assert.truthy(err:find("missing required parameter 'reportTypes' (got an empty list)", 1, true), err)
  end)
end)

describe("spapi.request.build date-times inside bodies", function()
  local function item(n)
    return { itemSequenceNumber = n, shippedQuantity = { amount = 1, unitOfMeasure = "Each" } }
  end
  local function confirmation(shipped)
    local function one(po, when, status)
      return { purchaseOrderNumber = po, sellingParty = { partyId = "S" }, shipFromParty = { partyId = "W" },
               shipmentDetails = { shippedDate = when, shipmentStatus = status }, items = { item(1) } }
    end
    return { shipmentConfirmations = { one("PO1", shipped, "SHIPPED"), one("PO2", "2026-11-20T10:00:00Z", "SHIPPED") } }
  end

  it("turns Unix seconds where the model has a date-time into ISO 8601, at any depth", function()
    local r = build("vendor_df_shipping", "submitShipmentConfirmations", { body = confirmation(1700000000) })
    local sent = json.decode(r.body)
    assert.equal("2023-11-14T22:13:20Z", sent.shipmentConfirmations[1].shipmentDetails.shippedDate)
    assert.equal("2026-11-20T10:00:00Z", sent.shipmentConfirmations[2].shipmentDetails.shippedDate)
    assert.equal("SHIPPED", sent.shipmentConfirmations[1].shipmentDetails.shipmentStatus)
    r = build("reports", "createReport", { body = { reportType = "GET_MERCHANT_LISTINGS_ALL_DATA",
      marketplaceIds = { "ATVPDKIKX0DER" }, dataStartTime = 1700000000.9 } })
    assert.equal("2023-11-14T22:13:20Z", json.decode(r.body).dataStartTime)
  end)

  it("leaves the caller's tables as they were, and empty arrays as arrays", function()
    local body = confirmation(1700000000)
    local details = body.shipmentConfirmations[1].shipmentDetails
    body.extra = json.array()
    local r = build("vendor_df_shipping", "submitShipmentConfirmations", { body = body })
    assert.equal(1700000000, details.shippedDate)
    assert.equal(details, body.shipmentConfirmations[1].shipmentDetails)
    assert.matches('"extra":%[%]', r.body)
  end)

  it("refuses what is neither ISO 8601 nor Unix seconds, naming the field", function()
    local at = "body.shipmentConfirmations[1].shipmentDetails.shippedDate"
    raises(at .. " must be an ISO 8601 date-time such as 2024-01-02T03:04:05Z, or Unix seconds (got \"tomorrow\")",
      function() build("vendor_df_shipping", "submitShipmentConfirmations", { body = confirmation("tomorrow") }) end)
    raises(at .. " must be a date-time string or Unix seconds (got number)", function()
      build("vendor_df_shipping", "submitShipmentConfirmations", { body = confirmation(1e300) })
    end)
    raises(at .. " must be a date-time string or Unix seconds (got boolean)", function()
      build("vendor_df_shipping", "submitShipmentConfirmations", { body = confirmation(true) })
    end)
    -- a JSON string body is not touched
    local text = '{"shipmentConfirmations":[{"shipmentDetails":{"shippedDate":1700000000}}]}'
    assert.equal(text, build("vendor_df_shipping", "submitShipmentConfirmations", { body = text }).body)
  end)
end)

describe("spapi.request.compile", function()
  local BASE = "https://sellingpartnerapi-na.amazon.com"

  it("gives the client's url, headers and body, the same request build gives", function()
    local mcf = require "spapi.operations.fulfillment_outbound"
    local f = request.compile(mcf, "listAllFulfillmentOrders")
    local params = { queryStartDate = 1700000000, nextToken = "n+1" }
    local url, headers, body = f(params, BASE)
    local r = build(mcf, "listAllFulfillmentOrders", params)
    assert.equal(BASE .. r.path .. "?" .. r.query, url)
    assert.equal(BASE .. "/fba/outbound/2020-07-01/fulfillmentOrders?queryStartDate=2023-11-14T22%3A13%3A20Z"
      .. "&nextToken=n%2B1", url)
    assert.same(r.headers, headers)
    assert.is_nil(body)
    assert.equal("/fba/outbound/2020-07-01/fulfillmentOrders/A%201", (request.compile(mcf, "getFulfillmentOrder")(
      { sellerFulfillmentOrderId = "A 1" })))
  end)

  it("fills a headers table given again: the access token stays, what the last call set goes", function()
    local f = request.compile(require "spapi.operations.fulfillment_outbound_2026", "getOrder")
    local _, h = f({ orderId = "O1", ["x-amzn-fulfillment-service-id"] = "svc" }, BASE)
    assert.equal("svc", h["x-amzn-fulfillment-service-id"])
    h["x-amz-access-token"] = "Atza|old"
    local _, h2 = f({ orderId = "O2" }, BASE, h)
    assert.equal(h, h2)
    assert.is_nil(h2["x-amzn-fulfillment-service-id"])
    assert.equal("Atza|old", h2["x-amz-access-token"])
    assert.equal("application/json", h2.Accept)
  end)

  it("returns nil and build's message for a refused value or an unknown operation", function()
    local mcf = require "spapi.operations.fulfillment_outbound"
    local url, msg = request.compile(mcf, "getFulfillmentOrder")({ sellerFulfillmentOrderId = ("x"):rep(41) })
    assert.is_nil(url)
    assert.equal("spapi: fulfillment_outbound.getFulfillmentOrder: parameter 'sellerFulfillmentOrderId' "
      .. "must be at most 40 characters (got 41)", msg)
    url, msg = request.compile(mcf, "getFeatures")({ marketplaceID = "x" })
    assert.is_nil(url)
    assert.equal("spapi: fulfillment_outbound.getFeatures: unknown parameter 'marketplaceID' "
      .. "(did you mean 'marketplaceId'?)", msg)
    url, msg = request.compile(mcf, "getFeaturs")({})
    assert.is_nil(url)
    assert.equal("spapi: fulfillment_outbound.getFeaturs: unknown operation (did you mean 'getFeatures'?)", msg)
  end)

  it("builds an operation table of one's own, whose body has no generated schema", function()
    local api = { api = "review", operations = { putThing = { method = "PUT", path = "/things/{id}/{part}", params = {
      { name = "part", ["in"] = "path", required = true, type = "string" },
      { name = "id", ["in"] = "path", required = true, type = "string" },
      { name = "thing", ["in"] = "body", required = true, type = "object", body_required = { "name" } },
    } } } }
    local f = request.compile(api, "putThing")
    local url, headers, body = f({ id = "a/b", part = "x", body = { name = "n" } }, "")
    assert.equal("/things/a%2Fb/x", url)
    assert.equal("application/json", headers["Content-Type"])
    assert.equal('{"name":"n"}', body)
    local _, msg = f({ id = "a", part = "x", thing = {} }, "")
    assert.equal("spapi: review.putThing: parameter 'thing' is missing required property 'name'", msg)
  end)
end)
