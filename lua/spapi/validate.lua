-- spapi.validate — the one check of a call's values against the model: the
-- rules of a parameter (op table) and every constraint of a body's schema
-- (lua/spapi/schemas/<api>.lua), at any depth. spapi.request calls it while it
-- builds a request; nothing else checks values.
--
--   validate.body(ctx, defs, schema, value, name) → value to encode
--   validate.param(ctx, rule, label, value)       → the value's wire string
--   validate.rule(param)                           → a parameter's rules as a schema
--   validate.patterns(regex)                       → Lua patterns (any one matches) | nil
--   validate.check(defs, schema, value, name)      → true | nil, message (JSON as decoded)
--
-- ctx.operation ("api.operation") starts every message. A failure raises
-- { [validate.FAIL] = true, msg = "spapi: <operation>: <what>" }, which the
-- caller turns into error(msg, level) or nil, msg. Bodies: Unix seconds where
-- the schema has a date-time become ISO 8601 and an empty table where it has an
-- array becomes json.array(); the tables on the way are copied, the caller's
-- are never changed. Paths name fields as Lua does: body.items[2].quantity is
-- the quantity of the second item.
local json = require "spapi.json"

local type, next, ipairs, tostring, tonumber, error, select, pcall = type, next, ipairs, tostring, tonumber, error,
  select, pcall
local setmetatable, getmetatable = setmetatable, getmetatable
local floor, huge, abs = math.floor, math.huge, math.abs
local concat = table.concat
local sformat, sfind, sgsub, ssub, smatch = string.format, string.find, string.gsub, string.sub, string.match
local osdate = os.date
local null, array_mt = json.null, json.array_mt

local _M = {}

local FAIL = {} -- marks our own errors for the caller's pcall
_M.FAIL = FAIL

local function fail(ctx, fmt, ...)
  error({ [FAIL] = true, msg = "spapi: " .. ctx.operation .. ": " .. sformat(fmt, ...) }, 0)
end
_M.fail = fail

local function quote(v)
  if type(v) == "string" then
    if #v > 60 then v = ssub(v, 1, 57) .. "..." end
    return sformat("%q", v)
  end
  return tostring(v)
end
_M.quote = quote

local function ulen(s) -- characters of a UTF-8 string
  return (select(2, sgsub(s, "[^\128-\191]", "")))
end

local function fmt_number(v)
  if v == floor(v) and abs(v) < 2 ^ 63 then return sformat("%.0f", v) end
  return sformat("%.14g", v)
end
_M.fmt_number = fmt_number

local function fmt_integer(v) return sformat("%.0f", v) end
_M.fmt_integer = fmt_integer

-- Unix seconds that os.date can print (years 1 to 9999)
local function unix_seconds(v)
  return type(v) == "number" and v == v and v >= -62135596800 and v <= 253402300799
end

-- Unix seconds → "2024-01-02T03:04:05Z"
local function iso8601(t)
  local d = osdate("!*t", floor(t))
  return sformat("%04d-%02d-%02dT%02d:%02d:%02dZ", d.year, d.month, d.day, d.hour, d.min, d.sec)
end

local ISO = "^%d%d%d%d%-%d%d%-%d%d[Tt]%d%d:%d%d"
local DATE = "^%d%d%d%d%-%d%d%-%d%d$"

-- Regexes ------------------------------------------------------------------
-- The models' regexes are small: classes, \d \w \s \S, ., quantifiers + * ?
-- {n} {n,m}, anchors, and groups that are plain, optional "(...)?" or hold
-- alternatives "(a|b)". Groups are expanded into alternative regexes, each
-- translated to a Lua pattern; a value matches when one of them finds it.

