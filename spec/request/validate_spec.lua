-- spapi.validate through spapi.request: every constraint of a body's schema, at
-- any depth and in array items, refused with the operation and the field's
-- path; bodies Amazon's models give as examples pass; header parameters with a
-- NUL, CR or LF are refused before a token is fetched.
local H = require "helpers"
local request = require "spapi.request"
local json = require "spapi.json"
local cjson = require("cjson.safe").new()

local build = request.build

-- the exact message build raises (without the position)
local function refusal(api, op, params)
  local r, msg = request.try(api, op, params)
  assert.is_nil(r, "expected a refusal")
  return msg
end

local function deep_copy(t)
  if type(t) ~= "table" then return t end
  local c = {}
  for k, v in pairs(t) do c[k] = deep_copy(v) end
  return setmetatable(c, getmetatable(t))
end

-- a complete createFulfillmentOrder body
local function order()
  return {
    sellerFulfillmentOrderId = "ORDER-1", displayableOrderId = "ORDER-1",
    displayableOrderDate = "2026-11-21T10:00:00Z", displayableOrderComment = "Thank you",
    shippingSpeedCategory = "Standard",
    destinationAddress = { name = "Jane Doe", addressLine1 = "1 Main St", city = "Seattle",
                           stateOrRegion = "WA", postalCode = "98101", countryCode = "US" },
    items = {
      { sellerSku = "SKU-1", sellerFulfillmentOrderItemId = "1", quantity = 1 },
      { sellerSku = "SKU-2", sellerFulfillmentOrderItemId = "2", quantity = 2,
        perUnitDeclaredValue = { currencyCode = "USD", value = "10.00" } },
    },
  }
end

local MCF = "spapi: fulfillment_outbound.createFulfillmentOrder: "

