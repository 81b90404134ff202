-- name=value arguments → an operation's parameters, each value typed by the
-- operation's parameter schema (never by how the value looks):
--   string                   exactly the characters typed: 12E4, 0.10, 0012, an 18-digit id
--   date-time                an ISO 8601 string as typed, or Unix seconds (digits only)
--   integer / number         a decimal number; an integer too big to carry exactly is refused
--   boolean                  true or false
--   array (csv)              a comma list (a,b,c), or a JSON array; items typed by the item schema;
--                            name=value given again adds to the list
--   object (a body)          JSON text, or @FILE / @- (stdin) holding JSON
-- A name the operation does not have is passed on as a string: the request
-- builder refuses it with a suggestion.
local _M = {}

local json = require "spapi.json"

local type, tonumber, tostring, ipairs = type, tonumber, tostring, ipairs
local fmt = string.format

local function typed_number(p, s, label)
  if p.type == "integer" then
    if not s:match("^[-+]?%d+$") then return nil, fmt("%s must be an integer (got '%s')", label, s) end
    local n = tonumber(s)
    local digits = s:gsub("^%+", ""):gsub("^(%-?)0+(%d)", "%1%2")
    if digits == "-0" then digits = "0" end
    if fmt("%.0f", n) ~= digits then
      return nil, fmt("%s: %s is too large to send exactly as an integer", label, s)
    end
    return n
  end
  if not s:match("^[-+]?%d*%.?%d+[eE]?[-+]?%d*$") and not s:match("^[-+]?%d+%.$") then
    return nil, fmt("%s must be a number (got '%s')", label, s)
  end
  local n = tonumber(s)
  if not n then return nil, fmt("%s must be a number (got '%s')", label, s) end
  return n
end

-- one scalar per the schema p ({ type, format }) → value | nil, message
local function scalar(p, s, label)
  local t = p.type
  if t == "integer" or t == "number" then return typed_number(p, s, label) end
  if t == "boolean" or p.format == "boolean" then
    if s == "true" then return true end
    if s == "false" then return false end
    return nil, fmt("%s must be true or false (got '%s')", label, s)
  end
  -- a date-time given as digits is Unix seconds (no date-time string is all digits)
  if p.format == "date-time" and s:match("^%d+$") then return tonumber(s) end
  return s -- a string: exactly as typed
end

local function json_value(s, label, want)
  local text = s
  if s:sub(1, 1) == "@" then
    local path = s:sub(2)
    local f
    if path == "-" then f = io.stdin else f = io.open(path, "rb") end
    if not f then return nil, fmt("%s: cannot read %s", label, path) end
    text = f:read("*a")
    if f ~= io.stdin then f:close() end
  end
  local v, err = json.decode(text)
  if v == nil then return nil, fmt("%s must be JSON (%s)", label, tostring(err)) end
  if want and type(v) ~= want then return nil, fmt("%s must be a JSON %s", label, want == "table" and "object or array" or want) end
  return v
end

local function array(p, s, label)
  local items = p.items or { type = "string" }
  local raw
  if s:sub(1, 1) == "[" then
    local v = json.decode(s)
    if type(v) == "table" then
      raw = {}
      for i, x in ipairs(v) do
        if type(x) == "table" then return nil, fmt("%s item %d must be a single value", label, i) end
        raw[i] = tostring(x)
        if type(x) == "number" then raw[i] = json.encode(x) end
      end
    end
  end
  if not raw then
    local sep = (p.collection_format == "ssv" and " ") or (p.collection_format == "pipes" and "|")
      or (p.collection_format == "tsv" and "\t") or ","
    raw = {}
    for item in (s .. sep):gmatch("(.-)" .. sep:gsub("%p", "%%%0")) do raw[#raw + 1] = item end
  end
  local out = {}
  for i, x in ipairs(raw) do
    if x == "" then return nil, fmt("%s item %d is empty (in '%s')", label, i, s) end
    local v, err = scalar(items, x, fmt("%s item %d", label, i))
    if v == nil then return nil, err end
    out[i] = v
  end
  return out
end

local function by_name(op)
  local t = {}
  for _, p in ipairs(op.params or {}) do t[p.name] = p end
  -- an operation with one body parameter also takes it as `body`
  local body
  for _, p in ipairs(op.params or {}) do
    if p["in"] == "body" then
      if body then body = false break end
      body = p
    end
  end
  if body and not t.body then t.body = body end
  return t
end

--- Parse { "name=value", ... } for operation op (its generated table; full: its
--- "api.operation" name) → params | nil, message
function _M.parse(op, full, list)
  local known = by_name(op)
  local params, given = {}, {}
  for _, a in ipairs(list) do
    local name, s = a:match("^([%w_%-%.]+)=(.*)$")
    if not name then
      return nil, fmt("%s: expected name=value, got '%s'", full, a)
    end
    local p = known[name]
    local label = fmt("%s: parameter '%s'", full, name)
    local v, err
    if not p then
      v = s
    elseif p.type == "array" then
      v, err = array(p, s, label)
      if v and given[name] then
        local list2 = params[name]
        for _, x in ipairs(v) do list2[#list2 + 1] = x end
        v = list2
      end
    elseif p["in"] == "body" or p.type == "object" then
      v, err = json_value(s, label, p.type == "object" and "table" or nil)
    else
      v, err = scalar(p, s, label)
    end
    if v == nil then return nil, err end
    if given[name] and not (p and p.type == "array") then
      return nil, fmt("%s: parameter '%s' given twice", full, name)
    end
    params[name], given[name] = v, true
  end
  return params
end

return _M
