-- Orders v0: getOrders, getOrder, getOrderBuyerInfo, getOrderAddress,
-- getOrderItems, getOrderItemsBuyerInfo, confirmShipment (getOrderRegulatedInfo,
-- updateVerificationStatus and updateShipmentStatus refuse, as for orders without
-- regulated items or in-store pickup); and the order store
-- that Merchant Fulfillment, Orders 2026-01-01 and the feeds program share
-- (_M.find, _M.save, _M.create, _M.add_package, _M.cancel_package,
-- _M.mark_shipped, _M.status).
--
-- An order (state kind "order") keeps its items with the quantity ordered and
-- a list of packages: a label bought through Merchant Fulfillment, a
-- confirmShipment, or a POST_ORDER_FULFILLMENT_DATA message. Its status is
-- derived from them: Unshipped → PartiallyShipped → Shipped as the packages
-- cover its items; a cancelled label uncovers them again. Orders whose stored
-- status is not Unshipped (Pending, Canceled, an FBA order that is Shipped)
-- keep it.
--
-- PII: the operations are restricted; with a restricted data token the buyer's
-- name, e-mail and full address are returned, as Amazon does.
--
-- Errors: 400 InvalidInput (parameters the model's notes forbid, a package
-- that ships more than is unshipped, a packageReferenceId reused for another
-- package), 404 NotFound (unknown order).
local type, ipairs, pairs, tostring, tonumber = type, ipairs, pairs, tostring, tonumber
local floor, min = math.floor, math.min
local format = string.format
local lib = require("spapi.sandbox.programs.vendor_df_transactions").lib

local _M = {}

local ORDER = "order"
_M.KIND = ORDER

local US, BR = "ATVPDKIKX0DER", "A2Q3Y263D00KWC"
local MARKETPLACES = {
  [US] = { currency = "USD", channel = "Amazon.com" },
  [BR] = { currency = "BRL", channel = "Amazon.com.br" },
}
_M.MARKETPLACES = MARKETPLACES

local STATUSES = { PendingAvailability = true, Pending = true, Unshipped = true, PartiallyShipped = true,
                   Shipped = true, InvoiceUnconfirmed = true, Canceled = true, Unfulfillable = true }

local function err(sb, status, code, msg) return sb.err(status, code, msg) end
local function invalid(sb, msg) return sb.err(400, "InvalidInput", msg) end

