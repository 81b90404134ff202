-- The decoders never crash or raise on hostile input: they return a value or
-- nil plus a message. Inputs are random bytes and mutations of valid inputs.
-- (Run under valgrind by scripts/valgrind.sh as well.)
local core = require "spapi.core"

local function hexs(s) return core.hex(s) end

local function mutate(s)
  local b = { s:byte(1, -1) }
  local n = #b
  if n == 0 then return core.random_bytes(4) end
  local r = core.random_bytes(8)
  for i = 1, 4 do
    local pos = (r:byte(i) * 256 + r:byte(i + 4)) % n + 1
    b[pos] = r:byte(i + 1)
  end
  local cut = r:byte(8) % (n + 1)
  local out = {}
  for i = 1, n do out[i] = string.char(b[i]) end
  return table.concat(out):sub(1, math.max(cut, n - 3))
end

local function check(name, fn, input)
  local ok, v, err = pcall(fn, input)
  if not ok then error(name .. " raised on input " .. hexs(input) .. ": " .. tostring(v)) end
  if v == nil then
    assert(type(err) == "string" or type(err) == "table", name .. " returned nil without a message for " .. hexs(input))
  end
end

describe("decoders on hostile input", function()
  local seeds_gz = { core.gzip("hello world"), core.gzip(core.random_bytes(300)), core.gzip(("abc"):rep(1000)) }
  local seeds_json = {
    [[{"access_token":"Atza|x","expires_in":3600,"a":{"b":[1,2,"]"]}}]],
    [[{"error":"invalid_grant","error_description":"bad \u00e9 \ud83d\ude00"}]],
  }
  local seeds_b64 = { core.b64encode(core.random_bytes(50)), "Zm9vYmFy\n" }

  it("gunzip", function()
    for i = 1, 300 do
      check("gunzip", core.gunzip, i % 2 == 0 and core.random_bytes(i % 64) or mutate(seeds_gz[i % 3 + 1]))
    end
  end)
  it("b64decode and urldecode", function()
    for i = 1, 300 do
      local s = i % 2 == 0 and core.random_bytes(i % 40) or mutate(seeds_b64[i % 2 + 1])
      check("b64decode", core.b64decode, s)
      local ok, v = pcall(core.urldecode, s)
      assert(ok and type(v) == "string", "urldecode failed on " .. hexs(s))
    end
  end)
  it("json_flat and lwa_parse", function()
    for i = 1, 400 do
      local s = i % 2 == 0 and core.random_bytes(i % 50) or mutate(seeds_json[i % 2 + 1])
      check("json_flat", core.json_flat, s)
      check("lwa_parse", function(x) return core.lwa_parse(200 + (i % 3) * 100, x) end, s)
    end
  end)
  it("aes256cbc_decrypt", function()
    local k, iv = core.random_bytes(32), core.random_bytes(16)
    local c = core.aes256cbc_encrypt(k, iv, "some document text")
    for i = 1, 100 do
      check("aes256cbc_decrypt", function(x) return core.aes256cbc_decrypt(k, iv, x) end,
        i % 2 == 0 and core.random_bytes(i % 48) or mutate(c))
    end
  end)
end)
