-- Fulfillment Outbound 2026-07-04 (MCF, new shape): previews, offers, orders.
-- Orders (state kind "mcf2026_order", keyed "<selling partner>/<orderId>") use the
-- same FBA inventory as the 2020-07-01 API and progress on the sandbox clock:
--   PROCESSING from creation; shipment PROCESSING at +30 min; SHIPPED at +2 h
--   (order COMPLETE, package IN_TRANSIT with tracking), DELIVERED after the tier's transit days.
-- Orders with action HOLD wait until updateOrder sets action SHIP.
local _M = {}

local inventory = require "spapi.sandbox.programs.fba_inventory"

local KIND = "mcf2026_order"
local PAGE = 5
local T_PICK, T_SHIP = 1800, 7200
local TIERS = { STANDARD = 3, EXPEDITED = 2, PRIORITY = 1, SCHEDULED = 1 }
local FEE = { STANDARD = 3.22, EXPEDITED = 5.49, PRIORITY = 8.31, SCHEDULED = 9.99 }
local CURRENCY = { US = "USD", CA = "CAD", MX = "MXN", GB = "GBP", DE = "EUR", FR = "EUR", IT = "EUR", ES = "EUR",
  JP = "JPY", IN = "INR", AU = "AUD" }
local STATUSES = { PROCESSING = true, COMPLETE = true, COMPLETE_PARTIAL = true, CANCELLED = true,
  UNFULFILLABLE = true, INVALID = true }
local PACKAGE_STATUSES = { PROCESSING = true, IN_TRANSIT = true, DELAYED = true, OUT_FOR_DELIVERY = true,
  DELIVERED = true, UNDELIVERABLE = true, EXPIRED = true }

local function bad(sb, msg) return sb.err(400, "InvalidInput", msg) end
local function key(req, id) return req.selling_partner .. "/" .. id end

local function check_address(sb, a, where)
  if type(a) ~= "table" then return bad(sb, where .. " is required.") end
  for _, f in ipairs({ "name", "addressLine1", "postalCode", "countryCode" }) do
    if type(a[f]) ~= "string" or a[f] == "" then return bad(sb, where .. "." .. f .. " is required.") end
  end
  return nil
end

local function qty(line) return math.floor(tonumber(line.amount and line.amount.value) or 0) end
local function sku_of(line) return line.product and line.product.productIdentifier and line.product.productIdentifier.amazonSku end

local function check_lines(sb, lines, need_id)
  if type(lines) ~= "table" or #lines == 0 then return bad(sb, "lineItems must contain at least one item.") end
  for i, l in ipairs(lines) do
    local w = "lineItems[" .. (i - 1) .. "]"
    if type(l) ~= "table" or type(sku_of(l)) ~= "string" then return bad(sb, w .. ".product.productIdentifier.amazonSku is required.") end
    if qty(l) < 1 then return bad(sb, w .. ".amount.value must be a positive integer.") end
    if need_id and (type(l.lineItemId) ~= "string" or l.lineItemId == "") then return bad(sb, w .. ".lineItemId is required.") end
  end
  return nil
end

local function tier_of(cfg)
  local t = cfg and cfg.serviceLevel and cfg.serviceLevel.serviceTiers and cfg.serviceLevel.serviceTiers[1]
  return TIERS[t or ""] and t or "STANDARD"
end

local function money(cur, v) return { currencyCode = cur, amount = string.format("%.2f", v) } end

-- status, status time, shipped time
local function progress(o, now)
  if o.cancelled_at then return "CANCELLED", o.cancelled_at end
  if o.forced then
    local s = o.forced.status
    if s == "COMPLETE" or s == "COMPLETE_PARTIAL" then return s, o.forced.at, o.forced.at end
    return s, o.forced.at
  end
  local granted = 0
  for _, l in ipairs(o.lines) do granted = granted + l.granted end
  if granted == 0 then return "UNFULFILLABLE", o.received end
  if not o.start or now - o.start < T_SHIP then return "PROCESSING", o.start or o.received end
  local partial = false
  for _, l in ipairs(o.lines) do if l.granted < l.quantity then partial = true end end
  return partial and "COMPLETE_PARTIAL" or "COMPLETE", o.start + T_SHIP, o.start + T_SHIP
