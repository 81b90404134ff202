-- spapi.core codecs: percent-encoding, base64, hex, digests, gzip, AES.
local core = require "spapi.core"

local function unhex(s)
  return (s:gsub("%s", ""):gsub("..", function(h) return string.char(tonumber(h, 16)) end))
end

describe("core.urlencode (RFC 3986)", function()
  it("keeps unreserved characters", function()
    assert.equal("AZaz09-._~", core.urlencode("AZaz09-._~"))
  end)
  it("encodes spaces, slashes, plus and reserved characters as uppercase %XX", function()
    assert.equal("a%20b%2Fc%2Bd", core.urlencode("a b/c+d"))
    assert.equal("%3A%3F%23%5B%5D%40%21%24%26%27%28%29%2A%2C%3B%3D%25", core.urlencode(":?#[]@!$&'()*,;=%"))
  end)
  it("encodes UTF-8 bytewise", function()
    assert.equal("Gr%C3%B6%C3%9Fe%2010%2F%CE%B2%2B1", core.urlencode("Größe 10/β+1"))
  end)
  it("handles empty strings and NUL bytes", function()
    assert.equal("", core.urlencode(""))
    assert.equal("a%00b", core.urlencode("a\0b"))
  end)
  it("round-trips through urldecode", function()
    local s = "Größe 10/β+1 & more=yes?"
    assert.equal(s, core.urldecode(core.urlencode(s)))
  end)
end)

describe("core.urldecode", function()
  it("decodes %XX in either case", function()
    assert.equal("a/b c", core.urldecode("a%2fb%20c"))
  end)
  it("keeps + unless plus_as_space is given", function()
    assert.equal("a+b", core.urldecode("a+b"))
    assert.equal("a b", core.urldecode("a+b", true))
  end)
  it("leaves malformed escapes as they are", function()
    assert.equal("100%", core.urldecode("100%"))
    assert.equal("%zz%4", core.urldecode("%zz%4"))
  end)
end)

