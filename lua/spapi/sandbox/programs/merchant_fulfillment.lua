-- Merchant Fulfillment v0 (Amazon Buy Shipping): getEligibleShipmentServices,
-- getAdditionalSellerInputs, createShipment, getShipment, cancelShipment.
--
-- Orders are the Orders program's (spapi.sandbox.programs.orders, state kind
-- "order"; one seeded order is from a marketplace without Merchant Fulfillment:
-- RegionNotSupported). A purchased label is a package on its order, so buying
-- labels for all items moves the order to Shipped and cancelling one moves it
-- back. A seller shipping account has a balance (control action "account" sets
-- it); control action "labels" counts the labels ever bought per order.
-- Offers (ShippingServiceOfferId) are stored with the order, service, weight
-- and dimensions they were quoted for and expire after OFFER_TTL sandbox
-- seconds.  A purchased label can be cancelled within CANCEL_WINDOW; the
-- shipment is then RefundPending and becomes RefundApplied REFUND_DELAY later.
--
-- Error codes reproduced (Merchant Fulfillment API guide):
--   400 InvalidRequest          body missing, a required field missing or of the wrong type
--   400 InvalidInput            a value violating a model constraint (shipmentId pattern,
--                               CountryCode length) - the model's own examples
--   400 InvalidShipFromAddress  ship-from not in the order's country, bad US ZIP, no US state
--   400 InvalidShippingServiceOfferId  offer id unknown, or quoted for another order/service
--   400 ShippingServiceOfferNotAvailable  offer expired, or weight/dimensions changed since the quote
--   400 LabelFormatNotSupported LabelFormat the service cannot print
--   400 ShipmentRequestDetailsTooRestrictive  service cannot meet MustArriveByDate, the
--                               delivery experience or the carrier pick-up asked for
--   400 ShipmentAlreadyExists   items already covered by a purchased shipment (ShipmentId in message)
--   400 InsufficientFunds       label rate above the account balance
--   400 LabelCancelWindowExpired cancel after CANCEL_WINDOW
--   404 InvalidState            cancel of a shipment that is not Purchased
--   404 ItemsNotInOrder         OrderItemId not in the order or quantity above the ordered one
--   404 RegionNotSupported      order from a marketplace without Merchant Fulfillment
--   404 ResourceNotFound        unknown AmazonOrderId or ShipmentId
--   404 ShippingServiceNotAvailable unknown ShippingServiceId or one not available for the weight
local type, ipairs, pairs, tostring, tonumber = type, ipairs, pairs, tostring, tonumber
local floor, ceil, max = math.floor, math.ceil, math.max
local format = string.format
local ngx = ngx -- luacheck: ignore (nil outside nginx)
local lib = require("spapi.sandbox.programs.vendor_df_transactions").lib
local orders = require "spapi.sandbox.programs.orders"

local _M = {}

_M.OFFER_TTL = 3600          -- an offer from getEligibleShipmentServices is valid this long
_M.CANCEL_WINDOW = 86400     -- a label can be cancelled (refunded) within 24 hours
_M.REFUND_DELAY = 900        -- RefundPending → RefundApplied
_M.DEFAULT_BALANCE = 1000    -- USD in the seller's shipping account after seed/reset

local SHIPMENT, OFFER, ACCOUNT = "mfn_shipment", "mfn_offer", "mfn_account"

local MARKETPLACES = {
  ATVPDKIKX0DER = { country = "US", currency = "USD", supported = true },
  A2Q3Y263D00KWC = { country = "BR", currency = "BRL", supported = false },
}

-- The services the sandbox carriers offer (US).  max_oz: weight limit;
-- base + per_lb × ceil(billable pounds) = rate; days: transit time.
local SERVICES = {
  { id = "USPS_PTP_FIRST_CLASS", name = "USPS First Class Mail®", carrier = "USPS", max_oz = 15.99,
    base = 3.85, per_lb = 0, days = { 2, 5 }, formats = { "PDF", "PNG", "ZPL203" }, default = "PNG",
    experiences = { DeliveryConfirmationWithoutSignature = 0 }, pickup = false, dim = false },
  { id = "USPS_PTP_PRI", name = "USPS Priority Mail®", carrier = "USPS", max_oz = 70 * 16,
    base = 7.95, per_lb = 1.10, days = { 1, 3 }, formats = { "PDF", "PNG", "ZPL203" }, default = "PNG",
    experiences = { DeliveryConfirmationWithoutSignature = 0, DeliveryConfirmationWithSignature = 3.05,
                    DeliveryConfirmationWithAdultSignature = 7.45 }, pickup = true, dim = true },
  { id = "UPS_PTP_GND", name = "UPS® Ground", carrier = "UPS®", max_oz = 150 * 16,
    base = 9.45, per_lb = 0.85, days = { 3, 5 }, formats = { "ZPL203", "ShippingServiceDefault", "PDF", "PNG" },
    default = "PNG", experiences = { DeliveryConfirmationWithoutSignature = 0, DeliveryConfirmationWithSignature = 4.75,
    DeliveryConfirmationWithAdultSignature = 5.90 }, pickup = true, dim = true, inputs = true, credit = 1 },
  { id = "UPS_PTP_2ND_DAY_AIR", name = "UPS 2nd Day Air®", carrier = "UPS®", max_oz = 150 * 16,
    base = 24.50, per_lb = 2.10, days = { 2, 2 }, formats = { "ZPL203", "ShippingServiceDefault", "PDF", "PNG" },
    default = "PNG", experiences = { DeliveryConfirmationWithoutSignature = 0, DeliveryConfirmationWithSignature = 4.75,
    DeliveryConfirmationWithAdultSignature = 5.90 }, pickup = true, dim = true, inputs = true, credit = 1 },
  { id = "FEDEX_PTP_HOME_DELIVERY", name = "FedEx Home Delivery®", carrier = "FEDEX", max_oz = 150 * 16,
    base = 10.20, per_lb = 0.95, days = { 2, 5 }, formats = { "PDF", "PNG", "ZPL203", "ZPL300" }, default = "PDF",
    experiences = { DeliveryConfirmationWithoutSignature = 0, DeliveryConfirmationWithSignature = 5.10,
    DeliveryConfirmationWithAdultSignature = 6.35 }, pickup = true, dim = true },
}
local SERVICE_BY_ID = {}
for _, s in ipairs(SERVICES) do SERVICE_BY_ID[s.id] = s end

