-- Vendor Direct Fulfillment Orders 2021-12-28: getOrders, getOrder,
-- submitAcknowledgement; also the purchase-order store the other DF programs use
-- (_M.po: create, get, status, render).
--
-- A purchase order (state kind "vdf_po") keeps its details as Amazon returns
-- them and a list of status transitions { at = sandbox time, status = }.
-- Its status at time t is the last transition at or before t, so changes made
-- by a DF transaction appear exactly when the transaction reports Success.
local type, ipairs, pairs, tostring, tonumber = type, ipairs, pairs, tostring, tonumber
local floor, format = math.floor, string.format
local lib = require("spapi.sandbox.programs.vendor_df_transactions").lib

local _M = {}
local P = {}
_M.po = P

P.KIND = "vdf_po"

-- purchase order numbers: 8 base-36 characters like Amazon's "2JK3S9VC"
local B36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
local LOW, SPAN = 78364164096, 2742745743360   -- 36^7, 36^8 - 36^7
local function po_number(sb)
  local n = sb.state.incr("vdf_po_seq", 1)
  local v = LOW + (n * 1597334677 + 4321) % SPAN   -- a bijection: 1597334677 is coprime to SPAN
  local s = {}
  for i = 8, 1, -1 do
    local d = v % 36
    s[i] = B36:sub(d + 1, d + 1)
    v = floor(v / 36)
  end
  return table.concat(s)
end

local ADDRESSES = {
  { name = "Jane Doe", addressLine1 = "123 Any Street", addressLine2 = "Apt 5", city = "Seattle",
    stateOrRegion = "WA", postalCode = "98109", countryCode = "US", phone = "+1 206 555 0100" },
  { name = "John Roe", attention = "Reception", addressLine1 = "410 Terry Ave N", city = "Seattle",
    stateOrRegion = "WA", postalCode = "98109-5210", countryCode = "US" },
  { name = "Maria Garcia", addressLine1 = "300 Turnbull Ave", city = "Detroit",
    stateOrRegion = "MI", postalCode = "48123", countryCode = "US", phone = "7132341234" },
}

local PRODUCTS = {
  { asin = "B07DFVDRAB", sku = "8806098286500", title = "Stainless Steel Kettle 1.7 L", price = "39.99" },
  { asin = "B07DFYF5AB", sku = "8806098286123", title = "Ceramic Pour-Over Coffee Set", price = "24.50" },
  { asin = "B08XYZ1234", sku = "8806098286777", title = "Bamboo Cutting Board, Large", price = "18.00" },
}

local function money(amount) return { currencyCode = "USD", amount = amount } end

local function cents(s) return floor(tonumber(s) * 100 + 0.5) end
local function amount(c) return format("%d.%02d", floor(c / 100), c % 100) end

