-- Vendor Direct Fulfillment Shipping 2021-12-28: shipping labels (sync and
-- async), shipment confirmations and status updates, customer invoices,
-- packing slips and container labels.
--
-- Rules the sandbox enforces (after the DF workflow guide):
-- * labels only for an acknowledged (ACCEPTED) purchase order; a NEW, SHIPPED
--   or CANCELLED PO is a conflict (409) for createShippingLabels and a failed
--   transaction for submitShippingLabelRequest;
-- * a shipment confirmation needs an ACCEPTED PO and items of that PO; on
--   Success the PO becomes SHIPPED (FLOOR_DENIAL: CANCELLED);
-- * status updates need a PO that has been confirmed as shipped;
-- * customer invoices exist for accepted POs, packing slips for POs whose
--   shipmentDetails.isPslipRequired is true.
local type, ipairs, tostring, tonumber = type, ipairs, tostring, tonumber
local lib = require("spapi.sandbox.programs.vendor_df_transactions").lib
local P = require("spapi.sandbox.programs.vendor_df_orders").po

local _M = {}
local TRACKING = "vdf_tracking"

local SHIP_METHOD_NAMES = {
  UPS_GR_RES = "UPS Ground Residential",
  UPS_NEXT = "UPS Next Day Air",
}

local function not_found(sb, number)
  return sb.err(404, "NotFound", "Purchase order " .. tostring(number) .. " does not exist")
end

-- Validate a label request against the PO.  Returns nil or status, code, message.
local function check_label_request(sb, po, r)
  if not lib.party_id(r.sellingParty) then return 400, "InvalidRequest", "sellingParty.partyId is required" end
  if not lib.party_id(r.shipFromParty) then return 400, "InvalidRequest", "shipFromParty.partyId is required" end
  if r.sellingParty.partyId ~= po.details.sellingParty.partyId then
    return 400, "InvalidRequest", "sellingParty " .. r.sellingParty.partyId .. " does not match purchase order " .. po.purchaseOrderNumber
  end
  if r.shipFromParty.partyId ~= po.details.shipFromParty.partyId then
    return 400, "InvalidRequest", "shipFromParty " .. r.shipFromParty.partyId .. " does not match purchase order " .. po.purchaseOrderNumber
  end
  if r.containers ~= nil and type(r.containers) ~= "table" then
    return 400, "InvalidRequest", "containers must be an array"
  end
  for i, c in ipairs(r.containers or {}) do
    if type(c) ~= "table" or not lib.str(c.containerIdentifier) or (c.containerType ~= "Carton" and c.containerType ~= "Pallet")
      or type(c.weight) ~= "table" or not lib.is_array(c.packedItems) then
      return 400, "InvalidRequest", "containers[" .. (i - 1) .. "] needs containerType (Carton|Pallet), containerIdentifier, weight and packedItems"
    end
  end
  local st = P.status(po, sb.now())
  if st ~= "ACCEPTED" then
    if st == "NEW" then
      return 409, "InvalidState", "Purchase order " .. po.purchaseOrderNumber .. " has not been acknowledged yet"
    end
    return 409, "InvalidState", "Purchase order " .. po.purchaseOrderNumber .. " is " .. st .. "; labels can no longer be created"
  end
  return nil
end

