-- spapi.workflows.vdf against the real sandbox (nginx): the whole VDF day, per-order
-- outcomes, bounded waits, and exactly once across lost answers and re-runs — proved
-- by the sandbox's own per-PO counters (/_sandbox/stats counters).
local H = require "helpers"
local vdf = require "spapi.workflows.vdf"
local journal = require "spapi.journal"

local COUNTERS = { "acknowledgements", "acknowledged", "label_requests", "labelled",
                   "confirmations", "confirmed", "invoices", "invoiced" }

describe("workflows.vdf", function()
  local sb, sp, dir, events

  local function stats() return (assert(sb.control("/_sandbox/stats", nil, "GET"))) end
  local function counters(po)
    local c, out = stats().counters, {}
    for _, k in ipairs(COUNTERS) do out[k] = c["vdf." .. k] and c["vdf." .. k][po] or 0 end
    return out
  end
  local function fault(f) return (assert(sb.control("/_sandbox/faults", f))) end

  local function run(extra)
    local opts = { journal = dir .. "/vdf.journal", labels = dir .. "/labels",
      created_after = os.time() - 86400, created_before = os.time() + 86400,
      poll = 0.05, poll_max = 0.2, progress = function(ev) events[#events + 1] = ev end }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return assert(vdf.run(sp, opts))
  end

  local function by_po(report)
    local out = {}
    for _, e in ipairs(report.orders) do out[e.po] = e end
    return out
  end

  -- three more NEW purchase orders (generateOrderScenarios), visible once it settles
  local function generate()
    local g = assert(sp.vendor_df_sandbox.generateOrderScenarios{ body = { orders = {
      { sellingParty = { partyId = "SPECVENDOR" }, shipFromParty = { partyId = "SPECWH" } } } } })
    for _ = 1, 100 do
      local st = assert(sp.vendor_df_sandbox.getOrderScenarios{ transactionId = g.transactionId }).transactionStatus
      if st.status ~= "PROCESSING" then return end
      require("spapi").sleep(0.05)
    end
    error("generateOrderScenarios did not settle")
  end

  local function order_status(po)
    return assert(sp.vendor_df_orders.getOrder{ purchaseOrderNumber = po }).orderDetails.orderStatus
  end

  before_each(function()
    -- the sandbox clock runs 600x: a DF transaction (30 s) settles in 50 ms
    sb = H.sandbox{ reset = { speed = 600 } }
    assert(sb.control("/_sandbox/config", { rate_scale = 20 }))
    sp = assert(require("spapi").client{ env = false, endpoint = sb.endpoint, lwa_endpoint = sb.lwa_endpoint,
      client_id = "amzn1.application-oa2-client.vdfwf", client_secret = "s", refresh_token = "Atzr|vdf-workflow",
      retry_base = 0.02, retry_cap = 0.1 })
    dir = H.tmpdir("vdfwf")
    events = {}
  end)
  teardown(function() sb.control("/_sandbox/config", { rate_scale = 1 }) end)

  it("acknowledges, labels, confirms and invoices every NEW purchase order of all pages, each once", function()
    generate()
    local report = run{ page_size = 2 }
    assert.is_true(report.ok, vdf.describe(report.orders[1] or { po = "none" }))
    assert.is_nil(report.stopped)
    assert.equal(5, #report.orders) -- 2 seeded + 3 generated, over 3 pages
    for _, e in ipairs(report.orders) do
      assert.equal("SHIPPED", e.status)
      assert.same({ "done", "done", "done", "done" }, { e.ack, e.label, e.confirm, e.invoice })
      assert.same({}, e.errors)
      assert.equal("SHIPPED", order_status(e.po))
      assert.equal(1, #e.files)
      local f = assert(io.open(e.files[1], "rb"))
      assert.equal("\137PNG", f:read(4))
      f:close()
      for _, k in ipairs(COUNTERS) do assert.equal(1, counters(e.po)[k], e.po .. " " .. k) end
    end
    -- the waits were reported, and finished
    local seen = {}
    for _, ev in ipairs(events) do if ev.finished then seen[ev.label] = ev end end
    assert.equal(5, seen["purchase orders"].done)
    for _, l in ipairs({ "acknowledgements", "shipment confirmations", "invoices" }) do
      assert.equal(5, seen[l].done, l)
      assert.equal(5, seen[l].total, l)
    end
    -- a re-run finds nothing to do and sends nothing
    local before = stats().requests
    local again = run()
    assert.is_true(again.ok)
    assert.equal(0, #again.orders)
    local after = stats().requests
    for _, op in ipairs({ "vendor_df_orders.submitAcknowledgement", "vendor_df_shipping.createShippingLabels",
        "vendor_df_shipping.submitShipmentConfirmations", "vendor_df_payments.submitInvoice" }) do
      assert.equal(before[op], after[op], op)
    end
  end)

  it("rejects an order whose line the callback rejects: no label, confirmation or invoice for it", function()
    local first
    local report = run{ acknowledge = function(order, item)
      first = first or order.purchaseOrderNumber
      if order.purchaseOrderNumber == first then return false, "02" end
      return true
    end }
    assert.is_true(report.ok)
    local o = by_po(report)
    assert.equal("rejected", o[first].ack)
    assert.equal("CANCELLED", order_status(first))
    assert.is_nil(o[first].label)
    assert.same({ acknowledgements = 1, acknowledged = 1, label_requests = 0, labelled = 0, confirmations = 0,
      confirmed = 0, invoices = 0, invoiced = 0 }, counters(first))
    local n = 0
    for po, e in pairs(o) do
      if po ~= first then n = n + 1; assert.equal("done", e.invoice) end
    end
    assert.equal(1, n)
  end)

  it("ships and invoices the quantities the callback accepted", function()
    local report = run{ acknowledge = function(_, item)
      if item.orderedQuantity.amount > 1 then return item.orderedQuantity.amount - 1 end
      return true
    end }
    assert.is_true(report.ok)
    local partial
    for _, e in ipairs(report.orders) do
      local inv = assert(sb.control("/_sandbox/state/vdf_invoice/INV-" .. e.po)).invoice
      local po = assert(sp.vendor_df_orders.getOrder{ purchaseOrderNumber = e.po })
      local total = 0
      for i, it in ipairs(po.orderDetails.items) do
        local want = it.orderedQuantity.amount > 1 and it.orderedQuantity.amount - 1 or it.orderedQuantity.amount
        if want ~= it.orderedQuantity.amount then partial = e.po end
        assert.equal(want, inv.items[i].invoicedQuantity.amount)
        assert.equal(e.po, inv.items[i].purchaseOrderNumber)
        total = total + math.floor(tonumber(it.netPrice.amount) * 100 + 0.5) * want
      end
      assert.equal(string.format("%d.%02d", math.floor(total / 100), total % 100), inv.invoiceTotal.amount)
    end
    assert.is_string(partial, "the seeded two-item order has a line of 2")
  end)

  it("crash test: the connection drops on an invoice, the run stops, the re-run finishes, all exactly once", function()
    generate()
    fault{ operation = "vendor_df_payments.submitInvoice", kind = "close", count = 1 }
    local report = run()
    assert.is_false(report.ok)
    assert.is_table(report.stopped)
    assert.is_true(report.stopped.maybe_applied)
    assert.equal(5, #report.orders)
    -- the first invoice's answer was lost; the run sent nothing after it
    local lost = report.orders[1].po
    assert.equal("pending", report.orders[1].invoice)
    for i = 2, 5 do assert.is_nil(report.orders[i].invoice) end
    assert.equal("intent", journal.open(dir .. "/vdf.journal"):get(lost, "invoice").state)

    local again = run()
    assert.is_true(again.ok, again.orders[1] and vdf.describe(again.orders[1]))
    assert.is_nil(again.stopped)
    assert.equal(5, #again.orders) -- every order still had its invoice to do
    for _, e in ipairs(again.orders) do assert.equal("done", e.invoice) end
    assert.matches("already had invoice INV%-" .. lost, journal.open(dir .. "/vdf.journal"):get(lost, "invoice").note)

    -- every order: acknowledged, labelled, confirmed and invoiced once. The lost invoice
    -- reached Amazon twice (the re-send with the same number is how it is recognised,
    -- since Amazon has no invoice to read back) and was refused the second time.
    for _, e in ipairs(report.orders) do
      assert.same({ acknowledgements = 1, acknowledged = 1, label_requests = 1, labelled = 1, confirmations = 1,
        confirmed = 1, invoices = e.po == lost and 2 or 1, invoiced = 1 }, counters(e.po), e.po)
    end
    assert.equal(0, #run().orders)
    assert.equal(2, counters(lost).invoices)
  end)

  it("crash test: the process is killed while an invoice is on its way; the re-run finishes it once", function()
    -- the sandbox holds the first invoice 5 s before taking it; the script is killed
    -- (SIGKILL) as soon as the sandbox has that request, so its answer never arrives
    fault{ operation = "vendor_df_payments.submitInvoice", kind = "delay", delay_ms = 5000, count = 1 }
    local env = string.format("SPAPI_ENDPOINT=%s SPAPI_LWA_ENDPOINT=%s LWA_CLIENT_ID=amzn1.application-oa2-client.vdfwf "
      .. "LWA_CLIENT_SECRET=s LWA_REFRESH_TOKEN='Atzr|vdf-workflow' VDF_JOURNAL=%s/vdf.journal VDF_LABELS=%s/labels "
      .. "LUA_PATH='%s/lua/?.lua;%s/lua/?/init.lua;;' LUA_CPATH='%s/build/5.4/?.so;;'",
      sb.endpoint, sb.lwa_endpoint, dir, dir, H.root, H.root, H.root)
    local p = assert(io.popen(string.format("cd %q && %s lua5.4 examples/vdf_daily.lua >%s/out 2>&1 & echo $!",
      H.root, env, dir)))
    local pid = assert(tonumber(p:read("*l")))
    p:close()
    local got
    for _ = 1, 2400 do -- (up to a minute on a busy machine; normally about two seconds)
      if (stats().requests["vendor_df_payments.submitInvoice"] or 0) >= 1 then got = true break end
      require("spapi").sleep(0.025)
    end
    os.execute("kill -9 " .. pid .. " 2>/dev/null")
    assert.is_true(got, "the script never sent an invoice")
    local j = assert(journal.open(dir .. "/vdf.journal"))
    local intents = j:list{ step = "invoice", state = "intent" }
    assert.equal(1, #intents) -- one submission in flight at a time
    local lost = intents[1].order
    assert.is_nil(j:get(lost, "invoice").txn)

    -- wait until the held invoice has been taken, then re-run in this process
    for _ = 1, 2400 do
      if (counters(lost).invoices or 0) >= 1 then break end
      require("spapi").sleep(0.025)
    end
    local report = run()
    assert.is_true(report.ok, report.orders[1] and vdf.describe(report.orders[1]))
    for _, po in ipairs(journal.open(dir .. "/vdf.journal"):orders()) do
      local c = counters(po)
      assert.same({ acknowledgements = 1, acknowledged = 1, label_requests = 1, labelled = 1, confirmations = 1,
        confirmed = 1, invoices = po == lost and 2 or 1, invoiced = 1 }, c, po)
      assert.equal("SHIPPED", order_status(po))
    end
  end)

  it("reconciles lost acknowledgement, label and confirmation answers from Amazon's state without re-sending", function()
    for _, op in ipairs({ "vendor_df_orders.submitAcknowledgement", "vendor_df_shipping.createShippingLabels",
        "vendor_df_shipping.submitShipmentConfirmations" }) do
      fault{ operation = op, kind = "close", count = 1 }
    end
    local runs, report, notes = 0, nil, {}
    repeat
      report = run()
      runs = runs + 1
      for _, e in ipairs(report.orders) do for _, n in ipairs(e.notes) do notes[#notes + 1] = n end end
    until report.ok or runs == 5
    assert.is_true(report.ok)
    assert.equal(4, runs) -- three lost answers: three runs stop, the fourth finishes
    local all = table.concat(notes, "\n")
    assert.matches("answer was lost", all, 1, true)
    assert.matches("ack: the lost acknowledgement had arrived", all, 1, true)
    assert.matches("confirm: the lost confirmation had arrived", all, 1, true)
    for _, po in ipairs(journal.open(dir .. "/vdf.journal"):orders()) do
      for _, k in ipairs(COUNTERS) do assert.equal(1, counters(po)[k], po .. " " .. k) end
      assert.equal("SHIPPED", order_status(po))
    end
  end)

  it("re-sends a submission that never arrived once its reconcile window has passed, and waits within it", function()
    local r0 = run{ max_orders = 1 }
    assert.is_true(r0.ok)
    local done_po = r0.orders[1].po
    -- a previous process recorded its intent for the other order and died before sending
    local other
    local list = assert(sp.vendor_df_orders.getOrders{ status = "NEW", createdAfter = os.time() - 86400,
      createdBefore = os.time() + 86400 })
    other = list.orders[1].purchaseOrderNumber
    assert.not_equal(done_po, other)
    local j = assert(journal.open(dir .. "/vdf.journal"))
    assert(j:intent(other, "ack", { rejected = false, code = "00" }))
    -- within the window: watched (bounded by `wait`), not sent
    local r1 = run{ reconcile_wait = 3600, wait = 0.2 }
    assert.equal("pending", by_po(r1)[other].ack)
    assert.equal(0, counters(other).acknowledgements)
    assert.equal("NEW", order_status(other))
    -- the window has passed: it never arrived, so it is sent (once)
    local r2 = run{ reconcile_wait = 0 }
    assert.is_true(r2.ok)
    assert.equal("done", by_po(r2)[other].invoice)
    for _, k in ipairs(COUNTERS) do assert.equal(1, counters(other)[k], k) end
    assert.equal(2, journal.open(dir .. "/vdf.journal"):get(other, "ack").attempts)
  end)

  it("bounds the wait on transactions, and the next run settles them without sending again", function()
    assert(sb.control("/_sandbox/clock", { speed = 0 })) -- transactions stay Processing
    local r1 = run{ wait = 0.3 }
    assert.is_false(r1.ok)
    for _, e in ipairs(r1.orders) do
      assert.equal("pending", e.ack)
      assert.matches("still processing", e.notes[1])
      assert.equal("sent", journal.open(dir .. "/vdf.journal"):get(e.po, "ack").state)
    end
    assert(sb.control("/_sandbox/clock", { speed = 600 }))
    local r2 = run()
    assert.is_true(r2.ok)
    for _, e in ipairs(r2.orders) do
      assert.equal(1, counters(e.po).acknowledgements)
      assert.equal("done", e.invoice)
    end
  end)

  it("reports Amazon's errors per order and goes on with the others; a refused step is sent again next run", function()
    local report = run{ invoice_number = function() return "INV-SAME" end }
    assert.is_false(report.ok)
    local ok_n, failed
    ok_n = 0
    for _, e in ipairs(report.orders) do
      if e.invoice == "done" then ok_n = ok_n + 1
      else
        assert.equal("failed", e.invoice)
        failed = e
      end
    end
    assert.equal(1, ok_n)
    assert.equal("invoice", failed.errors[1].step)
    assert.equal("InvalidInput", failed.errors[1].code)
    assert.matches("INV%-SAME has already been submitted", failed.errors[1].message)
    assert.matches("invoice: InvalidInput: .*already been submitted", vdf.describe(failed))
    -- a 400 on the request itself is a failure too, and nothing was applied: the next run re-sends
    local again = run()
    assert.is_true(again.ok)
    assert.equal(1, #again.orders)
    assert.equal("done", again.orders[1].invoice)
    assert.equal(1, counters(failed.po).invoiced)
  end)

  it("reports a refused step whose order has moved on without it, and sends nothing for it", function()
    local list = assert(sp.vendor_df_orders.getOrders{ status = "NEW", createdAfter = os.time() - 86400,
      createdBefore = os.time() + 86400 })
    local po = list.orders[1]
    local d, items = po.orderDetails, {}
    for i, it in ipairs(d.items) do
      items[i] = { itemSequenceNumber = it.itemSequenceNumber, acknowledgedQuantity = it.orderedQuantity }
    end
    -- this journal's acknowledgement was refused; meanwhile someone acknowledged the order
    local j = assert(journal.open(dir .. "/vdf.journal"))
    assert(j:intent(po.purchaseOrderNumber, "ack"))
    assert(j:failed(po.purchaseOrderNumber, "ack", { { code = "InvalidInput", message = "refused earlier" } }))
    assert(sp.vendor_df_orders.submitAcknowledgement{ body = { orderAcknowledgements = { {
      purchaseOrderNumber = po.purchaseOrderNumber, vendorOrderNumber = "ELSEWHERE",
      acknowledgementDate = os.time(), acknowledgementStatus = { code = "00" },
      sellingParty = d.sellingParty, shipFromParty = d.shipFromParty, itemAcknowledgements = items } } } })
    assert(sb.control("/_sandbox/clock", { advance = 120 }))
    local report = run()
    assert.is_false(report.ok)
    local e = by_po(report)[po.purchaseOrderNumber]
    assert.equal("failed", e.ack)
    assert.is_nil(e.label)
    assert.equal("refused earlier", e.errors[1].message)
    assert.matches("ack: not sent: the order is ACCEPTED", table.concat(e.notes, "\n"))
    assert.equal(1, counters(po.purchaseOrderNumber).acknowledgements)
    assert.equal(0, counters(po.purchaseOrderNumber).label_requests)
  end)

  it("refuses to run beside another run on the same journal, sending nothing", function()
    local other = assert(journal.open(dir .. "/vdf.journal", { lock = true }))
    local before = stats().requests_total
    local report, err = vdf.run(sp, { journal = dir .. "/vdf.journal", labels = dir .. "/labels" })
    assert.is_nil(report)
    assert.equal("JournalLocked", err.code)
    assert.equal(before, stats().requests_total)
    assert(other:unlock())
    assert.is_true(run().ok)
    -- a journal the caller opened and locked is used, and stays locked
    local mine = assert(journal.open(dir .. "/vdf.journal", { lock = true }))
    assert.is_true(run{ journal = mine }.ok)
    assert.is_true(mine.locked)
    local _, err2 = journal.open(dir .. "/vdf.journal", { lock = true })
    assert.equal("JournalLocked", err2.code)
    assert(mine:unlock())
  end)

  it("raises on bad options, naming them", function()
    assert.error_matches(function() vdf.run(sp, {}) end, "'opts.journal' must be")
    assert.error_matches(function() vdf.run(sp, { journal = "j", acknowledge = 1 }) end, "'opts.acknowledge' must be a function")
    assert.error_matches(function() vdf.run(sp, { journal = "j", wait = -1 }) end, "'opts.wait' must be a number >= 0")
    assert.error_matches(function() vdf.run({}, { journal = "j" }) end, "'client' must be an spapi client")
  end)
end)
