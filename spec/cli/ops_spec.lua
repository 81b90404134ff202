-- spapi ops / spapi describe / spapi run as a user runs them.
local H = require "helpers"
local S = require "cli.support"
local json = require "spapi.json"

local function count(s)
  local n = 0
  for _ in s:gmatch("[^\n]+") do n = n + 1 end
  return n
end

describe("spapi ops", function()
  it("lists every operation, one line each, with method, path, rate/burst and flags", function()
    local rc, out, err = S.spapi(nil, "ops")
    assert.equal(0, rc, err)
    local n = 0
    H.each_operation(function() n = n + 1 end)
    assert.equal(n, count(out))
    assert.matches("\nvendor_df_orders%.getOrders%s+GET%s+/vendor/directFulfillment/orders/2021%-12%-28/purchaseOrders%s+10/10%s+RDT\n", out)
    assert.matches("\nfba_inventory%.createInventoryItem%s+POST%s+/fba/inventory/v1/items%s+%-%s+sandbox%-only\n", out)
    assert.matches("\nfulfillment_outbound%.getFulfillmentPreview%s+POST%s+%S+%s+2/30%s+MWS=GetFulfillmentPreview\n", out)
    assert.matches("\nnotifications%.getDestinations%s+GET%s+%S+%s+[%d.]+/%d+%s+grantless\n", out)
  end)

  it("filters on API keys and operation ids, case-insensitive", function()
    local rc, out = S.spapi(nil, "ops VENDOR_DF_ORDERS")
    assert.equal(0, rc)
    for _, line in ipairs(S.lines(out)) do assert.matches("^vendor_df_orders%.", line) end
    assert.equal(3, count(out))
    rc, out = S.spapi(nil, "ops getfulfillmentorder")
    assert.equal(0, rc)
    assert.same({ "fulfillment_outbound.getFulfillmentOrder" }, { (out:match("^(%S+)")) })
    assert.equal(1, count(out))
    rc, out = S.spapi(nil, "ops createshipment")
    assert.equal(0, rc)
    assert.matches("merchant_fulfillment%.createShipment%s+POST%s+/mfn/v0/shipments%s+%S+%s+RDT", out)
  end)

  it("says so when nothing matches (exit 2)", function()
    local rc, out, err = S.spapi(nil, "ops no-such-thing")
    assert.equal(2, rc)
    assert.equal("", out)
    assert.matches("no operation matches 'no-such-thing'", err, 1, true)
  end)
end)

describe("spapi describe", function()
  it("shows parameters with where, type, required, enum and limits", function()
    local rc, out, err = S.spapi(nil, "describe fba_inventory.getInventorySummaries")
    assert.equal(0, rc, err)
    assert.matches("^fba_inventory%.getInventorySummaries\n", out)
    assert.matches("GET /fba/inventory/v1/summaries", out, 1, true)
    assert.matches("rate 2/s, burst 2", out, 1, true)
    assert.matches("\n  granularityType%s+query%s+string%s+required%s+one of: Marketplace\n", out)
    assert.matches("\n  details%s+query%s+boolean%s+optional%s+default false\n", out)
    assert.matches("\n  sellerSkus%s+query%s+array of string %(comma list%)%s+optional%s+at most 50 items\n", out)
    assert.matches("spapi call fba_inventory.getInventorySummaries granularityType=Marketplace", out, 1, true)
  end)

  it("builds an example body from the model: the required properties at every depth", function()
    local rc, out, err = S.spapi(nil, "describe fulfillment_outbound.createFulfillmentOrder")
    assert.equal(0, rc, err)
    local text = out:match("example body[^\n]*\n(%b{})")
    assert.truthy(text, out)
    local body = assert(json.decode(text))
    for _, k in ipairs({ "sellerFulfillmentOrderId", "displayableOrderId", "displayableOrderDate",
      "displayableOrderComment", "shippingSpeedCategory", "destinationAddress", "items" }) do
      assert.is_not_nil(body[k], k)
    end
    assert.is_string(body.destinationAddress.postalCode)
    assert.is_string(body.items[1].sellerSku)
    assert.is_number(body.items[1].quantity)
    -- an enum gets one of its values
    local spec = require("spapi.schemas.fulfillment_outbound").definitions.ShippingSpeedCategory
    assert.truthy(spec and spec.enum)
    local found = false
    for _, v in ipairs(spec.enum) do if v == body.shippingSpeedCategory then found = true end end
    assert.is_true(found)
    -- the example body goes through the request builder's checks
    local req = require("spapi.request").try(require("spapi.operations.fulfillment_outbound"), "createFulfillmentOrder",
      { body = body })
    assert.truthy(req)
  end)

  it("describes an MWS name as its SP-API operation; an unknown one exits 2", function()
    local rc, out = S.spapi(nil, "describe GetFulfillmentPreview")
    assert.equal(0, rc)
    assert.matches("^fulfillment_outbound%.getFulfillmentPreview\n", out)
    assert.matches("MWS=GetFulfillmentPreview", out, 1, true)
    local err
    rc, out, err = S.spapi(nil, "describe fulfillment_outbound.nope")
    assert.equal(2, rc)
    assert.equal("", out)
    assert.matches("no operation 'nope'", err, 1, true)
  end)

  it("describes every operation; each example body passes the request builder's checks", function()
    local rc, out, err = S.spapi(nil, "run -", { stdin = [[
local d, json, request = require "spapi.cli.describe", require "spapi.json", require "spapi.request"
local n, bodies = 0, 0
for api, mod in pairs(require("spapi.operations").apis) do
  local t = require(mod)
  for id, op in pairs(t.operations) do
    assert(d.text(api .. "." .. id))
    n = n + 1
    local ex, why = d.example_body(api, id, op)
    assert(ex or why == "no body", api .. "." .. id .. ": " .. tostring(why))
    if ex then
      bodies = bodies + 1
      local ok, e = request.try(t, id, { body = assert(json.decode(ex)) })
      assert(ok or e:find("missing required parameter", 1, true), e)
    end
  end
end
print(n, bodies)
]] })
    assert.equal(0, rc, err)
    local n, bodies = out:match("^(%d+)\t(%d+)")
    local total = 0
    H.each_operation(function() total = total + 1 end)
    assert.equal(total, tonumber(n))
    assert.is_true(tonumber(bodies) > 20)
  end)
end)

