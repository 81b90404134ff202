-- Check a document (decoded JSON as Lua tables) against a JSON Schema, the subset
-- Amazon's feed schemas use: type, properties, required, enum, const, items,
-- minItems, maxItems, minLength, maxLength, minimum, maximum, minProperties,
-- additionalProperties, oneOf / anyOf / allOf and boolean schemas.
--
--   local schema = require "spapi.feeds.schema"
--   local ok, problems = schema.check(require "spapi.schemas.listings_feed", doc)
--   -- problems: { "messages[2]: 'patches' is required", ... } (1-based positions)
--
-- An empty Lua table passes as an object and as an array (Lua cannot tell them apart).
local _M = {}

local type, pairs, ipairs, tostring, next = type, pairs, ipairs, tostring, next
local fmt, floor, concat = string.format, math.floor, table.concat

local function is_array(v)
  if type(v) ~= "table" then return false end
  local n = 0
  for k in pairs(v) do
    if type(k) ~= "number" then return false end
    n = n + 1
  end
  return n == #v
end

local function json_type(v)
  local t = type(v)
  if t == "table" then
    if next(v) == nil then return "empty" end
    return is_array(v) and "array" or "object"
  end
  if t == "number" then return v == floor(v) and "integer" or "number" end
  if t == "boolean" or t == "string" then return t end
  if t == "userdata" or t == "lightuserdata" then return "null" end -- cjson.null
  return t
end

local function type_ok(want, got)
  if want == got then return true end
  if got == "empty" then return want == "object" or want == "array" end
  if want == "number" and got == "integer" then return true end
  return false
end

local function show(v)
  if type(v) == "string" then return fmt("%q", v) end
  return tostring(v)
end

local function check(s, v, path, out)
  if s == true or s == nil then return end
  if s == false then
    out[#out + 1] = path .. ": is not allowed here"
    return
  end
  local before = #out
  local got = json_type(v)
  if s.type then
    local types = type(s.type) == "table" and s.type or { s.type }
    local ok = false
    for _, t in ipairs(types) do if type_ok(t, got) then ok = true end end
    if not ok then
      out[#out + 1] = fmt("%s: must be of type %s, not %s", path, concat(types, " or "), got == "empty" and "an empty table" or got)
      return
    end
  end
  if s.const ~= nil and v ~= s.const then
    out[#out + 1] = fmt("%s: must be %s", path, show(s.const))
  end
  if s.enum then
    local ok = false
    for _, e in ipairs(s.enum) do if e == v then ok = true end end
    if not ok then
      local vals = {}
      for i, e in ipairs(s.enum) do vals[i] = show(e) end
      out[#out + 1] = fmt("%s: must be one of %s (got %s)", path, concat(vals, ", "), show(v))
    end
  end
  if type(v) == "string" then
    if s.minLength and #v < s.minLength then out[#out + 1] = fmt("%s: must have at least %d characters", path, s.minLength) end
    if s.maxLength and #v > s.maxLength then out[#out + 1] = fmt("%s: must have at most %d characters", path, s.maxLength) end
  elseif type(v) == "number" then
    if s.minimum and v < s.minimum then out[#out + 1] = fmt("%s: must be at least %s", path, show(s.minimum)) end
    if s.maximum and v > s.maximum then out[#out + 1] = fmt("%s: must be at most %s", path, show(s.maximum)) end
  elseif type(v) == "table" and (got == "array" or got == "empty") and (s.items or s.minItems or s.maxItems)
    and (s.type == "array" or not s.properties) then
    if s.minItems and #v < s.minItems then out[#out + 1] = fmt("%s: must have at least %d items", path, s.minItems) end
    if s.maxItems and #v > s.maxItems then out[#out + 1] = fmt("%s: must have at most %d items", path, s.maxItems) end
    if s.items ~= nil then
      for i, x in ipairs(v) do check(s.items, x, fmt("%s[%d]", path, i), out) end
    end
  end
  if type(v) == "table" and (got == "object" or got == "empty") and s.type ~= "array" then
    for _, r in ipairs(s.required or {}) do
      if v[r] == nil then out[#out + 1] = fmt("%s: '%s' is required", path, r) end
    end
    if s.minProperties then
      local n = 0
      for _ in pairs(v) do n = n + 1 end
      if n < s.minProperties then out[#out + 1] = fmt("%s: must have at least %d properties", path, s.minProperties) end
    end
    local props = s.properties or {}
    for k, sub in pairs(props) do
      if v[k] ~= nil then check(sub, v[k], path .. "." .. k, out)
      elseif sub == false then -- absent: fine
      end
    end
    if s.additionalProperties == false then
      for k in pairs(v) do
        if props[k] == nil then out[#out + 1] = fmt("%s: property '%s' is not allowed", path, tostring(k)) end
      end
    end
  end
  for _, sub in ipairs(s.allOf or {}) do check(sub, v, path, out) end
  if s.anyOf then
    local best
    for _, sub in ipairs(s.anyOf) do
      local e = {}
      check(sub, v, path, e)
      if #e == 0 then best = nil break end
      if not best or #e < #best then best = e end
    end
    for _, e in ipairs(best or {}) do out[#out + 1] = e end
  end
  if s.oneOf then
    local matched, best = 0, nil
    for _, sub in ipairs(s.oneOf) do
      local e = {}
      check(sub, v, path, e)
      if #e == 0 then matched = matched + 1
      elseif not best or #e < #best then best = e end
    end
    if matched == 0 then
      for _, e in ipairs(best or {}) do out[#out + 1] = e end
    elseif matched > 1 then
      out[#out + 1] = path .. ": matches more than one of the allowed shapes"
    end
  end
  return #out == before
end

--- → true | false, { "path: problem", ... }
function _M.check(schema, doc)
  local out = {}
  check(schema, doc, "$", out)
  if #out == 0 then return true end
  -- "$.messages[2].sku" reads better as "messages[2].sku"
  for i, e in ipairs(out) do out[i] = e:gsub("^%$%.?", ""):gsub("^:", "document:") end
  return false, out
end

return _M
