-- Sandbox program: Feeds API 2021-06-30 for the MLI feeds.
--
-- Flow: createFeedDocument {contentType} → {feedDocumentId, url}; the client PUTs
-- the content to url (the sandbox's upload URL); createFeed {feedType,
-- marketplaceIds, inputFeedDocumentId} → {feedId}. A feed is IN_QUEUE for
-- queueSeconds (default 10) of sandbox time, IN_PROGRESS for processingSeconds
-- (default 20), then DONE (or FATAL). Progress is computed lazily from the
-- sandbox clock; the first request to any feeds or listings operation after a
-- feed is due applies it, exactly once, in creation order.
--
-- Feed types (others are refused with 400):
-- * JSON_LISTINGS_FEED (listings-feed-schema-v2): UPDATE / PARTIAL_UPDATE / PATCH /
--   DELETE messages go through the listings_items engine (same state, same MLI
--   rules for fulfillment_availability). The result document is a processing
--   report per listings-feed-processing-report-schema-v2 (header, issues,
--   summary, items when header.report.includedData asks for them).
--   Content that is not JSON → FATAL (the report says why); a JSON document
--   without a valid header/messages → DONE with a document-level ERROR issue and
--   no message processed.
-- * POST_ORDER_FULFILLMENT_DATA (XML, OrderFulfillment messages): each valid
--   message records a shipment confirmation (AmazonOrderID or MerchantOrderID,
--   FulfillmentDate, CarrierCode, CarrierName, ShippingMethod,
--   ShipperTrackingNumber, items, ShipFromAddress), visible through the control
--   action "shipments". CarrierCode, ShippingMethod and ShipperTrackingNumber are
--   required to confirm a shipment; CarrierCode "Other" needs CarrierName; an
--   unknown CarrierCode is accepted with a warning; ShipFromSupplySourceId is refused
--   (the MLI guide: not supported, use ShipFromAddress). The result document is the
--   classic XML ProcessingReport (text/xml). Unparsable XML → FATAL.
--
-- Compression of result documents: the report is gzip-compressed (and
-- getFeedDocument answers compressionAlgorithm = "GZIP") when
--   * the control config says compressResults = true (false: never), or, by default,
--   * the input document was uploaded gzip-compressed (gzip magic bytes or a
--     compressed upload) or its contentType names gzip.
--
-- Control: POST /_sandbox/programs/feeds/config {queueSeconds, processingSeconds,
-- compressResults} → the config; POST /_sandbox/programs/feeds/shipments
-- {amazonOrderId?, merchantOrderId?} → { shipments = [...] }.
local _M = {}

local LI = require "spapi.sandbox.programs.listings_items"
local xml = require "spapi.sandbox.xml"

local type, tostring, tonumber, pairs, ipairs, pcall, next = type, tostring, tonumber, pairs, ipairs, pcall, next
local fmt, floor, concat, sort = string.format, math.floor, table.concat, table.sort

local FEED, DOC, TOKEN, SHIP, CONFIG = "feed", "feed_document", "feeds_page", "shipment_confirmation", "feeds_config"

local FEED_TYPES = { JSON_LISTINGS_FEED = true, POST_ORDER_FULFILLMENT_DATA = true }
local STATUSES = { CANCELLED = true, DONE = true, FATAL = true, IN_PROGRESS = true, IN_QUEUE = true }
local DEFAULTS = { queueSeconds = 10, processingSeconds = 20 }

local function bad(sb, message, details)
  return sb.err(400, "InvalidInput", message, details)
end

local function nonempty_string(v)
  return type(v) == "string" and v ~= ""
end

local function config(sb)
  local c = sb.state.get(CONFIG, "config") or {}
  return {
    queueSeconds = tonumber(c.queueSeconds) or DEFAULTS.queueSeconds,
    processingSeconds = tonumber(c.processingSeconds) or DEFAULTS.processingSeconds,
    compressResults = c.compressResults,
  }
end

local function is_gzip(s)
  return type(s) == "string" and s:byte(1) == 31 and s:byte(2) == 139
end

local function gunzip(sb, s)
  if sb.gunzip then
    local ok, out, err = pcall(sb.gunzip, s)
    if ok and out then return out end
    return nil, ok and (err or "gunzip failed") or tostring(out)
  end
  local ok, core = pcall(require, "spapi.core")
  if not ok or type(core) ~= "table" or not core.gunzip then return nil, "gunzip is not available" end
  local ok2, out, err = pcall(core.gunzip, s)
  if not ok2 then return nil, tostring(out) end
  if not out then return nil, err or "gunzip failed" end
  return out
end

-- feed documents ---------------------------------------------------------------------

local function store_result(sb, f, content, content_type, compress)
  -- documents.put gzips the content itself when asked (compressed = "GZIP")
  local id, url = sb.documents.put(content, content_type, { compress = compress or nil })
  sb.state.put(DOC, id, { feedDocumentId = id, url = url, contentType = content_type,
    compressed = compress or false, kind = "result", feedId = f.feedId })
  return id
