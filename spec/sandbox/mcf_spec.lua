-- Multi-Channel Fulfillment (Fulfillment Outbound 2020-07-01) against a real
-- sandbox over plain HTTP: preview → create → duplicate create → status over
-- (advanced) time → shipment, package, tracking → list paging → cancel rules,
-- returns, features, and the shared FBA inventory.
local H = require "helpers"
local schema = require "sandbox.schema"

local BASE = "/fba/outbound/2020-07-01"
local MP = "ATVPDKIKX0DER"

local ADDRESS = { name = "Jane Doe", addressLine1 = "410 Terry Ave N", city = "Seattle", stateOrRegion = "WA",
  postalCode = "98109", countryCode = "US", phone = "+1 206 555 0100" }

local function order_body(id, items, extra)
  local b = {
    marketplaceId = MP, sellerFulfillmentOrderId = id, displayableOrderId = id,
    displayableOrderDate = "2026-11-20T10:00:00Z", displayableOrderComment = "Thank you for your order",
    shippingSpeedCategory = "Standard", destinationAddress = ADDRESS,
    items = items or { { sellerSku = "SKU-RED-MUG", sellerFulfillmentOrderItemId = id .. "-1", quantity = 2 } },
  }
  for k, v in pairs(extra or {}) do b[k] = v end
  return b
end

