-- Sandbox program: Listings Items API 2021-08-01, with the Multi-Location
-- Inventory (MLI) rules for the fulfillment_availability attribute.
--
-- State: kind "listing", id = sellerId .. "/" .. sku; doc = { sellerId, sku,
-- productType, requirements, attributes, marketplaceIds, asin, createdAt,
-- updatedAt (sandbox seconds) }. The feeds program applies JSON_LISTINGS_FEED
-- messages through _M.submit, so both APIs change the same listings.
--
-- fulfillment_availability: an array of { fulfillment_channel_code, quantity }.
-- A channel code is "DEFAULT", an FBA channel ("AMAZON_NA", ...) or a supply
-- source given by its supplySourceId, supplySourceCode or alias. Patches
-- (add / replace / merge / delete on /attributes/fulfillment_availability)
-- work per channel: replacing the entry of one location leaves the other
-- entries alone, delete with a value removes the named channels.
-- Rules (from the MLI integration guide), checked on every submission:
--   ERROR   MLI_UNKNOWN_SUPPLY_SOURCE   the code names no supply source of the seller
--   ERROR   MLI_SUPPLY_SOURCE_ARCHIVED  the supply source is archived
--   ERROR   MLI_SUPPLY_SOURCE_INACTIVE  a quantity > 0 on an Inactive supply source
--                                       (activate it first; 0 is allowed to clear stock)
--   ERROR   MLI_FBA_NOT_SUPPORTED       location quantities and FBA (AMAZON_*) channels
--                                       on one listing: MLI is not available for FBA inventory
--   ERROR   90220 / 90000900            missing fulfillment_channel_code / bad quantity,
--                                       duplicate channel, malformed patch
--   ERROR   MLI_PRODUCT_TYPE            a patch of location quantities whose productType is not
--                                       PRODUCT (the guide: always PRODUCT for these patches;
--                                       the listing keeps its own product type)
--   WARNING MLI_DEFAULT_NOT_ZERO        location quantities while DEFAULT > 0: the seller
--                                       gets an MLI and a non-MLI offer; set DEFAULT to 0
-- Any ERROR makes the submission INVALID and nothing is changed.
-- Reading (includedData=fulfillmentAvailability): with location quantities and
-- DEFAULT 0 (or absent) the DEFAULT entry reports the consolidated quantity, the
-- sum over Active locations, followed by one entry per location (in the order
-- they were first given); Inactive locations are listed but not counted,
-- archived ones are left out. issues (includedData=issues) shows the warnings
-- that apply now.
local _M = {}

local SS = require "spapi.sandbox.programs.supply_sources"

local type, tostring, tonumber, pairs, ipairs, next = type, tostring, tonumber, pairs, ipairs, next
local fmt, floor, concat, sort = string.format, math.floor, table.concat, table.sort

local KIND = "listing"
_M.KIND = KIND
local FA = "fulfillment_availability"

local INCLUDED_GET = { summaries = true, attributes = true, issues = true, offers = true,
  fulfillmentAvailability = true, procurement = true, relationships = true, productTypes = true }
local INCLUDED_SUBMIT = { identifiers = true, issues = true }
local REQUIREMENTS = { LISTING = true, LISTING_PRODUCT_ONLY = true, LISTING_OFFER_ONLY = true }
local PATCH_OPS = { add = true, replace = true, merge = true, delete = true }

_M.ISSUE = {
  MISSING = "90220",
  INVALID = "90000900",
  NOT_FOUND = "LISTING_NOT_FOUND",
  UNKNOWN_SUPPLY_SOURCE = "MLI_UNKNOWN_SUPPLY_SOURCE",
  SUPPLY_SOURCE_ARCHIVED = "MLI_SUPPLY_SOURCE_ARCHIVED",
  SUPPLY_SOURCE_INACTIVE = "MLI_SUPPLY_SOURCE_INACTIVE",
  FBA_NOT_SUPPORTED = "MLI_FBA_NOT_SUPPORTED",
  DEFAULT_NOT_ZERO = "MLI_DEFAULT_NOT_ZERO",
  PRODUCT_TYPE = "MLI_PRODUCT_TYPE",
}
local ISSUE = _M.ISSUE

-- helpers ------------------------------------------------------------------

local function is_null(sb, v)
  return v == nil or (sb.json ~= nil and v == sb.json.null)
end

local function bad(sb, message, details)
  return sb.err(400, "InvalidInput", message, details)
end

local function nonempty_string(v)
  return type(v) == "string" and v ~= ""
end

