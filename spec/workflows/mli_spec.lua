-- The MLI workflow (spapi.workflows.mli) and the feed builders it uses, through the
-- client against the sandbox in a real nginx: supply sources, quantities per
-- location with the DEFAULT rule, a JSON_LISTINGS_FEED for many SKUs checked
-- against Amazon's schema, POST_ORDER_FULFILLMENT_DATA, and a CSV sync whose re-run
-- sends nothing.
local H = require "helpers"
local mli = require "spapi.workflows.mli"
local listings = require "spapi.feeds.listings"
local fschema = require "spapi.feeds.schema"
local of = require "spapi.feeds.order_fulfillment"
local json = require "spapi.json"

local SELLER = "A1MLIWORKFLOW"
local function address(name)
  return { name = name, addressLine1 = "1 Main St", city = "Seattle", stateOrRegion = "WA", postalCode = "98109",
    countryCode = "US" }
end
local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

describe("feeds builders", function()
  H.it_with_models(it)("the generated listings feed schema regenerates byte for byte from Amazon's schema", function()
    local gen = assert(loadfile(H.root .. "/tools/gen_feed_schema.lua"))()
    local fresh = gen.render(read(H.models .. "/schemas/listings-feed-schema-v2.json"), "listings-feed-schema-v2.json")
    assert(fresh == read(H.root .. "/lua/spapi/schemas/listings_feed.lua"),
      "lua/spapi/schemas/listings_feed.lua differs from a fresh generation (run `make operations`)")
  end)

  H.it_with_models(it)("passes Amazon's example listings feed through the generated schema", function()
    local schema = require "spapi.schemas.listings_feed"
    local example = assert(json.decode(read(H.models .. "/schemas/listings-feed-schema-v2.example.json")))
    assert.is_true((fschema.check(schema, example)))
  end)

  it("checks documents against the schema: broken messages are named", function()
    local schema = require "spapi.schemas.listings_feed"
    local ok, problems = fschema.check(schema, { header = { sellerId = "A1", version = "1.0" }, messages = {
      { messageId = 1, sku = "A", operationType = "PATCH", productType = "PRODUCT" },
      { messageId = 0, sku = "", operationType = "DELETE" },
      { messageId = 3, sku = "C", operationType = "DELETE", productType = "PRODUCT" },
      { messageId = 4, sku = "D", operationType = "UPSERT" } } })
    assert.is_false(ok)
    local all = table.concat(problems, "\n")
    assert.matches("header.version: must be \"2.0\"", all, 1, true)
    assert.matches("messages[1]: 'patches' is required", all, 1, true)
    assert.matches("messages[2].messageId: must be at least 1", all, 1, true)
    assert.matches("messages[2].sku: must have at least 1 characters", all, 1, true)
    assert.matches("messages[3].productType: is not allowed here", all, 1, true)
    assert.matches("messages[4].operationType: must be one of", all, 1, true)
    ok, problems = fschema.check(schema, { header = { sellerId = "A1", version = "2.0" }, messages = json.array() })
    assert.is_false(ok)
    assert.same({ "messages: must have at least 1 items" }, problems)
  end)

  it("builds per-location quantities with the DEFAULT rule and refuses a feed the schema refuses", function()
    local v, w = listings.availability({ ["store-b"] = 3, ["store-a"] = 2 })
    assert.same({ { fulfillment_channel_code = "store-a", quantity = 2 }, { fulfillment_channel_code = "store-b", quantity = 3 },
      { fulfillment_channel_code = "DEFAULT", quantity = 0 } }, v)
    assert.is_nil(w)
    v = listings.availability({ ["store-a"] = 2, DEFAULT = 9 })
    assert.same({ { fulfillment_channel_code = "DEFAULT", quantity = 0 }, { fulfillment_channel_code = "store-a", quantity = 2 } }, v)
    v, w = listings.availability({ ["store-a"] = 2, DEFAULT = 9 }, "warn")
    assert.equal(9, v[1].quantity)
    assert.matches("DEFAULT is 9", w)
    assert.has_error(function() listings.availability({ ["store-a"] = -1 }) end,
      "spapi.feeds.listings: quantity of store-a must be a whole number from 0")

    local feed = listings.new{ seller_id = "A1" }
    feed:quantities("SKU-1", { ["store-a"] = 1 })
    feed:patch("SKU-2", "", { { op = "replace", path = "/attributes/x", value = { {} } } })
    local text, err = feed:encode()
    assert.is_nil(text)
    assert.equal("InvalidFeed", err.code)
    assert.same({ "messages[2].productType: must have at least 1 characters" }, err.problems)
  end)

  it("builds shipment confirmations: escaping, CarrierCode or Other with CarrierName, no ShipFromSupplySourceId", function()
    local x = of.build{ merchant_id = "M&1", confirmations = {
      { amazon_order_id = "111-2", date = 0, carrier = "usps", shipping_method = "First <Class>", tracking_number = "9400" },
      { merchant_order_id = "W-1", date = "2026-12-01T10:00:00Z", carrier = "Kangaroo & Sons", shipping_method = "Ground",
        tracking_number = "K'1", items = { { merchant_order_item_id = "L1", quantity = 2 } },
        ship_from = { name = "Store \"A\"", address_line1 = "1 Main St", city = "Seattle", country_code = "US" } } } }
    assert.matches("<MerchantIdentifier>M&amp;1</MerchantIdentifier>", x, 1, true)
    assert.matches("<FulfillmentDate>1970-01-01T00:00:00+00:00</FulfillmentDate>", x, 1, true)
    assert.matches("<CarrierCode>USPS</CarrierCode><ShippingMethod>First &lt;Class&gt;</ShippingMethod>", x, 1, true)
    assert.matches("<CarrierCode>Other</CarrierCode><CarrierName>Kangaroo &amp; Sons</CarrierName>", x, 1, true)
    assert.matches("<ShipperTrackingNumber>K&apos;1</ShipperTrackingNumber>", x, 1, true)
    assert.matches("<Item><MerchantOrderItemID>L1</MerchantOrderItemID><Quantity>2</Quantity></Item>", x, 1, true)
    assert.matches("<ShipFromAddress><Name>Store &quot;A&quot;</Name><AddressFieldOne>1 Main St</AddressFieldOne>", x, 1, true)
    assert.truthy(require("spapi.sandbox.xml").parse(x))
    local base = { amazon_order_id = "1", date = 0, carrier = "UPS", shipping_method = "Ground", tracking_number = "1Z" }
    local function with(k, v)
      local c = {}
      for a, b in pairs(base) do c[a] = b end
      c[k] = v
      return { merchant_id = "M", confirmations = { c } }
    end
    assert.has_error(function() of.build(with("tracking_number", nil)) end,
      "spapi.feeds.order_fulfillment: confirmations[1]: tracking_number is required")
    assert.has_error(function() of.build(with("ship_from_supply_source_id", "abc")) end,
      "spapi.feeds.order_fulfillment: confirmations[1]: ship_from_supply_source_id is not supported by Amazon "
        .. "(MLI guide): give the location as ship_from")
    assert.has_error(function() of.build(with("merchant_order_id", "W")) end,
      "spapi.feeds.order_fulfillment: confirmations[1]: exactly one of amazon_order_id and merchant_order_id is required")
    assert.has_error(function() of.build(with("shipping_method", "a\1b")) end)
  end)
end)

