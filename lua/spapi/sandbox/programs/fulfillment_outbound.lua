-- Multi-Channel Fulfillment: Fulfillment Outbound API 2020-07-01.
--
-- Orders live in state kind "mcf_order" keyed "<selling partner>/<sellerFulfillmentOrderId>".
-- Status is computed from timestamps on the sandbox clock (no timers), from the
-- moment the order is released for shipping (fulfillmentAction Ship):
--   +0 Received, +5 min Planning, +30 min Processing (shipment PENDING),
--   +2 h Complete (shipment SHIPPED with a package and tracking number);
--   delivery after 3 / 2 / 1 days (Standard / Expedited / Priority).
-- Units are reserved from the FBA inventory (programs/fba_inventory.lua) at creation,
-- given back on cancellation, and leave the inventory once shipped.
-- Options with their documented effect:
--   fulfillmentPolicy  FillOrKill refuses an order the stock cannot cover; FillAllAvailable
--                      ships what there is and cancels the rest (cancelledQuantity), the
--                      order ends CompletePartialled; FillAll ships what there is and keeps
--                      the order Processing with the rest unfulfillable for 24 h, then it
--                      ends CompletePartialled (or Unfulfillable when nothing shipped).
--   BLOCK_AMZL         (featureConstraints, Required) ships with a carrier other than Amazon
--                      Logistics (UPS, 1Z tracking numbers) and adds a transportation surcharge.
--   ScheduledDelivery  JP addresses only; the preview offers deliveryWindows
--                      (includeDeliveryWindows), the order needs a deliveryWindow and Ship,
--                      and is delivered at the window's start.
--   updateFulfillmentOrder items[].quantity  changes a line before processing; the
--                      difference is reserved or given back under the order's policy.
--   returns            a return item is New, then Processed one day later with a
--                      returnReceivedCondition; sellable units go back to fulfillable stock.
local _M = {}

local inventory = require "spapi.sandbox.programs.fba_inventory"

local KIND = "mcf_order"
local PAGE = 5
local T_PLANNING, T_PROCESSING, T_SHIPPED = 300, 1800, 7200
local TRANSIT = { Standard = 3, Expedited = 2, Priority = 1, ScheduledDelivery = 1 }
local SPEEDS = { Standard = true, Expedited = true, Priority = true, ScheduledDelivery = true }
local PER_UNIT = { Standard = 3.22, Expedited = 5.49, Priority = 8.31, ScheduledDelivery = 9.99 }
local PER_ORDER = { Standard = 0, Expedited = 1.00, Priority = 2.00, ScheduledDelivery = 3.00 }
local CURRENCY = { US = "USD", CA = "CAD", MX = "MXN", GB = "GBP", UK = "GBP", DE = "EUR", FR = "EUR", IT = "EUR",
  ES = "EUR", NL = "EUR", BE = "EUR", IE = "EUR", JP = "JPY", AU = "AUD", IN = "INR", SE = "SEK", PL = "PLN",
  BR = "BRL", SG = "SGD", AE = "AED" }
local STATUSES = { New = true, Received = true, Planning = true, Processing = true, Cancelled = true, Complete = true,
  CompletePartialled = true, Unfulfillable = true, Invalid = true }
local DEFAULT_MARKETPLACE = "ATVPDKIKX0DER"
local FILL_ALL_WAIT = 86400 -- FillAll: unshipped items make the order final after 24 h
local RETURN_PROCESSING = 86400 -- a return item is Processed one day after it was requested
local BLOCK_AMZL_FEE = 1.50 -- transportation surcharge per order when AMZL is blocked
-- returnReasonCode → the condition the fulfillment center finds
local RETURN_CONDITION = { ["CR-DEFECTIVE"] = "Defective", ["CR-DAMAGED_BY_CARRIER"] = "CarrierDamaged",
  ["CR-MISSING_PARTS"] = "Defective" }
local FEATURES = {
  { featureName = "BLANK_BOX", featureDescription = "Ship MCF orders in unbranded packaging." },
  { featureName = "BLOCK_AMZL", featureDescription = "Block Amazon Logistics as the carrier for MCF orders." },
  { featureName = "SIGNATURE_CONFIRMATION", featureDescription = "Require a signature on delivery." },
}
local FEATURE_BY_NAME = {}
for _, f in ipairs(FEATURES) do FEATURE_BY_NAME[f.featureName] = f end
local REASONS = {
  { returnReasonCode = "CR-UNWANTED_ITEM", description = "No longer needed/wanted" },
  { returnReasonCode = "CR-DEFECTIVE", description = "Defective/Does not work properly" },
  { returnReasonCode = "CR-ORDERED_WRONG_ITEM", description = "Bought by mistake" },
  { returnReasonCode = "CR-DAMAGED_BY_CARRIER", description = "Product and shipping box both damaged" },
  { returnReasonCode = "CR-MISSING_PARTS", description = "Missing parts or accessories" },
  { returnReasonCode = "CR-SWITCHEROO", description = "Wrong item was sent" },
}
local REASON_BY_CODE = {}
for _, r in ipairs(REASONS) do REASON_BY_CODE[r.returnReasonCode] = r end

local function key(req, id) return req.selling_partner .. "/" .. id end

-- BLOCK_AMZL asked for (featureFulfillmentPolicy Required, the default)
local function blocks_amzl(features)
  for _, f in ipairs(type(features) == "table" and features or {}) do
    if type(f) == "table" and f.featureName == "BLOCK_AMZL" and f.featureFulfillmentPolicy ~= "NotRequired" then
      return true
    end
  end
  return false
end

local function is_jp(address) return type(address) == "table" and address.countryCode == "JP" end

