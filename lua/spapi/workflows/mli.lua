-- Multi-Location Inventory, step by step (the MLI integration guide): supply
-- sources (create, activate, update, archive, list), quantities per location for a
-- SKU (patchListingsItem, read back with getListingsItem), the same for many SKUs
-- through a JSON_LISTINGS_FEED, shipment confirmations through
-- POST_ORDER_FULFILLMENT_DATA, and a sync of sku,location,quantity rows that sends
-- only what changed.
--
--   local mli = require "spapi.workflows.mli"
--   local store = assert(mli.create_supply_source(sp, { code = "store-1", alias = "Seattle store",
--     address = { name = "Seattle store", addressLine1 = "1 Main St", stateOrRegion = "WA", countryCode = "US" } }))
--   local r = assert(mli.set_quantities(sp, { seller_id = SELLER, sku = "SKU-1", quantities = { ["store-1"] = 10 } }))
--   print(r.availability.DEFAULT, r.availability["store-1"])
--
-- The DEFAULT channel rule (guide: "Set the DEFAULT channel to 0"): default_rule =
-- "enforce" (the default) sends DEFAULT 0 with every set of location quantities;
-- "warn" sends what it is given and returns a warning when DEFAULT stays above 0.
-- Failures at run time return nil, err (the spapi error type); bad arguments raise.
local _M = {}

local errors = require "spapi.errors"
local clock = require "spapi.clock"
local config = require "spapi.config"
local progress = require "spapi.progress"
local listings = require "spapi.feeds.listings"
local order_fulfillment = require "spapi.feeds.order_fulfillment"

local type, ipairs, pairs, tostring, tonumber, error, next = type, ipairs, pairs, tostring, tonumber, error, next
local fmt, floor, sort, concat = string.format, math.floor, table.sort, table.concat

local FA_PATH = "/attributes/fulfillment_availability"

local function raise(op, msg) error("spapi.workflows.mli: " .. op .. ": " .. msg, 3) end

local function fail(op, code, message, extra)
  local e = { kind = "workflow", code = code, message = message, operation = "mli." .. op }
  for k, v in pairs(extra or {}) do e[k] = v end
  return nil, errors.new(e)
end

local function marketplace_of(m)
  local rec = config.marketplace(m or "US")
  return rec and rec.id or m
end

local function need_string(op, t, k)
  if type(t[k]) ~= "string" or t[k] == "" then raise(op, k .. " is required (a non-empty string)") end
  return t[k]
end

-- Supply sources ---------------------------------------------------------------------

