-- The generated operation tables (lua/spapi/operations/*.lua) against the models
-- they were generated from: every operation present with the right method, path and
-- parameters; usage-plan numbers; the hand-kept facts; and regeneration is byte-exact.
local H = require "helpers"
local cjson = require("cjson.safe").new()

local MODELS = H.models -- nil without Amazon's raw models: the tests that read them are skipped
local ROOT = H.root
local it_with_models = H.it_with_models(it)
-- the MWS Fulfillment Outbound seed (a program guide kept beside the models, not in the repository)
local MWS_SEED
for _, dir in ipairs({ MODELS and (MODELS .. "/../seeds"), ROOT .. "/../shared/seeds" }) do
  local f = dir and io.open(dir .. "/mws-fulfillment-outbound.txt", "rb")
  if f then f:close() MWS_SEED = MWS_SEED or (dir .. "/mws-fulfillment-outbound.txt") end
end
local GEN = assert(loadfile(ROOT .. "/tools/gen_operations.lua"))()
local index = require "spapi.operations"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function model(file)
  return assert(cjson.decode(read(MODELS .. "/" .. file)))
end

local METHODS = { "get", "put", "post", "delete", "patch" }

local function api_keys()
  local ks = {}
  for k in pairs(index.apis) do ks[#ks + 1] = k end
  table.sort(ks)
  return ks
end

describe("generated operation tables", function()
  it("cover the 16 APIs of the brief, each in its own module", function()
    local keys = api_keys()
    assert.same({
      "fba_inventory", "feeds", "fulfillment_outbound", "fulfillment_outbound_2026", "listings_items",
      "merchant_fulfillment", "notifications", "reports", "supply_sources", "tokens",
      "vendor_df_inventory", "vendor_df_orders", "vendor_df_payments", "vendor_df_sandbox",
      "vendor_df_shipping", "vendor_df_transactions",
    }, keys)
    for _, api in ipairs(keys) do
      local t = require(index.apis[api])
      assert.equal(api, t.api)
      assert.is_string(t.version)
      assert.is_string(t.model)
      assert.is_table(t.operations)
    end
  end)

  it_with_models("carry every operation of every model with its method, path and parameters in model order", function()
    local total = 0
    for _, api in ipairs(api_keys()) do
      local t = require(index.apis[api])
      local doc = model(t.model)
      local seen = 0
      for path, item in pairs(doc.paths) do
        for _, m in ipairs(METHODS) do
          local op = item[m]
          if op then
            seen = seen + 1
            local g = t.operations[op.operationId]
            assert(g, api .. ": missing operation " .. op.operationId)
            assert.equal(m:upper(), g.method, api .. "." .. op.operationId)
            assert.equal(path, g.path, api .. "." .. op.operationId)
            local names = {}
            for _, p in ipairs(op.parameters or {}) do
              names[#names + 1] = p["in"] .. ":" .. p.name .. ":" .. tostring(p.required == true)
            end
            local gnames = {}
            for _, p in ipairs(g.params) do
              gnames[#gnames + 1] = p["in"] .. ":" .. p.name .. ":" .. tostring(p.required)
            end
            assert.same(names, gnames, api .. "." .. op.operationId)
          end
        end
      end
      local count = 0
      for _ in pairs(t.operations) do count = count + 1 end
      assert.equal(seen, count, api .. ": operation count")
      total = total + count
    end
    assert.equal(88, total)
  end)

  it("parse the Usage Plan table into numbers", function()
    local o = require("spapi.operations.vendor_df_orders").operations.getOrders
    assert.equal(10, o.rate); assert.equal(10, o.burst)
    local f = require("spapi.operations.feeds").operations
    assert.equal(0.0083, f.createFeed.rate); assert.equal(15, f.createFeed.burst)
    assert.equal(0.0222, f.getFeeds.rate); assert.equal(10, f.getFeeds.burst)
    local mfn = require("spapi.operations.merchant_fulfillment").operations
    assert.equal(1, mfn.getShipment.rate); assert.equal(1, mfn.getShipment.burst)
    assert.equal(6, mfn.getEligibleShipmentServices.rate); assert.equal(12, mfn.getEligibleShipmentServices.burst)
    assert.equal(2, require("spapi.operations.fba_inventory").operations.getInventorySummaries.rate)
    -- no usage plan in the model: nil, not a guess
    assert.is_nil(require("spapi.operations.supply_sources").operations.getSupplySources.rate)
  end)

  it_with_models("have rate and burst for every operation whose description has a Usage Plan", function()
    local with, without = 0, 0
    for _, api in ipairs(api_keys()) do
      local t = require(index.apis[api])
      local doc = model(t.model)
      for _, item in pairs(doc.paths) do
        for _, m in ipairs(METHODS) do
          local op = item[m]
          if op then
            local g = t.operations[op.operationId]
            local d = op.description or ""
            if d:find("Usage Plan", 1, true) then
              with = with + 1
              assert.is_number(g.rate, api .. "." .. op.operationId)
              assert.is_number(g.burst, api .. "." .. op.operationId)
              assert.truthy(d:find("| " .. tostring(g.burst) .. " |", 1, true), api .. "." .. op.operationId)
            else
              without = without + 1
              assert.is_nil(g.rate, api .. "." .. op.operationId)
            end
          end
        end
      end
    end
    assert.equal(74, with)
    assert.equal(14, without)
  end)

  it("mark the restricted operations of DESIGN.md and nothing else", function()
    local expect = {
      ["vendor_df_orders.getOrders"] = true, ["vendor_df_orders.getOrder"] = true,
      ["vendor_df_shipping.getShippingLabel"] = true, ["vendor_df_shipping.getCustomerInvoices"] = true,
      ["vendor_df_shipping.getCustomerInvoice"] = true, ["vendor_df_shipping.getPackingSlips"] = true,
      ["vendor_df_shipping.getPackingSlip"] = true,
      ["merchant_fulfillment.getShipment"] = true, ["merchant_fulfillment.cancelShipment"] = true,
      ["merchant_fulfillment.createShipment"] = true,
      ["reports.getReportDocument"] = "conditional",
    }
    for _, api in ipairs(api_keys()) do
      for name, op in pairs(require(index.apis[api]).operations) do
        assert.equal(expect[api .. "." .. name] or false, op.restricted, api .. "." .. name)
      end
    end
  end)

  it("mark grantless notifications operations with their scope", function()
    local n = require("spapi.operations.notifications").operations
    for _, name in ipairs({ "getDestinations", "createDestination", "getDestination", "deleteDestination",
                            "deleteSubscriptionById" }) do
      assert.is_true(n[name].grantless, name)
      assert.equal("sellingpartnerapi::notifications", n[name].scope)
    end
    assert.is_false(n.createSubscription.grantless)
    assert.is_nil(n.createSubscription.scope)
    assert.is_false(require("spapi.operations.vendor_df_orders").operations.getOrders.grantless)
  end)

  it("describe parameters with their constraints", function()
    local o = require("spapi.operations.vendor_df_orders").operations.getOrders
    local by = {}
    for _, p in ipairs(o.params) do by[p.name] = p end
    assert.same({ "NEW", "SHIPPED", "ACCEPTED", "CANCELLED" }, by.status.enum)
    assert.equal("integer", by.limit.type); assert.equal(1, by.limit.minimum); assert.equal(100, by.limit.maximum)
    assert.equal("date-time", by.createdAfter.format); assert.is_true(by.createdAfter.required)
    local f = require("spapi.operations.feeds").operations.getFeeds
    local ps
    for _, p in ipairs(f.params) do if p.name == "processingStatuses" then ps = p end end
    assert.equal("array", ps.type); assert.equal("csv", ps.collection_format)
    assert.equal(1, ps.min_items)
    assert.truthy(ps.items.enum)
    local body = require("spapi.operations.fulfillment_outbound").operations.createFulfillmentOrder.params[1]
    assert.equal("body", body["in"])
    assert.equal("CreateFulfillmentOrderRequest", body.schema)
    table.sort(body.body_required)
    assert.same({ "destinationAddress", "displayableOrderComment", "displayableOrderDate", "displayableOrderId",
                  "items", "sellerFulfillmentOrderId", "shippingSpeedCategory" }, body.body_required)
    local mfn = require("spapi.operations.merchant_fulfillment").operations.getShipment.params[1]
    assert.is_string(mfn.pattern)
  end)

  it("find the paging token and parameter, exclusive for reports and feeds", function()
    local o = require("spapi.operations.vendor_df_orders").operations
    assert.same({ token = "pagination.nextToken", param = "nextToken" }, o.getOrders.paging)
    assert.is_nil(o.getOrder.paging)
    assert.same({ token = "nextToken", param = "nextToken", exclusive = true },
      require("spapi.operations.reports").operations.getReports.paging)
    assert.same({ token = "nextToken", param = "nextToken", exclusive = true },
      require("spapi.operations.feeds").operations.getFeeds.paging)
    assert.same({ token = "payload.nextToken", param = "nextToken" },
      require("spapi.operations.fulfillment_outbound").operations.listAllFulfillmentOrders.paging)
    assert.same({ token = "pagination.nextToken", param = "pageToken" },
      require("spapi.operations.listings_items").operations.searchListingsItems.paging)
    assert.same({ token = "nextPageToken", param = "nextPageToken" },
      require("spapi.operations.supply_sources").operations.getSupplySources.paging)
  end)

  it("classify responses and idempotency", function()
    local s = require("spapi.operations.supply_sources").operations
    assert.equal("empty", s.archiveSupplySource.response_type)
    assert.equal("json", s.getSupplySource.response_type)
    assert.is_true(s.getSupplySource.idempotent)
    assert.is_true(s.updateSupplySource.idempotent)
    assert.is_false(s.createSupplySource.idempotent)
    assert.equal("application/json", s.createSupplySource.consumes)
  end)

  H.it_needing(MWS_SEED ~= nil, "it needs the MWS Fulfillment Outbound seed (../shared/seeds/mws-fulfillment-outbound.txt)",
      it)("map the MWS Fulfillment Outbound names to existing SP-API operations", function()
    local seed = read(MWS_SEED)
    local count = 0
    for alias, target in pairs(index.aliases) do
      assert.truthy(seed:find(alias, 1, true), alias .. " not in the MWS seed")
      local api, op = target:match("^([%w_]+)%.([%w_]+)$")
      assert(require(index.apis[api]).operations[op], target)
      count = count + 1
    end
    assert.equal("fulfillment_outbound.getFulfillmentPreview", index.aliases.GetFulfillmentPreview)
    assert.equal("fulfillment_outbound.listAllFulfillmentOrders", index.aliases.ListAllFulfillmentOrdersByNextToken)
    assert.equal(10, count)
  end)

  it_with_models("regenerate byte for byte from the models", function()
    local dir = H.tmpdir("ops")
    local written = GEN.generate(MODELS, dir)
    assert.equal(17, #written)
    for _, name in ipairs(written) do
      local committed = read(ROOT .. "/lua/spapi/operations/" .. name)
      local fresh = read(dir .. "/" .. name)
      assert(committed == fresh, name .. " differs from a fresh regeneration (run `make operations`)")
    end
  end)

  it_with_models("regenerate the schemas byte for byte from the models", function()
    local GEN_SCHEMAS = assert(loadfile(ROOT .. "/tools/gen_schemas.lua"))()
    local dir = H.tmpdir("schemas")
    local written = GEN_SCHEMAS.generate(MODELS, dir)
    assert.equal(16, #written)
    for _, name in ipairs(written) do
      local committed = read(ROOT .. "/lua/spapi/schemas/" .. name)
      local fresh = read(dir .. "/" .. name)
      assert(committed == fresh, "schemas/" .. name .. " differs from a fresh regeneration (run `make operations`)")
    end
  end)

  it("fails clearly when a model is missing", function()
    local dir = H.tmpdir("nomodels")
    local ok, err = pcall(GEN.generate, dir, dir)
    assert.is_false(ok)
    assert.matches("no model for API 'fba_inventory'", err, 1, true)
  end)
end)
