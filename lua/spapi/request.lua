-- spapi.request — operation + params → the HTTP request to send (pure, no I/O).
--
--   local req = request.build(api, op_name, params [, opts])
--
-- api: a generated operation table (require "spapi.operations.feeds") or its key
-- ("feeds"). params: a table keyed by the model's parameter names; an operation
-- with exactly one body parameter also takes it under `body`. Returns
--
--   { method = "GET", path = "/feeds/2021-06-30/feeds/F%2F1" (path params
--     substituted, RFC 3986-encoded), query = "a=1&b=x%2Cy" (no "?", params in
--     model order, "" when none), headers = { Accept = "application/json",
--     ["Content-Type"] = consumes when a body is sent, header params... },
--     body = JSON string | nil, operation = "feeds.getFeed",
--     template = "/feeds/.../{feedId}" }
--
-- Programmer errors raise before any I/O. opts.level says where the error
-- points, as for error() counted from the caller of build: 1 (default) = the
-- caller of build, 2 = its caller (a wrapper such as the client passes 2 or
-- more so the message points at the user's line). Raised for: a missing
-- required parameter, an unknown one (with a suggestion), a wrong type, a
-- value outside the enum / min / max / length / item-count / pattern, a body
-- missing a required top-level property or not encodable as JSON.
local json = require "spapi.json"

local type, pairs, ipairs, next, tostring, tonumber, select = type, pairs, ipairs, next, tostring, tonumber, select
local error, pcall, require, setmetatable, getmetatable = error, pcall, require, setmetatable, getmetatable
local floor, huge, abs = math.floor, math.huge, math.abs
local concat, sort = table.concat, table.sort
local sformat, sgsub, sfind, smatch, slower, ssub, sbyte = string.format, string.gsub, string.find,
  string.match, string.lower, string.sub, string.byte
local osdate = os.date

local _M = { _VERSION = "0.1" }

-- RFC 3986 percent-encoding from the C core; a pure-Lua equivalent only if the
-- core cannot be loaded (e.g. a spec run before `make`).
local urlencode
do
  local ok, core = pcall(require, "spapi.core")
  if ok and type(core) == "table" and core.urlencode then
    urlencode = core.urlencode
  else
    urlencode = function(s)
      return (sgsub(s, "[^%w%-%._~]", function(c) return sformat("%%%02X", sbyte(c)) end))
    end
  end
end
_M.urlencode = urlencode

local FAIL = {} -- marker for our own errors inside pcall

local function fail(ctx, fmt, ...)
  error({ [FAIL] = true, msg = "spapi: " .. ctx.operation .. ": " .. sformat(fmt, ...) }, 0)
end

local function quote(v)
  if type(v) == "string" then
    if #v > 60 then v = ssub(v, 1, 57) .. "..." end
    return sformat("%q", v)
  end
  return tostring(v)
end

local function ulen(s) -- characters of a UTF-8 string
  return (select(2, sgsub(s, "[^\128-\191]", "")))
end

local function fmt_integer(v)
  return sformat("%.0f", v)
end

local function fmt_number(v)
  if v == floor(v) and abs(v) < 2 ^ 63 then return sformat("%.0f", v) end
  return sformat("%.14g", v)
end

-- A JSON-Schema regex → Lua pattern, for the simple regexes the models use
-- (character classes, \d \w \s ., quantifiers + * ? {n} {n,m}, ^ $). nil when
-- the regex uses anything else; such patterns are left to the server.
local pattern_cache = setmetatable({}, { __mode = "k" })
local function regex_to_lua(re)
  local cached = pattern_cache[re]
  if cached ~= nil then return cached or nil end
  local out, i, n = {}, 1, #re
  local ok = true
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
          elseif sfind(e, "%w") then ok = false; break
          else set[#set + 1] = "%" .. e end
          j = j + 2
        else -- regex and Lua sets agree on ranges; only % needs escaping
          set[#set + 1] = d == "%" and "%%" or d
          j = j + 1
        end
      end
      if not closed then ok = false; break end
      set[#set + 1] = "]"
      atom(concat(set))
      i = j + 1
    elseif c == "\\" then
      local e = ssub(re, i + 1, i + 1)
      local map = { d = "%d", w = "[%w_]", s = "%s", D = "%D", S = "%S" }
      if map[e] then atom(map[e])
      elseif sfind(e, "%w") then ok = false; break
      else atom("%" .. e) end
      i = i + 2
    elseif c == "." then atom("."); i = i + 1
    elseif c == "+" or c == "*" or c == "?" then
      if not last then ok = false; break end
      out[#out] = last .. (c == "*" and "*" or c == "+" and "+" or "?")
      last = nil
      i = i + 1
    elseif c == "{" then
      local a, b, e = smatch(re, "^{(%d+),?(%d*)}()", i)
      if not a or not last then ok = false; break end
      local lo = tonumber(a)
      local hi = b ~= "" and tonumber(b) or (sfind(re, "^{%d+}", i) and lo or nil)
      if not hi or hi < lo or hi > 64 then ok = false; break end
      local unit = last
      out[#out] = nil
      for _ = 1, lo do out[#out + 1] = unit end
      for _ = lo + 1, hi do out[#out + 1] = unit .. "?" end
      last = nil
      i = e
    elseif sfind(c, "[%(%)|]") then ok = false; break
    else
      atom(sfind(c, "%p") and ("%" .. c) or c)
      i = i + 1
    end
  end
  local pat = ok and ((anchored_start and "^" or "") .. concat(out) .. (anchored_end and "$" or "")) or false
  pattern_cache[re] = pat
  return pat or nil
end
_M._regex_to_lua = regex_to_lua

-- Unix seconds → "2024-01-02T03:04:05Z"
local function iso8601(t)
  local d = osdate("!*t", floor(t))
  return sformat("%04d-%02d-%02dT%02d:%02d:%02dZ", d.year, d.month, d.day, d.hour, d.min, d.sec)
end

-- Unix seconds that os.date can print (years 1 to 9999)
local function unix_seconds(v)
  return type(v) == "number" and v == v and v >= -62135596800 and v <= 253402300799
end

local function copy_of(t)
  local c = {}
  for k, x in pairs(t) do c[k] = x end
  return setmetatable(c, getmetatable(t)) -- json.array marks stay
end

-- v with Unix seconds at path (segments from i on; "[]": every item) made ISO
-- 8601; tables on the way are copied, never changed. → value, changed
local function date_at(v, path, i)
  if i > #path then
    if unix_seconds(v) then return iso8601(v), true end
    return v, false
  end
  if type(v) ~= "table" then return v, false end
  local seg, out = path[i], nil
  if seg == "[]" then
    for k, x in ipairs(v) do
      local nx, changed = date_at(x, path, i + 1)
      if changed then
        out = out or copy_of(v)
        out[k] = nx
      end
    end
  else
    local nx, changed = date_at(v[seg], path, i + 1)
    if changed then
      out = copy_of(v)
      out[seg] = nx
    end
  end
  if out then return out, true end
  return v, false
end

local split_cache = {}
local function split_path(path)
  local segs = split_cache[path]
  if not segs then
    segs = {}
    for seg in path:gmatch("[^.]+") do segs[#segs + 1] = seg end
    split_cache[path] = segs
  end
  return segs
end

--- body_dates(body, paths) → body with Unix seconds at the operation's date-time
--- paths (a body parameter's body_dates) turned into ISO 8601; the caller's
--- tables are not changed (what changes is copied).
function _M.body_dates(v, paths)
  for _, path in ipairs(paths) do v = date_at(v, split_path(path), 1) end
  return v
end

local function check_string_rules(ctx, p, label, s)
  if p.enum then
    local found = false
    for _, e in ipairs(p.enum) do if e == s then found = true; break end end
    if not found then
      fail(ctx, "%s must be one of %s (got %s)", label, concat(p.enum, ", "), quote(s))
    end
  end
  if p.max_length and ulen(s) > p.max_length then
    fail(ctx, "%s must be at most %d characters (got %d)", label, p.max_length, ulen(s))
  end
  if p.min_length and ulen(s) < p.min_length then
    fail(ctx, "%s must be at least %d characters (got %d)", label, p.min_length, ulen(s))
  end
  if p.pattern then
    local lp = regex_to_lua(p.pattern)
    if lp and not sfind(s, lp) then
      fail(ctx, "%s must match the pattern %s (got %s)", label, p.pattern, quote(s))
    end
  end
end

local function check_range(ctx, p, label, v)
  if p.minimum and v < p.minimum then fail(ctx, "%s must be >= %s (got %s)", label, fmt_number(p.minimum), fmt_number(v)) end
  if p.maximum and v > p.maximum then fail(ctx, "%s must be <= %s (got %s)", label, fmt_number(p.maximum), fmt_number(v)) end
end

-- One scalar value → its string form for the wire (after validation).
local function scalar(ctx, p, label, v)
  local t, tv = p.type, type(v)
  if t == "integer" then
    if tv ~= "number" then fail(ctx, "%s must be an integer (got %s)", label, tv) end
    if v ~= v or v == huge or v == -huge or floor(v) ~= v then
      fail(ctx, "%s must be an integer (got %s)", label, tostring(v))
    end
    check_range(ctx, p, label, v)
    return fmt_integer(v)
  elseif t == "number" then
    if tv ~= "number" or v ~= v or v == huge or v == -huge then
      fail(ctx, "%s must be a number (got %s)", label, tv == "number" and tostring(v) or tv)
    end
    check_range(ctx, p, label, v)
    return fmt_number(v)
  elseif t == "boolean" or p.format == "boolean" then
    if tv == "boolean" then return v and "true" or "false" end
    if v == "true" or v == "false" then return v end
    fail(ctx, "%s must be a boolean (got %s)", label, tv == "string" and quote(v) or tv)
  elseif p.format == "date-time" then
    local s
    if tv == "number" then
      if not unix_seconds(v) then
        fail(ctx, "%s must be a date-time (got %s)", label, tostring(v))
      end
      s = iso8601(v)
    elseif tv == "string" then
      if not sfind(v, "^%d%d%d%d%-%d%d%-%d%d[Tt]%d%d:%d%d") then
        fail(ctx, "%s must be an ISO 8601 date-time such as 2024-01-02T03:04:05Z, or Unix seconds (got %s)",
          label, quote(v))
      end
      s = v
    else
      fail(ctx, "%s must be a date-time string or Unix seconds (got %s)", label, tv)
    end
    check_string_rules(ctx, p, label, s)
    return s
  else -- string (or untyped)
    local s
    if tv == "string" then s = v
    elseif tv == "number" and v == v and v ~= huge and v ~= -huge then s = fmt_number(v)
    else fail(ctx, "%s must be a string (got %s)", label, tv) end
    check_string_rules(ctx, p, label, s)
    return s
  end
end

local SEPARATORS = { csv = ",", ssv = " ", tsv = "\t", pipes = "|" }

-- An array parameter → list of wire strings (not yet encoded).
local function array_values(ctx, p, label, v)
  local list
  local tv = type(v)
  if tv == "table" then
    local n = #v
    for k in pairs(v) do
      if type(k) ~= "number" or k < 1 or k > n or floor(k) ~= k then
        fail(ctx, "%s must be a list (array table), got a table with key %s", label, quote(k))
      end
    end
    list = v
  elseif tv == "string" or tv == "number" or tv == "boolean" then
    list = { v }
  else
    fail(ctx, "%s must be a list or a single value (got %s)", label, tv)
  end
  if p.max_items and #list > p.max_items then
    fail(ctx, "%s must have at most %d items (got %d)", label, p.max_items, #list)
  end
  if p.min_items and #list < p.min_items and #list > 0 then
    fail(ctx, "%s must have at least %d items (got %d)", label, p.min_items, #list)
  end
  local items = p.items or { type = "string" }
  local out = {}
  for i, x in ipairs(list) do
    out[i] = scalar(ctx, items, sformat("%s item %d", label, i), x)
  end
  return out
end

-- Levenshtein distance, for "did you mean".
local function distance(a, b)
  local la, lb = #a, #b
  if abs(la - lb) > 3 then return 99 end
  local prev = {}
  for j = 0, lb do prev[j] = j end
  for i = 1, la do
    local cur = { [0] = i }
    local ca = sbyte(a, i)
    for j = 1, lb do
      local cost = (ca == sbyte(b, j)) and 0 or 1
      local d = prev[j] + 1
      if cur[j - 1] + 1 < d then d = cur[j - 1] + 1 end
      if prev[j - 1] + cost < d then d = prev[j - 1] + cost end
      cur[j] = d
    end
    prev = cur
  end
  return prev[lb]
end

local function suggest(name, candidates)
  if type(name) ~= "string" then return nil end
  local lname = slower(name)
  local best, bestd
  for _, c in ipairs(candidates) do
    if slower(c) == lname then return c end
    local d = distance(lname, slower(c))
    if not bestd or d < bestd or (d == bestd and c < best) then best, bestd = c, d end
  end
  if best and bestd <= (#name >= 6 and 2 or 1) then return best end
  return nil
end

local function resolve_api(api)
  if type(api) == "string" then
    local ok, t = pcall(require, "spapi.operations." .. api)
    if not ok or type(t) ~= "table" then return nil end
    return t
  end
  return api
end

-- What build() needs about an operation that does not change between calls
-- (computed once per operation: the hot path then only walks the params).
local op_meta = setmetatable({}, { __mode = "k" })
local function meta_of(api, op_name, op)
  local m = op_meta[op]
  if m then return m end
  m = { operation = tostring(api.api) .. "." .. tostring(op_name), known = {}, names = {},
        labels = {}, keys = {}, nbody = 0 }
  for _, p in ipairs(op.params) do
    m.known[p.name] = p
    m.names[#m.names + 1] = p.name
    m.labels[p.name] = "parameter '" .. p.name .. "'"
    m.keys[p.name] = urlencode(p.name)
    if p["in"] == "body" then m.body_param = p; m.nbody = m.nbody + 1 end
  end
  m.body_alias = m.nbody == 1 and m.body_param.name ~= "body"
  op_meta[op] = m
  return m
end

local function build(api, op_name, params)
  local op = api.operations[op_name]
  if not op then
    local ctx = { operation = tostring(api.api) .. "." .. tostring(op_name) }
    local names = {}
    for k in pairs(api.operations) do names[#names + 1] = k end
    sort(names)
    local s = suggest(op_name, names)
    fail(ctx, "unknown operation%s", s and (" (did you mean '" .. s .. "'?)") or "")
  end
  local ctx = meta_of(api, op_name, op) -- carries .operation for fail()
  if params == nil then params = {} end
  if type(params) ~= "table" then fail(ctx, "params must be a table (got %s)", type(params)) end

  -- which keys are allowed
  local known, names, body_alias, labels = ctx.known, ctx.names, ctx.body_alias, ctx.labels
  for k in pairs(params) do
    if not known[k] and not (body_alias and k == "body") then
      local cands = names
      if body_alias then cands = { "body" }; for i, n in ipairs(names) do cands[i + 1] = n end end
      local s = suggest(k, cands)
      fail(ctx, "unknown parameter %s%s", type(k) == "string" and ("'" .. k .. "'") or quote(k),
        s and (" (did you mean '" .. s .. "'?)") or "")
    end
  end

  local path = op.path
  local query, nq = {}, 0
  local headers = { Accept = "application/json" }
  local body

  for _, p in ipairs(op.params) do
    local name, where = p.name, p["in"]
    local v = params[name]
    if where == "body" and body_alias and params.body ~= nil then
      if v ~= nil then fail(ctx, "give the body as '%s' or as 'body', not both", name) end
      v = params.body
    end
    if v == json.null then v = nil end
    local label = labels[name]
    local empty_list = p.type == "array" and type(v) == "table" and next(v) == nil
    if v == nil or empty_list then
      if p.required then
        fail(ctx, "missing required parameter '%s'%s", name, empty_list and " (got an empty list)" or "")
      end
    elseif where == "path" then
      local s = scalar(ctx, p, label, v)
      if s == "" then fail(ctx, "%s must not be empty", label) end
      local enc = urlencode(s)
      -- "." and ".." are unreserved but would be removed as dot-segments by
      -- URL normalisation (curl does that): send them encoded.
      if sfind(enc, "^%.+$") and #enc <= 2 then enc = sgsub(enc, "%.", "%%2E") end
      enc = sgsub(enc, "%%", "%%%%")
      path = sgsub(path, "{" .. sgsub(name, "%p", "%%%0") .. "}", enc)
    elseif where == "query" then
      local key = ctx.keys[name]
      if p.type == "array" then
        local list = array_values(ctx, p, label, v)
        local cf = p.collection_format or "csv"
        if cf == "multi" then
          for _, s in ipairs(list) do nq = nq + 1; query[nq] = key .. "=" .. urlencode(s) end
        else
          local sep = SEPARATORS[cf]
          if not sep then fail(ctx, "%s uses collection format %s, which spapi does not support", label, cf) end
          local enc = {}
          for i, s in ipairs(list) do enc[i] = urlencode(s) end
          nq = nq + 1
          query[nq] = key .. "=" .. concat(enc, sep == "," and "," or urlencode(sep))
        end
      else
        nq = nq + 1
        query[nq] = key .. "=" .. urlencode(scalar(ctx, p, label, v))
      end
    elseif where == "header" then
      local s = scalar(ctx, p, label, v)
      if sfind(s, "[\r\n]") then fail(ctx, "%s must not contain a line break", label) end
      headers[name] = s
    elseif where == "body" then
      local tv = type(v)
      if tv == "string" then
        body = v
      elseif tv == "table" then
        if p.body_required and p.type == "object" then
          for _, req in ipairs(p.body_required) do
            if v[req] == nil or v[req] == json.null then
              fail(ctx, "%s is missing required property '%s'", label, req)
            end
          end
        end
        if p.body_dates then v = _M.body_dates(v, p.body_dates) end
        local s, err = json.encode(v)
        if not s then fail(ctx, "%s cannot be encoded as JSON: %s", label, tostring(err)) end
        body = s
      else
        fail(ctx, "%s must be a table or a JSON string (got %s)", label, tv)
      end
      headers["Content-Type"] = op.consumes or "application/json"
    else
      fail(ctx, "%s is sent in '%s', which spapi does not support", label, tostring(where))
    end
  end

  return {
    method = op.method,
    path = path,
    query = concat(query, "&"),
    headers = headers,
    body = body,
    operation = ctx.operation,
    template = op.path,
  }
end

--- try(api_table, op_name, params) → request | nil, message: build without raising
--- (the message is the one build would raise, without a position).
function _M.try(api, op_name, params)
  local ok, res = pcall(build, api, op_name, params)
  if ok then return res end
  if type(res) == "table" and res[FAIL] then return nil, res.msg end
  error(res, 0)
end

_M.fmt_integer = fmt_integer

function _M.build(api, op_name, params, opts)
  local level = 2 + ((type(opts) == "table" and tonumber(opts.level)) or 1)
  local t = resolve_api(api)
  if type(t) ~= "table" or type(t.operations) ~= "table" then
    error("spapi: unknown API " .. quote(type(api) == "table" and tostring(api.api) or api), level - 1)
  end
  local ok, res = pcall(build, t, op_name, params)
  if ok then return res end
  if type(res) == "table" and res[FAIL] then error(res.msg, level - 1) end
  error(res, 0)
end

return _M
