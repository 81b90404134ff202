-- The REPL's completion (spapi.repl.complete) as readline asks for it: the whole
-- line and the word being completed (readline breaks words at spaces, quotes,
-- '(', '{', '=', ... but not at '.' or ':').
local repl = require "spapi.repl"
local common = require "spapi.cli.common"

local function word_start(line)
  local i = #line
  while i > 0 and not line:sub(i, i):find("[%s\"'`@$><=;|&{(]") do i = i - 1 end
  return i + 1
end

describe("REPL completion", function()
  local env
  setup(function()
    env = common.env{ client_id = "amzn1.application-oa2-client.x", client_secret = "s", refresh_token = "Atzr|x",
      endpoint = "http://127.0.0.1:1", env = false }
  end)

  local function complete(line)
    return repl.complete(env, line, word_start(line), #line)
  end

  it("completes API keys after sp. and operations after sp.<api>.", function()
    assert.same({ "sp.vendor_df_orders" }, complete("sp.vendor_df_or"))
    assert.same({ "sp.fulfillment_outbound", "sp.fulfillment_outbound_2026" }, complete("sp.fulfillment_out"))
    assert.same({ "sp.vendor_df_orders.getOrder", "sp.vendor_df_orders.getOrders" }, complete("sp.vendor_df_orders.getO"))
    assert.same({ "x = sp.tokens.createRestrictedDataToken" }, { "x = " .. complete("x = sp.tokens.cr")[1] })
  end)

  it("completes parameter names inside the call's braces, and methods after sp:", function()
    assert.same({ "createdAfter", "createdBefore" }, complete("sp.vendor_df_orders.getOrders{ cre"))
    assert.same({ "createdBefore" }, complete('sp.vendor_df_orders.getOrders{ createdAfter = 1, createdB'))
    assert.same({ "sellerFulfillmentOrderId" }, complete('sp:call("fulfillment_outbound.getFulfillmentOrder", { sel'))
    assert.same({ "sp:call" }, complete("sp:ca"))
    assert.same({}, complete('sp.vendor_df_orders.getOrders{ createdAfter = cre'))
  end)

  it("completes body property names from the model inside the body's braces", function()
    local op = "sp.fulfillment_outbound.createFulfillmentOrder{ "
    assert.same({ "body" }, complete(op))
    assert.same({ "sellerFulfillmentOrderId" }, complete(op .. "body = { sellerF"))
    assert.same({ "shippingSpeedCategory" }, complete(op .. 'body = { sellerFulfillmentOrderId = "a,{b", shipp'))
    assert.same({ "postalCode" }, complete(op .. "body = { destinationAddress = { name = 'x', postal"))
    assert.same({ "sellerFulfillmentOrderItemId", "sellerSku" },
      complete(op .. "body = { items = { { quantity = 1, seller"))
    -- back at the body's level once an inner table is closed
    assert.same({ "displayableOrderId" }, complete(op .. "body = { destinationAddress = { name = 'x' }, displayableOrderI"))
    assert.same({ "restrictedResources" }, complete('sp:call("tokens.createRestrictedDataToken", { body = { rest'))
    -- not at a key's place, or in a non-body table: no property names
    assert.same({}, complete(op .. "body = { sellerFulfillmentOrderId = sellerF"))
    assert.same({}, complete("sp.fba_inventory.getInventorySummaries{ marketplaceIds = { gran"))
  end)

  it("completes api.op names in sp:call(\" and after :describe, commands after :", function()
    assert.same({ "vendor_df_orders.getOrder", "vendor_df_orders.getOrders" }, complete('sp:call("vendor_df_orders.getO'))
    assert.same({ "tokens.createRestrictedDataToken" }, complete(":describe tokens.c"))
    assert.same({ ":describe" }, complete(":de"))
  end)

  it("completes globals, module fields and keywords", function()
    assert.same({ "spapi" }, complete("spap"))
    assert.same({ "spapi.client" }, complete("spapi.cli"))
    local list = complete("fun")
    assert.same({ "function" }, list)
    assert.same({ "string.format" }, complete("string.for"))
  end)
end)