local TEMPORARILY_UNAVAILABLE = { "DHLECOMMERCE" }
local TERMS_NOT_ACCEPTED = { "YANWEN" }

local EXPERIENCES = { DeliveryConfirmationWithAdultSignature = true, DeliveryConfirmationWithSignature = true,
                      DeliveryConfirmationWithoutSignature = true, NoTracking = true }
local PICKUP_OPTIONS = { CarrierWillPickUp = true, ShipperWillDropOff = true, NoPreference = true }
local LABEL_FORMATS = { PDF = true, PNG = true, ZPL203 = true, ZPL300 = true, ShippingServiceDefault = true }
local FILE_TYPES = { PDF = "application/pdf", PNG = "image/png", ZPL203 = "application/zpl", ZPL300 = "application/zpl" }
-- countries of the Amazon marketplaces (a ship-from CountryCode outside them is invalid)
local COUNTRIES = {}
for c in ("US CA MX BR GB IE DE FR IT ES NL SE PL BE TR AE SA EG IN JP AU SG CN ZA"):gmatch("%u%u") do COUNTRIES[c] = true end
local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

local function round2(x) return floor(x * 100 + 0.5) / 100 end

local function amount(sb, v)
  return { CurrencyCode = "USD", Amount = round2(v) }
end

local function arr(sb, t) return lib.array(sb, t) end

local function invalid_request(sb, msg)
  return sb.err(400, "InvalidRequest", "Request has missing or invalid parameters and cannot be parsed: " .. msg)
end

-- model-constraint violations, worded like the model's examples
local function validation_error(sb, value, where, constraint)
  return sb.err(400, "InvalidInput", format("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s",
    tostring(value), where, constraint))
end

local ADDRESS_LIMITS = { Name = 30, AddressLine1 = 180, AddressLine2 = 60, AddressLine3 = 60, City = 30,
                         StateOrProvinceCode = 30, PostalCode = 30, Phone = 30, CountryCode = 2 }
local ADDRESS_REQUIRED = { "Name", "AddressLine1", "Email", "City", "PostalCode", "CountryCode", "Phone" }