describe("workflows.mli", function()
  local sb

  local function client()
    return assert(require("spapi").client{ env = false, endpoint = sb.endpoint, lwa_endpoint = sb.lwa_endpoint,
      client_id = "amzn1.application-oa2-client.wf", client_secret = "s", refresh_token = "Atzr|mli-workflow",
      retry_base = 0.01, retry_cap = 0.05 })
  end
  local function advance(seconds) assert(sb.control("/_sandbox/clock", { advance = seconds })) end
  local function feed_sleep() advance(15) end
  local function stats() return assert(sb.control("/_sandbox/stats", nil, "GET")).requests end
  local function listing(sp, sku, default)
    local r = assert(sp.listings_items.putListingsItem{ sellerId = SELLER, sku = sku, marketplaceIds = { "ATVPDKIKX0DER" },
      body = { productType = "PRODUCT", requirements = "LISTING_OFFER_ONLY", attributes = {
        fulfillment_availability = { { fulfillment_channel_code = "DEFAULT", quantity = default or 3 } } } } })
    assert.equal("ACCEPTED", r.status)
  end

  before_each(function()
    sb = H.sandbox{ reset = { speed = 0 } }
    assert(sb.control("/_sandbox/config", { rate_scale = 100 }))
  end)

  it("creates, activates, updates, lists and archives supply sources; a re-run finds them", function()
    local sp = client()
    local id, how = mli.create_supply_source(sp, { code = "wf-seattle", alias = "Seattle", address = address("Seattle") })
    assert.is_string(id, tostring(how))
    assert.equal("created", how)
    local again, how2 = assert(mli.create_supply_source(sp, { code = "wf-seattle", alias = "Seattle",
      address = address("Seattle") }))
    assert.equal(id, again)
    assert.equal("existing", how2)
    assert.equal("Active", assert(mli.supply_source(sp, id)).status)
    local inactive = assert(mli.create_supply_source(sp, { code = "wf-tacoma", alias = "Tacoma", address = address("Tacoma"),
      activate = false }))
    assert.equal("Inactive", assert(mli.supply_source(sp, inactive)).status)
    assert(mli.update_supply_source(sp, id, { alias = "Seattle downtown",
      configuration = { timezone = "America/Los_Angeles" } }))
    local s = assert(mli.supply_source(sp, id))
    assert.equal("Seattle downtown", s.alias)
    assert.equal("America/Los_Angeles", s.configuration.timezone)
    assert(mli.deactivate(sp, id))
    assert.equal("Inactive", assert(mli.supply_source(sp, id)).status)
    local codes = {}
    for _, x in ipairs(assert(mli.supply_sources(sp))) do codes[x.supplySourceCode] = true end
    assert.is_true(codes["wf-seattle"] and codes["wf-tacoma"] and codes["default-location"])
    assert(mli.archive(sp, inactive))
    codes = {}
    for _, x in ipairs(assert(mli.supply_sources(sp))) do codes[x.supplySourceCode] = true end
    assert.is_nil(codes["wf-tacoma"])
    local none, err = mli.activate(sp, inactive)
    assert.is_nil(none)
    assert.equal(400, err.status)
  end)

  it("sets quantities per location for a SKU, DEFAULT 0 enforced or warned, and reads them back", function()
    local sp = client()
    assert(mli.create_supply_source(sp, { code = "q-a", alias = "Store A", address = address("A") }))
    assert(mli.create_supply_source(sp, { code = "q-b", alias = "Store B", address = address("B") }))
    listing(sp, "MLI-1", 3)
    local r = assert(mli.set_quantities(sp, { seller_id = SELLER, sku = "MLI-1", quantities = { ["q-a"] = 10, ["q-b"] = 5 } }))
    assert.equal("ACCEPTED", r.status)
    assert.same({ DEFAULT = 0, ["q-a"] = 10, ["q-b"] = 5 }, r.stored)
    assert.same({ DEFAULT = 15, ["q-a"] = 10, ["q-b"] = 5 }, r.availability) -- DEFAULT: the consolidated count
    assert.is_nil(r.warning)
    assert.same(r.availability, assert(mli.quantities(sp, SELLER, "MLI-1")).availability)
    -- warn: DEFAULT stays as given, the caller and the listing say so
    r = assert(mli.set_quantities(sp, { seller_id = SELLER, sku = "MLI-1", default_rule = "warn",
      quantities = { ["q-a"] = 1, DEFAULT = 4 } }))
    assert.matches("DEFAULT is 4", r.warning)
    assert.equal(4, r.stored.DEFAULT)
    local codes = {}
    for _, i in ipairs(r.issues) do codes[#codes + 1] = i.code end
    assert.same({ "MLI_DEFAULT_NOT_ZERO" }, codes)
    -- refused: an unknown location; nothing changes
    local none, err = mli.set_quantities(sp, { seller_id = SELLER, sku = "MLI-1", quantities = { ["q-nowhere"] = 1 } })
    assert.is_nil(none)
    assert.equal("Invalid", err.code)
    assert.equal("MLI_UNKNOWN_SUPPLY_SOURCE", err.issues[1].code)
    assert.equal(1, assert(mli.quantities(sp, SELLER, "MLI-1")).stored["q-a"])
    assert.has_error(function() mli.set_quantities(sp, { seller_id = SELLER, sku = "MLI-1", quantities = {} }) end,
      "spapi.workflows.mli: set_quantities: quantities must map at least one channel code to a quantity")
  end)

  it("sends many SKUs in one checked JSON_LISTINGS_FEED, waits for it and reports per SKU", function()
    local sp = client()
    assert(mli.create_supply_source(sp, { code = "b-a", alias = "Bulk A", address = address("A") }))
    assert(mli.create_supply_source(sp, { code = "b-b", alias = "Bulk B", address = address("B") }))
    local skus = {}
    for i = 1, 30 do
      local sku = string.format("BULK-%02d", i)
      listing(sp, sku)
      skus[sku] = { ["b-a"] = i, ["b-b"] = 2 * i }
    end
    skus["BULK-BAD"] = { ["b-nowhere"] = 1 }
    listing(sp, "BULK-BAD")
    local events = {}
    local report = assert(mli.bulk_quantities(sp, { seller_id = SELLER, skus = skus, interval = 0, sleep = feed_sleep,
      progress = function(ev) events[#events + 1] = ev end }))
    assert.equal("DONE", report.status)
    assert.is_string(report.feed_id)
    assert.is_true(events[#events].finished)
    assert.equal("DONE", events[#events].note)
    assert.equal(31, report.summary.messagesProcessed)
    assert.equal(30, report.summary.messagesAccepted)
    assert.equal("ACCEPTED", report.skus["BULK-07"].status)
    assert.equal("INVALID", report.skus["BULK-BAD"].status)
    assert.equal("MLI_UNKNOWN_SUPPLY_SOURCE", report.skus["BULK-BAD"].issues[1].code)
    -- the report lists the items as they are now
    local fa = {}
    for _, e in ipairs(report.skus["BULK-07"].item.fulfillmentAvailability) do fa[e.fulfillmentChannelCode] = e.quantity end
    assert.same({ DEFAULT = 21, ["b-a"] = 7, ["b-b"] = 14 }, fa)
    assert.same({ DEFAULT = 0, ["b-a"] = 30, ["b-b"] = 60 }, assert(mli.quantities(sp, SELLER, "BULK-30")).stored)
    -- a feed the schema refuses is never uploaded
    local before = stats()["feeds.createFeedDocument"]
    local too_many = {}
    for i = 1, 25001 do too_many["MANY-" .. i] = { ["b-a"] = 1 } end -- a feed holds at most 25000 messages
    local none, err = mli.bulk_quantities(sp, { seller_id = SELLER, skus = too_many })
    assert.is_nil(none)
    assert.equal("InvalidFeed", err.code)
    assert.same({ "messages: must have at most 25000 items" }, err.problems)
    assert.equal(before, stats()["feeds.createFeedDocument"])
  end)

  it("confirms shipments with POST_ORDER_FULFILLMENT_DATA", function()
    local sp = client()
    local report = assert(mli.confirm_shipments(sp, { merchant_id = SELLER, interval = 0, sleep = feed_sleep,
      progress = false, confirmations = {
        { amazon_order_id = "113-0000001-0000001", date = "2026-12-01T10:00:00Z", carrier = "USPS",
          shipping_method = "USPS First Class Mail", tracking_number = "9400100000000000000001",
          items = { { amazon_order_item_code = "12345678901234", quantity = 1 } } },
        { amazon_order_id = "113-0000001-0000002", date = "2026-12-01T10:00:00Z", carrier = "Kangaroo & Sons",
          shipping_method = "Bike", tracking_number = "KS-2",
          ship_from = { name = "Store A", address_line1 = "1 Main St", city = "Seattle", state_or_region = "WA",
            postal_code = "98109", country_code = "US" } } } }))
    assert.equal("DONE", report.status)
    assert.same({ 2, 2, 0, 0 }, { report.processed, report.successful, report.errors, report.warnings })
    local ships = assert(sb.control("/_sandbox/programs/feeds/shipments", { amazonOrderId = "113-0000001-0000002" })).shipments
    assert.equal("Other", ships[1].carrierCode)
    assert.equal("Kangaroo & Sons", ships[1].carrierName)
    assert.equal("Seattle", ships[1].shipFromAddress.City)
  end)

  it("syncs a CSV of sku,location,quantity; a re-run that changes nothing sends nothing", function()
    local sp = client()
    assert(mli.create_supply_source(sp, { code = "s-a", alias = "Sync A", address = address("A") }))
    assert(mli.create_supply_source(sp, { code = "s-b", alias = "Sync B", address = address("B") }))
    for _, sku in ipairs({ "SYNC-1", "SYNC-2", "SYNC 3" }) do listing(sp, sku, 7) end
    local rows = assert(mli.read_csv("sku,location,quantity\r\nSYNC-1,s-a,4\nSYNC-1,s-b,0\n\n# a comment\n"
      .. "SYNC-2, s-a ,12\n\"SYNC 3\",\"s-b\",1\n"))
    assert.same({ sku = "SYNC 3", location = "s-b", quantity = 1 }, rows[4])
    local o = { seller_id = SELLER, rows = rows, interval = 0, sleep = feed_sleep, progress = false }
    local r = assert(mli.sync(sp, o))
    assert.same({ "SYNC-1", "SYNC-2", "SYNC 3" }, r.changed)
    assert.equal(3, r.report.summary.messagesAccepted)
    assert.same({ DEFAULT = 0, ["s-a"] = 4, ["s-b"] = 0 }, assert(mli.quantities(sp, SELLER, "SYNC-1")).stored)
    -- the re-run reads, and writes nothing: no feed, no patch
    local before = stats()
    r = assert(mli.sync(sp, o))
    assert.same({}, r.changed)
    assert.same({ "SYNC-1", "SYNC-2", "SYNC 3" }, r.unchanged)
    assert.is_nil(r.report)
    local after = stats()
    for _, op in ipairs({ "feeds.createFeedDocument", "feeds.createFeed", "listings_items.patchListingsItem" }) do
      assert.equal(before[op], after[op], op)
    end
    -- one row changes: only that SKU is sent (patch mode: one patchListingsItem)
    rows[3].quantity = 11
    r = assert(mli.sync(sp, { seller_id = SELLER, rows = rows, mode = "patch" }))
    assert.same({ "SYNC-2" }, r.changed)
    assert.equal("ACCEPTED", r.results["SYNC-2"].status)
    assert.equal((after["listings_items.patchListingsItem"] or 0) + 1, stats()["listings_items.patchListingsItem"])
    assert.equal(11, assert(mli.quantities(sp, SELLER, "SYNC-2")).stored["s-a"])
    local none, err = mli.read_csv("sku,where,quantity\nA,B,1\n")
    assert.is_nil(none)
    assert.equal("BadCSV", err.code)
    none, err = mli.read_csv("sku,location,quantity\nA,B,-1\n")
    assert.matches("line 2: quantity", err.message)
  end)
end)

describe("examples/mli_sync_inventory.lua", function()
  it("pushes the CSV under make demo's script, and its second run sends nothing", function()
    local rc, out = H.run(string.format("cd %q && scripts/demo.sh examples/mli_sync_inventory.lua", H.root))
    assert.equal(0, rc, out)
    assert.matches("run 1: 3 SKUs sent, 0 unchanged", out, 1, true)
    assert.matches("mug, red     ACCEPTED", out, 1, true)
    assert.matches("run 2: 0 SKUs sent, 3 unchanged", out, 1, true)
    assert.matches("ssnm001      DEFAULT=15 store-seattle=10 store-tacoma=5", out, 1, true)
    assert.matches("done: inventory of examples/mli_inventory.csv is on Amazon", out, 1, true)
  end)
end)
