-- The Merchant Fulfillment workflow against a real sandbox: rates → choice →
-- label → file → confirmation for every unshipped seller-fulfilled order, the
-- guide's error codes mapped to what a script does, cancellation, and exactly one
-- label per order across re-runs and a connection dropped on createShipment.
local H = require "helpers"
local mfn = require "spapi.workflows.mfn"
local labels = require "spapi.labels"
local journal = require "spapi.journal"

local SHIP_FROM = { Name = "Acme Goods", AddressLine1 = "300 Turnbull Ave", City = "Detroit", StateOrProvinceCode = "MI",
  PostalCode = "48123", CountryCode = "US", Email = "shipping@acme.example", Phone = "7132341234" }
local PACKAGE = { PackageDimensions = { Length = 10, Width = 8, Height = 4, Unit = "inches" },
                  Weight = { Value = 14, Unit = "oz" } }

describe("workflows.mfn", function()
  local sandbox, sp

  local function client()
    return assert(require("spapi").client{ env = false, endpoint = sandbox.endpoint,
      lwa_endpoint = sandbox.lwa_endpoint, client_id = "amzn1.application-oa2-client.mfnwf", client_secret = "s",
      refresh_token = "Atzr|mfn-workflow", retry_base = 0.02, retry_cap = 0.1 })
  end

  local n = 0
  local function new_order(items)
    n = n + 1
    local id = string.format("115-%07d-%07d", 3330000 + n, 1111111)
    local list = {}
    for i, it in ipairs(items or { { "I" .. n, 1 } }) do list[i] = { OrderItemId = it[1], Quantity = it[2] } end
    assert(sandbox.control("/_sandbox/programs/orders/order", { AmazonOrderId = id, items = list }))
    return id
  end

  local function bought()
    return assert(sandbox.control("/_sandbox/programs/merchant_fulfillment/labels", {})).orders
  end

  local function run(dir, extra)
    local opts = { journal = dir .. "/mfn.journal", labels = dir, ship_from = SHIP_FROM, package = PACKAGE,
                   progress = false }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return mfn.run(sp, opts)
  end

  local function status(id) return assert(sp.orders.getOrder{ orderId = id }).payload.OrderStatus end

  local function file_type(path)
    local f = assert(io.open(path, "rb"))
    local data = f:read("*a")
    f:close()
    return labels.sniff(data)
  end

  setup(function()
    sandbox = H.sandbox{ reset = true }
    assert(sandbox.control("/_sandbox/config", { rate_scale = 100 }))
    sp = client()
  end)

  teardown(function()
    if sandbox then
      sandbox.control("/_sandbox/faults", nil, "DELETE")
      sandbox.control("/_sandbox/config", { rate_scale = 1 })
    end
  end)

  it("labels and confirms every unshipped seller-fulfilled order once; a re-run buys nothing", function()
    local dir = H.tmpdir("mfn-all")
    local before = bought()
    local events = {}
    local report = assert(run(dir, { progress = function(ev) events[#events + 1] = ev end }))
    assert.is_nil(report.stopped)
    assert.is_true(report.ok)
    local ids = {}
    for _, e in ipairs(report.orders) do ids[#ids + 1] = e.order end
    -- the seeded US orders still to ship, oldest first (not the FBA, pending, cancelled or Brazilian ones)
    assert.same({ "902-1845936-5435065", "903-5563053-5647845", "114-3941689-8772232", "111-7700012-3456789" }, ids)
    local after = bought()
    for _, e in ipairs(report.orders) do
      assert.equal("done", e.label, mfn.describe(e))
      assert.equal("done", e.confirm, mfn.describe(e))
      assert.equal("USPS_PTP_FIRST_CLASS", e.service) -- the cheapest for 14 oz
      assert.equal(dir .. "/" .. e.order .. "-" .. e.shipment:sub(1, 8) .. ".png", e.file)
      assert.equal("PNG", file_type(e.file))
      assert.equal((before[e.order] or 0) + 1, after[e.order], e.order)
      assert.equal("Shipped", status(e.order))
    end
    -- the partly shipped order got a label for its one unshipped item only
    local s = assert(sp.merchant_fulfillment.getShipment{ shipmentId = report.by_order["903-5563053-5647845"].shipment })
    assert.same({ { OrderItemId = "52986411826454", Quantity = 1 } }, s.payload.ItemList)
    assert.is_true(events[#events].finished)

    local again = assert(run(dir))
    assert.equal(0, #again.orders)
    assert.same(after, bought())
    -- a label file lost after the run is fetched again (getShipment), not bought again
    local first = report.orders[1]
    assert(os.remove(first.file))
    again = assert(run(dir, { orders = { first.order } }))
    assert.equal("done", again.orders[1].label)
    assert.equal(first.file, again.orders[1].file)
    assert.equal("PNG", file_type(first.file))
    assert.same(after, bought())
  end)

  it("chooses the fastest service, or what a callback picks", function()
    local dir = H.tmpdir("mfn-choose")
    local a, b = new_order(), new_order()
    local r = assert(run(dir, { orders = { a }, choose = "fastest" }))
    assert.equal("UPS_PTP_2ND_DAY_AIR", r.orders[1].service)
    local offered
    r = assert(run(dir, { orders = { b }, choose = function(services, order)
      offered = #services
      assert.equal(b, order.AmazonOrderId)
      return "FEDEX_PTP_HOME_DELIVERY"
    end }))
    assert.is_true(offered >= 4)
    assert.equal("FEDEX_PTP_HOME_DELIVERY", r.orders[1].service)
    assert.equal("PDF", file_type(r.orders[1].file)) -- FedEx prints PDF by default
  end)

  it("asks for a fresh offer when the chosen one expired (ShippingServiceOfferNotAvailable)", function()
    local dir = H.tmpdir("mfn-requote")
    local id = new_order()
    local calls = 0
    local r = assert(run(dir, { orders = { id }, choose = function(services)
      calls = calls + 1
      if calls == 1 then assert(sandbox.control("/_sandbox/clock", { advance = 2 * 3600 })) end -- the offer expires
      return services[1]
    end }))
    local e = r.orders[1]
    assert.equal(2, calls)
    assert.equal("done", e.label, mfn.describe(e))
    assert.same({}, e.errors)
    assert.matches("ShippingServiceOfferNotAvailable: the rate changed: a fresh offer is asked for",
      table.concat(e.notes, "; "), 1, true)
    assert.equal(1, bought()[id])
  end)

  it("falls back to the service's label format (LabelFormatNotSupported)", function()
    local dir = H.tmpdir("mfn-format")
    local id = new_order()
    local r = assert(run(dir, { orders = { id }, label_format = "ZPL300", choose = function() return "USPS_PTP_PRI" end }))
    assert.equal("done", r.orders[1].label, mfn.describe(r.orders[1]))
    assert.equal("PNG", file_type(r.orders[1].file))
  end)

  it("stops the run on InsufficientFunds and finishes after the account is topped up", function()
    local dir = H.tmpdir("mfn-funds")
    local a, b = new_order(), new_order()
    assert(sandbox.control("/_sandbox/programs/merchant_fulfillment/account", { balance = 1 }))
    local ok, r = pcall(run, dir, { orders = { a, b } })
    assert(sandbox.control("/_sandbox/programs/merchant_fulfillment/account", { balance = 1000 }))
    assert(ok, r)
    assert.equal("InsufficientFunds", r.stopped.code)
    assert.is_false(r.ok)
    assert.equal(1, #r.orders) -- b was not tried
    assert.equal("failed", r.orders[1].label)
    assert.equal("stop", r.orders[1].errors[1].action)
    assert.equal("failed", assert(journal.open(dir .. "/mfn.journal")):state(a, "label"))
    r = assert(run(dir, { orders = { a, b } }))
    assert.is_true(r.ok)
    assert.equal(1, bought()[a])
    assert.equal(1, bought()[b])
  end)

  it("never buys a second label for items labelled outside the journal (ShipmentAlreadyExists)", function()
    local dir = H.tmpdir("mfn-adopt")
    local function outside(id, item)
      return assert(sp.merchant_fulfillment.createShipment{ body = { ShippingServiceId = "UPS_PTP_GND",
        ShipmentRequestDetails = { AmazonOrderId = id, ItemList = { { OrderItemId = item, Quantity = 1 } },
          ShipFromAddress = SHIP_FROM, PackageDimensions = PACKAGE.PackageDimensions, Weight = PACKAGE.Weight,
          ShippingServiceOptions = { DeliveryExperience = "DeliveryConfirmationWithoutSignature",
                                     CarrierWillPickUp = false } } } }).payload
    end
    -- bought before the run: the order has nothing left to ship
    local early = new_order()
    outside(early, "I" .. n)
    local r = assert(run(dir, { orders = { early } }))
    assert.equal("skipped", r.orders[1].label)
    assert.equal(1, bought()[early])
    -- bought by someone else while the run chose a service: Amazon refuses the second
    -- label, naming the shipment, and the run takes that one
    local racy = new_order()
    local first
    r = assert(run(dir, { orders = { racy }, choose = function(services)
      first = outside(racy, "I" .. n)
      return services[1]
    end }))
    local e = r.orders[1]
    assert.equal("done", e.label, mfn.describe(e))
    assert.equal(first.ShipmentId, e.shipment)
    assert.same({}, e.errors)
    assert.matches("label bought earlier", table.concat(e.notes, "; "), 1, true)
    assert.equal(1, bought()[racy])
    assert.equal("PNG", file_type(e.file))
  end)

  it("skips an order of a marketplace without Buy Shipping (RegionNotSupported) and goes on", function()
    local dir = H.tmpdir("mfn-region")
    local other = new_order()
    local r = assert(run(dir, { orders = { "701-2345678-9012345", other } }))
    assert.is_nil(r.stopped)
    assert.is_false(r.ok)
    assert.equal("failed", r.orders[1].label)
    assert.equal("RegionNotSupported", r.orders[1].errors[1].code)
    assert.equal("skip", r.orders[1].errors[1].action)
    assert.equal("done", r.orders[2].label)
  end)

  it("cancels a label within the window, and later runs leave the order alone", function()
    local dir = H.tmpdir("mfn-cancel")
    local id, late = new_order(), new_order()
    assert(run(dir, { orders = { id, late } }))
    local s = assert(mfn.cancel(sp, { journal = dir .. "/mfn.journal", order = id }))
    assert.equal("RefundPending", s.Status)
    assert.equal("Unshipped", status(id))
    local r = assert(run(dir, { orders = { id } }))
    assert.equal("cancelled", r.orders[1].label)
    assert.equal(1, bought()[id])
    assert(sandbox.control("/_sandbox/clock", { advance = 25 * 3600 }))
    local nothing, err = mfn.cancel(sp, { journal = dir .. "/mfn.journal", order = late })
    assert.is_nil(nothing)
    assert.equal("LabelCancelWindowExpired", err.code)
    assert.equal("skip", mfn.ERRORS[err.code].action)
    assert.has_error(function() mfn.cancel(sp, { journal = dir .. "/mfn.journal" }) end,
      "spapi.workflows.mfn.cancel: 'order' must be an AmazonOrderId")
  end)

  it("holds the journal's lock: a second run on the same journal is refused meanwhile", function()
    local dir = H.tmpdir("mfn-lock")
    local id = new_order()
    local inner
    local r = assert(run(dir, { orders = { id }, choose = function(services)
      inner = { run(dir, { orders = { id } }) }
      return services[1]
    end }))
    assert.equal("done", r.orders[1].label)
    assert.is_nil(inner[1])
    assert.equal("JournalLocked", inner[2].code)
    assert.equal(1, bought()[id])
    -- released afterwards, also when a callback raises
    assert.has_error(function() run(dir, { orders = { new_order() }, choose = function() error("boom", 0) end }) end, "boom")
    assert(run(dir, { orders = { id } }))
  end)

  it("names a missing option", function()
    assert.has_error(function() mfn.run(sp, { journal = "x", package = PACKAGE }) end,
      "spapi.workflows.mfn.run: 'ship_from' must be a Merchant Fulfillment Address table")
    assert.has_error(function() mfn.run(sp, { journal = "x", ship_from = SHIP_FROM, package = PACKAGE, choose = "slowest" }) end,
      "spapi.workflows.mfn.run: 'choose' must be \"cheapest\", \"fastest\" or a function (got slowest)")
  end)

  it("crash: the connection drops on a createShipment, the run stops, the re-run finishes with one label per order", function()
    local dir = H.tmpdir("mfn-crash")
    local a, b, c = new_order(), new_order({ { "X1", 2 }, { "X2", 1 } }), new_order()
    -- the sandbox buys b's label, then drops the connection before the answer is out
    local seen = 0
    local r = assert(run(dir, { orders = { a, b, c }, choose = function(services)
      seen = seen + 1
      if seen == 2 then -- a went through; b's createShipment is next
        assert(sandbox.control("/_sandbox/faults", { operation = "merchant_fulfillment.createShipment",
          kind = "close", count = 1 }))
      end
      return services[1]
    end }))
    assert.is_table(r.stopped)
    assert.is_nil(r.stopped.status) -- no answer
    assert.is_false(r.ok)
    assert.equal(2, #r.orders)
    assert.equal("done", r.orders[1].label)
    assert.equal("pending", r.orders[2].label)
    assert.equal("intent", assert(journal.open(dir .. "/mfn.journal")):state(b, "label"))
    assert.equal(1, bought()[b]) -- the label was bought: only the answer was lost
    assert.equal("Shipped", status(b))

    -- b is Shipped now: the re-run finds it through the journal, not the order list
    r = assert(run(dir, { orders = { c } }))
    assert.is_nil(r.stopped, r.stopped and tostring(r.stopped))
    assert.is_true(r.ok)
    local by = r.by_order
    assert.equal("done", by[b].label, mfn.describe(by[b]))
    assert.equal("done", by[b].confirm)
    assert.equal("done", by[c].label)
    assert.is_string(by[b].file)
    local counts = bought()
    for _, id in ipairs({ a, b, c }) do assert.equal(1, counts[id], id) end
    local j = assert(journal.open(dir .. "/mfn.journal"))
    for _, id in ipairs({ a, b, c }) do
      assert.equal("done", j:state(id, "label"), id)
      assert.equal("done", j:state(id, "confirm"), id)
    end
    assert.equal(2, j:get(b, "label").attempts)
  end)

  it("crash: the process is killed while a createShipment is on its way; the re-run buys no second label", function()
    sandbox = H.sandbox{ reset = true } -- the seeded orders, all unshipped again
    assert(sandbox.control("/_sandbox/config", { rate_scale = 100 }))
    local dir = H.tmpdir("mfn-kill")
    local before = bought()
    local function created()
      local st = assert(sandbox.control("/_sandbox/stats", nil, "GET"))
      return st.requests["merchant_fulfillment.createShipment"] or 0
    end
    -- the sandbox holds the first createShipment 3 s before buying the label; the script
    -- is killed (SIGKILL) as soon as the sandbox has that request
    assert(sandbox.control("/_sandbox/faults", { operation = "merchant_fulfillment.createShipment", kind = "delay",
      delay_ms = 3000, count = 1 }))
    local env = string.format("SPAPI_ENDPOINT=%s SPAPI_LWA_ENDPOINT=%s LWA_CLIENT_ID=amzn1.application-oa2-client.mfnwf "
      .. "LWA_CLIENT_SECRET=s LWA_REFRESH_TOKEN='Atzr|mfn-workflow' MFN_JOURNAL=%s/mfn.journal MFN_LABELS=%s "
      .. "LUA_PATH='%s/lua/?.lua;%s/lua/?/init.lua;;' LUA_CPATH='%s/build/5.4/?.so;;'",
      sandbox.endpoint, sandbox.lwa_endpoint, dir, dir, H.root, H.root, H.root)
    local p = assert(io.popen(string.format("cd %q && %s lua5.4 examples/mfn_ship_orders.lua >%s/out 2>&1 & echo $!",
      H.root, env, dir)))
    local pid = assert(tonumber(p:read("*l")))
    p:close()
    local got
    for _ = 1, 2400 do -- (up to a minute on a busy machine; normally about a second)
      if created() >= 1 then got = true break end
      require("spapi").sleep(0.025)
    end
    os.execute("kill -9 " .. pid .. " 2>/dev/null")
    assert.is_true(got, "the script never sent a createShipment")
    local j = assert(journal.open(dir .. "/mfn.journal"))
    local intents = j:list{ step = "label", state = "intent" }
    assert.equal(1, #intents)
    local lost = intents[1].order
    -- the held request is bought by the sandbox after all (its answer goes nowhere)
    for _ = 1, 2400 do
      if (bought()[lost] or 0) > (before[lost] or 0) then break end
      require("spapi").sleep(0.025)
    end
    assert.equal((before[lost] or 0) + 1, bought()[lost])

    -- the re-run (the killed run's lock is taken over) reconciles and finishes
    local r = assert(run(dir))
    assert.is_true(r.ok, r.orders[1] and mfn.describe(r.orders[1]))
    assert.matches("label bought earlier", table.concat(r.by_order[lost].notes, "; "), 1, true)
    local after = bought()
    assert.equal(4, #r.orders)
    for _, e in ipairs(r.orders) do
      assert.equal((before[e.order] or 0) + 1, after[e.order], e.order)
      assert.equal("done", e.confirm)
    end
  end)

  it("examples/mfn_ship_orders.lua runs against a fresh sandbox (make demo)", function()
    local rc, out = H.run(string.format("cd %q && scripts/demo.sh examples/mfn_ship_orders.lua", H.root))
    assert.equal(0, rc, out)
    local _, done = out:gsub("label=done confirm=done", "")
    assert.equal(4, done, out)
  end)
end)