end

local function view(sb, o, with_shipments)
  local now = sb.now()
  local status, at, shipped = progress(o, now)
  local r = o.request
  local tier = tier_of(r.fulfillmentConfiguration)
  local lines = sb.json.array()
  for i, l in ipairs(o.lines) do
    lines[i] = { lineItemId = l.lineItemId, product = l.product, amount = { unit = "EACH", value = tostring(l.quantity) },
      cancelledAmount = { unit = "EACH", value = tostring(status == "CANCELLED" and l.quantity or 0) },
      unfulfillableAmount = { unit = "EACH", value = tostring(l.quantity - l.granted) },
      fulfillmentConfiguration = l.fulfillmentConfiguration }
  end
  local cfg = r.fulfillmentConfiguration or {}
  local out = {
    orderId = r.orderId, channel = r.channel, receiveTime = sb.iso(o.received), status = status,
    statusUpdateTime = sb.iso(math.max(at, o.updated or at)),
    fulfillmentConfiguration = { serviceLevel = cfg.serviceLevel or { serviceTiers = { tier } },
      action = cfg.action or "SHIP", policy = cfg.policy or "FILL_OR_KILL", services = cfg.services },
    origin = r.origin, destination = r.destination, lineItems = lines, paymentInformation = r.paymentInformation,
  }
  if with_shipments ~= false then
    local shipments = sb.json.array()
    local picking = o.start and now - o.start >= T_PICK
    if status ~= "CANCELLED" and (shipped or picking) then
      local items = sb.json.array()
      for _, l in ipairs(o.lines) do
        if l.granted > 0 then
          items[#items + 1] = { productIdentifier = l.product.productIdentifier, lineItemId = l.lineItemId,
            amount = { unit = "EACH", value = tostring(l.granted) }, packageId = shipped and o.package_id or nil,
            shipmentItemId = o.shipment_id .. "-" .. l.lineItemId }
        end
      end
      local sh = { amazonShipmentId = o.shipment_id, amazonFacility = { facilityId = o.fc }, items = items,
        status = shipped and "SHIPPED" or "PROCESSING", serviceLevel = { serviceTier = tier },
        shipTime = sb.iso(shipped or ((o.start or o.received) + T_SHIP)) }
      if shipped then
        local delivery = shipped + TIERS[tier] * 86400
        local pstatus = o.package_status or (now >= delivery and "DELIVERED" or "IN_TRANSIT")
        local tn = string.format("TBA%012d", 400000000000 + o.n)
        sh.deliveryTime = sb.iso(delivery)
        sh.packages = sb.json.array({ { packageId = o.package_id, status = pstatus, deliveryTime = sb.iso(delivery),
          tracking = o.package_tracking or { carrier = { carrierCode = o.carrier, trackingNumber = tn,
            trackingUrl = "https://www.swiship.com/track?id=" .. tn },
            amazon = { trackingNumber = tn, trackingUrl = "https://www.swiship.com/track?id=" .. tn } } } })
      end
      shipments[1] = sh
    end
    out.shipments = shipments
  end
  return out
end

local function settle(sb, k, o)
  local _, _, shipped = progress(o, sb.now())
  if shipped and not o.settled then
    sb.state.update(KIND, k, function(x)
      if not x or x.settled then return nil end
      local counts = {}
      for _, l in ipairs(x.lines) do counts[l.sku] = (counts[l.sku] or 0) + l.granted end
      inventory.ship(sb, counts)
      x.settled = true
      return x
    end)
    o.settled = true
  end
end

local function load(sb, req, id)
  local k = key(req, id)
  local o = sb.state.get(KIND, k)
  if o then settle(sb, k, o) end
  return o, k
end

