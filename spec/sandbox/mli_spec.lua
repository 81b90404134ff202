-- Multi-Location Inventory against a real sandbox, over plain HTTP: supply
-- sources (create, alias rules, activate, update, paging, archive) and listings
-- items with fulfillment_availability per location plus DEFAULT, following the
-- rules of the MLI integration guide.
local H = require "helpers"
local core = require "spapi.core"

local SS = "/supplySources/2020-07-01/supplySources"
local SELLER = "A1MLISPECSELLER"
local MARKET = "ATVPDKIKX0DER"
local ITEMS = "/listings/2021-08-01/items/" .. SELLER

describe("sandbox: Multi-Location Inventory", function()
  local sandbox, token

  local function http(method, path, o)
    o = o or {}
    if o.token == nil then o.token = token end
    local status, headers, body, raw = H.sandbox_http(method, path, o)
    assert(status, headers)
    return status, body, raw, headers
  end

  local n = 0
  local function address(name)
    return { name = name, addressLine1 = "1 Main St", city = "Seattle", stateOrRegion = "WA",
      postalCode = "98109", countryCode = "US" }
  end

  -- create a supply source; returns its id (and activates it when asked)
  local function supply_source(alias, active)
    n = n + 1
    local code = "SPEC-" .. n
    local st, body = http("POST", SS, { body = { supplySourceCode = code, alias = alias, address = address(alias) } })
    assert.equal(200, st)
    assert.equal(code, body.supplySourceCode)
    assert.is_string(body.supplySourceId)
    if active then
      local st2, _, raw = http("PUT", SS .. "/" .. body.supplySourceId .. "/status", { body = { status = "Active" } })
      assert.equal(204, st2)
      assert.equal("", raw or "")
    end
    return body.supplySourceId, code
  end

  local function set_status(id, status)
    local st = http("PUT", SS .. "/" .. id .. "/status", { body = { status = status } })
    assert.equal(204, st)
  end

  local function item_path(sku) return ITEMS .. "/" .. core.urlencode(sku) end

  local function put_listing(sku, qty)
    local st, body = http("PUT", item_path(sku), { query = { marketplaceIds = MARKET }, body = {
      productType = "PRODUCT", requirements = "LISTING_OFFER_ONLY",
      attributes = { fulfillment_availability = { { fulfillment_channel_code = "DEFAULT", quantity = qty or 0 } } } } })
    assert.equal(200, st)
    assert.equal("ACCEPTED", body.status)
    assert.equal(sku, body.sku)
    return body
  end

  local function patch(sku, op, value, query)
    local q = { marketplaceIds = MARKET }
    for k, v in pairs(query or {}) do q[k] = v end
    local st, body = http("PATCH", item_path(sku), { query = q, body = { productType = "PRODUCT",
      patches = { { op = op, path = "/attributes/fulfillment_availability", value = value } } } })
    assert.equal(200, st)
    assert.equal(sku, body.sku)
    assert.is_string(body.submissionId)
    return body
  end

  local function get(sku, included)
    local st, body = http("GET", item_path(sku), { query = { marketplaceIds = MARKET,
      includedData = included or "fulfillmentAvailability,issues" } })
    assert.equal(200, st)
    return body
  end

  -- fulfillmentAvailability as code → quantity, plus the codes in order
  local function availability(sku)
    local body = get(sku)
    local map, order = {}, {}
    for _, e in ipairs(body.fulfillmentAvailability) do
      map[e.fulfillmentChannelCode] = e.quantity
      order[#order + 1] = e.fulfillmentChannelCode
    end
    return map, order, body
  end

  local function codes(issues)
    local out = {}
    for _, i in ipairs(issues or {}) do out[#out + 1] = i.code .. ":" .. i.severity end
    table.sort(out)
    return table.concat(out, ",")
  end

  before_each(function()
    sandbox = H.sandbox{ reset = true }
    assert(sandbox.control("/_sandbox/config", { rate_scale = 100 })) -- not a throttling spec
    token = token or H.sandbox_token()
  end)

  describe("supply sources", function()
    it("are created with unique codes and aliases, start Inactive, and can be activated and updated", function()
      local id, code = supply_source("Store Seattle")
      local st, body = http("GET", SS .. "/" .. id)
      assert.equal(200, st)
      assert.same({ id, code, "Store Seattle", "Inactive" },
        { body.supplySourceId, body.supplySourceCode, body.alias, body.status })
      assert.equal("98109", body.address.postalCode)

      -- the same code or alias again is refused
      st, body = http("POST", SS, { body = { supplySourceCode = code, alias = "Other", address = address("x") } })
      assert.equal(400, st)
      assert.equal("InvalidInput", body.errors[1].code)
      assert.equal("1004", body.errors[1].details)
      st, body = http("POST", SS, { body = { supplySourceCode = "SPEC-NEW", alias = "Store Seattle", address = address("x") } })
      assert.equal(400, st)
      assert.matches("alias", body.errors[1].message)
      -- the address needs its required fields
      st, body = http("POST", SS, { body = { supplySourceCode = "SPEC-NEW", alias = "New", address = { name = "x" } } })
      assert.equal(400, st)
      assert.matches("addressLine1", body.errors[1].details)

      set_status(id, "Active")
      st, body = http("GET", SS .. "/" .. id)
      assert.equal("Active", body.status)
      st, body = http("PUT", SS .. "/" .. id .. "/status", { body = { status = "Archived" } })
      assert.equal(400, st)

      local _, _, raw
      st, _, raw = http("PUT", SS .. "/" .. id, { body = { alias = "Store Seattle Downtown", configuration = {
        timezone = "America/Los_Angeles",
        operationalConfiguration = { handlingTime = { value = 2, timeUnit = "Days" },
          contactDetails = { primary = { email = "store@example.com", phone = "555-0100" } } } } } })
      assert.equal(204, st)
      assert.equal("", raw or "")
      st, body = http("GET", SS .. "/" .. id)
      assert.equal("Store Seattle Downtown", body.alias)
      assert.equal(2, body.configuration.operationalConfiguration.handlingTime.value)
      st, body = http("PUT", SS .. "/" .. id, { body = { configuration = { operationalConfiguration = {
        contactDetails = { primary = { email = "not an email" } } } } } })
      assert.equal(400, st)
      assert.equal("InvalidInput", body.errors[1].code)

      st, body = http("GET", SS .. "/no-such-id")
      assert.equal(404, st)
      assert.is_string(body.errors[1].message)
    end)

    it("page through every supply source that is not archived; archiving is final", function()
      local ids = {}
      for i = 1, 5 do ids[i] = supply_source("Paging " .. i) end
      local seen, pages, tok = {}, 0, nil
      repeat
        local st, body = http("GET", SS, { query = { pageSize = 2, nextPageToken = tok } })
        assert.equal(200, st)
        assert.is_true(#body.supplySources <= 2)
        for _, s in ipairs(body.supplySources) do seen[#seen + 1] = s.supplySourceId end
        tok = body.nextPageToken
        pages = pages + 1
      until not tok or pages > 10
      -- the seeded default location comes first, then ours in creation order
      assert.equal(6, #seen)
      assert.same(ids, { seen[2], seen[3], seen[4], seen[5], seen[6] })
      assert.equal(3, pages)

      local st, body, raw = http("DELETE", SS .. "/" .. ids[3])
      assert.equal(204, st)
      assert.equal("", raw or "")
      st, body = http("GET", SS .. "/" .. ids[3])
      assert.equal("Archived", body.status)
      for _, call in ipairs({ { "DELETE", SS .. "/" .. ids[3] }, { "PUT", SS .. "/" .. ids[3], { alias = "again" } },
        { "PUT", SS .. "/" .. ids[3] .. "/status", { status = "Active" } } }) do
        st, body = http(call[1], call[2], { body = call[3] })
        assert.equal(400, st)
        assert.equal("1005", body.errors[1].details)
      end
      st, body = http("GET", SS, { query = { pageSize = 50 } })
      assert.equal(5, #body.supplySources)
      for _, s in ipairs(body.supplySources) do assert.not_equal(ids[3], s.supplySourceId) end
      assert.is_nil(body.nextPageToken)
      -- the alias of an archived supply source is free again
      assert.is_string((supply_source("Paging 3")))

      st, body = http("GET", SS, { query = { pageSize = 0 } })
      assert.equal(400, st)
      st = http("GET", SS, { query = { nextPageToken = "garbage" } })
      assert.equal(400, st)
    end)
  end)

  describe("listings with fulfillment_availability", function()
    it("sets quantities per location and DEFAULT, enforcing the guide's rules", function()
      local a = supply_source("Store A", true)
      local _, b_code = supply_source("Store B") -- stays Inactive for now
      local sku = "MLI-SKU-1"
      put_listing(sku, 3)
      local map, order = availability(sku)
      assert.same({ DEFAULT = 3 }, map)
      assert.same({ "DEFAULT" }, order)

      -- a quantity on an inactive supply source is refused and nothing changes
      local r = patch(sku, "replace", { { fulfillment_channel_code = a, quantity = 10 },
        { fulfillment_channel_code = "Store B", quantity = 5 }, { fulfillment_channel_code = "DEFAULT", quantity = 0 } })
      assert.equal("INVALID", r.status)
      assert.equal("MLI_SUPPLY_SOURCE_INACTIVE:ERROR", codes(r.issues))
      assert.same({ "fulfillment_availability" }, r.issues[1].attributeNames)
      assert.same({ DEFAULT = 3 }, (availability(sku)))

      -- once active it is accepted; DEFAULT reports the consolidated quantity
      local _, body = http("GET", SS, { query = { pageSize = 50 } })
      local b
      for _, s in ipairs(body.supplySources) do if s.alias == "Store B" then b = s.supplySourceId end end
      set_status(b, "Active")
      r = patch(sku, "replace", { { fulfillment_channel_code = a, quantity = 10 },
        { fulfillment_channel_code = "Store B", quantity = 5 }, { fulfillment_channel_code = "DEFAULT", quantity = 0 } })
      assert.equal("ACCEPTED", r.status)
      assert.same({}, r.issues)
      map, order = availability(sku)
      assert.same({ DEFAULT = 15, [a] = 10, ["Store B"] = 5 }, map)
      assert.same({ "DEFAULT", a, "Store B" }, order)

      -- replace works per fulfillment channel: the other entries stay
      r = patch(sku, "replace", { { fulfillment_channel_code = a, quantity = 7 } })
      assert.equal("ACCEPTED", r.status)
      assert.same({ DEFAULT = 12, [a] = 7, ["Store B"] = 5 }, (availability(sku)))

      -- unknown channel, negative quantity, misspelt key: INVALID with the matching issues
      r = patch(sku, "replace", { { fulfillment_channel_code = "NO-SUCH-STORE", quantity = 1 } })
      assert.equal("INVALID", r.status)
      assert.equal("MLI_UNKNOWN_SUPPLY_SOURCE:ERROR", codes(r.issues))
      r = patch(sku, "replace", { { fulfillment_channel_code = a, quantity = -1 } })
      assert.equal("INVALID", r.status)
      assert.equal("90000900:ERROR", codes(r.issues))
      r = patch(sku, "replace", { { fulfillmentChannelCode = a, quantity = 1 } })
      assert.equal("INVALID", r.status)
      assert.equal("90220:ERROR", codes(r.issues))
      assert.same({ DEFAULT = 12, [a] = 7, ["Store B"] = 5 }, (availability(sku)))

      -- DEFAULT above 0 next to location quantities: accepted with a warning (two offers)
      r = patch(sku, "replace", { { fulfillment_channel_code = "DEFAULT", quantity = 4 } })
      assert.equal("ACCEPTED", r.status)
      assert.equal("MLI_DEFAULT_NOT_ZERO:WARNING", codes(r.issues))
      map, _, body = availability(sku)
      assert.equal(4, map.DEFAULT)
      assert.equal("MLI_DEFAULT_NOT_ZERO:WARNING", codes(body.issues))
      r = patch(sku, "replace", { { fulfillment_channel_code = "DEFAULT", quantity = 0 } })
      assert.same({}, r.issues)
      map, _, body = availability(sku)
      assert.equal(12, map.DEFAULT)
      assert.same({}, body.issues)

      -- MLI is not available for FBA inventory
      r = patch(sku, "add", { { fulfillment_channel_code = "AMAZON_NA", quantity = 1 } })
      assert.equal("INVALID", r.status)
      assert.equal("MLI_FBA_NOT_SUPPORTED:ERROR", codes(r.issues))

      -- a validation preview checks without changing anything
      r = patch(sku, "replace", { { fulfillment_channel_code = a, quantity = 99 } }, { mode = "VALIDATION_PREVIEW" })
      assert.equal("VALID", r.status)
      assert.equal(7, (availability(sku))[a])

      -- delete removes a channel, whichever name (id, code, alias) is used
      r = patch(sku, "delete", { { fulfillment_channel_code = b_code } })
      assert.equal("ACCEPTED", r.status)
      assert.same({ DEFAULT = 7, [a] = 7 }, (availability(sku)))
    end)

    it("stops counting inactive locations and drops archived ones", function()
      local a = supply_source("Store A", true)
      local c = supply_source("Store C", true)
      local sku = "MLI-SKU-2"
      put_listing(sku, 0)
      assert.equal("ACCEPTED", patch(sku, "replace", { { fulfillment_channel_code = a, quantity = 4 },
        { fulfillment_channel_code = c, quantity = 6 } }).status)
      assert.same({ DEFAULT = 10, [a] = 4, [c] = 6 }, (availability(sku)))

      set_status(a, "Inactive")
      local map, _, body = availability(sku)
      assert.same({ DEFAULT = 6, [a] = 4, [c] = 6 }, map)
      assert.equal("MLI_SUPPLY_SOURCE_INACTIVE:WARNING", codes(body.issues))
      -- more stock on an inactive location is refused, clearing it to 0 is fine
      assert.equal("INVALID", patch(sku, "replace", { { fulfillment_channel_code = a, quantity = 5 } }).status)
      assert.equal("ACCEPTED", patch(sku, "replace", { { fulfillment_channel_code = a, quantity = 0 } }).status)

      local st = http("DELETE", SS .. "/" .. c)
      assert.equal(204, st)
      map = availability(sku)
      assert.same({ DEFAULT = 0, [a] = 0 }, map)
      local r = patch(sku, "replace", { { fulfillment_channel_code = c, quantity = 1 } })
      assert.equal("INVALID", r.status)
      assert.equal("MLI_SUPPLY_SOURCE_ARCHIVED:ERROR", codes(r.issues))
    end)

    it("returns summaries and attributes, and refuses malformed requests", function()
      local a = supply_source("Store A", true)
      local sku = "MLI-SKU-3"
      put_listing(sku, 0)
      patch(sku, "replace", { { fulfillment_channel_code = a, quantity = 2 } })
      local body = get(sku, "summaries,attributes")
      assert.equal(sku, body.sku)
      assert.equal(MARKET, body.summaries[1].marketplaceId)
      assert.equal("PRODUCT", body.summaries[1].productType)
      assert.same({ "BUYABLE", "DISCOVERABLE" }, body.summaries[1].status)
      assert.is_string(body.summaries[1].asin)
      assert.same({ { fulfillment_channel_code = "DEFAULT", quantity = 0 }, { fulfillment_channel_code = a, quantity = 2 } },
        body.attributes.fulfillment_availability)
      assert.is_nil(body.fulfillmentAvailability)

      -- nested paths cannot be patched
      local st, r = http("PATCH", item_path(sku), { query = { marketplaceIds = MARKET }, body = { productType = "PRODUCT",
        patches = { { op = "replace", path = "/attributes/fulfillment_availability/0/quantity", value = { { x = 1 } } } } } })
      assert.equal(200, st)
      assert.equal("INVALID", r.status)
      st, r = http("PATCH", item_path(sku), { query = { marketplaceIds = MARKET }, body = { productType = "PRODUCT" } })
      assert.equal(400, st)
      assert.is_string(r.errors[1].message)
      st, r = http("GET", item_path(sku))
      assert.equal(400, st) -- marketplaceIds is required
      st, r = http("GET", item_path("NO-SUCH-SKU"), { query = { marketplaceIds = MARKET } })
      assert.equal(404, st)
      assert.is_string(r.errors[1].code)
      -- a patch on a listing that does not exist is INVALID
      r = patch("NO-SUCH-SKU", "replace", { { fulfillment_channel_code = "DEFAULT", quantity = 1 } })
      assert.equal("INVALID", r.status)
    end)

    it("round-trips SKUs with spaces, slashes and unicode", function()
      local sku = "Blue Mug / 12oz – Größe ü+&?#"
      put_listing(sku, 5)
      local body = get(sku, "summaries,fulfillmentAvailability")
      assert.equal(sku, body.sku)
      assert.same({ { fulfillmentChannelCode = "DEFAULT", quantity = 5 } }, body.fulfillmentAvailability)
      local st
      st, body = http("GET", ITEMS, { query = { marketplaceIds = MARKET, identifiersType = "SKU", identifiers = sku } })
      assert.equal(200, st)
      assert.equal(1, body.numberOfResults)
      assert.equal(sku, body.items[1].sku)
      st, body = http("DELETE", item_path(sku), { query = { marketplaceIds = MARKET } })
      assert.equal(200, st)
      assert.equal("ACCEPTED", body.status)
      assert.equal(sku, body.sku)
      st = http("GET", item_path(sku), { query = { marketplaceIds = MARKET } })
      assert.equal(404, st)
      -- a SKU that differs only after the slash is another listing
      put_listing("A/B", 1)
      st = http("GET", item_path("A/C"), { query = { marketplaceIds = MARKET } })
      assert.equal(404, st)
    end)

    it("takes supply sources and listings from /_sandbox/seed", function()
      assert(sandbox.control("/_sandbox/seed", {
        supplySources = { { supplySourceCode = "SEEDED-1", alias = "Seeded Store", address = address("Seeded Store") } },
        listings = { { sellerId = SELLER, sku = "SEEDED-SKU", attributes = { fulfillment_availability = {
          { fulfillment_channel_code = "SEEDED-1", quantity = 4 },
          { fulfillment_channel_code = "DEFAULT", quantity = 0 } } } } },
      }))
      assert.same({ DEFAULT = 4, ["SEEDED-1"] = 4 }, (availability("SEEDED-SKU")))
      local _, body = http("GET", SS, { query = { pageSize = 50 } })
      local aliases = {}
      for _, s in ipairs(body.supplySources) do aliases[#aliases + 1] = s.alias end
      assert.same({ "Default Location", "Seeded Store" }, aliases)
      -- seed data that breaks the rules is refused
      local ok, err = sandbox.control("/_sandbox/seed", { listings = { { sellerId = SELLER, sku = "BAD",
        attributes = { fulfillment_availability = { { fulfillment_channel_code = "NOWHERE", quantity = 1 } } } } } })
      assert.is_nil(ok)
      assert.matches("400", err)
    end)

    it("searches listings with paging and sorting", function()
      local skus = { "S-3", "S-1", "S-5", "S-2", "S-4" }
      for _, s in ipairs(skus) do put_listing(s, 1) end
      local seen, tok, pages = {}, nil, 0
      repeat
        local st, body = http("GET", ITEMS, { query = { marketplaceIds = MARKET, pageSize = 2, sortBy = "sku",
          sortOrder = "ASC", pageToken = tok, includedData = "summaries" } })
        assert.equal(200, st)
        assert.equal(5, body.numberOfResults)
        for _, it in ipairs(body.items) do seen[#seen + 1] = it.sku end
        tok = body.pagination and body.pagination.nextToken
        pages = pages + 1
      until not tok or pages > 5
      assert.same({ "S-1", "S-2", "S-3", "S-4", "S-5" }, seen)
      local st, body = http("GET", ITEMS, { query = { marketplaceIds = MARKET, identifiersType = "SKU" } })
      assert.equal(400, st)
      assert.is_string(body.errors[1].message)
    end)
  end)

  describe("the guide's productType rule", function()
    it("takes location quantities only with productType PRODUCT, and keeps the listing's product type", function()
      local loc = supply_source("PT store", true)
      local st, body = http("PUT", item_path("PT-1"), { query = { marketplaceIds = MARKET }, body = {
        productType = "LUGGAGE", requirements = "LISTING_OFFER_ONLY",
        attributes = { fulfillment_availability = { { fulfillment_channel_code = "DEFAULT", quantity = 4 } } } } })
      assert.equal(200, st)
      assert.equal("ACCEPTED", body.status)
      local value = { { fulfillment_channel_code = loc, quantity = 7 }, { fulfillment_channel_code = "DEFAULT", quantity = 0 } }
      st, body = http("PATCH", item_path("PT-1"), { query = { marketplaceIds = MARKET }, body = {
        productType = "LUGGAGE", patches = { { op = "replace", path = "/attributes/fulfillment_availability", value = value } } } })
      assert.equal(200, st)
      assert.equal("INVALID", body.status)
      assert.equal("MLI_PRODUCT_TYPE:ERROR", codes(body.issues))
      assert.equal(4, (availability("PT-1")).DEFAULT) -- nothing changed
      -- DEFAULT alone is not an MLI update: any product type will do
      st, body = http("PATCH", item_path("PT-1"), { query = { marketplaceIds = MARKET }, body = {
        productType = "LUGGAGE", patches = { { op = "replace", path = "/attributes/fulfillment_availability",
          value = { { fulfillment_channel_code = "DEFAULT", quantity = 5 } } } } } })
      assert.equal(200, st)
      assert.equal("ACCEPTED", body.status)
      assert.equal(5, (availability("PT-1")).DEFAULT)
      body = patch("PT-1", "replace", value)
      assert.equal("ACCEPTED", body.status)
      local map = availability("PT-1")
      assert.equal(7, map[loc])
      assert.equal(7, map.DEFAULT)
      local b = get("PT-1", "summaries")
      assert.equal("LUGGAGE", b.summaries[1].productType)
    end)
  end)
end)