-- comma-separated (and repeated) query values → list
local function list_param(req, name)
  local vals = req.query_all and req.query_all[name]
  if not vals then return nil end
  local out = {}
  for _, v in ipairs(vals) do
    for x in tostring(v):gmatch("[^,]+") do out[#out + 1] = x end
  end
  return #out > 0 and out or nil
end
_M.list_param = list_param

local function set_of(list)
  if not list then return nil end
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

-- the store ----------------------------------------------------------------------

function _M.find(sb, id, req)
  if type(id) ~= "string" then return nil end
  local o = sb.state.get(ORDER, id)
  if not o or (req and o.owner ~= nil and o.owner ~= req.selling_partner) then return nil end
  return o
end

function _M.save(sb, o, touched)
  if touched ~= false then o.updated = sb.now() end
  sb.state.put(ORDER, o.AmazonOrderId, o)
  return o
end

-- quantity shipped of each item by the active packages
local function shipped_qty(o)
  local q = {}
  for _, p in ipairs(o.packages or {}) do
    if not p.cancelled then
      for _, it in ipairs(p.items) do q[it.id] = (q[it.id] or 0) + it.qty end
    end
  end
  return q
end

function _M.status(o)
  local base = o.status or "Unshipped"
  if base ~= "Unshipped" then return base end
  local q, any, all = shipped_qty(o), false, true
  for _, it in ipairs(o.items) do
    local s = min(q[it.OrderItemId] or 0, it.Quantity)
    if s > 0 then any = true end
    if s < it.Quantity then all = false end
  end
  if all then return "Shipped" end
  return any and "PartiallyShipped" or "Unshipped"
end

local function counts(o)
  local q, shipped, unshipped = shipped_qty(o), 0, 0
  local fba_done = o.status == "Shipped"
  for _, it in ipairs(o.items) do
    local s = fba_done and it.Quantity or min(q[it.OrderItemId] or 0, it.Quantity)
    shipped, unshipped = shipped + s, unshipped + it.Quantity - s
  end
  return shipped, unshipped
end
_M.counts = counts

--- Create an order from a table like the seeds (control action "order").
-- Returns the order or nil, message.
function _M.create(sb, a)
  if type(a.AmazonOrderId) ~= "string" or not lib.is_array(a.items) then
    return nil, "order needs AmazonOrderId and items [{OrderItemId, ASIN, Quantity}]"
  end
  for i, it in ipairs(a.items) do
    if type(it) ~= "table" or type(it.OrderItemId) ~= "string" or type(it.Quantity) ~= "number"
      or it.Quantity < 1 or it.Quantity ~= floor(it.Quantity) then
      return nil, "items[" .. (i - 1) .. "] needs OrderItemId (string) and Quantity (positive integer)"
    end
    it.ASIN = type(it.ASIN) == "string" and it.ASIN or "B000000000"
    it.Title = type(it.Title) == "string" and it.Title or ("Item " .. it.OrderItemId)
    it.SellerSKU = type(it.SellerSKU) == "string" and it.SellerSKU or ("SKU-" .. it.ASIN)
    it.price = tonumber(it.price) or 10
  end
  if a.MarketplaceId ~= nil and not MARKETPLACES[a.MarketplaceId] then
    return nil, "MarketplaceId must be ATVPDKIKX0DER (US) or A2Q3Y263D00KWC (BR, no Merchant Fulfillment)"
  end
  if a.FulfillmentChannel ~= nil and a.FulfillmentChannel ~= "MFN" and a.FulfillmentChannel ~= "AFN" then
    return nil, "FulfillmentChannel must be MFN or AFN"
  end
  if a.OrderStatus ~= nil and not STATUSES[a.OrderStatus] then return nil, "OrderStatus is not an Orders v0 status" end
  local created = sb.now() - 600 -- ten minutes ago: listed by getOrders at once (its window ends 2 minutes back)
  if a.PurchaseDate ~= nil then
    created = type(a.PurchaseDate) == "string" and sb.parse_iso(a.PurchaseDate)
    if not created then return nil, "PurchaseDate must be an ISO-8601 date-time" end
  end
  local o = {
    AmazonOrderId = a.AmazonOrderId, SellerOrderId = type(a.SellerOrderId) == "string" and a.SellerOrderId or nil,
    MarketplaceId = a.MarketplaceId or US, FulfillmentChannel = a.FulfillmentChannel or "MFN",
    status = a.OrderStatus or "Unshipped",
    ShipToAddress = type(a.ShipToAddress) == "table" and a.ShipToAddress or {
      Name = "Bob Buyer", AddressLine1 = "410 Terry Ave N", Email = "", City = "Seattle",
      StateOrProvinceCode = "WA", PostalCode = "98109", CountryCode = "US", Phone = "2065550100" },
    BuyerEmail = type(a.BuyerEmail) == "string" and a.BuyerEmail or (a.AmazonOrderId:gsub("%-", "") .. "@marketplace.amazon.com"),
    items = a.items, packages = {}, shipments = {}, owner = a.owner,
    created = created, updated = created,
  }
  if o.FulfillmentChannel == "AFN" and a.OrderStatus == nil then o.status = "Shipped" end
  local shipped = o.FulfillmentChannel == "MFN" and o.status == "Shipped"
  if shipped or o.status == "PartiallyShipped" then
    -- a seller-fulfilled order's shipping is its packages: a Shipped one gets one
    if not shipped then return nil, "ship some items with confirmShipment for a PartiallyShipped order" end
    o.status = "Unshipped"
    local items = {}
    for i, it in ipairs(o.items) do items[i] = { id = it.OrderItemId, qty = it.Quantity } end
    o.packages[1] = { ref = "1", carrier = "UPS", tracking = "1ZSEEDED" .. o.AmazonOrderId:gsub("%D", ""),
                      ship_date = created, items = items, source = "seed" }
  end
  sb.state.put(ORDER, o.AmazonOrderId, o)
  return o
end

--- Can these items ({{id=, qty=}}, nil: all unshipped units) ship on order o?
-- Returns the items, or nil and why not.
function _M.can_ship(o, items)
  local st = _M.status(o)
  if st == "Canceled" or st == "Pending" or st == "PendingAvailability" or st == "Unfulfillable" then
    return nil, "Order " .. o.AmazonOrderId .. " is " .. st .. " and cannot be shipped.", "state"
  end
  if o.FulfillmentChannel ~= "MFN" then
    return nil, "Order " .. o.AmazonOrderId .. " is fulfilled by Amazon; only seller-fulfilled orders ship here.", "state"
  end
  local q = shipped_qty(o)
  local ordered = {}
  for _, it in ipairs(o.items) do ordered[it.OrderItemId] = it.Quantity end
  if not items then
    items = {}
    for _, it in ipairs(o.items) do
      local left = it.Quantity - (q[it.OrderItemId] or 0)
      if left > 0 then items[#items + 1] = { id = it.OrderItemId, qty = left } end
    end
    if #items == 0 then return nil, "Order " .. o.AmazonOrderId .. " has no unshipped items." end
  end
  local asked = {}
  for _, it in ipairs(items) do
    if not ordered[it.id] then return nil, "Item " .. tostring(it.id) .. " is not part of order " .. o.AmazonOrderId .. "." end
    asked[it.id] = (asked[it.id] or 0) + it.qty
    if (q[it.id] or 0) + asked[it.id] > ordered[it.id] then
      return nil, format("Order %s has %d unshipped of item %s; %d confirmed.", o.AmazonOrderId,
        ordered[it.id] - (q[it.id] or 0), it.id, asked[it.id])
    end
  end
  return items
end

-- Record a package on an order. pkg = { ref, carrier, carrier_name, method, tracking,
-- ship_date, items = {{id=, qty=}} (nil: every unshipped unit), source, shipment }.
-- The same ref again with the same tracking number is accepted once more
-- (a confirmation sent twice); a package with the tracking number of a label
-- already on the order confirms that label. Returns the package or nil, message.
function _M.add_package(sb, o, pkg)
  o.packages = o.packages or {}
  for _, p in ipairs(o.packages) do
    if not p.cancelled then
      if pkg.ref ~= nil and p.ref == pkg.ref then
        if p.tracking == pkg.tracking then return p end
        return nil, "packageReferenceId " .. tostring(pkg.ref) .. " is already used by a package with tracking number "
          .. tostring(p.tracking) .. "."
      end
      if pkg.tracking ~= nil and p.tracking == pkg.tracking and p.source == "label" and pkg.source ~= "label" then
        p.confirmed = pkg.ref or true
        _M.save(sb, o)
        return p
      end
    end
  end
  local items, msg = _M.can_ship(o, pkg.items)
  if not items then return nil, msg end
  local p = { ref = pkg.ref, carrier = pkg.carrier, carrier_name = pkg.carrier_name, method = pkg.method,
              tracking = pkg.tracking, ship_date = pkg.ship_date or sb.now(), items = items,
              source = pkg.source, shipment = pkg.shipment }
  o.packages[#o.packages + 1] = p
  _M.save(sb, o)
  return p
end

--- A label was refunded: its package no longer ships the items (undo: the
-- carrier rejected the refund, it ships them again).
function _M.cancel_package(sb, o, shipment_id, undo)
  for _, p in ipairs(o.packages or {}) do
    if p.shipment == shipment_id and (not p.cancelled) == (not undo) then
      p.cancelled = not undo
      _M.save(sb, o)
      return true
    end
  end
  return false
end

--- A POST_ORDER_FULFILLMENT_DATA message (the feeds program calls this).
-- m = { amazonOrderId | merchantOrderId, carrierCode, carrierName, shippingMethod,
--       shipperTrackingNumber, fulfillmentDate (ISO), items = {{amazonOrderItemCode, quantity}} }
-- Returns the package, or nil, message (unknown order, nothing left to ship).
function _M.mark_shipped(sb, m)
  local o = _M.find(sb, m.amazonOrderId)
  if not o and m.merchantOrderId then
    for _, x in ipairs(sb.state.list(ORDER)) do
      if x.SellerOrderId == m.merchantOrderId then o = x break end
    end
  end
  if not o then return nil, "no order " .. tostring(m.amazonOrderId or m.merchantOrderId) end
  local items
  for _, it in ipairs(m.items or {}) do
    if it.amazonOrderItemCode then
      items = items or {}
      local qty = it.quantity
      if not qty then
        for _, oi in ipairs(o.items) do if oi.OrderItemId == it.amazonOrderItemCode then qty = oi.Quantity end end
      end
      items[#items + 1] = { id = it.amazonOrderItemCode, qty = qty or 1 }
    end
  end
  return _M.add_package(sb, o, { carrier = m.carrierCode, carrier_name = m.carrierName, method = m.shippingMethod,
    tracking = m.shipperTrackingNumber, ship_date = m.fulfillmentDate and sb.parse_iso(m.fulfillmentDate) or nil,
    items = items, source = "feed" })
end

-- views -----------------------------------------------------------------------------

local function money(o, v)
  return { CurrencyCode = MARKETPLACES[o.MarketplaceId].currency, Amount = format("%.2f", v) }
end

local function address_v0(a, pii)
  local out = { City = a.City, StateOrRegion = a.StateOrProvinceCode, PostalCode = a.PostalCode,
                CountryCode = a.CountryCode, AddressType = "Residential" }
  if pii then
    out.Name, out.AddressLine1, out.AddressLine2 = a.Name, a.AddressLine1, a.AddressLine2
    if a.Phone and a.Phone ~= "" then out.Phone = a.Phone end
  end
  return out
end

function _M.view_v0(sb, o, pii)
  local total = 0
  for _, it in ipairs(o.items) do total = total + it.price * it.Quantity end
  local shipped, unshipped = counts(o)
  local afn = o.FulfillmentChannel == "AFN"
  local v = {
    AmazonOrderId = o.AmazonOrderId, SellerOrderId = o.SellerOrderId or o.AmazonOrderId,
    PurchaseDate = sb.iso(o.created), LastUpdateDate = sb.iso(o.updated),
    OrderStatus = _M.status(o), FulfillmentChannel = o.FulfillmentChannel,
    SalesChannel = MARKETPLACES[o.MarketplaceId].channel, ShipServiceLevel = afn and "Expedited" or "Std US D2D Dom",
    OrderTotal = money(o, total), NumberOfItemsShipped = shipped, NumberOfItemsUnshipped = unshipped,
    PaymentMethod = "Other", PaymentMethodDetails = { "Standard" }, MarketplaceId = o.MarketplaceId,
    ShipmentServiceLevelCategory = afn and "Expedited" or "Standard", OrderType = "StandardOrder",
    EarliestShipDate = sb.iso(o.created), LatestShipDate = sb.iso(o.created + 2 * 86400),
    EarliestDeliveryDate = sb.iso(o.created + 3 * 86400), LatestDeliveryDate = sb.iso(o.created + 7 * 86400),
    IsBusinessOrder = false, IsPrime = false, IsPremiumOrder = false, IsGlobalExpressEnabled = false,
    IsReplacementOrder = false, IsSoldByAB = false, IsISPU = false, IsAccessPointOrder = false,
    HasRegulatedItems = false,
    ShippingAddress = address_v0(o.ShipToAddress, pii),
  }
  if pii then v.BuyerInfo = { BuyerEmail = o.BuyerEmail, BuyerName = o.ShipToAddress.Name } end
  return v
end

local function items_v0(sb, o)
  local q = shipped_qty(o)
  local out = {}
  for i, it in ipairs(o.items) do
    out[i] = {
      ASIN = it.ASIN, SellerSKU = it.SellerSKU, OrderItemId = it.OrderItemId, Title = it.Title,
      QuantityOrdered = it.Quantity,
      QuantityShipped = o.status == "Shipped" and it.Quantity or min(q[it.OrderItemId] or 0, it.Quantity),
      ProductInfo = { NumberOfItems = "1" },
      ItemPrice = money(o, it.price * it.Quantity), ItemTax = money(o, 0),
      ShippingPrice = money(o, 0), PromotionDiscount = money(o, 0),
      IsGift = "false", ConditionId = "New", ConditionSubtypeId = "New",
      SerialNumberRequired = false, IsTransparency = false,
    }
  end
  return out
end
_M.shipped_qty = shipped_qty

-- getOrders parameters -------------------------------------------------------------

local function date_param(sb, q, name)
  local v = q[name]
  if v == nil or v == "" then return nil end
  local t = sb.parse_iso(v)
  if not t then return false, invalid(sb, name .. " must be an ISO-8601 date-time, got '" .. tostring(v) .. "'") end
  return t
end

-- the NextToken: offset and the window's upper bound of the first page
local function encode_token(sb, offset, before)
  return sb.b64(format("%d|%.3f", offset, before))
end
local function decode_token(sb, s)
  local raw = sb.unb64(s or "")
  local off, before = (raw or ""):match("^(%d+)|([%d%.%-]+)$")
  if not off then return nil end
  return tonumber(off), tonumber(before)
end

local function filters(sb, req)
  local q = req.query
  local f = {}
  local ca, st, body = date_param(sb, q, "CreatedAfter")
  if ca == false then return nil, st, body end
  local cb
  cb, st, body = date_param(sb, q, "CreatedBefore")
  if cb == false then return nil, st, body end
  local ua
  ua, st, body = date_param(sb, q, "LastUpdatedAfter")
  if ua == false then return nil, st, body end
  local ub
  ub, st, body = date_param(sb, q, "LastUpdatedBefore")
  if ub == false then return nil, st, body end
  if not ca and not ua then
    return nil, invalid(sb, "Either CreatedAfter or LastUpdatedAfter is required. Both cannot be empty.")
  end
  if ca and (ua or ub) then
    return nil, invalid(sb, "LastUpdatedAfter and LastUpdatedBefore cannot be set when CreatedAfter is set.")
  end
  if ua and cb then
    return nil, invalid(sb, "CreatedAfter or CreatedBefore cannot be set when LastUpdatedAfter is set.")
  end
  local limit = sb.now() - 120
  local before = cb or ub
  if before and before > limit then
    return nil, invalid(sb, (cb and "CreatedBefore" or "LastUpdatedBefore")
      .. " must be at least two minutes before the current time.")
  end
  local after = ca or ua
  if before and before < after then
    return nil, invalid(sb, (cb and "CreatedBefore" or "LastUpdatedBefore") .. " must be equal to or after "
      .. (cb and "CreatedAfter" or "LastUpdatedAfter") .. ".")
  end
  f.by_update = ua ~= nil
  f.after, f.before = after, before or limit
  f.statuses = set_of(list_param(req, "OrderStatuses"))
  for s in pairs(f.statuses or {}) do
    if not STATUSES[s] then return nil, invalid(sb, "OrderStatuses: '" .. s .. "' is not an order status.") end
  end
  f.channels = set_of(list_param(req, "FulfillmentChannels"))
  for c in pairs(f.channels or {}) do
    if c ~= "AFN" and c ~= "MFN" then return nil, invalid(sb, "FulfillmentChannels: '" .. c .. "' is not AFN or MFN.") end
  end
  f.payments = set_of(list_param(req, "PaymentMethods"))
  f.marketplaces = set_of(list_param(req, "MarketplaceIds")) or {}
  local ids = list_param(req, "AmazonOrderIds")
  if ids and #ids > 50 then return nil, invalid(sb, "AmazonOrderIds takes at most 50 ids.") end
  f.ids = set_of(ids)
  f.email = q.BuyerEmail ~= "" and q.BuyerEmail or nil
  f.seller_order = q.SellerOrderId ~= "" and q.SellerOrderId or nil
  if f.seller_order and (f.channels or f.statuses or f.payments or ua or ub or f.email) then
    return nil, invalid(sb, "If SellerOrderId is specified, FulfillmentChannels, OrderStatuses, PaymentMethod, "
      .. "LastUpdatedAfter, LastUpdatedBefore and BuyerEmail cannot be specified.")
  end
  f.max = 100
  if q.MaxResultsPerPage ~= nil and q.MaxResultsPerPage ~= "" then
    local n = tonumber(q.MaxResultsPerPage)
    if not n or n ~= floor(n) or n < 1 or n > 100 then
      return nil, invalid(sb, "MaxResultsPerPage must be 1 - 100, got '" .. tostring(q.MaxResultsPerPage) .. "'.")
    end
    f.max = n
  end
  f.offset = 0
  if q.NextToken ~= nil and q.NextToken ~= "" then
    local off, b = decode_token(sb, q.NextToken)
    if not off then return nil, invalid(sb, "NextToken is not valid.") end
    f.offset, f.before = off, b
  end
  return f
end

local function matches(o, f)
  local t = f.by_update and o.updated or o.created
  if t < f.after or t > f.before then return false end
  if not f.marketplaces[o.MarketplaceId] then return false end
  if f.statuses and not f.statuses[_M.status(o)] then return false end
  if f.channels and not f.channels[o.FulfillmentChannel] then return false end
  if f.payments and not f.payments.Other then return false end
  if f.ids and not f.ids[o.AmazonOrderId] then return false end
  if f.email and f.email ~= o.BuyerEmail then return false end
  if f.seller_order and f.seller_order ~= (o.SellerOrderId or o.AmazonOrderId) then return false end
  return true
end

--- Orders of the caller matching getOrders-style filters f, sorted by time.
function _M.select(sb, req, f)
  local sel = {}
  for _, o in ipairs(sb.state.list(ORDER)) do
    if (o.owner == nil or o.owner == req.selling_partner) and matches(o, f) then sel[#sel + 1] = o end
  end
  local key = f.by_update and "updated" or "created"
  for i, o in ipairs(sel) do o._i = i end
  table.sort(sel, function(a, b)
    if a[key] ~= b[key] then return a[key] < b[key] end
    return a._i < b._i
  end)
  return sel
end

_M.filters = filters
_M.encode_token = encode_token

local function pii(req) return req.token_kind == "rdt" end

local function found(sb, req)
  local o = _M.find(sb, req.params.orderId, req)
  if not o then return nil, err(sb, 404, "NotFound", "Order " .. tostring(req.params.orderId) .. " not found.") end
  return o
end

_M.handlers = {
  getOrders = function(req, sb)
    local f, st, body = filters(sb, req)
    if not f then return st, body end
    local sel = _M.select(sb, req, f)
    local page = {}
    for i = f.offset + 1, min(#sel, f.offset + f.max) do page[#page + 1] = _M.view_v0(sb, sel[i], pii(req)) end
    local p = { Orders = lib.array(sb, page) }
    if f.offset + f.max < #sel then p.NextToken = encode_token(sb, f.offset + f.max, f.before) end
    if f.by_update then p.LastUpdatedBefore = sb.iso(f.before) else p.CreatedBefore = sb.iso(f.before) end
    return 200, { payload = p }
  end,

  getOrder = function(req, sb)
    local o, st, body = found(sb, req)
    if not o then return st, body end
    return 200, { payload = _M.view_v0(sb, o, pii(req)) }
  end,

  getOrderBuyerInfo = function(req, sb)
    local o, st, body = found(sb, req)
    if not o then return st, body end
    return 200, { payload = { AmazonOrderId = o.AmazonOrderId, BuyerEmail = o.BuyerEmail, BuyerName = o.ShipToAddress.Name } }
  end,

  getOrderAddress = function(req, sb)
    local o, st, body = found(sb, req)
    if not o then return st, body end
    return 200, { payload = { AmazonOrderId = o.AmazonOrderId, ShippingAddress = address_v0(o.ShipToAddress, true) } }
  end,

  getOrderItems = function(req, sb)
    local o, st, body = found(sb, req)
    if not o then return st, body end
    return 200, { payload = { AmazonOrderId = o.AmazonOrderId, OrderItems = items_v0(sb, o) } }
  end,

  getOrderItemsBuyerInfo = function(req, sb)
    local o, st, body = found(sb, req)
    if not o then return st, body end
    local out = {}
    for i, it in ipairs(o.items) do out[i] = { OrderItemId = it.OrderItemId } end
    return 200, { payload = { AmazonOrderId = o.AmazonOrderId, OrderItems = out } }
  end,

  -- the sandbox's orders have no regulated items and none is picked up in a store
  -- (HasRegulatedItems, IsISPU false): these answer as Amazon does for such orders
  getOrderRegulatedInfo = function(req, sb)
    local o, st, body = found(sb, req)
    if not o then return st, body end
    return invalid(sb, "Order " .. o.AmazonOrderId .. " does not have regulated items.")
  end,

  updateVerificationStatus = function(req, sb)
    local o, st, body = found(sb, req)
    if not o then return st, body end
    return invalid(sb, "Order " .. o.AmazonOrderId .. " does not have regulated items.")
  end,

  updateShipmentStatus = function(req, sb)
    local o, st, body = found(sb, req)
    if not o then return st, body end
    local b = req.body
    if type(b) ~= "table" or b.marketplaceId ~= o.MarketplaceId then
      return invalid(sb, "The body must be an UpdateShipmentStatusRequest with the order's marketplaceId.")
    end
    return invalid(sb, "Order " .. o.AmazonOrderId .. " is not an in-store pickup (IsISPU) order.")
  end,

  confirmShipment = lib.locked("orders", function(req, sb)
    local o, st, body = found(sb, req)
    if not o then return st, body end
    local b = req.body
    if type(b) ~= "table" or type(b.packageDetail) ~= "table" then
      return invalid(sb, "The body must be a ConfirmShipmentRequest with marketplaceId and packageDetail.")
    end
    if b.marketplaceId ~= o.MarketplaceId then
      return invalid(sb, "marketplaceId " .. tostring(b.marketplaceId) .. " is not the order's marketplace " .. o.MarketplaceId .. ".")
    end
    local d = b.packageDetail
    for _, k in ipairs({ "packageReferenceId", "carrierCode", "trackingNumber", "shipDate" }) do
      if type(d[k]) ~= "string" or d[k] == "" then return invalid(sb, "packageDetail." .. k .. " is required.") end
    end
    local ship_date = sb.parse_iso(d.shipDate)
    if not ship_date then return invalid(sb, "packageDetail.shipDate must be an ISO-8601 date-time.") end
    if not lib.is_array(d.orderItems) then return invalid(sb, "packageDetail.orderItems must be a non-empty array.") end
    local items = {}
    for i, it in ipairs(d.orderItems) do
      if type(it) ~= "table" or type(it.orderItemId) ~= "string" or type(it.quantity) ~= "number"
        or it.quantity < 1 or it.quantity ~= floor(it.quantity) then
        return invalid(sb, format("packageDetail.orderItems[%d] needs orderItemId and a positive integer quantity.", i - 1))
      end
      items[i] = { id = it.orderItemId, qty = it.quantity }
    end
    local p, msg = _M.add_package(sb, o, { ref = d.packageReferenceId, carrier = d.carrierCode, carrier_name = d.carrierName,
      method = d.shippingMethod, tracking = d.trackingNumber, ship_date = ship_date, items = items, source = "confirmShipment" })
    if not p then return invalid(sb, msg) end
    return 204, nil
  end),
}

-- seeds -------------------------------------------------------------------------------

local NY = { Name = "Jane Smith", AddressLine1 = "10 Columbus Cir", AddressLine2 = "Time Warner Center", Email = "",
             City = "New York", StateOrProvinceCode = "NY", PostalCode = "10019-1158", CountryCode = "US", Phone = "" }
local SEA = { Name = "Bob Buyer", AddressLine1 = "410 Terry Ave N", Email = "", City = "Seattle",
              StateOrProvinceCode = "WA", PostalCode = "98109", CountryCode = "US", Phone = "2065550100" }

-- age: hours before the sandbox's start
_M.ORDERS = {
  { AmazonOrderId = "902-1845936-5435065", MarketplaceId = US, ShipToAddress = NY, age = 30,
    items = { { OrderItemId = "52986411826454", ASIN = "B07DFVDRAB", Quantity = 1, Title = "Stainless Steel Kettle", price = 39.99 },
              { OrderItemId = "52986411826455", ASIN = "B08XYZ1234", Quantity = 2, Title = "Bamboo Cutting Board", price = 18.00 } } },
  -- the order of Merchant Fulfillment's x-amzn-api-sandbox examples
  { AmazonOrderId = "903-5563053-5647845", MarketplaceId = US, ShipToAddress = NY, age = 28,
    items = { { OrderItemId = "52986411826454", ASIN = "B07DFYF5AB", Quantity = 1, Title = "Pour-Over Coffee Set", price = 24.50 },
              { OrderItemId = "12958298061782", ASIN = "B07DFVDRAB", Quantity = 2, Title = "Stainless Steel Kettle", price = 39.99 } } },
  { AmazonOrderId = "114-3941689-8772232", MarketplaceId = US, ShipToAddress = SEA, age = 20,
    items = { { OrderItemId = "41829372910011", ASIN = "B0C1LIGHT1", Quantity = 3, Title = "LED Desk Lamp", price = 29.00 } } },
  { AmazonOrderId = "111-7700012-3456789", MarketplaceId = US, ShipToAddress = SEA, age = 12,
    items = { { OrderItemId = "41829372910099", ASIN = "B0HEAVY001", Quantity = 1, Title = "Cast Iron Dutch Oven", price = 89.95 } } },
  { AmazonOrderId = "701-2345678-9012345", MarketplaceId = BR, age = 10,
    ShipToAddress = { Name = "Ana Souza", AddressLine1 = "Av. Paulista 1000", Email = "", City = "Sao Paulo",
                      StateOrProvinceCode = "SP", PostalCode = "01310-100", CountryCode = "BR", Phone = "" },
    items = { { OrderItemId = "70000000000001", ASIN = "B0BRAZIL01", Quantity = 1, Title = "Garrafa Termica", price = 120 } } },
  -- not for Merchant Fulfillment: fulfilled by Amazon, awaiting payment, cancelled
  { AmazonOrderId = "112-0000001-0000001", MarketplaceId = US, ShipToAddress = SEA, age = 26, FulfillmentChannel = "AFN",
    items = { { OrderItemId = "30000000000001", ASIN = "B0FBAMUG01", Quantity = 2, Title = "Red Mug", price = 12.00 } } },
  { AmazonOrderId = "112-0000002-0000002", MarketplaceId = US, ShipToAddress = NY, age = 6, OrderStatus = "Pending",
    items = { { OrderItemId = "30000000000002", ASIN = "B0PENDING1", Quantity = 1, Title = "Tea Towel Set", price = 15.00 } } },
  { AmazonOrderId = "112-0000003-0000003", MarketplaceId = US, ShipToAddress = SEA, age = 4, OrderStatus = "Canceled",
    items = { { OrderItemId = "30000000000003", ASIN = "B0CANCEL01", Quantity = 1, Title = "Salad Spinner", price = 22.00 } } },
}

--- Create the seeded orders that are not there yet (Merchant Fulfillment's
-- seed runs first and calls this, so that its example labels have an order).
function _M.seed(sb)
  for _, s in ipairs(_M.ORDERS) do
    if not sb.state.get(ORDER, s.AmazonOrderId) then
      local a = lib.deepcopy(s)
      a.PurchaseDate = sb.iso(sb.now() - s.age * 3600)
      assert(_M.create(sb, a))
    end
  end
end

-- POST /_sandbox/programs/orders/order {AmazonOrderId=, items=, MarketplaceId=, FulfillmentChannel=,
--   OrderStatus=, PurchaseDate=, SellerOrderId=, ShipToAddress=}
function _M.control(sb, action, args)
  args = type(args) == "table" and args or {}
  if action == "order" then
    local o, msg = _M.create(sb, args)
    if not o then return sb.err(400, "InvalidInput", msg) end
    return 200, { AmazonOrderId = o.AmazonOrderId, OrderStatus = _M.status(o), PurchaseDate = sb.iso(o.created) }
  end
  return sb.err(404, "NotFound", "Unknown orders control action " .. tostring(action) .. " (known: order)")
end

return _M