--- Every supply source that is not archived (all pages): list of
--- { supplySourceId, supplySourceCode, alias, address }. → list | nil, err
function _M.supply_sources(sp)
  local out = {}
  for s, err in sp:each("supply_sources.getSupplySources", { pageSize = 50 }) do
    if not s then return nil, err end
    out[#out + 1] = s
  end
  return out
end

--- Create a supply source, or find the one a previous run created (codes are unique
--- for ever). spec = { code, alias, address (SP-API Address), activate = true }.
--- → supplySourceId, "created" | "existing" | nil, err
function _M.create_supply_source(sp, spec)
  if type(spec) ~= "table" then raise("create_supply_source", "spec must be a table") end
  local code, alias = need_string("create_supply_source", spec, "code"), need_string("create_supply_source", spec, "alias")
  if type(spec.address) ~= "table" then raise("create_supply_source", "address is required") end
  local list, lerr = _M.supply_sources(sp)
  if not list then return nil, lerr end
  local id, how
  for _, s in ipairs(list) do
    if s.supplySourceCode == code then id, how = s.supplySourceId, "existing" end
  end
  if not id then
    local res, err = sp.supply_sources.createSupplySource{ body = { supplySourceCode = code, alias = alias,
      address = spec.address } }
    if not res then return nil, err end
    id, how = res.supplySourceId, "created"
  end
  if spec.activate ~= false then
    local ok, err = _M.activate(sp, id)
    if not ok then return nil, err end
  end
  return id, how
end

--- One supply source with its status, configuration and capabilities. → table | nil, err
function _M.supply_source(sp, id)
  return sp.supply_sources.getSupplySource{ supplySourceId = id }
end

local function set_status(sp, id, status)
  local ok, err = sp.supply_sources.updateSupplySourceStatus{ supplySourceId = id, body = { status = status } }
  if ok == nil then return nil, err end
  return true
end

--- A new supply source is Inactive: activate it before it holds quantities. → true | nil, err
function _M.activate(sp, id) return set_status(sp, id, "Active") end
--- → true | nil, err
function _M.deactivate(sp, id) return set_status(sp, id, "Inactive") end

--- Change alias, configuration or capabilities: changes = { alias, configuration, capabilities }.
--- → true | nil, err
function _M.update_supply_source(sp, id, changes)
  if type(changes) ~= "table" then raise("update_supply_source", "changes must be a table") end
  local ok, err = sp.supply_sources.updateSupplySource{ supplySourceId = id, body = {
    alias = changes.alias, configuration = changes.configuration, capabilities = changes.capabilities } }
  if ok == nil then return nil, err end
  return true
end

--- Archive a supply source (final: it can no longer be changed or hold stock). → true | nil, err
function _M.archive(sp, id)
  local ok, err = sp.supply_sources.archiveSupplySource{ supplySourceId = id }
  if ok == nil then return nil, err end
  return true
end

-- Quantities of one SKU --------------------------------------------------------------------

--- What a listing holds per channel: { availability = { [code] = quantity } (what
--- buyers see: DEFAULT is the consolidated count), stored = { [code] = quantity }
--- (the fulfillment_availability attribute as sent), issues }. → table | nil, err
function _M.quantities(sp, seller_id, sku, marketplace)
  local item, err = sp.listings_items.getListingsItem{ sellerId = seller_id, sku = sku,
    marketplaceIds = { marketplace_of(marketplace) }, includedData = { "fulfillmentAvailability", "attributes", "issues" } }
  if not item then return nil, err end
  local out = { availability = {}, stored = {}, issues = item.issues or {} }
  for _, e in ipairs(item.fulfillmentAvailability or {}) do out.availability[e.fulfillmentChannelCode] = e.quantity end
  for _, e in ipairs(item.attributes and item.attributes.fulfillment_availability or {}) do
    if e.fulfillment_channel_code then out.stored[e.fulfillment_channel_code] = e.quantity end
  end
  return out
end

--- Set quantities per location for one SKU with patchListingsItem (productType
--- PRODUCT, as the guide asks), then read them back with getListingsItem.
--- args = { seller_id, sku, quantities = { [supply source id, code or alias] = n },
---   marketplace, default_rule = "enforce" | "warn" }
--- → { status, submission_id, issues, availability, stored, warning } | nil, err
---   (err.code "Invalid" with err.issues when Amazon refused the patch)
function _M.set_quantities(sp, args)
  if type(args) ~= "table" then raise("set_quantities", "args must be a table") end
  local seller, sku = need_string("set_quantities", args, "seller_id"), need_string("set_quantities", args, "sku")
  if type(args.quantities) ~= "table" or next(args.quantities) == nil then
    raise("set_quantities", "quantities must map at least one channel code to a quantity")
  end
  local value, warning = listings.availability(args.quantities, args.default_rule)
  local res, err = sp.listings_items.patchListingsItem{ sellerId = seller, sku = sku,
    marketplaceIds = { marketplace_of(args.marketplace) }, includedData = { "issues" },
    body = { productType = "PRODUCT", patches = { { op = "replace", path = FA_PATH, value = value } } } }
  if not res then return nil, err end
  if res.status == "INVALID" then
    local msgs = {}
    for _, i in ipairs(res.issues or {}) do msgs[#msgs + 1] = (i.code or "?") .. ": " .. (i.message or "") end
    return fail("set_quantities", "Invalid", "the listing refused the quantities of " .. sku .. ": " .. concat(msgs, "; "),
      { issues = res.issues or {} })
  end
  local now, qerr = _M.quantities(sp, seller, sku, args.marketplace)
  if not now then return nil, qerr end
  now.status, now.submission_id, now.warning = res.status, res.submissionId, warning
  now.submit_issues = res.issues or {}
  return now
end

-- Feeds -------------------------------------------------------------------------------------

local TERMINAL = { DONE = true, FATAL = true, CANCELLED = true }

--- Upload a feed document, create the feed, wait until it is processed and return
--- its report text. opts: marketplace, interval (1 s), timeout (600 s), sleep,
--- progress (callback or false), label. → report_text, feed | nil, err
function _M.submit_feed(sp, feed_type, content, content_type, opts)
  opts = opts or {}
  local doc, err = sp.feeds.createFeedDocument{ body = { contentType = content_type } }
  if not doc then return nil, err end
  local ok, uerr = sp:upload_document(doc, content, content_type)
  if not ok then return nil, uerr end
  local created, cerr = sp.feeds.createFeed{ body = { feedType = feed_type,
    marketplaceIds = { marketplace_of(opts.marketplace) }, inputFeedDocumentId = doc.feedDocumentId } }
  if not created then return nil, cerr end
  local id = created.feedId
  local label = opts.label or (feed_type .. " " .. id)
  local bar = opts.progress == false and progress.quiet{ label = label, total = 3 }
    or progress.new{ label = label, total = 3, callback = opts.progress or nil }
  local steps = { IN_QUEUE = 1, IN_PROGRESS = 2 }
  local deadline = clock.monotonic() + (opts.timeout or 600)
  local interval = opts.interval or 1
  local feed
  while true do
    local f, ferr = sp.feeds.getFeed{ feedId = id }
    if not f then bar:finish("failed") return nil, ferr end
    feed = f
    bar:update(steps[f.processingStatus] or 3, f.processingStatus)
    if TERMINAL[f.processingStatus] then break end
    if clock.monotonic() + interval > deadline then
      bar:finish(f.processingStatus)
      return fail("submit_feed", "Timeout", fmt("feed %s still %s", id, tostring(f.processingStatus)), { feed = f })
    end
    (opts.sleep or clock.sleep)(interval)
  end
  bar:finish(feed.processingStatus)
  if not feed.resultFeedDocumentId then
    return fail("submit_feed", "NoReport", fmt("feed %s ended %s without a processing report", id,
      tostring(feed.processingStatus)), { feed = feed })
  end
  local meta, merr = sp.feeds.getFeedDocument{ feedDocumentId = feed.resultFeedDocumentId }
  if not meta then return nil, merr end
  local text, derr = sp:download_document(meta)
  if not text then return nil, derr end
  return text, feed
end

--- Quantities per location for many SKUs in one JSON_LISTINGS_FEED: built, checked
--- against the listings feed schema, uploaded, waited for, its processing report
--- decoded per SKU. args = { seller_id, skus = { [sku] = { [location] = n } },
--- marketplace, default_rule, progress, interval, timeout, sleep }
--- → { feed_id, status, skus = { [sku] = { status, issues, item } }, warnings = { [sku] = text },
---     summary, errors, document_issues } | nil, err (code "InvalidFeed" before upload)
function _M.bulk_quantities(sp, args)
  if type(args) ~= "table" then raise("bulk_quantities", "args must be a table") end
  local seller = need_string("bulk_quantities", args, "seller_id")
  if type(args.skus) ~= "table" or next(args.skus) == nil then raise("bulk_quantities", "skus must not be empty") end
  local feed = listings.new{ seller_id = seller, report = { "fulfillmentAvailability" } }
  local names = {}
  for sku in pairs(args.skus) do names[#names + 1] = sku end
  sort(names)
  local warnings = {}
  for _, sku in ipairs(names) do
    local _, w = feed:quantities(sku, args.skus[sku], { default_rule = args.default_rule })
    warnings[sku] = w
  end
  local text, err = feed:encode()
  if not text then return nil, err end
  local report_text, f = _M.submit_feed(sp, listings.FEED_TYPE, text, listings.CONTENT_TYPE, {
    marketplace = args.marketplace, progress = args.progress, interval = args.interval, timeout = args.timeout,
    sleep = args.sleep, label = "listings feed" })
  if not report_text then return nil, f end
  local report, rerr = listings.decode_report(report_text, feed.messages)
  if not report then return nil, rerr end
  report.feed_id, report.status, report.warnings = f.feedId, f.processingStatus, warnings
  return report
end

--- Confirm shipments of merchant-fulfilled orders with POST_ORDER_FULFILLMENT_DATA.
--- args = { merchant_id, confirmations (see spapi.feeds.order_fulfillment), marketplace,
--- progress, interval, timeout, sleep } → decoded ProcessingReport (processed,
--- successful, errors, warnings, results) plus feed_id, status | nil, err
function _M.confirm_shipments(sp, args)
  if type(args) ~= "table" then raise("confirm_shipments", "args must be a table") end
  local text = order_fulfillment.build{ merchant_id = args.merchant_id, confirmations = args.confirmations }
  local report_text, f = _M.submit_feed(sp, order_fulfillment.FEED_TYPE, text, order_fulfillment.CONTENT_TYPE, {
    marketplace = args.marketplace, progress = args.progress, interval = args.interval, timeout = args.timeout,
    sleep = args.sleep, label = "order fulfillment feed" })
  if not report_text then return nil, f end
  local report, rerr = order_fulfillment.decode_report(report_text)
  if not report then return fail("confirm_shipments", "BadReport", rerr) end
  report.feed_id, report.status = f.feedId, f.processingStatus
  return report
end

-- Sync from sku,location,quantity rows ---------------------------------------------------------

-- one CSV line → fields (RFC 4180 quoting)
local function csv_fields(line)
  local out, i, n = {}, 1, #line
  while i <= n + 1 do
    if line:sub(i, i) == '"' then
      local buf, j = {}, i + 1
      while true do
        local q = line:find('"', j, true)
        if not q then return nil end
        buf[#buf + 1] = line:sub(j, q - 1)
        if line:sub(q + 1, q + 1) == '"' then
          buf[#buf + 1] = '"'
          j = q + 2
        else
          i = q + 1
          break
        end
      end
      out[#out + 1] = concat(buf)
      if line:sub(i, i) == "," then i = i + 1 elseif i <= n then return nil else break end
    else
      local c = line:find(",", i, true) or (n + 1)
      out[#out + 1] = line:sub(i, c - 1):match("^%s*(.-)%s*$")
      i = c + 1
    end
  end
  return out
end

--- Rows of a CSV with the header sku,location,quantity (any column order; blank
--- lines and lines starting with # skipped). → rows { { sku, location, quantity } } | nil, err
function _M.read_csv(text)
  if type(text) ~= "string" then raise("read_csv", "text must be a string (the file's content)") end
  local rows, cols, lineno = {}, nil, 0
  for line in (text:gsub("\r\n", "\n") .. "\n"):gmatch("([^\n]*)\n") do
    lineno = lineno + 1
    if line:match("%S") and not line:match("^%s*#") then
      local f = csv_fields(line)
      if not f then return fail("read_csv", "BadCSV", fmt("line %d: unbalanced quotes", lineno)) end
      if not cols then
        cols = {}
        for i, name in ipairs(f) do cols[name:lower()] = i end
        if not (cols.sku and cols.location and cols.quantity) then
          return fail("read_csv", "BadCSV", "the header must name the columns sku, location and quantity")
        end
      else
        local q = tonumber(f[cols.quantity])
        if not q or q < 0 or q ~= floor(q) then
          return fail("read_csv", "BadCSV", fmt("line %d: quantity must be a whole number from 0", lineno))
        end
        local sku, loc = f[cols.sku], f[cols.location]
        if not sku or sku == "" or not loc or loc == "" then
          return fail("read_csv", "BadCSV", fmt("line %d: sku and location are required", lineno))
        end
        rows[#rows + 1] = { sku = sku, location = loc, quantity = q }
      end
    end
  end
  if not cols then return fail("read_csv", "BadCSV", "no header line") end
  return rows
end

--- Push sku,location,quantity rows: reads each SKU's stored quantities and sends
--- only the SKUs where a location differs (or DEFAULT is not 0 under "enforce").
--- A re-run with nothing changed makes no write call at all (reads only).
--- args = { seller_id, rows, marketplace, default_rule, mode = "feed" (one
--- JSON_LISTINGS_FEED, the default) | "patch" (one patchListingsItem per SKU),
--- progress, interval, timeout, sleep }
--- → { changed = { sku... }, unchanged = { sku... }, report (feed mode) | results (patch mode) } | nil, err
function _M.sync(sp, args)
  if type(args) ~= "table" then raise("sync", "args must be a table") end
  local seller = need_string("sync", args, "seller_id")
  if type(args.rows) ~= "table" then raise("sync", "rows must be a list of { sku, location, quantity }") end
  local mode = args.mode or "feed"
  if mode ~= "feed" and mode ~= "patch" then raise("sync", "mode must be \"feed\" or \"patch\"") end
  local rule = args.default_rule or "enforce"
  local wanted, order = {}, {}
  for i, r in ipairs(args.rows) do
    if type(r) ~= "table" or type(r.sku) ~= "string" or type(r.location) ~= "string" or type(r.quantity) ~= "number" then
      raise("sync", fmt("rows[%d] must be { sku = string, location = string, quantity = number }", i))
    end
    if not wanted[r.sku] then wanted[r.sku] = {}; order[#order + 1] = r.sku end
    wanted[r.sku][r.location] = r.quantity
  end
  local changed, unchanged, todo = {}, {}, {}
  for _, sku in ipairs(order) do
    local now, err = _M.quantities(sp, seller, sku, args.marketplace)
    if not now then return nil, err end
    local differs = false
    for loc, q in pairs(wanted[sku]) do
      if now.stored[loc] ~= q then differs = true end
    end
    local has_location = false
    for loc in pairs(wanted[sku]) do if loc ~= "DEFAULT" then has_location = true end end
    if rule == "enforce" and has_location and wanted[sku].DEFAULT == nil and (now.stored.DEFAULT or 0) ~= 0 then
      differs = true
    end
    if differs then
      changed[#changed + 1] = sku
      todo[sku] = wanted[sku]
    else
      unchanged[#unchanged + 1] = sku
    end
  end
  local out = { changed = changed, unchanged = unchanged }
  if #changed == 0 then return out end
  if mode == "feed" then
    local report, err = _M.bulk_quantities(sp, { seller_id = seller, skus = todo, marketplace = args.marketplace,
      default_rule = rule, progress = args.progress, interval = args.interval, timeout = args.timeout, sleep = args.sleep })
    if not report then return nil, err end
    out.report = report
  else
    out.results = {}
    for _, sku in ipairs(changed) do
      local r, err = _M.set_quantities(sp, { seller_id = seller, sku = sku, quantities = todo[sku],
        marketplace = args.marketplace, default_rule = rule })
      if not r and not (errors.is(err) and err.code == "Invalid") then return nil, err end
      out.results[sku] = r or { status = "INVALID", issues = err.issues, error = err }
    end
  end
  return out
end

return _M
