-- POST_ORDER_FULFILLMENT_DATA documents: shipment confirmations as the XML Amazon
-- expects (amzn-envelope, OrderFulfillment messages), text escaped.
--
--   local of = require "spapi.feeds.order_fulfillment"
--   local xml = of.build{ merchant_id = "A1SELLER", confirmations = {
--     { amazon_order_id = "113-1234567-1234567", date = os.time(), carrier = "USPS",
--       shipping_method = "USPS First Class Mail", tracking_number = "9400...",
--       items = { { amazon_order_item_code = "12345678901234", quantity = 1 } },
--       ship_from = { name = "Seattle store", address_line1 = "...", city = "Seattle",
--                     state_or_region = "WA", postal_code = "98109", country_code = "US" } } } }
--
-- The MLI guide's rules: CarrierCode, ShippingMethod and ShipperTrackingNumber are
-- required to confirm a shipment; a carrier that is not one of amzn-base.xsd's
-- CarrierCode values is sent as CarrierCode Other with its name in CarrierName;
-- ShipFromSupplySourceId is not supported (the location is given as ShipFromAddress).
-- A malformed confirmation raises, naming the field.
local _M = {}

local type, ipairs, tostring, error, tonumber = type, ipairs, tostring, error, tonumber
local fmt, concat, floor = string.format, table.concat, math.floor

_M.FEED_TYPE = "POST_ORDER_FULFILLMENT_DATA"
_M.CONTENT_TYPE = "text/xml; charset=UTF-8"

-- CarrierCode values of amzn-base.xsd (the commonly used part of the list)
_M.CARRIER_CODES = { "USPS", "UPS", "UPSMI", "FedEx", "FedEx SmartPost", "DHL", "DHL eCommerce", "DHL Global Mail",
  "Fastway", "Lasership", "OnTrac", "OSM", "Streamlite", "Newgistics", "Canada Post", "Purolator", "Royal Mail",
  "Parcelforce", "Yodel", "Hermes", "DPD", "GLS", "TNT", "Chronopost", "La Poste", "Colissimo",
  "Deutsche Post", "Poste Italiane", "SEUR", "Correos", "Japan Post", "Yamato Transport", "Sagawa Express",
  "Nippon Express", "India Post", "Blue Dart", "Australia Post", "Amazon Shipping", "Other" }
local KNOWN = {}
for _, c in ipairs(_M.CARRIER_CODES) do KNOWN[c:lower()] = c end

--- The amzn-base CarrierCode for a carrier name (case-insensitive), or nil.
function _M.carrier_code(name)
  return type(name) == "string" and KNOWN[name:lower()] or nil
end

local ESC = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&apos;" }

--- Text for an XML element or attribute: & < > " ' escaped; characters XML 1.0
--- cannot carry (control characters other than tab, newline, return) raise.
function _M.escape(s)
  s = tostring(s)
  if s:find("[%z\1-\8\11\12\14-\31]") then
    error("spapi.feeds.order_fulfillment: text holds a control character XML cannot carry: " .. fmt("%q", s), 2)
  end
  return (s:gsub("[&<>\"']", ESC))
end
local esc = _M.escape

local function raise(where, msg) error("spapi.feeds.order_fulfillment: " .. where .. ": " .. msg, 4) end

local function iso(t)
  if type(t) == "number" then return os.date("!%Y-%m-%dT%H:%M:%S+00:00", floor(t)) end
  return t
end

local function need(c, where, field)
  local v = c[field]
  if type(v) ~= "string" or v == "" then raise(where, field .. " is required") end
  return v
end

-- amzn-base AddressType
local ADDRESS = { { "name", "Name" }, { "address_line1", "AddressFieldOne" }, { "address_line2", "AddressFieldTwo" },
  { "address_line3", "AddressFieldThree" }, { "city", "City" }, { "county", "County" },
  { "state_or_region", "StateOrRegion" }, { "postal_code", "PostalCode" }, { "country_code", "CountryCode" },
  { "phone", "PhoneNumber" } }