describe("deep body validation", function()
  it("passes a complete body and sends it unchanged", function()
    local body = order()
    local r = build("fulfillment_outbound", "createFulfillmentOrder", { body = body })
    assert.same(body, json.decode(r.body))
  end)

  it("names a required property missing at any depth", function()
    local b = order()
    b.destinationAddress.postalCode = nil
    assert.equal(MCF .. "body.destinationAddress is missing required property 'postalCode'",
      refusal("fulfillment_outbound", "createFulfillmentOrder", { body = b }))
    b = order()
    b.items[2].sellerSku = json.null
    assert.equal(MCF .. "body.items[2] is missing required property 'sellerSku'",
      refusal("fulfillment_outbound", "createFulfillmentOrder", { body = b }))
    b = order()
    b.items[2].perUnitDeclaredValue = { value = "1.00" }
    assert.equal(MCF .. "body.items[2].perUnitDeclaredValue is missing required property 'currencyCode'",
      refusal("fulfillment_outbound", "createFulfillmentOrder", { body = b }))
  end)

  it("names a wrong type at any depth", function()
    local b = order()
    b.items[2].quantity = "2"
    assert.equal(MCF .. "body.items[2].quantity must be an integer (got string)",
      refusal("fulfillment_outbound", "createFulfillmentOrder", { body = b }))
    b.items[2].quantity = 2.5
    assert.equal(MCF .. "body.items[2].quantity must be an integer (got 2.5)",
      refusal("fulfillment_outbound", "createFulfillmentOrder", { body = b }))
    b.items[2].quantity = 2 ^ 31 -- the model says int32
    assert.equal(MCF .. "body.items[2].quantity must be a 32-bit integer (got 2147483648)",
      refusal("fulfillment_outbound", "createFulfillmentOrder", { body = b }))
    b = order()
    b.items[2].perUnitDeclaredValue.value = 10 -- Decimal is a string in the model
    assert.equal(MCF .. "body.items[2].perUnitDeclaredValue.value must be a string (got number)",
      refusal("fulfillment_outbound", "createFulfillmentOrder", { body = b }))
    b = order()
    b.destinationAddress = { "Jane", "1 Main St" }
    assert.equal(MCF .. "body.destinationAddress must be an object (a table with named fields; got list)",
      refusal("fulfillment_outbound", "createFulfillmentOrder", { body = b }))
    b = order()
    b.items = { sku = "x" }
    assert.equal(MCF .. "body.items must be a list (array table), got a table with key \"sku\"",
      refusal("fulfillment_outbound", "createFulfillmentOrder", { body = b }))
    b = order()
    b.items[1].quantity = true
    assert.equal(MCF .. "body.items[1].quantity must be an integer (got boolean)",
      refusal("fulfillment_outbound", "createFulfillmentOrder", { body = b }))
  end)

  it("checks enums, also inside array items", function()
    local b = order()
    b.shippingSpeedCategory = "Fast"
    assert.equal(MCF .. "body.shippingSpeedCategory must be one of Standard, Expedited, Priority, ScheduledDelivery "
      .. "(got \"Fast\")", refusal("fulfillment_outbound", "createFulfillmentOrder", { body = b }))
    local confirmations = { shipmentConfirmations = { {
      purchaseOrderNumber = "PO1", sellingParty = { partyId = "S" }, shipFromParty = { partyId = "W" },
      shipmentDetails = { shippedDate = "2026-11-20T10:00:00Z", shipmentStatus = "LOST" },
      items = { { itemSequenceNumber = 1, shippedQuantity = { amount = 1, unitOfMeasure = "Each" } } } } } }
    assert.equal("spapi: vendor_df_shipping.submitShipmentConfirmations: body.shipmentConfirmations[1]"
      .. ".shipmentDetails.shipmentStatus must be one of SHIPPED, FLOOR_DENIAL (got \"LOST\")",
      refusal("vendor_df_shipping", "submitShipmentConfirmations", { body = confirmations }))
  end)

  it("checks every schema of an allOf", function()
    local function subscribe(filter)
      return { notificationType = "ANY_OFFER_CHANGED", body = { payloadVersion = "1.0", destinationId = "D",
        processingDirective = { eventFilter = filter } } }
    end
    assert.equal("spapi: notifications.createSubscription: body.processingDirective.eventFilter is missing "
      .. "required property 'eventFilterType'",
      refusal("notifications", "createSubscription", subscribe({ marketplaceIds = { "ATVPDKIKX0DER" } })))
    assert.equal("spapi: notifications.createSubscription: body.processingDirective.eventFilter.aggregationSettings"
      .. ".aggregationTimePeriod must be one of FiveMinutes, TenMinutes (got \"OneMinute\")",
      refusal("notifications", "createSubscription", subscribe({ eventFilterType = "ANY_OFFER_CHANGED",
        aggregationSettings = { aggregationTimePeriod = "OneMinute" } })))
    assert(request.try("notifications", "createSubscription", subscribe({ eventFilterType = "ANY_OFFER_CHANGED",
      aggregationSettings = { aggregationTimePeriod = "FiveMinutes" }, marketplaceIds = { "ATVPDKIKX0DER" } })))
  end)

  it("checks patterns, groups and alternatives included", function()
    local confirmations = { shipmentConfirmations = { {
      purchaseOrderNumber = "PO-1", sellingParty = { partyId = "S" }, shipFromParty = { partyId = "W" },
      shipmentDetails = { shippedDate = "2026-11-20T10:00:00Z", shipmentStatus = "SHIPPED" },
      items = { { itemSequenceNumber = 1, shippedQuantity = { amount = 1, unitOfMeasure = "Each" } } } } } }
    assert.equal("spapi: vendor_df_shipping.submitShipmentConfirmations: body.shipmentConfirmations[1]"
      .. ".purchaseOrderNumber must match the pattern ^[a-zA-Z0-9]+$ (got \"PO-1\")",
      refusal("vendor_df_shipping", "submitShipmentConfirmations", { body = confirmations }))
    local update = { configuration = { operationalConfiguration = { contactDetails = { primary = {
      email = "ops@example" } } } } }
    assert.matches("body.configuration.operationalConfiguration.contactDetails.primary.email must match the pattern",
      refusal("supply_sources", "updateSupplySource", { supplySourceId = "S1", body = update }), 1, true)
    update.configuration.operationalConfiguration.contactDetails.primary.email = "ops@example.com"
    assert(request.try("supply_sources", "updateSupplySource", { supplySourceId = "S1", body = update }))
  end)

  it("checks minimum and maximum, lengths and item counts", function()
    local update = { configuration = { operationalConfiguration = { handlingTime = { value = -1, timeUnit = "Hours" } } } }
    assert.equal("spapi: supply_sources.updateSupplySource: body.configuration.operationalConfiguration"
      .. ".handlingTime.value must be >= 0 (got -1)",
      refusal("supply_sources", "updateSupplySource", { supplySourceId = "S1", body = update }))
    local b = order()
    b.sellerFulfillmentOrderId = ("x"):rep(41)
    assert.equal(MCF .. "body.sellerFulfillmentOrderId must be at most 40 characters (got 41)",
      refusal("fulfillment_outbound", "createFulfillmentOrder", { body = b }))
    b.sellerFulfillmentOrderId = ("\195\169"):rep(40) -- 40 characters, 80 bytes
    assert(request.try("fulfillment_outbound", "createFulfillmentOrder", { body = b }))
    local offers = { product = { productIdentifier = { merchantSku = "SKU-1" } },
      terms = { origin = { countryCode = "U" }, destination = { deliveryAddress = {
        addressLine1 = "1 Main St", city = "Seattle", countryCode = "US", stateOrRegion = "WA", postalCode = "98101" } } } }
    assert.equal("spapi: fulfillment_outbound.deliveryOffers: body.terms.origin.countryCode must be at least 2 "
      .. "characters (got 1)", refusal("fulfillment_outbound", "deliveryOffers", { body = offers }))
    local ids = {}
    for i = 1, 26 do ids[i] = "M" .. i end
    assert.equal("spapi: reports.createReport: body.marketplaceIds must have at most 25 items (got 26)",
      refusal("reports", "createReport", { body = { reportType = "GET_X", marketplaceIds = ids } }))
    assert.equal("spapi: reports.createReport: body.marketplaceIds must have at least 1 items (got 0)",
      refusal("reports", "createReport", { body = { reportType = "GET_X", marketplaceIds = json.array() } }))
  end)

  it("checks date-times at any depth, turning Unix seconds into ISO 8601", function()
    local b = order()
    b.displayableOrderDate = "21/11/2026"
    assert.equal(MCF .. "body.displayableOrderDate must be an ISO 8601 date-time such as 2024-01-02T03:04:05Z, "
      .. "or Unix seconds (got \"21/11/2026\")", refusal("fulfillment_outbound", "createFulfillmentOrder", { body = b }))
    b.displayableOrderDate = 1700000000
    local r = build("fulfillment_outbound", "createFulfillmentOrder", { body = b })
    assert.equal("2023-11-14T22:13:20Z", json.decode(r.body).displayableOrderDate)
    assert.equal(1700000000, b.displayableOrderDate) -- the caller's table is not changed
  end)

  it("sends an empty list where the model has an array as [], not {}", function()
    local b = order()
    b.notificationEmails = {}
    local r = build("fulfillment_outbound", "createFulfillmentOrder", { body = b })
    assert.truthy(r.body:find('"notificationEmails":[]', 1, true), r.body)
    assert.is_nil(getmetatable(b.notificationEmails))
  end)

  it("names the key the body was given under", function()
    local payload = { supplySourceCode = "SRC-1", alias = "Main",
      address = { name = "W", addressLine1 = "x", stateOrRegion = "WA", countryCode = 1 } }
    assert.equal("spapi: supply_sources.createSupplySource: payload.address.countryCode must be a string (got number)",
      refusal("supply_sources", "createSupplySource", { payload = payload }))
    assert.equal("spapi: supply_sources.createSupplySource: body.address.countryCode must be a string (got number)",
      refusal("supply_sources", "createSupplySource", { body = payload }))
  end)

  it("raises at the caller's line through build, as every programmer error does", function()
    local b = order()
    b.items[1].quantity = "1"
    local line = debug.getinfo(1, "l").currentline + 1
    local ok, err = pcall(function() build("fulfillment_outbound", "createFulfillmentOrder", { body = b }) end)
    assert.is_false(ok)
    assert.equal("spec/request/validate_spec.lua:" .. line .. ": " .. MCF
      .. "body.items[1].quantity must be an integer (got string)", err:match("spec/request/validate_spec%.lua:.*$"))
  end)
end)

