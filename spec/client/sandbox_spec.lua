-- The client against the local sandbox (a real nginx with the emulator), with the
-- sandbox's own fault injection and rate limits: what a user's script meets.
local H = require "helpers"
local fake_clock = require "support.fake_clock"

local MP = "ATVPDKIKX0DER"

describe("client against the sandbox", function()
  local sb

  local function client(extra)
    local cfg = { env = false, endpoint = sb.endpoint, lwa_endpoint = sb.lwa_endpoint,
      client_id = "amzn1.application-oa2-client.cs", client_secret = "s", refresh_token = "Atzr|client-spec",
      retry_base = 0.05, retry_cap = 0.3 }
    for k, v in pairs(extra or {}) do cfg[k] = v end
    return assert(require("spapi").client(cfg))
  end

  local function stats() return (assert(sb.control("/_sandbox/stats", nil, "GET"))) end
  local function fault(f) assert(sb.control("/_sandbox/faults", f)) end

  before_each(function() sb = H.sandbox{ reset = true } end)

  it("rides out injected 503s and a truncated body on GETs", function()
    local sp = client()
    fault{ operation = "fulfillment_outbound.getFeatures", kind = "status", status = 503, count = 2 }
    local body, resp = sp.fulfillment_outbound.getFeatures{ marketplaceId = MP }
    assert.is_table(body, tostring(resp))
    assert.equal(3, resp.attempts)
    fault{ operation = "fulfillment_outbound.getFeatures", kind = "truncated", count = 1 }
    body, resp = sp.fulfillment_outbound.getFeatures{ marketplaceId = MP }
    assert.is_table(body, tostring(resp))
    assert.equal(2, resp.attempts)
    assert.equal(3, stats().faults_injected)
  end)

  it("re-sends an idempotent create after a dropped connection, and the order exists once", function()
    local sp = client()
    fault{ operation = "fulfillment_outbound.createFulfillmentOrder", kind = "close", count = 1 }
    local order = { marketplaceId = MP, sellerFulfillmentOrderId = "CS-1", displayableOrderId = "CS-1",
      displayableOrderDate = "2026-11-20T10:00:00Z", displayableOrderComment = "thanks", shippingSpeedCategory = "Standard",
      destinationAddress = { name = "Jane Doe", addressLine1 = "410 Terry Ave N", city = "Seattle", stateOrRegion = "WA",
        postalCode = "98109", countryCode = "US" },
      items = { { sellerSku = "SKU-BLUE-MUG", sellerFulfillmentOrderItemId = "CS-1-1", quantity = 1 } } }
    local body, resp = sp.fulfillment_outbound.createFulfillmentOrder{ body = order }
    assert.is_table(body, tostring(resp))
    assert.equal(2, resp.attempts)
    local n = 0
    for o, err in sp:each("fulfillment_outbound.listAllFulfillmentOrders", {}) do
      assert.is_table(o, tostring(err))
      if o.sellerFulfillmentOrderId == "CS-1" then n = n + 1 end
    end
    assert.equal(1, n)
  end)

  it("does not re-send a submission after a dropped connection, and says it may have been applied", function()
    local sp = client()
    fault{ operation = "vendor_df_inventory.submitInventoryUpdate", kind = "close", count = 1 }
    local body, err = sp.vendor_df_inventory.submitInventoryUpdate{ warehouseId = "WH-CS", body = { inventory = {
      sellingParty = { partyId = "VENDOR1" }, isFullUpdate = false,
      items = { { buyerProductIdentifier = "B000000001", availableQuantity = { amount = 5, unitOfMeasure = "Each" } } } } } }
    assert.is_nil(body)
    assert.equal("closed", err.kind)
    assert.is_true(err.maybe_applied)
    assert.equal(1, stats().requests["vendor_df_inventory.submitInventoryUpdate"])
  end)

  it("waits for the model's rate instead of drawing 429s", function()
    local c = fake_clock.recording() -- the sandbox enforces the rate: the waits are real
    local sp = client{ clock = c }
    for _ = 1, 5 do -- rate 2/s, burst 2
      assert(sp.fba_inventory.getInventorySummaries{ granularityType = "Marketplace", granularityId = MP,
        marketplaceIds = { MP } })
    end
    -- the client keeps 90% of the burst of 2 (rate_margin): the second request
    -- waits for the last fifth of its token, then 3 past the burst for their slots
    assert.equal(4, #c.slept)
    assert.equal(0, stats().throttled)
  end)

  it("gets and uses restricted data tokens for Merchant Fulfillment shipments", function()
    local sp = client()
    local none, err = sp:call("merchant_fulfillment.getShipment", { shipmentId = "a1b2c3d4-0000-1111-2222-333344445555" },
      { rdt = false })
    assert.is_nil(none)
    assert.equal(403, err.status)
    local _, err2 = sp.merchant_fulfillment.getShipment{ shipmentId = "a1b2c3d4-0000-1111-2222-333344445555" }
    assert.equal(404, err2.status) -- past the RDT check: the shipment does not exist
    assert.equal("ResourceNotFound", err2.code)
  end)
end)
