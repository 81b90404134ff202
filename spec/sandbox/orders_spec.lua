-- Orders v0 and 2026-01-01 against a real sandbox, through spapi.client (the
-- restricted data tokens are fetched by the client): getOrders' filters and
-- parameter rules, the order's items and PII, and the state it shares with
-- Merchant Fulfillment (a label ships items) and feeds (an order fulfillment
-- feed ships the order). Every 2xx body is checked against the model.
local H = require "helpers"
local schema = require "sandbox.schema"

local MP = "ATVPDKIKX0DER"
local MFN = "/mfn/v0"

describe("sandbox: Orders", function()
  local sandbox, sp, token, mfn_rdt

  local function client(extra)
    local cfg = { env = false, endpoint = sandbox.endpoint, lwa_endpoint = sandbox.lwa_endpoint,
      client_id = "amzn1.application-oa2-client.orders", client_secret = "s", refresh_token = "Atzr|orders-spec",
      retry_base = 0.05, retry_cap = 0.3 }
    for k, v in pairs(extra or {}) do cfg[k] = v end
    return assert(require("spapi").client(cfg))
  end

  -- a call whose 2xx body must follow the model
  local function call(name, params, opts)
    local body, resp = sp:call(name, params, opts)
    if body and resp.status ~= 204 then
      local op = sp:operation(name)
      local path = op.path:gsub("{(%w+)}", function(n) return params[n] end)
      schema.assert_valid(op.method, path, resp.status, body)
    end
    return body, resp
  end

  local function now() return assert(sandbox.control("/_sandbox/clock")).now end
  local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t)) end
  local function advance(s) assert(sandbox.control("/_sandbox/clock", { advance = s })) end

  local n = 0
  local function new_order(items, o)
    o = o or {}
    n = n + 1
    local id = string.format("114-%07d-%07d", 4440000 + n, 7654321)
    local list = {}
    for i, it in ipairs(items) do list[i] = { OrderItemId = it[1], Quantity = it[2], ASIN = "B0ORD" .. i, price = 5 } end
    local args = { AmazonOrderId = id, items = list }
    for k, v in pairs(o) do args[k] = v end
    assert(sandbox.control("/_sandbox/programs/orders/order", args))
    return id
  end

  local function status_of(id)
    local body = assert(call("orders.getOrder", { orderId = id }))
    return body.payload.OrderStatus, body.payload
  end

  local function label(order, items)
    local list = {}
    for i, it in ipairs(items) do list[i] = { OrderItemId = it[1], Quantity = it[2] } end
    local st, _, body, raw = H.sandbox_http("POST", MFN .. "/shipments", { token = mfn_rdt, body = {
      ShippingServiceId = "USPS_PTP_PRI", ShipmentRequestDetails = {
        AmazonOrderId = order, ItemList = list,
        ShipFromAddress = { Name = "John Doe", AddressLine1 = "300 Turnbull Ave", Email = "jdoe@example.com",
          City = "Detroit", StateOrProvinceCode = "MI", PostalCode = "48123", CountryCode = "US", Phone = "7132341234" },
        PackageDimensions = { Length = 10, Width = 8, Height = 4, Unit = "inches" }, Weight = { Value = 12, Unit = "oz" },
        ShippingServiceOptions = { DeliveryExperience = "DeliveryConfirmationWithoutSignature", CarrierWillPickUp = false } } } })
    assert.equal(200, st, raw)
    return body.payload
  end

  setup(function()
    sandbox = H.sandbox{ reset = true }
    assert(sandbox.control("/_sandbox/config", { rate_scale = 100 }))
    sp = client()
    token = H.sandbox_token()
    mfn_rdt = H.sandbox_rdt({ { method = "POST", path = MFN .. "/shipments" },
                              { method = "DELETE", path = MFN .. "/shipments/{shipmentId}" } }, token)
  end)

  teardown(function()
    if sandbox then sandbox.control("/_sandbox/config", { rate_scale = 1 }) end
  end)

  it("lists the seeded orders by status, fulfillment channel and creation date", function()
    local t = now()
    local body = assert(call("orders.getOrders", { MarketplaceIds = { MP }, CreatedAfter = iso(t - 7 * 86400) }))
    local ids = {}
    for _, o in ipairs(body.payload.Orders) do ids[o.AmazonOrderId] = o end
    -- US orders only, oldest first, with the buyer's data (the client used an RDT)
    assert.is_nil(ids["701-2345678-9012345"])
    assert.equal("Jane Smith", ids["902-1845936-5435065"].ShippingAddress.Name)
    assert.is_string(ids["902-1845936-5435065"].BuyerInfo.BuyerEmail)
    for i = 2, #body.payload.Orders do
      assert.is_true(body.payload.Orders[i - 1].PurchaseDate <= body.payload.Orders[i].PurchaseDate)
    end
    assert.equal("AFN", ids["112-0000001-0000001"].FulfillmentChannel)
    assert.equal("Shipped", ids["112-0000001-0000001"].OrderStatus)
    -- the model's example labels cover one item of 903-...: partly shipped
    assert.equal("PartiallyShipped", ids["903-5563053-5647845"].OrderStatus)
    assert.equal(2, ids["903-5563053-5647845"].NumberOfItemsShipped)
    assert.equal(1, ids["903-5563053-5647845"].NumberOfItemsUnshipped)

    body = assert(call("orders.getOrders", { MarketplaceIds = { MP }, CreatedAfter = iso(t - 7 * 86400),
      OrderStatuses = { "Unshipped", "PartiallyShipped" }, FulfillmentChannels = { "MFN" } }))
    local got = {}
    for _, o in ipairs(body.payload.Orders) do got[#got + 1] = o.AmazonOrderId end
    assert.same({ "902-1845936-5435065", "903-5563053-5647845", "114-3941689-8772232", "111-7700012-3456789" }, got)

    body = assert(call("orders.getOrders", { MarketplaceIds = { MP }, CreatedAfter = iso(t - 7 * 86400),
      FulfillmentChannels = { "AFN" } }))
    assert.equal(1, #body.payload.Orders)
    body = assert(call("orders.getOrders", { MarketplaceIds = { MP }, CreatedAfter = iso(t - 7 * 86400),
      OrderStatuses = { "Canceled", "Pending" } }))
    assert.equal(2, #body.payload.Orders)
    -- created in the last 13 hours: the Dutch oven (12 h), the pending and the cancelled order
    -- (Unix seconds: the model says "ISO 8601" in words, the generated table says date-time)
    body = assert(call("orders.getOrders", { MarketplaceIds = { MP }, CreatedAfter = t - 13 * 3600 }))
    assert.equal(3, #body.payload.Orders)
    -- ... and before 5 hours ago
    body = assert(call("orders.getOrders", { MarketplaceIds = { MP }, CreatedAfter = iso(t - 13 * 3600),
      CreatedBefore = iso(t - 5 * 3600) }))
    assert.equal(2, #body.payload.Orders)
    assert.equal(os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t - 5 * 3600)), body.payload.CreatedBefore)
  end)

  it("pages with MaxResultsPerPage and NextToken (sp:each)", function()
    local t = now()
    local seen = {}
    for o, err in sp:each("orders.getOrders", { MarketplaceIds = { MP }, CreatedAfter = iso(t - 7 * 86400),
                                                MaxResultsPerPage = 2 }) do
      assert(o, tostring(err))
      seen[#seen + 1] = o.AmazonOrderId
    end
    local all = assert(call("orders.getOrders", { MarketplaceIds = { MP }, CreatedAfter = iso(t - 7 * 86400) }))
    assert.is_true(#seen > 2)
    assert.equal(#all.payload.Orders, #seen)
    local first = assert(call("orders.getOrders", { MarketplaceIds = { MP }, CreatedAfter = iso(t - 7 * 86400),
      MaxResultsPerPage = 2 }))
    assert.equal(2, #first.payload.Orders)
    assert.is_string(first.payload.NextToken)
  end)

  it("enforces the model's notes on getOrders' parameters", function()
    local t = now()
    local function refused(params, pattern)
      params.MarketplaceIds = params.MarketplaceIds or { MP }
      local body, err = sp:call("orders.getOrders", params)
      assert.is_nil(body)
      assert.equal(400, err.status)
      assert.equal("InvalidInput", err.code)
      assert.matches(pattern, err.message, 1, true)
    end
    refused({}, "Either CreatedAfter or LastUpdatedAfter is required")
    refused({ CreatedAfter = iso(t - 3600), LastUpdatedAfter = iso(t - 3600)}, "cannot be set when CreatedAfter is set")
    refused({ LastUpdatedAfter = iso(t - 3600), CreatedBefore = iso(t - 600)}, "cannot be set when LastUpdatedAfter is set")
    refused({ CreatedAfter = iso(t - 3600), CreatedBefore = iso(t - 60)}, "at least two minutes before the current time")
    refused({ CreatedAfter = iso(t - 3600), CreatedBefore = iso(t - 7200)}, "must be equal to or after CreatedAfter")
    refused({ CreatedAfter = iso(t - 3600), SellerOrderId = "S-1", OrderStatuses = { "Shipped" } },
      "If SellerOrderId is specified")
    refused({ CreatedAfter = iso(t - 3600), MaxResultsPerPage = 101 }, "MaxResultsPerPage must be 1 - 100")
    refused({ CreatedAfter = iso(t - 3600), NextToken = "bm9wZQ==" }, "NextToken is not valid")
  end)

  it("needs a restricted data token for orders; gives items, address and buyer", function()
    local st = H.sandbox_http("GET", "/orders/v0/orders/902-1845936-5435065", { token = token })
    assert.equal(403, st)
    local body = assert(call("orders.getOrderItems", { orderId = "902-1845936-5435065" }))
    assert.equal(2, #body.payload.OrderItems)
    assert.equal("52986411826454", body.payload.OrderItems[1].OrderItemId)
    assert.equal(1, body.payload.OrderItems[1].QuantityOrdered)
    assert.equal(0, body.payload.OrderItems[1].QuantityShipped)
    assert.equal("36.00", body.payload.OrderItems[2].ItemPrice.Amount) -- 2 x 18.00
    body = assert(call("orders.getOrderAddress", { orderId = "902-1845936-5435065" }))
    assert.equal("10 Columbus Cir", body.payload.ShippingAddress.AddressLine1)
    assert.equal("NY", body.payload.ShippingAddress.StateOrRegion)
    body = assert(call("orders.getOrderBuyerInfo", { orderId = "902-1845936-5435065" }))
    assert.equal("Jane Smith", body.payload.BuyerName)
    assert(call("orders.getOrderItemsBuyerInfo", { orderId = "902-1845936-5435065" }))
    -- no regulated items, no in-store pickup in the sandbox: refused as Amazon does
    local none, rerr = sp.orders.getOrderRegulatedInfo{ orderId = "902-1845936-5435065" }
    assert.is_nil(none)
    assert.matches("does not have regulated items", rerr.message, 1, true)
    none, rerr = sp.orders.updateShipmentStatus{ orderId = "902-1845936-5435065",
      body = { marketplaceId = MP, shipmentStatus = "ReadyForPickup" } }
    assert.is_nil(none)
    assert.matches("not an in-store pickup", rerr.message, 1, true)
    local nobody, err = sp.orders.getOrder{ orderId = "999-0000000-0000000" }
    assert.is_nil(nobody)
    assert.equal(404, err.status)
    assert.equal("NotFound", err.code)
  end)

  it("moves an order to Shipped when labels cover its items, and back when one is cancelled", function()
    local id = new_order({ { "8001", 1 }, { "8002", 2 } })
    assert.equal("Unshipped", (status_of(id)))
    label(id, { { "8001", 1 } })
    assert.equal("PartiallyShipped", (status_of(id)))
    local sh = label(id, { { "8002", 2 } })
    local status, o = status_of(id)
    assert.equal("Shipped", status)
    assert.equal(3, o.NumberOfItemsShipped)
    local items = assert(call("orders.getOrderItems", { orderId = id })).payload.OrderItems
    assert.equal(2, items[2].QuantityShipped)
    -- the update is what LastUpdatedAfter finds, once outside the last two minutes
    local t = now()
    advance(180)
    local body = assert(call("orders.getOrders", { MarketplaceIds = { MP }, LastUpdatedAfter = iso(t - 5),
      OrderStatuses = { "Shipped" } }))
    assert.equal(1, #body.payload.Orders)
    assert.equal(id, body.payload.Orders[1].AmazonOrderId)
    assert.is_string(body.payload.LastUpdatedBefore)
    -- a refunded label unships its items
    local st = H.sandbox_http("DELETE", MFN .. "/shipments/" .. sh.ShipmentId, { token = mfn_rdt })
    assert.equal(200, st)
    assert.equal("PartiallyShipped", (status_of(id)))
  end)

  it("control: a seller-fulfilled order created Shipped has a package; PartiallyShipped is refused", function()
    local id = new_order({ { "8401", 2 } }, { OrderStatus = "Shipped" })
    local status, o = status_of(id)
    assert.equal("Shipped", status)
    assert.equal(2, o.NumberOfItemsShipped)
    local ok, err = sandbox.control("/_sandbox/programs/orders/order", { AmazonOrderId = "114-0000000-0000009",
      items = { { OrderItemId = "1", Quantity = 1 } }, OrderStatus = "PartiallyShipped" })
    assert.is_nil(ok)
    assert.matches("confirmShipment", tostring(err), 1, true)
  end)

  it("confirmShipment ships items once; the same package again is accepted, more is refused", function()
    local id = new_order({ { "8101", 2 } })
    local pkg = { packageReferenceId = "1", carrierCode = "UPS", carrierName = "UPS", shippingMethod = "Ground",
      trackingNumber = "1Z999AA10123456784", shipDate = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(now())),
      orderItems = { { orderItemId = "8101", quantity = 1 } } }
    local _, resp = assert(call("orders.confirmShipment", { orderId = id, body = { marketplaceId = MP, packageDetail = pkg } }))
    assert.equal(204, resp.status)
    assert.equal("PartiallyShipped", (status_of(id)))
    assert(call("orders.confirmShipment", { orderId = id, body = { marketplaceId = MP, packageDetail = pkg } }))
    assert.equal("PartiallyShipped", (status_of(id)))
    local other = { packageReferenceId = "1", carrierCode = "UPS", trackingNumber = "1ZOTHER", shipDate = pkg.shipDate,
      orderItems = { { orderItemId = "8101", quantity = 1 } } }
    local body, err = sp.orders.confirmShipment{ orderId = id, body = { marketplaceId = MP, packageDetail = other } }
    assert.is_nil(body)
    assert.equal("InvalidInput", err.code)
    assert.matches("packageReferenceId 1 is already used", err.message, 1, true)
    other.packageReferenceId, other.orderItems[1].quantity = "2", 2
    body, err = sp.orders.confirmShipment{ orderId = id, body = { marketplaceId = MP, packageDetail = other } }
    assert.is_nil(body)
    assert.matches("has 1 unshipped of item 8101", err.message, 1, true)
    other.orderItems[1].quantity = 1
    assert(call("orders.confirmShipment", { orderId = id, body = { marketplaceId = MP, packageDetail = other } }))
    assert.equal("Shipped", (status_of(id)))
    -- a label for shipped items is refused
    local st, _, eb = H.sandbox_http("POST", MFN .. "/shipments", { token = mfn_rdt, body = {
      ShippingServiceId = "USPS_PTP_PRI", ShipmentRequestDetails = {
        AmazonOrderId = id, ItemList = { { OrderItemId = "8101", Quantity = 1 } },
        ShipFromAddress = { Name = "John Doe", AddressLine1 = "300 Turnbull Ave", Email = "jdoe@example.com",
          City = "Detroit", StateOrProvinceCode = "MI", PostalCode = "48123", CountryCode = "US", Phone = "7132341234" },
        PackageDimensions = { Length = 10, Width = 8, Height = 4, Unit = "inches" }, Weight = { Value = 12, Unit = "oz" },
        ShippingServiceOptions = { DeliveryExperience = "DeliveryConfirmationWithoutSignature", CarrierWillPickUp = false } } } })
    assert.equal(400, st)
    assert.equal("ShipmentAlreadyExists", eb.errors[1].code)
  end)

  it("confirming a bought label's tracking number does not ship its items twice", function()
    local id = new_order({ { "8201", 1 }, { "8202", 1 } })
    local sh = label(id, { { "8201", 1 } })
    local pkg = { packageReferenceId = sh.ShipmentId, carrierCode = "USPS", trackingNumber = sh.TrackingId,
      shipDate = sh.ShippingService.ShipDate, orderItems = { { orderItemId = "8201", quantity = 1 } } }
    assert(call("orders.confirmShipment", { orderId = id, body = { marketplaceId = MP, packageDetail = pkg } }))
    local status, o = status_of(id)
    assert.equal("PartiallyShipped", status)
    assert.equal(1, o.NumberOfItemsShipped)
    -- an AFN order takes no confirmation
    local body, err = sp.orders.confirmShipment{ orderId = "112-0000001-0000001", body = { marketplaceId = MP,
      packageDetail = { packageReferenceId = "1", carrierCode = "UPS", trackingNumber = "X", shipDate = pkg.shipDate,
        orderItems = { { orderItemId = "30000000000001", quantity = 1 } } } } }
    assert.is_nil(body)
    assert.matches("fulfilled by Amazon", err.message, 1, true)
  end)

  it("a POST_ORDER_FULFILLMENT_DATA feed moves the order to Shipped", function()
    local id = new_order({ { "8301", 1 } })
    local doc = assert(call("feeds.createFeedDocument", { body = { contentType = "text/xml; charset=UTF-8" } }))
    assert(sp:upload_document(doc, [[<?xml version="1.0" encoding="utf-8"?>
<AmazonEnvelope><Header><DocumentVersion>1.01</DocumentVersion><MerchantIdentifier>M1</MerchantIdentifier></Header>
<MessageType>OrderFulfillment</MessageType><Message><MessageID>1</MessageID><OrderFulfillment>
<AmazonOrderID>]] .. id .. [[</AmazonOrderID><FulfillmentDate>2026-01-01T00:00:00Z</FulfillmentDate>
<FulfillmentData><CarrierCode>UPS</CarrierCode><ShippingMethod>Ground</ShippingMethod>
<ShipperTrackingNumber>1ZFEED</ShipperTrackingNumber></FulfillmentData></OrderFulfillment></Message></AmazonEnvelope>]],
      "text/xml; charset=UTF-8"))
    local feed = assert(call("feeds.createFeed", { body = { feedType = "POST_ORDER_FULFILLMENT_DATA",
      marketplaceIds = { MP }, inputFeedDocumentId = doc.feedDocumentId } }))
    assert.equal("Unshipped", (status_of(id)))
    advance(600)
    local f = assert(call("feeds.getFeed", { feedId = feed.feedId }))
    assert.equal("DONE", f.processingStatus)
    assert.equal("Shipped", (status_of(id)))
  end)

  describe("2026-01-01", function()
    it("searchOrders filters by fulfilledBy and fulfillmentStatuses; PII only with an RDT", function()
      local t = now()
      local body = assert(call("orders_2026.searchOrders", { createdAfter = iso(t - 7 * 86400), marketplaceIds = { MP },
        fulfilledBy = { "MERCHANT" }, fulfillmentStatuses = { "UNSHIPPED" },
        includedData = { "BUYER", "RECIPIENT", "FULFILLMENT", "PROCEEDS", "PACKAGES" } }))
      assert.is_true(#body.orders >= 2)
      for _, o in ipairs(body.orders) do
        assert.equal("UNSHIPPED", o.fulfillment.fulfillmentStatus)
        assert.equal("MERCHANT", o.fulfillment.fulfilledBy)
        assert.is_nil(o.buyer)
        assert.is_nil(o.recipient.deliveryAddress.name)
        assert.is_string(o.recipient.deliveryAddress.postalCode)
      end
      body = assert(call("orders_2026.getOrder", { orderId = "902-1845936-5435065",
        includedData = { "BUYER", "RECIPIENT" } }, { rdt = true }))
      assert.equal("Jane Smith", body.order.buyer.buyerName)
      assert.equal("10 Columbus Cir", body.order.recipient.deliveryAddress.addressLine1)
      assert.equal(2, #body.order.orderItems)
      assert.is_nil(body.order.fulfillment) -- not asked for
      body = assert(call("orders_2026.getOrder", { orderId = "903-5563053-5647845", includedData = { "PACKAGES", "FULFILLMENT" } }))
      assert.equal("PARTIALLY_SHIPPED", body.order.fulfillment.fulfillmentStatus)
      assert.equal(2, #body.order.packages)
      local _, err = sp.orders_2026.searchOrders{ createdAfter = iso(t - 3600), lastUpdatedAfter = iso(t - 3600)}
      assert.equal(400, err.status)
      assert.matches("lastUpdatedAfter and lastUpdatedBefore cannot be set when createdAfter is set", err.message, 1, true)
    end)
  end)
end)
