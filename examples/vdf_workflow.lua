-- Vendor Direct Fulfillment, end to end: acknowledge every NEW purchase order, buy
-- the shipping labels, confirm the shipments, send the invoices.
--
--   make demo                  # runs this against the local sandbox
--   lua5.4 examples/vdf_workflow.lua      # with LWA_* and SPAPI_* set for your account
--
-- Against a sandbox (SPAPI_DEMO_GENERATE=1) it first asks the Sandbox Test Data API
-- for test orders, as Amazon's dynamic sandbox expects.
local spapi = require "spapi"

local sp = assert(spapi.client{ user_agent = "spapi-vdf-example/1.0" })
local VENDOR, WAREHOUSE = os.getenv("VDF_VENDOR") or "VENDOR1", os.getenv("VDF_WAREHOUSE") or "WAREHOUSE1"

local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t)) end
local function check(body, err) if not body then error(tostring(err), 2) end return body end

-- DF submissions are asynchronous: poll the transaction until it settles.
local function settle(transaction_id, what)
  for _ = 1, 240 do
    local body = check(sp.vendor_df_transactions.getTransactionStatus{ transactionId = transaction_id })
    local st = body.transactionStatus
    if st.status ~= "Processing" then
      print(string.format("  %-28s %s", what, st.status))
      if st.status ~= "Success" then
        for _, e in ipairs(st.errors and st.errors.errors or {}) do print("    " .. e.code .. ": " .. e.message) end
        os.exit(1)
      end
      return st
    end
    spapi.sleep(0.25)
  end
  error("transaction " .. transaction_id .. " did not settle")
end

-- 0. sandbox only: generate test purchase orders
if os.getenv("SPAPI_DEMO_GENERATE") then
  local gen = check(sp.vendor_df_sandbox.generateOrderScenarios{ body = { orders = {
    { sellingParty = { partyId = VENDOR }, shipFromParty = { partyId = WAREHOUSE } } } } })
  repeat
    spapi.sleep(0.25)
    local st = check(sp.vendor_df_sandbox.getOrderScenarios{ transactionId = gen.transactionId }).transactionStatus
  until st.status ~= "PROCESSING"
end

-- 1. every NEW purchase order of the last week, across pages (a restricted
--    operation: spapi fetches the restricted data token itself)
local now, orders = os.time(), {}
for po, err in sp:each("vendor_df_orders.getOrders", { status = "NEW", shipFromPartyId = WAREHOUSE,
    createdAfter = now - 7 * 86400, createdBefore = now + 86400, limit = 2 }) do
  if not po then error(tostring(err)) end
  orders[#orders + 1] = po
end
print(string.format("%d NEW purchase orders at %s", #orders, WAREHOUSE))
if #orders == 0 then return end

-- 2. acknowledge them all in one submission
local acks = {}
for i, po in ipairs(orders) do
  local d, items = po.orderDetails, {}
  for j, it in ipairs(d.items) do
    items[j] = { itemSequenceNumber = it.itemSequenceNumber, buyerProductIdentifier = it.buyerProductIdentifier,
                 vendorProductIdentifier = it.vendorProductIdentifier, acknowledgedQuantity = it.orderedQuantity }
  end
  acks[i] = { purchaseOrderNumber = po.purchaseOrderNumber, vendorOrderNumber = "VO-" .. po.purchaseOrderNumber,
    acknowledgementDate = iso(os.time()), acknowledgementStatus = { code = "00", description = "Shipping 100 percent" },
    sellingParty = d.sellingParty, shipFromParty = d.shipFromParty, itemAcknowledgements = items }
end
settle(check(sp.vendor_df_orders.submitAcknowledgement{ body = { orderAcknowledgements = acks } }).transactionId,
  "acknowledgements")

-- 3. shipping labels, all at once (spapi.batch: concurrent, rate-limited, in order)
local calls = {}
for i, po in ipairs(orders) do
  calls[i] = { "vendor_df_shipping.createShippingLabels", { purchaseOrderNumber = po.purchaseOrderNumber,
    body = { sellingParty = po.orderDetails.sellingParty, shipFromParty = po.orderDetails.shipFromParty } } }
end
local tracking = {}
for i, r in ipairs(sp:batch(calls)) do
  if not r.ok then error(tostring(r.err)) end
  tracking[i] = r.body.labelData[1].trackingNumber
  print(string.format("  label for %-20s tracking %s", orders[i].purchaseOrderNumber, tracking[i]))
end

-- 4. confirm the shipments
local confirmations = {}
for i, po in ipairs(orders) do
  local items = {}
  for j, it in ipairs(po.orderDetails.items) do
    items[j] = { itemSequenceNumber = tonumber(it.itemSequenceNumber), shippedQuantity = it.orderedQuantity }
  end
  confirmations[i] = { purchaseOrderNumber = po.purchaseOrderNumber,
    shipmentDetails = { shippedDate = iso(os.time()), shipmentStatus = "SHIPPED" },
    sellingParty = po.orderDetails.sellingParty, shipFromParty = po.orderDetails.shipFromParty, items = items }
end
settle(check(sp.vendor_df_shipping.submitShipmentConfirmations{ body = { shipmentConfirmations = confirmations } })
  .transactionId, "shipment confirmations")

-- 5. invoice what shipped
local invoices = {}
for i, po in ipairs(orders) do
  local items, total = {}, 0
  for j, it in ipairs(po.orderDetails.items) do
    items[j] = { itemSequenceNumber = it.itemSequenceNumber, invoicedQuantity = it.orderedQuantity,
                 netCost = it.netPrice, purchaseOrderNumber = po.purchaseOrderNumber }
    total = total + tonumber(it.netPrice.amount) * it.orderedQuantity.amount
  end
  invoices[i] = { invoiceNumber = "INV-" .. po.purchaseOrderNumber, invoiceDate = iso(os.time()),
    remitToParty = { partyId = VENDOR, address = { name = "Example Vendor", addressLine1 = "1 Main St",
      city = "Seattle", stateOrRegion = "WA", postalCode = "98109", countryCode = "US" } },
    shipFromParty = po.orderDetails.shipFromParty,
    invoiceTotal = { currencyCode = po.orderDetails.items[1].netPrice.currencyCode, amount = string.format("%.2f", total) },
    items = items }
end
settle(check(sp.vendor_df_payments.submitInvoice{ body = { invoices = invoices } }).payload.transactionId, "invoices")

-- 6. where each order stands now
for _, po in ipairs(orders) do
  local o = check(sp.vendor_df_orders.getOrder{ purchaseOrderNumber = po.purchaseOrderNumber })
  print(string.format("  %-20s %s", po.purchaseOrderNumber, o.orderDetails.orderStatus))
end
print("done: " .. #orders .. " purchase orders acknowledged, labelled, shipped and invoiced")
