-- Orders 2026-01-01: searchOrders, getOrder over the Orders program's store
-- (spapi.sandbox.programs.orders): the same orders, items and packages in the
-- new shape. includedData picks the datasets; BUYER and RECIPIENT carry the
-- buyer's name, e-mail and address only when the call brings a restricted data
-- token (without one the recipient's city, region, postal code and country).
local type, ipairs, pairs = type, ipairs, pairs
local min = math.min
local format = string.format
local orders = require "spapi.sandbox.programs.orders"
local lib = require("spapi.sandbox.programs.vendor_df_transactions").lib

local _M = {}

local STATUS = { -- v0 → 2026
  PendingAvailability = "PENDING_AVAILABILITY", Pending = "PENDING", Unshipped = "UNSHIPPED",
  PartiallyShipped = "PARTIALLY_SHIPPED", Shipped = "SHIPPED", InvoiceUnconfirmed = "SHIPPED",
  Canceled = "CANCELLED", Unfulfillable = "UNFULFILLABLE",
}
local V0 = {}
for k, v in pairs(STATUS) do if k ~= "InvoiceUnconfirmed" then V0[v] = k end end
local BY = { MERCHANT = "MFN", AMAZON = "AFN" }
local BY_NAME = { MFN = "MERCHANT", AFN = "AMAZON" }
-- v0 parameter names in the shared rules' messages → 2026-01-01's
local NAMES = { CreatedAfter = "createdAfter", CreatedBefore = "createdBefore", LastUpdatedAfter = "lastUpdatedAfter",
  LastUpdatedBefore = "lastUpdatedBefore", MaxResultsPerPage = "maxResultsPerPage", NextToken = "paginationToken",
  OrderStatuses = "fulfillmentStatuses", FulfillmentChannels = "fulfilledBy" }

local function money(o, v)
  return { amount = format("%.2f", v), currencyCode = orders.MARKETPLACES[o.MarketplaceId].currency }
end

local function address(a, pii)
  local out = { city = a.City, stateOrRegion = a.StateOrProvinceCode, postalCode = a.PostalCode,
                countryCode = a.CountryCode, addressType = "RESIDENTIAL" }
  if pii then
    out.name, out.addressLine1, out.addressLine2 = a.Name, a.AddressLine1, a.AddressLine2
    if a.Phone and a.Phone ~= "" then out.phone = a.Phone end
  end
  return out
end

local function view(sb, o, inc, pii)
  local shipped = orders.shipped_qty(o)
  local status = orders.status(o)
  local items, total = {}, 0
  for i, it in ipairs(o.items) do
    total = total + it.price * it.Quantity
    local done = o.status == "Shipped" and it.Quantity or min(shipped[it.OrderItemId] or 0, it.Quantity)
    local item = {
      orderItemId = it.OrderItemId, quantityOrdered = it.Quantity,
      product = { asin = it.ASIN, title = it.Title, sellerSku = it.SellerSKU,
                  condition = { conditionType = "NEW", conditionSubtype = "NEW" },
                  price = { unitPrice = money(o, it.price) } },
    }
    if inc.PROCEEDS then item.proceeds = { proceedsTotal = money(o, it.price * it.Quantity) } end
    if inc.FULFILLMENT then item.fulfillment = { quantityFulfilled = done, quantityUnfulfilled = it.Quantity - done } end
    items[i] = item
  end
  local v = {
    orderId = o.AmazonOrderId, createdTime = sb.iso(o.created), lastUpdatedTime = sb.iso(o.updated),
    salesChannel = { channelName = "Amazon", marketplaceId = o.MarketplaceId,
                     marketplaceName = orders.MARKETPLACES[o.MarketplaceId].channel },
    orderItems = items,
  }
  if o.SellerOrderId then v.orderAliases = { { aliasId = o.SellerOrderId, aliasType = "SELLER_ORDER_ID" } } end
  if inc.BUYER and pii then v.buyer = { buyerName = o.ShipToAddress.Name, buyerEmail = o.BuyerEmail } end
  if inc.RECIPIENT then v.recipient = { deliveryAddress = address(o.ShipToAddress, pii) } end
  if inc.PROCEEDS then v.proceeds = { grandTotal = money(o, total) } end
  if inc.FULFILLMENT then
    v.fulfillment = { fulfillmentStatus = STATUS[status], fulfilledBy = BY_NAME[o.FulfillmentChannel],
      fulfillmentServiceLevel = o.FulfillmentChannel == "AFN" and "EXPEDITED" or "STANDARD",
      shipByWindow = { earliestDateTime = sb.iso(o.created), latestDateTime = sb.iso(o.created + 2 * 86400) },
      deliverByWindow = { earliestDateTime = sb.iso(o.created + 3 * 86400), latestDateTime = sb.iso(o.created + 7 * 86400) } }
  end
  if inc.PACKAGES then
    local pk = {}
    for i, p in ipairs(o.packages or {}) do
      local pitems = {}
      for j, it in ipairs(p.items) do pitems[j] = { orderItemId = it.id, quantity = it.qty } end
      pk[#pk + 1] = { packageReferenceId = p.ref or p.shipment or tostring(i), createdTime = sb.iso(p.ship_date),
        packageStatus = { status = p.cancelled and "CANCELLED" or "SHIPPED" }, carrier = p.carrier,
        shipTime = sb.iso(p.ship_date), shippingService = p.method, trackingNumber = p.tracking,
        packageItems = pitems }
    end
    v.packages = lib.array(sb, pk)
  end
  return v
end

local function included(req)
  local s = {}
  for _, x in ipairs(orders.list_param(req, "includedData") or {}) do s[x] = true end
  return s
end

local function pii(req) return req.token_kind == "rdt" end

-- the 2026 query in the names of v0's filters (one set of rules for both)
local function v0_request(req)
  local q = req.query
  local all = {}
  local function set(name, vals) if vals then all[name] = vals end end
  local qv0 = { CreatedAfter = q.createdAfter, CreatedBefore = q.createdBefore, LastUpdatedAfter = q.lastUpdatedAfter,
                LastUpdatedBefore = q.lastUpdatedBefore, MaxResultsPerPage = q.maxResultsPerPage,
                NextToken = q.paginationToken }
  local st = orders.list_param(req, "fulfillmentStatuses")
  if st then
    local l = {}
    for i, x in ipairs(st) do l[i] = V0[x] or x end
    set("OrderStatuses", l)
  end
  local by = orders.list_param(req, "fulfilledBy")
  if by then
    local l = {}
    for i, x in ipairs(by) do l[i] = BY[x] or x end
    set("FulfillmentChannels", l)
  end
  set("MarketplaceIds", orders.list_param(req, "marketplaceIds") or (function()
    local l = {}
    for id in pairs(orders.MARKETPLACES) do l[#l + 1] = id end
    return l
  end)())
  return { query = qv0, query_all = all, selling_partner = req.selling_partner }
end

_M.handlers = {
  searchOrders = function(req, sb)
    local r = v0_request(req)
    local f, st, body = orders.filters(sb, r)
    if not f then
      body.errors[1].message = body.errors[1].message:gsub("%a+", NAMES)
      return st, body
    end
    local sel = orders.select(sb, req, f)
    local inc, out = included(req), {}
    for i = f.offset + 1, min(#sel, f.offset + f.max) do out[#out + 1] = view(sb, sel[i], inc, pii(req)) end
    local resp = { orders = lib.array(sb, out) }
    if f.offset + f.max < #sel then resp.pagination = { nextToken = orders.encode_token(sb, f.offset + f.max, f.before) } end
    if f.by_update then resp.lastUpdatedBefore = sb.iso(f.before) else resp.createdBefore = sb.iso(f.before) end
    return 200, resp
  end,

  getOrder = function(req, sb)
    local o = orders.find(sb, req.params.orderId, req)
    if not o then return sb.err(404, "NotFound", "Order " .. tostring(req.params.orderId) .. " not found.") end
    return 200, { order = view(sb, o, included(req), pii(req)) }
  end,
}

return _M
