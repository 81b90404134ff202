-- The decode path spapi.json used before the C decoder (commit a88911b), kept
-- as a reference for spec/json/decode_spec.lua's differential tests: a private
-- lua-cjson instance plus the Lua fix-ups (empty arrays and 16+ digit integer
-- literals swapped for sentinel strings before cjson, sentinels replaced and,
-- on Lua 5.4, integral floats made integers after). core.json_scan, the C
-- pre-scan that decided which fix-ups to run, is ported to Lua below (same
-- flags), so this needs neither spapi.core nor the spapi.json module.
local cjson = require("cjson.safe").new()

local type, pairs, tonumber = type, pairs, tonumber
local setmetatable = setmetatable
local floor = math.floor
local mtype, tointeger = math.type, math.tointeger -- nil on LuaJIT
local concat = table.concat
local sfind, ssub, smatch, sbyte = string.find, string.sub, string.match, string.byte

cjson.encode_number_precision(14)
cjson.encode_sparse_array(false)
cjson.encode_max_depth(1000)
cjson.decode_max_depth(1000)
cjson.encode_invalid_numbers(false)
cjson.decode_invalid_numbers(false)

local _M = {}

-- src/json.c json_scan (removed), in Lua: 1 an empty array, 2 a 16+ digit
-- integer literal, 4 any number (outside strings).
local function json_scan(s)
  local n, i = #s, 1
  local empty_array, long_int, number = false, false, false
  while i <= n do
    local c = sbyte(s, i)
    if c == 34 then -- '"': skip the string, honouring escapes
      i = i + 1
      while i <= n and sbyte(s, i) ~= 34 do
        if sbyte(s, i) == 92 then i = i + 1 end
        i = i + 1
      end
      i = i + 1
    elseif c == 91 then -- '['
      local j = i + 1
      local d = sbyte(s, j)
      while d == 32 or d == 9 or d == 10 or d == 13 do j = j + 1; d = sbyte(s, j) end
      if d == 93 then empty_array = true end
      i = i + 1
    elseif c == 45 or (c >= 48 and c <= 57) then -- '-' or a digit
      local start, digits = i, 0
      if c == 45 then i = i + 1 end
      local d = sbyte(s, i)
      while d and d >= 48 and d <= 57 do i = i + 1; digits = digits + 1; d = sbyte(s, i) end
      number = true
      if digits >= 16 and not (d == 46 or d == 101 or d == 69) then long_int = true end
      if i == start then i = i + 1 end
    else
      i = i + 1
    end
  end
  return (empty_array and 1 or 0) + (long_int and 2 or 0) + (number and 4 or 0)
end

_M.null = cjson.null

local S_ARR = "\0\1spapi:[]"
local S_NUM = "\0\1spapi:n:"
local J_ARR = '"\\u0000\\u0001spapi:[]"'

local function substitute(s)
  local out, n = {}, 0
  local pos, len = 1, #s
  local did = false
  while pos <= len do
    local i = sfind(s, '[%["%-%d]', pos)
    if not i then break end
    local c = ssub(s, i, i)
    if c == '"' then
      local k = i + 1
      while true do
        local j = sfind(s, '["\\]', k)
        if not j then return nil end
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
    else
      local digits, e = smatch(s, "^(%-?%d+)()", i)
      if not digits then
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
    if mtype(x) == "float" then
      local i = tointeger(x)
      if i then return i end
    end
  end
  return x
end

local function fix(v, depth, array_mt)
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
        local nx = fix(x, depth + 1, array_mt)
        if tx == "number" or nx ~= x then v[k] = nx end
      end
    end
  end
  return v
end

-- The old spapi.json.decode; array_mt is the metatable empty arrays get.
function _M.decode(s, array_mt)
  if type(s) ~= "string" then return nil, "spapi.json.decode: expected a string, got " .. type(s) end
  local src = s
  local subst = false
  local flags = json_scan(s)
  if flags % 4 ~= 0 then
    local r = substitute(s)
    if r then src, subst = r, true end
  end
  local v, err = cjson.decode(src)
  if v == nil then
    if subst then
      local _, err2 = cjson.decode(s)
      return nil, err2 or err
    end
    return nil, err
  end
  if subst or (tointeger and flags >= 4) then v = fix(v, 0, array_mt) end
  return v
end

return _M