local function address(a, where)
  if type(a) ~= "table" then raise(where, "ship_from must be a table") end
  for _, f in ipairs({ "name", "address_line1", "city", "country_code" }) do
    if type(a[f]) ~= "string" or a[f] == "" then raise(where, "ship_from." .. f .. " is required") end
  end
  if not a.country_code:match("^%u%u$") then raise(where, "ship_from.country_code must be a two-letter ISO 3166 code") end
  local out = {}
  for _, f in ipairs(ADDRESS) do
    if a[f[1]] ~= nil then out[#out + 1] = fmt("<%s>%s</%s>", f[2], esc(a[f[1]]), f[2]) end
  end
  return "<ShipFromAddress>" .. concat(out) .. "</ShipFromAddress>"
end

local function message(i, c)
  local where = fmt("confirmations[%d]", i)
  if type(c) ~= "table" then raise(where, "must be a table") end
  if c.ship_from_supply_source_id ~= nil then
    raise(where, "ship_from_supply_source_id is not supported by Amazon (MLI guide): give the location as ship_from")
  end
  local parts = { fmt("<Message><MessageID>%d</MessageID><OrderFulfillment>", i) }
  if (c.amazon_order_id ~= nil) == (c.merchant_order_id ~= nil) then
    raise(where, "exactly one of amazon_order_id and merchant_order_id is required")
  end
  if c.amazon_order_id then
    parts[#parts + 1] = "<AmazonOrderID>" .. esc(need(c, where, "amazon_order_id")) .. "</AmazonOrderID>"
  else
    parts[#parts + 1] = "<MerchantOrderID>" .. esc(need(c, where, "merchant_order_id")) .. "</MerchantOrderID>"
  end
  if c.merchant_fulfillment_id then
    parts[#parts + 1] = "<MerchantFulfillmentID>" .. esc(c.merchant_fulfillment_id) .. "</MerchantFulfillmentID>"
  end
  local date = iso(c.date)
  if type(date) ~= "string" or not date:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d") then
    raise(where, "date must be Unix seconds or an ISO 8601 date-time")
  end
  parts[#parts + 1] = "<FulfillmentDate>" .. esc(date) .. "</FulfillmentDate>"
  local carrier = need(c, where, "carrier")
  local code = c.carrier_code or _M.carrier_code(carrier) or "Other"
  if not KNOWN[code:lower()] then raise(where, "carrier_code " .. code .. " is not an amzn-base CarrierCode") end
  parts[#parts + 1] = "<FulfillmentData><CarrierCode>" .. esc(KNOWN[code:lower()]) .. "</CarrierCode>"
  if code:lower() == "other" then
    parts[#parts + 1] = "<CarrierName>" .. esc(carrier) .. "</CarrierName>"
  end
  parts[#parts + 1] = "<ShippingMethod>" .. esc(need(c, where, "shipping_method")) .. "</ShippingMethod>"
  parts[#parts + 1] = "<ShipperTrackingNumber>" .. esc(need(c, where, "tracking_number"))
    .. "</ShipperTrackingNumber></FulfillmentData>"
  for j, it in ipairs(c.items or {}) do
    local w = fmt("%s.items[%d]", where, j)
    if type(it) ~= "table" or (it.amazon_order_item_code ~= nil) == (it.merchant_order_item_id ~= nil) then
      raise(w, "exactly one of amazon_order_item_code and merchant_order_item_id is required")
    end
    local p = { "<Item>" }
    if it.amazon_order_item_code then
      p[#p + 1] = "<AmazonOrderItemCode>" .. esc(it.amazon_order_item_code) .. "</AmazonOrderItemCode>"
    else
      p[#p + 1] = "<MerchantOrderItemID>" .. esc(it.merchant_order_item_id) .. "</MerchantOrderItemID>"
    end
    if it.quantity ~= nil then
      local q = tonumber(it.quantity)
      if not q or q < 1 or q ~= floor(q) then raise(w, "quantity must be a positive integer") end
      p[#p + 1] = fmt("<Quantity>%d</Quantity>", q)
    end
    p[#p + 1] = "</Item>"
    parts[#parts + 1] = concat(p)
  end
  if c.ship_from then parts[#parts + 1] = address(c.ship_from, where) end
  parts[#parts + 1] = "</OrderFulfillment></Message>"
  return concat(parts)
end

--- The feed document. doc = { merchant_id, confirmations = { ... } } → XML text
function _M.build(doc)
  if type(doc) ~= "table" then error("spapi.feeds.order_fulfillment: build: pass { merchant_id, confirmations }", 2) end
  if type(doc.merchant_id) ~= "string" or doc.merchant_id == "" then
    error("spapi.feeds.order_fulfillment: build: merchant_id is required", 2)
  end
  if type(doc.confirmations) ~= "table" or #doc.confirmations == 0 then
    error("spapi.feeds.order_fulfillment: build: confirmations must list at least one shipment", 2)
  end
  local out = { '<?xml version="1.0" encoding="UTF-8"?>',
    '<AmazonEnvelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="amzn-envelope.xsd">',
    "<Header><DocumentVersion>1.01</DocumentVersion><MerchantIdentifier>" .. esc(doc.merchant_id)
      .. "</MerchantIdentifier></Header>",
    "<MessageType>OrderFulfillment</MessageType>" }
  for i, c in ipairs(doc.confirmations) do out[#out + 1] = message(i, c) end
  out[#out + 1] = "</AmazonEnvelope>"
  return concat(out, "\n")
end

--- Decode the ProcessingReport Amazon returns for the feed:
--- → { processed, successful, errors, warnings, results = { { message_id, code, message_code, description,
---     amazon_order_id, merchant_order_id } } } | nil, message
function _M.decode_report(text)
  if type(text) ~= "string" then return nil, "the report is not text" end
  local function num(tag) return tonumber(text:match("<" .. tag .. ">%s*(%d+)%s*</" .. tag .. ">")) end
  if not text:find("<ProcessingReport>", 1, true) then return nil, "not a ProcessingReport" end
  local function unesc(s)
    return s and (s:gsub("&lt;", "<"):gsub("&gt;", ">"):gsub("&quot;", '"'):gsub("&apos;", "'"):gsub("&amp;", "&"))
  end
  local out = { processed = num("MessagesProcessed") or 0, successful = num("MessagesSuccessful") or 0,
    errors = num("MessagesWithError") or 0, warnings = num("MessagesWithWarning") or 0, results = {} }
  for r in text:gmatch("<Result>(.-)</Result>") do
    out.results[#out.results + 1] = { message_id = tonumber(r:match("<MessageID>(%d+)</MessageID>")),
      code = r:match("<ResultCode>(.-)</ResultCode>"), message_code = tonumber(r:match("<ResultMessageCode>(%d+)")),
      description = unesc(r:match("<ResultDescription>(.-)</ResultDescription>")),
      amazon_order_id = unesc(r:match("<AmazonOrderID>(.-)</AmazonOrderID>")),
      merchant_order_id = unesc(r:match("<MerchantOrderID>(.-)</MerchantOrderID>")) }
  end
  return out
end

return _M
