-- The generated schemas (lua/spapi/schemas/*.lua): every definition of every
-- model with its constraint keywords, each operation's body and response
-- schemas, and references that all resolve. (Byte-for-byte regeneration is
-- checked in operations_spec.lua.)
local H = require "helpers"
local cjson = require("cjson.safe").new()

local function schemas_of(api) return require("spapi.schemas." .. api) end

-- each schema table reachable from s (s itself included)
local function each_schema(s, fn)
  fn(s)
  for _, sub in pairs(s.properties or {}) do each_schema(sub, fn) end
  if s.items then each_schema(s.items, fn) end
  if type(s.additionalProperties) == "table" then each_schema(s.additionalProperties, fn) end
  for _, sub in ipairs(s.allOf or {}) do each_schema(sub, fn) end
end

describe("generated schemas", function()
  it("exist for every API, name their model, and every ref names a definition", function()
    local refs = 0
    H.each_operation(function(api, t, name, op)
      local s = schemas_of(api)
      assert.equal(api, s.api)
      assert.equal(t.model, s.model)
      local o = assert(s.operations[name], api .. "." .. name .. " has no schemas entry")
      local function check(x)
        if x.ref then
          refs = refs + 1
          assert(s.definitions[x.ref], api .. "." .. name .. ": ref " .. x.ref .. " is not a definition")
        end
      end
      if o.body then each_schema(o.body, check) end
      for _, r in pairs(o.responses) do each_schema(r, check) end
      -- the operation table names the same schemas
      assert.equal(op.body_schema, o.body and o.body.ref, api .. "." .. name .. " body")
      if op.response_schema then
        assert.equal(op.response_schema, o.responses[tostring(op.success)].ref, api .. "." .. name .. " response")
      end
      for dname, d in pairs(s.definitions) do
        each_schema(d, function(x) assert(not x.ref or s.definitions[x.ref], api .. ": " .. dname .. " ref " .. tostring(x.ref)) end)
      end
    end)
    assert.is_true(refs > 88)
  end)

  it("keep the model's constraint keywords at every depth", function()
    local mcf = schemas_of("fulfillment_outbound")
    local d = mcf.definitions
    assert.same({ ref = "CreateFulfillmentOrderRequest" }, mcf.operations.createFulfillmentOrder.body)
    assert.same({ ref = "CreateFulfillmentOrderResponse" }, mcf.operations.createFulfillmentOrder.responses["200"])
    assert.same({ ref = "CreateFulfillmentOrderResponse" }, mcf.operations.createFulfillmentOrder.responses["400"])
    local req = d.CreateFulfillmentOrderRequest
    assert.equal("object", req.type)
    assert.same({ maxLength = 40, type = "string" }, req.properties.sellerFulfillmentOrderId)
    assert.same({ ref = "CreateFulfillmentOrderItemList" }, req.properties.items)
    assert.same({ items = { ref = "CreateFulfillmentOrderItem" }, type = "array" }, d.CreateFulfillmentOrderItemList)
    assert.same({ format = "date-time", type = "string" }, d.Timestamp)
    assert.equal("integer", d.Quantity.type)
    assert.truthy(d.ShippingSpeedCategory.enum)
    -- pattern, minimum, minItems, minLength, additionalProperties, allOf somewhere in the models
    local seen = {}
    H.each_operation(function(api)
      for _, def in pairs(schemas_of(api).definitions) do
        each_schema(def, function(x)
          for _, k in ipairs({ "pattern", "minimum", "minItems", "maxItems", "minLength", "maxLength",
                               "additionalProperties", "allOf", "enum", "required", "format" }) do
            if x[k] ~= nil then seen[k] = true end
          end
          assert.is_nil(x.description)
          assert.is_nil(x.example)
        end)
      end
    end)
    assert.same({ pattern = true, minimum = true, minItems = true, maxItems = true, minLength = true,
      maxLength = true, additionalProperties = true, allOf = true, enum = true, required = true, format = true }, seen)
  end)

  H.it_with_models(it)("hold every definition of the model it names", function()
    local f = assert(io.open(H.models .. "/fulfillmentOutbound_2020-07-01.json", "rb"))
    local doc = assert(cjson.decode(f:read("*a")))
    f:close()
    local mcf = schemas_of("fulfillment_outbound")
    local n, m = 0, 0
    for name in pairs(doc.definitions) do n = n + 1; assert(mcf.definitions[name], name) end
    for _ in pairs(mcf.definitions) do m = m + 1 end
    assert.equal(n, m)
  end)
end)
