-- Multi-Channel Fulfillment: check FBA stock, preview the shipping speeds, create
-- an order (keyed by its id), follow it until it ships, then track the package.
--
--   make demo EXAMPLES=examples/mcf_order.lua    # against the local sandbox
local spapi = require "spapi"

local sp = assert(spapi.client{ user_agent = "spapi-mcf-example/1.0" })
local MARKETPLACE = spapi.marketplace("US").id
local SKU = os.getenv("MCF_SKU") or "SKU-RED-MUG"
local ADDRESS = { name = "Jane Doe", addressLine1 = "410 Terry Ave N", city = "Seattle", stateOrRegion = "WA",
  postalCode = "98109", countryCode = "US", phone = "+1 206 555 0100" }

local function check(body, err) if not body then error(tostring(err), 2) end return body end

-- 1. what is in stock
local inv = check(sp.fba_inventory.getInventorySummaries{ granularityType = "Marketplace",
  granularityId = MARKETPLACE, marketplaceIds = { MARKETPLACE }, sellerSkus = { SKU }, details = true })
local summary = inv.payload.inventorySummaries[1]
print(string.format("%s: %d fulfillable", SKU, summary.inventoryDetails.fulfillableQuantity))

-- 2. what each shipping speed would cost
local items = { { sellerSku = SKU, sellerFulfillmentOrderItemId = "line-1", quantity = 1 } }
local preview = check(sp.fulfillment_outbound.getFulfillmentPreview{ body = {
  marketplaceId = MARKETPLACE, address = ADDRESS, items = items } })
for _, p in ipairs(preview.payload.fulfillmentPreviews) do
  local fee = 0
  for _, f in ipairs(p.estimatedFees or {}) do fee = fee + tonumber(f.amount.value) end
  print(string.format("  %-18s fulfillable=%-5s fees %.2f", p.shippingSpeedCategory, tostring(p.isFulfillable), fee))
end

-- 3. create the order (keyed by its id: if the answer is lost, the client sends
-- it again, and a "duplicate" answer to that gives back the order made)
local id = "MCF-" .. os.time()
local order = { marketplaceId = MARKETPLACE, sellerFulfillmentOrderId = id, displayableOrderId = id,
  displayableOrderDate = os.date("!%Y-%m-%dT%H:%M:%SZ"), displayableOrderComment = "Thank you for your order",
  shippingSpeedCategory = "Standard", destinationAddress = ADDRESS, items = items }
check(sp.fulfillment_outbound.createFulfillmentOrder{ body = order })
print("created " .. id)

-- 4. follow it until it ships
local status, shipments
for _ = 1, 600 do
  local o = check(sp.fulfillment_outbound.getFulfillmentOrder{ sellerFulfillmentOrderId = id }).payload
  if o.fulfillmentOrder.fulfillmentOrderStatus ~= status then
    status = o.fulfillmentOrder.fulfillmentOrderStatus
    print("  status " .. status)
  end
  shipments = o.fulfillmentShipments
  if status == "Complete" or status == "Cancelled" or status == "Unfulfillable" then break end
  spapi.sleep(0.2)
end
if status ~= "Complete" then error("order " .. id .. " ended " .. tostring(status)) end

-- 5. track each package
for _, sh in ipairs(shipments or {}) do
  for _, pkg in ipairs(sh.fulfillmentShipmentPackage or {}) do
    local t = check(sp.fulfillment_outbound.getPackageTrackingDetails{ packageNumber = pkg.packageNumber }).payload
    print(string.format("  package %d: %s %s, %s", pkg.packageNumber, pkg.carrierCode, pkg.trackingNumber,
      t.currentStatus or "?"))
  end
end
print("done: " .. id .. " shipped")