describe("validate.check (decoded JSON, such as a response body)", function()
  local validate = require "spapi.validate"
  local mcf = require "spapi.schemas.fulfillment_outbound"
  local schema = mcf.operations.getFulfillmentOrder.responses["200"]

  it("accepts a body that follows the response schema and names the first field that does not", function()
    local body = json.decode([[{"payload":{"fulfillmentOrder":{"sellerFulfillmentOrderId":"O1",
      "marketplaceId":"ATVPDKIKX0DER","displayableOrderId":"O1","displayableOrderDate":"2026-11-21T10:00:00Z",
      "displayableOrderComment":"c","shippingSpeedCategory":"Standard","destinationAddress":{"name":"N",
      "addressLine1":"1 Main St","countryCode":"US","postalCode":"98101","stateOrRegion":"WA"},
      "fulfillmentOrderStatus":"Received","statusUpdatedDate":"2026-11-21T10:00:00Z",
      "receivedDate":"2026-11-21T10:00:00Z"},
      "fulfillmentOrderItems":[],"fulfillmentShipments":[],"returnItems":[],"returnAuthorizations":[]}}]])
    assert.same({ true }, { validate.check(mcf.definitions, schema, body, "getFulfillmentOrder 200") })
    body.payload.fulfillmentOrder.receivedDate = 1700000000 -- a response has no Unix seconds
    assert.same({ nil, "spapi: getFulfillmentOrder 200: body.payload.fulfillmentOrder.receivedDate must be a "
      .. "date-time string or Unix seconds (got number)" },
      { validate.check(mcf.definitions, schema, body, "getFulfillmentOrder 200") })
    body.payload.fulfillmentOrder.receivedDate = "2026-11-21T10:00:00Z"
    body.payload.fulfillmentOrderItems = { { sellerSku = "S", quantity = 1, cancelledQuantity = 0,
      unfulfillableQuantity = 0 } }
    assert.equal("spapi: x: body.payload.fulfillmentOrderItems[1] is missing required property "
      .. "'sellerFulfillmentOrderItemId'", select(2, validate.check(mcf.definitions, schema, body, "x")))
    body.payload.fulfillmentOrderItems = nil
    assert.equal("spapi: x: body.payload is missing required property 'fulfillmentOrderItems'",
      select(2, validate.check(mcf.definitions, schema, body, "x")))
  end)
end)