end

-- the status a feed has now (nil when it is due and not yet processed)
local function status_of(f, now)
  if f.final then return f.final end
  local el = now - f.createdAt
  if el < f.queueSeconds then return "IN_QUEUE" end
  if el < f.queueSeconds + f.processingSeconds then return "IN_PROGRESS" end
  return nil
end

local function view(sb, f, now)
  local st = status_of(f, now) or "IN_PROGRESS" -- due but being processed by another request
  local out = {
    feedId = f.feedId, feedType = f.feedType, marketplaceIds = sb.json.array(f.marketplaceIds or {}),
    createdTime = sb.iso(f.createdAt), processingStatus = st,
  }
  if st ~= "IN_QUEUE" and not (st == "CANCELLED" and not f.startedAt) then
    out.processingStartTime = sb.iso(f.createdAt + f.queueSeconds)
  end
  if f.endTime and (st == "DONE" or st == "FATAL" or st == "CANCELLED") then
    out.processingEndTime = sb.iso(f.endTime)
  end
  if f.resultFeedDocumentId and (st == "DONE" or st == "FATAL") then
    out.resultFeedDocumentId = f.resultFeedDocumentId
  end
  return out
end

-- JSON_LISTINGS_FEED ---------------------------------------------------------------------

local OPERATION_TYPES = { UPDATE = true, PARTIAL_UPDATE = true, PATCH = true, DELETE = true }
local INCLUDED = { summaries = true, attributes = true, issues = true, offers = true,
  fulfillmentAvailability = true, procurement = true, relationships = true, productTypes = true }
-- per operationType: fields that must be present / must be absent
local SHAPE = {
  UPDATE = { need = { "productType", "attributes" }, forbid = { "patches" } },
  PARTIAL_UPDATE = { need = { "productType", "attributes" }, forbid = { "requirements", "patches" } },
  PATCH = { need = { "productType", "patches" }, forbid = { "requirements", "attributes" } },
  DELETE = { need = {}, forbid = { "requirements", "attributes", "productType", "patches" } },
}

local function is_object(sb, v)
  return type(v) == "table" and v ~= sb.json.null
end

local function message_problem(sb, m, seen)
  if not is_object(sb, m) then return "The message must be a JSON object." end
  local id = m.messageId
  if type(id) ~= "number" or id ~= floor(id) or id < 1 or id > 2147483647 then
    return "'messageId' is required and must be an integer from 1 to 2147483647."
  end
  if seen[id] then return fmt("'messageId' %d is used by more than one message.", id) end
  seen[id] = true
  if not nonempty_string(m.sku) then return "'sku' is required and must be a non-empty string." end
  if not OPERATION_TYPES[m.operationType] then
    return "'operationType' must be one of UPDATE, PARTIAL_UPDATE, PATCH, DELETE."
  end
  local shape = SHAPE[m.operationType]
  for _, k in ipairs(shape.need) do
    if m[k] == nil or m[k] == sb.json.null then
      return fmt("'%s' is required for %s messages.", k, m.operationType)
    end
  end
  for _, k in ipairs(shape.forbid) do
    if m[k] ~= nil then return fmt("'%s' is not applicable to %s messages.", k, m.operationType) end
  end
  if m.productType ~= nil and not nonempty_string(m.productType) then return "'productType' must be a non-empty string." end
  if m.attributes ~= nil and (not is_object(sb, m.attributes) or next(m.attributes) == nil or m.attributes[1] ~= nil) then
    return "'attributes' must be an object with at least one attribute."
  end
  if m.patches ~= nil and (not is_object(sb, m.patches) or m.patches[1] == nil) then
    return "'patches' must be a non-empty array."
  end
  if m.requirements ~= nil and m.requirements ~= "LISTING" and m.requirements ~= "LISTING_PRODUCT_ONLY"
    and m.requirements ~= "LISTING_OFFER_ONLY" then
    return "'requirements' must be LISTING, LISTING_PRODUCT_ONLY or LISTING_OFFER_ONLY."
  end
  return nil
end

local function report_issue(messageId, sku, code, severity, message, attributeName)
  return { messageId = messageId, sku = sku, code = code, severity = severity, message = message,
    attributeName = attributeName }
end

