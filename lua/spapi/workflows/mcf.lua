-- Multi-Channel Fulfillment, step by step: what is in stock → preview the speeds →
-- choose one → create the order (idempotent on its id) → follow it until it ships
-- and read the tracking → cancel it or return items; list the orders changed since
-- a date.
--
--   local mcf = require "spapi.workflows.mcf"
--   local order = { id = "WEB-1001", address = {...}, items = { { sku = "SKU-RED-MUG", quantity = 2 } } }
--   local options = assert(mcf.preview(sp, order))
--   local speed = assert(mcf.choose(options, "cheapest"))
--   local placed = assert(mcf.create(sp, order, speed))
--   local shipped = assert(mcf.follow(sp, order.id, { until_status = "shipped" }))
--   for _, p in ipairs(assert(mcf.tracking(sp, shipped))) do print(p.carrier, p.tracking_number) end
--
-- An order is a plain table, close to what a web shop exports:
--   id (sellerFulfillmentOrderId, ≤ 40 characters), display_id, date (ISO 8601 or
--   Unix seconds; default now), comment, address (SP-API Address fields: name,
--   addressLine1, city, stateOrRegion, postalCode, countryCode, phone, ...),
--   items = { { sku, quantity, id (line id; default "<id>-<n>"), gift_message,
--   comment } }, policy (FillOrKill | FillAll | FillAllAvailable), features
--   (e.g. { "BLOCK_AMZL" }), emails, delivery_window = { start, finish } (ScheduledDelivery),
--   marketplace (a marketplace id or country code; default the client's first/US).
-- Failures at run time return nil, err (the spapi error type); a malformed order raises.
local _M = {}

local errors = require "spapi.errors"
local clock = require "spapi.clock"
local config = require "spapi.config"
local progress = require "spapi.progress"

local type, ipairs, pairs, tostring, tonumber, error, next = type, ipairs, pairs, tostring, tonumber, error, next
local fmt, floor, sort = string.format, math.floor, table.sort

local FINAL = { Complete = true, CompletePartialled = true, Cancelled = true, Unfulfillable = true, Invalid = true }
_M.FINAL = FINAL
local POLICIES = { FillOrKill = true, FillAll = true, FillAllAvailable = true }
local SPEEDS = { Standard = true, Expedited = true, Priority = true, ScheduledDelivery = true }

local function raise(op, msg) error("spapi.workflows.mcf: " .. op .. ": " .. msg, 3) end

local function fail(op, code, message, extra)
  local e = { kind = "workflow", code = code, message = message, operation = "mcf." .. op }
  for k, v in pairs(extra or {}) do e[k] = v end
  return nil, errors.new(e)
end

local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", floor(t)) end

local function marketplace_id(order)
  local m = order.marketplace or "US"
  local rec = config.marketplace(m)
  return rec and rec.id or m
end

-- Check an order table and give its lines SP-API names (raises on a malformed order).
local function lines_of(op, order)
  if type(order) ~= "table" then raise(op, "order must be a table") end
  if type(order.id) ~= "string" or order.id == "" or #order.id > 40 then
    raise(op, "order.id must be a string of 1 to 40 characters (the sellerFulfillmentOrderId)")
  end
  if type(order.address) ~= "table" then raise(op, "order.address is required (SP-API Address fields)") end
  if type(order.items) ~= "table" or #order.items == 0 then raise(op, "order.items must list at least one item") end
  if order.policy ~= nil and not POLICIES[order.policy] then
    raise(op, "order.policy must be FillOrKill, FillAll or FillAllAvailable")
  end
  local out = {}
  for i, it in ipairs(order.items) do
    if type(it) ~= "table" or type(it.sku) ~= "string" or it.sku == "" then
      raise(op, fmt("order.items[%d].sku is required", i))
    end
    local q = it.quantity
    if type(q) ~= "number" or q < 1 or q ~= floor(q) then
      raise(op, fmt("order.items[%d].quantity must be a positive integer", i))
    end
    out[i] = { sellerSku = it.sku, quantity = q, sellerFulfillmentOrderItemId = it.id or fmt("%s-%d", order.id, i),
      giftMessage = it.gift_message, displayableComment = it.comment }
  end
  return out
end

local function features_of(order)
  if order.features == nil then return nil end
  local out = {}
  for i, f in ipairs(order.features) do
    out[i] = type(f) == "table" and f or { featureName = f, featureFulfillmentPolicy = "Required" }
  end
  return out
end

--- Fulfillable FBA units per SKU: { [sku] = n } (SKUs FBA does not know are absent).
function _M.stock(sp, skus, marketplace)
  if type(skus) ~= "table" or #skus == 0 then raise("stock", "skus must list at least one SKU") end
  local mp = config.marketplace(marketplace or "US")
  mp = mp and mp.id or marketplace
  local out = {}
  for first = 1, #skus, 50 do -- sellerSkus takes at most 50
    local batch = {}
    for i = first, math.min(#skus, first + 49) do batch[#batch + 1] = skus[i] end
    for s, err in sp:each("fba_inventory.getInventorySummaries", { granularityType = "Marketplace",
        granularityId = mp, marketplaceIds = { mp }, sellerSkus = batch, details = true }) do
      if not s then return nil, err end
      local d = s.inventoryDetails
      out[s.sellerSku] = d and d.fulfillableQuantity or 0
    end
  end
  return out
end

--- What each shipping speed would cost and when it would arrive.
--- → a list sorted by total fee, each { speed, fulfillable, fee, currency,
---   earliest_arrival, latest_arrival, delivery_windows, unfulfillable = { {sku, reasons} }, raw }
function _M.preview(sp, order, opts)
  opts = opts or {}
  local items = lines_of("preview", order)
  local body = { marketplaceId = marketplace_id(order), address = order.address, items = {},
    shippingSpeedCategories = opts.speeds, featureConstraints = features_of(order),
    includeDeliveryWindows = opts.delivery_windows or nil }
  for i, it in ipairs(items) do
    body.items[i] = { sellerSku = it.sellerSku, quantity = it.quantity, sellerFulfillmentOrderItemId = it.sellerFulfillmentOrderItemId }
  end
  local res, err = sp.fulfillment_outbound.getFulfillmentPreview{ body = body }
  if not res then return nil, err end
  local out = {}
  for _, p in ipairs(res.payload and res.payload.fulfillmentPreviews or {}) do
    local fee, cur = 0, nil
    for _, f in ipairs(p.estimatedFees or {}) do
      fee = fee + (tonumber(f.amount and f.amount.value) or 0)
      cur = cur or (f.amount and f.amount.currencyCode)
    end
    local sh = p.fulfillmentPreviewShipments and p.fulfillmentPreviewShipments[1] or {}
    local bad = {}
    for _, u in ipairs(p.unfulfillablePreviewItems or {}) do
      bad[#bad + 1] = { sku = u.sellerSku, reasons = u.itemUnfulfillableReasons or {} }
    end
    out[#out + 1] = { speed = p.shippingSpeedCategory, fulfillable = p.isFulfillable == true, fee = fee,
      currency = cur, earliest_arrival = sh.earliestArrivalDate, latest_arrival = sh.latestArrivalDate,
      delivery_windows = p.scheduledDeliveryInfo and p.scheduledDeliveryInfo.deliveryWindows or nil,
      unfulfillable = bad, reasons = p.orderUnfulfillableReasons or {}, raw = p }
  end
  sort(out, function(a, b)
    if a.fee ~= b.fee then return a.fee < b.fee end
    return a.speed < b.speed
  end)
  return out
end

--- Pick a speed among preview()'s options: "cheapest", "fastest", a speed name or
--- function(options) → option. Only fulfillable options count. → option | nil, err
function _M.choose(options, how)
  how = how or "cheapest"
  local ok = {}
  for _, o in ipairs(options or {}) do if o.fulfillable then ok[#ok + 1] = o end end
  if #ok == 0 then
    local why = {}
    for _, o in ipairs(options or {}) do why[#why + 1] = o.speed .. ": " .. table.concat(o.reasons, ", ") end
    return fail("choose", "NotFulfillable", "no shipping speed can fulfil the order (" .. table.concat(why, "; ") .. ")")
  end
  local pick
  if type(how) == "function" then
    pick = how(ok)
  elseif how == "cheapest" then
    pick = ok[1]
  elseif how == "fastest" then
    pick = ok[1]
    for _, o in ipairs(ok) do
      if (o.earliest_arrival or "~") < (pick.earliest_arrival or "~") then pick = o end
    end
  elseif SPEEDS[how] then
    for _, o in ipairs(ok) do if o.speed == how then pick = o end end
  else
    raise("choose", "how must be cheapest, fastest, a shipping speed or a function")
  end
  if not pick then return fail("choose", "NotFulfillable", "shipping speed " .. tostring(how) .. " cannot fulfil the order") end
  return pick
end

-- The same order? Every line of the existing order is one of ours (same line id,
-- same SKU); ours may have more: lines without stock are left out under FillAll*.
local function same_lines(payload, items)
  local ours = {}
  for _, it in ipairs(items) do ours[it.sellerFulfillmentOrderItemId] = it.sellerSku end
  local lines = payload.fulfillmentOrderItems or {}
  if not lines[1] then return false end
  for _, it in ipairs(lines) do
    if ours[it.sellerFulfillmentOrderItemId] ~= it.sellerSku then return false end
  end
  return true
end

local function fetch(sp, id)
  local res, err = sp.fulfillment_outbound.getFulfillmentOrder{ sellerFulfillmentOrderId = id }
  if not res then return nil, err end
  return res.payload
end

--- Create the order with the chosen speed (an option from choose() or a speed
--- name). Only SKUs with fulfillable FBA stock are sent: with FillOrKill (the
--- default) every line needs its full quantity; with FillAll / FillAllAvailable
--- lines without any stock are left out. Idempotent on order.id: an order that
--- already exists with the same lines (a re-run, or a create whose answer was lost)
--- is fetched and returned. → payload of getFulfillmentOrder, "created" | "existing"
--- | nil, err (err.short = { [sku] = { wanted, fulfillable } } when stock is missing)
function _M.create(sp, order, speed, opts)
  opts = opts or {}
  local items = lines_of("create", order)
  speed = type(speed) == "table" and speed.speed or speed or "Standard"
  if not SPEEDS[speed] then raise("create", "speed must be Standard, Expedited, Priority or ScheduledDelivery") end
  -- a re-run: the order is there already
  local existing, ferr = fetch(sp, order.id)
  if existing then
    if not same_lines(existing, items) then
      return fail("create", "Conflict", "fulfillment order " .. order.id .. " exists with other items")
    end
    return existing, "existing"
  elseif ferr.status ~= 404 then
    return nil, ferr
  end
  local skus, seen = {}, {}
  for _, it in ipairs(items) do
    if not seen[it.sellerSku] then seen[it.sellerSku] = true; skus[#skus + 1] = it.sellerSku end
  end
  local stock, serr = _M.stock(sp, skus, order.marketplace)
  if not stock then return nil, serr end
  local policy = order.policy or "FillOrKill"
  local wanted = {}
  for _, it in ipairs(items) do wanted[it.sellerSku] = (wanted[it.sellerSku] or 0) + it.quantity end
  local short, send = {}, {}
  for sku, n in pairs(wanted) do
    local have = stock[sku] or 0
    if (policy == "FillOrKill" and have < n) or have == 0 then short[sku] = { wanted = n, fulfillable = have } end
  end
  for _, it in ipairs(items) do
    if not short[it.sellerSku] or policy == "FillOrKill" then send[#send + 1] = it end
  end
  if policy == "FillOrKill" and next(short) or #send == 0 then
    local names = {}
    for sku, s in pairs(short) do names[#names + 1] = fmt("%s (wanted %d, fulfillable %d)", sku, s.wanted, s.fulfillable) end
    sort(names)
    return fail("create", "NotFulfillable", "not enough fulfillable FBA stock: " .. table.concat(names, ", "),
      { short = short })
  end
  local when = order.date or clock.now()
  local body = {
    marketplaceId = marketplace_id(order), sellerFulfillmentOrderId = order.id,
    displayableOrderId = order.display_id or order.id,
    displayableOrderDate = type(when) == "number" and iso(when) or when,
    displayableOrderComment = order.comment or "Thank you for your order",
    shippingSpeedCategory = speed, destinationAddress = order.address, items = send,
    fulfillmentAction = order.hold and "Hold" or nil, fulfillmentPolicy = order.policy,
    featureConstraints = features_of(order), notificationEmails = order.emails,
  }
  if order.delivery_window then
    local w = order.delivery_window
    body.deliveryWindow = { startDate = w.startDate or w.start, endDate = w.endDate or w.finish }
  end
  local ok, err = sp.fulfillment_outbound.createFulfillmentOrder{ body = body }
  if not ok then
    -- the answer may be about an order that exists (a duplicate id after a lost
    -- answer, or another run of this script): it counts when it has our lines
    local again = fetch(sp, order.id)
    if again and same_lines(again, send) then return again, "existing" end
    return nil, err
  end
  local placed, gerr = fetch(sp, order.id)
  if not placed then return nil, gerr end
  return placed, "created"
end

-- opts.progress: a callback (spapi.progress events), false for silence, nil for a
-- line on a terminal
local function progress_of(label, opts, total)
  if opts.progress == false then return progress.quiet{ label = label, total = total } end
  return progress.new{ label = label, total = total, callback = opts.progress or nil }
end

-- how far an order is, for progress: Received 1, Planning 2, Processing 3, final 4
local STEP = { New = 0, Received = 1, Planning = 2, Processing = 3 }

-- shipped: the order is final, or a shipment has left with a package
local function has_package(payload)
  for _, sh in ipairs(payload.fulfillmentShipments or {}) do
    if sh.fulfillmentShipmentPackage and sh.fulfillmentShipmentPackage[1] then return true end
  end
  return false
end

--- Follow an order until it is final (Complete, CompletePartialled, Cancelled,
--- Unfulfillable, Invalid) or, with opts.until_status = "shipped", until a package
--- has left (or the order is final). opts: interval (seconds between polls, 1),
--- timeout (seconds, 600), on_status(status, payload) at each change, progress (a
--- callback for spapi.progress events, or false for no progress line), sleep
--- (function(seconds), default spapi.sleep). → payload | nil, err (code "Timeout")
function _M.follow(sp, id, opts)
  opts = opts or {}
  if type(id) ~= "string" or id == "" then raise("follow", "id must be a sellerFulfillmentOrderId") end
  local interval, timeout = opts.interval or 1, opts.timeout or 600
  local deadline = clock.monotonic() + timeout
  local bar = progress_of("order " .. id, opts, 4)
  local last
  while true do
    local payload, err = fetch(sp, id)
    if not payload then
      bar:finish("failed")
      return nil, err
    end
    local status = payload.fulfillmentOrder.fulfillmentOrderStatus
    if status ~= last then
      last = status
      if opts.on_status then opts.on_status(status, payload) end
    end
    bar:update(STEP[status] or 4, status)
    if FINAL[status] or (opts.until_status == "shipped" and has_package(payload))
      or (opts.until_status and opts.until_status == status) then
      bar:finish(status)
      return payload
    end
    if clock.monotonic() + interval > deadline then
      bar:finish(status)
      return fail("follow", "Timeout", fmt("order %s still %s after %ds", id, status, timeout), { status = status })
    end
    (opts.sleep or clock.sleep)(interval)
  end
end

--- The packages of an order (a getFulfillmentOrder payload or an id) with their
--- tracking: { { package_number, carrier, tracking_number, status, description,
--- link, estimated_arrival, events } }
function _M.tracking(sp, order)
  local payload = order
  if type(order) == "string" then
    local err
    payload, err = fetch(sp, order)
    if not payload then return nil, err end
  end
  local out = {}
  for _, sh in ipairs(payload.fulfillmentShipments or {}) do
    for _, pkg in ipairs(sh.fulfillmentShipmentPackage or {}) do
      local t, err = sp.fulfillment_outbound.getPackageTrackingDetails{ packageNumber = pkg.packageNumber }
      if not t then return nil, err end
      local d = t.payload or {}
      out[#out + 1] = { package_number = pkg.packageNumber, carrier = d.carrierCode or pkg.carrierCode,
        tracking_number = d.trackingNumber or pkg.trackingNumber, status = d.currentStatus,
        description = d.currentStatusDescription, link = d.customerTrackingLink,
        estimated_arrival = d.estimatedArrivalDate, events = d.trackingEvents or {}, shipment = sh.amazonShipmentId }
    end
  end
  return out
end

--- Change an order before it is processed: changes = { speed, address, comment,
--- hold = false (release a held order), policy, features, items = { { id, quantity } } }.
--- → payload | nil, err
function _M.update(sp, id, changes)
  if type(changes) ~= "table" then raise("update", "changes must be a table") end
  local body = { shippingSpeedCategory = changes.speed, destinationAddress = changes.address,
    displayableOrderComment = changes.comment, fulfillmentPolicy = changes.policy,
    featureConstraints = changes.features and features_of(changes) or nil }
  if changes.hold ~= nil then body.fulfillmentAction = changes.hold and "Hold" or "Ship" end
  if changes.items then
    body.items = {}
    for i, it in ipairs(changes.items) do
      if type(it.id) ~= "string" then raise("update", fmt("changes.items[%d].id (the line id) is required", i)) end
      body.items[i] = { sellerFulfillmentOrderItemId = it.id, quantity = it.quantity,
        giftMessage = it.gift_message, displayableComment = it.comment }
    end
  end
  local ok, err = sp.fulfillment_outbound.updateFulfillmentOrder{ sellerFulfillmentOrderId = id, body = body }
  if not ok then return nil, err end
  return fetch(sp, id)
end

--- Cancel an order (only before it is processed for shipping; cancelling a
--- cancelled order is harmless). → payload | nil, err
function _M.cancel(sp, id)
  local ok, err = sp.fulfillment_outbound.cancelFulfillmentOrder{ sellerFulfillmentOrderId = id }
  if not ok then return nil, err end
  return fetch(sp, id)
end

--- Return shipped items: items = { { id (line id), reason (a return reason code;
--- default the first one Amazon lists for the SKU), comment, return_id } }, one
--- unit each. → { returned, invalid, authorizations } | nil, err
function _M.return_items(sp, id, items)
  if type(items) ~= "table" or #items == 0 then raise("return_items", "items must list at least one line") end
  local payload, err = fetch(sp, id)
  if not payload then return nil, err end
  local lines, shipment = {}, nil
  for _, it in ipairs(payload.fulfillmentOrderItems or {}) do lines[it.sellerFulfillmentOrderItemId] = it end
  for _, sh in ipairs(payload.fulfillmentShipments or {}) do
    if sh.fulfillmentShipmentStatus == "SHIPPED" then shipment = sh.amazonShipmentId end
  end
  if not shipment then return fail("return_items", "NotShipped", "order " .. id .. " has no shipped shipment") end
  local body = { items = {} }
  for i, it in ipairs(items) do
    local line = lines[it.id]
    if not line then raise("return_items", fmt("items[%d].id %s is not a line of order %s", i, tostring(it.id), id)) end
    local reason = it.reason
    if not reason then
      local codes, cerr = sp.fulfillment_outbound.listReturnReasonCodes{ sellerSku = line.sellerSku,
        sellerFulfillmentOrderId = id }
      if not codes then return nil, cerr end
      local list = codes.payload and codes.payload.reasonCodeDetails or {}
      if not list[1] then return fail("return_items", "NoReasonCode", "no return reason code for " .. line.sellerSku) end
      reason = list[1].returnReasonCode
    end
    body.items[i] = { sellerReturnItemId = it.return_id or fmt("%s-R%d", it.id, i), sellerFulfillmentOrderItemId = it.id,
      amazonShipmentId = shipment, returnReasonCode = reason, returnComment = it.comment }
  end
  local res, rerr = sp.fulfillment_outbound.createFulfillmentReturn{ sellerFulfillmentOrderId = id, body = body }
  if not res then return nil, rerr end
  local p = res.payload or {}
  return { returned = p.returnItems or {}, invalid = p.invalidReturnItems or {},
    authorizations = p.returnAuthorizations or {} }
end

--- Every order updated since `since` (ISO 8601 or Unix seconds), all pages.
--- → list of FulfillmentOrder | nil, err
function _M.orders_since(sp, since)
  local params = {}
  if since ~= nil then params.queryStartDate = type(since) == "number" and iso(since) or since end
  local out = {}
  for o, err in sp:each("fulfillment_outbound.listAllFulfillmentOrders", params) do
    if not o then return nil, err end
    out[#out + 1] = o
  end
  return out
end

return _M