describe("the models' own example requests", function()
  local it = H.it_with_models(it) -- the examples are in Amazon's raw models only
  -- x-amzn-api-sandbox examples: the 2xx ones are requests Amazon accepts; a
  -- few 400 ones are requests Amazon refuses for a value the model rules out
  local function each_example(fn)
    H.each_operation(function(_, api, op_name, op)
      local f = assert(io.open(H.models .. "/" .. api.model, "rb"))
      local doc = assert(cjson.decode(f:read("*a")))
      f:close()
      local mop = doc.paths[op.path][op.method:lower()]
      for code, resp in pairs(mop.responses) do
        local sb = resp["x-amzn-api-sandbox"]
        for _, ex in ipairs(sb and sb.static or {}) do
          local params = {}
          for name, p in pairs(ex.request and ex.request.parameters or {}) do params[name] = p.value end
          fn(api, op_name, op, tonumber(code), params)
        end
      end
    end)
  end

  it("pass when Amazon answers them 2xx", function()
    local passed = 0
    each_example(function(api, op_name, op, code, params)
      local complete = true
      for _, p in ipairs(op.params) do if p.required and params[p.name] == nil then complete = false end end
      if code < 300 and complete then
        local r, msg = request.try(api, op_name, deep_copy(params))
        assert(r, msg)
        passed = passed + 1
      end
    end)
    assert.is_true(passed >= 20, passed .. " examples")
  end)

  it("are refused, naming the field, when Amazon answers 400 for a value the model rules out", function()
    local refused = {}
    each_example(function(api, op_name, _, code, params)
      if code == 400 then
        local _, msg = request.try(api, op_name, deep_copy(params))
        if msg then refused[api.api .. "." .. op_name] = msg end
      end
    end)
    assert.equal("spapi: tokens.createRestrictedDataToken: body.restrictedResources[1].method must be one of "
      .. "GET, PUT, POST, DELETE (got \"\")", refused["tokens.createRestrictedDataToken"])
    assert.equal("spapi: vendor_df_payments.submitInvoice: body.invoices[1] is missing required property "
      .. "'invoiceTotal'", refused["vendor_df_payments.submitInvoice"])
  end)
end)

describe("header parameters", function()
  local function add(token)
    return { ["x-amzn-idempotency-token"] = token,
      body = { inventoryItems = { { sellerSku = "S", marketplaceId = "M", quantity = 1 } } } }
  end

  it("refuse a NUL, CR or LF, naming the parameter and the operation", function()
    for _, bad in ipairs({ "tok\r\nX-Injected: 1", "tok\nX", "tok\rX", "tok\0X" }) do
      assert.equal("spapi: fba_inventory.addInventory: parameter 'x-amzn-idempotency-token' must not contain "
        .. "a NUL, CR or LF", refusal("fba_inventory", "addInventory", add(bad)))
    end
    assert.equal("tok-1", build("fba_inventory", "addInventory", add("tok-1")).headers["x-amzn-idempotency-token"])
  end)

  it("with a NUL, CR or LF raise in a client call before a token is fetched or anything is sent", function()
    local srv = H.mock_api()
    local sp = srv.client()
    for _, bad in ipairs({ "tok\r\nX-Injected: 1", "tok\0X" }) do
      local ok, err = pcall(sp.fba_inventory.addInventory, add(bad))
      assert.is_false(ok)
      assert.matches("fba_inventory.addInventory: parameter 'x-amzn-idempotency-token' must not contain a NUL, CR or LF",
        err, 1, true)
    end
    assert.equal(0, srv.counters().lwa_calls)
    assert.equal(0, srv.counters().requests)
    assert(sp.fba_inventory.addInventory(add("tok-1")))
    assert.equal(1, srv.counters().lwa_calls)
  end)
end)
