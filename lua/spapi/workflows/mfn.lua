-- spapi.workflows.mfn — Merchant Fulfillment (Amazon Buy Shipping) in one call:
-- every unshipped merchant-fulfilled order gets its rates, a chosen service, one
-- bought label saved as its file, and its shipment confirmed on the order —
-- exactly once across crashes and re-runs.
--
--   local mfn = require "spapi.workflows.mfn"
--   local report, err = mfn.run(sp, { journal = "mfn.journal", labels = "labels",
--     ship_from = { Name = "Acme", AddressLine1 = "300 Turnbull Ave", City = "Detroit",
--       StateOrProvinceCode = "MI", PostalCode = "48123", CountryCode = "US",
--       Email = "ship@acme.example", Phone = "7132341234" },
--     package = { PackageDimensions = { Length = 10, Width = 8, Height = 4, Unit = "inches" },
--                 Weight = { Value = 12, Unit = "oz" } } })
--   for _, o in ipairs(report.orders) do print(mfn.describe(o)) end
--   mfn.cancel(sp, { journal = "mfn.journal", order = "113-...-..." })  -- refund, within the window
--
-- mfn.run(client, opts) → report | nil, err (nil only when the run could not begin: the
-- journal is unreadable or locked by another run, or the orders could not be listed).
-- The run holds the journal's lock (spapi.journal): one run at a time per journal.
-- opts:
--   journal        path of the journal file (spapi.journal), or an opened journal. Required.
--   ship_from      the ShipFromAddress (Merchant Fulfillment's Address). Required.
--   package        { PackageDimensions =, Weight = } for every order, or
--                  function(order, items) → one (order: getOrders' Order; items: getOrderItems'
--                  OrderItems still to ship). Required.
--   labels         directory the label files go to (default "labels"; made if missing), named
--                  <AmazonOrderId>-<first 8 characters of the ShipmentId>.<pdf|png|zpl>
--   choose         "cheapest" (default: lowest Rate, then earliest delivery), "fastest"
--                  (earliest LatestEstimatedDeliveryDate, then lowest rate), or
--                  function(services, order) → one of services (or its ShippingServiceId);
--                  nil skips the order. services: getEligibleShipmentServices' list.
--   delivery_experience  ShippingServiceOptions.DeliveryExperience
--                  (default "DeliveryConfirmationWithoutSignature")
--   carrier_will_pick_up  boolean (default false)
--   label_format   PDF, PNG, ZPL203, ZPL300 (default: the service's)
--   marketplace    the marketplace id (default ATVPDKIKX0DER, US)
--   created_after  orders created since (Unix seconds or ISO-8601; default now - 7 days)
--   orders         a list of AmazonOrderIds to ship instead of listing the unshipped ones
--   confirm        false: do not confirm the shipment with Orders' confirmShipment
--                  (Buy Shipping labels confirm themselves on Amazon; the confirmation
--                  tells the order the package, carrier and tracking number explicitly)
--   requotes       fresh offers to ask for when an offer is no longer available (default 2)
--   progress       function(ev) (see spapi.progress); false: no progress line
--   rdt            false: read orders without a restricted data token (an application
--                  without the PII roles; the workflow needs no buyer data)
--
-- Exactly once. Per order the journal has a "label" step (createShipment) and a
-- "confirm" step (confirmShipment). The intent, with the request, is written (fsync'd)
-- before the request goes out. A re-run takes the unshipped orders plus every order
-- the journal has not finished (a lost answer leaves the order Shipped), and per step:
--   done     skipped (a label whose file is missing is fetched again with getShipment);
--   intent   the answer was lost: the same request is sent again, without the offer id.
--            Amazon refuses a second label for items that have one — ShipmentAlreadyExists,
--            naming the shipment — and that shipment is adopted (getShipment); if the
--            first never arrived, this buys the one label;
--   failed, none   sent (Amazon's refusal applied nothing).
-- A label for the same items bought outside the journal is adopted the same way. An
-- answer lost (network failure, 5xx) stops the run (report.stopped): re-run it.
--
-- Amazon's errors (the Merchant Fulfillment guide's table) and what the run does, in
-- _M.ERRORS: a fresh offer for ShippingServiceOfferNotAvailable and
-- InvalidShippingServiceOfferId, the next service for ShippingServiceNotAvailable and
-- ShipmentRequestDetailsTooRestrictive, the service's own format for
-- LabelFormatNotSupported, the existing shipment for ShipmentAlreadyExists, the order is
-- skipped for ItemsNotInOrder, RegionNotSupported, ResourceNotFound and InvalidState, and
-- the run stops for InsufficientFunds, InvalidShipFromAddress and InvalidRequest (every
-- other order would fail the same way: fix it, then re-run).
--
-- The report: { ok = bool, stopped = err|nil, orders = { entry... }, by_order = {} },
-- entry = { order, status (the order's status as last seen), label, confirm ("done",
-- "failed", "skipped", "pending", "cancelled" or nil: not reached), shipment, tracking,
-- service, rate, file, errors = { { step, code, message, action } }, notes = { ... } }.
local _M = {}

local journal_mod = require "spapi.journal"
local labels_mod = require "spapi.labels"
local progress_mod = require "spapi.progress"
local fs = require "spapi.fs"
local errors = require "spapi.errors"

local type, ipairs, tostring, tonumber, error, setmetatable = type, ipairs, tostring, tonumber, error, setmetatable
local fmt, floor, concat = string.format, math.floor, table.concat

local US = "ATVPDKIKX0DER"
local UUID = "%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x"

--- What the run does on each error code of the Merchant Fulfillment guide's table.
-- action: requote (a fresh offer, same service if still offered), next (the next best
-- service), format (the service's default label format), adopt (the existing shipment),
-- skip (this order is reported failed, the run goes on), stop (the run stops).
_M.ERRORS = {
  ShippingServiceOfferNotAvailable = { action = "requote", advice = "the rate changed: a fresh offer is asked for" },
  InvalidShippingServiceOfferId = { action = "requote", advice = "the offer id is not valid: a fresh offer is asked for" },
  ShippingServiceNotAvailable = { action = "next", advice = "the service cannot take this package: the next one is tried" },
  ShipmentRequestDetailsTooRestrictive = { action = "next",
    advice = "the service cannot meet the request: the next one is tried" },
  LabelFormatNotSupported = { action = "format", advice = "the label format is not offered: the service's own is used" },
  ShipmentAlreadyExists = { action = "adopt", advice = "a label exists for these items: that shipment is used" },
  ItemsNotInOrder = { action = "skip", advice = "the order's items changed: check the order, then re-run" },
  RegionNotSupported = { action = "skip", advice = "no Buy Shipping in this marketplace: ship it another way" },
  ResourceNotFound = { action = "skip", advice = "the order does not exist (for this seller)" },
  InvalidState = { action = "skip", advice = "the order or shipment is in a state that does not allow it" },
  InsufficientFunds = { action = "stop", advice = "add funds to the shipping account, then re-run" },
  InvalidShipFromAddress = { action = "stop", advice = "fix ship_from, then re-run" },
  InvalidRequest = { action = "stop", advice = "the request is malformed (ship_from, package): fix it, then re-run" },
  InvalidInput = { action = "stop", advice = "a value breaks the model's constraints: fix it, then re-run" },
  LabelCancelWindowExpired = { action = "skip", advice = "too late to cancel: the label stays bought" },
}

local function iso(t)
  if type(t) == "string" then return t end
  return os.date("!%Y-%m-%dT%H:%M:%SZ", floor(t))
end

local function bad(fn, msg) error("spapi.workflows.mfn." .. fn .. ": " .. msg, 3) end

-- an answer lost: no HTTP status, or a 5xx (it may or may not have been applied)
local function lost(err) return err.status == nil or err.status >= 500 end

local function amount(s) return tonumber(s and s.Rate and s.Rate.Amount) or math.huge end

local CHOOSERS = {
  cheapest = function(list)
    local best
    for _, s in ipairs(list) do
      if not best or amount(s) < amount(best) or (amount(s) == amount(best)
          and (s.LatestEstimatedDeliveryDate or "") < (best.LatestEstimatedDeliveryDate or "")) then
        best = s
      end
    end
    return best
  end,
  fastest = function(list)
    local best
    for _, s in ipairs(list) do
      local a, b = s.LatestEstimatedDeliveryDate or "~", best and (best.LatestEstimatedDeliveryDate or "~")
      if not best or a < b or (a == b and amount(s) < amount(best)) then best = s end
    end
    return best
  end,
}

local function check_opts(fn, opts, need_run)
  if type(opts) ~= "table" then bad(fn, "options must be a table") end
  if type(opts.journal) ~= "string" and not (type(opts.journal) == "table" and opts.journal.record) then
    bad(fn, "'journal' must be a file path or an opened spapi.journal (got " .. type(opts.journal) .. ")")
  end
  if not need_run then return end
  if type(opts.ship_from) ~= "table" then bad(fn, "'ship_from' must be a Merchant Fulfillment Address table") end
  if type(opts.package) ~= "table" and type(opts.package) ~= "function" then
    bad(fn, "'package' must be { PackageDimensions =, Weight = } or a function(order, items)")
  end
  local c = opts.choose
  if c ~= nil and type(c) ~= "function" and not CHOOSERS[c] then
    bad(fn, "'choose' must be \"cheapest\", \"fastest\" or a function (got " .. tostring(c) .. ")")
  end
  if opts.labels ~= nil and type(opts.labels) ~= "string" then bad(fn, "'labels' must be a directory path") end
  if opts.orders ~= nil and type(opts.orders) ~= "table" then bad(fn, "'orders' must be a list of AmazonOrderIds") end
  if opts.progress ~= nil and opts.progress ~= false and type(opts.progress) ~= "function" then
    bad(fn, "'progress' must be a function or false")
  end
end

local function amazon_error(step, err, action)
  return { step = step, code = err.code or (err.kind or "error"), message = err.message, action = action }
end

-- one order's run state
local function new_entry(id) return { order = id, errors = {}, notes = {} } end

-- Orders' view: { order = Order, items = OrderItems still to ship }
local function order_items(sp, opts, id)
  local body, err = sp.orders.getOrderItems({ orderId = id }, opts.orders_call)
  if not body then return nil, err end
  local items = {}
  for _, it in ipairs(body.payload.OrderItems or {}) do
    local left = (it.QuantityOrdered or 0) - (it.QuantityShipped or 0)
    if left > 0 then items[#items + 1] = { OrderItemId = it.OrderItemId, Quantity = left, item = it } end
  end
  return items
end

local function details(opts, order, items)
  local pkg = opts.package
  if type(pkg) == "function" then pkg = pkg(order, items) end
  if type(pkg) ~= "table" or type(pkg.PackageDimensions) ~= "table" or type(pkg.Weight) ~= "table" then
    error("spapi.workflows.mfn.run: 'package' must give { PackageDimensions =, Weight = } (order "
      .. order.AmazonOrderId .. ")", 0)
  end
  local list = {}
  for i, it in ipairs(items) do list[i] = { OrderItemId = it.OrderItemId, Quantity = it.Quantity } end
  return {
    AmazonOrderId = order.AmazonOrderId, ItemList = list, ShipFromAddress = opts.ship_from,
    PackageDimensions = pkg.PackageDimensions, Weight = pkg.Weight,
    ShippingServiceOptions = { DeliveryExperience = opts.delivery_experience or "DeliveryConfirmationWithoutSignature",
      CarrierWillPickUp = opts.carrier_will_pick_up == true, LabelFormat = opts.label_format },
  }
end

local function pick(opts, services, order, tried)
  local left = {}
  for _, s in ipairs(services) do if not tried[s.ShippingServiceId] then left[#left + 1] = s end end
  if #left == 0 then return nil end
  local c = opts.choose or "cheapest"
  if type(c) == "function" then
    local s = c(left, order)
    if type(s) == "string" then
      for _, x in ipairs(left) do if x.ShippingServiceId == s then return x end end
      error("spapi.workflows.mfn.run: 'choose' returned " .. s .. ", not one of the offered services", 0)
    end
    return s
  end
  return CHOOSERS[c](left)
end

-- the label file: <labels>/<AmazonOrderId>-<first 8 of the ShipmentId>.<pdf|png|zpl>
local function save_label(opts, e, shipment)
  local name = e.order .. "-" .. tostring(shipment.ShipmentId):sub(1, 8)
  local files, err = labels_mod.save(shipment, { dir = opts.labels or "labels", name = name })
  if not files then return nil, err end
  e.file = files[1].path
  return files[1].path
end

local function adopt(sp, e, err)
  local id = tostring(err.message or ""):match(UUID) or tostring(err.details or ""):match(UUID)
  if not id then return nil, err end
  local body, gerr = sp.merchant_fulfillment.getShipment{ shipmentId = id }
  if not body then return nil, gerr end
  e.notes[#e.notes + 1] = "label bought earlier: shipment " .. id
  return body.payload
end

local function shipment_result(s, file)
  return { ShipmentId = s.ShipmentId, TrackingId = s.TrackingId, file = file,
    ShippingServiceId = s.ShippingService and s.ShippingService.ShippingServiceId,
    ShippingServiceName = s.ShippingService and s.ShippingService.ShippingServiceName,
    CarrierName = s.ShippingService and s.ShippingService.CarrierName,
    ShipDate = s.ShippingService and s.ShippingService.ShipDate,
    Rate = s.ShippingService and s.ShippingService.Rate and s.ShippingService.Rate.Amount,
    items = s.ItemList }
end

local function fill(e, r)
  e.shipment, e.tracking, e.service, e.rate, e.file = r.ShipmentId, r.TrackingId, r.ShippingServiceId, r.Rate, r.file
end

-- The label step. → shipment result table | nil, err, action ("stop" stops the run)
local function buy_label(sp, opts, j, e, order)
  local id = e.order
  local je = j:get(id, "label")
  if je and je.state == "done" then
    local r = je.result
    if r.file and not fs.read(r.file) then r.file = nil end -- saved, then lost: fetch it again
    if not r.file then
      local body, err = sp.merchant_fulfillment.getShipment{ shipmentId = r.ShipmentId }
      if not body then return nil, err, lost(err) and "stop" or "skip" end
      local file, serr = save_label(opts, e, body.payload)
      if not file then return nil, serr, "stop" end
      r.file = file
      local ok, jerr = j:done(id, "label", r)
      if not ok then return nil, jerr, "stop" end
    end
    return r
  end

  local req, service, offer
  if je and je.state == "intent" then
    -- the answer was lost: the same request again, without the (maybe stale) offer
    req, service = je.data.details, je.data.service
    e.notes[#e.notes + 1] = "reconciling a createShipment whose answer was lost"
  else
    local items, err = order_items(sp, opts, id)
    if not items then return nil, err, lost(err) and "stop" or "skip" end
    if #items == 0 then
      e.notes[#e.notes + 1] = "nothing left to ship"
      return nil, nil, "nothing"
    end
    req = details(opts, order, items)
  end

  local tried, requotes, format_retry = {}, 0, false
  local max_requotes = opts.requotes or 2
  local services
  while true do
    if not service then
      local body, err = sp.merchant_fulfillment.getEligibleShipmentServices{ body = { ShipmentRequestDetails = req } }
      if not body then
        local m = _M.ERRORS[err.code]
        return nil, err, lost(err) and "stop" or (m and m.action == "stop" and "stop" or "skip")
      end
      services = body.payload.ShippingServiceList or {}
      local s = pick(opts, services, order, tried)
      if not s then
        return nil, { code = "NoShippingService", message = "no eligible shipping service is left for the order" }, "skip"
      end
      service, offer = s.ShippingServiceId, s.ShippingServiceOfferId
    end
    local ok, jerr = j:intent(id, "label", { details = req, service = service, offer = offer })
    if not ok then return nil, jerr, "stop" end
    local body, err = sp.merchant_fulfillment.createShipment{ body = {
      ShipmentRequestDetails = req, ShippingServiceId = service, ShippingServiceOfferId = offer } }
    local shipment
    if body then
      shipment = body.payload
    elseif lost(err) then
      return nil, err, "stop" -- the journal keeps the intent: the next run reconciles
    else
      -- handled errors become notes; the ones that end the order's label go to errors
      local m = _M.ERRORS[err.code] or { action = "skip" }
      local note = tostring(err.code) .. ": " .. tostring(m.advice)
      if m.action == "adopt" then
        local s, aerr = adopt(sp, e, err)
        if not s then
          e.errors[#e.errors + 1] = amazon_error("label", err, m.action)
          j:failed(id, "label", { { code = err.code, message = err.message } })
          return nil, aerr, lost(aerr) and "stop" or "skip"
        end
        shipment = s
      elseif m.action == "requote" and requotes < max_requotes then
        requotes = requotes + 1
        service, offer = nil, nil
        e.notes[#e.notes + 1] = note
      elseif m.action == "next" then
        tried[service] = true
        service, offer = nil, nil
        e.notes[#e.notes + 1] = note
      elseif m.action == "format" and not format_retry then
        format_retry = true
        req.ShippingServiceOptions.LabelFormat = nil
        e.notes[#e.notes + 1] = note
      else
        e.errors[#e.errors + 1] = amazon_error("label", err, m.action)
        local fok, ferr = j:failed(id, "label", { { code = err.code, message = err.message } }, m.advice)
        if not fok then return nil, ferr, "stop" end
        return nil, err, m.action == "stop" and "stop" or "skip"
      end
    end
    if shipment then
      local r = shipment_result(shipment)
      local dok, derr = j:done(id, "label", r)
      if not dok then return nil, derr, "stop" end
      local file, serr = save_label(opts, e, shipment)
      if not file then return nil, serr, "stop" end
      r.file = file
      dok, derr = j:done(id, "label", r)
      if not dok then return nil, derr, "stop" end
      return r
    end
  end
end

-- The confirm step: Orders' confirmShipment with the label's package.
local function confirm(sp, opts, j, e, order, r)
  local id = e.order
  if j:state(id, "confirm") == "done" then return true end
  local items = {}
  for i, it in ipairs(r.items or {}) do items[i] = { orderItemId = it.OrderItemId, quantity = it.Quantity } end
  -- carrierCode: the carrier's name without marks ("UPS®" → "UPS")
  local code = r.CarrierName and (r.CarrierName:gsub("[^%w%s%-]", "")) or "Other"
  local pkg = { packageReferenceId = r.ShipmentId, carrierCode = code, carrierName = r.CarrierName,
    shippingMethod = r.ShippingServiceName, trackingNumber = r.TrackingId, shipDate = r.ShipDate or iso(os.time()),
    orderItems = items }
  local ok, jerr = j:intent(id, "confirm", { packageReferenceId = r.ShipmentId })
  if not ok then return nil, jerr, "stop" end
  local body, err = sp.orders.confirmShipment{ orderId = id,
    body = { marketplaceId = order.MarketplaceId or opts.marketplace or US, packageDetail = pkg } }
  if not body then
    if lost(err) then return nil, err, "stop" end
    e.errors[#e.errors + 1] = amazon_error("confirm", err, "skip")
    j:failed(id, "confirm", { { code = err.code, message = err.message } })
    return nil, err, "skip"
  end
  ok, jerr = j:done(id, "confirm")
  if not ok then return nil, jerr, "stop" end
  return true
end

-- The orders to work on: the unshipped MFN orders, plus the journal's unfinished ones.
local function collect(sp, opts, j, prog)
  local list, seen = {}, {}
  local function add(o) if not seen[o.AmazonOrderId] then seen[o.AmazonOrderId] = true; list[#list + 1] = o end end
  if opts.orders then
    for _, id in ipairs(opts.orders) do
      local body, err = sp.orders.getOrder({ orderId = id }, opts.orders_call)
      if not body then return nil, err end
      add(body.payload)
    end
  else
    local pages = 0
    for page, err in sp:pages("orders.getOrders", { MarketplaceIds = { opts.marketplace or US },
        CreatedAfter = iso(opts.created_after or (os.time() - 7 * 86400)),
        OrderStatuses = { "Unshipped", "PartiallyShipped" }, FulfillmentChannels = { "MFN" } }, opts.orders_call) do
      if not page then return nil, err end
      pages = pages + 1
      for _, o in ipairs(page.payload.Orders or {}) do add(o) end
      prog:update(#list, fmt("orders, %d page%s", pages, pages == 1 and "" or "s"))
    end
  end
  for _, id in ipairs(j:orders()) do
    if not seen[id] and (j:state(id, "label") == "intent"
        or (j:state(id, "label") == "done" and j:state(id, "confirm") ~= "done" and opts.confirm ~= false))
        and j:state(id, "cancel") ~= "done" then
      local body, err = sp.orders.getOrder({ orderId = id }, opts.orders_call)
      if not body then return nil, err end
      add(body.payload)
    end
  end
  return list
end

-- the run itself, with the journal locked
local function run(sp, opts, j)
  local listing = opts.progress == false and progress_mod.quiet{ label = "mfn orders" }
    or progress_mod.new{ label = "mfn orders", callback = opts.progress or nil }
  local orders, err = collect(sp, opts, j, listing)
  listing:finish()
  if not orders then return nil, err end
  local report = { ok = true, orders = {}, by_order = {} }
  local prog = opts.progress == false and progress_mod.quiet{ label = "mfn labels", total = #orders }
    or progress_mod.new{ label = "mfn labels", total = #orders, callback = opts.progress or nil }
  for i, order in ipairs(orders) do
    local e = new_entry(order.AmazonOrderId)
    e.status = order.OrderStatus
    report.orders[#report.orders + 1] = e
    report.by_order[e.order] = e
    if j:state(e.order, "cancel") == "done" then
      e.label = "cancelled"
    else
      local r, lerr, action = buy_label(sp, opts, j, e, order)
      if r then
        e.label = "done"
        fill(e, r)
        if opts.confirm ~= false then
          local ok, cerr, caction = confirm(sp, opts, j, e, order, r)
          e.confirm = ok and "done" or (caction == "stop" and "pending" or "failed")
          if not ok and caction == "stop" then report.stopped = cerr end
        end
      elseif action == "nothing" then
        e.label = "skipped"
      else
        e.label = action == "stop" and (j:state(e.order, "label") == "intent" and "pending" or "failed") or "failed"
        if lerr and not lerr.step and #e.errors == 0 then
          e.errors[1] = amazon_error("label", lerr, action)
        end
        if action == "stop" then report.stopped = lerr end
      end
    end
    if e.label == "failed" or e.label == "pending" or e.confirm == "failed" or e.confirm == "pending" then
      report.ok = false
    end
    prog:update(i, e.order .. " " .. tostring(e.label))
    if report.stopped then break end
  end
  prog:finish(report.stopped and "stopped" or nil)
  return report
end

-- fn(j) with the journal opened and locked (one run at a time per journal);
-- the lock is released whatever happens (a callback may raise)
local function with_journal(journal, fn)
  local j, err = journal, nil
  if type(j) == "string" then
    j, err = journal_mod.open(j, { lock = true })
    if not j then return nil, err end
  elseif not j.locked then
    local ok, lerr = j:lock()
    if not ok then return nil, lerr end
  end
  local res = { pcall(fn, j) }
  j:unlock()
  if not res[1] then error(res[2], 0) end
  return res[2], res[3]
end

function _M.run(sp, opts)
  check_opts("run", opts, true)
  local ok, derr = fs.mkdir(opts.labels or "labels")
  if not ok then return nil, errors.new{ kind = "label", code = "LabelDirectory", message = derr } end
  opts = setmetatable({ orders_call = opts.rdt == false and { rdt = false } or nil }, { __index = opts })
  return with_journal(opts.journal, function(j) return run(sp, opts, j) end)
end

--- mfn.cancel(client, { journal =, order = }) → the Shipment (RefundPending) | nil, err
-- Cancels (refunds) the label the journal holds for the order, within the carrier's
-- window (LabelCancelWindowExpired after it). A cancelled order is left alone by
-- later runs (its label step stays in the journal, its cancel step is done).
function _M.cancel(sp, opts)
  check_opts("cancel", opts, false)
  if type(opts.order) ~= "string" or opts.order == "" then bad("cancel", "'order' must be an AmazonOrderId") end
  return with_journal(opts.journal, function(j)
    local je = j:get(opts.order, "label")
    if not je or je.state ~= "done" then
      return nil, errors.new{ kind = "workflow", code = "NoLabel",
        message = "the journal holds no bought label for order " .. opts.order }
    end
    local ok, err = j:intent(opts.order, "cancel", { ShipmentId = je.result.ShipmentId })
    if not ok then return nil, err end
    local body
    body, err = sp.merchant_fulfillment.cancelShipment{ shipmentId = je.result.ShipmentId }
    if not body then
      if not lost(err) then
        local m = _M.ERRORS[err.code]
        j:failed(opts.order, "cancel", { { code = err.code, message = err.message } }, m and m.advice or nil)
      end
      return nil, err
    end
    ok, err = j:done(opts.order, "cancel", { Status = body.payload.Status })
    if not ok then return nil, err end
    return body.payload
  end)
end

--- One line about a report entry.
function _M.describe(e)
  local parts = { e.order, "label=" .. tostring(e.label) }
  if e.confirm then parts[#parts + 1] = "confirm=" .. e.confirm end
  if e.service then parts[#parts + 1] = e.service .. (e.rate and (" " .. tostring(e.rate)) or "") end
  if e.tracking then parts[#parts + 1] = "tracking " .. e.tracking end
  if e.file then parts[#parts + 1] = "-> " .. e.file end
  for _, x in ipairs(e.errors) do
    parts[#parts + 1] = fmt("[%s %s: %s]", x.step, tostring(x.code), tostring(x.message))
  end
  return concat(parts, " ")
end

return _M
