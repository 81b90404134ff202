-- spapi.json: the JSON glue over a private lua-cjson instance.
local json = require "spapi.json"
local cjson_shared = require "cjson"

local function roundtrip(s)
  local v = assert(json.decode(s))
  return assert(json.encode(v))
end

describe("spapi.json", function()
  describe("empty arrays", function()
    it("encodes a table marked with json.array as [] and a plain empty table as {}", function()
      assert.equal("[]", json.encode(json.array()))
      assert.equal("[]", json.encode(json.array({})))
      assert.equal("{}", json.encode({}))
      assert.equal('{"a":[]}', json.encode({ a = json.array() }))
    end)

    it("encodes nested empty arrays", function()
      assert.equal("[[],[[]],{\"x\":[]}]", json.encode({ json.array(), { json.array() }, { x = json.array() } }))
    end)

    it("decodes empty arrays to tables that re-encode as []", function()
      local v = json.decode('{"items":[],"nested":[[ ],[ \n ]],"obj":{}}')
      assert.is_true(json.is_array(v.items))
      assert.equal(0, #v.items)
      assert.is_true(json.is_array(v.nested[2]))
      assert.is_false(json.is_array(v.obj))
      assert.equal("[]", json.encode(v.items))
      assert.equal("{}", json.encode(v.obj))
      assert.equal("[[],[]]", json.encode(v.nested))
    end)

    it("round-trips a top-level empty array", function()
      assert.equal("[]", roundtrip("[]"))
      assert.equal("[]", roundtrip("  [ ]  "))
    end)

    it("leaves \"[]\" inside strings alone", function()
      local v = json.decode('{"a":"[]","b":"x [ ] y","c":"quote \\" [] \\\\","d":[]}')
      assert.equal("[]", v.a)
      assert.equal("x [ ] y", v.b)
      assert.equal('quote " [] \\', v.c)
      assert.is_true(json.is_array(v.d))
      assert.same({ a = "[]" }, json.decode(assert(json.encode({ a = "[]" }))))
    end)

    it("does not change the caller's table while encoding", function()
      local t = { list = json.array(), n = 12345678901234567 }
      json.encode(t)
      assert.is_true(json.is_array(t.list))
      assert.equal(12345678901234567, t.n)
    end)

    it("json.array refuses a table that already has another metatable", function()
      assert.has_error(function() json.array(setmetatable({}, {})) end)
      local t = json.array({ 1, 2 })
      assert.equal(t, json.array(t))
      assert.equal("[1,2]", json.encode(t))
    end)
  end)

  describe("null", function()
    it("is cjson.null and round-trips in arrays and objects", function()
      assert.equal(cjson_shared.null, json.null)
      local v = json.decode('{"a":null,"b":[1,null,3]}')
      assert.equal(json.null, v.a)
      assert.equal(json.null, v.b[2])
      assert.equal(3, #v.b)
      assert.equal("[1,null,3]", json.encode(v.b))
      assert.equal('{"a":null}', json.encode({ a = json.null }))
    end)
  end)

  describe("strings", function()
    it("decodes unicode escapes, including surrogate pairs, to UTF-8", function()
      assert.equal("\195\169\240\159\152\128", json.decode('"\\u00e9\\ud83d\\ude00"'))
      assert.equal("a/b", json.decode('"a\\/b"'))
    end)

    it("round-trips UTF-8 and control characters", function()
      local s = "caf\195\169 \226\130\172 tab\t nl\n nul\0"
      assert.equal(s, json.decode(assert(json.encode(s))))
    end)
  end)

  describe("numbers", function()
    it("writes large integers digit for digit", function()
      assert.equal("123456789012345", json.encode(123456789012345))
      assert.equal("[100000000000000]", json.encode({ 1e14 }))
      assert.equal('{"id":-99999999999999}', json.encode({ id = -99999999999999 }))
    end)

    it("keeps 14 significant digits for fractions", function()
      assert.equal("0.1", json.encode(0.1))
      assert.equal("0.0222", json.encode(0.0222))
    end)

    it("decodes integral numbers as integers on Lua 5.4", function()
      local v = json.decode('{"q":10,"r":2.5,"e":1e3}')
      assert.equal(10, v.q)
      assert.equal(2.5, v.r)
      assert.equal(1000, v.e)
      if math.type then
        assert.equal("integer", math.type(v.q))
        assert.equal("10", tostring(v.q))
        assert.equal("float", math.type(v.r))
      end
    end)

    it("keeps 64-bit integer literals exact where the Lua has integers", function()
      local v = json.decode('{"id":1234567890123456789,"neg":-1234567890123456789,"f":1234567890123456789.5}')
      if math.type then
        assert.equal(1234567890123456789, v.id)
        assert.equal("integer", math.type(v.id))
        assert.equal(-1234567890123456789, v.neg)
        assert.equal('{"id":1234567890123456789}', json.encode({ id = v.id }))
      else
        assert.equal(1234567890123456789, v.id) -- nearest double on LuaJIT
      end
      assert.equal("number", type(v.f))
    end)
  end)

  describe("errors", function()
    it("returns nil and a message for bad input instead of raising", function()
      local v, err = json.decode("[1,")
      assert.is_nil(v); assert.is_string(err)
      v, err = json.decode('{"a":[],')
      assert.is_nil(v); assert.matches("character", err)
      v, err = json.decode(42)
      assert.is_nil(v); assert.matches("expected a string", err)
      v, err = json.encode(function() end)
      assert.is_nil(v); assert.is_string(err)
      v, err = json.encode(0 / 0)
      assert.is_nil(v); assert.is_string(err)
    end)

    it("rejects excessively sparse arrays (a wrong shape fails before it is sent)", function()
      local s, err = json.encode({ [1] = "a", [1000] = "b" })
      assert.is_nil(s); assert.matches("sparse", err)
      assert.equal('["a",null,"c"]', json.encode({ [1] = "a", [3] = "c" }))
    end)

    it("reports cycles", function()
      local t = {}; t.self = t
      local s, err = json.encode(t)
      assert.is_nil(s); assert.is_string(err)
    end)
  end)

  it("round-trips a realistic SP-API payload", function()
    local src = '{"payload":{"fulfillmentOrders":[],"nextToken":null},"errors":[{"code":"X","details":""}],' ..
                '"orders":[{"purchaseOrderNumber":"2JK3S9VC","items":[{"qty":1,"price":{"amount":"10.99"}}]}]}'
    local v = assert(json.decode(src))
    local again = assert(json.decode(assert(json.encode(v))))
    assert.same(v, again)
    assert.is_true(json.is_array(again.payload.fulfillmentOrders))
    assert.equal(json.null, again.payload.nextToken)
  end)

  it("does not touch the shared cjson settings", function()
    assert.equal("{}", cjson_shared.encode({}))
    local before = { cjson_shared.encode_sparse_array() }
    json.encode({ 1, 2 })
    assert.same(before, { cjson_shared.encode_sparse_array() })
  end)
end)
