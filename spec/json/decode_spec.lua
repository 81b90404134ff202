-- spapi.json.decode: the C decoder (src/json.c), its rules one by one, a
-- differential fuzz against the decode path it replaced
-- (spec/support/json_reference.lua), and malformed input.
local json = require "spapi.json"
local ref = require "support.json_reference"
local cjson_shared = require "cjson"
local H = require "helpers"

local mtype = math.type -- nil on LuaJIT
local null = json.null
local array_mt = json.array_mt

local function decode_ok(s)
  local v, err = json.decode(s)
  assert(err == nil, err)
  return v
end

local function decode_err(s)
  local v, err = json.decode(s)
  assert.is_nil(v)
  assert.is_string(err)
  assert.matches("^spapi%.json%.decode: .+ at character %d+$", err)
  return err
end

-- Deep equality as a user sees it: types, integer vs float (5.4), the sign of
-- a zero, metatables (array_mt or none), json.null. Returns true or a path.
-- With `allowed` (a table), one documented difference is counted instead: the
-- old path turned a literal just below -2^63 (e.g. -9223372036854775809) into
-- the integer math.mininteger (its double, made an integer); the decoder
-- keeps it a float, like every other integer literal outside 64 bits.
local function same(a, b, path, allowed)
  path = path or "$"
  if type(a) ~= type(b) then return path .. ": " .. type(a) .. " vs " .. type(b) end
  if type(a) == "number" then
    if allowed and mtype and mtype(a) == "integer" and a == math.mininteger and mtype(b) == "float"
        and b == -2 ^ 63 then
      allowed["old-mininteger"] = (allowed["old-mininteger"] or 0) + 1
      return true
    end
    if mtype and mtype(a) ~= mtype(b) then
      return string.format("%s: %s %s vs %s %s", path, mtype(a), tostring(a), mtype(b), tostring(b))
    end
    if a ~= b and not (a ~= a and b ~= b) then return path .. ": " .. tostring(a) .. " vs " .. tostring(b) end
    if a == 0 and 1 / a ~= 1 / b then return path .. ": signed zero" end
    return true
  end
  if type(a) ~= "table" then
    if a ~= b then return path .. ": " .. tostring(a) .. " vs " .. tostring(b) end
    return true
  end
  if getmetatable(a) ~= getmetatable(b) then return path .. ": metatable" end
  for k, v in pairs(a) do
    if b[k] == nil then return path .. "." .. tostring(k) .. ": missing on the right" end
    local r = same(v, b[k], path .. "." .. tostring(k), allowed)
    if r ~= true then return r end
  end
  for k in pairs(b) do
    if a[k] == nil then return path .. "." .. tostring(k) .. ": missing on the left" end
  end
  return true
end

-- Deterministic on both Lua versions (Park-Miller: exact in doubles too).
local function rng(seed)
  local x = seed
  return function(n) -- 1..n
    x = x * 16807 % 2147483647
    return x % n + 1
  end
end