local function money(code, v) return { currencyCode = code, value = string.format("%.2f", v) } end

local function currency(address)
  return CURRENCY[(address and address.countryCode or "US"):upper()] or "USD"
end

local function bad(sb, msg) return sb.err(400, "InvalidInput", msg) end

local function check_address(sb, a, where)
  if type(a) ~= "table" then return bad(sb, where .. " is required.") end
  for _, f in ipairs({ "name", "addressLine1", "postalCode", "countryCode" }) do
    if type(a[f]) ~= "string" or a[f] == "" then return bad(sb, where .. "." .. f .. " is required.") end
  end
  if #a.countryCode ~= 2 then return bad(sb, where .. ".countryCode must be a two-letter ISO 3166 code.") end
  return nil
end

local function check_items(sb, items, need_item_id)
  if type(items) ~= "table" or #items == 0 then return bad(sb, "items must contain at least one item.") end
  local seen = {}
  for i, it in ipairs(items) do
    local w = "items[" .. (i - 1) .. "]"
    if type(it) ~= "table" or type(it.sellerSku) ~= "string" or it.sellerSku == "" then
      return bad(sb, w .. ".sellerSku is required.")
    end
    if need_item_id then
      if type(it.sellerFulfillmentOrderItemId) ~= "string" or it.sellerFulfillmentOrderItemId == "" then
        return bad(sb, w .. ".sellerFulfillmentOrderItemId is required.")
      end
      if seen[it.sellerFulfillmentOrderItemId] then
        return bad(sb, "Duplicate sellerFulfillmentOrderItemId '" .. it.sellerFulfillmentOrderItemId .. "'.")
      end
      seen[it.sellerFulfillmentOrderItemId] = true
    end
    local q = tonumber(it.quantity)
    if not q or q < 1 or q ~= math.floor(q) then return bad(sb, w .. ".quantity must be a positive integer.") end
  end
  return nil
end

-- Order status at time `now`: status, status time, shipped time (or nil).
local function progress(order, now)
  if order.cancelled_at then return "Cancelled", order.cancelled_at end
  local granted = 0
  for _, it in ipairs(order.items) do granted = granted + it.granted end
  local fill_all_none = granted == 0 and order.request.fulfillmentPolicy == "FillAll"
  if granted == 0 and not fill_all_none then return "Unfulfillable", order.received end
  local partial = false
  for _, it in ipairs(order.items) do
    if it.granted < it.quantity then partial = true end
  end
  local done = partial and "CompletePartialled" or "Complete"
  local fill_all = partial and order.request.fulfillmentPolicy == "FillAll"
  if order.forced then
    local st = order.forced.status
    if st == "Complete" or st == "CompletePartialled" then return done, order.forced.at, order.forced.at end
    return st, order.forced.at
  end
  if not order.start then return "Received", order.received end
  local e = now - order.start
  if e < T_PLANNING then return "Received", order.received end
  if e < T_PROCESSING then return "Planning", order.start + T_PLANNING end
  if e < T_SHIPPED then return "Processing", order.start + T_PROCESSING end
  if fill_all then
    -- what there is ships; the order waits for the rest, then gives up on it
    local shipped = granted > 0 and order.start + T_SHIPPED or nil
    if e < FILL_ALL_WAIT then return "Processing", order.start + T_PROCESSING, shipped end
    return granted > 0 and "CompletePartialled" or "Unfulfillable", order.start + FILL_ALL_WAIT, shipped
  end
  return done, order.start + T_SHIPPED, order.start + T_SHIPPED
end

-- Amazon Logistics numbers start TBA; other carriers get a UPS-style 1Z number
local function tracking_number(order)
  if order.carrier == "AMZN_US" then return string.format("TBA%012d", 300000000000 + order.package) end
  return string.format("1Z999AA1%010d", order.package)
end

-- Shipped orders: move reserved units out of the inventory once.
local function settle(sb, k, order)
  local status, _, shipped = progress(order, sb.now())
  if shipped and not order.settled then
    sb.state.update(KIND, k, function(o)
      if not o or o.settled then return nil end
      local counts = {}
      for _, it in ipairs(o.items) do counts[it.sellerSku] = (counts[it.sellerSku] or 0) + it.granted end
      inventory.ship(sb, counts)
      o.settled = true
      return o
    end)
    order.settled = true
  end
  return status
end

-- seconds from shipping to delivery: the speed's transit time, or until the start
-- of a Scheduled Delivery window
local function transit_of(order, shipped_at)
  local r = order.request
  local window = r.shippingSpeedCategory == "ScheduledDelivery" and order.window_start
  local t = (TRANSIT[r.shippingSpeedCategory] or 3) * 86400
  if window then t = math.max(window - shipped_at, 3600) end
  return t
end

local function estimate(order)
  local base = order.start or order.received
  local ship = base + T_SHIPPED
  local arrive = ship + transit_of(order, ship)
  return ship, arrive
end

local function order_view(sb, order)
  local r = order.request
  local status, at = progress(order, sb.now())
  local o = {
    sellerFulfillmentOrderId = r.sellerFulfillmentOrderId, marketplaceId = order.marketplaceId,
    displayableOrderId = r.displayableOrderId, displayableOrderDate = r.displayableOrderDate,
    displayableOrderComment = r.displayableOrderComment, shippingSpeedCategory = r.shippingSpeedCategory,
    deliveryWindow = r.deliveryWindow, destinationAddress = r.destinationAddress,
    fulfillmentAction = r.fulfillmentAction or "Ship", fulfillmentPolicy = r.fulfillmentPolicy or "FillOrKill",
    codSettings = r.codSettings, receivedDate = sb.iso(order.received), fulfillmentOrderStatus = status,
    statusUpdatedDate = sb.iso(math.max(at, order.updated or at)),
    notificationEmails = r.notificationEmails and sb.json.array(r.notificationEmails) or nil,
    featureConstraints = r.featureConstraints and sb.json.array(r.featureConstraints) or nil,
  }
  return o, status
