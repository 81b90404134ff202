-- The MCF workflow (spapi.workflows.mcf) through the client against the sandbox in
-- a real nginx: stock, preview, choose, create (idempotent, also after a dropped
-- connection), follow, tracking, update, cancel, return, list since a date.
local H = require "helpers"
local mcf = require "spapi.workflows.mcf"

local ADDRESS = { name = "Jane Doe", addressLine1 = "410 Terry Ave N", city = "Seattle", stateOrRegion = "WA",
  postalCode = "98109", countryCode = "US", phone = "+1 206 555 0100" }

describe("workflows.mcf", function()
  local sb

  local function client(extra)
    local cfg = { env = false, endpoint = sb.endpoint, lwa_endpoint = sb.lwa_endpoint,
      client_id = "amzn1.application-oa2-client.wf", client_secret = "s", refresh_token = "Atzr|mcf-workflow",
      retry_base = 0.01, retry_cap = 0.05 }
    for k, v in pairs(extra or {}) do cfg[k] = v end
    return assert(require("spapi").client(cfg))
  end
  local function advance(seconds) assert(sb.control("/_sandbox/clock", { advance = seconds })) end
  -- follow() waits with this: each wait is ten minutes of sandbox time
  local function sandbox_sleep() advance(600) end
  local function order(id, items, extra)
    local o = { id = id, address = ADDRESS, items = items or { { sku = "SKU-RED-MUG", quantity = 2 } } }
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
  end
  local function count_orders(sp, id)
    local n = 0
    for _, o in ipairs(assert(mcf.orders_since(sp))) do
      if o.sellerFulfillmentOrderId == id then n = n + 1 end
    end
    return n
  end

  before_each(function()
    sb = H.sandbox{ reset = true }
    assert(sb.control("/_sandbox/config", { rate_scale = 100 }))
  end)

  it("previews, chooses, creates once, follows until shipped and reads the tracking", function()
    local sp = client()
    local stock = assert(mcf.stock(sp, { "SKU-RED-MUG", "SKU-OUT-OF-STOCK", "NO-SUCH-SKU" }))
    assert.equal(100, stock["SKU-RED-MUG"])
    assert.equal(0, stock["SKU-OUT-OF-STOCK"])
    assert.is_nil(stock["NO-SUCH-SKU"])

    local o = order("WF-1")
    local options = assert(mcf.preview(sp, o))
    assert.equal(3, #options)
    assert.equal("Standard", options[1].speed) -- sorted by fee
    assert.is_true(options[1].fee < options[3].fee)
    assert.equal("USD", options[1].currency)
    assert.equal("Standard", assert(mcf.choose(options, "cheapest")).speed)
    assert.equal("Priority", assert(mcf.choose(options, "fastest")).speed)
    assert.equal("Expedited", assert(mcf.choose(options, "Expedited")).speed)

    local placed, how = mcf.create(sp, o, mcf.choose(options, "Expedited"))
    assert.is_table(placed, tostring(how))
    assert.equal("created", how)
    assert.equal("Received", placed.fulfillmentOrder.fulfillmentOrderStatus)
    assert.equal("Expedited", placed.fulfillmentOrder.shippingSpeedCategory)
    assert.equal("WF-1-1", placed.fulfillmentOrderItems[1].sellerFulfillmentOrderItemId)
    -- a re-run of the script: the order is there, nothing new is created
    local again, how2 = assert(mcf.create(sp, o, "Expedited"))
    assert.equal("existing", how2)
    assert.equal("WF-1", again.fulfillmentOrder.sellerFulfillmentOrderId)
    assert.equal(1, count_orders(sp, "WF-1"))
    -- the same id with other lines is a conflict, not a second order
    local none, err = mcf.create(sp, order("WF-1", { { sku = "SKU-BLUE-MUG", quantity = 1 } }), "Standard")
    assert.is_nil(none)
    assert.equal("Conflict", err.code)

    local seen, events = {}, {}
    local shipped = assert(mcf.follow(sp, "WF-1", { until_status = "shipped", interval = 0, sleep = sandbox_sleep,
      progress = function(ev) events[#events + 1] = ev end, on_status = function(st) seen[#seen + 1] = st end }))
    assert.same({ "Received", "Planning", "Processing", "Complete" }, seen)
    local last = events[#events]
    assert.is_true(last.finished)
    assert.same({ "order WF-1", 4, 4, "Complete" }, { last.label, last.done, last.total, last.note })
    assert.equal("Received", events[1].note)
    local packages = assert(mcf.tracking(sp, shipped))
    assert.equal(1, #packages)
    assert.equal("UPS", packages[1].carrier)
    assert.matches("^1Z", packages[1].tracking_number)
    assert.equal("IN_TRANSIT", packages[1].status)
    assert.matches("^https://", packages[1].link)
    advance(3 * 86400)
    assert.equal("DELIVERED", assert(mcf.tracking(sp, "WF-1"))[1].status)
  end)

  it("creates only for SKUs with fulfillable FBA stock", function()
    local sp = client()
    local none, err = mcf.create(sp, order("WF-NS", { { sku = "SKU-RED-MUG", quantity = 1 },
      { sku = "SKU-OUT-OF-STOCK", quantity = 1 } }), "Standard")
    assert.is_nil(none)
    assert.equal("NotFulfillable", err.code)
    assert.same({ wanted = 1, fulfillable = 0 }, err.short["SKU-OUT-OF-STOCK"])
    assert.matches("SKU%-OUT%-OF%-STOCK", tostring(err))
    none, err = mcf.create(sp, order("WF-NS", { { sku = "SKU-LOW-STOCK", quantity = 3 } }), "Standard")
    assert.equal("NotFulfillable", err.code)
    assert.equal(0, count_orders(sp, "WF-NS"))
    -- FillAllAvailable: lines without stock are left out, short lines ship what there is
    local placed = assert(mcf.create(sp, order("WF-FAA", { { sku = "SKU-LOW-STOCK", quantity = 3 },
      { sku = "SKU-OUT-OF-STOCK", quantity = 1 } }, { policy = "FillAllAvailable" }), "Standard"))
    assert.equal(1, #placed.fulfillmentOrderItems)
    assert.equal("SKU-LOW-STOCK", placed.fulfillmentOrderItems[1].sellerSku)
    local _, how = assert(mcf.create(sp, order("WF-FAA", { { sku = "SKU-LOW-STOCK", quantity = 3 },
      { sku = "SKU-OUT-OF-STOCK", quantity = 1 } }, { policy = "FillAllAvailable" }), "Standard"))
    assert.equal("existing", how) -- a re-run, though one line was left out
    local final = assert(mcf.follow(sp, "WF-FAA", { interval = 0, sleep = sandbox_sleep, progress = false }))
    assert.equal("CompletePartialled", final.fulfillmentOrder.fulfillmentOrderStatus)
    assert.equal(1, final.fulfillmentOrderItems[1].cancelledQuantity)
    -- no speed can fulfil an order for a SKU FBA does not know
    local options = assert(mcf.preview(sp, order("WF-X", { { sku = "NO-SUCH-SKU", quantity = 1 } })))
    none, err = mcf.choose(options)
    assert.is_nil(none)
    assert.equal("NotFulfillable", err.code)
    assert.matches("InvalidSKU", err.message)
    assert.has_error(function() mcf.create(sp, { id = "x", address = ADDRESS, items = { { sku = "A" } } }) end,
      "spapi.workflows.mcf: create: order.items[1].quantity must be a positive integer")
  end)

  it("yields one order when the create is re-sent after a dropped connection", function()
    -- the client re-sends (createFulfillmentOrder is keyed by its id) ...
    local sp = client()
    assert(sb.control("/_sandbox/faults", { operation = "fulfillment_outbound.createFulfillmentOrder",
      kind = "close", count = 1 }))
    local placed, how = mcf.create(sp, order("WF-DROP-1"), "Standard")
    assert.is_table(placed, tostring(how))
    assert.equal("WF-DROP-1", placed.fulfillmentOrder.sellerFulfillmentOrderId)
    assert.equal(1, count_orders(sp, "WF-DROP-1"))
    -- ... and without client retries the workflow finds the order the lost answer was about
    local once = client{ max_retries = 0 }
    assert(sb.control("/_sandbox/faults", { operation = "fulfillment_outbound.createFulfillmentOrder",
      kind = "close", count = 1 }))
    placed, how = mcf.create(once, order("WF-DROP-2"), "Standard")
    assert.is_table(placed, tostring(how))
    assert.equal("existing", how)
    assert.equal(1, count_orders(sp, "WF-DROP-2"))
    local stats = assert(sb.control("/_sandbox/stats", nil, "GET"))
    assert.is_true(stats.faults_injected >= 2)
    -- the units were reserved once per order
    assert.equal(96, assert(mcf.stock(sp, { "SKU-RED-MUG" }))["SKU-RED-MUG"])
  end)

  it("updates quantities of a held order, releases it, and cancels another", function()
    local sp = client()
    assert(mcf.create(sp, order("WF-H", { { sku = "SKU-TEE-M", quantity = 2 } }, { hold = true }), "Standard"))
    local p = assert(mcf.update(sp, "WF-H", { items = { { id = "WF-H-1", quantity = 4 } } }))
    assert.equal(4, p.fulfillmentOrderItems[1].quantity)
    assert.equal(16, assert(mcf.stock(sp, { "SKU-TEE-M" }))["SKU-TEE-M"])
    advance(3 * 3600)
    assert.equal("Received", assert(mcf.follow(sp, "WF-H", { until_status = "Received", progress = false }))
      .fulfillmentOrder.fulfillmentOrderStatus)
    assert(mcf.update(sp, "WF-H", { hold = false }))
    local final = assert(mcf.follow(sp, "WF-H", { interval = 0, sleep = sandbox_sleep, progress = false }))
    assert.equal("Complete", final.fulfillmentOrder.fulfillmentOrderStatus)

    assert(mcf.create(sp, order("WF-C", { { sku = "SKU-TEE-M", quantity = 3 } }), "Standard"))
    assert.equal(13, assert(mcf.stock(sp, { "SKU-TEE-M" }))["SKU-TEE-M"])
    local c = assert(mcf.cancel(sp, "WF-C"))
    assert.equal("Cancelled", c.fulfillmentOrder.fulfillmentOrderStatus)
    assert.equal(16, assert(mcf.stock(sp, { "SKU-TEE-M" }))["SKU-TEE-M"])
    -- too late to cancel a shipped order
    local none, err = mcf.cancel(sp, "WF-H")
    assert.is_nil(none)
    assert.equal(400, err.status)
  end)

  it("returns shipped items and sees them processed", function()
    local sp = client()
    assert(mcf.create(sp, order("WF-R", { { sku = "SKU-BLUE-MUG", quantity = 1 } }), "Standard"))
    local none, err = mcf.return_items(sp, "WF-R", { { id = "WF-R-1" } })
    assert.is_nil(none)
    assert.equal("NotShipped", err.code)
    assert(mcf.follow(sp, "WF-R", { interval = 0, sleep = sandbox_sleep, progress = false }))
    local r = assert(mcf.return_items(sp, "WF-R", { { id = "WF-R-1", comment = "too small" } }))
    assert.equal(1, #r.returned)
    assert.equal("New", r.returned[1].status)
    assert.matches("^RA", r.authorizations[1].returnAuthorizationId)
    advance(86400)
    local p = assert(mcf.follow(sp, "WF-R", { progress = false }))
    assert.equal("Processed", p.returnItems[1].status)
    assert.equal("Sellable", p.returnItems[1].returnReceivedCondition)
  end)

  it("lists every order updated since a date, over all pages", function()
    local sp = client()
    for i = 1, 7 do
      assert(mcf.create(sp, order("WF-L" .. i, { { sku = "SKU-RED-MUG", quantity = 1 } }), "Standard"))
    end
    local all = assert(mcf.orders_since(sp))
    assert.equal(7, #all) -- the sandbox pages by 5: two pages
    local t = assert(sb.control("/_sandbox/clock", nil, "GET")).now
    advance(120)
    assert(mcf.update(sp, "WF-L3", { comment = "gift wrap" }))
    local since = assert(mcf.orders_since(sp, t + 60))
    local ids = {}
    for _, o in ipairs(since) do ids[#ids + 1] = o.sellerFulfillmentOrderId end
    assert.same({ "WF-L3" }, ids)
  end)
end)

describe("examples/mcf_ship_order.lua", function()
  it("previews, creates and prints the tracking under make demo's script", function()
    local rc, out = H.run(string.format("cd %q && scripts/demo.sh examples/mcf_ship_order.lua", H.root))
    assert.equal(0, rc, out)
    assert.matches("Standard%s+fulfillable=true", out)
    assert.matches("created WEB%-1001 %(Standard%)", out)
    assert.matches("status Complete", out)
    assert.matches("package %d+: AMZN_US TBA%d+, IN_TRANSIT", out)
    assert.matches("done: WEB-1001 shipped", out, 1, true)
  end)
end)
