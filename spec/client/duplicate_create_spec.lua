-- createFulfillmentOrder is keyed by sellerFulfillmentOrderId, so the client
-- re-sends it after a lost answer; the sandbox, like Amazon, answers a second
-- create with that id "duplicate" (400). That answer to a re-send means the first
-- attempt made the order: the client fetches it and returns it.
local H = require "helpers"

local MP = "ATVPDKIKX0DER"

local function order(id, display, qty)
  return { marketplaceId = MP, sellerFulfillmentOrderId = id, displayableOrderId = display or id,
    displayableOrderDate = "2026-11-20T10:00:00Z", displayableOrderComment = "thanks", shippingSpeedCategory = "Standard",
    destinationAddress = { name = "Jane Doe", addressLine1 = "410 Terry Ave N", city = "Seattle", stateOrRegion = "WA",
      postalCode = "98109", countryCode = "US" },
    items = { { sellerSku = "SKU-BLUE-MUG", sellerFulfillmentOrderItemId = id .. "-1", quantity = qty or 1 } } }
end

describe("client: a re-sent create answered 'duplicate'", function()
  local sb

  local function client()
    return assert(require("spapi").client{ env = false, endpoint = sb.endpoint, lwa_endpoint = sb.lwa_endpoint,
      client_id = "amzn1.application-oa2-client.dup", client_secret = "s", refresh_token = "Atzr|dup",
      retry_base = 0.05, retry_cap = 0.2 })
  end
  local function stats() return (assert(sb.control("/_sandbox/stats", nil, "GET"))) end
  local function fault(f) assert(sb.control("/_sandbox/faults", f)) end

  before_each(function() sb = H.sandbox{ reset = true } end)

  it("returns the order the lost first attempt made", function()
    local sp = client()
    -- the sandbox makes the order, then drops the connection mid-answer
    fault{ operation = "fulfillment_outbound.createFulfillmentOrder", kind = "close", count = 1 }
    local body, resp = sp.fulfillment_outbound.createFulfillmentOrder{ body = order("DUP-1") }
    assert.is_table(body, tostring(resp))
    assert.equal("DUP-1", body.payload.fulfillmentOrder.sellerFulfillmentOrderId)
    assert.equal("DUP-1-1", body.payload.fulfillmentOrderItems[1].sellerFulfillmentOrderItemId)
    assert.equal("duplicate", resp.recovered)
    assert.equal(2, resp.attempts)
    assert.equal("fulfillment_outbound.createFulfillmentOrder", resp.operation)
    assert.equal(400, resp.create_response.status)
    local s = stats()
    assert.equal(2, s.requests["fulfillment_outbound.createFulfillmentOrder"])
    assert.equal(1, s.requests["fulfillment_outbound.getFulfillmentOrder"])
  end)

  it("returns the duplicate error when nothing was re-sent", function()
    local sp = client()
    assert(sp.fulfillment_outbound.createFulfillmentOrder{ body = order("DUP-2") })
    local body, err = sp.fulfillment_outbound.createFulfillmentOrder{ body = order("DUP-2") }
    assert.is_nil(body)
    assert.equal(400, err.status)
    assert.equal("InvalidInput", err.code)
    assert.matches("already exists", err.message, 1, true)
    assert.is_nil(stats().requests["fulfillment_outbound.getFulfillmentOrder"])
  end)

  it("returns the duplicate error when the order found is not the one sent", function()
    local sp = client()
    assert(sp.fulfillment_outbound.createFulfillmentOrder{ body = order("DUP-3", "an older order") })
    -- the re-sent create's first attempt never reached the program (503 before it)
    fault{ operation = "fulfillment_outbound.createFulfillmentOrder", kind = "status", status = 503, count = 1 }
    local body, err = sp.fulfillment_outbound.createFulfillmentOrder{ body = order("DUP-3", "a new order") }
    assert.is_nil(body)
    assert.equal(400, err.status)
    assert.matches("already exists", err.message, 1, true)
    assert.equal(1, stats().requests["fulfillment_outbound.getFulfillmentOrder"])
  end)
end)

describe("errors.duplicate", function()
  local errors = require "spapi.errors"
  local function e(status, code, message, details)
    return errors.from_response("x.y", status, {}, { errors = { { code = code, message = message, details = details } } })
  end

  it("reads code, message and details of a 400 or 409", function()
    assert.is_true(errors.duplicate(e(400, "InvalidInput", "A fulfillment order with sellerFulfillmentOrderId 'A' "
      .. "already exists (a duplicate request).")))
    assert.is_true(errors.duplicate(e(409, "Conflict", "", "Duplicate request")))
    assert.is_false(errors.duplicate(e(400, "InvalidInput", "quantity must be positive")))
    assert.is_false(errors.duplicate(e(500, "InternalFailure", "duplicate key in our database")))
  end)
end)
