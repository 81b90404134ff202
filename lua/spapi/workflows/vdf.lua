-- spapi.workflows.vdf — Vendor Direct Fulfillment, the whole day in one call:
-- every NEW purchase order of a window is acknowledged (accept or reject per line
-- through a callback), labelled (the label is fetched if it exists, bought if not,
-- and saved as its file), confirmed as shipped, and invoiced once the confirmation
-- has gone through — exactly once across crashes and re-runs.
--
--   local vdf = require "spapi.workflows.vdf"
--   local report, err = vdf.run(sp, { journal = "vdf.journal", labels = "labels",
--     created_after = os.time() - 86400 })
--   for _, o in ipairs(report.orders) do print(vdf.describe(o)) end
--
-- vdf.run(client, opts) → report | nil, err (nil only when the run could not begin:
-- the journal is locked by another run, unreadable or corrupt, the label directory
-- cannot be made, or the purchase orders could not be fetched).
-- opts:
--   journal          path of the journal file (spapi.journal), or an opened journal. Required.
--                    The run holds the journal's lock: a second run on it at the same
--                    time gets nil, err (JournalLocked) instead of sending anything twice.
--   labels           directory the label files go to (default "labels"; made if missing)
--   created_after    start of the window (Unix seconds or ISO-8601; default now - 24 h)
--   created_before   end of the window (default now)
--   ship_from        only purchase orders of this warehouse (shipFromPartyId)
--   acknowledge      function(order, item) → true (accept the line), a number (accept
--                    that many), false or 0 (reject it)[, code]. An acknowledgement is per
--                    purchase order: a rejected line rejects the order, with the code
--                    the callback gave (default "03", "Canceled out of stock"). Default:
--                    accept every line in full.
--   vendor_order_number  function(order) → your order number (default the PO number)
--   invoice_number   function(order) → the invoice number (default "INV-" .. PO number).
--                    Keep it a function of the order: it is how a lost invoice is recognised.
--   remit_to         PartyIdentification for the invoices ({ partyId =, address = }), or
--                    function(order) → one (default { partyId = the order's selling party })
--   label_request    function(order) → extra fields of the createShippingLabels body
--                    (e.g. containers); sellingParty and shipFromParty are filled in
--   containers       function(order, label) → the shipment confirmation's containers (optional;
--                    label = { files = { paths }, tracking = { tracking numbers } })
--   wait             seconds to wait for a stage's transactions (default 900); what has
--                    not settled by then is reported pending and settled by the next run
--   reconcile_wait   seconds after a lost submission during which the order's state may
--                    still change (default 900: Amazon's "up to 15 minutes")
--   poll             first poll interval in seconds (default 0.25), doubling up to poll_max (default 30)
--   progress         function(ev) for every wait (see spapi.progress); false: no progress line
--   max_orders       stop fetching after this many NEW orders (default: all pages)
--   page_size        purchase orders per page of getOrders (1..100, default Amazon's)
--
-- Exactly once: submissions go one at a time; before each the journal records an intent
-- (an fsync'd write), then the transaction id, then the outcome. A re-run takes the NEW purchase
-- orders of the window plus the journal's unfinished orders (their state read again with
-- getOrder) and, per step:
--   done            skipped;
--   sent            the transaction is asked for its outcome, nothing is re-sent;
--   intent          (the answer was lost; also "sent" without a transaction id) reconciled first: an acknowledgement or a
--                   confirmation counts as done when the order's status shows it; while the
--                   order has not moved and reconcile_wait has not passed since the intent,
--                   the order is watched; after that the submission is sent again. A label
--                   is looked for with getShippingLabel before any is bought. An invoice has
--                   no state to read: it is sent again with the same invoice number, and
--                   Amazon's "already submitted" answer to that re-send confirms the first;
--   failed, none    sent (a refusal applied nothing).
-- A submission whose answer is lost stops the run (report.stopped): re-run to reconcile.
--
-- The report: { ok = bool, stopped = err|nil, orders = { entry... }, by_po = { [po] = entry } },
-- entry = { po, status (Amazon's orderStatus as last seen), ack, label, confirm, invoice
-- (each "done" | "failed" | "pending" | "rejected" | nil for not reached), files (saved
-- labels), errors = { { step, code, message } } (Amazon's errors), notes = { ... } }.
local _M = {}

local journal_mod = require "spapi.journal"
local labels_mod = require "spapi.labels"
local progress_mod = require "spapi.progress"
local clock = require "spapi.clock"
local errors = require "spapi.errors"
local fs = require "spapi.fs"

local type, ipairs, pairs, tostring, tonumber, error = type, ipairs, pairs, tostring, tonumber, error
local setmetatable, getmetatable = setmetatable, getmetatable
local fmt, floor, min, concat = string.format, math.floor, math.min, table.concat

local STEPS = { "ack", "label", "confirm", "invoice" }
_M.STEPS = STEPS

local function iso(t)
  if type(t) == "string" then return t end
  return os.date("!%Y-%m-%dT%H:%M:%SZ", floor(t))
end

local function bad(msg) error("spapi.workflows.vdf.run: " .. msg, 3) end

local function check_opts(sp, opts)
  if type(sp) ~= "table" or type(sp.call) ~= "function" then bad("'client' must be an spapi client") end
  if type(opts) ~= "table" then bad("'opts' must be a table") end
  if type(opts.journal) ~= "string" and getmetatable(opts.journal) ~= journal_mod.Journal then
    bad("'opts.journal' must be the journal's path (a string) or an opened spapi.journal")
  end
  for _, k in ipairs({ "acknowledge", "vendor_order_number", "invoice_number", "label_request", "containers" }) do
    if opts[k] ~= nil and type(opts[k]) ~= "function" then
      bad(fmt("'opts.%s' must be a function (got %s)", k, type(opts[k])))
    end
  end
  for _, k in ipairs({ "wait", "reconcile_wait", "poll", "poll_max", "max_orders", "page_size" }) do
    if opts[k] ~= nil and (type(opts[k]) ~= "number" or opts[k] < 0) then
      bad(fmt("'opts.%s' must be a number >= 0 (got %s)", k, tostring(opts[k])))
    end
  end
  for _, k in ipairs({ "created_after", "created_before" }) do
    if opts[k] ~= nil and type(opts[k]) ~= "number" and type(opts[k]) ~= "string" then
      bad(fmt("'opts.%s' must be Unix seconds or an ISO-8601 string (got %s)", k, type(opts[k])))
    end
  end
  if opts.labels ~= nil and type(opts.labels) ~= "string" then bad("'opts.labels' must be a directory path") end
  if opts.ship_from ~= nil and type(opts.ship_from) ~= "string" then bad("'opts.ship_from' must be a string") end
  if opts.remit_to ~= nil and type(opts.remit_to) ~= "table" and type(opts.remit_to) ~= "function" then
    bad("'opts.remit_to' must be a PartyIdentification table or a function")
  end
  if opts.progress ~= nil and opts.progress ~= false and type(opts.progress) ~= "function" then
    bad("'opts.progress' must be a function or false")
  end
end

---------------------------------------------------------------------------
-- the run's state: client, options, journal, orders, report
---------------------------------------------------------------------------
local Run = {}
Run.__index = Run

function Run:progress(label, total)
  if self.opts.progress == false then return progress_mod.new{ label = label, total = total, tty = false } end
  return progress_mod.new{ label = label, total = total, callback = self.opts.progress }
end

function Run:entry(po)
  local e = self.report.by_po[po]
  if not e then
    e = { po = po, errors = {}, notes = {} }
    self.report.by_po[po] = e
    self.report.orders[#self.report.orders + 1] = e
  end
  return e
end

function Run:note(po, msg) local n = self:entry(po).notes; n[#n + 1] = msg end

function Run:amazon_errors(po, step, list, err)
  local e = self:entry(po).errors
  if type(list) == "table" and #list > 0 then
    for _, x in ipairs(list) do e[#e + 1] = { step = step, code = x.code, message = x.message } end
  elseif err then
    e[#e + 1] = { step = step, code = err.code, message = err.message or tostring(err) }
  end
end

function Run:mark(po, step, state) self:entry(po)[step] = state end

-- stop the run (first reason wins)
function Run:stop(err)
  if not self.report.stopped then self.report.stopped = err end
end

function Run:jwrite(ok, err)
  if not ok then self:stop(err) end
  return ok
end

-- An error the client gave for a submission: was the answer lost (it may have been
-- applied), or did the request surely change nothing (Amazon refused it with a 4xx,
-- or it was never sent: rate-limit wait, connect/DNS failure after retries)?
local function lost(err)
  if err.maybe_applied ~= nil then return err.maybe_applied end
  if err.status then return err.status >= 500 end
  return err.kind ~= "ratelimit"
end

function Run:sleep(s) if s > 0 then clock.sleep(s) end end

---------------------------------------------------------------------------
-- the work set: NEW purchase orders of the window + the journal's unfinished ones
---------------------------------------------------------------------------
local function finished(j, po)
  local ack = j:get(po, "ack")
  if ack and ack.state == "done" and ack.data and ack.data.rejected then return true end
  local inv = j:get(po, "invoice")
  return inv ~= nil and inv.state == "done"
end

function Run:fetch()
  local opts, now = self.opts, clock.now()
  local params = { status = "NEW", createdAfter = iso(opts.created_after or (now - 86400)),
    createdBefore = iso(opts.created_before or now), shipFromPartyId = opts.ship_from, limit = opts.page_size }
  local p = self:progress("purchase orders")
  local n = 0
  for page, err in self.sp:pages("vendor_df_orders.getOrders", params) do
    if not page then p:finish("failed"); return nil, err end
    for _, o in ipairs(page.orders or {}) do
      if not self.orders[o.purchaseOrderNumber] then
        self.orders[o.purchaseOrderNumber] = o
        self.order_list[#self.order_list + 1] = o.purchaseOrderNumber
        n = n + 1
      end
      if opts.max_orders and n >= opts.max_orders then break end
    end
    p:update(n, "NEW")
    if opts.max_orders and n >= opts.max_orders then break end
  end
  -- the journal's unfinished orders, as Amazon sees them now
  local rest = {}
  for _, po in ipairs(self.j:orders()) do
    if not self.orders[po] and not finished(self.j, po) then rest[#rest + 1] = po end
  end
  for _, po in ipairs(rest) do
    local o, err = self:get_order(po)
    if not o then
      self:amazon_errors(po, "ack", nil, err)
      if not err.status then p:finish("failed"); return nil, err end -- the network, not the order
    else
      self.order_list[#self.order_list + 1] = po
    end
  end
  p:finish(fmt("%d NEW, %d from the journal", n, #rest))
  return true
end

function Run:get_order(po)
  local o, err = self.sp:call("vendor_df_orders.getOrder", { purchaseOrderNumber = po })
  if not o then return nil, err end
  self.orders[po] = o
  return o
end

function Run:status(po)
  local o = self.orders[po]
  local s = o and o.orderDetails and o.orderDetails.orderStatus
  self:entry(po).status = s
  return s
end

---------------------------------------------------------------------------
-- transactions: wait for many at once, bounded, with progress
---------------------------------------------------------------------------
-- list: { { po=, step=, txn= } }; returns nothing; journal and report updated.
-- on_success(po) runs for each that succeeded (e.g. to set the order's new status).
function Run:settle(label, list, on_success, on_failure)
  if #list == 0 then return end
  local p = self:progress(label, #list)
  local deadline = clock.monotonic() + (self.opts.wait or 900)
  local pending, done = list, 0
  local interval = self.opts.poll or 0.25
  local tally = { Success = 0, Failure = 0 }
  while #pending > 0 do
    local calls = {}
    for i, x in ipairs(pending) do
      calls[i] = { "vendor_df_transactions.getTransactionStatus", { transactionId = x.txn } }
    end
    local results, still, changes = self.sp:batch(calls), {}, {}
    for i, r in ipairs(results) do
      local x = pending[i]
      local st = r.ok and r.body.transactionStatus
      if st and st.status == "Success" then
        changes[#changes + 1] = { order = x.po, step = x.step, state = "done", result = { status = "Success" } }
        tally.Success = tally.Success + 1
        self:mark(x.po, x.step, "done")
        if on_success then on_success(x.po) end
      elseif st and st.status == "Failure" then
        local errs = st.errors and st.errors.errors or {}
        if not (on_failure and on_failure(x.po, errs, changes)) then
          changes[#changes + 1] = { order = x.po, step = x.step, state = "failed", errors = errs }
          tally.Failure = tally.Failure + 1
          self:mark(x.po, x.step, "failed")
          self:amazon_errors(x.po, x.step, errs)
        else
          tally.Success = tally.Success + 1
        end
      else
        if not r.ok and not x.reported and r.err.status and r.err.status < 500 and r.err.status ~= 429 then
          -- the transaction is unknown to Amazon (yet): say so once, keep asking
          x.reported = true
          self:amazon_errors(x.po, x.step, nil, r.err)
        end
        still[#still + 1] = x
      end
    end
    if #changes > 0 and not self:jwrite(self.j:record(changes)) then break end
    done = #list - #still
    pending = still
    local left = deadline - clock.monotonic()
    p:update(done, fmt("%d Success, %d Failure, %d Processing", tally.Success, tally.Failure, #pending))
    if #pending == 0 or left <= 0 then break end
    self:sleep(min(interval, left))
    interval = min(interval * 2, self.opts.poll_max or 30)
  end
  for _, x in ipairs(pending) do
    self:mark(x.po, x.step, "pending")
    self:note(x.po, x.step .. ": transaction " .. x.txn .. " still processing; the next run settles it")
  end
  p:finish(fmt("%d Success, %d Failure, %d Processing", tally.Success, tally.Failure, #pending))
end

-- Watch orders (answer lost, status unchanged) until their status moves away from
-- `from` or their reconcile window closes. → list of POs still at `from`.
function Run:watch(label, list, from)
  if #list == 0 then return list end
  local p = self:progress(label, #list)
  local rw = self.opts.reconcile_wait or 900
  local interval = self.opts.poll or 0.25
  local hard = clock.monotonic() + (self.opts.wait or 900)
  local pending, out = list, {}
  while #pending > 0 do
    local now, still = clock.now(), {}
    for _, x in ipairs(pending) do
      local o = self:get_order(x.po)
      if not o then
        still[#still + 1] = x -- its state is unknown: never re-send on a guess
      elseif self:status(x.po) ~= from then
        -- moved: the lost submission did arrive
      elseif now >= x.since + rw then
        out[#out + 1] = x.po -- window closed: it never took effect
      else
        still[#still + 1] = x
      end
    end
    pending = still
    p:update(#list - #pending)
    if #pending == 0 or clock.monotonic() >= hard then break end
    self:sleep(interval)
    interval = min(interval * 2, self.opts.poll_max or 30)
  end
  for _, x in ipairs(pending) do
    self:mark(x.po, x.step, "pending")
    self:note(x.po, x.step .. ": the answer was lost; the order has not changed yet — the next run decides")
  end
  p:finish()
  return out
end

-- Send one request per order, one after the other, each journaled: its intent is
-- on disk before it goes out and its answer right after it comes back, so a crash
-- leaves at most one submission of unknown outcome. (Amazon's DF submit operations
-- allow 10 requests a second: the rate limit, not concurrency, sets the pace.)
-- items: { { po=, data=, call = { "api.op", params } } }; answer(po, body) → txn (or nil).
-- → list of { po=, step=, txn= } sent (for settle), and the answers' bodies by po.
-- A lost answer stops the run at once: nothing more is sent.
function Run:submit(step, label, items, answer)
  local sent, bodies = {}, {}
  if #items == 0 or self.report.stopped then return sent, bodies end
  local p = self:progress(label, #items)
  for i, x in ipairs(items) do
    local po = x.po
    if not self:jwrite(self.j:record{ { order = po, step = step, state = "intent", data = x.data } }) then break end
    local body, err = self.sp:call(x.call[1], x.call[2])
    if body then
      local txn = answer(po, body)
      bodies[po] = body
      sent[#sent + 1] = { po = po, step = step, txn = txn }
      if not self:jwrite(self.j:sent(po, step, txn)) then break end
    elseif lost(err) then
      -- it may have been applied: the intent stays for the next run to reconcile
      self:mark(po, step, "pending")
      self:note(po, step .. ": the answer was lost (" .. tostring(err) .. "); re-run to reconcile")
      self:stop(err)
      break
    else
      self:mark(po, step, "failed")
      self:amazon_errors(po, step, err.errors, err)
      if not self:jwrite(self.j:failed(po, step, err.errors or { { code = err.code, message = err.message } })) then
        break
      end
    end
    p:update(i)
  end
  p:finish()
  return sent, bodies
end

---------------------------------------------------------------------------
-- the steps
---------------------------------------------------------------------------
local function details(o) return o.orderDetails end

-- the acknowledgement of one order, from the callback → data, body
function Run:decide(po)
  local o, d = self.orders[po], details(self.orders[po])
  local decide = self.opts.acknowledge
  local lines, rejected, code = {}, false, nil
  for _, it in ipairs(d.items) do
    local qty = it.orderedQuantity.amount
    local v, c = true, nil
    if decide then v, c = decide(o, it) end
    if v == nil then v = true end
    if v == false or v == 0 then
      rejected, code = true, code or c
      qty = 0
    elseif type(v) == "number" then
      if v ~= floor(v) or v < 0 or v > it.orderedQuantity.amount then
        error(fmt("spapi.workflows.vdf: acknowledge returned %s for item %s of %s (0..%d expected)",
          tostring(v), tostring(it.itemSequenceNumber), po, it.orderedQuantity.amount), 0)
      end
      qty = v
    elseif v ~= true then
      error(fmt("spapi.workflows.vdf: acknowledge must return true, false or a quantity (got %s for %s)",
        type(v), po), 0)
    end
    lines[it.itemSequenceNumber] = qty
  end
  code = rejected and (code or "03") or "00"
  local data = { rejected = rejected, code = code, lines = lines }
  local items = {}
  for i, it in ipairs(d.items) do
    items[i] = { itemSequenceNumber = it.itemSequenceNumber, buyerProductIdentifier = it.buyerProductIdentifier,
      vendorProductIdentifier = it.vendorProductIdentifier,
      acknowledgedQuantity = { amount = rejected and it.orderedQuantity.amount or lines[it.itemSequenceNumber],
                               unitOfMeasure = it.orderedQuantity.unitOfMeasure or "Each" } }
  end
  local von = self.opts.vendor_order_number and self.opts.vendor_order_number(o) or po
  local body = { orderAcknowledgements = { {
    purchaseOrderNumber = po, vendorOrderNumber = von, acknowledgementDate = iso(clock.now()),
    acknowledgementStatus = { code = code, description = not rejected and "Shipping 100 percent of ordered product"
      or (code == "03" and "Canceled out of stock" or "Canceled") },
    sellingParty = d.sellingParty, shipFromParty = d.shipFromParty, itemAcknowledgements = items } } }
  return data, body
end

local MOVED = { ACCEPTED = true, SHIPPED = true, CANCELLED = true }

-- a submission of unknown outcome: its answer was lost (intent), or it came without
-- the transaction id that would tell (sent, no txn)
local function uncertain(e)
  return e ~= nil and (e.state == "intent" or (e.state == "sent" and not e.txn))
end
local WHAT = { ack = "acknowledgement", confirm = "confirmation" }

-- A step that cannot go on: refused before and the order has since moved on
-- without it (or is in no state for it). Reported with Amazon's earlier errors;
-- nothing is sent.
function Run:stuck(po, step, e, status)
  self:mark(po, step, "failed")
  if e and e.errors then self:amazon_errors(po, step, e.errors) end
  self:note(po, fmt("%s: not sent: the order is %s", step, tostring(status)))
end

-- a lost submission that the order's status shows took effect
function Run:reconciled(po, step, status)
  self:jwrite(self.j:done(po, step, nil, "reconciled: the order is " .. status))
  local e = self.j:get(po, step)
  self:mark(po, step, (step == "ack" and e.data and e.data.rejected) and "rejected" or "done")
  self:note(po, fmt("%s: the lost %s had arrived (order %s)", step, WHAT[step], status))
end

function Run:step_ack()
  local j, sends, settle, watch = self.j, {}, {}, {}
  for _, po in ipairs(self.order_list) do
    local e, s = j:get(po, "ack"), self:status(po)
    if e and e.state == "done" then
      self:mark(po, "ack", e.data and e.data.rejected and "rejected" or "done")
    elseif e and e.state == "sent" and e.txn then
      settle[#settle + 1] = { po = po, step = "ack", txn = e.txn }
    elseif uncertain(e) and MOVED[s] then
      self:reconciled(po, "ack", s)
    elseif uncertain(e) then
      watch[#watch + 1] = { po = po, step = "ack", since = e.intent_at or 0 }
    elseif s == "NEW" then
      sends[#sends + 1] = po
    elseif not e and MOVED[s] then
      self:note(po, "ack: acknowledged outside this journal (order " .. tostring(s) .. ")")
    else
      self:stuck(po, "ack", e, s)
    end
  end
  for _, po in ipairs(self:watch("lost acknowledgements", watch, "NEW")) do sends[#sends + 1] = po end
  for _, x in ipairs(watch) do
    if MOVED[self:status(x.po)] then self:reconciled(x.po, "ack", self:status(x.po)) end
  end
  local items = {}
  for i, po in ipairs(sends) do
    local data, body = self:decide(po)
    items[i] = { po = po, data = data, call = { "vendor_df_orders.submitAcknowledgement", { body = body } } }
  end
  local sent = self:submit("ack", "sending acknowledgements", items, function(_, body) return body.transactionId end)
  for _, x in ipairs(sent) do settle[#settle + 1] = x end
  self:settle("acknowledgements", settle, function(po)
    local data = (j:get(po, "ack") or {}).data or {}
    local d = details(self.orders[po])
    d.orderStatus = data.rejected and "CANCELLED" or "ACCEPTED"
    if data.rejected then self:mark(po, "ack", "rejected") end
  end)
end

-- the label files of an order: from getShippingLabel if Amazon has one, else bought
function Run:step_label()
  local j, dir = self.j, self.opts.labels or "labels"
  local todo = {}
  for _, po in ipairs(self.order_list) do
    local a, e = j:get(po, "ack"), j:get(po, "label")
    if e and e.state == "done" then
      self:mark(po, "label", "done")
      self:entry(po).files = e.result and e.result.files
    elseif a and a.state == "done" and not (a.data and a.data.rejected) then
      todo[#todo + 1] = po
    end
  end
  if #todo == 0 or self.report.stopped then return end
  -- 1. labels Amazon already has (a lost answer, or a label saved before a crash)
  local gets = {}
  for i, po in ipairs(todo) do
    gets[i] = { "vendor_df_shipping.getShippingLabel", { purchaseOrderNumber = po } }
  end
  local p = self:progress("labels", #todo)
  local have, buy = {}, {}
  for i, r in ipairs(self.sp:batch(gets)) do
    local po = todo[i]
    if r.ok then have[po] = r.body
    elseif r.err.status == 404 then buy[#buy + 1] = po
    else
      self:mark(po, "label", "failed")
      self:amazon_errors(po, "label", r.err.errors, r.err)
      if not r.err.status then self:stop(r.err) end
    end
  end
  -- 2. buy the rest
  local items = {}
  for i, po in ipairs(buy) do
    local d = details(self.orders[po])
    local body = self.opts.label_request and self.opts.label_request(self.orders[po]) or {}
    body.sellingParty, body.shipFromParty = d.sellingParty, d.shipFromParty
    items[i] = { po = po, call = { "vendor_df_shipping.createShippingLabels", { purchaseOrderNumber = po, body = body } } }
  end
  local _, bought = self:submit("label", "buying labels", items, function() return nil end)
  for po, body in pairs(bought) do have[po] = body end
  -- 3. save them
  local n, changes = 0, {}
  for _, po in ipairs(todo) do
    local label = have[po]
    if label then
      local files, err = labels_mod.save(label, { dir = dir })
      if files then
        local result = { files = {}, tracking = {} }
        for i, f in ipairs(files) do result.files[i] = f.path; result.tracking[i] = f.tracking end
        changes[#changes + 1] = { order = po, step = "label", state = "done", result = result }
        self:mark(po, "label", "done")
        self:entry(po).files = result.files
      else
        -- bought but not saved: "sent" — the next run fetches it with getShippingLabel
        changes[#changes + 1] = { order = po, step = "label", state = "sent", note = tostring(err) }
        self:mark(po, "label", "failed")
        self:amazon_errors(po, "label", nil, err)
      end
      n = n + 1
      p:update(n)
    end
  end
  if #changes > 0 then self:jwrite(j:record(changes)) end
  p:finish()
end

function Run:step_confirm()
  local j, sends, settle, watch = self.j, {}, {}, {}
  for _, po in ipairs(self.order_list) do
    local l, e, s = j:get(po, "label"), j:get(po, "confirm"), self:status(po)
    if e and e.state == "done" then
      self:mark(po, "confirm", "done")
    elseif e and e.state == "sent" and e.txn then
      settle[#settle + 1] = { po = po, step = "confirm", txn = e.txn }
    elseif uncertain(e) and s == "SHIPPED" then
      self:reconciled(po, "confirm", s)
    elseif uncertain(e) then
      watch[#watch + 1] = { po = po, step = "confirm", since = e.intent_at or 0 }
    elseif l and l.state == "done" and s == "ACCEPTED" then
      sends[#sends + 1] = po
    elseif l and l.state == "done" then
      self:stuck(po, "confirm", e, s)
    end
  end
  for _, po in ipairs(self:watch("lost confirmations", watch, "ACCEPTED")) do sends[#sends + 1] = po end
  for _, x in ipairs(watch) do
    if self:status(x.po) == "SHIPPED" then self:reconciled(x.po, "confirm", "SHIPPED") end
  end
  local items = {}
  for i, po in ipairs(sends) do
    local o, d = self.orders[po], details(self.orders[po])
    local lines = ((j:get(po, "ack") or {}).data or {}).lines or {}
    local list = {}
    for _, it in ipairs(d.items) do
      local q = lines[it.itemSequenceNumber] or it.orderedQuantity.amount
      if q > 0 then
        list[#list + 1] = { itemSequenceNumber = tonumber(it.itemSequenceNumber), buyerProductIdentifier =
          it.buyerProductIdentifier, vendorProductIdentifier = it.vendorProductIdentifier,
          shippedQuantity = { amount = q, unitOfMeasure = it.orderedQuantity.unitOfMeasure or "Each" } }
      end
    end
    local c = { purchaseOrderNumber = po, sellingParty = d.sellingParty, shipFromParty = d.shipFromParty, items = list,
      shipmentDetails = { shippedDate = iso(clock.now()), shipmentStatus = "SHIPPED",
        isPriorityShipment = d.shipmentDetails and d.shipmentDetails.isPriorityShipment,
        vendorOrderNumber = self.opts.vendor_order_number and self.opts.vendor_order_number(o) or po } }
    if self.opts.containers then c.containers = self.opts.containers(o, (j:get(po, "label") or {}).result) end
    items[i] = { po = po, call = { "vendor_df_shipping.submitShipmentConfirmations",
      { body = { shipmentConfirmations = { c } } } } }
  end
  local sent = self:submit("confirm", "sending confirmations", items, function(_, body) return body.transactionId end)
  for _, x in ipairs(sent) do settle[#settle + 1] = x end
  self:settle("shipment confirmations", settle, function(po)
    details(self.orders[po]).orderStatus = "SHIPPED"
  end)
end

local function cents(s) return floor(tonumber(s) * 100 + 0.5) end

function Run:invoice(po)
  local o, d = self.orders[po], details(self.orders[po])
  local lines = ((self.j:get(po, "ack") or {}).data or {}).lines or {}
  local items, total, currency = {}, 0, nil
  for _, it in ipairs(d.items) do
    local q = lines[it.itemSequenceNumber] or it.orderedQuantity.amount
    if q > 0 then
      currency = currency or it.netPrice.currencyCode
      items[#items + 1] = { itemSequenceNumber = it.itemSequenceNumber, buyerProductIdentifier =
        it.buyerProductIdentifier, vendorProductIdentifier = it.vendorProductIdentifier,
        invoicedQuantity = { amount = q, unitOfMeasure = it.orderedQuantity.unitOfMeasure or "Each" },
        netCost = it.netPrice, purchaseOrderNumber = po }
      total = total + cents(it.netPrice.amount) * q
    end
  end
  local remit = self.opts.remit_to
  if type(remit) == "function" then remit = remit(o) end
  local number = self.opts.invoice_number and self.opts.invoice_number(o) or ("INV-" .. po)
  return number, { invoiceNumber = number, invoiceDate = iso(clock.now()),
    remitToParty = remit or { partyId = d.sellingParty.partyId }, shipFromParty = d.shipFromParty,
    invoiceTotal = { currencyCode = currency or "USD", amount = fmt("%d.%02d", floor(total / 100), total % 100) },
    items = items }
end

-- Amazon's answer to an invoice number it already has
local function duplicate(errs)
  for _, e in ipairs(errs or {}) do
    local m = tostring(e.message or ""):lower()
    if m:find("already been submitted", 1, true) or m:find("duplicate", 1, true) then return true end
  end
  return false
end

function Run:step_invoice()
  local j, sends, settle, resent = self.j, {}, {}, {}
  for _, po in ipairs(self.order_list) do
    local c, e, s = j:get(po, "confirm"), j:get(po, "invoice"), self:status(po)
    if e and e.state == "done" then
      self:mark(po, "invoice", "done")
    elseif e and e.state == "sent" and e.txn then
      settle[#settle + 1] = { po = po, step = "invoice", txn = e.txn }
    elseif c and c.state == "done" and s == "SHIPPED" then
      -- an "intent" (answer lost) is sent again with the same number: see duplicate()
      if uncertain(e) then resent[po] = true end
      sends[#sends + 1] = po
    elseif c and c.state == "done" then
      self:stuck(po, "invoice", e, s)
    end
  end
  local items = {}
  for i, po in ipairs(sends) do
    local number, inv = self:invoice(po)
    local prev = j:get(po, "invoice")
    if resent[po] and prev.data and prev.data.invoiceNumber and prev.data.invoiceNumber ~= number then
      inv.invoiceNumber, number = prev.data.invoiceNumber, prev.data.invoiceNumber
    end
    items[i] = { po = po, data = { invoiceNumber = number, resent = resent[po] or nil },
      call = { "vendor_df_payments.submitInvoice", { body = { invoices = { inv } } } } }
  end
  local sent = self:submit("invoice", "sending invoices", items,
    function(_, body) return body.payload and body.payload.transactionId end)
  for _, x in ipairs(sent) do settle[#settle + 1] = x end
  self:settle("invoices", settle, nil, function(po, errs, changes)
    local e = j:get(po, "invoice")
    if e and e.data and e.data.resent and duplicate(errs) then
      changes[#changes + 1] = { order = po, step = "invoice", state = "done",
        note = "reconciled: Amazon already had invoice " .. tostring(e.data.invoiceNumber) }
      self:mark(po, "invoice", "done")
      self:note(po, "invoice: the lost invoice had arrived (Amazon refused the same number again)")
      return true
    end
  end)
end

---------------------------------------------------------------------------
-- public
---------------------------------------------------------------------------
function _M.run(sp, opts)
  check_opts(sp, opts)
  local ok_dir, derr = fs.mkdir(opts.labels or "labels")
  if not ok_dir then return nil, errors.new{ kind = "label", code = "LabelDirectory", message = derr } end
  local j, err = opts.journal, nil
  local mine = not (type(j) == "table" and j.locked) -- a lock the caller holds stays theirs
  if type(j) == "string" then
    j, err = journal_mod.open(j, { lock = true })
    if not j then return nil, err end
  elseif mine then
    local ok, lerr = j:lock()
    if not ok then return nil, lerr end
  end
  local run = setmetatable({ sp = sp, opts = opts, j = j, orders = {}, order_list = {},
    report = { orders = {}, by_po = {} } }, Run)
  -- the lock goes with the run, whatever happens (a callback may raise)
  local ok, res, ferr = pcall(function()
    local fetched, e = run:fetch()
    if not fetched then return nil, e end
    for _, step in ipairs(STEPS) do
      if run.report.stopped then break end
      run["step_" .. step](run)
    end
    return true
  end)
  if mine then j:unlock() end
  if not ok then error(res, 0) end
  if not res then return nil, ferr end
  local good = not run.report.stopped
  for _, e in ipairs(run.report.orders) do
    e.status = run:status(e.po) or e.status
    if #e.errors > 0 or not (e.ack == "rejected" or e.invoice == "done") then good = false end
  end
  run.report.ok = good
  run.report.journal = j
  return run.report
end

--- One line about an order of the report: "2JK3S9VC SHIPPED ack=done label=done ... labels/2JK3S9VC.png"
function _M.describe(e)
  local parts = { fmt("%-10s %-9s", e.po, tostring(e.status or "?")) }
  for _, s in ipairs(STEPS) do parts[#parts + 1] = s .. "=" .. tostring(e[s] or "-") end
  if e.files and #e.files > 0 then parts[#parts + 1] = concat(e.files, ",") end
  local s = concat(parts, " ")
  for _, x in ipairs(e.errors or {}) do
    s = s .. fmt("\n    %s: %s: %s", x.step, tostring(x.code), tostring(x.message))
  end
  return s
end

return _M