describe("spapi.json.decode", function()
  describe("objects", function()
    it("decodes objects to tables, the last duplicate key winning", function()
      local v = decode_ok('{"a":1,"b":{"c":"x"},"a":2}')
      assert.equal(2, v.a)
      assert.equal("x", v.b.c)
      assert.is_nil(getmetatable(v))
      local n = 0
      for _ in pairs(v) do n = n + 1 end
      assert.equal(2, n)
    end)

    it("keeps the last duplicate in objects with more keys than fit on the stack at once", function()
      local parts = {}
      for i = 1, 80 do parts[i] = string.format('"k%d":%d', i % 50, i) end
      local v = decode_ok("{" .. table.concat(parts, ",") .. "}")
      local n = 0
      for _ in pairs(v) do n = n + 1 end
      assert.equal(50, n)
      assert.equal(50, v.k0)   -- i = 50, its last occurrence
      assert.equal(80, v.k30)  -- i = 30 and 80
      assert.equal(49, v.k49)  -- i = 49 only
      assert.equal(1 + 50, v.k1)
    end)

    it("gives the right keys across decodes, whatever keys came before", function()
      -- same length, same first and last 8 bytes: one slot of the 5.4 key cache
      local a, b = "abcdefgh_X_12345678", "abcdefgh_Y_12345678"
      for _ = 1, 3 do
        local v = decode_ok('{"' .. a .. '":1,"' .. b .. '":2}')
        assert.same({ [a] = 1, [b] = 2 }, v)
        assert.same({ [b] = 3 }, decode_ok('{"' .. b .. '":3}'))
      end
      local parts = {}
      for i = 1, 2000 do parts[i] = string.format('"key%d":%d', i, i) end
      local big = decode_ok("{" .. table.concat(parts, ",") .. "}")
      for i = 1, 2000 do assert.equal(i, big["key" .. i]) end
      local edge = string.rep("k", 40)
      local v = decode_ok('[{"' .. edge .. '":1,"' .. edge .. 'x":2,"":3,"a\\u0062":4},{"ab":5}]')
      assert.same({ { [edge] = 1, [edge .. "x"] = 2, [""] = 3, ab = 4 }, { ab = 5 } }, v)
    end)

    it("decodes {} to a plain empty table", function()
      local v = decode_ok(" { \n } ")
      assert.same({}, v)
      assert.is_nil(getmetatable(v))
      assert.equal("{}", json.encode(v))
    end)
  end)

  describe("arrays", function()
    it("decodes arrays to sequences without a metatable", function()
      local v = decode_ok('[1,"two",[3],{"four":4}]')
      assert.equal(4, #v)
      assert.equal(1, v[1]); assert.equal("two", v[2]); assert.equal(3, v[3][1]); assert.equal(4, v[4].four)
      assert.is_nil(getmetatable(v))
      assert.is_nil(getmetatable(v[3]))
    end)

    it("decodes long arrays in order", function()
      local parts = {}
      for i = 1, 1000 do parts[i] = tostring(i * 3) end
      local v = decode_ok("[" .. table.concat(parts, " , ") .. "]")
      assert.equal(1000, #v)
      for i = 1, 1000 do assert.equal(i * 3, v[i]) end
    end)

    it("decodes every empty array, whatever whitespace it holds, to a new table with array_mt", function()
      local v = decode_ok('{"a":[],"b":[ ],"c":[\t\r\n ],"d":[[]]}')
      for _, k in ipairs({ "a", "b", "c" }) do
        assert.equal(array_mt, getmetatable(v[k]))
        assert.is_nil(next(v[k]))
      end
      assert.is_nil(getmetatable(v.d))
      assert.equal(array_mt, getmetatable(v.d[1]))
      assert.are_not.equal(v.a, v.b)
      v.a[1] = "changed" -- one empty array's table is not another's
      assert.is_nil(v.b[1])
      assert.is_nil(next(decode_ok("[]")))
      assert.equal('{"e":[]}', json.encode(decode_ok('{"e":[ ]}')))
    end)
  end)

  describe("null", function()
    it("is json.null (cjson.null, a NULL lightuserdata) in objects, arrays and at the top", function()
      assert.equal(cjson_shared.null, json.null)
      assert.equal("userdata", type(json.null))
      local v = decode_ok('{"a":null,"b":[1,null,3],"c":[null]}')
      assert.equal(null, v.a)
      assert.equal(null, v.b[2])
      assert.equal(3, #v.b)
      assert.equal(1, #v.c)
      assert.equal(null, decode_ok("null"))
      assert.equal("[1,null,3]", json.encode(v.b))
      assert.equal('{"a":null}', json.encode({ a = v.a }))
    end)
  end)

  describe("strings", function()
    it("decodes every escape", function()
      assert.equal('"\\/\b\f\n\r\t', decode_ok('"\\"\\\\\\/\\b\\f\\n\\r\\t"'))
      assert.equal("A\0B", decode_ok('"\\u0041\\u0000\\u0042"'))
      assert.equal("\194\128\223\191\224\160\128\239\191\191", decode_ok('"\\u0080\\u07FF\\u0800\\uffff"'))
    end)

    it("turns surrogate pairs into 4-byte UTF-8", function()
      assert.equal("\240\159\152\128", decode_ok('"\\ud83d\\ude00"'))
      assert.equal("\240\144\128\128", decode_ok('"\\uD800\\uDC00"'))
      assert.equal("\244\143\191\191", decode_ok('"\\uDBFF\\uDFFF"'))
    end)

    it("rejects a lone or reversed surrogate, as lua-cjson does", function()
      for _, s in ipairs({ '"\\ud800"', '"\\ud800x"', '"\\ud800\\u0041"', '"\\udc00"', '"\\udc00\\ud800"',
                           '"\\ud800\\n"' }) do
        local err = decode_err(s)
        assert.matches("invalid unicode escape at character 2", err, 1, true)
        assert.is_nil((ref.decode(s, array_mt)))
      end
    end)

    it("rejects bad escapes", function()
      assert.matches("invalid escape at character 3", decode_err('"a\\x"'), 1, true)
      assert.matches("invalid unicode escape", decode_err('"\\u12"'), 1, true)
      assert.matches("invalid unicode escape", decode_err('"\\u12g4"'), 1, true)
      assert.matches("unterminated string at character 1", decode_err('"\\u'), 1, true)
      assert.matches("unterminated string at character 1", decode_err('"abc\\"'), 1, true)
    end)

    it("copies raw bytes as they are: UTF-8, invalid UTF-8, control characters", function()
      local raw = "caf\195\169 \226\130\172 \240\159\152\128 \255\254 \1\31\127"
      assert.equal(raw, decode_ok('"' .. raw .. '"'))
      assert.equal("a\0b", decode_ok('"a\0b"')) -- cjson stopped at the NUL
    end)

    it("decodes long strings with and without escapes (the scratch memory grows)", function()
      local plain = string.rep("x", 5000)
      local esc = string.rep("a\\n", 3000)
      local v = decode_ok('["\\t", "' .. plain .. '", "' .. esc .. '", "' .. string.rep("\\u00e9", 9000) .. '"]')
      assert.equal("\t", v[1])
      assert.equal(plain, v[2])
      assert.equal(string.rep("a\n", 3000), v[3])
      assert.equal(string.rep("\195\169", 9000), v[4])
    end)

    it("keeps \"[]\" and digits inside strings as text", function()
      local v = decode_ok('{"a":"[]","b":"1234567890123456789","c":"[ ]"}')
      assert.same({ a = "[]", b = "1234567890123456789", c = "[ ]" }, v)
    end)
  end)

  describe("numbers", function()
    it("gives integers for integer literals that fit in 64 bits (5.4)", function()
      local v = decode_ok("[0,-0,42,-7,1234567890123456789,-1234567890123456789,9223372036854775807,-9223372036854775808]")
      assert.equal(42, v[3]); assert.equal(-7, v[4])
      if mtype then
        for i = 1, #v do assert.equal("integer", mtype(v[i])) end
        assert.equal(1234567890123456789, v[5])
        assert.equal(-1234567890123456789, v[6])
        assert.equal(math.maxinteger, v[7])
        assert.equal(math.mininteger, v[8])
        assert.equal("1234567890123456789", tostring(v[5]))
      else
        assert.equal(1234567890123456789, v[5]) -- the nearest double
        assert.equal(-1 / 0, 1 / v[2])          -- -0 is a double -0, as cjson gives
      end
    end)

    it("gives floats for fractions and exponents, integers for integral floats below 2^53 (5.4)", function()
      local v = decode_ok("[2.5,1e3,10.0,-0.0,1E+2,2.50e1,1e-400,9007199254740991.0,9007199254740992.0,1e300,0.1]")
      assert.equal(2.5, v[1]); assert.equal(1000, v[2]); assert.equal(10, v[3]); assert.equal(0, v[4])
      assert.equal(100, v[5]); assert.equal(25, v[6]); assert.equal(0, v[7])
      assert.equal(2 ^ 53 - 1, v[8]); assert.equal(2 ^ 53, v[9]); assert.equal(1e300, v[10]); assert.equal(0.1, v[11])
      if mtype then
        assert.equal("float", mtype(v[1]))
        for i = 2, 8 do assert.equal("integer", mtype(v[i]), "item " .. i) end
        assert.equal("10", tostring(v[3]))
        assert.equal("float", mtype(v[9]))
        assert.equal("float", mtype(v[10]))
        assert.equal("float", mtype(v[11]))
      end
    end)

    it("gives floats for integers beyond 64 bits and doubles for out-of-range literals", function()
      local v = decode_ok("[9223372036854775808,-9223372036854775809,123456789012345678901234567890,1e400,-1e400]")
      assert.equal(2 ^ 63, v[1])
      assert.equal(-(2 ^ 63), v[2])
      assert.equal(1.2345678901234568e29, v[3])
      assert.equal(math.huge, v[4]); assert.equal(-math.huge, v[5]) -- strtod's HUGE_VAL, as with cjson
      if mtype then for i = 1, 5 do assert.equal("float", mtype(v[i])) end end
    end)

    it("rounds like strtod, including long mantissas and exponents", function()
      local v = decode_ok("[0.1,123.456e-7,1.7976931348623157e308,4.9e-324,0.30000000000000004," ..
                          "3.14159265358979323846264338327950288419716939937510," ..
                          "0.0000000000000000000000000000000000000000000000000000000000000000000000000000000000" ..
                          "0000000000000000000000000000000000000000000000000000000000000000000000000000000000001," ..
                          "9007199254740993.0]")
      assert.equal(0.1, v[1])
      assert.equal(tonumber("123.456e-7"), v[2])
      assert.equal(1.7976931348623157e308, v[3])
      assert.equal(tonumber("4.9e-324"), v[4])
      assert.equal(0.30000000000000004, v[5])
      assert.equal(3.141592653589793, v[6])
      assert.equal(tonumber("1e-" .. (84 + 83)), v[7])
      assert.equal(2 ^ 53, v[8])
    end)

    it("rejects what JSON does not allow: NaN, Infinity, hex, +, leading zeros, 1., .5", function()
      for _, s in ipairs({ "NaN", "nan", "Infinity", "-Infinity", "inf", "0x10", "-0x10", "+1", "012", "-01",
                           "00", "1.", "-.5", ".5", "1.e3", "1e", "1e+", "-", "--1", "1.5.3", "[1.]" }) do
        local v, err = json.decode(s)
        assert.is_nil(v, s)
        assert.is_string(err, s)
      end
      assert.matches("invalid number (leading zero) at character 2", decode_err("[012]"), 1, true)
      assert.matches("invalid number at character 6", decode_err('{"a":-}'), 1, true)
    end)

    it("is independent of LC_NUMERIC (a ',' decimal point)", function()
      -- needs a locale whose decimal point is ','; built here with localedef
      -- into a private directory, used by a child process (LOCPATH)
      local dir = H.tmpdir("locale")
      local rc = H.run("localedef -i de_DE -f UTF-8 '" .. dir .. "/de_DE.UTF-8'")
      if rc ~= 0 then
        -- no locale source here: check at least that the decoder works under "C"
        assert.equal(0.1, decode_ok("0.1000000000000000000000001"))
        return
      end
      local lua = jit and "luajit" or "lua5.4"
      local code = [[
        assert(os.setlocale("de_DE.UTF-8", "numeric"))
        assert(tostring(2.5) == "2,5" or tostring(2.5) == "2.5")
        local json = require "spapi.json"
        local v = assert(json.decode("[2.5,1.25e-300,0.1000000000000000000000001,123456789012345678901234.5]"))
        io.write(tostring(v[1] == 2.5), " ", tostring(v[2] == 1.25e-300), " ",
          tostring(v[3] == 0.1), " ", tostring(v[4] == 1.2345678901234568e23))]]
      local rc2, out = H.run("cd '" .. H.root .. "' && LOCPATH='" .. dir .. "' LUA_PATH='lua/?.lua;;' " .. lua ..
        " -e '" .. code:gsub("'", "'\\''") .. "'")
      assert.equal(0, rc2, out)
      assert.equal("true true true true", out)
    end)
  end)

  describe("text", function()
    it("accepts JSON's four whitespace characters and nothing else", function()
      assert.same({ a = { 1, 2 } }, decode_ok(' \t\r\n{ \t\r\n"a" \t\r\n: \t\r\n[ 1 ,\n2 ] } \n'))
      assert.matches("expected a value at character 1", decode_err("\f1"), 1, true)
      assert.matches("expected a value at character 1", decode_err("\v1"), 1, true)
      assert.matches("expected a value at character 1", decode_err("\239\187\191{}"), 1, true) -- a BOM, as cjson
    end)

    it("accepts any value at the top level", function()
      assert.equal("abc", decode_ok('"abc"'))
      assert.equal(42, decode_ok("42"))
      assert.equal(true, decode_ok(" true "))
      assert.equal(false, decode_ok("false"))
    end)

    it("rejects text after the value, with its position", function()
      assert.equal("spapi.json.decode: expected the end of the text at character 4", select(2, json.decode("{} x")))
      assert.equal("spapi.json.decode: expected the end of the text at character 4", select(2, json.decode("[1]\0")))
      assert.equal("spapi.json.decode: expected the end of the text at character 3", select(2, json.decode("1 2")))
      assert.matches("at character 5", decode_err("truex"), 1, true)
    end)

    it("says what it expected and where", function()
      assert.equal("spapi.json.decode: expected ',' or '}' at character 19",
        select(2, json.decode('{"payload":{"a":1 "b":2}}')))
      assert.equal("spapi.json.decode: expected ',' or ']' at character 4", select(2, json.decode("[1 2]")))
      assert.equal("spapi.json.decode: expected ':' at character 6", select(2, json.decode('{"a" 1}')))
      assert.equal("spapi.json.decode: expected a string key at character 2", select(2, json.decode("{1:2}")))
      assert.equal("spapi.json.decode: expected a value at character 4", select(2, json.decode("[1,]")))
      assert.equal("spapi.json.decode: unexpected end of text at character 1", select(2, json.decode("")))
      assert.equal("spapi.json.decode: unexpected end of text at character 4", select(2, json.decode("[1,")))
      assert.equal("spapi.json.decode: expected a value at character 1", select(2, json.decode("nul")))
    end)

    it("returns nil and a message for a non-string argument instead of raising", function()
      for _, case in ipairs({ { 42, "number" }, { nil, "nil" }, { {}, "table" }, { true, "boolean" } }) do
        local v, err = json.decode(case[1])
        assert.is_nil(v)
        assert.equal("spapi.json.decode: expected a string, got " .. case[2], err)
      end
      local v, err = json.decode()
      assert.is_nil(v)
      assert.equal("spapi.json.decode: expected a string, got nil", err)
    end)
  end)

  describe("nesting", function()
    it("allows 1000 levels and refuses 1001, like the cjson path it replaced", function()
      assert.is_table(decode_ok(string.rep("[", 1000) .. "1" .. string.rep("]", 1000)))
      assert.matches("nesting deeper than 1000 at character 1001",
        decode_err(string.rep("[", 1001) .. "1" .. string.rep("]", 1001)), 1, true)
      assert.is_table(decode_ok(string.rep('{"a":', 999) .. "{}" .. string.rep("}", 999)))
      assert.matches("nesting deeper than 1000", decode_err(string.rep('{"a":', 1000) .. "{}" .. string.rep("}", 1000)),
        1, true)
      -- the old path saw an empty array as a string, so it did not count as a level
      assert.is_table(decode_ok(string.rep("[", 1000) .. "[]" .. string.rep("]", 1000)))
      for _, s in ipairs({ string.rep("[", 1001) .. "1" .. string.rep("]", 1001),
                           string.rep('{"a":', 1000) .. "{}" .. string.rep("}", 1000) }) do
        assert.is_nil((ref.decode(s, array_mt)))
      end
      assert.is_table((ref.decode(string.rep("[", 1000) .. "[]" .. string.rep("]", 1000), array_mt)))
    end)

    it("fails cleanly on 100000 open brackets", function()
      assert.matches("nesting deeper than 1000 at character 1001", decode_err(string.rep("[", 100000)), 1, true)
      assert.matches("nesting deeper than 1000", decode_err(string.rep('{"a":', 100000)), 1, true)
      assert.matches("nesting deeper than 1000", decode_err(string.rep("[1,", 100000)), 1, true)
    end)

    it("decodes 1000 levels that each hold 31 items (the Lua stack budget)", function()
      local row = string.rep("1,", 31)
      local v = decode_ok(string.rep("[" .. row, 999) .. "[]" .. string.rep("]", 999))
      local depth = 0
      while type(v) == "table" and #v == 32 do
        assert.equal(1, v[31])
        v = v[32]; depth = depth + 1
      end
      assert.equal(999, depth)
      assert.equal(array_mt, getmetatable(v))
      local obj = string.rep("{" .. string.rep('"k":1,', 30) .. '"z":', 999) .. "0" .. string.rep("}", 999)
      local o = decode_ok(obj)
      for _ = 1, 998 do o = o.z end
      assert.equal(0, o.z)
    end)
  end)

  -- Documents like the ones SP-API sends, and odd ones, generated from a seed.
  local function generator(seed)
    local r = rng(seed)
    local WS = { "", "", "", " ", "\n", "\t", "\r\n  ", " \t " }
    local function ws() return WS[r(#WS)] end
    local PIECES = { "a", "Z", "0", " ", "[]", "{}", ",", ":", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r",
      "\\t", "caf\195\169", "\226\130\172", "\240\159\152\128", "\\u00e9", "\\u20AC", "\\uD83D\\uDE00",
      "\\u0000", "\1", "\31", "spapi", "1234567890123456789" }
    local function str()
      local out = {}
      for i = 1, r(7) - 1 do
        if r(3) == 1 then
          out[i] = PIECES[r(#PIECES)]
        elseif r(6) == 1 then
          local hi, lo = 0xD800 + r(1024) - 1, 0xDC00 + r(1024) - 1
          out[i] = string.format("\\u%04x\\u%04X", hi, lo)
        elseif r(6) == 1 then
          local cp = r(0xD7FF)
          out[i] = string.format("\\u%04x", cp)
        else
          out[i] = string.char(96 + r(26))
        end
      end
      return '"' .. table.concat(out) .. '"'
    end
    local FIXED = { "0", "-0", "1", "-1", "10.0", "1e3", "2.5", "-0.0", "1E+2", "0.5e-3", "1e-400", "1e400",
      "9007199254740991", "9007199254740992", "9007199254740993", "9007199254740993.0", "9223372036854775807",
      "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "18446744073709551616",
      "123456789012345678901234567890", "1234567890123456", "-1234567890123456", "0.1", "99.99", "1.5e300" }
    local function digits(n)
      local out = { tostring(r(9)) }
      for i = 2, n do out[i] = tostring(r(10) - 1) end
      return table.concat(out)
    end
    local function num()
      local k = r(6)
      if k == 1 then return FIXED[r(#FIXED)] end
      local s = (r(3) == 1 and "-" or "") .. (r(5) == 1 and "0" or digits(r(k == 2 and 22 or 6)))
      if k >= 4 and r(2) == 1 then s = s .. "." .. digits(r(4)) end
      if k >= 5 and r(2) == 1 then s = s .. (r(2) == 1 and "e" or "E") .. ({ "", "+", "-" })[r(3)] .. r(40) end
      return s
    end
    local value
    local function container(depth, open, close, item)
      local n = r(8) - 1
      if depth < 2 and r(12) == 1 then n = 30 + r(40) end -- past the 32 items kept on the stack
      if n == 0 then return open .. ws() .. close end
      local out = {}
      for i = 1, n do out[i] = ws() .. item(depth) .. ws() end
      return open .. table.concat(out, ",") .. close
    end
    local KEYS = { '"id"', '"quantity"', '"sellerSku"', '"a"', '""', '"\\u00e9"', '"k\\n"' }
    local function member(depth)
      local key = r(3) == 1 and KEYS[r(#KEYS)] or str() -- duplicates happen
      return key .. ws() .. ":" .. ws() .. value(depth + 1)
    end
    function value(depth)
      local k = r(depth < 3 and 10 or 6)
      if k <= 2 then return str()
      elseif k <= 4 then return num()
      elseif k == 5 then return ({ "true", "false", "null" })[r(3)]
      elseif k == 6 then return "[" .. ws() .. "]"
      elseif k <= 8 then return container(depth, "{", "}", member)
      else return container(depth, "[", "]", function(d) return value(d + 1) end) end
    end
    return function() return ws() .. value(0) .. ws() end, r
  end

  -- Where the old path is more lenient than the decoder, for a reason
  -- documented here. Returns a reason when the difference is one of those.
  local function known_difference(text, old, err)
    if old == nil or not err then return nil end
    local at = tonumber(err:match("at character (%d+)$"))
    local rest = text:sub(at)
    -- cjson's strtod takes "1.", "1.e5" and "-.5"
    if err:find("invalid number", 1, true) and (rest:match("^%-?%d+%.[^%d]") or rest:match("^%-?%d+%.$") or rest:match("^%-%.%d")) then
      return "cjson-lenient-number"
    end
    -- the old path turned 16+ digit integer literals into strings before cjson,
    -- so leading zeros passed ("0000000000000001" → 1)
    local long = rest:match("^%-?(0%d+)%f[^%d]")
    if long and err:find("leading zero", 1, true) and #long >= 16 and not rest:match("^%-?%d+[%.eE]") then
      return "old-long-int-leading-zero"
    end
    -- ... and empty arrays and those literals could then stand as object keys
    if err:find("expected a string key", 1, true) and (rest:match("^%[[ \t\r\n]*%]") or rest:match("^%-?%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d")) then
      return "old-sentinel-as-key"
    end
    return nil
  end

  local function compare(text, stats)
    local old, olderr = ref.decode(text, array_mt)
    local new, newerr = json.decode(text)
    if old == nil and new == nil then
      assert.is_string(olderr); assert.is_string(newerr)
      stats.both_fail = stats.both_fail + 1
      return
    end
    if old ~= nil and new ~= nil then
      local r = same(old, new, nil, stats)
      if r ~= true then error(string.format("decode differs at %s for %q", r, text), 0) end
      stats.equal = stats.equal + 1
      return
    end
    local why = known_difference(text, old, newerr)
    if not why then
      error(string.format("old %s, new %s for %q", old == nil and ("failed: " .. olderr) or "succeeded",
        new == nil and ("failed: " .. newerr) or "succeeded", text), 0)
    end
    stats[why] = (stats[why] or 0) + 1
  end

  describe("against the old decode path (cjson + fix-ups)", function()
    it("gives the same values for 3000 generated documents", function()
      local gen = generator(20261122)
      local stats = { equal = 0, both_fail = 0 }
      for _ = 1, 3000 do compare(gen(), stats) end
      assert.equal(3000, stats.equal) -- every generated document is valid JSON
    end)

    it("agrees on 4000 mutated and truncated documents (both fail, or both give the same value)", function()
      local gen, r = generator(4242)
      local ALPHABET = { "{", "}", "[", "]", '"', ":", ",", "\\", " ", "\n", "\t", "\r", "0", "1", "9", "-", "+",
        ".", "e", "E", "t", "n", "u", "l", "f", "x", "/" }
      local stats = { equal = 0, both_fail = 0 }
      for i = 1, 4000 do
        local s = gen()
        local n = #s
        local p = r(n + 1)
        local op = i % 5
        if op == 0 then s = s:sub(1, p - 1)                                       -- truncate
        elseif op == 1 then s = s:sub(1, p - 1) .. s:sub(p + 1)                   -- delete a byte
        elseif op == 2 then s = s:sub(1, p - 1) .. ALPHABET[r(#ALPHABET)] .. s:sub(p) -- insert
        elseif op == 3 then s = s:sub(1, p - 1) .. ALPHABET[r(#ALPHABET)] .. s:sub(p + 1) -- replace
        else s = s:sub(1, p - 1) .. s:sub(p, p + r(8)) .. s:sub(p)               -- repeat a run
        end
        compare(s, stats)
      end
      -- both outcomes happen, so the comparison saw failures and values
      assert.is_true(stats.both_fail > 500, "both_fail " .. stats.both_fail)
      assert.is_true(stats.equal > 500, "equal " .. stats.equal)
    end)

    it("shows the documented differences on purpose-made input", function()
      local stats = { equal = 0, both_fail = 0 }
      for _, s in ipairs({ "1.", "[1.e5]", "-.5", "0000000000000001", '{"a":-0000000000000000012}',
                           "{1234567890123456789:1}", "{[]:1}" }) do
        compare(s, stats)
        assert.is_nil((json.decode(s)))
      end
      compare("[-9223372036854775809,-9223372036854775808]", stats)
      local v = decode_ok("[-9223372036854775809,-9223372036854775808]")
      assert.equal(-2 ^ 63, v[1]); assert.equal(-2 ^ 63, v[2])
      if mtype then
        assert.equal("float", mtype(v[1])); assert.equal("integer", mtype(v[2]))
        assert.equal(1, stats["old-mininteger"])
      end
      assert.equal(3, stats["cjson-lenient-number"])
      assert.equal(2, stats["old-long-int-leading-zero"])
      assert.equal(2, stats["old-sentinel-as-key"])
    end)
  end)

  describe("malformed input", function()
    local sample = ' {"payload":{"inventorySummaries":[{"asin":"B00\\u00e9X","qty":12,"price":10.99,' ..
      '"ids":[1234567890123456789,-1e3],"tags":[ ],"note":null,"ok":true,"nope":false,"s":"\\ud83d\\ude00\\n"}],' ..
      '"pagination":{}}} '

    it("the sample itself decodes like the old path", function()
      local v = decode_ok(sample)
      assert.equal(true, same(ref.decode(sample, array_mt), v))
      assert.equal(12, v.payload.inventorySummaries[1].qty)
    end)

    it("fails with nil and a message for the sample truncated at every byte, like the old path", function()
      for i = 0, #sample - 2 do -- the last byte is whitespace: cutting it leaves valid JSON
        local s = sample:sub(1, i)
        local v, err = json.decode(s)
        assert(v == nil and type(err) == "string", s)
        assert(err:match("^spapi%.json%.decode: .+ at character %d+$"), err)
        assert.is_nil((ref.decode(s, array_mt)))
      end
    end)

    it("fails with nil and a message for every single-byte corruption that breaks the sample", function()
      local failures = 0
      for i = 1, #sample do
        for _, c in ipairs({ "\0", "\"", "\\", "{", "]", "x", "\255" }) do
          local s = sample:sub(1, i - 1) .. c .. sample:sub(i + 1)
          local v, err = json.decode(s)
          if v == nil then
            failures = failures + 1
            assert(err:match("^spapi%.json%.decode: .+ at character %d+$"), err)
          end
        end
      end
      assert.is_true(failures > #sample * 4)
    end)
  end)

  it("decodes a 20 KB inventory response like the old path", function()
    local parts, r = {}, rng(7)
    for i = 1, 66 do
      local q1, q2 = r(500), r(50)
      parts[i] = string.format('{"asin":"B0%08d","sellerSku":"SKU-%04d","condition":"NewItem",' ..
        '"inventoryDetails":{"fulfillableQuantity":%d,"inboundWorkingQuantity":%d,"reservedQuantity":' ..
        '{"totalReservedQuantity":0,"pendingCustomerOrderQuantity":1.0}},"lastUpdatedTime":"2026-11-22T10:%02d:00Z",' ..
        '"stores":[],"totalQuantity":%d}', r(99999999), i, q1, q2, r(60), q1 + q2)
    end
    local s = '{"payload":{"granularity":{"granularityType":"Marketplace","granularityId":"ATVPDKIKX0DER"},' ..
      '"inventorySummaries":[' .. table.concat(parts, ",") .. ']},"pagination":{"nextToken":"abc"}}'
    local v = decode_ok(s)
    assert.equal(true, same(ref.decode(s, array_mt), v))
    assert.equal(66, #v.payload.inventorySummaries)
    if mtype then
      assert.equal("integer", mtype(v.payload.inventorySummaries[66].inventoryDetails.reservedQuantity.pendingCustomerOrderQuantity))
    end
  end)
end)