local function listings_report(sb, f, text)
  local hdr_out = { sellerId = "", version = "2.0", feedId = f.feedId }
  local issues, items = {}, {}
  local summary = { errors = 0, warnings = 0, messagesProcessed = 0, messagesAccepted = 0, messagesInvalid = 0 }
  local function finish(status)
    for _, i in ipairs(issues) do
      if i.severity == "ERROR" then summary.errors = summary.errors + 1
      elseif i.severity == "WARNING" then summary.warnings = summary.warnings + 1 end
    end
    local report = { header = hdr_out, issues = sb.json.array(issues), summary = summary }
    if hdr_out.report then
      local ie, iw = 0, 0
      for _, it in ipairs(items) do
        for _, i in ipairs(it.issues or {}) do
          if i.severity == "ERROR" then ie = ie + 1 elseif i.severity == "WARNING" then iw = iw + 1 end
        end
      end
      report.items = sb.json.array(items)
      summary.itemSummary = { items = #items, errors = ie, warnings = iw }
    end
    return status, sb.json.encode(report), "application/json; charset=UTF-8"
  end

  local ok, data = pcall(sb.json.decode, text)
  if not ok or type(data) ~= "table" then
    issues[1] = report_issue(nil, nil, "4000001", "ERROR",
      "The feed document is not valid JSON" .. ((ok or data == nil) and "." or (": " .. tostring(data))))
    return finish("FATAL")
  end
  local header, messages = data.header, data.messages
  local problem
  if not is_object(sb, header) then
    problem = "'header' is required and must be an object."
  elseif not nonempty_string(header.sellerId) then
    problem = "'header.sellerId' is required."
  elseif header.version ~= "2.0" then
    problem = "'header.version' must be \"2.0\"."
  elseif not is_object(sb, messages) or messages[1] == nil then
    problem = "'messages' is required and must be a non-empty array."
  elseif #messages > 25000 then
    problem = "A feed holds at most 25000 messages."
  end
  local inc
  if not problem and header.report ~= nil then
    local r = header.report
    if not is_object(sb, r) or r.apiVersion ~= "2021-08-01" or not is_object(sb, r.includedData) or r.includedData[1] == nil then
      problem = "'header.report' needs includedData (non-empty array) and apiVersion \"2021-08-01\"."
    else
      inc = {}
      for _, v in ipairs(r.includedData) do
        if not INCLUDED[v] then problem = "'header.report.includedData' has an unknown value: " .. tostring(v) end
        inc[v] = true
      end
    end
  end
  if is_object(sb, header) and nonempty_string(header.sellerId) then hdr_out.sellerId = header.sellerId end
  if problem then
    issues[1] = report_issue(nil, nil, "4000002", "ERROR", problem)
    return finish("DONE")
  end
  if inc then
    hdr_out.report = { includedData = sb.json.array(header.report.includedData), apiVersion = "2021-08-01" }
  end

  local seller, seen, touched = header.sellerId, {}, {}
  local markets = {}
  for _, m in ipairs(f.marketplaceIds or {}) do markets[m] = true end
  for _, m in ipairs(messages) do
    summary.messagesProcessed = summary.messagesProcessed + 1
    local p = message_problem(sb, m, seen)
    local mid = is_object(sb, m) and type(m.messageId) == "number" and m.messageId or nil
    local msku = is_object(sb, m) and nonempty_string(m.sku) and m.sku or nil
    if p then
      issues[#issues + 1] = report_issue(mid, msku, "4000003", "ERROR", p)
      summary.messagesInvalid = summary.messagesInvalid + 1
    else
      local args = { sellerId = seller, sku = m.sku, productType = m.productType, marketplaceIds = f.marketplaceIds }
      if m.operationType == "UPDATE" then
        args.op, args.attributes, args.requirements = "put", m.attributes, m.requirements
      elseif m.operationType == "DELETE" then
        args.op = "delete"
      elseif m.operationType == "PATCH" then
        args.op, args.patches = "patch", m.patches
      else -- PARTIAL_UPDATE = PATCH with "replace" of every given attribute
        local names = {}
        for k in pairs(m.attributes) do names[#names + 1] = k end
        sort(names)
        local patches = {}
        for _, k in ipairs(names) do
          patches[#patches + 1] = { op = "replace", path = "/attributes/" .. k:gsub("~", "~0"):gsub("/", "~1"),
            value = m.attributes[k] }
        end
        args.op, args.patches = "patch", patches
      end
      local r = LI.submit(sb, args)
      for _, i in ipairs(r.issues) do
        local names = i.attributeNames
        issues[#issues + 1] = report_issue(m.messageId, m.sku, i.code, i.severity, i.message,
          type(names) == "table" and names[1] or nil)
      end
      if r.status == "ACCEPTED" then
        summary.messagesAccepted = summary.messagesAccepted + 1
        if inc and not touched[m.sku] then
          touched[m.sku] = true
          touched[#touched + 1] = m.sku
        end
      else
        summary.messagesInvalid = summary.messagesInvalid + 1
      end
    end
  end
  -- the items as they are after the whole feed was applied (deleted ones are gone)
  for _, sku in ipairs(touched) do
    local doc = LI.get(sb, seller, sku)
    if doc then items[#items + 1] = (LI.view(sb, doc, inc, markets)) end
  end
  return finish("DONE")
end

-- POST_ORDER_FULFILLMENT_DATA -------------------------------------------------------------

-- a subset of amzn-base.xsd's CarrierCode values: the list the feed builder uses
local CARRIERS = {}
for _, c in ipairs(require("spapi.feeds.order_fulfillment").CARRIER_CODES) do
  CARRIERS[c:lower()] = c
end

-- xsd:dateTime → Unix seconds (offsets honoured) or nil
local function parse_datetime(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, sec, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)(.*)$")
  if not y then return nil end
  rest = rest:gsub("^%.%d+", "")
  local off
  if rest == "Z" or rest == "" then off = 0
  else
    local sign, oh, om = rest:match("^([%+%-])(%d%d):(%d%d)$")
    if not sign then return nil end
    off = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1)
  end
  y, mo, d, h, mi, sec = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  if mo < 1 or mo > 12 or d < 1 or d > 31 or h > 23 or mi > 59 or sec > 60 then return nil end
  -- days from civil (Howard Hinnant)
  local yy = mo <= 2 and y - 1 or y
  local era = floor(yy / 400)
  local yoe = yy - era * 400
  local mp = (mo + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + h * 3600 + mi * 60 + sec - off
end
_M._parse_datetime = parse_datetime

local function element_map(node)
  local out = {}
  for _, c in ipairs(node and node.children or {}) do
    if #c.children == 0 then out[c.local_name] = xml.text(c) end
  end
  return out
end

local function order_fulfillment_report(sb, f, text)
  local results, processed, ok_count, err_count, warn_count = {}, 0, 0, 0, 0
  local merchant = ""
  local function result(mid, code, msgcode, desc, extra)
    results[#results + 1] = { mid = mid, code = code, msgcode = msgcode, desc = desc, extra = extra }
  end
  local function finish(status, status_code)
    local out = { '<?xml version="1.0" encoding="UTF-8"?>',
      '<AmazonEnvelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="amzn-envelope.xsd">',
      '<Header><DocumentVersion>1.02</DocumentVersion><MerchantIdentifier>' .. xml.escape(merchant)
        .. '</MerchantIdentifier></Header>',
      '<MessageType>ProcessingReport</MessageType>',
      '<Message><MessageID>1</MessageID><ProcessingReport>',
      '<DocumentTransactionID>' .. xml.escape(f.feedId) .. '</DocumentTransactionID>',
      '<StatusCode>' .. status_code .. '</StatusCode>',
      fmt('<ProcessingSummary><MessagesProcessed>%d</MessagesProcessed><MessagesSuccessful>%d</MessagesSuccessful>'
        .. '<MessagesWithError>%d</MessagesWithError><MessagesWithWarning>%d</MessagesWithWarning></ProcessingSummary>',
        processed, ok_count, err_count, warn_count) }
    for _, r in ipairs(results) do
      local extra = ""
      if r.extra then
        local parts = {}
        for _, k in ipairs({ "AmazonOrderID", "MerchantOrderID" }) do
          if r.extra[k] then parts[#parts + 1] = "<" .. k .. ">" .. xml.escape(r.extra[k]) .. "</" .. k .. ">" end
        end
        if #parts > 0 then extra = "<AdditionalInfo>" .. concat(parts) .. "</AdditionalInfo>" end
      end
      out[#out + 1] = fmt('<Result><MessageID>%s</MessageID><ResultCode>%s</ResultCode><ResultMessageCode>%d</ResultMessageCode>'
        .. '<ResultDescription>%s</ResultDescription>%s</Result>',
        xml.escape(r.mid or 0), r.code, r.msgcode, xml.escape(r.desc), extra)
    end
    out[#out + 1] = '</ProcessingReport></Message></AmazonEnvelope>'
    return status, concat(out, "\n"), "text/xml; charset=UTF-8"
  end

  local root, perr = xml.parse(text)
  if not root then
    result(0, "Error", 5000, "XML parsing error: " .. perr)
    err_count = 1
    return finish("FATAL", "Complete")
  end
  merchant = xml.text(xml.child(root, "Header"), "MerchantIdentifier") or ""
  if root.local_name ~= "AmazonEnvelope" then
    result(0, "Error", 5000, "The root element must be AmazonEnvelope, not " .. root.name .. ".")
    err_count = 1
    return finish("DONE", "Complete")
  end
  local mtype = xml.text(root, "MessageType")
  if mtype ~= "OrderFulfillment" then
    result(0, "Error", 5000, "MessageType must be OrderFulfillment for POST_ORDER_FULFILLMENT_DATA, not "
      .. tostring(mtype) .. ".")
    err_count = 1
    return finish("DONE", "Complete")
  end
  local seen = {}
  for _, msg in ipairs(xml.children(root, "Message")) do
    processed = processed + 1
    local mid = xml.text(msg, "MessageID")
    local of = xml.child(msg, "OrderFulfillment")
    local errors, warnings = {}, {}
    local amazon_id = of and xml.text(of, "AmazonOrderID")
    local merchant_id = of and xml.text(of, "MerchantOrderID")
    local ids = { AmazonOrderID = amazon_id ~= "" and amazon_id or nil, MerchantOrderID = merchant_id ~= "" and merchant_id or nil }
    if not mid or not mid:match("^%d+$") or tonumber(mid) < 1 then
      errors[#errors + 1] = "MessageID is required and must be a positive integer."
    elseif seen[mid] then
      errors[#errors + 1] = "MessageID " .. mid .. " is used by more than one message."
    end
    if mid then seen[mid] = true end
    local fd, fdate, data
    if not of then
      errors[#errors + 1] = "The message has no OrderFulfillment element."
    else
      if (ids.AmazonOrderID ~= nil) == (ids.MerchantOrderID ~= nil) then
        errors[#errors + 1] = "OrderFulfillment needs exactly one of AmazonOrderID and MerchantOrderID."
      end
      fd = xml.text(of, "FulfillmentDate")
      fdate = parse_datetime(fd)
      if not fd or fd == "" then
        errors[#errors + 1] = "FulfillmentDate is required."
      elseif not fdate then
        errors[#errors + 1] = "FulfillmentDate '" .. fd .. "' is not an xsd:dateTime."
      end
      data = element_map(xml.child(of, "FulfillmentData"))
      local cc = data.CarrierCode
      if not cc or cc == "" then
        errors[#errors + 1] = "FulfillmentData/CarrierCode is required to confirm a shipment (use Other with CarrierName for unlisted carriers)."
      elseif cc:lower() == "other" then
        if not data.CarrierName or data.CarrierName == "" then
          errors[#errors + 1] = "CarrierCode Other requires CarrierName."
        end
      elseif not CARRIERS[cc:lower()] then
        warnings[#warnings + 1] = "CarrierCode '" .. cc .. "' is not a known carrier code; Amazon cannot track it. "
          .. "Use CarrierCode Other and give CarrierName."
      end
      if not data.ShippingMethod or data.ShippingMethod == "" then
        errors[#errors + 1] = "FulfillmentData/ShippingMethod is required to confirm a shipment."
      end
      if not data.ShipperTrackingNumber or data.ShipperTrackingNumber == "" then
        errors[#errors + 1] = "FulfillmentData/ShipperTrackingNumber is required to confirm a shipment."
      end
      -- the MLI guide: Amazon does not support ShipFromSupplySourceId; use ShipFromAddress
      if xml.child(of, "ShipFromSupplySourceId") then
        errors[#errors + 1] = "ShipFromSupplySourceId is not supported; give the ship-from location as ShipFromAddress."
      end
      local cod = xml.text(of, "CODCollectionMethod")
      if cod and cod ~= "DirectPayment" then
        errors[#errors + 1] = "CODCollectionMethod must be DirectPayment."
      end
    end
    local items = {}
    for idx, it in ipairs(of and xml.children(of, "Item") or {}) do
      local code, mcode = xml.text(it, "AmazonOrderItemCode"), xml.text(it, "MerchantOrderItemID")
      if (code ~= nil) == (mcode ~= nil) then
        errors[#errors + 1] = fmt("Item %d needs exactly one of AmazonOrderItemCode and MerchantOrderItemID.", idx)
      end
      local q = xml.text(it, "Quantity")
      if q ~= nil and (not q:match("^%d+$") or tonumber(q) < 1) then
        errors[#errors + 1] = fmt("Item %d: Quantity must be a positive integer.", idx)
      end
      local tcodes = {}
      for _, t in ipairs(xml.children(it, "TransparencyCode")) do tcodes[#tcodes + 1] = xml.text(t) end
      if #tcodes > 10 then errors[#errors + 1] = fmt("Item %d: at most 10 TransparencyCode values.", idx) end
      items[#items + 1] = { amazonOrderItemCode = code, merchantOrderItemId = mcode,
        merchantFulfillmentItemId = xml.text(it, "MerchantFulfillmentItemID"),
        quantity = q and tonumber(q) or nil, transparencyCodes = sb.json.array(tcodes) }
    end
    if #errors > 0 then
      err_count = err_count + 1
      for _, e in ipairs(errors) do result(mid, "Error", 5001, e, ids) end
    else
      if #warnings > 0 then warn_count = warn_count + 1 end
      for _, w in ipairs(warnings) do result(mid, "Warning", 5002, w, ids) end
      ok_count = ok_count + 1
      local sfa = xml.child(of, "ShipFromAddress")
      sb.state.put(SHIP, f.feedId .. "-" .. mid, {
        feedId = f.feedId, messageId = tonumber(mid), merchantIdentifier = merchant,
        amazonOrderId = ids.AmazonOrderID, merchantOrderId = ids.MerchantOrderID,
        merchantFulfillmentId = xml.text(of, "MerchantFulfillmentID"),
        fulfillmentDate = sb.iso(fdate), carrierCode = data.CarrierCode, carrierName = data.CarrierName,
        shippingMethod = data.ShippingMethod, shipperTrackingNumber = data.ShipperTrackingNumber,
        codCollectionMethod = xml.text(of, "CODCollectionMethod"),
        items = sb.json.array(items), shipFromAddress = sfa and element_map(sfa) or nil,
        confirmedAt = sb.iso(f.createdAt + f.queueSeconds + f.processingSeconds),
      })
    end
  end
  if processed == 0 then
    result(0, "Error", 5000, "The envelope holds no Message.")
    err_count = err_count + 1
  end
  return finish("DONE", "Complete")
end

-- processing --------------------------------------------------------------------------------

local OPEN = "feeds:open" -- number of feeds not yet DONE/FATAL/CANCELLED

local function finished(sb)
  sb.state.incr(OPEN, -1)
end

local function process(sb, f)
  -- exactly once, whichever worker gets here first
  if sb.state.incr("feed_apply:" .. f.feedId, 1) ~= 1 then return end
  f = sb.state.get(FEED, f.feedId) or f
  if f.final then return end
  local input = sb.documents.get(f.inputFeedDocumentId)
  local meta = sb.state.get(DOC, f.inputFeedDocumentId) or {}
  local content = input and input.content
  local types = tostring(meta.contentType or "") .. " " .. tostring(input and input.uploaded_content_type or "")
  local was_gzip = (input and input.compressed) or is_gzip(content) or types:lower():find("gzip", 1, true) ~= nil
  local status, report, ct
  if is_gzip(content) then
    local plain, err = gunzip(sb, content)
    if not plain then
      content = nil
      report = "the input document could not be decompressed: " .. tostring(err)
    else
      content = plain
    end
  end
  if type(content) ~= "string" or content == "" then
    local why = report or "the input feed document has no content; upload it before createFeed"
    if f.feedType == "JSON_LISTINGS_FEED" then
      status = "FATAL"
      report = sb.json.encode({ header = { sellerId = "", version = "2.0", feedId = f.feedId },
        issues = { { code = "4000001", severity = "ERROR", message = why } },
        summary = { errors = 1, warnings = 0, messagesProcessed = 0, messagesAccepted = 0, messagesInvalid = 0 } })
      ct = "application/json; charset=UTF-8"
    else
      status = "FATAL"
      report = '<?xml version="1.0" encoding="UTF-8"?>\n<AmazonEnvelope><MessageType>ProcessingReport</MessageType>'
        .. '<Message><MessageID>1</MessageID><ProcessingReport><DocumentTransactionID>' .. xml.escape(f.feedId)
        .. '</DocumentTransactionID><StatusCode>Complete</StatusCode><ProcessingSummary><MessagesProcessed>0'
        .. '</MessagesProcessed><MessagesSuccessful>0</MessagesSuccessful><MessagesWithError>1</MessagesWithError>'
        .. '<MessagesWithWarning>0</MessagesWithWarning></ProcessingSummary><Result><MessageID>0</MessageID>'
        .. '<ResultCode>Error</ResultCode><ResultMessageCode>5000</ResultMessageCode><ResultDescription>'
        .. xml.escape(why) .. '</ResultDescription></Result></ProcessingReport></Message></AmazonEnvelope>'
      ct = "text/xml; charset=UTF-8"
    end
  elseif f.feedType == "JSON_LISTINGS_FEED" then
    status, report, ct = listings_report(sb, f, content)
  else
    status, report, ct = order_fulfillment_report(sb, f, content)
  end
  local compress = f.compressResults
  if compress == nil then compress = was_gzip end
  f.resultFeedDocumentId = store_result(sb, f, report, ct, compress and true or false)
  f.final = status
  f.startedAt = f.createdAt + f.queueSeconds
  f.endTime = f.createdAt + f.queueSeconds + f.processingSeconds
  sb.state.put(FEED, f.feedId, f)
  finished(sb)
end

--- Apply every feed that is due, oldest first.
function _M.settle(sb)
  if (sb.state.incr(OPEN, 0) or 0) <= 0 then return end
  local now = sb.now()
  for _, f in ipairs(sb.state.list(FEED) or {}) do
    if not f.final and status_of(f, now) == nil then
      local ok, err = pcall(process, sb, f)
      if not ok then
        -- never leave a feed IN_PROGRESS for ever because of a sandbox bug
        sb.log("sandbox feeds: processing feed ", f.feedId, " failed: ", tostring(err))
        local cur = sb.state.get(FEED, f.feedId) or f
        if not cur.final then
          cur.final = "FATAL"
          cur.startedAt = cur.createdAt + cur.queueSeconds
          cur.endTime = cur.createdAt + cur.queueSeconds + cur.processingSeconds
          sb.state.put(FEED, cur.feedId, cur)
          finished(sb)
        end
      end
    end
  end
end

-- handlers ------------------------------------------------------------------------------------

_M.handlers = {}

function _M.handlers.createFeedDocument(req, sb)
  local b = req.body
  if type(b) ~= "table" or not nonempty_string(b.contentType) then
    return bad(sb, "Invalid input", "contentType is required")
  end
  local id, url = sb.documents.new_upload(b.contentType)
  sb.state.put(DOC, id, { feedDocumentId = id, url = url, contentType = b.contentType, kind = "input" })
  return 201, { feedDocumentId = id, url = url }
end

function _M.handlers.getFeedDocument(req, sb)
  _M.settle(sb)
  local id = req.params and req.params.feedDocumentId
  local meta = nonempty_string(id) and sb.state.get(DOC, id)
  if not meta then return sb.err(404, "NotFound", "Feed document not found", "no feed document with id " .. tostring(id)) end
  local out = { feedDocumentId = meta.feedDocumentId, url = meta.url }
  if meta.compressed then
    out.compressionAlgorithm = "GZIP"
    local q = req.query and req.query.enableContentEncodingUrlHeader
    if q == "true" then
      out.url = meta.url .. (meta.url:find("?", 1, true) and "&" or "?") .. "contentEncoding=gzip"
    end
  end
  return 200, out
end

function _M.handlers.createFeed(req, sb)
  local b = req.body
  if type(b) ~= "table" then return bad(sb, "Invalid input", "a JSON request body is required") end
  if not nonempty_string(b.feedType) then return bad(sb, "Invalid input", "feedType is required") end
  if not FEED_TYPES[b.feedType] then
    return bad(sb, "Invalid input", "feedType " .. b.feedType
      .. " is not supported by the sandbox (JSON_LISTINGS_FEED, POST_ORDER_FULFILLMENT_DATA)")
  end
  local m = b.marketplaceIds
  if type(m) ~= "table" or m[1] == nil or #m > 25 then
    return bad(sb, "Invalid input", "marketplaceIds must hold 1 to 25 marketplace ids")
  end
  for _, v in ipairs(m) do
    if not nonempty_string(v) then return bad(sb, "Invalid input", "marketplaceIds must be strings") end
  end
  if not nonempty_string(b.inputFeedDocumentId) then return bad(sb, "Invalid input", "inputFeedDocumentId is required") end
  local doc = sb.state.get(DOC, b.inputFeedDocumentId)
  if not doc or doc.kind ~= "input" then
    return bad(sb, "Invalid input", "inputFeedDocumentId does not name a document made by createFeedDocument")
  end
  if b.feedOptions ~= nil then
    if type(b.feedOptions) ~= "table" then return bad(sb, "Invalid input", "feedOptions must be an object") end
    for k, v in pairs(b.feedOptions) do
      if type(k) ~= "string" or type(v) ~= "string" then
        return bad(sb, "Invalid input", "feedOptions values must be strings")
      end
    end
  end
  _M.settle(sb)
  local cfg = config(sb)
  local n = tonumber(tostring(sb.state.next_id("feed")):match("(%d+)$")) or 0
  local id = fmt("%d", 50037019000 + n)
  local marketplaces = {}
  for i, v in ipairs(m) do marketplaces[i] = v end
  local compress = nil
  if cfg.compressResults == true or cfg.compressResults == false then compress = cfg.compressResults end
  sb.state.put(FEED, id, {
    feedId = id, feedType = b.feedType, marketplaceIds = marketplaces, inputFeedDocumentId = b.inputFeedDocumentId,
    feedOptions = b.feedOptions, createdAt = sb.now(), queueSeconds = cfg.queueSeconds,
    processingSeconds = cfg.processingSeconds, compressResults = compress, sellingPartner = req.selling_partner,
  })
  sb.state.incr(OPEN, 1)
  return 202, { feedId = id }
end

local function load_feed(sb, req)
  local id = req.params and req.params.feedId
  local f = nonempty_string(id) and sb.state.get(FEED, id)
  if not f then return nil, sb.err(404, "NotFound", "Feed not found", "no feed with id " .. tostring(id)) end
  return f
end

function _M.handlers.getFeed(req, sb)
  _M.settle(sb)
  local f, s, b = load_feed(sb, req)
  if not f then return s, b end
  return 200, view(sb, f, sb.now())
end

function _M.handlers.cancelFeed(req, sb)
  _M.settle(sb)
  local f, s, b = load_feed(sb, req)
  if not f then return s, b end
  local st = status_of(f, sb.now())
  if st ~= "IN_QUEUE" then
    return bad(sb, "Invalid input", "Only feeds with processingStatus IN_QUEUE can be cancelled; this feed is "
      .. tostring(st or "IN_PROGRESS"))
  end
  -- take the apply slot so no other request processes it afterwards
  if sb.state.incr("feed_apply:" .. f.feedId, 1) ~= 1 then
    return bad(sb, "Invalid input", "the feed is already being processed")
  end
  f.final = "CANCELLED"
  f.endTime = sb.now()
  sb.state.put(FEED, f.feedId, f)
  finished(sb)
  return 200, nil
end

local function list_param(req, name)
  return LI.csv(req, name)
end

function _M.handlers.getFeeds(req, sb)
  _M.settle(sb)
  local q = req.query or {}
  local filters, offset
  if nonempty_string(q.nextToken) then
    for _, k in ipairs({ "feedTypes", "marketplaceIds", "processingStatuses", "createdSince", "createdUntil", "pageSize" }) do
      if q[k] ~= nil then
        return bad(sb, "Invalid input", "nextToken must be the only parameter when it is given (found " .. k .. ")")
      end
    end
    local t = sb.state.get(TOKEN, q.nextToken)
    if not t then return bad(sb, "Invalid input", "nextToken is not valid") end
    filters, offset = t.filters, t.offset
  else
    local types = list_param(req, "feedTypes")
    if #types == 0 then return bad(sb, "Invalid input", "Either feedTypes or nextToken is required") end
    if #types > 10 then return bad(sb, "Invalid input", "feedTypes takes at most 10 values") end
    local mks = list_param(req, "marketplaceIds")
    if #mks > 10 then return bad(sb, "Invalid input", "marketplaceIds takes at most 10 values") end
    local sts = list_param(req, "processingStatuses")
    for _, s in ipairs(sts) do
      if not STATUSES[s] then return bad(sb, "Invalid input", "processingStatuses has an unknown value: " .. s) end
    end
    local size = 10
    if q.pageSize ~= nil and q.pageSize ~= "" then
      size = tonumber(q.pageSize)
      if not size or size ~= floor(size) or size < 1 or size > 100 then
        return bad(sb, "Invalid input", "pageSize must be an integer from 1 to 100")
      end
    end
    local now = sb.now()
    local since, untl = now - 90 * 86400, now
    if nonempty_string(q.createdSince) then
      since = sb.parse_iso(q.createdSince)
      if not since then return bad(sb, "Invalid input", "createdSince must be an ISO 8601 date-time") end
    end
    if nonempty_string(q.createdUntil) then
      untl = sb.parse_iso(q.createdUntil)
      if not untl then return bad(sb, "Invalid input", "createdUntil must be an ISO 8601 date-time") end
    end
    if since > untl then return bad(sb, "Invalid input", "createdSince must not be after createdUntil") end
    filters = { feedTypes = types, marketplaceIds = mks, processingStatuses = sts, since = since, untl = untl, size = size }
    offset = 0
  end
  local now = sb.now()
  local function in_list(list, v)
    if #list == 0 then return true end
    for _, x in ipairs(list) do if x == v then return true end end
    return false
  end
  local matches = {}
  for _, f in ipairs(sb.state.list(FEED) or {}) do
    local ok = in_list(filters.feedTypes, f.feedType) and f.createdAt >= filters.since and f.createdAt <= filters.untl
    if ok and #filters.marketplaceIds > 0 then
      ok = false
      for _, m in ipairs(f.marketplaceIds or {}) do
        if in_list(filters.marketplaceIds, m) then ok = true break end
      end
    end
    if ok and #filters.processingStatuses > 0 then
      ok = in_list(filters.processingStatuses, status_of(f, now) or "IN_PROGRESS")
    end
    if ok then matches[#matches + 1] = f end
  end
  sort(matches, function(a, b)
    if a.createdAt ~= b.createdAt then return a.createdAt > b.createdAt end
    return tonumber(a.feedId) > tonumber(b.feedId)
  end)
  local out = {}
  for i = offset + 1, math.min(offset + filters.size, #matches) do out[#out + 1] = view(sb, matches[i], now) end
  local body = { feeds = sb.json.array(out) }
  if offset + filters.size < #matches then
    local tok = tostring(sb.state.next_id("feeds-page-"))
    sb.state.put(TOKEN, tok, { filters = filters, offset = offset + filters.size })
    body.nextToken = tok
  end
  return 200, body
end

-- control -----------------------------------------------------------------------------------

function _M.control(sb, action, args)
  args = type(args) == "table" and args or {}
  if action == "config" then
    local c = sb.state.get(CONFIG, "config") or {}
    for _, k in ipairs({ "queueSeconds", "processingSeconds" }) do
      if args[k] ~= nil then
        if type(args[k]) ~= "number" or args[k] < 0 then
          return sb.err(400, "InvalidInput", k .. " must be a number >= 0")
        end
        c[k] = args[k]
      end
    end
    if args.compressResults ~= nil then
      local v = args.compressResults
      if v ~= true and v ~= false and v ~= "auto" then
        return sb.err(400, "InvalidInput", "compressResults must be true, false or \"auto\"")
      end
      c.compressResults = v
    end
    sb.state.put(CONFIG, "config", c)
    return 200, config(sb)
  elseif action == "shipments" then
    _M.settle(sb)
    local out = {}
    for _, s in ipairs(sb.state.list(SHIP) or {}) do
      if (not args.amazonOrderId or s.amazonOrderId == args.amazonOrderId)
        and (not args.merchantOrderId or s.merchantOrderId == args.merchantOrderId) then
        out[#out + 1] = s
      end
    end
    return 200, { shipments = sb.json.array(out) }
  end
  return sb.err(404, "NotFound", "unknown feeds control action: " .. tostring(action))
end

return _M