describe("core.b64encode / b64decode", function()
  local vectors = { -- RFC 4648 section 10
    { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
    { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
  }
  for _, v in ipairs(vectors) do
    it("RFC 4648 vector " .. string.format("%q", v[1]), function()
      assert.equal(v[2], core.b64encode(v[1]))
      assert.equal(v[1], core.b64decode(v[2]))
    end)
  end
  it("tolerates missing padding and whitespace", function()
    assert.equal("foob", core.b64decode("Zm9vYg"))
    assert.equal("fooba", core.b64decode("Zm9v\nYmE"))
    assert.equal("foobar", core.b64decode(" Zm9v\r\nYmFy \n"))
  end)
  it("rejects invalid characters with nil, err", function()
    local v, err = core.b64decode("Zm9v*mFy")
    assert.is_nil(v)
    assert.matches("invalid character", err)
    v, err = core.b64decode("Zg==Zg==")
    assert.is_nil(v)
    assert.is_string(err)
  end)
  it("round-trips random binary data of every length mod 3", function()
    for n = 0, 64 do
      local s = core.random_bytes(n)
      assert.equal(s, core.b64decode(core.b64encode(s)))
    end
  end)
end)

describe("core.hex", function()
  it("gives lowercase hex", function()
    assert.equal("00ff10ab", core.hex("\0\255\16\171"))
    assert.equal("", core.hex(""))
  end)
end)

describe("core.sha256 / hmac_sha256", function()
  it("matches FIPS 180-2 examples", function()
    assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", core.hex(core.sha256("abc")))
    assert.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", core.hex(core.sha256("")))
    assert.equal(32, #core.sha256("x"))
  end)
  local rfc4231 = {
    { ("\11"):rep(20), "Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
    { "Jefe", "what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
    { ("\170"):rep(20), ("\221"):rep(50), "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe" },
    { ("\170"):rep(131), "Test Using Larger Than Block-Size Key - Hash Key First",
      "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" },
  }
  for i, v in ipairs(rfc4231) do
    it("matches RFC 4231 test case " .. i, function()
      assert.equal(v[3], core.hex(core.hmac_sha256(v[1], v[2])))
    end)
  end
end)

describe("core.md5", function()
  local rfc1321 = { -- RFC 1321, A.5 "Test suite"
    { "", "d41d8cd98f00b204e9800998ecf8427e" },
    { "a", "0cc175b9c0f1b6a831c399e269772661" },
    { "abc", "900150983cd24fb0d6963f7d28e17f72" },
    { "message digest", "f96b697d7cb7938d525a2f31aaf161d0" },
    { "abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b" },
    { "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f" },
    { ("1234567890"):rep(8), "57edf4a22be3c955ac49da2e2107b67a" },
  }
  it("matches the RFC 1321 test suite, as 16 raw bytes", function()
    for _, v in ipairs(rfc1321) do
      local d = core.md5(v[1])
      assert.equal(16, #d)
      assert.equal(v[2], core.hex(d))
    end
  end)
  it("hashes binary data, NUL bytes included", function()
    assert.equal("93b885adfe0da089cdf634904fd59f71", core.hex(core.md5("\0")))
    assert.equal("7707d6ae4e027c70eea2a935c2296f21", core.hex(core.md5(("a"):rep(1000000))))
  end)
  it("raises on a non-string", function()
    assert.has_error(function() core.md5() end)
    assert.has_error(function() core.md5({}) end)
  end)
  it("is spapi.md5 in hex", function()
    local spapi = require "spapi"
    assert.equal("900150983cd24fb0d6963f7d28e17f72", spapi.md5("abc"))
    assert.has_error(function() spapi.md5(nil) end, "spapi.md5: s must be a string (got nil)")
  end)
end)

describe("core.gzip / gunzip", function()
  it("round-trips text", function()
    local s = ("hello spapi "):rep(1000)
    local z = core.gzip(s)
    assert.is_true(#z < #s)
    assert.equal("\31\139", z:sub(1, 2)) -- gzip magic
    assert.equal(s, core.gunzip(z))
  end)
  it("round-trips 1 MB of random data at every level", function()
    local s = core.random_bytes(1024 * 1024)
    assert.equal(s, core.gunzip(core.gzip(s)))
    assert.equal(s, core.gunzip(core.gzip(s, 1)))
    assert.equal(s, core.gunzip(core.gzip(s, 9)))
  end)
  it("inflates large outputs (32 MB of zeros)", function()
    local s = ("\0"):rep(32 * 1024 * 1024)
    local out = core.gunzip(core.gzip(s))
    assert.equal(#s, #out)
    assert.equal(s, out)
  end)
  it("round-trips the empty string", function()
    assert.equal("", core.gunzip(core.gzip("")))
  end)
  it("auto-detects zlib streams", function()
    -- python3: zlib.compress(b"hello zlib")
    assert.equal("hello zlib", core.gunzip(unhex("789ccb48cdc9c957a8cac94c0200159503e6")))
  end)
  it("decodes concatenated gzip members", function()
    assert.equal("abcdef", core.gunzip(core.gzip("abc") .. core.gzip("def")))
  end)
  it("returns nil, err for bad or truncated data", function()
    local v, err = core.gunzip("not gzip at all")
    assert.is_nil(v)
    assert.matches("gunzip", err)
    local z = core.gzip(("x"):rep(10000) .. core.random_bytes(1000))
    v, err = core.gunzip(z:sub(1, #z - 20))
    assert.is_nil(v)
    assert.is_string(err)
    v, err = core.gunzip("")
    assert.is_nil(v)
    assert.is_string(err)
  end)
  it("stops at max_bytes (decompression bombs)", function()
    local z = core.gzip(("\0"):rep(1024 * 1024))
    local v, err = core.gunzip(z, 1000)
    assert.is_nil(v)
    assert.matches("max_bytes", err)
    assert.equal(1024 * 1024, #core.gunzip(z, 1024 * 1024))
  end)
end)

describe("core.aes256cbc", function()
  -- NIST SP 800-38A, F.2.5 CBC-AES256.Encrypt
  local key = unhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
  local iv = unhex("000102030405060708090a0b0c0d0e0f")
  local plain = unhex([[6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
    30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710]])
  local cipher = [[f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b]]
  it("matches the NIST SP 800-38A known answer (plus one PKCS#7 block)", function()
    local out = core.aes256cbc_encrypt(key, iv, plain)
    assert.equal(80, #out)
    assert.equal(cipher, core.hex(out:sub(1, 64)))
    assert.equal(plain, core.aes256cbc_decrypt(key, iv, out))
  end)
  it("round-trips random data of several lengths", function()
    local k, i = core.random_bytes(32), core.random_bytes(16)
    for _, n in ipairs({ 0, 1, 15, 16, 17, 1000 }) do
      local p = core.random_bytes(n)
      local c = core.aes256cbc_encrypt(k, i, p)
      assert.equal(0, #c % 16)
      assert.equal(p, core.aes256cbc_decrypt(k, i, c))
    end
  end)
  it("returns nil, err when decrypting with the wrong key", function()
    local k, i = core.random_bytes(32), core.random_bytes(16)
    local c = core.aes256cbc_encrypt(k, i, "secret document url")
    local bad = ("\0"):rep(32)
    local ok_count = 0
    -- a wrong key yields valid padding by chance about 1/256 of the time; try a few
    for n = 1, 4 do
      bad = core.sha256(bad .. n)
      local v, err = core.aes256cbc_decrypt(bad, i, c)
      if v == nil then assert.is_string(err) else ok_count = ok_count + 1 end
      assert.are_not.equal("secret document url", v)
    end
    assert.is_true(ok_count < 4)
    local v, err = core.aes256cbc_decrypt(k, i, "short")
    assert.is_nil(v)
    assert.is_string(err)
  end)
  it("raises naming the argument for a wrong key or iv length", function()
    assert.has_error(function() core.aes256cbc_encrypt("short", iv, "x") end)
    local ok, err = pcall(core.aes256cbc_decrypt, key, "short", "x")
    assert.is_false(ok)
    assert.matches("iv", err)
    ok, err = pcall(core.aes256cbc_encrypt, "short", iv, "x")
    assert.matches("key", err)
  end)
end)

describe("core.random_bytes", function()
  it("returns n bytes that differ between calls", function()
    assert.equal(0, #core.random_bytes(0))
    local a, b = core.random_bytes(32), core.random_bytes(32)
    assert.equal(32, #a)
    assert.are_not.equal(a, b)
  end)
  it("raises for a negative count", function()
    assert.has_error(function() core.random_bytes(-1) end)
  end)
end)