end

local function order_result(sb, order)
  local fo, status = order_view(sb, order)
  local ship_at, arrive_at = estimate(order)
  local _, _, shipped = progress(order, sb.now())
  local items = sb.json.array()
  for _, it in ipairs(order.items) do
    items[#items + 1] = {
      sellerSku = it.sellerSku, sellerFulfillmentOrderItemId = it.sellerFulfillmentOrderItemId,
      quantity = it.quantity, giftMessage = it.giftMessage, displayableComment = it.displayableComment,
      fulfillmentNetworkSku = it.fnSku,
      cancelledQuantity = status == "Cancelled" and it.quantity
        or (fo.fulfillmentPolicy == "FillAllAvailable" and it.quantity - it.granted) or 0,
      unfulfillableQuantity = (status ~= "Cancelled" and fo.fulfillmentPolicy ~= "FillAllAvailable")
        and it.quantity - it.granted or 0,
      estimatedShipDate = sb.iso(shipped or ship_at), estimatedArrivalDate = sb.iso(arrive_at),
      perUnitPrice = it.perUnitPrice, perUnitTax = it.perUnitTax, perUnitDeclaredValue = it.perUnitDeclaredValue,
    }
  end
  local shipments = sb.json.array()
  if status == "Processing" or shipped then
    local sitems = sb.json.array()
    for _, it in ipairs(order.items) do
      if it.granted > 0 then
        sitems[#sitems + 1] = { sellerSku = it.sellerSku, sellerFulfillmentOrderItemId = it.sellerFulfillmentOrderItemId,
                                quantity = it.granted, packageNumber = shipped and order.package or nil }
      end
    end
    local sh = {
      amazonShipmentId = order.shipment_id, fulfillmentCenterId = order.fc,
      fulfillmentShipmentStatus = shipped and "SHIPPED" or "PENDING",
      shippingDate = sb.iso(shipped or ship_at), estimatedArrivalDate = sb.iso(arrive_at),
      fulfillmentShipmentItem = sitems,
    }
    if shipped then
      sh.fulfillmentShipmentPackage = sb.json.array({ {
        packageNumber = order.package, carrierCode = order.carrier, trackingNumber = tracking_number(order),
        amazonFulfillmentTrackingNumber = tracking_number(order), estimatedArrivalDate = sb.iso(arrive_at),
      } })
    end
    if #sitems > 0 then shipments[1] = sh end
  end
  return {
    fulfillmentOrder = fo, fulfillmentOrderItems = items, fulfillmentShipments = shipments,
    returnItems = sb.json.array(order.returns or {}), returnAuthorizations = sb.json.array(order.authorizations or {}),
    paymentInformation = order.request.paymentInformation and sb.json.array(order.request.paymentInformation) or nil,
  }
end

-- Return items a fulfillment center has had for RETURN_PROCESSING move from New to
-- Processed with the condition it found; sellable units go back on sale.
local function process_returns(sb, k, order)
  local now = sb.now()
  local function due(r)
    return r.status == "New" and (sb.parse_iso(r.statusChangedDate) or now) + RETURN_PROCESSING <= now
  end
  local any = false
  for _, r in ipairs(order.returns or {}) do if due(r) then any = true end end
  if not any then return end
  local updated = sb.state.update(KIND, k, function(o)
    if not o then return nil end
    for _, r in ipairs(o.returns or {}) do
      if due(r) then
        local sku
        for _, it in ipairs(o.items) do
          if it.sellerFulfillmentOrderItemId == r.sellerFulfillmentOrderItemId then sku = it.sellerSku end
        end
        r.status = "Processed"
        r.returnReceivedCondition = RETURN_CONDITION[r.sellerReturnReasonCode] or "Sellable"
        r.statusChangedDate = sb.iso(sb.parse_iso(r.statusChangedDate) + RETURN_PROCESSING)
        if sku then inventory.receive_return(sb, sku, 1, r.returnReceivedCondition == "Sellable") end
      end
    end
    return o
  end)
  if updated then order.returns = updated.returns end
end

local function load(sb, req, id)
  local k = key(req, id)
  local order = sb.state.get(KIND, k)
  if not order then return nil, k end
  settle(sb, k, order)
  process_returns(sb, k, order)
  return order, k
end

local function not_found(sb, id)
  return sb.err(404, "NotFound", "The fulfillment order with sellerFulfillmentOrderId '" .. tostring(id) .. "' was not found.")
end

_M.handlers = {}

