-- JSON_LISTINGS_FEED documents: build one for many SKUs, check it against Amazon's
-- listings feed schema (generated into spapi.schemas.listings_feed), encode it, and
-- decode the processing report into issues per SKU.
--
--   local listings = require "spapi.feeds.listings"
--   local feed = listings.new{ seller_id = "A1SELLER", report = { "fulfillmentAvailability", "issues" } }
--   feed:quantities("SKU-1", { ["store-seattle"] = 10, ["store-tacoma"] = 5 })   -- DEFAULT 0 added
--   feed:patch("SKU-2", "PRODUCT", { { op = "replace", path = "/attributes/item_name", value = {...} } })
--   local text = assert(feed:encode())         -- nil, err when the schema check fails
--   ...upload, createFeed, wait, download the report...
--   local report = assert(listings.decode_report(report_text))
--   for sku, r in pairs(report.skus) do print(sku, r.status, #r.issues) end
local _M = {}

local json = require "spapi.json"
local errors = require "spapi.errors"
local schema = require "spapi.feeds.schema"
local feed_schema = require "spapi.schemas.listings_feed"

local type, pairs, ipairs, tostring, error, setmetatable = type, pairs, ipairs, tostring, error, setmetatable
local fmt, sort, concat = string.format, table.sort, table.concat

_M.FEED_TYPE = "JSON_LISTINGS_FEED"
_M.CONTENT_TYPE = "application/json; charset=UTF-8"
local FA_PATH = "/attributes/fulfillment_availability"

local Feed = {}
Feed.__index = Feed

local function raise(what, msg) error("spapi.feeds.listings: " .. what .. ": " .. msg, 3) end

--- A new feed. opts: seller_id (required), issue_locale, report = list of
--- includedData names (the processing report then lists the items as they are after the feed).
function _M.new(opts)
  if type(opts) ~= "table" or type(opts.seller_id) ~= "string" or opts.seller_id == "" then
    raise("new", "seller_id is required")
  end
  local header = { sellerId = opts.seller_id, version = "2.0", issueLocale = opts.issue_locale }
  if opts.report then
    header.report = { includedData = json.array(opts.report), apiVersion = "2021-08-01" }
  end
  return setmetatable({ header = header, messages = {} }, Feed)
end

function Feed:count() return #self.messages end

local function add(self, msg)
  msg.messageId = #self.messages + 1
  self.messages[#self.messages + 1] = msg
  return msg.messageId
end

--- A PATCH message. → messageId
function Feed:patch(sku, product_type, patches)
  if type(sku) ~= "string" or sku == "" then raise("patch", "sku must be a non-empty string") end
  if type(patches) ~= "table" or #patches == 0 then raise("patch", "patches must list at least one patch") end
  return add(self, { sku = sku, operationType = "PATCH", productType = product_type, patches = patches })
end

--- An UPDATE (all attributes) or PARTIAL_UPDATE (only those given) message. → messageId
function Feed:update(sku, product_type, attributes, partial, requirements)
  if type(sku) ~= "string" or sku == "" then raise("update", "sku must be a non-empty string") end
  return add(self, { sku = sku, operationType = partial and "PARTIAL_UPDATE" or "UPDATE", productType = product_type,
    attributes = attributes, requirements = not partial and requirements or nil })
end

--- A DELETE message. → messageId
function Feed:delete(sku)
  if type(sku) ~= "string" or sku == "" then raise("delete", "sku must be a non-empty string") end
  return add(self, { sku = sku, operationType = "DELETE" })
end

--- The fulfillment_availability value for per-location quantities
--- ({ [supply source id, code or alias] = quantity }), sorted by channel code, with
--- the MLI guide's DEFAULT channel rule: DEFAULT is set to 0 when it is not given
--- (default_rule = "enforce", the default), or kept as given and a warning returned
--- ("warn"). → value, warning | nil
function _M.availability(quantities, default_rule)
  if type(quantities) ~= "table" then error("spapi.feeds.listings: quantities must be a table", 2) end
  default_rule = default_rule or "enforce"
  if default_rule ~= "enforce" and default_rule ~= "warn" then
    error("spapi.feeds.listings: default_rule must be \"enforce\" or \"warn\"", 2)
  end
  local codes, has_location = {}, false
  for code, q in pairs(quantities) do
    if type(code) ~= "string" or code == "" then error("spapi.feeds.listings: quantities keys must be channel codes", 2) end
    if type(q) ~= "number" or q < 0 or q ~= math.floor(q) then
      error(fmt("spapi.feeds.listings: quantity of %s must be a whole number from 0", code), 2)
    end
    codes[#codes + 1] = code
    if code ~= "DEFAULT" then has_location = true end
  end
  sort(codes)
  local value, warning = {}, nil
  for _, code in ipairs(codes) do
    value[#value + 1] = { fulfillment_channel_code = code, quantity = quantities[code] }
  end
  if has_location then
    local d = quantities.DEFAULT
    if d == nil or (d > 0 and default_rule == "enforce") then
      if d ~= nil then
        for _, e in ipairs(value) do if e.fulfillment_channel_code == "DEFAULT" then e.quantity = 0 end end
      else
        value[#value + 1] = { fulfillment_channel_code = "DEFAULT", quantity = 0 }
      end
    elseif d > 0 then
      warning = fmt("DEFAULT is %d while quantities are given per location: the listing gets an MLI and a "
        .. "non-MLI offer (the MLI guide says to set DEFAULT to 0)", d)
    end
  end
  return value, warning
end

--- Per-location quantities of one SKU as a PATCH (replace) of fulfillment_availability,
--- productType PRODUCT as the MLI guide asks. opts.default_rule: see availability().
--- → messageId, warning | nil
function Feed:quantities(sku, quantities, opts)
  opts = opts or {}
  local value, warning = _M.availability(quantities, opts.default_rule)
  local id = self:patch(sku, opts.product_type or "PRODUCT", { { op = "replace", path = FA_PATH, value = value } })
  return id, warning
end

--- The feed as a table (what encode() sends).
function Feed:document()
  local msgs = {}
  for i, m in ipairs(self.messages) do msgs[i] = m end
  return { header = self.header, messages = json.array(msgs) }
end

--- Check the feed against the listings feed schema. → true | false, problems
function Feed:check()
  return schema.check(feed_schema, self:document())
end

--- The JSON text to upload, after the schema check.
--- → text | nil, err (code "InvalidFeed", err.problems = the list)
function Feed:encode()
  local ok, problems = self:check()
  if not ok then
    return nil, errors.new{ kind = "feed", code = "InvalidFeed", operation = "feeds.listings",
      message = "the feed does not follow the listings feed schema: " .. concat(problems, "; ", 1, math.min(#problems, 5))
        .. (#problems > 5 and fmt(" (and %d more)", #problems - 5) or ""),
      problems = problems }
  end
  return json.encode(self:document())
end

--- Decode a processing report (listings-feed-processing-report v2) into
--- { summary, skus = { [sku] = { status = "ACCEPTED"|"INVALID", issues = {...}, item } },
---   document_issues = {...}, errors = n, warnings = n }.
--- messages: the feed's messages (feed.messages), to name the SKU of issues that
--- give only a messageId and to mark messages without errors ACCEPTED.
function _M.decode_report(text, messages)
  local doc, err = json.decode(text)
  if type(doc) ~= "table" then
    return nil, errors.new{ kind = "decode", code = "BadReport", operation = "feeds.listings",
      message = "the processing report is not JSON: " .. tostring(err) }
  end
  local by_id = {}
  for _, m in ipairs(messages or {}) do by_id[m.messageId] = m.sku end
  local out = { summary = doc.summary or {}, skus = {}, document_issues = {}, errors = 0, warnings = 0 }
  local function entry(sku)
    local e = out.skus[sku]
    if not e then
      e = { status = "ACCEPTED", issues = {} }
      out.skus[sku] = e
    end
    return e
  end
  for _, m in ipairs(messages or {}) do entry(m.sku) end
  for _, i in ipairs(doc.issues or {}) do
    local sku = i.sku or (i.messageId and by_id[i.messageId])
    local issue = { code = i.code, severity = i.severity, message = i.message, attribute = i.attributeName,
      message_id = i.messageId }
    if i.severity == "ERROR" then out.errors = out.errors + 1 elseif i.severity == "WARNING" then out.warnings = out.warnings + 1 end
    if sku then
      local e = entry(sku)
      e.issues[#e.issues + 1] = issue
      if i.severity == "ERROR" then e.status = "INVALID" end
    else
      out.document_issues[#out.document_issues + 1] = issue
    end
  end
  for _, item in ipairs(doc.items or {}) do
    if item.sku then entry(item.sku).item = item end
  end
  return out
end

return _M