-- variant 1: one item; 2: two items, priority, packing slip; 3: gift, scheduled delivery
local function order_details(sb, n, variant, selling, shipfrom, created)
  local items, total_tax = {}, 0
  local nitems = variant == 2 and 2 or 1
  for i = 1, nitems do
    local p = PRODUCTS[(n + i) % #PRODUCTS + 1]
    local qty = (variant == 2 and i == 2) and 2 or 1
    local net = cents(p.price)
    local tax = floor(net * qty / 10 + 0.5)
    total_tax = total_tax + tax
    local it = {
      itemSequenceNumber = format("%05d", i),
      buyerProductIdentifier = p.asin, vendorProductIdentifier = p.sku, title = p.title,
      orderedQuantity = { amount = qty, unitOfMeasure = "Each" },
      netPrice = money(p.price),
      totalPrice = money(amount(net * qty)),
      taxDetails = { taxLineItem = { { taxRate = "0.10", taxAmount = money(amount(tax)), type = "TOTAL" } } },
    }
    if variant == 3 then
      it.giftDetails = { giftMessage = "Happy birthday!", giftWrapId = "GW-001" }
      it.scheduledDeliveryShipment = {
        scheduledDeliveryServiceType = "SCHEDULED_DELIVERY",
        earliestNominatedDeliveryDate = sb.iso(created + 2 * 86400),
        latestNominatedDeliveryDate = sb.iso(created + 3 * 86400),
      }
    end
    items[i] = it
  end
  local seq = format("%07d-%07d", (n * 7919) % 10000000, (n * 104729) % 10000000)
  return {
    customerOrderNumber = "113-" .. seq,
    orderDate = sb.iso(created),
    shipmentDetails = {
      isPriorityShipment = variant == 2,
      isScheduledDeliveryShipment = variant == 3,
      isPslipRequired = variant == 2,
      isGift = variant == 3,
      shipMethod = variant == 2 and "UPS_NEXT" or "UPS_GR_RES",
      shipmentDates = {
        requiredShipDate = sb.iso(created + 86400),
        promisedDeliveryDate = sb.iso(created + (variant == 2 and 2 or 4) * 86400),
      },
      messageToCustomer = "This shipment completes your order. Thank you for shopping at Amazon.com",
    },
    taxTotal = { taxLineItem = { { taxAmount = money(amount(total_tax)), type = "TOTAL" } } },
    sellingParty = { partyId = selling },
    shipFromParty = { partyId = shipfrom },
    shipToParty = lib.deepcopy(ADDRESSES[n % #ADDRESSES + 1]),
    billToParty = { partyId = selling },
    hasCustomizableItems = false,
    items = items,
  }
end

--- Create a NEW purchase order visible from `created` on (default now).
-- owner: selling partner id that sees it (nil: every caller).
function P.create(sb, owner, selling, shipfrom, variant, created)
  created = created or sb.now()
  local number = po_number(sb)
  local n = sb.state.incr("vdf_po_variant_seq", 1)
  local po = {
    purchaseOrderNumber = number, owner = owner, created = created,
    details = order_details(sb, n, variant or 1, selling, shipfrom, created),
    transitions = { { at = created, status = "NEW" } },
  }
  sb.state.put(P.KIND, number, po)
  return po
end

function P.status(po, t)
  local s = "NEW"
  for _, tr in ipairs(po.transitions) do
    if tr.at <= t then s = tr.status end
  end
  return s
end

-- time at which the PO reached status s (nil if never / not yet)
function P.status_time(po, s, t)
  for _, tr in ipairs(po.transitions) do
    if tr.status == s and tr.at <= t then return tr.at end
  end
  return nil
end

function P.visible(sb, req, po)
  return po.created <= sb.now() and (po.owner == nil or po.owner == req.selling_partner)
end

function P.get(sb, req, number)
  if type(number) ~= "string" then return nil end
  local po = sb.state.get(P.KIND, number)
  if po and P.visible(sb, req, po) then return po end
  return nil
end

function P.list(sb, req)
  local out = {}
  for _, po in ipairs(sb.state.list(P.KIND)) do
    if P.visible(sb, req, po) then out[#out + 1] = po end
  end
  return out
end

function P.save(sb, po) sb.state.put(P.KIND, po.purchaseOrderNumber, po) end

function P.transition(po, at, status)
  po.transitions[#po.transitions + 1] = { at = at, status = status }
end

function P.render(sb, po, details)
  if details == false then return { purchaseOrderNumber = po.purchaseOrderNumber } end
  local d = lib.deepcopy(po.details)
  d.orderStatus = P.status(po, sb.now())
  return { purchaseOrderNumber = po.purchaseOrderNumber, orderDetails = d }
end

function P.item_numbers(po)
  local set = {}
  for _, it in ipairs(po.details.items) do set[tonumber(it.itemSequenceNumber)] = it end
  return set
end

local STATUSES = { NEW = true, SHIPPED = true, ACCEPTED = true, CANCELLED = true }

-- acknowledgement codes: "00" = accepted (shipping 100 percent of ordered product);
-- other two-digit codes are cancellations (out of stock, invalid SKU, ...)
local function ack_result(code)
  if code == "00" then return "ACCEPTED" end
  if type(code) == "string" and code:match("^%d%d$") then return "CANCELLED" end
  return nil
end

local function validate_ack(sb, req, a, where, seen)
  local errs = {}
  local function bad(msg) errs[#errs + 1] = { code = "InvalidInput", message = where .. ": " .. msg } end
  if type(a) ~= "table" then bad("must be an object"); return errs end
  for _, f in ipairs({ "purchaseOrderNumber", "vendorOrderNumber", "acknowledgementDate" }) do
    if not lib.str(a[f]) then bad(f .. " is required") end
  end
  if lib.str(a.acknowledgementDate) and not sb.parse_iso(a.acknowledgementDate) then
    bad("acknowledgementDate '" .. a.acknowledgementDate .. "' is not a valid date-time")
  end
  local status = type(a.acknowledgementStatus) == "table" and a.acknowledgementStatus.code
  if not lib.str(status) then bad("acknowledgementStatus.code is required")
  elseif not ack_result(status) then bad("acknowledgementStatus.code '" .. status .. "' is not a valid two-digit code") end
  if not lib.party_id(a.sellingParty) then bad("sellingParty.partyId is required") end
  if not lib.party_id(a.shipFromParty) then bad("shipFromParty.partyId is required") end
  if not lib.is_array(a.itemAcknowledgements) then bad("itemAcknowledgements is required (all line items)") end
  if #errs > 0 then return errs end

  local po = P.get(sb, req, a.purchaseOrderNumber)
  if not po then bad("purchase order " .. a.purchaseOrderNumber .. " does not exist"); return errs end
  if seen[a.purchaseOrderNumber] then bad("purchase order " .. a.purchaseOrderNumber .. " is acknowledged twice in this request") end
  seen[a.purchaseOrderNumber] = true
  if po.acknowledged or P.status(po, sb.now()) ~= "NEW" then
    bad("purchase order " .. a.purchaseOrderNumber .. " has already been acknowledged")
  end
  if a.sellingParty.partyId ~= po.details.sellingParty.partyId then
    bad("sellingParty " .. a.sellingParty.partyId .. " does not match the purchase order")
  end
  if a.shipFromParty.partyId ~= po.details.shipFromParty.partyId then
    bad("shipFromParty " .. a.shipFromParty.partyId .. " does not match the purchase order")
  end
  local items, acked = P.item_numbers(po), {}
  for j, ia in ipairs(a.itemAcknowledgements) do
    local w = "itemAcknowledgements[" .. (j - 1) .. "]"
    local seqn = type(ia) == "table" and tonumber(ia.itemSequenceNumber)
    if not seqn then bad(w .. ".itemSequenceNumber is required")
    elseif not items[seqn] then bad(w .. ": item " .. tostring(ia.itemSequenceNumber) .. " is not part of the purchase order")
    else
      acked[seqn] = true
      local q = ia.acknowledgedQuantity
      if type(q) ~= "table" or type(q.amount) ~= "number" or q.amount < 0 then
        bad(w .. ".acknowledgedQuantity.amount is required")
      elseif q.amount > items[seqn].orderedQuantity.amount then
        bad(w .. ": acknowledgedQuantity exceeds the ordered quantity")
      end
    end
  end
  for n, it in pairs(items) do
    if not acked[n] then
      bad("partial acknowledgement: line item " .. it.itemSequenceNumber .. " is not acknowledged")
    end
  end
  return errs, po, ack_result(status)
end

_M.handlers = {
  getOrders = function(req, sb)
    local p, st, body = lib.list_params(sb, req, 50)
    if not p then return st, body end
    local q = req.query
    if q.status ~= nil and not STATUSES[q.status] then
      return sb.err(400, "InvalidInput", "status must be one of NEW, SHIPPED, ACCEPTED, CANCELLED, got " .. tostring(q.status))
    end
    local details = true
    if q.includeDetails ~= nil then
      if q.includeDetails == "false" then details = false
      elseif q.includeDetails ~= "true" then
        return sb.err(400, "InvalidInput", "includeDetails must be true or false, got " .. tostring(q.includeDetails))
      end
    end
    local now, rows = sb.now(), {}
    for _, po in ipairs(P.list(sb, req)) do
      if (not p.shipFromPartyId or po.details.shipFromParty.partyId == p.shipFromPartyId)
        and (not q.status or P.status(po, now) == q.status) then
        rows[#rows + 1] = { t = po.created, v = P.render(sb, po, details) }
      end
    end
    local page, token = lib.paginate(sb, rows, p)
    local out = { orders = lib.array(sb, page) }
    if token then out.pagination = { nextToken = token } end
    return 200, out
  end,

  getOrder = function(req, sb)
    local po = P.get(sb, req, req.params.purchaseOrderNumber)
    if not po then
      return sb.err(404, "NotFound", "Purchase order " .. tostring(req.params.purchaseOrderNumber) .. " does not exist")
    end
    return 200, P.render(sb, po)
  end,

  submitAcknowledgement = lib.locked("vdf", function(req, sb)
    local b = req.body
    if type(b) ~= "table" or not lib.is_array(b.orderAcknowledgements) then
      return sb.err(400, "InvalidInput", "The request body must contain a non-empty orderAcknowledgements array")
    end
    local errors, accepted, seen, named = {}, {}, {}, {}
    for i, a in ipairs(b.orderAcknowledgements) do
      if type(a) == "table" then named[#named + 1] = a.purchaseOrderNumber end
      local errs, po, result = validate_ack(sb, req, a, "orderAcknowledgements[" .. (i - 1) .. "]", seen)
      for _, e in ipairs(errs) do errors[#errors + 1] = e end
      if #errs == 0 then accepted[#accepted + 1] = { po = po, result = result, ack = a } end
    end
    -- all or nothing: a transaction with any error changes no purchase order
    local id, ready = lib.new_transaction(sb, req, "submitAcknowledgement", errors)
    lib.count("vdf.acknowledgements", named)
    if #errors == 0 then
      lib.count("vdf.acknowledged", named)
      for _, x in ipairs(accepted) do
        x.po.acknowledged = true
        x.po.vendorOrderNumber = x.ack.vendorOrderNumber
        P.transition(x.po, ready, x.result)
        P.save(sb, x.po)
      end
    end
    return 202, { transactionId = id }
  end),
}

-- Default data: two NEW purchase orders for the default vendor/warehouse, visible
-- to every caller (generateOrderScenarios creates more, per selling partner).
function _M.seed(sb)
  local t = sb.now() - 3600
  P.create(sb, nil, "SELLER1", "WAREHOUSE1", 1, t)
  P.create(sb, nil, "SELLER1", "WAREHOUSE1", 2, t + 60)
end

return _M