-- Build and store the label of a PO (visible from `at`).
local function make_label(sb, po, r, at)
  local method = po.details.shipmentDetails.shipMethod
  local data = {}
  local containers = (r.containers and #r.containers > 0) and r.containers or { false }
  for i, c in ipairs(containers) do
    local tn = (c and lib.str(c.trackingNumber)) and c.trackingNumber or lib.tracking(sb, "UPS")
    local pkg = c and c.containerIdentifier or string.format("PKG%03d", i)
    local png = lib.PNG
    data[i] = { packageIdentifier = pkg, trackingNumber = tn, shipMethod = method,
                shipMethodName = SHIP_METHOD_NAMES[method] or method, content = sb.b64(png) }
    sb.state.put(TRACKING, tn, { purchaseOrderNumber = po.purchaseOrderNumber, owner = po.owner })
  end
  po.label = {
    created = at,
    value = { purchaseOrderNumber = po.purchaseOrderNumber,
              sellingParty = { partyId = r.sellingParty.partyId },
              shipFromParty = { partyId = r.shipFromParty.partyId },
              labelFormat = "PNG", labelData = data },
  }
  P.save(sb, po)
  return po.label.value
end

local function label_of(sb, po)
  if po.label and po.label.created <= sb.now() then return po.label.value end
  return nil
end

local function pdf_b64(sb, lines) return sb.b64(lib.pdf(lines)) end

local function customer_invoice(sb, po)
  local t = P.status_time(po, "ACCEPTED", sb.now())
  if not t then return nil end
  local d = po.details
  local lines = { "Customer invoice", "Purchase order " .. po.purchaseOrderNumber,
                  "Customer order " .. d.customerOrderNumber, "Ship to: " .. d.shipToParty.name }
  for _, it in ipairs(d.items) do
    lines[#lines + 1] = it.orderedQuantity.amount .. " x " .. (it.title or it.buyerProductIdentifier)
      .. " @ " .. it.netPrice.amount .. " " .. it.netPrice.currencyCode
  end
  return t, { purchaseOrderNumber = po.purchaseOrderNumber, content = pdf_b64(sb, lines) }
end

local function packing_slip(sb, po)
  local d = po.details
  if not d.shipmentDetails.isPslipRequired then return nil end
  local lines = { "Packing slip", "Purchase order " .. po.purchaseOrderNumber, "Ship to: " .. d.shipToParty.name }
  for _, it in ipairs(d.items) do
    lines[#lines + 1] = it.orderedQuantity.amount .. " x " .. (it.title or it.buyerProductIdentifier)
  end
  return po.created, { purchaseOrderNumber = po.purchaseOrderNumber, content = pdf_b64(sb, lines),
                       contentType = "application/pdf" }
end

-- a list operation over POs: producer(po) → t, item or nil
local function list_op(field, producer)
  return function(req, sb)
    local p, st, body = lib.list_params(sb, req, 50)
    if not p then return st, body end
    local rows = {}
    for _, po in ipairs(P.list(sb, req)) do
      if not p.shipFromPartyId or po.details.shipFromParty.partyId == p.shipFromPartyId then
        local t, v = producer(sb, po)
        if t then rows[#rows + 1] = { t = t, v = v } end
      end
    end
    local page, token = lib.paginate(sb, rows, p)
    local out = { [field] = lib.array(sb, page) }
    if token then out.pagination = { nextToken = token } end
    return 200, out
  end
end

local function get_op(what, producer)
  return function(req, sb)
    local number = req.params.purchaseOrderNumber
    local po = P.get(sb, req, number)
    if not po then return not_found(sb, number) end
    local _, v = producer(sb, po)
    if not v then
      return sb.err(404, "NotFound", "No " .. what .. " is available for purchase order " .. number)
    end
    return 200, v
  end
end

local function validate_confirmation(sb, req, c, where, seen)
  local errs = {}
  local function bad(msg) errs[#errs + 1] = { code = "InvalidInput", message = where .. ": " .. msg } end
  if type(c) ~= "table" then bad("must be an object"); return errs end
  if not lib.str(c.purchaseOrderNumber) then bad("purchaseOrderNumber is required") end
  local sd = c.shipmentDetails
  if type(sd) ~= "table" then bad("shipmentDetails is required")
  else
    if not (lib.str(sd.shippedDate) and sb.parse_iso(sd.shippedDate)) then bad("shipmentDetails.shippedDate must be an ISO-8601 date-time") end
    if sd.shipmentStatus ~= "SHIPPED" and sd.shipmentStatus ~= "FLOOR_DENIAL" then
      bad("shipmentDetails.shipmentStatus must be SHIPPED or FLOOR_DENIAL")
    end
  end
  if not lib.party_id(c.sellingParty) then bad("sellingParty.partyId is required") end
  if not lib.party_id(c.shipFromParty) then bad("shipFromParty.partyId is required") end
  if not lib.is_array(c.items) then bad("items is required") end
  if #errs > 0 then return errs end
  local po = P.get(sb, req, c.purchaseOrderNumber)
  if not po then bad("purchase order " .. c.purchaseOrderNumber .. " does not exist"); return errs end
  if seen[po.purchaseOrderNumber] then bad("purchase order " .. po.purchaseOrderNumber .. " is confirmed twice in this request") end
  seen[po.purchaseOrderNumber] = true
  local st = P.status(po, sb.now())
  if po.confirmed or st == "SHIPPED" then bad("purchase order " .. po.purchaseOrderNumber .. " has already been confirmed")
  elseif st == "NEW" then bad("purchase order " .. po.purchaseOrderNumber .. " has not been acknowledged")
  elseif st ~= "ACCEPTED" then bad("purchase order " .. po.purchaseOrderNumber .. " is " .. st) end
  if c.sellingParty.partyId ~= po.details.sellingParty.partyId then bad("sellingParty does not match the purchase order") end
  if c.shipFromParty.partyId ~= po.details.shipFromParty.partyId then bad("shipFromParty does not match the purchase order") end
  local items = P.item_numbers(po)
  for j, it in ipairs(c.items) do
    local w = "items[" .. (j - 1) .. "]"
    local n = type(it) == "table" and tonumber(it.itemSequenceNumber)
    if not n then bad(w .. ".itemSequenceNumber is required")
    elseif not items[n] then bad(w .. ": item " .. tostring(it.itemSequenceNumber) .. " is not part of the purchase order")
    elseif type(it.shippedQuantity) ~= "table" or type(it.shippedQuantity.amount) ~= "number" then
      bad(w .. ".shippedQuantity.amount is required")
    elseif it.shippedQuantity.amount > items[n].orderedQuantity.amount then
      bad(w .. ": shippedQuantity exceeds the ordered quantity")
    end
  end
  return errs, po, sd.shipmentStatus == "SHIPPED" and "SHIPPED" or "CANCELLED"
end

local function validate_status_update(sb, req, u, where)
  local errs = {}
  local function bad(msg) errs[#errs + 1] = { code = "InvalidInput", message = where .. ": " .. msg } end
  if type(u) ~= "table" then bad("must be an object"); return errs end
  if not lib.str(u.purchaseOrderNumber) then bad("purchaseOrderNumber is required") end
  if not lib.party_id(u.sellingParty) then bad("sellingParty.partyId is required") end
  if not lib.party_id(u.shipFromParty) then bad("shipFromParty.partyId is required") end
  local d = u.statusUpdateDetails
  if type(d) ~= "table" then bad("statusUpdateDetails is required")
  else
    for _, f in ipairs({ "trackingNumber", "statusCode", "reasonCode" }) do
      if not lib.str(d[f]) then bad("statusUpdateDetails." .. f .. " is required") end
    end
    if not (lib.str(d.statusDateTime) and sb.parse_iso(d.statusDateTime)) then
      bad("statusUpdateDetails.statusDateTime must be an ISO-8601 date-time")
    end
    if type(d.statusLocationAddress) ~= "table" then bad("statusUpdateDetails.statusLocationAddress is required") end
  end
  if #errs > 0 then return errs end
  local po = P.get(sb, req, u.purchaseOrderNumber)
  if not po then bad("purchase order " .. u.purchaseOrderNumber .. " does not exist"); return errs end
  if P.status(po, sb.now()) ~= "SHIPPED" then
    bad("purchase order " .. u.purchaseOrderNumber .. " has not been confirmed as shipped")
  end
  local trk = sb.state.get(TRACKING, d.trackingNumber)
  if not trk or trk.purchaseOrderNumber ~= po.purchaseOrderNumber then
    bad("tracking number " .. d.trackingNumber .. " does not belong to purchase order " .. po.purchaseOrderNumber)
  end
  return errs, po
end

_M.handlers = {
  createShippingLabels = lib.locked("vdf", function(req, sb)
    local number = req.params.purchaseOrderNumber
    local po = P.get(sb, req, number)
    if not po then return not_found(sb, number) end
    if type(req.body) ~= "table" then
      return sb.err(400, "InvalidRequest", "The request body must be a CreateShippingLabelsRequest object")
    end
    lib.count("vdf.label_requests", { po.purchaseOrderNumber })
    local st, code, msg = check_label_request(sb, po, req.body)
    if st then return sb.err(st, code, msg) end
    lib.count("vdf.labelled", { po.purchaseOrderNumber })
    return 200, make_label(sb, po, req.body, sb.now())
  end),

  submitShippingLabelRequest = lib.locked("vdf", function(req, sb)
    local b = req.body
    if type(b) ~= "table" or not lib.is_array(b.shippingLabelRequests) then
      return sb.err(400, "InvalidRequest", "The request body must contain a non-empty shippingLabelRequests array")
    end
    local errors, ok, named = {}, {}, {}
    for i, r in ipairs(b.shippingLabelRequests) do
      if type(r) == "table" then named[#named + 1] = r.purchaseOrderNumber end
      local where = "shippingLabelRequests[" .. (i - 1) .. "]: "
      local po = type(r) == "table" and P.get(sb, req, r.purchaseOrderNumber)
      if not po then
        errors[#errors + 1] = { code = "InvalidInput", message = where .. "purchase order "
          .. tostring(type(r) == "table" and r.purchaseOrderNumber) .. " does not exist" }
      else
        local st, _, msg = check_label_request(sb, po, r)
        if st then errors[#errors + 1] = { code = "InvalidInput", message = where .. msg }
        else ok[#ok + 1] = { po = po, r = r } end
      end
    end
    local id, ready = lib.new_transaction(sb, req, "submitShippingLabelRequest", errors)
    lib.count("vdf.label_requests", named)
    if #errors == 0 then
      lib.count("vdf.labelled", named)
      for _, x in ipairs(ok) do make_label(sb, x.po, x.r, ready) end
    end
    return 202, { transactionId = id }
  end),

  getShippingLabels = list_op("shippingLabels", function(sb, po)
    local l = label_of(sb, po)
    if l then return po.label.created, l end
    return nil
  end),

  getShippingLabel = get_op("shipping label", function(sb, po)
    local l = label_of(sb, po)
    if l then return po.label.created, l end
    return nil
  end),

  submitShipmentConfirmations = lib.locked("vdf", function(req, sb)
    local b = req.body
    if type(b) ~= "table" or not lib.is_array(b.shipmentConfirmations) then
      return sb.err(400, "InvalidRequest", "The request body must contain a non-empty shipmentConfirmations array")
    end
    local errors, ok, seen, named = {}, {}, {}, {}
    for i, c in ipairs(b.shipmentConfirmations) do
      if type(c) == "table" then named[#named + 1] = c.purchaseOrderNumber end
      local errs, po, result = validate_confirmation(sb, req, c, "shipmentConfirmations[" .. (i - 1) .. "]", seen)
      for _, e in ipairs(errs) do errors[#errors + 1] = e end
      if #errs == 0 then ok[#ok + 1] = { po = po, result = result } end
    end
    local id, ready = lib.new_transaction(sb, req, "submitShipmentConfirmations", errors)
    lib.count("vdf.confirmations", named)
    if #errors == 0 then
      lib.count("vdf.confirmed", named)
      for _, x in ipairs(ok) do
        x.po.confirmed = true
        P.transition(x.po, ready, x.result)
        P.save(sb, x.po)
      end
    end
    return 202, { transactionId = id }
  end),

  submitShipmentStatusUpdates = lib.locked("vdf", function(req, sb)
    local b = req.body
    if type(b) ~= "table" or not lib.is_array(b.shipmentStatusUpdates) then
      return sb.err(400, "InvalidRequest", "The request body must contain a non-empty shipmentStatusUpdates array")
    end
    local errors, ok = {}, {}
    for i, u in ipairs(b.shipmentStatusUpdates) do
      local errs, po = validate_status_update(sb, req, u, "shipmentStatusUpdates[" .. (i - 1) .. "]")
      for _, e in ipairs(errs) do errors[#errors + 1] = e end
      if #errs == 0 then ok[#ok + 1] = { po = po, u = u } end
    end
    local id = lib.new_transaction(sb, req, "submitShipmentStatusUpdates", errors)
    if #errors == 0 then
      for _, x in ipairs(ok) do
        x.po.statusUpdates = x.po.statusUpdates or {}
        x.po.statusUpdates[#x.po.statusUpdates + 1] = x.u.statusUpdateDetails
        P.save(sb, x.po)
      end
    end
    return 202, { transactionId = id }
  end),

  getCustomerInvoices = list_op("customerInvoices", customer_invoice),
  getCustomerInvoice = get_op("customer invoice", customer_invoice),
  getPackingSlips = list_op("packingSlips", packing_slip),
  getPackingSlip = get_op("packing slip", packing_slip),

  createContainerLabel = function(req, sb)
    local b = req.body
    if type(b) ~= "table" then
      return sb.err(400, "InvalidRequest", "The request body must be a CreateContainerLabelRequest object")
    end
    if not lib.party_id(b.sellingParty) then return sb.err(400, "InvalidRequest", "sellingParty.partyId is required") end
    if not lib.party_id(b.shipFromParty) then return sb.err(400, "InvalidRequest", "shipFromParty.partyId is required") end
    if b.carrierId ~= "SWA" then
      return sb.err(400, "InvalidRequest", "carrierId must be SWA, got " .. tostring(b.carrierId))
    end
    if not lib.str(b.vendorContainerId) then return sb.err(400, "InvalidRequest", "vendorContainerId is required") end
    if not lib.is_array(b.packages) then return sb.err(400, "InvalidRequest", "packages must be a non-empty array") end
    local lines = { "Container " .. b.vendorContainerId, "Carrier SWA", "Ship from " .. b.shipFromParty.partyId }
    for i, pk in ipairs(b.packages) do
      local tn = type(pk) == "table" and pk.packageTrackingNumber
      local trk = lib.str(tn) and sb.state.get(TRACKING, tn)
      if not trk or (trk.owner ~= nil and trk.owner ~= req.selling_partner) then
        return sb.err(400, "InvalidRequest", "packages[" .. (i - 1) .. "].packageTrackingNumber "
          .. tostring(tn) .. " is not a tracking number of a shipping label of this vendor")
      end
      lines[#lines + 1] = "Package " .. tn
    end
    local n = sb.state.incr("vdf_container_seq", 1)
    local ctn = string.format("TBA%012d", 134335066000 + n)
    lines[#lines + 1] = "Container tracking " .. ctn
    return 200, { containerLabel = { containerTrackingNumber = ctn, format = "PNG", content = sb.b64(lib.PNG) } }
  end,
}

return _M
