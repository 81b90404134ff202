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

local type, pairs, next, tostring, tonumber = type, pairs, next, tostring, tonumber
local setmetatable, getmetatable = setmetatable, getmetatable
local floor, huge = math.floor, math.huge
local mtype, tointeger = math.type, math.tointeger -- nil on LuaJIT
local concat = table.concat
local sfind, ssub, smatch, sformat, sgsub = string.find, string.sub, string.match, string.format, string.gsub

cjson.encode_number_precision(14)
cjson.encode_sparse_array(false)
cjson.encode_max_depth(1000)
cjson.decode_max_depth(1000)
cjson.encode_invalid_numbers(false)
cjson.decode_invalid_numbers(false)

local _M = { _VERSION = "0.1" }

-- One C pass over the text says which fix-ups a decode needs (see src/json.c);
-- without the core (e.g. a bare nginx) Lua patterns stand in.
local json_scan
do
  local ok, core = pcall(require, "spapi.core")
  if ok and type(core) == "table" and core.json_scan then json_scan = core.json_scan end
end

_M.null = cjson.null
_M.array_mt = { __name = "spapi.json.array" }
local array_mt = _M.array_mt

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

-- Careful pass over JSON text (outside string literals): empty arrays and
-- integer literals of 16+ digits become sentinel strings.
local function substitute(s)
  local out, n = {}, 0
  local pos, len = 1, #s
  local did = false
  while pos <= len do
    local i = sfind(s, '[%["%-%d]', pos)
    if not i then break end
    local c = ssub(s, i, i)
    if c == '"' then -- skip the string literal
      local k = i + 1
      while true do
        local j = sfind(s, '["\\]', k)
        if not j then return nil end -- unterminated: let cjson report it
        if ssub(s, j, j) == "\\" then k = j + 2 else k = j + 1; break end
      end
      n = n + 1; out[n] = ssub(s, pos, k - 1)
      pos = k
    elseif c == "[" then
      local e = smatch(s, "^%[%s*%]()", i)
      if e then
        n = n + 1; out[n] = ssub(s, pos, i - 1)
        n = n + 1; out[n] = J_ARR
        did = true
        pos = e
      else
        n = n + 1; out[n] = ssub(s, pos, i)
        pos = i + 1
      end
    else -- number
      local digits, e = smatch(s, "^(%-?%d+)()", i)
      if not digits then -- a lone "-": leave it to cjson
        n = n + 1; out[n] = ssub(s, pos, i)
        pos = i + 1
      else
        local nextc = ssub(s, e, e)
        local integer = not (nextc == "." or nextc == "e" or nextc == "E")
        n = n + 1; out[n] = ssub(s, pos, i - 1)
        if integer and #digits >= (ssub(digits, 1, 1) == "-" and 17 or 16) then
          n = n + 1; out[n] = '"\\u0000\\u0001spapi:n:' .. digits .. '"'
          did = true
        else
          n = n + 1; out[n] = digits
        end
        pos = e
      end
    end
  end
  if not did then return nil end
  n = n + 1; out[n] = ssub(s, pos)
  return concat(out)
end

local NUM_PREFIX_LEN = #S_NUM

local function big_number(digits)
  local x = tonumber(digits)
  if tointeger then
    -- Lua 5.4: tonumber gives an integer when the literal fits in 64 bits
    if mtype(x) == "float" then
      local i = tointeger(x)
      if i then return i end
    end
  end
  return x
end

-- Replace sentinels; on Lua 5.4 turn integral floats into integers.
local function fix(v, depth)
  local tv = type(v)
  if tv == "string" then
    if ssub(v, 1, 2) == "\0\1" then
      if v == S_ARR then return setmetatable({}, array_mt) end
      if ssub(v, 1, NUM_PREFIX_LEN) == S_NUM then return big_number(ssub(v, NUM_PREFIX_LEN + 1)) end
    end
    return v
  elseif tv == "number" then
    if tointeger and mtype(v) == "float" and v == floor(v) and v > -9.007199254740992e15
        and v < 9.007199254740992e15 then
      return tointeger(v)
    end
    return v
  elseif tv == "table" and depth < 1100 then
    for k, x in pairs(v) do
      local tx = type(x)
      if tx == "table" or tx == "string" or (tx == "number" and tointeger) then
        local nx = fix(x, depth + 1)
        if tx == "number" or nx ~= x then v[k] = nx end -- 10 == 10.0: assign numbers anyway
      end
    end
  end
  return v
end

function _M.decode(s)
  if type(s) ~= "string" then return nil, "spapi.json.decode: expected a string, got " .. type(s) end
  local src = s
  local subst = false
  local flags
  if json_scan then
    flags = json_scan(s)
    if flags % 4 ~= 0 then -- an empty array or a long integer
      local r = substitute(s)
      if r then src, subst = r, true end
    end
  elseif sfind(s, "%[%s*%]") or sfind(s, "%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d") then
    local r = substitute(s)
    if r then src, subst = r, true end
  end
  local v, err = cjson.decode(src)
  if v == nil then
    if subst then -- report against the text the caller gave us
      local _, err2 = cjson.decode(s)
      return nil, err2 or err
    end
    return nil, err
  end
  if subst or (tointeger and (not flags or flags >= 4)) then v = fix(v, 0) end
  return v
end

return _M
