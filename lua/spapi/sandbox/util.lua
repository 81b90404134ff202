-- Small helpers for the sandbox running inside nginx (LuaJIT + lua-nginx-module):
-- JSON (with empty arrays), ISO-8601 time, gzip through zlib (ffi), ids.
local _M = {}

local cjson = require "cjson.safe"
local ngx = ngx
local type, pairs, next, setmetatable, getmetatable, tostring, tonumber =
  type, pairs, next, setmetatable, getmetatable, tostring, tonumber
local floor, fmt, os_date = math.floor, string.format, os.date

-- JSON ---------------------------------------------------------------------
local codec = cjson.new()
codec.encode_sparse_array(true)
codec.encode_max_depth(200)
codec.decode_max_depth(200)
codec.encode_number_precision(14)

local ARRAY_MT = { __name = "spapi.sandbox.json.array" }
local EMPTY = "@@spapiSandboxEmptyArray@@"
local EMPTY_Q = '"' .. EMPTY .. '"'

-- Replace empty arrays marked with json.array by a sentinel (copying only
-- the tables on the way to a change, never mutating the caller's tables).
local function prep(v, depth)
  if type(v) ~= "table" or depth > 200 then return v end
  if getmetatable(v) == ARRAY_MT and next(v) == nil then return EMPTY end
  local copy
  for k, x in pairs(v) do
    if type(x) == "table" then
      local y = prep(x, depth + 1)
      if y ~= x then
        if not copy then
          copy = {}
          for k2, x2 in pairs(v) do copy[k2] = x2 end
        end
        copy[k] = y
      end
    end
  end
  return copy or v
end

local json = {}
json.null = cjson.null
--- Mark t (default a new table) as a JSON array: encodes as [] when empty.
function json.array(t) return setmetatable(t or {}, ARRAY_MT) end
function json.is_array(t) return getmetatable(t) == ARRAY_MT end
function json.encode(v)
  local s, err = codec.encode(prep(v, 0))
  if not s then return nil, err end
  if s:find(EMPTY, 1, true) then
    s = s:gsub(EMPTY_Q, "[]")
  end
  return s
end
function json.decode(s)
  if type(s) ~= "string" then return nil, "not a string" end
  return codec.decode(s)
end
_M.json = json

--- Canonical JSON (sorted keys): equal data → equal strings (idempotency checks).
local function canonical(v, out)
  local t = type(v)
  if t == "table" then
    if v == json.null then out[#out + 1] = "null" return end
    local n = #v
    if n > 0 or getmetatable(v) == ARRAY_MT then
      out[#out + 1] = "["
      for i = 1, n do
        if i > 1 then out[#out + 1] = "," end
        canonical(v[i], out)
      end
      out[#out + 1] = "]"
      return
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    out[#out + 1] = "{"
    for i, k in ipairs(keys) do
      if i > 1 then out[#out + 1] = "," end
      out[#out + 1] = codec.encode(k) .. ":"
      local x = v[k]
      if x == nil then x = v[tonumber(k)] end
      canonical(x, out)
    end
    out[#out + 1] = "}"
  else
    out[#out + 1] = codec.encode(v) or "null"
  end
end
function json.canonical(v)
  local out = {}
  canonical(v, out)
  return table.concat(out)
end

-- Time ---------------------------------------------------------------------
function _M.iso(t)
  return os_date("!%Y-%m-%dT%H:%M:%SZ", floor(t))
end

local function days_from_civil(y, m, d)
  y = (m <= 2) and y - 1 or y
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

--- ISO-8601 date-time (or date) → Unix seconds, or nil.
function _M.parse_iso(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo < 1 or mo > 12 or d < 1 or d > 31 then return nil end
  local h, mi, sec, frac, tz = 0, 0, 0, 0, ""
  if rest ~= "" then
    local hh, mm, tail = rest:match("^[T ](%d%d):(%d%d)(.*)$")
    if not hh then return nil end
    h, mi = tonumber(hh), tonumber(mm)
    local ss, tail2 = tail:match("^:(%d%d)(.*)$")
    if ss then sec = tonumber(ss); tail = tail2 end
    local fr, tail3 = tail:match("^([%.,]%d+)(.*)$")
    if fr then frac = tonumber("0." .. fr:sub(2)) or 0; tail = tail3 end
    tz = tail
  end
  local off = 0
  if tz == "" or tz == "Z" or tz == "z" then
    off = 0
  else
    local sign, oh, om = tz:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil end
    off = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1)
  end
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec + frac - off
end

-- Ids ----------------------------------------------------------------------
local hexd = "0123456789abcdef"
local seeded = false
local function rand_hex(n)
  if not seeded then
    math.randomseed(floor(ngx.now() * 1000) + ngx.worker.pid() * 7919)
    seeded = true
  end
  local t = {}
  for i = 1, n do
    local r = math.random(1, 16)
    t[i] = hexd:sub(r, r)
  end
  return table.concat(t)
end
_M.rand_hex = rand_hex

function _M.request_id()
  local h = rand_hex(32)
  return fmt("%s-%s-%s-%s-%s", h:sub(1, 8), h:sub(9, 12), h:sub(13, 16), h:sub(17, 20), h:sub(21, 32))
end

--- Deterministic float in [0,1) from a string (for seeded faults and rng).
function _M.unit_hash(s)
  local a = ngx.crc32_long(s)
  local b = ngx.crc32_long(s .. "#")
  return ((a % 65536) * 65536 + (b % 65536)) / 4294967296
end

function _M.b64(s) return ngx.encode_base64(s) end
function _M.unb64(s) return ngx.decode_base64(s) end

-- gzip (zlib through the ffi) -------------------------------------------
local ffi_ok, ffi = pcall(require, "ffi")
local zlib
local function load_zlib()
  if zlib ~= nil then return zlib end
  if not ffi_ok then zlib = false return zlib end
  pcall(ffi.cdef, [[
    typedef struct spapi_z_stream_s {
      const unsigned char *next_in; unsigned int avail_in; unsigned long total_in;
      unsigned char *next_out; unsigned int avail_out; unsigned long total_out;
      const char *msg; void *state; void *zalloc; void *zfree; void *opaque;
      int data_type; unsigned long adler; unsigned long reserved;
    } spapi_z_stream;
    const char *zlibVersion(void);
    int deflateInit2_(spapi_z_stream *s, int level, int method, int windowBits, int memLevel,
                      int strategy, const char *version, int stream_size);
    int deflate(spapi_z_stream *s, int flush);
    int deflateEnd(spapi_z_stream *s);
    unsigned long deflateBound(spapi_z_stream *s, unsigned long sourceLen);
    int inflateInit2_(spapi_z_stream *s, int windowBits, const char *version, int stream_size);
    int inflate(spapi_z_stream *s, int flush);
    int inflateEnd(spapi_z_stream *s);
  ]])
  for _, name in ipairs({ "z", "libz.so.1" }) do
    local ok, lib = pcall(ffi.load, name)
    if ok then zlib = lib return zlib end
  end
  zlib = false
  return zlib
end

--- gzip a string (RFC 1952) → compressed string or nil, err.
function _M.gzip(s)
  local z = load_zlib()
  if not z then return nil, "zlib not available" end
  local strm = ffi.new("spapi_z_stream")
  if z.deflateInit2_(strm, 6, 8, 31, 8, 0, z.zlibVersion(), ffi.sizeof(strm)) ~= 0 then
    return nil, "deflateInit failed"
  end
  local cap = tonumber(z.deflateBound(strm, #s)) + 64
  local out = ffi.new("unsigned char[?]", cap)
  strm.next_in = s
  strm.avail_in = #s
  strm.next_out = out
  strm.avail_out = cap
  local rc = z.deflate(strm, 4) -- Z_FINISH
  local n = cap - strm.avail_out
  z.deflateEnd(strm)
  if rc ~= 1 then return nil, "deflate failed" end -- Z_STREAM_END
  return ffi.string(out, n)
end

-- the most a gunzip gives (a small gzip of zeros inflates a thousandfold)
_M.MAX_INFLATED = 32 * 1024 * 1024

--- gunzip (gzip or zlib stream) → string or nil, err [, "too_large"] (past
--- limit bytes, default MAX_INFLATED: it stops there).
function _M.gunzip(s, limit)
  limit = limit or _M.MAX_INFLATED
  local z = load_zlib()
  if not z then return nil, "zlib not available" end
  local strm = ffi.new("spapi_z_stream")
  if z.inflateInit2_(strm, 47, z.zlibVersion(), ffi.sizeof(strm)) ~= 0 then
    return nil, "inflateInit failed"
  end
  local chunk = 65536
  local buf = ffi.new("unsigned char[?]", chunk)
  local parts, total = {}, 0
  strm.next_in = s
  strm.avail_in = #s
  while true do
    strm.next_out = buf
    strm.avail_out = chunk
    local rc = z.inflate(strm, 0)
    local n = chunk - strm.avail_out
    total = total + n
    if total > limit then
      z.inflateEnd(strm)
      return nil, "the decompressed content is larger than " .. limit .. " bytes", "too_large"
    end
    parts[#parts + 1] = ffi.string(buf, n)
    if rc == 1 then break end
    if rc ~= 0 then z.inflateEnd(strm) return nil, "invalid gzip data" end
    if strm.avail_in == 0 and strm.avail_out ~= 0 then
      z.inflateEnd(strm) return nil, "truncated gzip data"
    end
  end
  z.inflateEnd(strm)
  return table.concat(parts)
end

function _M.copy(t)
  if type(t) ~= "table" then return t end
  local c = {}
  for k, v in pairs(t) do c[k] = _M.copy(v) end
  return setmetatable(c, getmetatable(t))
end

_M.tostring = tostring
return _M
