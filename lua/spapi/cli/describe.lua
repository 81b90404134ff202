-- spapi describe API.op: an operation's method, path, rate, flags, its
-- parameters (where sent, type, required, enum, limits) and, for an operation
-- with a body, an example body built from the model's schema
-- (lua/spapi/schemas/<api>.lua): the required properties at every depth, each
-- with a value of its type (the first enum value where there is an enum).
local _M = {}

local ops = require "spapi.cli.ops"

local type, tostring, ipairs, pairs = type, tostring, ipairs, pairs
local fmt, concat, sort = string.format, table.concat, table.sort

local function type_text(p)
  if p.type == "array" then
    local it = p.items or {}
    local s = "array of " .. tostring(it.type or it.schema or "string")
    if p.collection_format == "csv" or (p["in"] == "query" and not p.collection_format) then
      s = s .. " (comma list)"
    end
    return s
  end
  if p["in"] == "body" and p.schema then return tostring(p.schema) end
  if p.format and p.format ~= p.type then return tostring(p.type) .. " (" .. p.format .. ")" end
  return tostring(p.type or "string")
end

local function notes(p)
  local n = {}
  local enum = p.enum or (p.items and p.items.enum)
  if enum then n[#n + 1] = "one of: " .. concat(enum, ", ") end
  if p.default ~= nil then
    local d = p.default
    if type(d) == "table" then d = concat(d, ",") end
    n[#n + 1] = "default " .. tostring(d)
  end
  if p.minimum then n[#n + 1] = "min " .. tostring(p.minimum) end
  if p.maximum then n[#n + 1] = "max " .. tostring(p.maximum) end
  if p.min_length then n[#n + 1] = "at least " .. p.min_length .. " characters" end
  if p.max_length then n[#n + 1] = "at most " .. p.max_length .. " characters" end
  if p.min_items then n[#n + 1] = "at least " .. p.min_items .. (p.min_items == 1 and " item" or " items") end
  if p.max_items then n[#n + 1] = "at most " .. p.max_items .. (p.max_items == 1 and " item" or " items") end
  if p.pattern then n[#n + 1] = "pattern " .. p.pattern end
  if p.body_required then n[#n + 1] = "required properties: " .. concat(p.body_required, ", ") end
  return concat(n, "; ")
end

---------------------------------------------------------------------------
-- example bodies from the schemas
---------------------------------------------------------------------------
local function load_schemas(api)
  local ok, t = pcall(require, "spapi.schemas." .. api)
  if ok and type(t) == "table" and type(t.definitions) == "table" then return t end
  return nil
end

-- realistic values for fields the models have in many places
local KNOWN = {
  countryCode = "US", currencyCode = "USD", marketplaceId = "ATVPDKIKX0DER", stateOrRegion = "WA",
  city = "Seattle", postalCode = "98101", phone = "206-555-0100", phoneNumber = "206-555-0100",
  email = "buyer@example.com", emailAddress = "buyer@example.com", languageCode = "en_US", locale = "en_US",
  value = "10.00", amount = "10.00",
}
-- values tried in turn until one meets the schema's rules (lengths, patterns)
local CANDIDATES = { "ABC123", "X", "XX", "1", "UN1234", "buyer@example.com",
  "arn:aws:sqs:us-east-1:123456789012:queue-name" }

local function string_example(s, defs, name)
  local check = require("spapi.validate").check
  local list = {}
  if name and KNOWN[name] then list[1] = KNOWN[name] end
  list[#list + 1] = "<" .. tostring(name or "string") .. ">"
  for _, c in ipairs(CANDIDATES) do list[#list + 1] = c end
  for _, v in ipairs(list) do
    if check(defs, s, v, tostring(name)) then return v end
  end
  return list[1]
end

-- an example value for schema s (refs resolved in defs); depth and the refs on
-- the way guard against cycles
local function example(s, defs, seen, depth, name)
  if type(s) ~= "table" or depth > 12 then return nil end
  if s.ref then
    if seen[s.ref] then return nil end
    seen[s.ref] = true
    local v = example(defs[s.ref], defs, seen, depth + 1, name)
    seen[s.ref] = nil
    return v
  end
  if s.allOf then
    local merged = {}
    for _, part in ipairs(s.allOf) do
      local v = example(part, defs, seen, depth + 1, name)
      if type(v) == "table" then for k, x in pairs(v) do merged[k] = x end end
    end
    return merged
  end
  if s.enum then return s.enum[1] end
  local t = s.type
  if t == "object" or (not t and s.properties) then
    local obj = setmetatable({}, { __jsonobject = true })
    local props = s.properties or {}
    local keys = s.required
    if not keys or #keys == 0 then
      -- nothing required: show the properties that are plain values, so the
      -- object's shape is visible without the whole tree
      keys = {}
      for k, ps in pairs(props) do
        if type(ps) == "table" and ps.type and ps.type ~= "object" and ps.type ~= "array" then keys[#keys + 1] = k end
      end
    end
    for _, k in ipairs(keys) do
      local v = example(props[k] or { type = "string" }, defs, seen, depth + 1, k)
      if v ~= nil then obj[k] = v end
    end
    return obj
  end
  if t == "array" then
    local v = example(s.items, defs, seen, depth + 1, name)
    local list = setmetatable({}, { __jsonarray = true })
    for i = 1, math.max(1, s.minItems or 1) do list[i] = v end
    return list
  end
  if t == "integer" then return math.max(s.minimum or 1, 1) end
  if t == "number" then return s.minimum or 1.5 end
  if t == "boolean" then return false end
  if s.format == "date-time" then return "2026-01-02T03:04:05Z" end
  if s.format == "date" then return "2026-01-02" end
  return string_example(s, defs, name)
end

local function encode(v, indent)
  local step = "  "
  local tv = type(v)
  if tv == "string" then return fmt("%q", v):gsub("\\\n", "\\n") end
  if tv == "number" then
    if v == math.floor(v) then return fmt("%.0f", v) end
    return tostring(v)
  end
  if tv ~= "table" then return tostring(v) end
  local inner = indent .. step
  local mt = getmetatable(v) or {}
  if mt.__jsonarray or (#v > 0 and not mt.__jsonobject) then
    if #v == 0 then return "[]" end
    local parts = {}
    for i, x in ipairs(v) do parts[i] = inner .. encode(x, inner) end
    return "[\n" .. concat(parts, ",\n") .. "\n" .. indent .. "]"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  if #keys == 0 then return "{}" end
  sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = inner .. fmt("%q", k) .. ": " .. encode(v[k], inner) end
  return "{\n" .. concat(parts, ",\n") .. "\n" .. indent .. "}"
end

--- The example body of an operation (its API key, its table) as JSON text, or
--- nil, why when it has none.
function _M.example_body(api, op_id, op)
  local body
  for _, p in ipairs(op.params or {}) do if p["in"] == "body" then body = p end end
  if not body then return nil, "no body" end
  local schemas = load_schemas(api)
  if not schemas then return nil, "no schemas for " .. api end
  local s = (schemas.operations and schemas.operations[op_id] and schemas.operations[op_id].body)
    or (body.schema and { ref = body.schema })
  if not s then return nil, "no body schema" end
  local v = example(s, schemas.definitions, {}, 0, body.name)
  if v == nil then return nil, "no example" end
  return encode(v, "")
end

---------------------------------------------------------------------------
-- the description
---------------------------------------------------------------------------
--- The description of operation `name` ("api.op" or an MWS name) → text | nil, message
function _M.text(name)
  local client = require "spapi.client"
  local ok, full, _, op_id, op = pcall(client.resolve, name, 1)
  if not ok then return nil, require("spapi.cli.common").raised_message(full) end
  local api = full:match("^([^.]+)")
  local entry = ops.list(full)
  local e
  for _, x in ipairs(entry) do if x.full == full then e = x end end
  local out = { full }
  if op.summary then out[#out + 1] = "  " .. op.summary end
  out[#out + 1] = fmt("  %s %s", op.method, op.path)
  local facts = { op.rate and fmt("rate %s/s, burst %s", tostring(op.rate), tostring(op.burst or "-"))
    or "rate: not in the model" }
  local flags = e and ops.flags(e) or ""
  if flags ~= "" then facts[#facts + 1] = flags end
  if op.paging then facts[#facts + 1] = "pages (" .. op.paging.param .. "; spapi call --all)" end
  out[#out + 1] = "  " .. concat(facts, " · ")
  out[#out + 1] = ""
  local params = op.params or {}
  if #params == 0 then
    out[#out + 1] = "parameters: none"
  else
    out[#out + 1] = "parameters:"
    local rows, w = {}, { 4, 2, 4 }
    for _, p in ipairs(params) do
      local row = { p.name, p["in"], type_text(p), p.required and "required" or "optional", notes(p) }
      for i = 1, 3 do if #row[i] > w[i] then w[i] = #row[i] end end
      rows[#rows + 1] = row
    end
    for _, row in ipairs(rows) do
      out[#out + 1] = (fmt("  %-" .. w[1] .. "s  %-" .. w[2] .. "s  %-" .. w[3] .. "s  %-8s  %s",
        row[1], row[2], row[3], row[4], row[5]):gsub("%s+$", ""))
    end
  end
  local ex, why = _M.example_body(api, op_id, op)
  if ex then
    out[#out + 1] = ""
    out[#out + 1] = "example body (the model's required properties; values are placeholders):"
    out[#out + 1] = ex
  elseif why ~= "no body" then
    out[#out + 1] = ""
    out[#out + 1] = "example body: none (" .. why .. ")"
  end
  -- an example command line with the required non-body parameters
  local cmd = { "spapi call " .. full }
  for _, p in ipairs(params) do
    if p.required and p["in"] ~= "body" then
      local v = (p.enum and p.enum[1]) or (p.items and p.items.enum and p.items.enum[1])
        or (p.format == "date-time" and "2026-01-02T03:04:05Z") or ("<" .. p.name .. ">")
      cmd[#cmd + 1] = p.name .. "=" .. v
    end
  end
  for _, p in ipairs(params) do
    if p["in"] == "body" then cmd[#cmd + 1] = "--body body.json" break end
  end
  out[#out + 1] = ""
  out[#out + 1] = "example:"
  out[#out + 1] = "  " .. concat(cmd, " ")
  return concat(out, "\n")
end

local function usage(out)
  out:write("usage: spapi describe API.op\n\nShows an operation's parameters (where sent, type, required, "
    .. "enum, limits) and an example body built from the model.\n")
end

function _M.run(args)
  local name = args[1]
  if name == "-h" or name == "--help" then usage(io.stdout) return 0 end
  if not name or args[2] then usage(io.stderr) return 2 end
  local text, err = _M.text(name)
  if not text then
    io.stderr:write("spapi describe: ", err, "\n")
    return 2
  end
  io.stdout:write(text, "\n")
  return 0
end

return _M
