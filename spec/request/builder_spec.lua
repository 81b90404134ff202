-- spapi.builder: the compiled per-operation builders give exactly the request
-- (or the error) request.build gives, on every operation of every model.
local H = require "helpers"
local builder = require "spapi.builder"
local request = require "spapi.request"
local json = require "spapi.json"

-- compiled → target, headers, body | nil, msg; the reference, in the same shape
local function reference(api, op_name, params)
  local r, msg = request.try(api, op_name, params)
  if not r then return nil, msg end
  local target = r.path
  if r.query ~= "" then target = target .. "?" .. r.query end
  return target, r.headers, r.body
end

local BASE = "https://sellingpartnerapi-na.amazon.com"

-- the headers table of the operation's last call, as the client hands it back
-- (with the access token the client put in it)
local last_headers = {}

local function same(api, op_name, params, what)
  local f, label = builder.compile(api, op_name), api.api .. "." .. op_name .. " " .. what
  local t2, h2, b2 = reference(api, op_name, params)
  if t2 then t2 = BASE .. t2 end
  local previous = last_headers[f] -- filled by another case of this operation
  for _, reused in ipairs({ false, true }) do
    local old = reused and previous or nil
    local t1, h1, b1 = f(params, BASE, old)
    assert.equal(t2, t1, label)
    if t2 then
      if h1 == old then h1["x-amz-access-token"] = nil end -- the client replaces it
      assert.same(h2, h1, label .. (reused and " (headers table reused)" or ""))
      assert.equal(b2, b1, label)
      h1["x-amz-access-token"] = "Atza|old"
      last_headers[f] = h1
    else
      assert.equal(h2, h1, label) -- the same message
    end
  end
  return t2 ~= nil
end

-- deterministic pseudo-random numbers (the same cases on every run and Lua)
local function rng(seed)
  local x = seed
  return function(n)
    x = x * 16807 % 2147483647 -- Park-Miller: exact in doubles and integers
    return x % n + 1
  end
end

local LONG = string.rep("x", 300)