local function is_array(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for k in pairs(t) do
    if type(k) ~= "number" then return false end
    n = n + 1
  end
  for i = 1, n do if t[i] == nil then return false end end
  return true
end

local function deep_copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = deep_copy(x) end
  return setmetatable(out, getmetatable(v))
end

local function is_count(q)
  return type(q) == "number" and q >= 0 and q == floor(q) and q < 2 ^ 31
end

-- csv query values: every value of the parameter, split on commas, trimmed
local function csv(req, name)
  local vals = req.query_all and req.query_all[name]
  if vals == nil then
    local v = req.query and req.query[name]
    vals = v ~= nil and { v } or {}
  elseif type(vals) ~= "table" then
    vals = { vals }
  end
  local out = {}
  for _, v in ipairs(vals) do
    for part in tostring(v):gmatch("[^,]+") do
      part = part:match("^%s*(.-)%s*$")
      if part ~= "" then out[#out + 1] = part end
    end
  end
  return out
end
_M.csv = csv

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local function included(sb, req, allowed, default)
  local list = csv(req, "includedData")
  if #list == 0 then list = default end
  for _, v in ipairs(list) do
    if not allowed[v] then
      return nil, bad(sb, "Invalid includedData value: " .. v)
    end
  end
  return set_of(list)
end

-- a UUID-shaped deterministic id for submissions
local function submission_id(sb)
  local raw = sb.state.next_id("sub")
  local n = tonumber(tostring(raw):match("(%d+)$")) or 0
  local h = (n * 2246822519 + 3266489917) % 4294967296
  local h2 = (h * 668265263 + n) % 4294967296
  return fmt("%08x-%04x-11ee-%04x-%012x", h, floor(h2 / 65536), 0x8000 + h2 % 0x4000, n)
end

-- a stable pseudo-ASIN for a (seller, sku)
local function asin_for(seller, sku)
  local h = 5381
  local s = seller .. "/" .. sku
  for i = 1, #s do h = (h * 33 + s:byte(i)) % 2821109907456 end -- 36^8
  local digits, out = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", {}
  for _ = 1, 8 do
    local d = h % 36
    out[#out + 1] = digits:sub(d + 1, d + 1)
    h = floor(h / 36)
  end
  return "B0" .. concat(out)
end

local function issue(sb, code, message, severity, attribute, category)
  return {
    code = code, message = message, severity = severity,
    attributeNames = sb.json.array(attribute and { attribute } or {}),
    categories = sb.json.array(category and { category } or {}),
  }
end

local function has_error(issues)
  for _, i in ipairs(issues) do
    if i.severity == "ERROR" then return true end
  end
  return false
end

local function key(sellerId, sku) return sellerId .. "/" .. sku end

function _M.get(sb, sellerId, sku)
  return sb.state.get(KIND, key(sellerId, sku))
end

local function settle_feeds(sb)
  -- feeds that reached DONE are applied before anyone reads listings
  local ok, feeds = pcall(require, "spapi.sandbox.programs.feeds")
  if ok and type(feeds) == "table" and feeds.settle then feeds.settle(sb) end
end

-- fulfillment channels ---------------------------------------------------------

-- classify a channel code: kind ("default" | "fba" | "location" | "unknown"),
-- a key that identifies the channel whatever name was used, the supply source
local function channel(sb, code)
  if code == "DEFAULT" then return "default", "DEFAULT" end
  if code:match("^AMAZON_%u+$") then return "fba", code end
  local ss = SS.resolve(sb, code)
  if ss then return "location", "ss:" .. ss.supplySourceId, ss end
  return "unknown", "code:" .. code
end

-- Validate the entries of a fulfillment_availability value; for_delete needs codes only.
local function check_fa_entries(sb, entries, issues, for_delete)
  local seen = {}
  for i, e in ipairs(entries) do
    if type(e) ~= "table" then
      issues[#issues + 1] = issue(sb, ISSUE.INVALID, fmt("fulfillment_availability[%d] must be an object.", i),
        "ERROR", FA, "INVALID_ATTRIBUTE")
    else
      local code = e.fulfillment_channel_code
      if not nonempty_string(code) then
        issues[#issues + 1] = issue(sb, ISSUE.MISSING,
          fmt("'fulfillment_channel_code' is required but not supplied (fulfillment_availability[%d]).", i),
          "ERROR", FA, "MISSING_ATTRIBUTE")
      else
        local kind, k, ss = channel(sb, code)
        if seen[k] then
          issues[#issues + 1] = issue(sb, ISSUE.INVALID,
            fmt("fulfillment_channel_code '%s' appears more than once.", code), "ERROR", FA, "INVALID_ATTRIBUTE")
        end
        seen[k] = true
        if not for_delete then
          local q = e.quantity
          local qok = is_count(q)
          if q == nil and kind ~= "location" and type(e.is_inventory_available) == "boolean" then qok = true end
          if not qok then
            issues[#issues + 1] = issue(sb, ISSUE.INVALID,
              fmt("'quantity' of fulfillment_channel_code '%s' must be a whole number from 0.", code),
              "ERROR", FA, "INVALID_ATTRIBUTE")
          end
          if kind == "unknown" then
            issues[#issues + 1] = issue(sb, ISSUE.UNKNOWN_SUPPLY_SOURCE,
              fmt("fulfillment_channel_code '%s' is not DEFAULT, an FBA channel or a supply source of this seller "
                .. "(use a supplySourceId, supplySourceCode or alias).", code), "ERROR", FA, "INVALID_ATTRIBUTE")
          elseif kind == "location" and ss.status == "Archived" then
            issues[#issues + 1] = issue(sb, ISSUE.SUPPLY_SOURCE_ARCHIVED,
              fmt("Supply source '%s' is archived and cannot hold inventory.", code), "ERROR", FA, "INVALID_ATTRIBUTE")
          elseif kind == "location" and ss.status ~= "Active" and qok and q and q > 0 then
            issues[#issues + 1] = issue(sb, ISSUE.SUPPLY_SOURCE_INACTIVE,
              fmt("Supply source '%s' is %s: activate it (updateSupplySourceStatus) before assigning a quantity.",
                code, tostring(ss.status)), "ERROR", FA, "INVALID_ATTRIBUTE")
          end
        end
      end
    end
  end
end

-- Rules on the whole fulfillment_availability of a listing after a change.
local function check_fa_listing(sb, entries, issues)
  local has_loc, has_fba, default_q = false, false, nil
  for _, e in ipairs(entries or {}) do
    local code = type(e) == "table" and e.fulfillment_channel_code
    if nonempty_string(code) then
      local kind = channel(sb, code)
      if kind == "location" then has_loc = true
      elseif kind == "fba" then has_fba = true
      elseif kind == "default" then default_q = e.quantity end
    end
  end
  if has_loc and has_fba then
    issues[#issues + 1] = issue(sb, ISSUE.FBA_NOT_SUPPORTED,
      "Multi-Location Inventory is not available for FBA inventory: a listing cannot have both "
        .. "supply source quantities and AMAZON_* fulfillment channels.", "ERROR", FA, "INVALID_ATTRIBUTE")
  end
  if has_loc and type(default_q) == "number" and default_q > 0 then
    issues[#issues + 1] = issue(sb, ISSUE.DEFAULT_NOT_ZERO,
      "Set the DEFAULT fulfillment channel to 0 when you provide quantities per supply source; "
        .. "otherwise the listing has an MLI offer and a non-MLI offer.", "WARNING", FA, "INVALID_ATTRIBUTE")
  end
end

-- The MLI guide: patches of per-location quantities always say productType PRODUCT.
local function check_product_type(sb, args, issues)
  if args.productType == "PRODUCT" then return end
  for _, p in ipairs(args.patches or {}) do
    if type(p) == "table" and p.path == "/attributes/" .. FA and type(p.value) == "table" and p.op ~= "delete" then
      for _, e in ipairs(p.value) do
        if type(e) == "table" and nonempty_string(e.fulfillment_channel_code)
          and channel(sb, e.fulfillment_channel_code) == "location" then
          issues[#issues + 1] = issue(sb, ISSUE.PRODUCT_TYPE,
            fmt("Per-location quantities are patched with productType PRODUCT, not '%s' (the listing keeps its "
              .. "own product type).", tostring(args.productType)), "ERROR", FA, "INVALID_ATTRIBUTE")
          return
        end
      end
    end
  end
end

-- attribute values are arrays of objects
local function check_attribute_value(sb, name, value, issues)
  if not is_array(value) then
    issues[#issues + 1] = issue(sb, ISSUE.INVALID, fmt("The value of attribute '%s' must be an array.", name),
      "ERROR", name, "INVALID_ATTRIBUTE")
    return false
  end
  for i, v in ipairs(value) do
    if type(v) ~= "table" or is_null(sb, v) then
      issues[#issues + 1] = issue(sb, ISSUE.INVALID, fmt("'%s'[%d] must be an object.", name, i),
        "ERROR", name, "INVALID_ATTRIBUTE")
      return false
    end
  end
  return true
end

local function check_attributes(sb, attrs, issues)
  for name, value in pairs(attrs) do
    if type(name) ~= "string" then
      issues[#issues + 1] = issue(sb, ISSUE.INVALID, "attribute names must be strings", "ERROR", nil, "INVALID_ATTRIBUTE")
    elseif check_attribute_value(sb, name, value, issues) and name == FA then
      check_fa_entries(sb, value, issues, false)
    end
  end
end

-- JSON Patch ---------------------------------------------------------------------

local function unescape_pointer(s)
  return (s:gsub("~1", "/"):gsub("~0", "~"))
end

local function find_entry(sb, list, code)
  local _, k = channel(sb, code)
  for i, e in ipairs(list) do
    if type(e) == "table" and nonempty_string(e.fulfillment_channel_code) then
      local _, k2 = channel(sb, e.fulfillment_channel_code)
      if k2 == k then return i end
    end
  end
  return nil
end

local function shallow_merge(into, from)
  for k, v in pairs(from) do into[k] = v end
  return into
end

local function entry_matches(entry, pattern)
  if type(entry) ~= "table" then return false end
  for k, v in pairs(pattern) do
    if type(v) == "table" then
      if type(entry[k]) ~= "table" then return false end
    elseif entry[k] ~= v then
      return false
    end
  end
  return true
end

-- Apply patches to attrs (changed in place). Appends issues.
local function apply_patches(sb, attrs, patches, issues)
  for i, p in ipairs(patches) do
    local where = fmt("patches[%d]", i)
    if type(p) ~= "table" then
      issues[#issues + 1] = issue(sb, ISSUE.INVALID, where .. " must be an object.", "ERROR", nil, "INVALID_ATTRIBUTE")
    else
      local op, path, value = p.op, p.path, p.value
      if is_null(sb, value) then value = nil end
      local name = type(path) == "string" and path:match("^/attributes/([^/]+)$")
      if not PATCH_OPS[op] then
        issues[#issues + 1] = issue(sb, ISSUE.INVALID, where .. ": op must be add, replace, merge or delete.",
          "ERROR", nil, "INVALID_ATTRIBUTE")
      elseif not name then
        local nested = type(path) == "string" and path:match("^/attributes/[^/]+/")
        issues[#issues + 1] = issue(sb, ISSUE.INVALID, nested
          and where .. ": only top-level listings item attributes can be patched; patching nested attributes is not supported."
          or where .. ": path must be /attributes/<attribute name>.", "ERROR", nil, "INVALID_ATTRIBUTE")
      else
        name = unescape_pointer(name)
        if op ~= "delete" and value == nil then
          issues[#issues + 1] = issue(sb, ISSUE.MISSING, where .. ": 'value' is required for " .. op .. ".",
            "ERROR", name, "MISSING_ATTRIBUTE")
        elseif value ~= nil and check_attribute_value(sb, name, value, issues) then
          if name == FA then
            check_fa_entries(sb, value, issues, op == "delete")
            if not has_error(issues) then
              local cur = attrs[FA] or {}
              for _, e in ipairs(value) do
                local at = find_entry(sb, cur, e.fulfillment_channel_code)
                if op == "delete" then
                  if at then table.remove(cur, at) end
                elseif op == "merge" and at then
                  shallow_merge(cur[at], e)
                elseif at then
                  cur[at] = deep_copy(e)
                else
                  cur[#cur + 1] = deep_copy(e)
                end
              end
              attrs[FA] = (#cur > 0 or op ~= "delete") and cur or nil
            end
          elseif op == "delete" then
            local cur = attrs[name]
            if type(cur) == "table" then
              local keep = {}
              for _, e in ipairs(cur) do
                local drop = false
                for _, pat in ipairs(value) do
                  if entry_matches(e, pat) then drop = true break end
                end
                if not drop then keep[#keep + 1] = e end
              end
              attrs[name] = #keep > 0 and keep or nil
            end
          elseif op == "merge" and type(attrs[name]) == "table" then
            local cur = attrs[name]
            for j, e in ipairs(value) do
              if type(cur[j]) == "table" then shallow_merge(cur[j], e) else cur[j] = deep_copy(e) end
            end
          else
            attrs[name] = deep_copy(value)
          end
        elseif op == "delete" and value == nil then
          attrs[name] = nil
        end
      end
    end
  end
end

-- submissions ----------------------------------------------------------------------

local function now_iso(sb, t) return sb.iso(t or sb.now()) end

local function add_marketplaces(doc, marketplaceIds)
  local have = set_of(doc.marketplaceIds or {})
  doc.marketplaceIds = doc.marketplaceIds or {}
  for _, m in ipairs(marketplaceIds or {}) do
    if not have[m] then
      doc.marketplaceIds[#doc.marketplaceIds + 1] = m
      have[m] = true
    end
  end
end

--- Submit a change to a listing: the engine behind put/patch/delete and the
-- JSON_LISTINGS_FEED messages.
-- args: { sellerId, sku, op = "put"|"patch"|"delete", productType, requirements,
--         attributes, patches, marketplaceIds, preview = bool }
-- returns { status = "ACCEPTED"|"INVALID"|"VALID", issues = {...}, doc = listing or nil }
function _M.submit(sb, args)
  local issues = {}
  local doc = _M.get(sb, args.sellerId, args.sku)
  local now = sb.now()
  local new
  if args.op == "delete" then
    if not doc then
      issues[#issues + 1] = issue(sb, ISSUE.NOT_FOUND,
        fmt("The listing for SKU '%s' does not exist.", args.sku), "ERROR", nil, nil)
    end
  elseif args.op == "put" then
    local attrs = deep_copy(args.attributes or {})
    check_attributes(sb, attrs, issues)
    local req = args.requirements or "LISTING"
    if req ~= "LISTING_OFFER_ONLY" and args.productType ~= "PRODUCT" and attrs.item_name == nil then
      issues[#issues + 1] = issue(sb, ISSUE.MISSING, "'item_name' is required but not supplied.",
        "ERROR", "item_name", "MISSING_ATTRIBUTE")
    end
    if not has_error(issues) then check_fa_listing(sb, attrs[FA], issues) end
    new = {
      sellerId = args.sellerId, sku = args.sku, productType = args.productType, requirements = req,
      attributes = attrs, marketplaceIds = doc and doc.marketplaceIds or {},
      asin = doc and doc.asin or asin_for(args.sellerId, args.sku),
      createdAt = doc and doc.createdAt or now, updatedAt = now,
    }
  elseif args.op == "patch" then
    if not doc then
      issues[#issues + 1] = issue(sb, ISSUE.NOT_FOUND,
        fmt("The listing for SKU '%s' does not exist; create it with putListingsItem first.", args.sku),
        "ERROR", nil, nil)
    else
      local attrs = deep_copy(doc.attributes or {})
      apply_patches(sb, attrs, args.patches or {}, issues)
      if not has_error(issues) then check_product_type(sb, args, issues) end
      if not has_error(issues) then check_fa_listing(sb, attrs[FA], issues) end
      new = deep_copy(doc)
      new.attributes = attrs
      new.updatedAt = now
    end
  else
    error("listings_items.submit: bad op " .. tostring(args.op), 2)
  end
  local invalid = has_error(issues)
  local result = { issues = issues }
  if invalid then
    result.status = "INVALID"
    result.doc = doc
  elseif args.preview then
    result.status = "VALID"
    result.doc = new or doc
  else
    result.status = "ACCEPTED"
    if args.op == "delete" then
      sb.state.delete(KIND, key(args.sellerId, args.sku))
    else
      add_marketplaces(new, args.marketplaceIds)
      sb.state.put(KIND, key(args.sellerId, args.sku), new)
      result.doc = new
    end
  end
  return result
end

-- views ----------------------------------------------------------------------------

-- The fulfillmentAvailability view and the issues that apply now.
local function availability(sb, doc)
  local entries = doc.attributes and doc.attributes[FA] or {}
  local default_entry, out_loc, out_fba, sum, has_loc = nil, {}, {}, 0, false
  local issues = {}
  for _, e in ipairs(entries) do
    local code = type(e) == "table" and e.fulfillment_channel_code
    if nonempty_string(code) then
      local kind, _, ss = channel(sb, code)
      local q = is_count(e.quantity) and e.quantity or nil
      if kind == "default" then
        default_entry = e
      elseif kind == "fba" then
        out_fba[#out_fba + 1] = { fulfillmentChannelCode = code, quantity = q }
      elseif kind == "location" then
        if ss.status == "Archived" then
          issues[#issues + 1] = issue(sb, ISSUE.SUPPLY_SOURCE_ARCHIVED,
            fmt("Supply source '%s' is archived; its quantity is ignored.", code), "WARNING", FA, "INVALID_ATTRIBUTE")
        else
          has_loc = true
          out_loc[#out_loc + 1] = { fulfillmentChannelCode = code, quantity = q }
          if ss.status == "Active" then
            sum = sum + (q or 0)
          elseif q and q > 0 then
            issues[#issues + 1] = issue(sb, ISSUE.SUPPLY_SOURCE_INACTIVE,
              fmt("Supply source '%s' is %s; its quantity is not available to buyers.", code, tostring(ss.status)),
              "WARNING", FA, "INVALID_ATTRIBUTE")
          end
        end
      else
        issues[#issues + 1] = issue(sb, ISSUE.UNKNOWN_SUPPLY_SOURCE,
          fmt("Supply source '%s' no longer exists; its quantity is ignored.", code), "WARNING", FA, "INVALID_ATTRIBUTE")
      end
    end
  end
  local out = {}
  local dq = default_entry and is_count(default_entry.quantity) and default_entry.quantity or nil
  if has_loc then
    if dq and dq > 0 then
      issues[#issues + 1] = issue(sb, ISSUE.DEFAULT_NOT_ZERO,
        "Set the DEFAULT fulfillment channel to 0 when you provide quantities per supply source; "
          .. "otherwise the listing has an MLI offer and a non-MLI offer.", "WARNING", FA, "INVALID_ATTRIBUTE")
      out[1] = { fulfillmentChannelCode = "DEFAULT", quantity = dq }
    else
      out[1] = { fulfillmentChannelCode = "DEFAULT", quantity = sum }
    end
  elseif default_entry then
    out[1] = { fulfillmentChannelCode = "DEFAULT", quantity = dq }
  end
  for _, e in ipairs(out_loc) do out[#out + 1] = e end
  for _, e in ipairs(out_fba) do out[#out + 1] = e end
  local total = 0
  for _, e in ipairs(out) do
    if e.fulfillmentChannelCode == "DEFAULT" or e.fulfillmentChannelCode:match("^AMAZON_") then
      total = total + (e.quantity or (default_entry and default_entry.is_inventory_available and 1 or 0))
    end
  end
  return out, issues, total
end
_M.availability = availability

local function first_value(attrs, name, field)
  local a = attrs and attrs[name]
  local e = type(a) == "table" and a[1]
  if type(e) == "table" then return e[field or "value"] end
  return nil
end

local function offers(sb, doc, markets)
  local out = {}
  for _, o in ipairs(doc.attributes and doc.attributes.purchasable_offer or {}) do
    if type(o) == "table" and (not o.marketplace_id or markets[o.marketplace_id]) then
      local price = type(o.our_price) == "table" and type(o.our_price[1]) == "table"
        and type(o.our_price[1].schedule) == "table" and type(o.our_price[1].schedule[1]) == "table"
        and o.our_price[1].schedule[1].value_with_tax
      if price ~= nil then
        out[#out + 1] = {
          marketplaceId = o.marketplace_id or doc.marketplaceIds[1],
          offerType = o.audience == "B2B" and "B2B" or "B2C",
          price = { currencyCode = o.currency or "USD", amount = tostring(price) },
        }
      end
    end
  end
  return out
end

--- The Item the API returns for a listing: inc = set of includedData names,
-- markets = set of requested marketplace ids (nil = all).
function _M.view(sb, doc, inc, markets)
  local item = { sku = doc.sku }
  local fa, fa_issues, total = availability(sb, doc)
  local mlist = {}
  for _, m in ipairs(doc.marketplaceIds or {}) do
    if not markets or markets[m] then mlist[#mlist + 1] = m end
  end
  local markets_all = markets or set_of(mlist)
  if inc.summaries then
    local s = {}
    local status = total > 0 and { "BUYABLE", "DISCOVERABLE" } or { "DISCOVERABLE" }
    for _, m in ipairs(mlist) do
      s[#s + 1] = {
        marketplaceId = m, asin = doc.asin, productType = doc.productType,
        conditionType = first_value(doc.attributes, "condition_type") or "new_new",
        status = sb.json.array(status),
        itemName = first_value(doc.attributes, "item_name"),
        createdDate = now_iso(sb, doc.createdAt), lastUpdatedDate = now_iso(sb, doc.updatedAt),
      }
    end
    item.summaries = sb.json.array(s)
  end
  if inc.attributes then
    local a = {}
    for k, v in pairs(doc.attributes or {}) do a[k] = sb.json.array(deep_copy(v)) end
    item.attributes = a
  end
  if inc.issues then
    for _, i in ipairs(fa_issues) do i.marketplaceIds = sb.json.array(mlist) end
    item.issues = sb.json.array(fa_issues)
  end
  if inc.offers then item.offers = sb.json.array(offers(sb, doc, markets_all)) end
  if inc.fulfillmentAvailability then item.fulfillmentAvailability = sb.json.array(fa) end
  if inc.procurement then item.procurement = sb.json.array({}) end
  if inc.relationships then
    local r = {}
    for _, m in ipairs(mlist) do r[#r + 1] = { marketplaceId = m, relationships = sb.json.array({}) } end
    item.relationships = sb.json.array(r)
  end
  if inc.productTypes then
    local p = {}
    for _, m in ipairs(mlist) do p[#p + 1] = { marketplaceId = m, productType = doc.productType } end
    item.productTypes = sb.json.array(p)
  end
  return item, fa_issues, total
end

-- handlers ----------------------------------------------------------------------------

local function path_args(sb, req)
  local p = req.params or {}
  if not nonempty_string(p.sellerId) then return nil, bad(sb, "sellerId is required") end
  if p.sku ~= nil and not nonempty_string(p.sku) then return nil, bad(sb, "sku is required") end
  local m = csv(req, "marketplaceIds")
  if #m == 0 then return nil, bad(sb, "marketplaceIds is required") end
  return p, m
end

local function submission_response(sb, sku, result, inc, marketplaceIds)
  local body = { sku = sku, status = result.status, submissionId = submission_id(sb) }
  if inc.issues then body.issues = sb.json.array(result.issues) end
  if inc.identifiers then
    local ids = {}
    if result.doc and result.status ~= "INVALID" then
      for _, m in ipairs(marketplaceIds) do ids[#ids + 1] = { marketplaceId = m, asin = result.doc.asin } end
    end
    body.identifiers = sb.json.array(ids)
  end
  return 200, body
end

local function check_mode(sb, req)
  local mode = req.query and req.query.mode
  if mode ~= nil and mode ~= "" and mode ~= "VALIDATION_PREVIEW" then
    return nil, bad(sb, "mode must be VALIDATION_PREVIEW")
  end
  return mode == "VALIDATION_PREVIEW"
end

_M.handlers = {}

function _M.handlers.getListingsItem(req, sb)
  local p, m, e = path_args(sb, req)
  if not p then return m, e end
  local inc, s, b = included(sb, req, INCLUDED_GET, { "summaries" })
  if not inc then return s, b end
  settle_feeds(sb)
  local doc = _M.get(sb, p.sellerId, p.sku)
  if not doc then
    return sb.err(404, "NOT_FOUND", fmt("SKU '%s' not found in marketplace %s", p.sku, m[1]))
  end
  return 200, (_M.view(sb, doc, inc, set_of(m)))
end

function _M.handlers.putListingsItem(req, sb)
  local p, m, e = path_args(sb, req)
  if not p then return m, e end
  local inc, s, b = included(sb, req, INCLUDED_SUBMIT, { "issues" })
  if not inc then return s, b end
  local preview, s2, b2 = check_mode(sb, req)
  if preview == nil then return s2, b2 end
  local body = req.body
  if type(body) ~= "table" then return bad(sb, "A JSON request body is required.") end
  if not nonempty_string(body.productType) then return bad(sb, "productType is required.") end
  if type(body.attributes) ~= "table" or (next(body.attributes) ~= nil and is_array(body.attributes)) then
    return bad(sb, "attributes is required and must be an object.")
  end
  if body.requirements ~= nil and not REQUIREMENTS[body.requirements] then
    return bad(sb, "requirements must be LISTING, LISTING_PRODUCT_ONLY or LISTING_OFFER_ONLY.")
  end
  settle_feeds(sb)
  local result = _M.submit(sb, { op = "put", sellerId = p.sellerId, sku = p.sku, productType = body.productType,
    requirements = body.requirements, attributes = body.attributes, marketplaceIds = m, preview = preview })
  return submission_response(sb, p.sku, result, inc, m)
end

function _M.handlers.patchListingsItem(req, sb)
  local p, m, e = path_args(sb, req)
  if not p then return m, e end
  local inc, s, b = included(sb, req, INCLUDED_SUBMIT, { "issues" })
  if not inc then return s, b end
  local preview, s2, b2 = check_mode(sb, req)
  if preview == nil then return s2, b2 end
  local body = req.body
  if type(body) ~= "table" then return bad(sb, "A JSON request body is required.") end
  if not nonempty_string(body.productType) then return bad(sb, "productType is required.") end
  if type(body.patches) ~= "table" or not is_array(body.patches) or #body.patches == 0 then
    return bad(sb, "patches is required and must be a non-empty array.")
  end
  settle_feeds(sb)
  local result = _M.submit(sb, { op = "patch", sellerId = p.sellerId, sku = p.sku, productType = body.productType,
    patches = body.patches, marketplaceIds = m, preview = preview })
  return submission_response(sb, p.sku, result, inc, m)
end

function _M.handlers.deleteListingsItem(req, sb)
  local p, m, e = path_args(sb, req)
  if not p then return m, e end
  settle_feeds(sb)
  local result = _M.submit(sb, { op = "delete", sellerId = p.sellerId, sku = p.sku, marketplaceIds = m })
  return submission_response(sb, p.sku, result, { issues = true }, m)
end

local SORT_KEYS = { sku = "sku", createdDate = "createdAt", lastUpdatedDate = "updatedAt" }
local STATUS_VALUES = { BUYABLE = true, DISCOVERABLE = true }

local function time_param(sb, req, name)
  local v = req.query and req.query[name]
  if v == nil or v == "" then return true, nil end
  local t = sb.parse_iso(v)
  if not t then return false end
  return true, t
end

function _M.handlers.searchListingsItems(req, sb)
  local p, m, e = path_args(sb, req)
  if not p then return m, e end
  local inc, s, b = included(sb, req, INCLUDED_GET, { "summaries" })
  if not inc then return s, b end
  local q = req.query or {}
  local ids, idtype = csv(req, "identifiers"), q.identifiersType
  if (#ids > 0) ~= (idtype ~= nil and idtype ~= "") then
    return bad(sb, "identifiers and identifiersType must be given together.")
  end
  if #ids > 20 then return bad(sb, "identifiers takes at most 20 values.") end
  local exclusive = (#ids > 0 and 1 or 0) + ((q.variationParentSku or "") ~= "" and 1 or 0)
    + ((q.packageHierarchySku or "") ~= "" and 1 or 0)
  if exclusive > 1 then
    return bad(sb, "Use only one of identifiers, variationParentSku and packageHierarchySku.")
  end
  local times = {}
  for _, name in ipairs({ "createdAfter", "createdBefore", "lastUpdatedAfter", "lastUpdatedBefore" }) do
    local ok, t = time_param(sb, req, name)
    if not ok then return bad(sb, name .. " must be an ISO 8601 date-time.") end
    times[name] = t
  end
  local sev = csv(req, "withIssueSeverity")
  for _, v in ipairs(sev) do
    if v ~= "WARNING" and v ~= "ERROR" then return bad(sb, "withIssueSeverity must be WARNING or ERROR.") end
  end
  local with, without = csv(req, "withStatus"), csv(req, "withoutStatus")
  for _, v in ipairs(with) do if not STATUS_VALUES[v] then return bad(sb, "withStatus: bad value " .. v) end end
  for _, v in ipairs(without) do if not STATUS_VALUES[v] then return bad(sb, "withoutStatus: bad value " .. v) end end
  local sort_by = q.sortBy or "lastUpdatedDate"
  if not SORT_KEYS[sort_by] then return bad(sb, "sortBy must be sku, createdDate or lastUpdatedDate.") end
  local order = q.sortOrder or "DESC"
  if order ~= "ASC" and order ~= "DESC" then return bad(sb, "sortOrder must be ASC or DESC.") end
  local size = 10
  if q.pageSize ~= nil and q.pageSize ~= "" then
    size = tonumber(q.pageSize)
    if not size or size ~= floor(size) or size < 1 or size > 20 then
      return bad(sb, "pageSize must be an integer from 1 to 20.")
    end
  end
  local offset = 0
  if q.pageToken ~= nil and q.pageToken ~= "" then
    offset = tonumber(tostring(q.pageToken):match("^li1%.(%d+)$") or "")
    if not offset then return bad(sb, "pageToken is not valid.") end
  end
  settle_feeds(sb)

  local markets = set_of(m)
  local idset = set_of(ids)
  local with_set, without_set, sev_set = set_of(with), set_of(without), set_of(sev)
  local matches = {}
  for _, doc in ipairs(sb.state.list(KIND) or {}) do
    local ok = doc.sellerId == p.sellerId
    if ok then
      local any = false
      for _, mk in ipairs(doc.marketplaceIds or {}) do if markets[mk] then any = true break end end
      ok = any
    end
    if ok and #ids > 0 then
      if idtype == "SKU" then ok = idset[doc.sku] == true
      elseif idtype == "ASIN" then ok = idset[doc.asin] == true
      else
        ok = false
        for _, x in ipairs(doc.attributes and doc.attributes.externally_assigned_product_identifier or {}) do
          if type(x) == "table" and tostring(x.type or ""):upper() == idtype and idset[x.value] then ok = true end
        end
      end
    end
    if ok and (q.variationParentSku or "") ~= "" then
      ok = first_value(doc.attributes, "child_parent_sku_relationship", "parent_sku") == q.variationParentSku
    end
    if ok and (q.packageHierarchySku or "") ~= "" then ok = false end -- package hierarchies are not modelled
    if ok and times.createdAfter and doc.createdAt < times.createdAfter then ok = false end
    if ok and times.createdBefore and doc.createdAt > times.createdBefore then ok = false end
    if ok and times.lastUpdatedAfter and doc.updatedAt < times.lastUpdatedAfter then ok = false end
    if ok and times.lastUpdatedBefore and doc.updatedAt > times.lastUpdatedBefore then ok = false end
    if ok and (#sev > 0 or #with > 0 or #without > 0) then
      local _, iss, total = _M.view(sb, doc, {}, markets)
      local st = { DISCOVERABLE = true, BUYABLE = total > 0 }
      if #sev > 0 then
        local hit = false
        for _, i in ipairs(iss) do if sev_set[i.severity] then hit = true end end
        ok = hit
      end
      for v in pairs(with_set) do if not st[v] then ok = false end end
      for v in pairs(without_set) do if st[v] then ok = false end end
    end
    if ok then matches[#matches + 1] = doc end
  end
  local field = SORT_KEYS[sort_by]
  sort(matches, function(a, b2_)
    local x, y = a[field], b2_[field]
    if x == y then x, y = a.sku, b2_.sku end
    if order == "ASC" then return x < y end
    return x > y
  end)
  local items = {}
  for i = offset + 1, math.min(offset + size, #matches) do
    items[#items + 1] = (_M.view(sb, matches[i], inc, markets))
  end
  local body = { numberOfResults = #matches, items = sb.json.array(items) }
  local pag = {}
  if offset + size < #matches then pag.nextToken = fmt("li1.%d", offset + size) end
  if offset > 0 then pag.previousToken = fmt("li1.%d", math.max(0, offset - size)) end
  if next(pag) then body.pagination = pag end
  return 200, body
end

-- seed and control -------------------------------------------------------------------

_M.SEED_SELLER = "A1SANDBOXSELLER"
_M.SEED_MARKETPLACE = "ATVPDKIKX0DER"

function _M.seed(sb)
  SS.seed(sb) -- the default location must exist first
  if not _M.get(sb, _M.SEED_SELLER, "ssnm001") then
    _M.submit(sb, { op = "put", sellerId = _M.SEED_SELLER, sku = "ssnm001", productType = "PRODUCT",
      requirements = "LISTING_OFFER_ONLY", marketplaceIds = { _M.SEED_MARKETPLACE },
      attributes = { [FA] = { { fulfillment_channel_code = "DEFAULT", quantity = 3 } } } })
  end
end

-- POST /_sandbox/programs/listings_items/<action>
--   get {sellerId, sku}: the stored listing doc
--   list {sellerId?}: stored listing docs
--   seed {listings=[{sellerId?, sku, productType?, requirements?, attributes, marketplaceIds?}]}:
--     put listings (also reached through POST /_sandbox/seed), with the same rules as putListingsItem
function _M.control(sb, action, args)
  args = type(args) == "table" and args or {}
  if action == "seed" then
    if type(args.listings) ~= "table" then return sb.err(404, "NotFound", "no listings in the seed data") end
    if type(args.supplySources) == "table" then
      -- listings may name supply sources of the same seed data: create those first
      local st, body = SS.control(sb, "seed", args)
      if st >= 300 then return st, body end
    end
    local out = {}
    for i, l in ipairs(args.listings) do
      if type(l) ~= "table" or not nonempty_string(l.sku) or type(l.attributes) ~= "table" then
        return bad(sb, fmt("listings[%d] needs sku and attributes", i))
      end
      local r = _M.submit(sb, { op = "put", sellerId = l.sellerId or _M.SEED_SELLER, sku = l.sku,
        productType = l.productType or "PRODUCT", requirements = l.requirements or "LISTING_OFFER_ONLY",
        attributes = l.attributes, marketplaceIds = l.marketplaceIds or { _M.SEED_MARKETPLACE } })
      if r.status ~= "ACCEPTED" then
        return 400, { errors = { { code = "InvalidInput", message = fmt("listings[%d] is invalid", i),
          details = r.issues[1] and r.issues[1].message or "" } } }
      end
      out[#out + 1] = { sellerId = l.sellerId or _M.SEED_SELLER, sku = l.sku }
    end
    return 200, { listings = sb.json.array(out) }
  end
  if action == "get" then
    local doc = nonempty_string(args.sellerId) and nonempty_string(args.sku) and _M.get(sb, args.sellerId, args.sku)
    if not doc then return sb.err(404, "NotFound", "no such listing") end
    return 200, doc
  elseif action == "list" then
    local out = {}
    for _, doc in ipairs(sb.state.list(KIND) or {}) do
      if not args.sellerId or doc.sellerId == args.sellerId then out[#out + 1] = doc end
    end
    return 200, { listings = sb.json.array(out) }
  end
  return sb.err(404, "NotFound", "unknown listings_items control action: " .. tostring(action))
end

return _M