describe("spapi run", function()
  local sb, env
  setup(function()
    sb = S.sandbox()
    env = S.env(sb)
  end)
  teardown(function() if sb then sb.stop() end end)

  it("runs a script with sp ready and its arguments in ... and arg", function()
    local dir = H.tmpdir("cli-run-script")
    local f = assert(io.open(dir .. "/features.lua", "wb"))
    f:write([[
#!/usr/bin/env spapi-run
local mp = ...
local body = assert(sp.fulfillment_outbound.getFeatures{ marketplaceId = mp })
print(#body.payload.features, arg[0]:match("[^/]+$"), arg[1], select("#", ...), type(spapi.client))
]])
    f:close()
    local rc, out, err = S.spapi(env, "run " .. S.q(dir .. "/features.lua") .. " " .. "ATVPDKIKX0DER extra")
    assert.equal(0, rc, err)
    assert.equal("3\tfeatures.lua\tATVPDKIKX0DER\t2\tfunction\n", out)
  end)

  it("reports a raised error in one line with the error's exit code", function()
    local cases = {
      { "local b, e = sp.fulfillment_outbound.getFulfillmentOrder{ sellerFulfillmentOrderId = 'x' } assert(b, e)", 1,
        "404 NotFound" },
      { "sp.fulfillment_outbound.getFeatures{}", 2, "missing required parameter 'marketplaceId'" },
      { "local t = nil; print(t.x)", 1, "stdin:1: attempt to index" },
      { "print(", 2, "spapi run: stdin:1:" },
      { "os.exit(7)", 7, nil },
    }
    for _, c in ipairs(cases) do
      local rc, _, err = S.spapi(env, "run -", { stdin = c[1] })
      assert.equal(c[2], rc, c[1] .. "\n" .. err)
      if c[3] then assert.matches(c[3], err, 1, true) end
      assert.is_nil(err:find("traceback", 1, true), err)
      assert.is_true(count(err) <= 1, err)
    end
    local rc, _, err = S.spapi(S.env(sb, { LWA_CLIENT_SECRET = "wrong-secret-value" }), "run -",
      { stdin = "assert(sp.fulfillment_outbound.getFeatures{ marketplaceId = 'ATVPDKIKX0DER' })" })
    assert.equal(4, rc, err)
    assert.is_nil(err:find("wrong-secret-value", 1, true))
  end)

  it("needs no credentials for a script that does not use sp", function()
    local rc, out, err = S.spapi(S.env(nil, { LWA_CLIENT_ID = false, LWA_CLIENT_SECRET = false }), "run -",
      { stdin = "print(spapi.VERSION ~= nil)" })
    assert.equal(0, rc, err)
    assert.equal("true\n", out)
    rc, out, err = S.spapi(S.env(nil, { LWA_CLIENT_ID = false, LWA_CLIENT_SECRET = false }), "run -",
      { stdin = "print(sp)" })
    assert.equal(4, rc)
    assert.matches("client_id and client_secret are required", err, 1, true)
  end)

  it("reads a script from stdin when `spapi` has no command and stdin is not a terminal", function()
    local rc, out, err = S.spapi(env, "", { stdin = "print(#sp.fulfillment_outbound.getFeatures{ marketplaceId = 'ATVPDKIKX0DER' }.payload.features)" })
    assert.equal(0, rc, err)
    assert.equal("3\n", out)
  end)
end)
