-- spapi.json — JSON for spapi, over a private lua-cjson instance.
--
--   json.encode(v)   -> string | nil, err
--   json.decode(s)   -> value  | nil, err
--   json.null        JSON null (cjson.null): round-trips in objects and arrays
--   json.array(t)    marks t (or a new table) as a JSON array; returns it
--   json.array_mt    the metatable json.array sets
--   json.is_array(t) true when t carries array_mt
--
-- What this adds to the lua-cjson 2.1.0 that Debian ships (no array_mt
-- support, numbers always decoded as doubles, 14 significant digits at most):
--
-- * Decoding is spapi's own C decoder (core.json_decoder, src/json.c): one
--   pass that builds the final values (1.5-2x cheaper than cjson's decode plus
--   the fix-ups this module used to make for small bodies, 2-5x for big ones).
--   It follows RFC 8259 strictly (cjson's "1." and "-.5" are errors); see
--   src/json.c for the details.
-- * Empty arrays survive: an empty table marked with json.array encodes as
--   `[]` (a plain empty table stays `{}`), and an empty JSON array decodes to
--   an empty table carrying array_mt, so decode → encode gives `[]` back.
--   Non-empty arrays need no mark: a sequence encodes as an array anyway.
-- * Integers are exact. Integral numbers of 1e14 or more (order ids, ASINs as
--   numbers, 64-bit ids) are written digit for digit instead of cjson's
--   "%.14g" (1.2345678901235e+15). On Lua 5.4, decoded integral numbers come
--   back as integers (10, not 10.0) and literals beyond 2^53 keep every digit
--   when they fit in 64 bits; LuaJIT has only doubles, so there they are the
--   nearest double.
-- * Settings (private instance, so nothing leaks to other cjson users in the
--   same nginx worker): encode_number_precision(14); encode_sparse_array(false):
--   a table like { [1] = "a", [1000] = "b" } is an error, not an object with
--   string keys nor 998 nulls — a wrong shape should fail before it is sent
--   (small holes, up to index 10 or half full, still encode with nulls);
--   NaN and infinities are an error; nesting is limited to 1000 levels.
local cjson = require("cjson.safe").new()
local core = require("spapi.core")

local type, pairs, next, error, pcall = type, pairs, next, error, pcall
local setmetatable, getmetatable = setmetatable, getmetatable
local floor, huge = math.floor, math.huge
local mtype = math.type -- nil on LuaJIT
local sformat, sgsub = string.format, string.gsub

cjson.encode_number_precision(14)
cjson.encode_sparse_array(false)
cjson.encode_max_depth(1000)
cjson.encode_invalid_numbers(false)

local _M = { _VERSION = "0.1" }

_M.null = cjson.null
_M.array_mt = { __name = "spapi.json.array" }
local array_mt = _M.array_mt

-- decode(s) -> value | nil, err (a non-string s is an error too, not a raise)
_M.decode = core.json_decoder(array_mt)

function _M.array(t)
  if t == nil then return setmetatable({}, array_mt) end
  if type(t) ~= "table" then error("spapi.json.array: expected a table, got " .. type(t), 2) end
  local mt = getmetatable(t)
  if mt == array_mt then return t end
  if mt ~= nil then error("spapi.json.array: the table already has a metatable", 2) end
  return setmetatable(t, array_mt)
end

function _M.is_array(t)
  return type(t) == "table" and getmetatable(t) == array_mt
end

-- Sentinels: JSON strings that stand for what cjson cannot express. They
-- start with NUL + SOH, which no SP-API string carries.
local S_ARR = "\0\1spapi:[]"
local S_NUM = "\0\1spapi:n:"
local J_ARR = '"\\u0000\\u0001spapi:[]"'        -- how cjson writes S_ARR
local J_NUM = '"\\u0000\\u0001spapi:n:([%-%d]+)"' -- and S_NUM .. digits (a pattern)
local J_ARR_PAT = sgsub(J_ARR, "%p", "%%%0")

local BIG = 1e14 -- from here on "%.14g" would round an integer

local function int_digits(v)
  if mtype and mtype(v) == "integer" then return sformat("%d", v) end
  return sformat("%.0f", v)
end

-- Returns v, or a copy of v with sentinels for empty arrays and big integers.
local function prep(v, depth)
  local tv = type(v)
  if tv == "number" then
    if v == v and v ~= huge and v ~= -huge and (v >= BIG or v <= -BIG) and floor(v) == v
        and v < 9.3e18 and v > -9.3e18 then
      return S_NUM .. int_digits(v), true
    end
    return v, false
  end
  if tv ~= "table" then return v, false end
  if depth > 1000 then error("spapi.json: nesting deeper than 1000 (cycle?)", 0) end
  if next(v) == nil then
    if getmetatable(v) == array_mt then return S_ARR, true end
    return v, false
  end
  local copy
  for k, x in pairs(v) do
    local nx, changed = prep(x, depth + 1)
    if changed then
      if not copy then
        copy = {}
        for k2, x2 in pairs(v) do copy[k2] = x2 end
      end
      copy[k] = nx
    end
  end
  if copy then return copy, true end
  return v, false
end

function _M.encode(v)
  local ok, pv, changed = pcall(prep, v, 0)
  if not ok then return nil, pv end
  local s, err = cjson.encode(pv)
  if not s then return nil, err end
  if changed then
    s = sgsub(s, J_ARR_PAT, "[]")
    s = sgsub(s, J_NUM, "%1")
  end
  return s
end

return _M