-- getFulfillmentPreview ----------------------------------------------------------
function _M.handlers.getFulfillmentPreview(req, sb)
  local b = req.body or {}
  local e1, e2 = check_address(sb, b.address, "address")
  if e1 then return e1, e2 end
  e1, e2 = check_items(sb, b.items, true)
  if e1 then return e1, e2 end
  local speeds = b.shippingSpeedCategories
  if speeds == nil or #speeds == 0 then speeds = { "Standard", "Expedited", "Priority" } end
  for _, s in ipairs(speeds) do
    if not SPEEDS[s] then return bad(sb, "Invalid shippingSpeedCategory '" .. tostring(s) .. "'.") end
  end
  local cur = currency(b.address)
  local now = sb.now()
  local previews = sb.json.array()
  for _, speed in ipairs(speeds) do
    local fulfillable_items, unfulfillable = sb.json.array(), sb.json.array()
    local units, weight = 0, 0
    local reasons = {}
    for _, it in ipairs(b.items) do
      local inv = inventory.get(sb, it.sellerSku)
      local why
      if not inv then
        why = "InvalidSKU"
      elseif inv.fulfillable < it.quantity then
        why = "InventoryUnavailable"
      elseif speed == "ScheduledDelivery" and not is_jp(b.address) then
        why = "NotEligibleForScheduledDelivery"
      end
      if why then
        reasons[why] = true
        unfulfillable[#unfulfillable + 1] = { sellerSku = it.sellerSku, quantity = it.quantity,
          sellerFulfillmentOrderItemId = it.sellerFulfillmentOrderItemId, itemUnfulfillableReasons = { why } }
      else
        local w = inv.weight * it.quantity
        units, weight = units + it.quantity, weight + w
        fulfillable_items[#fulfillable_items + 1] = { sellerSku = it.sellerSku, quantity = it.quantity,
          sellerFulfillmentOrderItemId = it.sellerFulfillmentOrderItemId,
          estimatedShippingWeight = { unit = "POUNDS", value = string.format("%.2f", w) },
          shippingWeightCalculationMethod = "Package" }
      end
    end
    local ok = #unfulfillable == 0
    local p = {
      shippingSpeedCategory = speed, isFulfillable = ok, isCODCapable = false,
      marketplaceId = b.marketplaceId or DEFAULT_MARKETPLACE,
      estimatedShippingWeight = { unit = "POUNDS", value = string.format("%.2f", weight) },
      fulfillmentPreviewShipments = sb.json.array(), unfulfillablePreviewItems = unfulfillable,
      orderUnfulfillableReasons = sb.json.array(),
      featureConstraints = b.featureConstraints,
    }
    if ok then
      local days = TRANSIT[speed]
      p.estimatedFees = sb.json.array({
        { name = "FBAPerUnitFulfillmentFee", amount = money(cur, PER_UNIT[speed] * units) },
        { name = "FBAPerOrderFulfillmentFee", amount = money(cur, PER_ORDER[speed]) },
        { name = "FBATransportationFee", amount = money(cur, blocks_amzl(b.featureConstraints) and BLOCK_AMZL_FEE or 0) },
      })
      if speed == "ScheduledDelivery" and b.includeDeliveryWindows then
        -- three-hour windows on the next three days, from two days out
        local windows = sb.json.array()
        local day0 = math.floor(now / 86400) * 86400
        for d = 2, 4 do
          local start = day0 + d * 86400 + 3600 * 9
          windows[#windows + 1] = { startDate = sb.iso(start), endDate = sb.iso(start + 3 * 3600) }
        end
        p.scheduledDeliveryInfo = { deliveryTimeZone = "Asia/Tokyo", deliveryWindows = windows }
      end
      p.fulfillmentPreviewShipments[1] = {
        earliestShipDate = sb.iso(now + 3600), latestShipDate = sb.iso(now + 86400),
        earliestArrivalDate = sb.iso(now + days * 86400), latestArrivalDate = sb.iso(now + (days + 2) * 86400),
        shippingNotes = sb.json.array(), fulfillmentPreviewItems = fulfillable_items,
      }
    else
      for r in pairs(reasons) do p.orderUnfulfillableReasons[#p.orderUnfulfillableReasons + 1] = r end
      table.sort(p.orderUnfulfillableReasons)
    end
    previews[#previews + 1] = p
  end
  return 200, { payload = { fulfillmentPreviews = previews } }
end

-- createFulfillmentOrder ----------------------------------------------------------
-- ScheduledDelivery: JP only, with Ship and a delivery window in the future
local function check_scheduled(sb, b)
  if b.shippingSpeedCategory ~= "ScheduledDelivery" then return nil end
  if not is_jp(b.destinationAddress) then
    return bad(sb, "ScheduledDelivery is only available in the JP marketplace.")
  end
  if b.fulfillmentAction == "Hold" then
    return bad(sb, "fulfillmentAction Hold is not valid when shippingSpeedCategory is ScheduledDelivery.")
  end
  local w = b.deliveryWindow
  local from = type(w) == "table" and sb.parse_iso(w.startDate)
  local to = type(w) == "table" and sb.parse_iso(w.endDate)
  if not from or not to then
    return bad(sb, "deliveryWindow with startDate and endDate is required for ScheduledDelivery.")
  end
  if to <= from then return bad(sb, "deliveryWindow.endDate must be after deliveryWindow.startDate.") end
  if from < sb.now() + T_SHIPPED + TRANSIT.ScheduledDelivery * 86400 then
    return bad(sb, "deliveryWindow.startDate is too soon to be met.")
  end
  return nil
end

local function validate_create(sb, b)
  if type(b) ~= "table" then return bad(sb, "The request body is required.") end
  local id = b.sellerFulfillmentOrderId
  if type(id) ~= "string" or id == "" then return bad(sb, "sellerFulfillmentOrderId is required.") end
  if #id > 40 then return bad(sb, "sellerFulfillmentOrderId must be at most 40 characters.") end
  for _, f in ipairs({ "displayableOrderId", "displayableOrderDate", "displayableOrderComment" }) do
    if type(b[f]) ~= "string" or b[f] == "" then return bad(sb, f .. " is required.") end
  end
  if not sb.parse_iso(b.displayableOrderDate) then
    return bad(sb, "displayableOrderDate must be an ISO-8601 date-time.")
  end
  if not SPEEDS[b.shippingSpeedCategory or ""] then
    return bad(sb, "shippingSpeedCategory must be one of Standard, Expedited, Priority, ScheduledDelivery.")
  end
  if b.fulfillmentAction ~= nil and b.fulfillmentAction ~= "Ship" and b.fulfillmentAction ~= "Hold" then
    return bad(sb, "fulfillmentAction must be Ship or Hold.")
  end
  local pol = b.fulfillmentPolicy
  if pol ~= nil and pol ~= "FillOrKill" and pol ~= "FillAll" and pol ~= "FillAllAvailable" then
    return bad(sb, "fulfillmentPolicy must be FillOrKill, FillAll or FillAllAvailable.")
  end
  local e1, e2 = check_address(sb, b.destinationAddress, "destinationAddress")
  if e1 then return e1, e2 end
  e1, e2 = check_scheduled(sb, b)
  if e1 then return e1, e2 end
  return check_items(sb, b.items, true)
end

function _M.handlers.createFulfillmentOrder(req, sb)
  local b = req.body
  local e1, e2 = validate_create(sb, b)
  if e1 then return e1, e2 end
  local id = b.sellerFulfillmentOrderId
  local k = key(req, id)
  local fingerprint = sb.json.canonical(b)
  return sb.state.with_lock("mcf:" .. k, function()
    local existing = sb.state.get(KIND, k)
    -- a duplicate id is a 400 (the model's "invalid parameters"), whatever the
    -- content: a client that re-sent after a lost answer fetches the order
    if existing then
      return bad(sb, "A fulfillment order with sellerFulfillmentOrderId '" .. id
        .. "' already exists (a duplicate request). Use a new sellerFulfillmentOrderId.")
    end
    local lines = {}
    for _, it in ipairs(b.items) do lines[#lines + 1] = { sku = it.sellerSku, quantity = it.quantity } end
    local granted, code, msg = inventory.reserve(sb, lines, b.fulfillmentPolicy or "FillOrKill")
    if not granted then return sb.err(400, code, msg) end
    local now = sb.now()
    local items = {}
    for i, it in ipairs(b.items) do
      local inv = inventory.get(sb, it.sellerSku)
      local g = math.min(granted[it.sellerSku] or 0, it.quantity)
      granted[it.sellerSku] = (granted[it.sellerSku] or 0) - g
      items[i] = { sellerSku = it.sellerSku, sellerFulfillmentOrderItemId = it.sellerFulfillmentOrderItemId,
        quantity = it.quantity, granted = g, giftMessage = it.giftMessage, displayableComment = it.displayableComment,
        fnSku = it.fulfillmentNetworkSku or (inv and inv.fnSku), perUnitPrice = it.perUnitPrice,
        perUnitTax = it.perUnitTax, perUnitDeclaredValue = it.perUnitDeclaredValue }
    end
    local n = sb.state.incr("mcf_package", 1)
    local order = {
      sp = req.selling_partner, request = b, fingerprint = fingerprint, items = items,
      marketplaceId = b.marketplaceId or DEFAULT_MARKETPLACE,
      received = now, updated = now, start = (b.fulfillmentAction ~= "Hold") and now or nil,
      package = n, shipment_id = string.format("T%09d", 100000000 + n), fc = ({ "ONT8", "BFI4", "PHX6", "EWR4" })[n % 4 + 1],
      carrier = (b.shippingSpeedCategory == "Standard" and not blocks_amzl(b.featureConstraints)) and "AMZN_US" or "UPS",
      returns = {}, authorizations = {},
      window_start = b.shippingSpeedCategory == "ScheduledDelivery" and sb.parse_iso(b.deliveryWindow.startDate) or nil,
    }
    sb.state.put(KIND, k, order)
    sb.state.put("mcf_package", req.selling_partner .. "/" .. n, { order = k })
    return 200, {}
  end)
end

-- getFulfillmentOrder ---------------------------------------------------------------
function _M.handlers.getFulfillmentOrder(req, sb)
  local id = req.params.sellerFulfillmentOrderId
  local order = load(sb, req, id)
  if not order then return not_found(sb, id) end
  return 200, { payload = order_result(sb, order) }
end

-- listAllFulfillmentOrders -----------------------------------------------------------
function _M.handlers.listAllFulfillmentOrders(req, sb)
  local q = req.query
  local since
  if q.queryStartDate and q.queryStartDate ~= "" then
    since = sb.parse_iso(q.queryStartDate)
    if not since then return bad(sb, "queryStartDate must be an ISO-8601 date-time.") end
  end
  local start = 1
  if q.nextToken and q.nextToken ~= "" then
    local s, t = (sb.unb64(q.nextToken) or ""):match("^mcf:(%d+):(.*)$")
    if not s then return bad(sb, "Invalid nextToken.") end
    start = tonumber(s)
    since = tonumber(t)
  end
  local prefix = req.selling_partner .. "/"
  local matched = {}
  for _, order in ipairs(sb.state.list(KIND)) do
    if order.sp == req.selling_partner then
      local fo = order_view(sb, order)
      if not since or (sb.parse_iso(fo.statusUpdatedDate) or 0) >= since then
        matched[#matched + 1] = order
      end
    end
  end
  local page = sb.json.array()
  for i = start, math.min(#matched, start + PAGE - 1) do
    settle(sb, prefix .. matched[i].request.sellerFulfillmentOrderId, matched[i])
    page[#page + 1] = (order_view(sb, matched[i]))
  end
  local payload = { fulfillmentOrders = page }
  if start + PAGE <= #matched then
    payload.nextToken = sb.b64("mcf:" .. (start + PAGE) .. ":" .. (since and string.format("%.3f", since) or ""))
  end
  return 200, { payload = payload }
end

-- updateFulfillmentOrder ---------------------------------------------------------------
local UPDATABLE = { "marketplaceId", "displayableOrderId", "displayableOrderDate", "displayableOrderComment",
  "shippingSpeedCategory", "destinationAddress", "fulfillmentAction", "fulfillmentPolicy", "shipFromCountryCode",
  "notificationEmails", "featureConstraints" }

-- New quantities for the lines of an order (before processing): more units are
-- reserved under the order's policy (FillOrKill: all or the update is refused),
-- fewer give units back. Checks every line before anything changes.
local function update_quantities(sb, order, updates)
  local lines, wanted = {}, {}
  for i, u in ipairs(updates) do
    local w = "items[" .. (i - 1) .. "]"
    local line
    for _, it in ipairs(order.items) do
      if type(u) == "table" and it.sellerFulfillmentOrderItemId == u.sellerFulfillmentOrderItemId then line = it end
    end
    if not line then
      return bad(sb, w .. ".sellerFulfillmentOrderItemId does not name an item of the order.")
    end
    local q = u.quantity
    if q ~= nil then
      if type(q) ~= "number" or q < 1 or q ~= math.floor(q) then
        return bad(sb, w .. ".quantity must be a positive integer.")
      end
      if u.sellerSku ~= nil and u.sellerSku ~= line.sellerSku then
        return bad(sb, w .. ".sellerSku cannot be changed.")
      end
      wanted[line] = q
      if q > line.quantity then lines[#lines + 1] = { sku = line.sellerSku, quantity = q - line.quantity } end
    end
  end
  local granted = {}
  if #lines > 0 then
    local code, msg
    granted, code, msg = inventory.reserve(sb, lines, order.request.fulfillmentPolicy or "FillOrKill")
    if not granted then return sb.err(400, code, msg) end
  end
  local give_back = {}
  for line, q in pairs(wanted) do
    if q > line.quantity then
      local g = math.min(granted[line.sellerSku] or 0, q - line.quantity)
      granted[line.sellerSku] = (granted[line.sellerSku] or 0) - g
      line.granted = line.granted + g
    elseif line.granted > q then
      give_back[line.sellerSku] = (give_back[line.sellerSku] or 0) + line.granted - q
      line.granted = q
    end
    line.quantity = q
  end
  if next(give_back) then inventory.release(sb, give_back) end
  for _, it in ipairs(order.request.items) do
    for line, q in pairs(wanted) do
      if it.sellerFulfillmentOrderItemId == line.sellerFulfillmentOrderItemId then it.quantity = q end
    end
  end
  return nil
end

function _M.handlers.updateFulfillmentOrder(req, sb)
  local id = req.params.sellerFulfillmentOrderId
  local b = req.body or {}
  if b.shippingSpeedCategory ~= nil and not SPEEDS[b.shippingSpeedCategory] then
    return bad(sb, "Invalid shippingSpeedCategory.")
  end
  if b.fulfillmentAction ~= nil and b.fulfillmentAction ~= "Ship" and b.fulfillmentAction ~= "Hold" then
    return bad(sb, "fulfillmentAction must be Ship or Hold.")
  end
  if b.destinationAddress ~= nil then
    local e1, e2 = check_address(sb, b.destinationAddress, "destinationAddress")
    if e1 then return e1, e2 end
  end
  local k = key(req, id)
  return sb.state.with_lock("mcf:" .. k, function()
    local order = load(sb, req, id)
    if not order then return not_found(sb, id) end
    local status = progress(order, sb.now())
    if status ~= "Received" and status ~= "Planning" then
      return bad(sb, "The fulfillment order '" .. id .. "' cannot be updated because its status is " .. status .. ".")
    end
    local now = sb.now()
    for _, f in ipairs(UPDATABLE) do
      if b[f] ~= nil then order.request[f] = b[f] end
    end
    if b.marketplaceId then order.marketplaceId = b.marketplaceId end
    if b.fulfillmentAction == "Ship" and not order.start then order.start = now end
    if b.fulfillmentAction == "Hold" and order.start and status == "Received" then order.start = nil end
    if type(b.items) == "table" then
      local e1, e2 = update_quantities(sb, order, b.items)
      if e1 then return e1, e2 end
      for _, u in ipairs(b.items) do
        for _, it in ipairs(order.items) do
          if it.sellerFulfillmentOrderItemId == u.sellerFulfillmentOrderItemId then
            if u.giftMessage ~= nil then it.giftMessage = u.giftMessage end
            if u.displayableComment ~= nil then it.displayableComment = u.displayableComment end
          end
        end
      end
    end
    order.updated = now
    sb.state.put(KIND, k, order)
    return 200, {}
  end)
end

-- cancelFulfillmentOrder ---------------------------------------------------------------
function _M.handlers.cancelFulfillmentOrder(req, sb)
  local id = req.params.sellerFulfillmentOrderId
  local k = key(req, id)
  return sb.state.with_lock("mcf:" .. k, function()
    local order = load(sb, req, id)
    if not order then return not_found(sb, id) end
    local status = progress(order, sb.now())
    if status == "Cancelled" then return 200, {} end
    if status ~= "Received" and status ~= "Planning" and status ~= "Unfulfillable" then
      return bad(sb, "The fulfillment order '" .. id .. "' cannot be cancelled because it is in status "
        .. status .. " (orders can be cancelled only before they are processed for shipping).")
    end
    local counts = {}
    for _, it in ipairs(order.items) do counts[it.sellerSku] = (counts[it.sellerSku] or 0) + it.granted end
    inventory.release(sb, counts)
    order.cancelled_at = sb.now()
    order.updated = order.cancelled_at
    sb.state.put(KIND, k, order)
    return 200, {}
  end)
end

-- submitFulfillmentOrderStatusUpdate (sandbox only) -------------------------------------
function _M.handlers.submitFulfillmentOrderStatusUpdate(req, sb)
  local id = req.params.sellerFulfillmentOrderId
  local st = (req.body or {}).fulfillmentOrderStatus
  if not STATUSES[st or ""] then return bad(sb, "fulfillmentOrderStatus is missing or invalid.") end
  local k = key(req, id)
  return sb.state.with_lock("mcf:" .. k, function()
    local order = sb.state.get(KIND, k)
    if not order then return not_found(sb, id) end
    if st == "Cancelled" then
      order.cancelled_at = sb.now()
    else
      order.forced = { status = st, at = sb.now() }
    end
    order.updated = sb.now()
    sb.state.put(KIND, k, order)
    return 200, {}
  end)
end

-- getPackageTrackingDetails ---------------------------------------------------------------
function _M.handlers.getPackageTrackingDetails(req, sb)
  local n = tonumber(req.query.packageNumber)
  if not n then return bad(sb, "packageNumber must be an integer.") end
  local ref = sb.state.get("mcf_package", req.selling_partner .. "/" .. string.format("%d", n))
  local order = ref and sb.state.get(KIND, ref.order)
  local _, _, shipped
  if order then _, _, shipped = progress(order, sb.now()) end
  if not shipped then
    return sb.err(404, "NotFound", "No package with packageNumber " .. string.format("%d", n) .. " has shipped.")
  end
  settle(sb, ref.order, order)
  local now = sb.now()
  local a = order.request.destinationAddress
  local dest = { city = a.city or "", state = a.stateOrRegion or "", country = a.countryCode }
  local origin = { city = "San Bernardino", state = "CA", country = "US" }
  local transit = transit_of(order, shipped)
  local steps = {
    { shipped, "EVENT_101", "Carrier notified to pick up package.", origin },
    { shipped + 3600, "EVENT_102", "Shipment picked up from seller's facility.", origin },
    { shipped + transit / 2, "EVENT_201", "Arrival scan.", dest },
    { shipped + transit - 14400, "EVENT_301", "Out for delivery.", dest },
    { shipped + transit, "EVENT_302", "Delivered.", dest },
  }
  local events = sb.json.array()
  local current, desc = "IN_TRANSIT", "In transit"
  for _, s in ipairs(steps) do
    if s[1] <= now then
      events[#events + 1] = { eventDate = sb.iso(s[1]), eventAddress = s[4], eventCode = s[2], eventDescription = s[3] }
      if s[2] == "EVENT_301" then current, desc = "OUT_FOR_DELIVERY", "Out for delivery" end
      if s[2] == "EVENT_302" then current, desc = "DELIVERED", "Delivered" end
    end
  end
  local tn = tracking_number(order)
  return 200, { payload = {
    packageNumber = n, trackingNumber = tn, carrierCode = order.carrier,
    customerTrackingLink = "https://www.swiship.com/track?id=" .. tn,
    carrierPhoneNumber = "+1 877-250-0525", carrierURL = "https://www.swiship.com",
    shipDate = sb.iso(shipped), estimatedArrivalDate = sb.iso(shipped + transit),
    shipToAddress = dest, currentStatus = current, currentStatusDescription = desc,
    signedForBy = current == "DELIVERED" and "Front door" or nil,
    trackingEvents = events,
  } }
end

-- Returns ----------------------------------------------------------------------------------
function _M.handlers.listReturnReasonCodes(req, sb)
  local sku = req.query.sellerSku
  if not inventory.get(sb, sku) then
    return bad(sb, "Invalid sellerSku '" .. tostring(sku) .. "'.")
  end
  if req.query.sellerFulfillmentOrderId and req.query.sellerFulfillmentOrderId ~= "" then
    if not load(sb, req, req.query.sellerFulfillmentOrderId) then
      return not_found(sb, req.query.sellerFulfillmentOrderId)
    end
  end
  local list = sb.json.array()
  for i, r in ipairs(REASONS) do
    list[i] = { returnReasonCode = r.returnReasonCode, description = r.description,
                translatedDescription = r.description }
  end
  return 200, { payload = { reasonCodeDetails = list } }
end

function _M.handlers.createFulfillmentReturn(req, sb)
  local id = req.params.sellerFulfillmentOrderId
  local b = req.body or {}
  if type(b.items) ~= "table" or #b.items == 0 then return bad(sb, "items must contain at least one item.") end
  local k = key(req, id)
  return sb.state.with_lock("mcf:" .. k, function()
    local order = load(sb, req, id)
    if not order then return not_found(sb, id) end
    local _, _, shipped = progress(order, sb.now())
    local now = sb.now()
    local returned = sb.json.array()
    local invalid = sb.json.array()
    local auths = sb.json.array()
    local auth
    for i, it in ipairs(b.items) do
      local w = "items[" .. (i - 1) .. "]"
      for _, f in ipairs({ "sellerReturnItemId", "sellerFulfillmentOrderItemId", "amazonShipmentId", "returnReasonCode" }) do
        if type(it[f]) ~= "string" or it[f] == "" then return bad(sb, w .. "." .. f .. " is required.") end
      end
      local line
      for _, l in ipairs(order.items) do
        if l.sellerFulfillmentOrderItemId == it.sellerFulfillmentOrderItemId then line = l end
      end
      local dup = false
      for _, r in ipairs(order.returns) do
        if r.sellerReturnItemId == it.sellerReturnItemId then dup = true end
      end
      local reason
      if not line or it.amazonShipmentId ~= order.shipment_id or not REASON_BY_CODE[it.returnReasonCode] then
        reason = { invalidItemReasonCode = "InvalidValues", description = "The item was not found in the fulfillment order, or the return reason code is not valid." }
      elseif dup then
        reason = { invalidItemReasonCode = "DuplicateRequest", description = "A return was already requested for this item." }
      elseif not shipped then
        reason = { invalidItemReasonCode = "NoCompletedShipItems", description = "The item has not shipped yet." }
      elseif line.granted < 1 then
        reason = { invalidItemReasonCode = "NoReturnableQuantity", description = "No returnable quantity." }
      end
      if reason then
        invalid[#invalid + 1] = { sellerReturnItemId = it.sellerReturnItemId,
          sellerFulfillmentOrderItemId = it.sellerFulfillmentOrderItemId, invalidItemReason = reason }
      else
        if not auth then
          local n = sb.state.incr("mcf_rma", 1)
          auth = { returnAuthorizationId = string.format("RA%08d", n), fulfillmentCenterId = order.fc,
            returnToAddress = { name = "Amazon Returns " .. order.fc, addressLine1 = "2496 W Walnut Ave",
              city = "Rialto", stateOrRegion = "CA", postalCode = "92376", countryCode = "US" },
            amazonRmaId = string.format("D%09d", 700000000 + n),
            rmaPageURL = "https://www.amazon.com/returns/label/" .. string.format("D%09d", 700000000 + n) }
          auths[1] = auth
          order.authorizations[#order.authorizations + 1] = auth
        end
        local r = { sellerReturnItemId = it.sellerReturnItemId, sellerFulfillmentOrderItemId = it.sellerFulfillmentOrderItemId,
          amazonShipmentId = it.amazonShipmentId, sellerReturnReasonCode = it.returnReasonCode,
          returnComment = it.returnComment, amazonReturnReasonCode = it.returnReasonCode, status = "New",
          statusChangedDate = sb.iso(now), returnAuthorizationId = auth.returnAuthorizationId,
          fulfillmentCenterId = order.fc }
        returned[#returned + 1] = r
        order.returns[#order.returns + 1] = r
      end
    end
    if #returned > 0 then
      order.updated = now
      sb.state.put(KIND, k, order)
    end
    return 200, { payload = { returnItems = returned, invalidReturnItems = invalid, returnAuthorizations = auths } }
  end)
end

-- Features ------------------------------------------------------------------------------------
function _M.handlers.getFeatures(req, sb)
  local list = sb.json.array()
  for i, f in ipairs(FEATURES) do
    list[i] = { featureName = f.featureName, featureDescription = f.featureDescription, sellerEligible = true }
  end
  return 200, { payload = { features = list } }
end

function _M.handlers.getFeatureInventory(req, sb)
  local name = req.params.featureName
  if not FEATURE_BY_NAME[name] then return bad(sb, "Invalid featureName '" .. name .. "'.") end
  local all = sb.state.list("fba_inventory")
  local start = 1
  if req.query.nextToken and req.query.nextToken ~= "" then
    start = tonumber((sb.unb64(req.query.nextToken) or ""):match("^feat:(%d+)$"))
    if not start then return bad(sb, "Invalid nextToken.") end
  end
  local skus = sb.json.array()
  local per = 50
  for i = start, math.min(#all, start + per - 1) do
    local it = all[i]
    skus[#skus + 1] = { sellerSku = it.sellerSku, fnSku = it.fnSku, asin = it.asin, skuCount = it.fulfillable,
                        overlappingSkus = sb.json.array() }
  end
  local payload = { marketplaceId = req.query.marketplaceId, featureName = name, featureSkus = skus }
  if start + per <= #all then payload.nextToken = sb.b64("feat:" .. (start + per)) end
  return 200, { payload = payload }
end

function _M.handlers.getFeatureSKU(req, sb)
  local name, sku = req.params.featureName, req.params.sellerSku
  if not FEATURE_BY_NAME[name] then return bad(sb, "Invalid featureName '" .. name .. "'.") end
  local it = inventory.get(sb, sku)
  local p = { marketplaceId = req.query.marketplaceId, featureName = name, sellerSku = sku }
  if it then
    p.isEligible = true
    p.fnSku, p.asin, p.skuCount = it.fnSku, it.asin, it.fulfillable
  else
    p.isEligible = false
    p.ineligibleReasons = sb.json.array({ "MERCHANT_SKU_NOT_FOUND" })
  end
  return 200, { payload = p }
end

-- deliveryOffers: standard offers for a product and a destination -------------------------------
function _M.handlers.deliveryOffers(req, sb)
  local b = req.body or {}
  local product = b.product or {}
  local sku = product.productIdentifier and product.productIdentifier.merchantSku
  if type(sku) ~= "string" then return bad(sb, "product.productIdentifier.merchantSku is required.") end
  if not inventory.get(sb, sku) then return bad(sb, "Invalid merchantSku '" .. sku .. "'.") end
  local now = sb.now()
  local offers = sb.json.array()
  for _, speed in ipairs({ "Standard", "Expedited", "Priority" }) do
    local d = TRANSIT[speed]
    offers[#offers + 1] = {
      expiresAt = sb.iso(now + 3600),
      dateRange = { earliest = sb.iso(now + d * 86400), latest = sb.iso(now + (d + 2) * 86400) },
      policy = { messaging = { text = speed .. " delivery", locale = "en_US" } },
    }
  end
  return 200, { payload = { deliveryOffers = offers } }
end

function _M.control(sb, action, args)
  if action == "orders" then
    return 200, sb.json.array(sb.state.list(KIND))
  end
  return 404, { errors = { { code = "NotFound", message = "unknown action " .. tostring(action) } } }
end

return _M
