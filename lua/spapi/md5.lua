-- spapi.md5 — MD5 (RFC 1321) in Lua, for the one place SP-API uses it: Merchant
-- Fulfillment's label checksum (FileContents.Checksum, a base64 MD5). Not for
-- security. Lua 5.3+ uses the integer operators, LuaJIT its bit library.
--
--   md5.sum(s) → the 16-byte digest;  md5.hex(s) → 32 lowercase hex characters
local _M = {}

local byte, char, fmt, rep = string.byte, string.char, string.format, string.rep
local floor = math.floor

local band, bor, bxor, bnot, rol
local ok_bit, bit = pcall(require, "bit")
if ok_bit and type(bit) == "table" and bit.rol then
  band, bor, bxor, bnot, rol = bit.band, bit.bor, bit.bxor, bit.bnot, bit.rol
else
  -- (inside load() so that LuaJIT's parser never sees the 5.3 operators)
  band, bor, bxor, bnot, rol = assert(load([[
    return function(a, b) return a & b & 0xffffffff end,
      function(a, b) return (a | b) & 0xffffffff end,
      function(a, b) return (a ~ b) & 0xffffffff end,
      function(a) return ~a & 0xffffffff end,
      function(a, n) a = a & 0xffffffff; return ((a << n) | (a >> (32 - n))) & 0xffffffff end
  ]]))()
end

local M32 = 4294967296
local function add(...)
  local s = 0
  for i = 1, select("#", ...) do s = s + (select(i, ...) % M32) end
  return s % M32
end

local K, S = {}, {
  7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
  5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
  4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
  6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
}
for i = 1, 64 do K[i] = floor(math.abs(math.sin(i)) * M32) end

local function le32(n)
  n = n % M32
  return char(n % 256, floor(n / 256) % 256, floor(n / 65536) % 256, floor(n / 16777216) % 256)
end

function _M.sum(s)
  if type(s) ~= "string" then error("spapi.md5: 's' must be a string (got " .. type(s) .. ")", 2) end
  local len = #s
  local bits = len * 8
  s = s .. "\128" .. rep("\0", (55 - len) % 64) .. le32(bits) .. le32(floor(bits / M32))
  local a0, b0, c0, d0 = 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476
  local X = {}
  for chunk = 1, #s, 64 do
    for i = 0, 15 do
      local p = chunk + i * 4
      local w1, w2, w3, w4 = byte(s, p, p + 3)
      X[i] = w1 + w2 * 256 + w3 * 65536 + w4 * 16777216
    end
    local a, b, c, d = a0, b0, c0, d0
    for i = 0, 63 do
      local f, g
      if i < 16 then
        f, g = bor(band(b, c), band(bnot(b), d)), i
      elseif i < 32 then
        f, g = bor(band(d, b), band(bnot(d), c)), (5 * i + 1) % 16
      elseif i < 48 then
        f, g = bxor(bxor(b, c), d), (3 * i + 5) % 16
      else
        f, g = bxor(c, bor(b, bnot(d))), (7 * i) % 16
      end
      local t = add(a, f, K[i + 1], X[g])
      a, d, c = d, c, b
      b = add(b, rol(t, S[i + 1]))
    end
    a0, b0, c0, d0 = add(a0, a), add(b0, b), add(c0, c), add(d0, d)
  end
  return le32(a0) .. le32(b0) .. le32(c0) .. le32(d0)
end

function _M.hex(s)
  return (_M.sum(s):gsub(".", function(c) return fmt("%02x", byte(c)) end))
end

return _M