describe("sandbox: MCF", function()
  local sb, token

  local function http(method, path, o)
    o = o or {}
    o.token = o.token or token
    local status, headers, body, raw = H.sandbox_http(method, path, o)
    assert(status, headers)
    if status < 300 then schema.assert_valid(method, path, status, body) end
    return status, body, headers, raw
  end

  local function advance(seconds) assert(sb.control("/_sandbox/clock", { advance = seconds })) end

  local function fulfillable(sku)
    local _, body = http("GET", "/fba/inventory/v1/summaries", { query = {
      granularityType = "Marketplace", granularityId = MP, marketplaceIds = MP, details = "true", sellerSkus = sku } })
    local s = body.payload.inventorySummaries[1]
    return s.inventoryDetails.fulfillableQuantity, s.inventoryDetails.reservedQuantity.totalReservedQuantity
  end

  before_each(function()
    sb = H.sandbox{ reset = true }
    -- the flows here make more calls per second than the models' burst allows;
    -- throttling has its own spec
    assert(sb.control("/_sandbox/config", { rate_scale = 100 }))
    token = H.sandbox_token()
  end)

  it("previews every shipping speed with fees and dates, and flags unfulfillable SKUs", function()
    local status, body, headers = http("POST", BASE .. "/fulfillmentOrders/preview", { body = {
      marketplaceId = MP, address = ADDRESS,
      items = { { sellerSku = "SKU-RED-MUG", sellerFulfillmentOrderItemId = "i1", quantity = 2 } } } })
    assert.equal(200, status)
    assert.equal("200.0", headers["x-amzn-ratelimit-limit"]) -- the model's 2 per second × rate_scale 100
    local previews = body.payload.fulfillmentPreviews
    assert.equal(3, #previews)
    local speeds = {}
    for _, p in ipairs(previews) do
      speeds[p.shippingSpeedCategory] = p
      assert.is_true(p.isFulfillable)
      assert.equal(MP, p.marketplaceId)
      assert.equal("USD", p.estimatedFees[1].amount.currencyCode)
      local sh = p.fulfillmentPreviewShipments[1]
      assert.is_string(sh.earliestArrivalDate)
      assert.equal("SKU-RED-MUG", sh.fulfillmentPreviewItems[1].sellerSku)
      assert.same({}, p.unfulfillablePreviewItems)
    end
    assert.truthy(speeds.Standard and speeds.Expedited and speeds.Priority)
    -- faster costs more
    assert.is_true(tonumber(speeds.Priority.estimatedFees[1].amount.value)
      > tonumber(speeds.Standard.estimatedFees[1].amount.value))

    status, body = http("POST", BASE .. "/fulfillmentOrders/preview", { body = {
      marketplaceId = MP, address = ADDRESS, shippingSpeedCategories = { "Standard" },
      items = { { sellerSku = "SKU-LOW-STOCK", sellerFulfillmentOrderItemId = "i1", quantity = 5 },
                { sellerSku = "NO-SUCH-SKU", sellerFulfillmentOrderItemId = "i2", quantity = 1 } } } })
    assert.equal(200, status)
    local p = body.payload.fulfillmentPreviews[1]
    assert.is_false(p.isFulfillable)
    assert.equal(2, #p.unfulfillablePreviewItems)
    assert.same({ "InvalidSKU", "InventoryUnavailable" }, p.orderUnfulfillableReasons)
  end)

  it("rejects a preview without an address", function()
    local status, body = http("POST", BASE .. "/fulfillmentOrders/preview", { body = {
      items = { { sellerSku = "SKU-RED-MUG", sellerFulfillmentOrderItemId = "i1", quantity = 1 } } } })
    assert.equal(400, status)
    assert.equal("InvalidInput", body.errors[1].code)
  end)

  it("runs an order from creation to delivery", function()
    local before = fulfillable("SKU-RED-MUG")
    local status, body = http("POST", BASE .. "/fulfillmentOrders", { body = order_body("MCF-FLOW-1") })
    assert.equal(200, status)
    -- the same id again is a duplicate (400, as the model documents), the same request or not
    status, body = http("POST", BASE .. "/fulfillmentOrders", { body = order_body("MCF-FLOW-1") })
    assert.equal(400, status)
    assert.equal("InvalidInput", body.errors[1].code)
    assert.matches("already exists", body.errors[1].message)
    status, body = http("POST", BASE .. "/fulfillmentOrders", { body = order_body("MCF-FLOW-1", {
      { sellerSku = "SKU-RED-MUG", sellerFulfillmentOrderItemId = "MCF-FLOW-1-1", quantity = 3 } }) })
    assert.equal(400, status)
    assert.equal("InvalidInput", body.errors[1].code)
    assert.matches("already exists", body.errors[1].message)
    -- units reserved once
    local now_fulfillable, reserved = fulfillable("SKU-RED-MUG")
    assert.equal(before - 2, now_fulfillable)
    assert.equal(2, reserved)

    local function get()
      local st, b = http("GET", BASE .. "/fulfillmentOrders/MCF-FLOW-1")
      assert.equal(200, st)
      return b.payload
    end
    local p = get()
    assert.equal("Received", p.fulfillmentOrder.fulfillmentOrderStatus)
    assert.equal("MCF-FLOW-1", p.fulfillmentOrder.sellerFulfillmentOrderId)
    assert.equal(2, p.fulfillmentOrderItems[1].quantity)
    assert.same({}, p.fulfillmentShipments)
    assert.same({}, p.returnItems)

    advance(600)
    assert.equal("Planning", get().fulfillmentOrder.fulfillmentOrderStatus)
    advance(1800)
    p = get()
    assert.equal("Processing", p.fulfillmentOrder.fulfillmentOrderStatus)
    assert.equal("PENDING", p.fulfillmentShipments[1].fulfillmentShipmentStatus)
    assert.is_nil(p.fulfillmentShipments[1].fulfillmentShipmentPackage)

    -- too late to cancel
    status, body = http("PUT", BASE .. "/fulfillmentOrders/MCF-FLOW-1/cancel")
    assert.equal(400, status)
    assert.matches("cannot be cancelled", body.errors[1].message)

    advance(7200)
    p = get()
    assert.equal("Complete", p.fulfillmentOrder.fulfillmentOrderStatus)
    local shipment = p.fulfillmentShipments[1]
    assert.equal("SHIPPED", shipment.fulfillmentShipmentStatus)
    local pkg = shipment.fulfillmentShipmentPackage[1]
    assert.is_number(pkg.packageNumber)
    assert.matches("^TBA%d+$", pkg.trackingNumber)
    assert.equal(pkg.packageNumber, shipment.fulfillmentShipmentItem[1].packageNumber)
    -- shipped units left the inventory
    local f2, r2 = fulfillable("SKU-RED-MUG")
    assert.equal(before - 2, f2)
    assert.equal(0, r2)

    -- cancelling a shipped order is refused as well
    status, body = http("PUT", BASE .. "/fulfillmentOrders/MCF-FLOW-1/cancel")
    assert.equal(400, status)
    assert.equal("InvalidInput", body.errors[1].code)

    status, body = http("GET", BASE .. "/tracking", { query = { packageNumber = pkg.packageNumber } })
    assert.equal(200, status)
    assert.equal(pkg.trackingNumber, body.payload.trackingNumber)
    assert.equal("IN_TRANSIT", body.payload.currentStatus)
    assert.equal("Seattle", body.payload.shipToAddress.city)
    assert.equal("EVENT_101", body.payload.trackingEvents[1].eventCode)

    advance(4 * 86400)
    status, body = http("GET", BASE .. "/tracking", { query = { packageNumber = pkg.packageNumber } })
    assert.equal(200, status)
    assert.equal("DELIVERED", body.payload.currentStatus)

    -- a return after delivery
    status, body = http("GET", BASE .. "/returnReasonCodes", { query = { sellerSku = "SKU-RED-MUG",
      sellerFulfillmentOrderId = "MCF-FLOW-1", marketplaceId = MP } })
    assert.equal(200, status)
    local code = body.payload.reasonCodeDetails[1].returnReasonCode
    status, body = http("PUT", BASE .. "/fulfillmentOrders/MCF-FLOW-1/return", { body = { items = {
      { sellerReturnItemId = "R1", sellerFulfillmentOrderItemId = "MCF-FLOW-1-1",
        amazonShipmentId = shipment.amazonShipmentId, returnReasonCode = code },
      { sellerReturnItemId = "R2", sellerFulfillmentOrderItemId = "NOPE",
        amazonShipmentId = shipment.amazonShipmentId, returnReasonCode = code } } } })
    assert.equal(200, status)
    assert.equal(1, #body.payload.returnItems)
    assert.equal("New", body.payload.returnItems[1].status)
    assert.equal("InvalidValues", body.payload.invalidReturnItems[1].invalidItemReason.invalidItemReasonCode)
    assert.is_string(body.payload.returnAuthorizations[1].rmaPageURL)
    assert.equal(1, #get().returnItems)
  end)

  it("refuses unknown SKUs and orders larger than the stock", function()
    local status, body = http("POST", BASE .. "/fulfillmentOrders", { body = order_body("MCF-BAD-1", {
      { sellerSku = "NO-SUCH-SKU", sellerFulfillmentOrderItemId = "1", quantity = 1 } }) })
    assert.equal(400, status)
    assert.equal("InvalidInput", body.errors[1].code)
    assert.matches("NO%-SUCH%-SKU", body.errors[1].message)

    status, body = http("POST", BASE .. "/fulfillmentOrders", { body = order_body("MCF-BAD-2", {
      { sellerSku = "SKU-LOW-STOCK", sellerFulfillmentOrderItemId = "1", quantity = 3 } }) })
    assert.equal(400, status)
    assert.matches("Not enough", body.errors[1].message)
    assert.equal(404, (http("GET", BASE .. "/fulfillmentOrders/MCF-BAD-2")))

    -- seeded stock through the control API
    assert(sb.control("/_sandbox/seed", { inventory = { { sku = "SKU-LOW-STOCK", quantity = 10 } } }))
    status = http("POST", BASE .. "/fulfillmentOrders", { body = order_body("MCF-BAD-2", {
      { sellerSku = "SKU-LOW-STOCK", sellerFulfillmentOrderItemId = "1", quantity = 3 } }) })
    assert.equal(200, status)
    assert.equal(7, (fulfillable("SKU-LOW-STOCK")))
  end)

  it("cancels an order before processing and gives the units back", function()
    local before = fulfillable("SKU-BLUE-MUG")
    assert.equal(200, (http("POST", BASE .. "/fulfillmentOrders", { body = order_body("MCF-CANCEL-1", {
      { sellerSku = "SKU-BLUE-MUG", sellerFulfillmentOrderItemId = "1", quantity = 4 } }) })))
    assert.equal(before - 4, (fulfillable("SKU-BLUE-MUG")))
    local status = http("PUT", BASE .. "/fulfillmentOrders/MCF-CANCEL-1/cancel")
    assert.equal(200, status)
    local _, body = http("GET", BASE .. "/fulfillmentOrders/MCF-CANCEL-1")
    assert.equal("Cancelled", body.payload.fulfillmentOrder.fulfillmentOrderStatus)
    assert.equal(4, body.payload.fulfillmentOrderItems[1].cancelledQuantity)
    assert.equal(before, (fulfillable("SKU-BLUE-MUG")))
    -- time does not revive it
    advance(86400)
    _, body = http("GET", BASE .. "/fulfillmentOrders/MCF-CANCEL-1")
    assert.equal("Cancelled", body.payload.fulfillmentOrder.fulfillmentOrderStatus)
    assert.equal(404, (http("PUT", BASE .. "/fulfillmentOrders/NOT-THERE/cancel")))
  end)

  it("holds an order until it is updated to Ship", function()
    assert.equal(200, (http("POST", BASE .. "/fulfillmentOrders", { body = order_body("MCF-HOLD-1", nil,
      { fulfillmentAction = "Hold" }) })))
    advance(3 * 3600)
    local _, body = http("GET", BASE .. "/fulfillmentOrders/MCF-HOLD-1")
    assert.equal("Received", body.payload.fulfillmentOrder.fulfillmentOrderStatus)
    assert.equal("Hold", body.payload.fulfillmentOrder.fulfillmentAction)
    assert.equal(200, (http("PUT", BASE .. "/fulfillmentOrders/MCF-HOLD-1", { body = {
      fulfillmentAction = "Ship", displayableOrderComment = "Updated comment" } })))
    advance(600)
    _, body = http("GET", BASE .. "/fulfillmentOrders/MCF-HOLD-1")
    assert.equal("Planning", body.payload.fulfillmentOrder.fulfillmentOrderStatus)
    assert.equal("Updated comment", body.payload.fulfillmentOrder.displayableOrderComment)
  end)

  it("lists orders in small pages with nextToken and honours queryStartDate", function()
    for i = 1, 12 do
      assert.equal(200, (http("POST", BASE .. "/fulfillmentOrders", { body = order_body("MCF-LIST-" .. i, {
        { sellerSku = "SKU-TEE-M", sellerFulfillmentOrderItemId = "1", quantity = 1 } }) })))
    end
    local seen, pages, next_token = {}, 0, nil
    repeat
      local q = next_token and { nextToken = next_token } or { queryStartDate = "2020-01-01T00:00:00Z" }
      local status, body = http("GET", BASE .. "/fulfillmentOrders", { query = q })
      assert.equal(200, status)
      pages = pages + 1
      for _, o in ipairs(body.payload.fulfillmentOrders) do
        assert.is_nil(seen[o.sellerFulfillmentOrderId])
        seen[o.sellerFulfillmentOrderId] = o.fulfillmentOrderStatus
      end
      next_token = body.payload.nextToken
    until not next_token
    assert.is_true(pages >= 3)
    for i = 1, 12 do assert.equal("Received", seen["MCF-LIST-" .. i]) end

    local _, _, clock = H.sandbox_http("GET", "/_sandbox/clock")
    local future = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(clock.now) + 3600)
    local status, body = http("GET", BASE .. "/fulfillmentOrders", { query = { queryStartDate = future } })
    assert.equal(200, status)
    assert.same({}, body.payload.fulfillmentOrders)
    assert.equal(400, (http("GET", BASE .. "/fulfillmentOrders", { query = { nextToken = "garbage" } })))
  end)

  it("moves an order with the sandbox-only status update", function()
    assert.equal(200, (http("POST", BASE .. "/fulfillmentOrders", { body = order_body("MCF-FORCE-1") })))
    assert.equal(200, (http("PUT", BASE .. "/fulfillmentOrders/MCF-FORCE-1/status", { body = {
      fulfillmentOrderStatus = "Complete" } })))
    local _, body = http("GET", BASE .. "/fulfillmentOrders/MCF-FORCE-1")
    assert.equal("Complete", body.payload.fulfillmentOrder.fulfillmentOrderStatus)
    assert.equal("SHIPPED", body.payload.fulfillmentShipments[1].fulfillmentShipmentStatus)
  end)

  it("answers the feature endpoints", function()
    local status, body = http("GET", BASE .. "/features", { query = { marketplaceId = MP } })
    assert.equal(200, status)
    local names = {}
    for _, f in ipairs(body.payload.features) do names[f.featureName] = f end
    assert.truthy(names.BLANK_BOX)
    status, body = http("GET", BASE .. "/features/inventory/BLANK_BOX", { query = { marketplaceId = MP } })
    assert.equal(200, status)
    assert.equal("BLANK_BOX", body.payload.featureName)
    assert.is_true(#body.payload.featureSkus >= 1)
    status, body = http("GET", BASE .. "/features/inventory/BLANK_BOX/SKU-RED-MUG", { query = { marketplaceId = MP } })
    assert.equal(200, status)
    assert.is_true(body.payload.isEligible)
    status, body = http("GET", BASE .. "/features/inventory/BLANK_BOX/NOPE", { query = { marketplaceId = MP } })
    assert.equal(200, status)
    assert.is_false(body.payload.isEligible)
    assert.equal(400, (http("GET", BASE .. "/features/inventory/NO_SUCH_FEATURE", { query = { marketplaceId = MP } })))
  end)
end)

describe("sandbox: MCF 2026-07-04", function()
  local sb, token
  local B26 = "/fulfillment/outbound/2026-07-04"
  local function http(method, path, o)
    o = o or {}
    o.token = o.token or token
    local status, headers, body = H.sandbox_http(method, path, o)
    assert(status, headers)
    if status < 300 then schema.assert_valid(method, path, status, body) end
    return status, body
  end
  local function line(id, sku, n)
    return { lineItemId = id, product = { productIdentifier = { amazonSku = sku } }, amount = { unit = "EACH", value = tostring(n) } }
  end

  before_each(function()
    sb = H.sandbox{ reset = true }
    assert(sb.control("/_sandbox/config", { rate_scale = 100 }))
    token = H.sandbox_token()
  end)

  it("previews, creates idempotently, ships with tracking and refuses a late cancel", function()
    local status, body = http("POST", B26 .. "/previews", { body = {
      destination = { deliveryAddress = ADDRESS }, lineItems = { line(nil, "SKU-RED-MUG", 1) } } })
    assert.equal(200, status)
    assert.same({}, body.constraints)
    assert.equal("STANDARD", body.plannedShipments[1].offers[1].fulfillmentConfiguration.serviceLevel.serviceTier)

    local order = { orderId = "O26-1", destination = { deliveryAddress = ADDRESS },
      lineItems = { line("L1", "SKU-RED-MUG", 2) } }
    status, body = http("POST", B26 .. "/orders", { body = order })
    assert.equal(200, status)
    assert.equal("PROCESSING", body.order.status)
    assert.equal(200, (http("POST", B26 .. "/orders", { body = order })))
    order.lineItems[1].amount.value = "3"
    assert.equal(400, (http("POST", B26 .. "/orders", { body = order })))

    assert(sb.control("/_sandbox/clock", { advance = 3 * 3600 }))
    status, body = http("GET", B26 .. "/orders/O26-1")
    assert.equal(200, status)
    assert.equal("COMPLETE", body.order.status)
    local pkg = body.order.shipments[1].packages[1]
    assert.equal("IN_TRANSIT", pkg.status)
    assert.matches("^TBA", pkg.tracking.carrier.trackingNumber)
    status, body = http("PUT", B26 .. "/orders/O26-1/cancel")
    assert.equal(400, status)
    assert.equal("InvalidInput", body.errors[1].code)
    _, body = http("GET", B26 .. "/orders", { query = { updatedAfter = "2020-01-01T00:00:00Z" } })
    assert.equal("O26-1", body.orders[1].orderId)
  end)

  it("cancels an order while it is processing", function()
    assert.equal(200, (http("POST", B26 .. "/orders", { body = { orderId = "O26-2",
      destination = { deliveryAddress = ADDRESS }, lineItems = { line("L1", "SKU-TEE-M", 1) } } })))
    assert.equal(202, (http("PUT", B26 .. "/orders/O26-2/cancel")))
    local _, body = http("GET", B26 .. "/orders/O26-2")
    assert.equal("CANCELLED", body.order.status)
    assert.equal(404, (http("GET", B26 .. "/orders/NOPE")))
  end)
end)

-- The options MCF documents, with their effect: fulfillment policies, BLOCK_AMZL,
-- ScheduledDelivery with a delivery window, quantity updates, returns processed.
describe("sandbox: MCF options", function()
  local sb, token

  local function http(method, path, o)
    o = o or {}
    o.token = o.token or token
    local status, headers, body = H.sandbox_http(method, path, o)
    assert(status, headers)
    if status < 300 then schema.assert_valid(method, path, status, body) end
    return status, body
  end
  local function advance(seconds) assert(sb.control("/_sandbox/clock", { advance = seconds })) end
  local function get(id)
    local st, b = http("GET", BASE .. "/fulfillmentOrders/" .. id)
    assert.equal(200, st)
    return b.payload
  end
  local function stock(sku)
    local _, body = http("GET", "/fba/inventory/v1/summaries", { query = {
      granularityType = "Marketplace", granularityId = MP, marketplaceIds = MP, details = "true", sellerSkus = sku } })
    local d = body.payload.inventorySummaries[1].inventoryDetails
    return d.fulfillableQuantity, d.reservedQuantity.totalReservedQuantity, d.unfulfillableQuantity.totalUnfulfillableQuantity
  end
  local SHORT = { { sellerSku = "SKU-LOW-STOCK", sellerFulfillmentOrderItemId = "a", quantity = 5 },
    { sellerSku = "SKU-TEE-M", sellerFulfillmentOrderItemId = "b", quantity = 1 } }

  before_each(function()
    sb = H.sandbox{ reset = true }
    assert(sb.control("/_sandbox/config", { rate_scale = 100 }))
    token = H.sandbox_token()
  end)

  it("FillAllAvailable ships what there is and cancels the rest", function()
    assert.equal(200, (http("POST", BASE .. "/fulfillmentOrders", { body = order_body("FAA-1", SHORT,
      { fulfillmentPolicy = "FillAllAvailable" }) })))
    advance(7300)
    local p = get("FAA-1")
    assert.equal("CompletePartialled", p.fulfillmentOrder.fulfillmentOrderStatus)
    assert.equal("FillAllAvailable", p.fulfillmentOrder.fulfillmentPolicy)
    assert.equal(3, p.fulfillmentOrderItems[1].cancelledQuantity)
    assert.equal(0, p.fulfillmentOrderItems[1].unfulfillableQuantity)
    assert.equal(0, p.fulfillmentOrderItems[2].cancelledQuantity)
    assert.equal(2, p.fulfillmentShipments[1].fulfillmentShipmentItem[1].quantity)
    assert.equal("SHIPPED", p.fulfillmentShipments[1].fulfillmentShipmentStatus)
    assert.equal(0, (stock("SKU-LOW-STOCK")))
  end)

  it("FillAll ships what there is and stays Processing for the rest for 24 hours", function()
    assert.equal(200, (http("POST", BASE .. "/fulfillmentOrders", { body = order_body("FA-1", SHORT,
      { fulfillmentPolicy = "FillAll" }) })))
    advance(7300)
    local p = get("FA-1")
    assert.equal("Processing", p.fulfillmentOrder.fulfillmentOrderStatus)
    assert.equal("SHIPPED", p.fulfillmentShipments[1].fulfillmentShipmentStatus)
    assert.equal(3, p.fulfillmentOrderItems[1].unfulfillableQuantity)
    assert.equal(0, p.fulfillmentOrderItems[1].cancelledQuantity)
    advance(86400)
    p = get("FA-1")
    assert.equal("CompletePartialled", p.fulfillmentOrder.fulfillmentOrderStatus)
    -- nothing in stock at all: FillAll waits, then gives up
    assert.equal(200, (http("POST", BASE .. "/fulfillmentOrders", { body = order_body("FA-2",
      { { sellerSku = "SKU-OUT-OF-STOCK", sellerFulfillmentOrderItemId = "x", quantity = 1 } },
      { fulfillmentPolicy = "FillAll" }) })))
    advance(7300)
    p = get("FA-2")
    assert.equal("Processing", p.fulfillmentOrder.fulfillmentOrderStatus)
    assert.same({}, p.fulfillmentShipments)
    advance(86400)
    assert.equal("Unfulfillable", get("FA-2").fulfillmentOrder.fulfillmentOrderStatus)
  end)

  it("BLOCK_AMZL ships with another carrier and costs a surcharge", function()
    local feature = { { featureName = "BLOCK_AMZL", featureFulfillmentPolicy = "Required" } }
    local items = { { sellerSku = "SKU-RED-MUG", sellerFulfillmentOrderItemId = "i1", quantity = 1 } }
    local function transport_fee(features)
      local _, body = http("POST", BASE .. "/fulfillmentOrders/preview", { body = { marketplaceId = MP,
        address = ADDRESS, items = items, shippingSpeedCategories = { "Standard" }, featureConstraints = features } })
      for _, f in ipairs(body.payload.fulfillmentPreviews[1].estimatedFees) do
        if f.name == "FBATransportationFee" then return tonumber(f.amount.value) end
      end
    end
    assert.equal(0, transport_fee(nil))
    assert.is_true(transport_fee(feature) > 0)
    assert.equal(200, (http("POST", BASE .. "/fulfillmentOrders", { body = order_body("BA-1", nil,
      { featureConstraints = feature }) })))
    assert.equal(200, (http("POST", BASE .. "/fulfillmentOrders", { body = order_body("BA-2") })))
    advance(7300)
    local blocked = get("BA-1").fulfillmentShipments[1].fulfillmentShipmentPackage[1]
    local plain = get("BA-2").fulfillmentShipments[1].fulfillmentShipmentPackage[1]
    assert.equal("AMZN_US", plain.carrierCode)
    assert.matches("^TBA", plain.trackingNumber)
    assert.not_equal("AMZN_US", blocked.carrierCode)
    assert.not_matches("^TBA", blocked.trackingNumber)
    local _, t = http("GET", BASE .. "/tracking", { query = { packageNumber = blocked.packageNumber } })
    assert.equal(blocked.trackingNumber, t.payload.trackingNumber)
    assert.equal(blocked.carrierCode, t.payload.carrierCode)
  end)

  it("ScheduledDelivery offers windows in JP and delivers at the chosen window", function()
    local jp = { name = "Taro Yamada", addressLine1 = "1-2-3 Shibuya", city = "Shibuya-ku", stateOrRegion = "Tokyo",
      postalCode = "150-0002", countryCode = "JP" }
    local items = { { sellerSku = "SKU-RED-MUG", sellerFulfillmentOrderItemId = "j1", quantity = 1 } }
    local _, body = http("POST", BASE .. "/fulfillmentOrders/preview", { body = { marketplaceId = "A1VC38T7YXB528",
      address = jp, items = items, shippingSpeedCategories = { "ScheduledDelivery" }, includeDeliveryWindows = true } })
    local p = body.payload.fulfillmentPreviews[1]
    assert.is_true(p.isFulfillable)
    local window = p.scheduledDeliveryInfo.deliveryWindows[2]
    assert.is_string(window.startDate)
    -- not outside JP
    _, body = http("POST", BASE .. "/fulfillmentOrders/preview", { body = { marketplaceId = MP, address = ADDRESS,
      items = items, shippingSpeedCategories = { "ScheduledDelivery" } } })
    assert.same({ "NotEligibleForScheduledDelivery" }, body.payload.fulfillmentPreviews[1].orderUnfulfillableReasons)
    -- the order needs a window
    local st, err = http("POST", BASE .. "/fulfillmentOrders", { body = order_body("SD-0", items,
      { shippingSpeedCategory = "ScheduledDelivery", destinationAddress = jp, marketplaceId = "A1VC38T7YXB528" }) })
    assert.equal(400, st)
    assert.matches("deliveryWindow", err.errors[1].message)
    st = http("POST", BASE .. "/fulfillmentOrders", { body = order_body("SD-1", items,
      { shippingSpeedCategory = "ScheduledDelivery", destinationAddress = jp, marketplaceId = "A1VC38T7YXB528",
        deliveryWindow = window }) })
    assert.equal(200, st)
    advance(7300)
    local o = get("SD-1")
    assert.same(window, o.fulfillmentOrder.deliveryWindow)
    local pkg = o.fulfillmentShipments[1].fulfillmentShipmentPackage[1]
    local _, t = http("GET", BASE .. "/tracking", { query = { packageNumber = pkg.packageNumber } })
    assert.equal(window.startDate, t.payload.estimatedArrivalDate)
  end)

  it("changes line quantities in an update, reserving or giving back units", function()
    local f0 = stock("SKU-TEE-M")
    assert.equal(200, (http("POST", BASE .. "/fulfillmentOrders", { body = order_body("UQ-1",
      { { sellerSku = "SKU-TEE-M", sellerFulfillmentOrderItemId = "t", quantity = 2 } }, { fulfillmentAction = "Hold" }) })))
    assert.equal(f0 - 2, (stock("SKU-TEE-M")))
    assert.equal(200, (http("PUT", BASE .. "/fulfillmentOrders/UQ-1", { body = { items = {
      { sellerFulfillmentOrderItemId = "t", quantity = 5 } } } })))
    assert.equal(f0 - 5, (stock("SKU-TEE-M")))
    assert.equal(5, get("UQ-1").fulfillmentOrderItems[1].quantity)
    assert.equal(200, (http("PUT", BASE .. "/fulfillmentOrders/UQ-1", { body = { items = {
      { sellerFulfillmentOrderItemId = "t", quantity = 1 } } } })))
    assert.equal(f0 - 1, (stock("SKU-TEE-M")))
    -- more than the stock under FillOrKill: refused, nothing changes
    local st, body = http("PUT", BASE .. "/fulfillmentOrders/UQ-1", { body = { items = {
      { sellerFulfillmentOrderItemId = "t", quantity = f0 + 1 } } } })
    assert.equal(400, st)
    assert.matches("Not enough", body.errors[1].message)
    assert.equal(1, get("UQ-1").fulfillmentOrderItems[1].quantity)
    st = http("PUT", BASE .. "/fulfillmentOrders/UQ-1", { body = { items = {
      { sellerFulfillmentOrderItemId = "nope", quantity = 1 } } } })
    assert.equal(400, st)
  end)

  it("processes returns a day after they are requested", function()
    assert.equal(200, (http("POST", BASE .. "/fulfillmentOrders", { body = order_body("RT-1", {
      { sellerSku = "SKU-BLUE-MUG", sellerFulfillmentOrderItemId = "m", quantity = 2 } }) })))
    advance(7300)
    local sh = get("RT-1").fulfillmentShipments[1]
    local before, _, unf0 = stock("SKU-BLUE-MUG")
    local _, body = http("PUT", BASE .. "/fulfillmentOrders/RT-1/return", { body = { items = {
      { sellerReturnItemId = "R1", sellerFulfillmentOrderItemId = "m", amazonShipmentId = sh.amazonShipmentId,
        returnReasonCode = "CR-UNWANTED_ITEM" },
      { sellerReturnItemId = "R2", sellerFulfillmentOrderItemId = "m", amazonShipmentId = sh.amazonShipmentId,
        returnReasonCode = "CR-DEFECTIVE" } } } })
    assert.equal("New", body.payload.returnItems[1].status)
    advance(3600)
    assert.equal("New", get("RT-1").returnItems[1].status)
    advance(86400)
    local r = get("RT-1").returnItems
    assert.equal("Processed", r[1].status)
    assert.equal("Sellable", r[1].returnReceivedCondition)
    assert.equal("Processed", r[2].status)
    assert.equal("Defective", r[2].returnReceivedCondition)
    local after, _, unf1 = stock("SKU-BLUE-MUG")
    assert.equal(before + 1, after)
    assert.equal(unf0 + 1, unf1)
  end)
end)