-- a list that also has other keys, filled key by key so that those keys come
-- before the items in traversal order (a table constructor never does that)
local function mixed_list()
  for trial = 1, 400 do
    local t = {}
    for j = 1, trial % 13 + 1 do t["k" .. (trial * 7 + j)] = j end
    for j = 1, trial % 3 + 1 do t[j] = "x" .. j end
    if next(t, #t) == nil then return t end
  end
  return { "x", k = "v" }
end
local SCALARS = { "A-1", "a b/c+%\195\169", "", ".", "..", "...", "ATVPDKIKX0DER", 0, 1, 7, 2.5, -3, 1e300,
  true, false, "true", "false", "2024-01-02T03:04:05Z", "2024-01-02", 1700000000, LONG, "line\nbreak",
  json.null, {}, { "x", "y" }, { "a b" }, { 1, 2 }, { "x", nil, "z" }, { a = 1 }, { "x", k = "v" }, mixed_list() }

-- a value for parameter p: usually a plausible one, often something wrong
local function value_for(p, r)
  local roll = r(10)
  if roll == 1 then return SCALARS[r(#SCALARS)] end
  if p.enum then return p.enum[r(#p.enum)] end
  if p["in"] == "body" then
    local b = {}
    for _, k in ipairs(p.body_required or {}) do b[k] = r(4) == 1 and json.null or "v" end
    if r(5) == 1 then return '{"raw":"json"}' end
    -- Unix seconds (or not) somewhere a date-time goes
    if p.body_dates and r(2) == 1 then
      local t = b
      local path = {}
      for seg in p.body_dates[r(#p.body_dates)]:gmatch("[^.]+") do path[#path + 1] = seg end
      for i = 1, #path - 1 do
        local k = path[i] == "[]" and 1 or path[i]
        if type(t[k]) ~= "table" then t[k] = {} end
        t = t[k]
      end
      t[path[#path]] = ({ 1700000000, "2024-01-02T03:04:05Z", 1e300 })[r(3)]
    end
    return b
  end
  local t = p.type
  if t == "integer" then return (p.minimum or 0) + r(5) - 1 end
  if t == "boolean" then return r(2) == 1 end
  if t == "array" then
    local list = {}
    local items = p.items or {}
    for i = 1, r(3) - 1 do list[i] = items.enum and items.enum[r(#items.enum)] or (items.type == "integer" and i or "v" .. i) end
    return list
  end
  if p.format == "date-time" then return r(2) == 1 and "2024-01-02T03:04:05Z" or 1700000000 end
  return "v-" .. r(1000)
end

describe("spapi.builder", function()
  it("gives request.build's request, or its error, for generated params on every operation", function()
    local r = rng(20261122)
    local compared, built = 0, 0
    H.each_operation(function(_, api, op_name, op)
      for case = 1, 120 do
        local params = {}
        for _, p in ipairs(op.params) do
          -- required parameters are mostly present, optional ones half the time
          if r(p.required and 8 or 2) ~= 1 then params[p.name] = value_for(p, r) end
        end
        if r(12) == 1 then params.unknownThing = "x" end
        if r(12) == 1 then params.body = { any = "thing" } end
        if same(api, op_name, params, "case " .. case) then built = built + 1 end
        compared = compared + 1
      end
      same(api, op_name, nil, "with nil params")
      same(api, op_name, {}, "with no params")
    end)
    -- the generator reaches both outcomes often
    assert.is_true(compared >= 88 * 120)
    assert.is_true(built > compared / 5, "built " .. built .. " of " .. compared)
    assert.is_true(built < compared * 4 / 5, "built " .. built .. " of " .. compared)
  end)

  it("builds the usual calls without the general builder", function()
    local slow_calls = 0
    local try = request.try
    request.try = function(...) slow_calls = slow_calls + 1; return try(...) end
    local ok, err = pcall(function()
      local mcf = require "spapi.operations.fulfillment_outbound"
      local listings = require "spapi.operations.listings_items"
      local vdf = require "spapi.operations.vendor_df_shipping"
      local cases = {
        { mcf, "getFeatures", { marketplaceId = "ATVPDKIKX0DER" },
          "/fba/outbound/2020-07-01/features?marketplaceId=ATVPDKIKX0DER" },
        { mcf, "getFulfillmentOrder", { sellerFulfillmentOrderId = "A 1/2" },
          "/fba/outbound/2020-07-01/fulfillmentOrders/A%201%2F2" },
        { mcf, "listAllFulfillmentOrders", { queryStartDate = "2024-01-02T03:04:05Z", nextToken = "n+1" },
          "/fba/outbound/2020-07-01/fulfillmentOrders?queryStartDate=2024-01-02T03%3A04%3A05Z&nextToken=n%2B1" },
        { listings, "getListingsItem", { sellerId = "S", sku = "caf\195\169", marketplaceIds = { "A", "B" },
          includedData = { "summaries", "offers" } },
          "/listings/2021-08-01/items/S/caf%C3%A9?marketplaceIds=A,B&includedData=summaries,offers" },
        { vdf, "getShippingLabels", { limit = 10, createdAfter = "2024-01-01T00:00:00Z",
          createdBefore = "2024-01-02T00:00:00Z", sortOrder = "ASC" }, nil },
      }
      for _, c in ipairs(cases) do
        local target = assert(builder.compile(c[1], c[2])(c[3]))
        if c[4] then assert.equal(c[4], target) end
      end
      local target, headers, body = builder.compile(mcf, "createFulfillmentOrder")({ body = {
        sellerFulfillmentOrderId = "A-1", displayableOrderId = "A-1", displayableOrderDate = "2024-01-02T03:04:05Z",
        displayableOrderComment = "thanks", shippingSpeedCategory = "Standard",
        destinationAddress = { name = "N", addressLine1 = "1 Main St", stateOrRegion = "WA", countryCode = "US" },
        items = { { sellerSku = "SKU-1", sellerFulfillmentOrderItemId = "1", quantity = 1 } } } })
      assert.equal("/fba/outbound/2020-07-01/fulfillmentOrders", target)
      assert.equal("application/json", headers["Content-Type"])
      assert.equal("A-1", json.decode(body).sellerFulfillmentOrderId)
    end)
    request.try = try
    assert(ok, err)
    assert.equal(0, slow_calls)
  end)

  it("names the parameter and the operation when the fast code hands over a bad value", function()
    local mcf = require "spapi.operations.fulfillment_outbound"
    local f = builder.compile(mcf, "getFulfillmentOrder")
    local t, msg = f({ sellerFulfillmentOrderId = string.rep("x", 41) })
    assert.is_nil(t)
    assert.equal("spapi: fulfillment_outbound.getFulfillmentOrder: parameter 'sellerFulfillmentOrderId' "
      .. "must be at most 40 characters (got 41)", msg)
    t, msg = builder.compile(mcf, "getFeatures")({ marketplaceID = "x" })
    assert.is_nil(t)
    assert.matches("unknown parameter 'marketplaceID' %(did you mean 'marketplaceId'%?%)", msg)
  end)

  it("compiles each operation once and shows the generated source", function()
    local mcf = require "spapi.operations.fulfillment_outbound"
    assert.equal(builder.compile(mcf, "getFeatures"), builder.compile(mcf, "getFeatures"))
    local src = builder.source(mcf, "getFulfillmentOrder")
    assert.matches('"/fba/outbound/2020%-07%-01/fulfillmentOrders/" %.%. P1', src)
    assert.truthy(load(src, "=src"))
  end)

  -- parameters of kinds the compiled code does not handle (here a number) go to
  -- request.build, also when they are required and missing (no shipped model
  -- has such a required parameter; compile takes any operation table)
  it("names a missing required parameter of a kind it does not compile, as request.build does", function()
    local builder, request = require "spapi.builder", require "spapi.request"
    local api = { api = "review", operations = { getThing = { method = "GET", path = "/things/{id}", params = {
      { name = "id", ["in"] = "path", required = true, type = "string" },
      { name = "name", ["in"] = "query", required = true, type = "string" },
      { name = "ratio", ["in"] = "query", required = true, type = "number" },
    } } } }
    local params = { id = "x", name = "n" } -- no ratio
    local r, msg = request.try(api, "getThing", params)
    assert.is_nil(r)
    assert.matches("missing required parameter 'ratio'", msg, 1, true)
    local url, msg2 = builder.compile(api, "getThing")(params, "")
    assert.is_nil(url, "compiled builder gave " .. tostring(url))
    assert.equal(msg, msg2)
  end)

  -- every query parameter required, none of a compiled kind: the URL is not
  -- built in one concatenation then (there is nothing to put in it)
  it("compiles an operation whose required query parameters are all of kinds it does not compile", function()
    local builder = require "spapi.builder"
    local api = { api = "review", operations = { getRatio = { method = "GET", path = "/ratio", params = {
      { name = "ratio", ["in"] = "query", required = true, type = "number" },
    } } } }
    local ok, f = pcall(builder.compile, api, "getRatio")
    assert.is_true(ok, tostring(f))
    assert.equal("/ratio?ratio=0.5", (f({ ratio = 0.5 }, "")))
  end)
end)
