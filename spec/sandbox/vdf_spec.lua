-- The Vendor Direct Fulfillment flow against a real sandbox, over plain HTTP:
-- test orders from generateOrderScenarios → getOrders/getOrder → acknowledgement →
-- shipping label → shipment confirmation → invoice, with transaction statuses
-- followed through getTransactionStatus while the sandbox clock is advanced.
local H = require "helpers"
local core = require "spapi.core"

local ORDERS = "/vendor/directFulfillment/orders/2021-12-28"
local SHIPPING = "/vendor/directFulfillment/shipping/2021-12-28"
local TXN = "/vendor/directFulfillment/transactions/2021-12-28/transactions/"
local SANDBOX = "/vendor/directFulfillment/sandbox/2021-10-28"
local SELLER = "SPECVENDOR"

describe("sandbox: Vendor Direct Fulfillment", function()
  local sandbox, token, rdt

  local function http(method, path, o)
    o = o or {}
    if o.token == nil then o.token = token end
    local status, headers, body, raw = H.sandbox_http(method, path, o)
    assert(status, headers)
    return status, body, raw, headers
  end

  local function advance(seconds)
    assert(sandbox.control("/_sandbox/clock", { advance = seconds }))
  end

  local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t)) end

  local function clock_now()
    local c = assert(sandbox.control("/_sandbox/clock"))
    return c.now
  end

  local function window()
    local now = clock_now()
    return iso(now - 86400), iso(now + 60)
  end

  local function transaction(id)
    local st, body = http("GET", TXN .. id)
    assert.equal(200, st)
    assert.equal(id, body.transactionStatus.transactionId)
    return body.transactionStatus
  end

  -- submit, check Processing, let the sandbox time pass, return the final status
  local function settle(id)
    assert.equal("Processing", transaction(id).status)
    advance(120)
    return transaction(id)
  end

  local function get_order(po)
    local st, body = http("GET", ORDERS .. "/purchaseOrders/" .. po, { token = rdt })
    assert.equal(200, st)
    return body
  end

  -- generate test orders for a fresh warehouse; returns their PO numbers
  local function scenario_orders(warehouse)
    local st, body = http("POST", SANDBOX .. "/orders", { body = { orders = {
      { sellingParty = { partyId = SELLER }, shipFromParty = { partyId = warehouse } } } } })
    assert.equal(202, st)
    local id = assert(body.transactionId)
    st, body = http("GET", SANDBOX .. "/transactions/" .. id)
    assert.equal(200, st)
    assert.equal("PROCESSING", body.transactionStatus.status)
    advance(120)
    st, body = http("GET", SANDBOX .. "/transactions/" .. id)
    assert.equal(200, st)
    assert.equal("SUCCESS", body.transactionStatus.status)
    local out = {}
    for _, o in ipairs(body.transactionStatus.testCaseData.scenarios[1].orders) do out[#out + 1] = o.orderId end
    return out
  end

  local function acknowledgement(order, items)
    if items == nil then
      items = {}
      for i, it in ipairs(order.orderDetails.items) do
        items[i] = { itemSequenceNumber = it.itemSequenceNumber, buyerProductIdentifier = it.buyerProductIdentifier,
                     acknowledgedQuantity = it.orderedQuantity }
      end
    end
    return { orderAcknowledgements = { {
      purchaseOrderNumber = order.purchaseOrderNumber, vendorOrderNumber = "VO-" .. order.purchaseOrderNumber,
      acknowledgementDate = iso(clock_now()),
      acknowledgementStatus = { code = "00", description = "Shipping 100 percent of ordered product" },
      sellingParty = order.orderDetails.sellingParty, shipFromParty = order.orderDetails.shipFromParty,
      itemAcknowledgements = items,
    } } }
  end

  local function invoice(order, number)
    local items = {}
    for i, it in ipairs(order.orderDetails.items) do
      items[i] = { itemSequenceNumber = it.itemSequenceNumber, invoicedQuantity = it.orderedQuantity,
                   netCost = it.netPrice, purchaseOrderNumber = order.purchaseOrderNumber }
    end
    return { invoices = { {
      invoiceNumber = number, invoiceDate = iso(clock_now()),
      remitToParty = { partyId = SELLER, address = { name = "Spec Vendor", addressLine1 = "1 Main St", city = "Seattle",
        stateOrRegion = "WA", postalCode = "98109", countryCode = "US" } },
      shipFromParty = order.orderDetails.shipFromParty,
      invoiceTotal = { currencyCode = "USD", amount = "100.00" },
      items = items,
    } } }
  end

  local function confirmation(order, status)
    local items = {}
    for i, it in ipairs(order.orderDetails.items) do
      items[i] = { itemSequenceNumber = tonumber(it.itemSequenceNumber), shippedQuantity = it.orderedQuantity }
    end
    return { shipmentConfirmations = { {
      purchaseOrderNumber = order.purchaseOrderNumber,
      shipmentDetails = { shippedDate = iso(clock_now()), shipmentStatus = status or "SHIPPED" },
      sellingParty = order.orderDetails.sellingParty, shipFromParty = order.orderDetails.shipFromParty,
      items = items,
    } } }
  end

  local function acknowledged_order(warehouse)
    local po = scenario_orders(warehouse)[1]
    local order = get_order(po)
    local st, body = http("POST", ORDERS .. "/acknowledgements", { body = acknowledgement(order) })
    assert.equal(202, st)
    assert.equal("Success", settle(body.transactionId).status)
    return get_order(po)
  end

  setup(function()
    sandbox = H.sandbox{ reset = true }
    -- this file is about the DF programs, not throttling
    assert(sandbox.control("/_sandbox/config", { rate_scale = 100 }))
    token = H.sandbox_token()
    rdt = H.sandbox_rdt({
      { method = "GET", path = ORDERS .. "/purchaseOrders" },
      { method = "GET", path = ORDERS .. "/purchaseOrders/{purchaseOrderNumber}" },
      { method = "GET", path = SHIPPING .. "/shippingLabels/{purchaseOrderNumber}" },
      { method = "GET", path = SHIPPING .. "/packingSlips" },
      { method = "GET", path = SHIPPING .. "/packingSlips/{purchaseOrderNumber}" },
      { method = "GET", path = SHIPPING .. "/customerInvoices" },
      { method = "GET", path = SHIPPING .. "/customerInvoices/{purchaseOrderNumber}" },
    }, token)
  end)

  teardown(function()
    if sandbox then sandbox.control("/_sandbox/config", { rate_scale = 1 }) end
  end)

  it("turns generated scenarios into NEW purchase orders, paged by limit and nextToken", function()
    local wh = "SPECWH-PAGES"
    local after, before = window()
    -- nothing for this warehouse before the scenario is generated
    local st, body = http("GET", ORDERS .. "/purchaseOrders", { token = rdt,
      query = { createdAfter = after, createdBefore = before, shipFromPartyId = wh } })
    assert.equal(200, st)
    assert.same({}, body.orders)

    local pos = scenario_orders(wh)
    assert.equal(3, #pos)
    after, before = window()
    local seen, pages, next_token = {}, 0, nil
    repeat
      local q = { createdAfter = after, createdBefore = before, shipFromPartyId = wh, status = "NEW", limit = 2,
                  nextToken = next_token }
      st, body = http("GET", ORDERS .. "/purchaseOrders", { token = rdt, query = q })
      assert.equal(200, st)
      pages = pages + 1
      assert.is_true(#body.orders <= 2)
      for _, o in ipairs(body.orders) do
        assert.equal("NEW", o.orderDetails.orderStatus)
        assert.equal(wh, o.orderDetails.shipFromParty.partyId)
        assert.equal(SELLER, o.orderDetails.sellingParty.partyId)
        assert.is_true(#o.orderDetails.items >= 1)
        seen[#seen + 1] = o.purchaseOrderNumber
      end
      next_token = body.pagination and body.pagination.nextToken
    until not next_token
    assert.equal(2, pages)
    table.sort(seen)
    local expected = { pos[1], pos[2], pos[3] }
    table.sort(expected)
    assert.same(expected, seen)

    -- includeDetails=false: purchase order numbers only
    st, body = http("GET", ORDERS .. "/purchaseOrders", { token = rdt, query = {
      createdAfter = after, createdBefore = before, shipFromPartyId = wh, includeDetails = "false", sortOrder = "DESC" } })
    assert.equal(200, st)
    assert.equal(3, #body.orders)
    assert.is_nil(body.orders[1].orderDetails)
    assert.equal(pos[3], body.orders[1].purchaseOrderNumber)

    -- nothing SHIPPED yet
    st, body = http("GET", ORDERS .. "/purchaseOrders", { token = rdt, query = {
      createdAfter = after, createdBefore = before, shipFromPartyId = wh, status = "SHIPPED" } })
    assert.equal(200, st)
    assert.same({}, body.orders)
  end)

  it("runs acknowledgement → label → shipment confirmation → invoice", function()
    local wh = "SPECWH-FLOW"
    local po = scenario_orders(wh)[2] -- the two-item order with a packing slip
    local order = get_order(po)
    assert.equal(po, order.purchaseOrderNumber)
    assert.equal("NEW", order.orderDetails.orderStatus)
    assert.equal(2, #order.orderDetails.items)

    -- labels before acknowledgement conflict with the PO's state
    local st, body = http("POST", SHIPPING .. "/shippingLabels/" .. po, { body = {
      sellingParty = order.orderDetails.sellingParty, shipFromParty = order.orderDetails.shipFromParty } })
    assert.equal(409, st)

    st, body = http("POST", ORDERS .. "/acknowledgements", { body = acknowledgement(order) })
    assert.equal(202, st)
    local ack = settle(body.transactionId)
    assert.equal("Success", ack.status)
    assert.is_nil(ack.errors)
    assert.equal("ACCEPTED", get_order(po).orderDetails.orderStatus)

    -- an invoice before the shipment confirmation is rejected
    st, body = http("POST", "/vendor/directFulfillment/payments/v1/invoices", { body = invoice(order, "INV-EARLY-" .. po) })
    assert.equal(202, st)
    local early = settle(body.payload.transactionId)
    assert.equal("Failure", early.status)
    assert.matches("can only be invoiced after the shipment has been confirmed", early.errors.errors[1].message, 1, true)

    -- shipping label (synchronous)
    st, body = http("POST", SHIPPING .. "/shippingLabels/" .. po, { body = {
      sellingParty = order.orderDetails.sellingParty, shipFromParty = order.orderDetails.shipFromParty } })
    assert.equal(200, st)
    assert.equal(po, body.purchaseOrderNumber)
    assert.equal("PNG", body.labelFormat)
    local label = body.labelData[1]
    assert.is_string(label.trackingNumber)
    assert.equal("\137PNG\r\n\26\n", core.b64decode(label.content):sub(1, 8))
    st, body = http("GET", SHIPPING .. "/shippingLabels/" .. po, { token = rdt })
    assert.equal(200, st)
    assert.equal(label.trackingNumber, body.labelData[1].trackingNumber)

    -- packing slip (this order requires one) and customer invoice (accepted order)
    st, body = http("GET", SHIPPING .. "/packingSlips/" .. po, { token = rdt })
    assert.equal(200, st)
    assert.equal("application/pdf", body.contentType)
    assert.equal("%PDF-", core.b64decode(body.content):sub(1, 5))
    st, body = http("GET", SHIPPING .. "/customerInvoices/" .. po, { token = rdt })
    assert.equal(200, st)
    assert.matches(po, core.b64decode(body.content), 1, true)
    -- in the lists: one packing slip (only this order of the scenario needs one) and one
    -- customer invoice (only this order is accepted)
    local after, before = window()
    st, body = http("GET", SHIPPING .. "/packingSlips", { token = rdt, query = {
      createdAfter = after, createdBefore = before, shipFromPartyId = wh } })
    assert.equal(200, st)
    assert.equal(1, #body.packingSlips)
    assert.equal(po, body.packingSlips[1].purchaseOrderNumber)
    st, body = http("GET", SHIPPING .. "/customerInvoices", { token = rdt, query = {
      createdAfter = after, createdBefore = before, shipFromPartyId = wh } })
    assert.equal(200, st)
    assert.equal(1, #body.customerInvoices)
    assert.equal(po, body.customerInvoices[1].purchaseOrderNumber)

    -- container label for the package
    st, body = http("POST", SHIPPING .. "/containerLabel", { body = {
      sellingParty = order.orderDetails.sellingParty, shipFromParty = order.orderDetails.shipFromParty,
      carrierId = "SWA", vendorContainerId = "CONT-" .. po, packages = { { packageTrackingNumber = label.trackingNumber } } } })
    assert.equal(200, st)
    assert.equal("PNG", body.containerLabel.format)
    assert.is_string(body.containerLabel.containerTrackingNumber)

    -- shipment confirmation → SHIPPED
    st, body = http("POST", SHIPPING .. "/shipmentConfirmations", { body = confirmation(order) })
    assert.equal(202, st)
    local conf = body.transactionId
    assert.equal("ACCEPTED", get_order(po).orderDetails.orderStatus) -- still processing
    assert.equal("Success", settle(conf).status)
    assert.equal("SHIPPED", get_order(po).orderDetails.orderStatus)
    after, before = window()
    st, body = http("GET", ORDERS .. "/purchaseOrders", { token = rdt, query = {
      createdAfter = after, createdBefore = before, shipFromPartyId = wh, status = "SHIPPED" } })
    assert.equal(200, st)
    assert.equal(1, #body.orders)
    assert.equal(po, body.orders[1].purchaseOrderNumber)

    -- a second confirmation of the same PO fails
    st, body = http("POST", SHIPPING .. "/shipmentConfirmations", { body = confirmation(order) })
    assert.equal(202, st)
    assert.equal("Failure", settle(body.transactionId).status)

    -- carrier status update for the label's tracking number
    st, body = http("POST", SHIPPING .. "/shipmentStatusUpdates", { body = { shipmentStatusUpdates = { {
      purchaseOrderNumber = po, sellingParty = order.orderDetails.sellingParty, shipFromParty = order.orderDetails.shipFromParty,
      statusUpdateDetails = { trackingNumber = label.trackingNumber, statusCode = "D1", reasonCode = "NS",
        statusDateTime = iso(clock_now()), statusLocationAddress = { name = "Hub", addressLine1 = "1 Hub Rd", countryCode = "US" } },
    } } } })
    assert.equal(202, st)
    assert.equal("Success", settle(body.transactionId).status)

    -- now the invoice is accepted
    st, body = http("POST", "/vendor/directFulfillment/payments/v1/invoices", { body = invoice(order, "INV-" .. po) })
    assert.equal(202, st)
    local inv = settle(body.payload.transactionId)
    assert.equal("Success", inv.status)
    assert.is_nil(inv.errors)
    -- the same invoice number twice is not
    st, body = http("POST", "/vendor/directFulfillment/payments/v1/invoices", { body = invoice(order, "INV-" .. po) })
    assert.equal("Failure", settle(body.payload.transactionId).status)
  end)

  it("fails partial or incomplete acknowledgements and leaves the order NEW", function()
    local pos = scenario_orders("SPECWH-ACK")
    local order = get_order(pos[2])
    -- only the first of two line items
    local partial = acknowledgement(order, { { itemSequenceNumber = order.orderDetails.items[1].itemSequenceNumber,
      acknowledgedQuantity = order.orderDetails.items[1].orderedQuantity } })
    local st, body = http("POST", ORDERS .. "/acknowledgements", { body = partial })
    assert.equal(202, st)
    local t = settle(body.transactionId)
    assert.equal("Failure", t.status)
    assert.matches("partial acknowledgement", t.errors.errors[1].message, 1, true)

    -- missing required fields
    local incomplete = acknowledgement(order)
    incomplete.orderAcknowledgements[1].vendorOrderNumber = nil
    incomplete.orderAcknowledgements[1].acknowledgementStatus = nil
    st, body = http("POST", ORDERS .. "/acknowledgements", { body = incomplete })
    assert.equal(202, st)
    t = settle(body.transactionId)
    assert.equal("Failure", t.status)
    assert.equal(2, #t.errors.errors)
    assert.equal("InvalidInput", t.errors.errors[1].code)

    -- unknown purchase order
    local unknown = acknowledgement(order)
    unknown.orderAcknowledgements[1].purchaseOrderNumber = "NOSUCHPO"
    st, body = http("POST", ORDERS .. "/acknowledgements", { body = unknown })
    assert.equal(202, st)
    t = settle(body.transactionId)
    assert.equal("Failure", t.status)
    assert.matches("NOSUCHPO does not exist", t.errors.errors[1].message, 1, true)

    assert.equal("NEW", get_order(pos[2]).orderDetails.orderStatus)

    -- a body without acknowledgements is rejected at once
    st, body = http("POST", ORDERS .. "/acknowledgements", { body = { orderAcknowledgements = {} } })
    assert.equal(400, st)
    assert.equal("InvalidInput", body.errors[1].code)
  end)

  it("rejects a shipment confirmation for an order that was not acknowledged", function()
    local order = get_order(scenario_orders("SPECWH-CONF")[1])
    local st, body = http("POST", SHIPPING .. "/shipmentConfirmations", { body = confirmation(order) })
    assert.equal(202, st)
    local t = settle(body.transactionId)
    assert.equal("Failure", t.status)
    assert.matches("not been acknowledged", t.errors.errors[1].message, 1, true)
    assert.equal("NEW", get_order(order.purchaseOrderNumber).orderDetails.orderStatus)
  end)

  it("cancels an order on FLOOR_DENIAL and lists labels requested asynchronously", function()
    local order = acknowledged_order("SPECWH-ASYNC")
    local po = order.purchaseOrderNumber
    local st, body = http("POST", SHIPPING .. "/shippingLabels", { body = { shippingLabelRequests = { {
      purchaseOrderNumber = po, sellingParty = order.orderDetails.sellingParty,
      shipFromParty = order.orderDetails.shipFromParty } } } })
    assert.equal(202, st)
    local id = body.transactionId
    st = http("GET", SHIPPING .. "/shippingLabels/" .. po, { token = rdt })
    assert.equal(404, st) -- not before the request has been processed
    assert.equal("Success", settle(id).status)
    local after, before = window()
    st, body = http("GET", SHIPPING .. "/shippingLabels", { query = {
      createdAfter = after, createdBefore = before, shipFromPartyId = "SPECWH-ASYNC" } })
    assert.equal(200, st)
    assert.equal(1, #body.shippingLabels)
    assert.equal(po, body.shippingLabels[1].purchaseOrderNumber)

    st, body = http("POST", SHIPPING .. "/shipmentConfirmations", { body = confirmation(order, "FLOOR_DENIAL") })
    assert.equal(202, st)
    assert.equal("Success", settle(body.transactionId).status)
    assert.equal("CANCELLED", get_order(po).orderDetails.orderStatus)
  end)

  it("accepts inventory updates as transactions", function()
    local st, body = http("POST", "/vendor/directFulfillment/inventory/v1/warehouses/SPECWH-INV/items", { body = {
      inventory = { sellingParty = { partyId = SELLER }, isFullUpdate = false, items = {
        { buyerProductIdentifier = "B07DFVDRAB", availableQuantity = { amount = 12, unitOfMeasure = "Each" } } } } } })
    assert.equal(202, st)
    assert.equal("Success", settle(body.payload.transactionId).status)
    st, body = http("POST", "/vendor/directFulfillment/inventory/v1/warehouses/SPECWH-INV/items", { body = {
      inventory = { sellingParty = { partyId = SELLER }, items = { { availableQuantity = { amount = 1 } } } } } })
    assert.equal(202, st)
    local t = settle(body.payload.transactionId)
    assert.equal("Failure", t.status)
    assert.is_true(#t.errors.errors >= 2)
  end)

  it("checks invoice syntax at once and its meaning in the transaction (the model's examples)", function()
    local INV = "/vendor/directFulfillment/payments/v1/invoices"
    -- the model's 400 example: a malformed date and missing elements
    local st, body = http("POST", INV, { body = { invoices = { { invoiceNumber = "TestInvoice400", invoiceDate = "2020-08.13" } } } })
    assert.equal(400, st)
    assert.equal("InvalidInput", body.errors[1].code)
    assert.equal("The value '2020-08.13' of element 'invoiceDate' is not valid.", body.errors[1].message)
    -- the model's example with an empty body: accepted, and the transaction fails
    st, body = http("POST", INV, { body = {} })
    assert.equal(202, st)
    assert.equal("Failure", settle(body.payload.transactionId).status)
    -- well-formed, but for a purchase order that does not exist
    local order = get_order(scenario_orders("SPECWH-INV400")[1])
    local inv = invoice(order, "INV-UNKNOWN-PO")
    inv.invoices[1].items[1].purchaseOrderNumber = "NOSUCHPO"
    st, body = http("POST", INV, { body = inv })
    assert.equal(202, st)
    local t = settle(body.payload.transactionId)
    assert.equal("Failure", t.status)
    assert.matches("NOSUCHPO does not exist", t.errors.errors[1].message, 1, true)
  end)

  it("answers 403 to restricted operations without a restricted data token", function()
    local after, before = window()
    local st, body = http("GET", ORDERS .. "/purchaseOrders", { query = { createdAfter = after, createdBefore = before } })
    assert.equal(403, st)
    assert.is_string(body.errors[1].code)
    local po = scenario_orders("SPECWH-RDT")[1]
    st = http("GET", ORDERS .. "/purchaseOrders/" .. po)
    assert.equal(403, st)
    st = http("GET", SHIPPING .. "/packingSlips/" .. po)
    assert.equal(403, st)
    -- with the RDT the same calls work
    st = http("GET", ORDERS .. "/purchaseOrders/" .. po, { token = rdt })
    assert.equal(200, st)
  end)

  it("validates list parameters and unknown resources", function()
    local after, before = window()
    local st, body = http("GET", ORDERS .. "/purchaseOrders", { token = rdt, query = { createdAfter = after } })
    assert.equal(400, st)
    assert.equal("InvalidInput", body.errors[1].code)
    st, body = http("GET", ORDERS .. "/purchaseOrders", { token = rdt, query = {
      createdAfter = after, createdBefore = before, status = "ACKNOWLEDGED" } })
    assert.equal(400, st)
    st, body = http("GET", ORDERS .. "/purchaseOrders", { token = rdt, query = {
      createdAfter = after, createdBefore = before, limit = 500 } })
    assert.equal(400, st)
    st, body = http("GET", ORDERS .. "/purchaseOrders/NOSUCHPO", { token = rdt })
    assert.equal(404, st)
    st, body = http("GET", TXN .. "no-such-transaction")
    assert.equal(404, st)
    assert.equal("NotFound", body.code) -- the model's Error shape for this 404
    assert.equal("NotFound", body.errors[1].code)
  end)
end)