-- syntax of an Address: returns nil or status, body
local function check_address(sb, a, where)
  if type(a) ~= "table" then return invalid_request(sb, where .. " is required") end
  for _, f in ipairs(ADDRESS_REQUIRED) do
    if type(a[f]) ~= "string" then return invalid_request(sb, where .. "." .. f .. " is required") end
  end
  for f, n in pairs(ADDRESS_LIMITS) do
    if a[f] ~= nil and (type(a[f]) ~= "string" or #a[f] > n) then
      local key = f:sub(1, 1):lower() .. f:sub(2)
      return validation_error(sb, a[f], where:gsub("%f[%w]%u", string.lower) .. "." .. key,
        "Member must have length less than or equal to " .. n)
    end
  end
  return nil
end

-- meaning of a ship-from address for an order's marketplace: nil or message
local function ship_from_problem(a, country)
  if a.CountryCode ~= country then
    return "the ship-from country " .. a.CountryCode .. " is not the order's country " .. country
  end
  if country == "US" then
    if not a.PostalCode:match("^%d%d%d%d%d$") and not a.PostalCode:match("^%d%d%d%d%d%-%d%d%d%d$") then
      return "'" .. a.PostalCode .. "' is not a valid US ZIP code"
    end
    if type(a.StateOrProvinceCode) ~= "string" or not a.StateOrProvinceCode:match("^%u%u$") then
      return "a two-letter StateOrProvinceCode is required for US addresses"
    end
  end
  if not a.Email:match("^[^@%s]+@[^@%s]+%.[^@%s]+$") then
    return "'" .. a.Email .. "' is not a valid e-mail address"
  end
  return nil
end

-- Parse and check ShipmentRequestDetails (syntax only).  Returns d (normalised) or nil, status, body.
local function parse_details(sb, d)
  if type(d) ~= "table" then return nil, invalid_request(sb, "ShipmentRequestDetails is required") end
  if type(d.AmazonOrderId) ~= "string" or d.AmazonOrderId == "" then
    return nil, invalid_request(sb, "ShipmentRequestDetails.AmazonOrderId is required")
  end
  if not lib.is_array(d.ItemList) then
    return nil, invalid_request(sb, "ShipmentRequestDetails.ItemList must be a non-empty array")
  end
  for i, it in ipairs(d.ItemList) do
    if type(it) ~= "table" or type(it.OrderItemId) ~= "string" or type(it.Quantity) ~= "number"
      or it.Quantity < 1 or it.Quantity ~= floor(it.Quantity) then
      return nil, invalid_request(sb, format("ShipmentRequestDetails.ItemList[%d] needs OrderItemId and a positive integer Quantity", i - 1))
    end
  end
  local st, body = check_address(sb, d.ShipFromAddress, "ShipmentRequestDetails.ShipFromAddress")
  if st then return nil, st, body end
  local pd = d.PackageDimensions
  if type(pd) ~= "table" then return nil, invalid_request(sb, "ShipmentRequestDetails.PackageDimensions is required") end
  local dims_in
  if pd.PredefinedPackageDimensions ~= nil then
    if type(pd.PredefinedPackageDimensions) ~= "string" then
      return nil, invalid_request(sb, "PackageDimensions.PredefinedPackageDimensions must be a string")
    end
  else
    for _, f in ipairs({ "Length", "Width", "Height" }) do
      if type(pd[f]) ~= "number" or pd[f] <= 0 then
        return nil, invalid_request(sb, "PackageDimensions." .. f .. " must be a positive number (or give PredefinedPackageDimensions)")
      end
    end
    if pd.Unit ~= "inches" and pd.Unit ~= "centimeters" then
      return nil, invalid_request(sb, "PackageDimensions.Unit must be inches or centimeters")
    end
    local k = pd.Unit == "centimeters" and 1 / 2.54 or 1
    dims_in = { pd.Length * k, pd.Width * k, pd.Height * k }
  end
  local w = d.Weight
  if type(w) ~= "table" or type(w.Value) ~= "number" or w.Value <= 0 or (w.Unit ~= "oz" and w.Unit ~= "g") then
    return nil, invalid_request(sb, "ShipmentRequestDetails.Weight needs a positive Value and Unit oz or g")
  end
  local o = d.ShippingServiceOptions
  if type(o) ~= "table" or not EXPERIENCES[o.DeliveryExperience] or type(o.CarrierWillPickUp) ~= "boolean" then
    return nil, invalid_request(sb, "ShipmentRequestDetails.ShippingServiceOptions needs DeliveryExperience "
      .. "(DeliveryConfirmationWithAdultSignature|DeliveryConfirmationWithSignature|DeliveryConfirmationWithoutSignature|NoTracking) and CarrierWillPickUp (boolean)")
  end
  if o.CarrierWillPickUpOption ~= nil and not PICKUP_OPTIONS[o.CarrierWillPickUpOption] then
    return nil, invalid_request(sb, "ShippingServiceOptions.CarrierWillPickUpOption is not valid")
  end
  if o.LabelFormat ~= nil and o.LabelFormat ~= "" and not LABEL_FORMATS[o.LabelFormat] then
    return nil, invalid_request(sb, "ShippingServiceOptions.LabelFormat must be PDF, PNG, ZPL203, ZPL300 or ShippingServiceDefault")
  end
  local ship_date, must_arrive = sb.now(), nil
  if d.ShipDate ~= nil then
    ship_date = type(d.ShipDate) == "string" and sb.parse_iso(d.ShipDate)
    if not ship_date then return nil, invalid_request(sb, "ShipmentRequestDetails.ShipDate must be an ISO-8601 date-time") end
  end
  if d.MustArriveByDate ~= nil then
    must_arrive = type(d.MustArriveByDate) == "string" and sb.parse_iso(d.MustArriveByDate)
    if not must_arrive then return nil, invalid_request(sb, "ShipmentRequestDetails.MustArriveByDate must be an ISO-8601 date-time") end
  end
  local lc = d.LabelCustomization
  if type(lc) == "table" and type(lc.CustomTextForLabel) == "string" and #lc.CustomTextForLabel > 14 then
    return nil, validation_error(sb, lc.CustomTextForLabel, "shipmentRequestDetails.labelCustomization.customTextForLabel",
      "Member must have length less than or equal to 14")
  end
  local oz = w.Unit == "g" and w.Value / 28.349523125 or w.Value
  return {
    raw = d, order_id = d.AmazonOrderId, oz = oz, dims_in = dims_in, options = o,
    ship_date = ship_date, must_arrive = must_arrive,
    fingerprint = format("%s|%.3f|%s", d.AmazonOrderId, oz,
      dims_in and format("%.2fx%.2fx%.2f", dims_in[1], dims_in[2], dims_in[3]) or tostring(pd.PredefinedPackageDimensions)),
  }
end

-- order lookup with the order-level errors; returns order or nil, status, body
local function find_order(sb, req, id)
  local o = orders.find(sb, id, req)
  if not o then
    return nil, sb.err(404, "ResourceNotFound", "The specified AmazonOrderId " .. tostring(id) .. " does not exist.")
  end
  if o.FulfillmentChannel ~= "MFN" then
    return nil, sb.err(404, "ResourceNotFound", "Order " .. id .. " is fulfilled by Amazon, not by the seller.")
  end
  local status = orders.status(o)
  if status == "Canceled" or status == "Pending" or status == "PendingAvailability" or status == "Unfulfillable" then
    return nil, sb.err(404, "InvalidState", "Order " .. id .. " is " .. status .. "; no label can be bought for it.")
  end
  local mp = MARKETPLACES[o.MarketplaceId]
  if not mp or not mp.supported then
    return nil, sb.err(404, "RegionNotSupported", "Order " .. id .. " is from marketplace " .. tostring(o.MarketplaceId)
      .. ", where the Merchant Fulfillment service is not supported.")
  end
  return o
end

local function shipment_status(sb, s)
  if not s.cancelled_at then return "Purchased" end
  if sb.now() < s.cancelled_at + _M.REFUND_DELAY then return "RefundPending" end
  return s.refund_rejected and "RefundRejected" or "RefundApplied"
end

-- quantity of each OrderItemId held by purchased shipments (and one holder id)
local function shipped_items(sb, order)
  local qty, holder = {}, {}
  for _, sid in ipairs(order.shipments or {}) do
    local s = sb.state.get(SHIPMENT, sid)
    local st = s and shipment_status(sb, s)
    if st == "Purchased" or st == "RefundRejected" then
      for _, it in ipairs(s.payload.ItemList) do
        qty[it.OrderItemId] = (qty[it.OrderItemId] or 0) + it.Quantity
        holder[it.OrderItemId] = sid
      end
    end
  end
  return qty, holder
end

-- ItemsNotInOrder check: returns nil or status, body
local function check_items(sb, order, items)
  local by = {}
  for _, it in ipairs(order.items) do by[it.OrderItemId] = it end
  local asked = {}
  for _, it in ipairs(items) do
    local oi = by[it.OrderItemId]
    if not oi then
      return sb.err(404, "ItemsNotInOrder", "Item " .. it.OrderItemId .. " is not part of order " .. order.AmazonOrderId .. ".")
    end
    asked[it.OrderItemId] = (asked[it.OrderItemId] or 0) + it.Quantity
    if asked[it.OrderItemId] > oi.Quantity then
      return sb.err(404, "ItemsNotInOrder", format("Order %s has %d of item %s, %d requested.",
        order.AmazonOrderId, oi.Quantity, it.OrderItemId, asked[it.OrderItemId]))
    end
  end
  return nil
end

local function service_rate(svc, p)
  local lb = p.oz / 16
  if svc.dim and p.dims_in then
    lb = max(lb, p.dims_in[1] * p.dims_in[2] * p.dims_in[3] / 139)
  end
  local rate = svc.base + svc.per_lb * max(1, ceil(lb - 1e-9))
  rate = rate + (svc.experiences[p.options.DeliveryExperience] or 0)
  return round2(rate)
end

-- why svc cannot take this request (nil: it can).  Returns reason code, message.
local function rejection(svc, p)
  if p.oz > svc.max_oz then
    return "WEIGHT_LIMIT_EXCEEDED", format("The package weight exceeds the %s limit of %.2f oz.", svc.name, svc.max_oz)
  end
  return nil
end

local function restriction(svc, p)
  local exp = p.options.DeliveryExperience
  if exp ~= "NoTracking" and not svc.experiences[exp] then
    return svc.name .. " does not offer " .. exp
  end
  if p.options.CarrierWillPickUp and not svc.pickup then
    return svc.name .. " does not offer carrier pick-up"
  end
  if p.must_arrive and p.ship_date + svc.days[2] * 86400 > p.must_arrive then
    return svc.name .. " cannot deliver by " .. p.raw.MustArriveByDate
  end
  return nil
end

local function render_service(sb, svc, p, offer_id, options)
  local rate = service_rate(svc, p)
  local s = {
    ShippingServiceName = svc.name, CarrierName = svc.carrier, ShippingServiceId = svc.id,
    ShippingServiceOfferId = offer_id,
    ShipDate = sb.iso(p.ship_date),
    EarliestEstimatedDeliveryDate = sb.iso(p.ship_date + svc.days[1] * 86400),
    LatestEstimatedDeliveryDate = sb.iso(p.ship_date + svc.days[2] * 86400),
    Rate = amount(sb, rate),
    RateWithAdjustments = amount(sb, rate - (svc.credit or 0)),
    ShippingServiceOptions = options or {
      DeliveryExperience = p.options.DeliveryExperience,
      CarrierWillPickUp = p.options.CarrierWillPickUp,
      LabelFormat = p.options.LabelFormat,
    },
    AvailableLabelFormats = lib.deepcopy(svc.formats),
    RequiresAdditionalSellerInputs = svc.inputs and true or false,
    Benefits = { IncludedBenefits = arr(sb, { "CLAIMS_PROTECTED" }), ExcludedBenefits = arr(sb, {}) },
  }
  local fo = {}
  for i, f in ipairs(svc.formats) do fo[i] = { LabelFormat = f, IncludePackingSlipWithLabel = f == "PDF" } end
  s.AvailableFormatOptionsForLabel = fo
  if svc.credit then
    s.AdjustmentItemList = { { RateItemID = "FBM_SHIP_PLUS_CREDIT", RateItemType = "INCLUDED",
      RateItemCharge = amount(sb, svc.credit), RateItemNameLocalization = "FBM Ship Plus Credit" } }
    s.Benefits.IncludedBenefits = arr(sb, { "CLAIMS_PROTECTED", "FBM_SHIP_PLUS" })
  end
  local pickup = {}
  if svc.pickup then
    pickup[#pickup + 1] = { CarrierWillPickUpOption = "CarrierWillPickUp", Charge = amount(sb, 0) }
  end
  pickup[#pickup + 1] = { CarrierWillPickUpOption = "ShipperWillDropOff", Charge = amount(sb, 0) }
  local exps = {}
  for _, e in ipairs({ "DeliveryConfirmationWithoutSignature", "DeliveryConfirmationWithSignature",
                       "DeliveryConfirmationWithAdultSignature" }) do
    if svc.experiences[e] then exps[#exps + 1] = { DeliveryExperienceOption = e, Charge = amount(sb, svc.experiences[e]) } end
  end
  s.AvailableShippingServiceOptions = { AvailableCarrierWillPickUpOptions = pickup,
                                        AvailableDeliveryExperienceOptions = exps }
  return s, rate
end

local function new_offer_id(sb, key)
  local n = sb.state.incr("mfn_offer_seq", 1)
  return sb.b64(lib.hex("offer:" .. n .. ":" .. key) .. lib.hex(key .. ":" .. n .. ":" .. tostring(sb.now())))
end

local function b64_md5(sb, s)
  if ngx and ngx.md5_bin then return sb.b64(ngx.md5_bin(s)) end
  return sb.b64(lib.hex(s):sub(1, 16))
end

local function label_payload(fmt, lines)
  if fmt == "PDF" then return lib.pdf(lines) end
  if fmt == "ZPL203" or fmt == "ZPL300" then return lib.zpl(lines) end
  return lib.PNG
end

local function view(sb, s)
  local p = lib.deepcopy(s.payload)
  -- arrays that may be empty lose their kind in the JSON state store
  local ben = p.ShippingService.Benefits
  if ben then
    ben.IncludedBenefits = arr(sb, lib.is_array(ben.IncludedBenefits) and ben.IncludedBenefits or {})
    ben.ExcludedBenefits = arr(sb, lib.is_array(ben.ExcludedBenefits) and ben.ExcludedBenefits or {})
  end
  p.Status = shipment_status(sb, s)
  if s.cancelled_at then p.LastUpdatedDate = sb.iso(s.cancelled_at) end
  return p
end

-- Buy the label: store the shipment (state kind "mfn_shipment") and register it
-- with the order.  Returns the stored shipment record.
local function purchase(sb, order, p, svc, fmt, s_body, label_option, id, tracking)
  local carrier = svc.carrier:match("^USPS") and "USPS" or svc.carrier:match("^FEDEX") and "FEDEX" or "UPS"
  tracking = tracking or lib.tracking(sb, carrier)
  local to = order.ShipToAddress
  local lines = { svc.name, "TRACKING " .. tracking, "SHIP TO: " .. to.Name, to.AddressLine1,
                  to.City .. " " .. (to.StateOrProvinceCode or "") .. " " .. to.PostalCode, "ORDER " .. order.AmazonOrderId }
  local lc = p.raw.LabelCustomization
  if type(lc) == "table" and type(lc.CustomTextForLabel) == "string" then lines[#lines + 1] = lc.CustomTextForLabel end
  if type(label_option) == "table" and label_option.IncludePackingSlipWithLabel == true and fmt == "PDF" then
    lines[#lines + 1] = "PACKING SLIP"
    for _, it in ipairs(p.raw.ItemList) do lines[#lines + 1] = it.Quantity .. " x " .. it.OrderItemId end
  end
  local gz = sb.gzip(label_payload(fmt, lines))
  local items = {}
  for i, it in ipairs(p.raw.ItemList) do items[i] = { OrderItemId = it.OrderItemId, Quantity = it.Quantity } end
  local payload = {
    ShipmentId = id, AmazonOrderId = order.AmazonOrderId, SellerOrderId = p.raw.SellerOrderId,
    ItemList = items,
    ShipFromAddress = lib.deepcopy(p.raw.ShipFromAddress),
    ShipToAddress = lib.deepcopy(to),
    PackageDimensions = lib.deepcopy(p.raw.PackageDimensions),
    Weight = lib.deepcopy(p.raw.Weight),
    Insurance = lib.deepcopy(p.options.DeclaredValue) or amount(sb, 0),
    ShippingService = s_body,
    Label = {
      Dimensions = { Length = 6, Width = 4, Unit = "inches" },
      FileContents = { Contents = sb.b64(gz), FileType = FILE_TYPES[fmt], Checksum = b64_md5(sb, gz) },
      LabelFormat = fmt,
      CustomTextForLabel = type(lc) == "table" and lc.CustomTextForLabel or nil,
      StandardIdForLabel = type(lc) == "table" and lc.StandardIdForLabel or nil,
    },
    TrackingId = tracking,
    CreatedDate = sb.iso(sb.now()),
  }
  local sh = { payload = payload, created = sb.now() }
  sb.state.put(SHIPMENT, id, sh)
  order.shipments = order.shipments or {}
  order.shipments[#order.shipments + 1] = id
  local pkg_items = {}
  for i, it in ipairs(items) do pkg_items[i] = { id = it.OrderItemId, qty = it.Quantity } end
  order.packages = order.packages or {}
  order.packages[#order.packages + 1] = { carrier = carrier, carrier_name = svc.carrier, method = svc.name,
    tracking = tracking, ship_date = p.ship_date, items = pkg_items, source = "label", shipment = id }
  orders.save(sb, order)
  sb.state.incr("mfn_labels:" .. order.AmazonOrderId, 1)
  return sh
end

-- one shipping account for the whole sandbox (the control action sets its balance)
local function account(sb)
  local key = "seller"
  local a = sb.state.get(ACCOUNT, key)
  if not a then
    a = { balance = _M.DEFAULT_BALANCE }
    sb.state.put(ACCOUNT, key, a)
  end
  return a, key
end

_M.handlers = {
  getEligibleShipmentServices = function(req, sb)
    local b = req.body
    if type(b) ~= "table" then return invalid_request(sb, "the body must be a GetEligibleShipmentServicesRequest object") end
    local p, st, body = parse_details(sb, b.ShipmentRequestDetails)
    if not p then return st, body end
    local order
    order, st, body = find_order(sb, req, p.order_id)
    if not order then return st, body end
    st, body = check_items(sb, order, p.raw.ItemList)
    if st then return st, body end
    local problem = ship_from_problem(p.raw.ShipFromAddress, MARKETPLACES[order.MarketplaceId].country)
    if problem then return sb.err(400, "InvalidShipFromAddress", "The specified ShipFromAddress is invalid: " .. problem) end

    local filter = type(b.ShippingOfferingFilter) == "table" and b.ShippingOfferingFilter or {}
    local list, rejected = {}, {}
    for _, svc in ipairs(SERVICES) do
      local code, msg = rejection(svc, p)
      if code then
        rejected[#rejected + 1] = { CarrierName = svc.carrier, ShippingServiceName = svc.name,
          ShippingServiceId = svc.id, RejectionReasonCode = code, RejectionReasonMessage = msg }
      elseif not restriction(svc, p)
        and not (filter.CarrierWillPickUp == "CarrierWillPickUp" and not svc.pickup)
        and not (filter.DeliveryExperience and filter.DeliveryExperience ~= "NoPreference"
                 and not svc.experiences[filter.DeliveryExperience]) then
        local offer_id = new_offer_id(sb, svc.id .. p.fingerprint)
        local s, rate = render_service(sb, svc, p, offer_id)
        sb.state.put(OFFER, offer_id, { service = svc.id, order = p.order_id, fingerprint = p.fingerprint,
                                         issued = sb.now(), rate = rate })
        list[#list + 1] = s
      end
    end
    local tu, tc = {}, {}
    for i, c in ipairs(TEMPORARILY_UNAVAILABLE) do tu[i] = { CarrierName = c } end
    for i, c in ipairs(TERMS_NOT_ACCEPTED) do tc[i] = { CarrierName = c } end
    return 200, { payload = {
      ShippingServiceList = arr(sb, list),
      RejectedShippingServiceList = arr(sb, rejected),
      TemporarilyUnavailableCarrierList = tu,
      TermsAndConditionsNotAcceptedCarrierList = tc,
    } }
  end,

  getAdditionalSellerInputs = function(req, sb)
    local b = req.body
    if type(b) ~= "table" then return invalid_request(sb, "the body must be a GetAdditionalSellerInputsRequest object") end
    if type(b.OrderId) ~= "string" then return invalid_request(sb, "OrderId is required") end
    if type(b.ShippingServiceId) ~= "string" then return invalid_request(sb, "ShippingServiceId is required") end
    local from = b.ShipFromAddress
    if type(from) ~= "table" or not COUNTRIES[from.CountryCode] then
      return sb.err(400, "InvalidInput", "Invalid Ship From Address when calling GetAdditionalSellerInputs")
    end
    local order, st, body = find_order(sb, req, b.OrderId)
    if not order then return st, body end
    local svc = SERVICE_BY_ID[b.ShippingServiceId]
    if not svc then
      return sb.err(404, "ShippingServiceNotAvailable", "The shipping service " .. b.ShippingServiceId .. " does not exist.")
    end
    if type(b.ShipFromAddress) ~= "table" or check_address(sb, b.ShipFromAddress, "ShipFromAddress")
      or ship_from_problem(b.ShipFromAddress, MARKETPLACES[order.MarketplaceId].country) then
      return sb.err(400, "InvalidInput", "Invalid Ship From Address when calling GetAdditionalSellerInputs")
    end
    local shipment_fields = {}
    if svc.inputs then
      shipment_fields[1] = {
        AdditionalInputFieldName = "SENDER_ADDRESS_TRANSLATED",
        SellerInputDefinition = {
          IsRequired = false, DataType = "ADDRESS", Constraints = arr(sb, {}),
          InputDisplayText = "Ship From Address (in English)", InputTarget = "SHIPMENT_LEVEL",
          StoredValue = { DataType = "ADDRESS", ValueAsAddress = lib.deepcopy(b.ShipFromAddress) },
        },
      }
    end
    local items = {}
    for _, it in ipairs(order.items) do
      items[#items + 1] = { Asin = it.ASIN, AdditionalInputs = arr(sb, {}) }
    end
    return 200, { payload = { ShipmentLevelFields = arr(sb, shipment_fields), ItemLevelFieldsList = items } }
  end,

  createShipment = lib.locked("mfn", function(req, sb)
    local b = req.body
    if type(b) ~= "table" then return invalid_request(sb, "the body must be a CreateShipmentRequest object") end
    local p, st, body = parse_details(sb, b.ShipmentRequestDetails)
    if not p then return st, body end
    if type(b.ShippingServiceId) ~= "string" or b.ShippingServiceId == "" then
      return invalid_request(sb, "ShippingServiceId is required")
    end
    local order
    order, st, body = find_order(sb, req, p.order_id)
    if not order then return st, body end
    st, body = check_items(sb, order, p.raw.ItemList)
    if st then return st, body end
    -- items already covered by purchased shipments
    local shipped, holder = shipped_items(sb, order)
    local ordered = {}
    for _, it in ipairs(order.items) do ordered[it.OrderItemId] = it.Quantity end
    local asked = {}
    for _, it in ipairs(p.raw.ItemList) do
      asked[it.OrderItemId] = (asked[it.OrderItemId] or 0) + it.Quantity
      if (shipped[it.OrderItemId] or 0) + asked[it.OrderItemId] > ordered[it.OrderItemId] then
        return sb.err(400, "ShipmentAlreadyExists", "Item " .. it.OrderItemId .. " has already shipped in shipment "
          .. tostring(holder[it.OrderItemId]) .. ".")
      end
    end
    -- items shipped without a label (confirmShipment, an order fulfillment feed)
    local list = {}
    for i, it in ipairs(p.raw.ItemList) do list[i] = { id = it.OrderItemId, qty = it.Quantity } end
    local ok, why = orders.can_ship(order, list)
    if not ok then return sb.err(400, "ShipmentAlreadyExists", why) end
    local problem = ship_from_problem(p.raw.ShipFromAddress, MARKETPLACES[order.MarketplaceId].country)
    if problem then return sb.err(400, "InvalidShipFromAddress", "The specified ShipFromAddress is invalid: " .. problem) end
    local svc = SERVICE_BY_ID[b.ShippingServiceId]
    if not svc then
      return sb.err(404, "ShippingServiceNotAvailable", "The shipping service " .. b.ShippingServiceId .. " does not exist.")
    end
    local code, msg = rejection(svc, p)
    if code then
      return sb.err(404, "ShippingServiceNotAvailable", "The shipping service " .. svc.id .. " is not available: " .. msg)
    end
    if b.ShippingServiceOfferId ~= nil then
      local offer = type(b.ShippingServiceOfferId) == "string" and sb.state.get(OFFER, b.ShippingServiceOfferId)
      if not offer or offer.service ~= svc.id or offer.order ~= p.order_id then
        return sb.err(400, "InvalidShippingServiceOfferId", "The specified ShippingServiceOfferId is invalid for "
          .. svc.id .. " and order " .. p.order_id .. ". Use a ShippingServiceOfferId returned by getEligibleShipmentServices.")
      end
      if not offer.static and sb.now() > offer.issued + _M.OFFER_TTL then
        return sb.err(400, "ShippingServiceOfferNotAvailable", "The specified ShippingServiceOfferId has expired. "
          .. "Call getEligibleShipmentServices again to get a new ShippingServiceOfferId.")
      end
      if offer.fingerprint ~= p.fingerprint then
        return sb.err(400, "ShippingServiceOfferNotAvailable", "The shipping rate changed since the ShippingServiceOfferId "
          .. "was issued (weight or dimensions differ). Call getEligibleShipmentServices again.")
      end
    end
    local fmt = p.options.LabelFormat
    if fmt == nil or fmt == "" or fmt == "ShippingServiceDefault" then fmt = svc.default end
    local fmt_ok = false
    for _, f in ipairs(svc.formats) do if f == fmt then fmt_ok = true end end
    if not fmt_ok then
      return sb.err(400, "LabelFormatNotSupported", "The requested LabelFormat " .. fmt .. " is not available for "
        .. svc.id .. "; available: " .. table.concat(svc.formats, ", "))
    end
    local why = restriction(svc, p)
    if why then
      return sb.err(400, "ShipmentRequestDetailsTooRestrictive", "No shipping service offer matches the "
        .. "ShipmentRequestDetails and ShippingServiceId: " .. why .. ".")
    end
    local s_body, rate = render_service(sb, svc, p, b.ShippingServiceOfferId or new_offer_id(sb, svc.id .. p.fingerprint), {
      DeliveryExperience = p.options.DeliveryExperience, CarrierWillPickUp = p.options.CarrierWillPickUp,
      DeclaredValue = p.options.DeclaredValue or amount(sb, 0),
    })
    local acct, acct_key = account(sb)
    local charge = round2(rate - (svc.credit or 0))
    if charge > acct.balance + 1e-9 then
      return sb.err(400, "InsufficientFunds", format("The label purchase (%.2f USD) was rejected because of insufficient "
        .. "funds in the seller's account (balance %.2f USD).", charge, acct.balance))
    end
    acct.balance = round2(acct.balance - charge)
    sb.state.put(ACCOUNT, acct_key, acct)

    local sh = purchase(sb, order, p, svc, fmt, s_body, b.LabelFormatOption, lib.uuid(sb, "mfn"))
    sh.charge, sh.owner = charge, req.selling_partner
    sb.state.put(SHIPMENT, sh.payload.ShipmentId, sh)
    return 200, { payload = view(sb, sh) }
  end),

  getShipment = function(req, sb)
    local id = req.params.shipmentId
    if type(id) ~= "string" or not id:match(UUID) then
      return validation_error(sb, id, "shipmentId", "Member must satisfy regular expression pattern: "
        .. "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
    end
    local s = sb.state.get(SHIPMENT, id)
    if not s or (s.owner ~= nil and s.owner ~= req.selling_partner) then
      return sb.err(404, "ResourceNotFound", "The specified ShipmentId " .. id .. " does not exist.")
    end
    return 200, { payload = view(sb, s) }
  end,

  cancelShipment = lib.locked("mfn", function(req, sb)
    local id = req.params.shipmentId
    if type(id) ~= "string" or not id:match(UUID) then
      return validation_error(sb, id, "shipmentId", "Member must satisfy regular expression pattern: "
        .. "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
    end
    local s = sb.state.get(SHIPMENT, id)
    if not s or (s.owner ~= nil and s.owner ~= req.selling_partner) then
      return sb.err(404, "ResourceNotFound", "The specified ShipmentId " .. id .. " does not exist.")
    end
    local status = shipment_status(sb, s)
    if status ~= "Purchased" then
      return sb.err(404, "InvalidState", "The shipment " .. id .. " is in the " .. status .. " state and cannot be canceled.")
    end
    if sb.now() > s.created + _M.CANCEL_WINDOW then
      return sb.err(400, "LabelCancelWindowExpired", "The cancellation window for requesting a label refund has expired "
        .. "(labels can be canceled within " .. floor(_M.CANCEL_WINDOW / 3600) .. " hours of purchase).")
    end
    s.cancelled_at = sb.now()
    sb.state.put(SHIPMENT, id, s)
    local o = orders.find(sb, s.payload.AmazonOrderId)
    if o then orders.cancel_package(sb, o, id) end
    local acct, key = account(sb)
    acct.balance = round2(acct.balance + (s.charge or 0))
    sb.state.put(ACCOUNT, key, acct)
    return 200, { payload = view(sb, s) }
  end),
}

-- The requests and ids of the model's static sandbox examples, so that calls copied
-- from Amazon's documentation behave as documented: getShipment of abcddcba-...,
-- cancelShipment of be7a0a53-..., createShipment with the example offer id.
local EXAMPLE = {
  order = "903-5563053-5647845",
  offer = "WHgxtyn6qjGGaCzOCog1azF5HLHje5Pz3Lc2Fmt5eKoZAReW8oJ1SMumuBS8lA/Hjuglhyiu0+KRLvyJxFV0PB9YFMDhygs3VyTL0WGYkGxiuRkmuEvpqldUn9rrkWVodqnR4vx2VtXvtER/Ju6RqYoddJZGy6RS2KLzzhQ2NclN0NYXMZVqpOe5RsRBddXaGuJr7oza3M52+JzChocAHzcurIhCRynpbxfmNLzZMQEbgnpGLzuaoSMzfxg90/NaXFR/Ou01du/uKd5AbfMW/AxAKP9ht6Oi9lDHq6WkGqvjkVLW0/jj/fBgblIwcs+t",
  service = "UPS_PTP_2ND_DAY_AIR",
  shipments = { { "abcddcba-00c3-4f6f-a63a-639f76ee9253", "1Z17E2100217295733" },
                { "be7a0a53-00c3-4f6f-a63a-639f76ee9253", "1Z17E2100217295734" } },
}
local function example_details(item)
  return {
    AmazonOrderId = EXAMPLE.order, ItemList = { { OrderItemId = item, Quantity = 1 } },
    ShipFromAddress = { Name = "John Doe", AddressLine1 = "300 Turnbull Ave", Email = "jdoeasdfllkj@yahoo.com",
      City = "Detroit", StateOrProvinceCode = "MI", PostalCode = "48123", CountryCode = "US", Phone = "7132341234" },
    PackageDimensions = { Length = 10.25, Width = 10.25, Height = 10.25, Unit = "inches" },
    Weight = { Value = 10.25, Unit = "oz" },
    ShippingServiceOptions = { DeliveryExperience = "NoTracking", CarrierWillPickUp = false,
                               CarrierWillPickUpOption = "ShipperWillDropOff" },
  }
end

function _M.seed(sb)
  orders.seed(sb)
  local svc = SERVICE_BY_ID[EXAMPLE.service]
  -- the example offer for the order's unshipped item; it does not expire
  local p = assert(parse_details(sb, example_details("52986411826454")))
  sb.state.put(OFFER, EXAMPLE.offer, { service = svc.id, order = EXAMPLE.order, fingerprint = p.fingerprint,
                                       issued = sb.now(), static = true, rate = service_rate(svc, p) })
  -- two purchased shipments, one unit of the other item each
  for _, x in ipairs(EXAMPLE.shipments) do
    p = assert(parse_details(sb, example_details("12958298061782")))
    local order = orders.find(sb, EXAMPLE.order)
    local body = render_service(sb, svc, p, EXAMPLE.offer, { DeliveryExperience = "NoTracking",
      CarrierWillPickUp = false, DeclaredValue = amount(sb, 0) })
    purchase(sb, order, p, svc, "PNG", body, nil, x[1], x[2])
  end
end

-- POST /_sandbox/programs/merchant_fulfillment/account {balance=}  (no balance: just report it)
-- POST /_sandbox/programs/merchant_fulfillment/order {AmazonOrderId=, MarketplaceId=, ShipToAddress=, items=}
-- POST /_sandbox/programs/merchant_fulfillment/labels  → { orders = { [AmazonOrderId] = labels bought } }
-- POST /_sandbox/programs/merchant_fulfillment/reject_refund {ShipmentId=}  (after cancelShipment)
function _M.control(sb, action, args)
  args = type(args) == "table" and args or {}
  if action == "account" then
    local a, key = account(sb)
    if args.balance ~= nil then
      if type(args.balance) ~= "number" then return sb.err(400, "InvalidInput", "balance must be a number") end
      a.balance = round2(args.balance)
      sb.state.put(ACCOUNT, key, a)
    end
    return 200, { balance = a.balance, currency = "USD" }
  elseif action == "reject_refund" then
    -- the carrier refuses the refund of a cancelled label: RefundRejected once processed
    local s = type(args.ShipmentId) == "string" and sb.state.get(SHIPMENT, args.ShipmentId)
    if not s or not s.cancelled_at then
      return sb.err(404, "ResourceNotFound", "reject_refund needs the ShipmentId of a cancelled shipment")
    end
    if not s.refund_rejected then
      s.refund_rejected = true
      sb.state.put(SHIPMENT, args.ShipmentId, s)
      local o = orders.find(sb, s.payload.AmazonOrderId)
      if o then orders.cancel_package(sb, o, args.ShipmentId, true) end
      local a, key = account(sb)
      a.balance = round2(a.balance - (s.charge or 0))
      sb.state.put(ACCOUNT, key, a)
    end
    return 200, { ShipmentId = args.ShipmentId, Status = shipment_status(sb, s) }
  elseif action == "order" then
    -- an order for Merchant Fulfillment: the Orders program's, for this caller
    if args.MarketplaceId ~= nil and not MARKETPLACES[args.MarketplaceId] then
      return sb.err(400, "InvalidInput", "MarketplaceId must be ATVPDKIKX0DER (US) or A2Q3Y263D00KWC (BR, no Merchant Fulfillment)")
    end
    args.owner = args.selling_partner
    local o, msg = orders.create(sb, args)
    if not o then return sb.err(400, "InvalidInput", msg) end
    return 200, o
  elseif action == "labels" then
    -- labels ever bought per order (cancelled ones included): { orders = { [AmazonOrderId] = n } }
    local out = {}
    for _, id in ipairs(sb.state.ids(orders.KIND)) do
      local n = sb.state.incr("mfn_labels:" .. id, 0)
      if n > 0 then out[id] = n end
    end
    return 200, { orders = out }
  end
  return sb.err(404, "NotFound", "Unknown merchant_fulfillment control action " .. tostring(action)
    .. " (known: account, labels, order, reject_refund)")
end

return _M