-- one regex without groups → Lua pattern, or nil
local function translate(re)
  local out, i, n = {}, 1, #re
  local anchored_start, anchored_end = false, false
  local last -- the last atom, for quantifiers
  local function atom(a) out[#out + 1] = a; last = a end
  while i <= n do
    local c = ssub(re, i, i)
    if c == "^" and i == 1 then anchored_start = true; i = i + 1
    elseif c == "$" and i == n then anchored_end = true; i = i + 1
    elseif c == "[" then
      local j = i + 1
      local set = { "[" }
      if ssub(re, j, j) == "^" then set[#set + 1] = "^"; j = j + 1 end
      local closed = false
      while j <= n do
        local d = ssub(re, j, j)
        if d == "]" then closed = true; break end
        if d == "\\" then
          local e = ssub(re, j + 1, j + 1)
          local map = { d = "%d", w = "%w_", s = "%s" }
          if map[e] then set[#set + 1] = map[e]
          elseif sfind(e, "%w") then return nil
          else set[#set + 1] = "%" .. e end
          j = j + 2
        else -- regex and Lua sets agree on ranges; only % needs escaping
          set[#set + 1] = d == "%" and "%%" or d
          j = j + 1
        end
      end
      if not closed then return nil end
      set[#set + 1] = "]"
      atom(concat(set))
      i = j + 1
    elseif c == "\\" then
      local e = ssub(re, i + 1, i + 1)
      local map = { d = "%d", w = "[%w_]", s = "%s", D = "%D", S = "%S" }
      if map[e] then atom(map[e])
      elseif sfind(e, "%w") then return nil
      else atom("%" .. e) end
      i = i + 2
    elseif c == "." then atom("."); i = i + 1
    elseif c == "+" or c == "*" or c == "?" then
      if not last then return nil end
      out[#out] = last .. c
      last = nil
      i = i + 1
    elseif c == "{" then
      local a, b, e = smatch(re, "^{(%d+),?(%d*)}()", i)
      if not a or not last then return nil end
      local lo = tonumber(a)
      local hi = b ~= "" and tonumber(b) or (sfind(re, "^{%d+}", i) and lo or nil)
      if not hi or hi < lo or hi > 64 then return nil end
      local unit = last
      out[#out] = nil
      for _ = 1, lo do out[#out + 1] = unit end
      for _ = lo + 1, hi do out[#out + 1] = unit .. "?" end
      last = nil
      i = e
    elseif sfind(c, "[%(%)|]") then return nil
    else
      atom(sfind(c, "%p") and ("%" .. c) or c)
      i = i + 1
    end
  end
  return (anchored_start and "^" or "") .. concat(out) .. (anchored_end and "$" or "")
end

-- the end of the group opening at i (skipping classes and escapes), or nil
local function group_end(re, i)
  local depth, j, n = 0, i, #re
  while j <= n do
    local c = ssub(re, j, j)
    if c == "\\" then j = j + 1
    elseif c == "[" then
      j = sfind(re, "]", j + 1, true)
      if not j then return nil end
    elseif c == "(" then depth = depth + 1
    elseif c == ")" then
      depth = depth - 1
      if depth == 0 then return j end
    end
    j = j + 1
  end
end

-- split at the "|" outside classes and groups
local function alternatives(re)
  local parts, start, j, n, depth = {}, 1, 1, #re, 0
  while j <= n do
    local c = ssub(re, j, j)
    if c == "\\" then j = j + 1
    elseif c == "[" then j = sfind(re, "]", j + 1, true) or n
    elseif c == "(" then depth = depth + 1
    elseif c == ")" then depth = depth - 1
    elseif c == "|" and depth == 0 then parts[#parts + 1] = ssub(re, start, j - 1); start = j + 1 end
    j = j + 1
  end
  parts[#parts + 1] = ssub(re, start)
  return parts
end

-- regex → list of regexes without groups (nil: a group we cannot expand)
local function expand(re, out)
  if #out > 32 then return nil end
  local alts = alternatives(re)
  if #alts > 1 then
    for _, a in ipairs(alts) do if not expand(a, out) then return nil end end
    return out
  end
  -- the first group outside a class
  local j, n = 1, #re
  while j <= n do
    local c = ssub(re, j, j)
    if c == "\\" then j = j + 2
    elseif c == "[" then j = (sfind(re, "]", j + 1, true) or n) + 1
    elseif c == "(" then break
    else j = j + 1 end
  end
  if j > n then out[#out + 1] = re; return out end
  local e = group_end(re, j)
  if not e then return nil end
  local inner = ssub(re, j + 1, e - 1)
  if ssub(inner, 1, 2) == "?:" then inner = ssub(inner, 3) end
  local q = ssub(re, e + 1, e + 1)
  local before, after = ssub(re, 1, j - 1), ssub(re, e + (q == "?" and 2 or 1))
  if q == "+" or q == "*" or q == "{" then return nil end
  for _, a in ipairs(alternatives(inner)) do
    if not expand(before .. a .. after, out) then return nil end
  end
  if q == "?" and not expand(before .. after, out) then return nil end
  return out
end

local pattern_cache = {}
--- patterns(regex) → list of Lua patterns, one of which finds every string the
--- regex matches; nil when the regex uses what this cannot translate (such a
--- pattern is left to the server).
function _M.patterns(re)
  local cached = pattern_cache[re]
  if cached ~= nil then return cached or nil end
  local list = expand(re, {})
  if list then
    for i, r in ipairs(list) do
      list[i] = translate(r)
      if not list[i] then list = nil; break end
    end
  end
  pattern_cache[re] = list or false
  return list
end

-- A field of a body is named by the path the walk keeps as a stack of keys;
-- its text is made only for a message. A parameter is named by its label.
local function where(stack, depth)
  if depth == 0 then return stack.as_is and stack.name or ("parameter '" .. stack.name .. "'") end
  local parts = { stack.name }
  for i = 1, depth do
    local k = stack[i]
    if type(k) == "number" then parts[#parts + 1] = "[" .. fmt_integer(k) .. "]"
    elseif type(k) == "string" and sfind(k, "^[%a_][%w_]*$") then parts[#parts + 1] = "." .. k
    else parts[#parts + 1] = "[" .. quote(k) .. "]" end
  end
  return concat(parts)
end

local function name(label, stack, depth)
  return label or where(stack, depth)
end

-- Rules -------------------------------------------------------------------
-- What a check needs of a schema node beyond the model's words (an enum as a
-- set, patterns translated), computed once per node.
local extras = setmetatable({}, { __mode = "k" })
local function extra(s)
  local x = extras[s]
  if x then return x end
  x = {}
  if s.enum then
    x.enum = {}
    for _, e in ipairs(s.enum) do x.enum[e] = true end
  end
  if s.pattern then x.patterns = _M.patterns(s.pattern) end
  extras[s] = x
  return x
end

local function check_string(ctx, s, v, label, stack, depth)
  local x = extras[s] or extra(s)
  if x.enum and not x.enum[v] then
    fail(ctx, "%s must be one of %s (got %s)", name(label, stack, depth), concat(s.enum, ", "), quote(v))
  end
  local max, min = s.maxLength, s.minLength
  if max and #v > max and ulen(v) > max then -- bytes >= characters
    fail(ctx, "%s must be at most %d characters (got %d)", name(label, stack, depth), max, ulen(v))
  end
  if min and ulen(v) < min then
    fail(ctx, "%s must be at least %d characters (got %d)", name(label, stack, depth), min, ulen(v))
  end
  local pats = x.patterns
  if pats then
    for i = 1, #pats do if sfind(v, pats[i]) then return end end
    fail(ctx, "%s must match the pattern %s (got %s)", name(label, stack, depth), s.pattern, quote(v))
  end
end

local function check_range(ctx, s, v, label, stack, depth)
  local min, max = s.minimum, s.maximum
  if min and (v < min or (s.exclusiveMinimum and v == min)) then
    fail(ctx, "%s must be %s %s (got %s)", name(label, stack, depth), s.exclusiveMinimum and ">" or ">=",
      fmt_number(min), fmt_number(v))
  end
  if max and (v > max or (s.exclusiveMaximum and v == max)) then
    fail(ctx, "%s must be %s %s (got %s)", name(label, stack, depth), s.exclusiveMaximum and "<" or "<=",
      fmt_number(max), fmt_number(v))
  end
  if s.enum then
    local x = extras[s] or extra(s)
    if not x.enum[v] then
      fail(ctx, "%s must be one of %s (got %s)", name(label, stack, depth), concat(s.enum, ", "), fmt_number(v))
    end
  end
end

local INT32 = 2 ^ 31

-- a number that must be an integer
local function check_integer(ctx, s, v, label, stack, depth)
  if v ~= v or v == huge or v == -huge or floor(v) ~= v then
    fail(ctx, "%s must be an integer (got %s)", name(label, stack, depth), tostring(v))
  end
  if s.format == "int32" and (v < -INT32 or v >= INT32) then
    fail(ctx, "%s must be a 32-bit integer (got %s)", name(label, stack, depth), fmt_number(v))
  end
  check_range(ctx, s, v, label, stack, depth)
end

-- Parameters ----------------------------------------------------------------
local rules = setmetatable({}, { __mode = "k" })
--- rule(param) → the parameter's rules under the schema words (cached)
function _M.rule(p)
  local r = rules[p]
  if r then return r end
  r = { type = p.type, format = p.format, enum = p.enum, pattern = p.pattern, minimum = p.minimum,
        maximum = p.maximum, minLength = p.min_length, maxLength = p.max_length,
        minItems = p.min_items, maxItems = p.max_items }
  if p.type == "array" then r.items = _M.rule(p.items or { type = "string" }) end
  rules[p] = r
  return r
end

--- param(ctx, rule, label, v) → v's text for the URL or a header (after checks).
--- A parameter is text on the wire: numbers pass for strings, "true"/"false"
--- for booleans, Unix seconds for date-times.
function _M.param(ctx, s, label, v)
  local t, tv = s.type, type(v)
  if t == "integer" then
    if tv ~= "number" then fail(ctx, "%s must be an integer (got %s)", label, tv) end
    check_integer(ctx, s, v, label)
    return fmt_integer(v)
  elseif t == "number" then
    if tv ~= "number" or v ~= v or v == huge or v == -huge then
      fail(ctx, "%s must be a number (got %s)", label, tv == "number" and tostring(v) or tv)
    end
    check_range(ctx, s, v, label)
    return fmt_number(v)
  elseif t == "boolean" or s.format == "boolean" then
    if tv == "boolean" then return v and "true" or "false" end
    if v == "true" or v == "false" then return v end
    fail(ctx, "%s must be a boolean (got %s)", label, tv == "string" and quote(v) or tv)
  elseif s.format == "date-time" then
    if tv == "number" then
      if not unix_seconds(v) then fail(ctx, "%s must be a date-time (got %s)", label, tostring(v)) end
      v = iso8601(v)
    elseif tv ~= "string" then
      fail(ctx, "%s must be a date-time string or Unix seconds (got %s)", label, tv)
    elseif not sfind(v, ISO) then
      fail(ctx, "%s must be an ISO 8601 date-time such as 2024-01-02T03:04:05Z, or Unix seconds (got %s)",
        label, quote(v))
    end
    check_string(ctx, s, v, label)
    return v
  end
  if tv == "number" and v == v and v ~= huge and v ~= -huge then v = fmt_number(v)
  elseif tv ~= "string" then fail(ctx, "%s must be a string (got %s)", label, tv) end
  check_string(ctx, s, v, label)
  return v
end

-- Bodies ------------------------------------------------------------------
-- The walk keeps the path of the field it is in as a stack of keys; the text
-- of the path is made only for a message.

local function copy_of(t)
  local c = {}
  for k, x in next, t do c[k] = x end
  return setmetatable(c, getmetatable(t)) -- json.array marks stay
end

local function kind(v) -- for messages
  if v == null then return "null" end
  local tv = type(v)
  if tv == "table" then
    if getmetatable(v) == array_mt or v[1] ~= nil then return "list" end
    return next(v) == nil and "empty table" or "table"
  end
  return tv
end

-- a list: keys 1..n and nothing else
local function is_list(v)
  local n = #v
  local c = 0
  for k in next, v do
    if type(k) ~= "number" or k < 1 or k > n or floor(k) ~= k then return false, k end
    c = c + 1
  end
  return c == n, nil
end

local MAX_DEPTH = 64

-- v against schema s → v (or a copy with dates and empty arrays made JSON-ready), changed
local function walk(ctx, defs, s, v, stack, depth)
  local ref = s.ref
  while ref do
    s = defs[ref]
    if not s then error("spapi: internal: " .. ctx.operation .. ": no schema " .. tostring(ref), 0) end
    ref = s.ref
  end
  local changed = false
  local all = s.allOf
  if all then
    for i = 1, #all do
      local nv, c = walk(ctx, defs, all[i], v, stack, depth)
      if c then v, changed = nv, true end
    end
  end
  local t, tv = s.type, type(v)
  if t == nil and (s.properties or s.required) then t = "object" end
  if t == "string" then
    if tv ~= "string" then
      if s.format == "date-time" and unix_seconds(v) and not stack.as_is then
        return iso8601(v), true
      end
      if s.format == "date-time" then
        fail(ctx, "%s must be a date-time string or Unix seconds (got %s)", where(stack, depth), kind(v))
      end
      fail(ctx, "%s must be a string (got %s)", where(stack, depth), kind(v))
    end
    local f = s.format
    if f == "date-time" and not sfind(v, ISO) then
      fail(ctx, "%s must be an ISO 8601 date-time such as 2024-01-02T03:04:05Z, or Unix seconds (got %s)",
        where(stack, depth), quote(v))
    elseif f == "date" and not sfind(v, DATE) then
      fail(ctx, "%s must be a date such as 2024-01-02 (got %s)", where(stack, depth), quote(v))
    end
    if s.enum or s.maxLength or s.minLength or s.pattern then check_string(ctx, s, v, nil, stack, depth) end
    return v, changed
  elseif t == "object" then
    if tv ~= "table" or getmetatable(v) == array_mt or v[1] ~= nil then
      fail(ctx, "%s must be an object (a table with named fields; got %s)", where(stack, depth), kind(v))
    end
    if depth >= MAX_DEPTH then fail(ctx, "%s nests deeper than %d levels", where(stack, depth), MAX_DEPTH) end
    local req = s.required
    if req then
      for i = 1, #req do
        local x = v[req[i]]
        if x == nil or x == null then
          fail(ctx, "%s is missing required property '%s'", where(stack, depth), req[i])
        end
      end
    end
    local props, more = s.properties, s.additionalProperties
    if props or more ~= nil then
      local out
      for k, x in next, v do
        local sub = props and props[k]
        if sub == nil then
          if more == false then
            stack[depth + 1] = k
            fail(ctx, "%s is not a property the model allows here", where(stack, depth + 1))
          elseif type(more) == "table" then sub = more end
        end
        if sub ~= nil and x ~= null then
          stack[depth + 1] = k
          local nx, c = walk(ctx, defs, sub, x, stack, depth + 1)
          if c then
            out = out or copy_of(v)
            out[k] = nx
          end
        end
      end
      if out then return out, true end
    end
    return v, changed
  elseif t == "array" then
    if tv ~= "table" then fail(ctx, "%s must be a list (got %s)", where(stack, depth), kind(v)) end
    local ok, bad = is_list(v)
    if not ok then
      fail(ctx, "%s must be a list (array table), got a table with key %s", where(stack, depth), quote(bad))
    end
    if depth >= MAX_DEPTH then fail(ctx, "%s nests deeper than %d levels", where(stack, depth), MAX_DEPTH) end
    local n = #v
    if s.maxItems and n > s.maxItems then
      fail(ctx, "%s must have at most %d items (got %d)", where(stack, depth), s.maxItems, n)
    end
    if s.minItems and n < s.minItems then
      fail(ctx, "%s must have at least %d items (got %d)", where(stack, depth), s.minItems, n)
    end
    if n == 0 then
      -- sent as [], not {} (checking decoded JSON, an empty table passes: not
      -- every decoder tells [] from {})
      if getmetatable(v) == nil and not stack.as_is then return setmetatable({}, array_mt), true end
      return v, changed
    end
    local items, out = s.items, nil
    if items then
      for i = 1, n do
        local x = v[i]
        stack[depth + 1] = i
        if x == null then
          if not items["x-nullable"] then fail(ctx, "%s must not be null", where(stack, depth + 1)) end
        else
          local nx, c = walk(ctx, defs, items, x, stack, depth + 1)
          if c then
            out = out or copy_of(v)
            out[i] = nx
          end
        end
      end
    end
    if out then return out, true end
    return v, changed
  elseif t == "integer" then
    if tv ~= "number" then fail(ctx, "%s must be an integer (got %s)", where(stack, depth), kind(v)) end
    check_integer(ctx, s, v, nil, stack, depth)
  elseif t == "number" then
    if tv ~= "number" or v ~= v or v == huge or v == -huge then
      fail(ctx, "%s must be a number (got %s)", where(stack, depth), tv == "number" and tostring(v) or kind(v))
    end
    if s.minimum or s.maximum or s.enum then check_range(ctx, s, v, nil, stack, depth) end
  elseif t == "boolean" then
    if tv ~= "boolean" then fail(ctx, "%s must be a boolean (got %s)", where(stack, depth), kind(v)) end
  elseif s.enum then -- untyped with an enum
    local x = extras[s] or extra(s)
    if not x.enum[v] then
      fail(ctx, "%s must be one of %s (got %s)", where(stack, depth), concat(s.enum, ", "), quote(v))
    end
  end
  return v, changed
end

--- body(ctx, defs, schema, v, name) → v, or a copy of what changed for JSON
--- (dates, empty arrays); raises on the first value the schema refuses.
--- name: how the caller gave the body ("body" or the parameter's name).
function _M.body(ctx, defs, schema, v, name)
  return (walk(ctx, defs, schema, v, { name = name }, 0))
end

--- check(defs, schema, v, what) → true | nil, message: whether a decoded JSON
--- value (a response body, say) follows the schema as it is (no Unix seconds
--- for date-times); the message ("spapi: <what>: body.payload.x must be ...")
--- names the first field that does not.
function _M.check(defs, schema, v, what)
  local ok, err = pcall(walk, { operation = what }, defs, schema, v, { name = "body", as_is = true }, 0)
  if ok then return true end
  if type(err) == "table" and err[FAIL] then return nil, err.msg end
  error(err, 0)
end

return _M