local function not_found(sb, id) return sb.err(404, "NotFound", "Order '" .. tostring(id) .. "' was not found.") end

_M.handlers = {}

function _M.handlers.getOrderPreview(req, sb)
  local b = req.body or {}
  local e1, e2 = check_address(sb, b.destination and b.destination.deliveryAddress, "destination.deliveryAddress")
  if e1 then return e1, e2 end
  e1, e2 = check_lines(sb, b.lineItems, false)
  if e1 then return e1, e2 end
  local cur = CURRENCY[(b.destination.deliveryAddress.countryCode or "US"):upper()] or "USD"
  local items, constraints, units, weight = sb.json.array(), sb.json.array(), 0, 0
  for _, l in ipairs(b.lineItems) do
    local inv = inventory.get(sb, sku_of(l))
    if not inv then
      constraints[#constraints + 1] = { type = "ITEM", code = "INVALID_SKU", message = "SKU " .. sku_of(l) .. " is not in the FBA inventory.",
        details = { { type = "amazonSku", value = sku_of(l) } } }
    elseif inv.fulfillable < qty(l) then
      constraints[#constraints + 1] = { type = "ITEM", code = "INVENTORY_UNAVAILABLE",
        message = "Not enough fulfillable inventory for SKU " .. sku_of(l) .. ".", details = { { type = "amazonSku", value = sku_of(l) } } }
    else
      items[#items + 1] = { productIdentifier = { amazonSku = sku_of(l) }, amount = { unit = "EACH", value = tostring(qty(l)) } }
      units, weight = units + qty(l), weight + inv.weight * qty(l)
    end
  end
  local shipments = sb.json.array()
  if #constraints == 0 then
    local now = sb.now()
    local offers = sb.json.array()
    local wanted = b.fulfillmentConfiguration and b.fulfillmentConfiguration.serviceLevel
      and b.fulfillmentConfiguration.serviceLevel.serviceTiers or { "STANDARD", "EXPEDITED" }
    for _, t in ipairs(wanted) do
      if TIERS[t] then
        local fee = FEE[t] * units
        local offer = { fulfillmentConfiguration = { serviceLevel = { serviceTier = t,
          deliveryInterval = { startTime = sb.iso(now + TIERS[t] * 86400), endTime = sb.iso(now + (TIERS[t] + 2) * 86400) },
          shipInterval = { startTime = sb.iso(now + 3600), endTime = sb.iso(now + 86400) } } } }
        if not b.excludeEstimatedFees then
          offer.estimatedPrice = { totalPrice = money(cur, fee),
            rollupPrices = { { type = "MCFFulfillmentFee", value = money(cur, fee) } } }
        end
        offers[#offers + 1] = offer
      end
    end
    shipments[1] = { estimatedShippingWeight = { unit = "POUNDS", value = string.format("%.2f", weight) },
      items = items, offers = offers }
  end
  return 200, { plannedShipments = shipments, constraints = constraints }
end

function _M.handlers.getOffers(req, sb)
  local b = req.body or {}
  if type(b.items) ~= "table" or #b.items == 0 then return bad(sb, "items is required.") end
  if type(b.origin) ~= "table" then return bad(sb, "origin is required.") end
  local now = sb.now()
  local results = sb.json.array()
  for _, it in ipairs(b.items) do
    local sku = it.productIdentifier and it.productIdentifier.amazonSku
    local r = { item = it, offers = sb.json.array(), constraints = sb.json.array() }
    if not sku or not inventory.get(sb, sku) then
      r.constraints[1] = { type = "ITEM", code = "INVALID_SKU", message = "SKU " .. tostring(sku) .. " is not in the FBA inventory." }
    else
      for _, t in ipairs({ "STANDARD", "EXPEDITED" }) do
        r.offers[#r.offers + 1] = { fulfillmentConfiguration = { serviceLevel = { serviceTier = t,
          deliveryInterval = { startTime = sb.iso(now + TIERS[t] * 86400), endTime = sb.iso(now + (TIERS[t] + 2) * 86400) } } },
          expiryTime = sb.iso(now + 3600) }
      end
    end
    results[#results + 1] = r
  end
  return 200, { offerResults = results }
end

function _M.handlers.createOrder(req, sb)
  local b = req.body
  if type(b) ~= "table" then return bad(sb, "The request body is required.") end
  if type(b.orderId) ~= "string" or b.orderId == "" or #b.orderId > 40 then
    return bad(sb, "orderId is required (at most 40 characters).")
  end
  local e1, e2 = check_address(sb, b.destination and b.destination.deliveryAddress, "destination.deliveryAddress")
  if e1 then return e1, e2 end
  e1, e2 = check_lines(sb, b.lineItems, true)
  if e1 then return e1, e2 end
  local k = key(req, b.orderId)
  local fingerprint = sb.json.canonical(b)
  return sb.state.with_lock("mcf2026:" .. k, function()
    local existing = sb.state.get(KIND, k)
    if existing then
      if existing.fingerprint == fingerprint then return 200, { order = view(sb, existing) } end
      return bad(sb, "An order with orderId '" .. b.orderId .. "' already exists with different content.")
    end
    local cfg = b.fulfillmentConfiguration or {}
    local policy = ({ FILL_OR_KILL = "FillOrKill", FILL_ALL = "FillAll", FILL_ALL_AVAILABLE = "FillAllAvailable" })[cfg.policy or "FILL_OR_KILL"]
    if not policy then return bad(sb, "fulfillmentConfiguration.policy is invalid.") end
    local want = {}
    for _, l in ipairs(b.lineItems) do want[#want + 1] = { sku = sku_of(l), quantity = qty(l) } end
    local granted, code, msg = inventory.reserve(sb, want, policy)
    if not granted then return sb.err(400, code, msg) end
    local lines = {}
    for i, l in ipairs(b.lineItems) do
      local s = sku_of(l)
      local g = math.min(granted[s] or 0, qty(l))
      granted[s] = (granted[s] or 0) - g
      lines[i] = { lineItemId = l.lineItemId, product = l.product, sku = s, quantity = qty(l), granted = g,
                   fulfillmentConfiguration = l.fulfillmentConfiguration }
    end
    local n = sb.state.incr("mcf2026_n", 1)
    local now = sb.now()
    local o = { request = b, fingerprint = fingerprint, lines = lines, received = now, updated = now,
      start = (cfg.action ~= "HOLD") and now or nil, n = n, shipment_id = string.format("T%09d", 200000000 + n),
      package_id = string.format("PKG%08d", n), fc = ({ "ONT8", "BFI4", "PHX6", "EWR4" })[n % 4 + 1],
      carrier = tier_of(cfg) == "STANDARD" and "AMZN_US" or "UPS", sp = req.selling_partner }
    sb.state.put(KIND, k, o)
    return 200, { order = view(sb, o) }
  end)
end

function _M.handlers.getOrder(req, sb)
  local o = load(sb, req, req.params.orderId)
  if not o then return not_found(sb, req.params.orderId) end
  return 200, { order = view(sb, o, req.query.shipments ~= "false") }
end

function _M.handlers.listOrders(req, sb)
  local q = req.query
  local since, start = nil, 1
  if q.updatedAfter and q.updatedAfter ~= "" then
    since = sb.parse_iso(q.updatedAfter)
    if not since then return bad(sb, "updatedAfter must be an ISO-8601 date-time.") end
  end
  if q.pageToken and q.pageToken ~= "" then
    local s, t = (sb.unb64(q.pageToken) or ""):match("^o26:(%d+):(.*)$")
    if not s then return bad(sb, "Invalid pageToken.") end
    start, since = tonumber(s), tonumber(t)
  end
  local matched = {}
  for _, o in ipairs(sb.state.list(KIND)) do
    if o.sp == req.selling_partner then
      local _, at = progress(o, sb.now())
      if not since or math.max(at, o.updated) >= since then matched[#matched + 1] = o end
    end
  end
  local page = sb.json.array()
  for i = start, math.min(#matched, start + PAGE - 1) do
    settle(sb, key(req, matched[i].request.orderId), matched[i])
    page[#page + 1] = view(sb, matched[i], q.shipments ~= "false")
  end
  local body = { orders = page }
  if start + PAGE <= #matched then
    body.pagination = { nextToken = sb.b64("o26:" .. (start + PAGE) .. ":" .. (since and string.format("%.3f", since) or "")) }
  end
  return 200, body
end

function _M.handlers.cancelOrder(req, sb)
  local id = req.params.orderId
  local k = key(req, id)
  return sb.state.with_lock("mcf2026:" .. k, function()
    local o = load(sb, req, id)
    if not o then return not_found(sb, id) end
    local status = progress(o, sb.now())
    if status == "CANCELLED" then return 202, {} end
    if status ~= "PROCESSING" or (o.start and sb.now() - o.start >= T_PICK) then
      return bad(sb, "Order '" .. id .. "' cannot be cancelled: picking has started or it has shipped.")
    end
    local counts = {}
    for _, l in ipairs(o.lines) do counts[l.sku] = (counts[l.sku] or 0) + l.granted end
    inventory.release(sb, counts)
    o.cancelled_at, o.updated = sb.now(), sb.now()
    sb.state.put(KIND, k, o)
    return 202, {}
  end)
end

function _M.handlers.updateOrder(req, sb)
  local id = req.params.orderId
  local cfg = (req.body or {}).fulfillmentConfiguration or {}
  if cfg.action ~= nil and cfg.action ~= "SHIP" and cfg.action ~= "HOLD" then
    return bad(sb, "fulfillmentConfiguration.action must be SHIP or HOLD.")
  end
  local k = key(req, id)
  return sb.state.with_lock("mcf2026:" .. k, function()
    local o = load(sb, req, id)
    if not o then return not_found(sb, id) end
    if progress(o, sb.now()) ~= "PROCESSING" or (o.start and sb.now() - o.start >= T_PICK) then
      return bad(sb, "Order '" .. id .. "' can no longer be updated.")
    end
    o.request.fulfillmentConfiguration = o.request.fulfillmentConfiguration or {}
    for f, v in pairs(cfg) do o.request.fulfillmentConfiguration[f] = v end
    if cfg.action == "SHIP" and not o.start then o.start = sb.now() end
    if cfg.action == "HOLD" then o.start = nil end
    o.updated = sb.now()
    sb.state.put(KIND, k, o)
    return 202, {}
  end)
end

function _M.handlers.updateOrderStatus(req, sb)
  local st = (req.body or {}).status
  if not STATUSES[st or ""] then return bad(sb, "status is missing or invalid.") end
  local k = key(req, req.params.orderId)
  return sb.state.with_lock("mcf2026:" .. k, function()
    local o = sb.state.get(KIND, k)
    if not o then return not_found(sb, req.params.orderId) end
    if st == "CANCELLED" then o.cancelled_at = sb.now() else o.forced = { status = st, at = sb.now() } end
    o.updated = sb.now()
    sb.state.put(KIND, k, o)
    return 204
  end)
end

function _M.handlers.updatePackage(req, sb)
  local b = req.body or {}
  if not PACKAGE_STATUSES[b.status or ""] then return bad(sb, "status is missing or invalid.") end
  local k = key(req, req.params.orderId)
  return sb.state.with_lock("mcf2026:" .. k, function()
    local o = sb.state.get(KIND, k)
    if not o then return not_found(sb, req.params.orderId) end
    if o.package_id ~= req.params.packageId then
      return sb.err(404, "NotFound", "Package '" .. req.params.packageId .. "' was not found.")
    end
    o.package_status = b.status
    if type(b.tracking) == "table" then o.package_tracking = b.tracking end
    o.updated = sb.now()
    sb.state.put(KIND, k, o)
    return 204
  end)
end

return _M
