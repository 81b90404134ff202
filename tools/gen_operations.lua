#!/usr/bin/env lua5.4
-- tools/gen_operations.lua — generate lua/spapi/operations/*.lua from Amazon's
-- Swagger 2.0 models.
--
--   lua5.4 tools/gen_operations.lua <models_dir> <out_dir>     (make operations MODELS=...)
--
-- Loaded without arguments (loadfile(path)()) it returns the generator as a
-- module: { generate = function(models_dir, out_dir) -> list of written files,
-- render_api = function(models_dir, api) -> source, file, APIS, ... }, which is
-- how spec/request/operations_spec.lua checks that regeneration gives no diff.
--
-- Output is deterministic: APIs and operations sorted by name, fields in a
-- fixed order, parameters in model order, numbers printed with %.14g, so a
-- regeneration from the same models never produces a diff (under Lua 5.4 or
-- LuaJIT alike).

local cjson = require("cjson.safe").new()

local M = {}

-- API key -> model file. `pattern` is matched against the file names in the
-- models directory; when several match (a newer dated revision of the same
-- API), the lexicographically greatest — the newest date — wins.
local D = "%d%d%d%d%-%d%d%-%d%d"
M.APIS = {
  fba_inventory             = { file = "fbaInventory.json", pattern = "^fbaInventory%.json$" },
  feeds                     = { file = "feeds_2021-06-30.json", pattern = "^feeds_" .. D .. "%.json$" },
  fulfillment_outbound      = { file = "fulfillmentOutbound_2020-07-01.json",
                                pattern = "^fulfillmentOutbound_2020%-%d%d%-%d%d%.json$" },
  fulfillment_outbound_2026 = { file = "fulfillmentOutbound_2026-07-04.json",
                                pattern = "^fulfillmentOutbound_2026%-%d%d%-%d%d%.json$" },
  listings_items            = { file = "listingsItems_2021-08-01.json", pattern = "^listingsItems_" .. D .. "%.json$" },
  merchant_fulfillment      = { file = "merchantFulfillmentV0.json", pattern = "^merchantFulfillmentV0%.json$" },
  notifications             = { file = "notifications.json", pattern = "^notifications%.json$" },
  reports                   = { file = "reports_2021-06-30.json", pattern = "^reports_" .. D .. "%.json$" },
  supply_sources            = { file = "supplySources_2020-07-01.json", pattern = "^supplySources_" .. D .. "%.json$" },
  tokens                    = { file = "tokens_2021-03-01.json", pattern = "^tokens_" .. D .. "%.json$" },
  vendor_df_inventory       = { file = "vendorDirectFulfillmentInventoryV1.json",
                                pattern = "^vendorDirectFulfillmentInventoryV1%.json$" },
  vendor_df_orders          = { file = "vendorDirectFulfillmentOrders_2021-12-28.json",
                                pattern = "^vendorDirectFulfillmentOrders_" .. D .. "%.json$" },
  vendor_df_payments        = { file = "vendorDirectFulfillmentPaymentsV1.json",
                                pattern = "^vendorDirectFulfillmentPaymentsV1%.json$" },
  vendor_df_sandbox         = { file = "vendorDirectFulfillmentSandboxData_2021-10-28.json",
                                pattern = "^vendorDirectFulfillmentSandboxData_" .. D .. "%.json$" },
  vendor_df_shipping        = { file = "vendorDirectFulfillmentShipping_2021-12-28.json",
                                pattern = "^vendorDirectFulfillmentShipping_" .. D .. "%.json$" },
  vendor_df_transactions    = { file = "vendorDirectFulfillmentTransactions_2021-12-28.json",
                                pattern = "^vendorDirectFulfillmentTransactions_" .. D .. "%.json$" },
}

-- ---------------------------------------------------------------------------
-- Facts the models don't carry (from DESIGN.md, "Facts the models do not
-- carry", which follows Amazon's Tokens API use case guide). Keep in sync by
-- hand; everything else in the output comes from the models.
-- ---------------------------------------------------------------------------

-- Restricted operations: they need a restricted data token (RDT) in place of
-- the LWA access token. "conditional": only for some inputs (reports: only
-- the documents of restricted report types).
M.RESTRICTED = {
  vendor_df_orders     = { getOrders = true, getOrder = true },
  vendor_df_shipping   = { getShippingLabel = true, getCustomerInvoices = true, getCustomerInvoice = true,
                           getPackingSlips = true, getPackingSlip = true },
  merchant_fulfillment = { getShipment = true, cancelShipment = true, createShipment = true },
  reports              = { getReportDocument = "conditional" },
}

-- dataElements to ask for in the RDT request, per restricted operation. The
-- Tokens model only defines them for the Orders API (out of scope); none of
-- the restricted operations above takes them, so this stays empty until a
-- model or DESIGN.md says otherwise.
M.DATA_ELEMENTS = {}

-- Grantless operations are detected from their description ("... is
-- grantless"); the LWA scope to request for them is per API:
M.GRANTLESS_SCOPES = {
  notifications = "sellingpartnerapi::notifications",
}

-- MWS Fulfillment Outbound operation names (../shared/seeds/mws-fulfillment-outbound.txt)
-- and their SP-API successors. GetServiceStatus has no successor (SP-API has
-- no service-status operation) and is deliberately absent.
-- ListAllFulfillmentOrdersByNextToken became the nextToken parameter of
-- listAllFulfillmentOrders.
M.MWS_ALIASES = {
  CancelFulfillmentOrder              = "fulfillment_outbound.cancelFulfillmentOrder",
  CreateFulfillmentOrder              = "fulfillment_outbound.createFulfillmentOrder",
  CreateFulfillmentReturn             = "fulfillment_outbound.createFulfillmentReturn",
  GetFulfillmentOrder                 = "fulfillment_outbound.getFulfillmentOrder",
  GetFulfillmentPreview               = "fulfillment_outbound.getFulfillmentPreview",
  GetPackageTrackingDetails           = "fulfillment_outbound.getPackageTrackingDetails",
  ListAllFulfillmentOrders            = "fulfillment_outbound.listAllFulfillmentOrders",
  ListAllFulfillmentOrdersByNextToken = "fulfillment_outbound.listAllFulfillmentOrders",
  ListReturnReasonCodes               = "fulfillment_outbound.listReturnReasonCodes",
  UpdateFulfillmentOrder              = "fulfillment_outbound.updateFulfillmentOrder",
}

-- ---------------------------------------------------------------------------
-- helpers
-- ---------------------------------------------------------------------------

local METHODS = { "get", "put", "post", "delete", "patch", "head", "options" }
local PAGE_PARAMS = { nextToken = true, NextToken = true, paginationToken = true,
                      pageToken = true, nextPageToken = true }
local PAGE_FIELDS = { nextToken = true, NextToken = true, nextPageToken = true }

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks, function(a, b) return tostring(a) < tostring(b) end)
  return ks
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("*a")
  f:close()
  return s
end

local function list_dir(dir)
  local p = io.popen('ls -1 "' .. dir:gsub('"', '\\"') .. '" 2>/dev/null')
  local names = {}
  for line in p:lines() do names[#names + 1] = line end
  p:close()
  table.sort(names)
  return names
end

-- Which model file serves `api` in `dir`: newest match of the pattern.
function M.model_file(dir, api)
  local spec = M.APIS[api]
  if not spec then error("gen_operations: unknown API key '" .. tostring(api) .. "'", 2) end
  local best
  for _, name in ipairs(list_dir(dir)) do
    if name:match(spec.pattern) and (not best or name > best) then best = name end
  end
  if not best then
    error(string.format("gen_operations: no model for API '%s' in %s (expected %s, pattern %s)",
      api, dir, spec.file, spec.pattern), 0)
  end
  return best
end

local function load_model(dir, file)
  local s, err = read_file(dir .. "/" .. file)
  if not s then error("gen_operations: cannot read " .. dir .. "/" .. file .. ": " .. tostring(err), 0) end
  local doc, derr = cjson.decode(s)
  if not doc then error("gen_operations: " .. file .. " is not JSON: " .. tostring(derr), 0) end
  return doc
end

local function resolve(doc, s, seen)
  seen = seen or 0
  while type(s) == "table" and s["$ref"] do
    local name = s["$ref"]:match("^#/definitions/(.+)$")
    if not name or not doc.definitions[name] then
      error("gen_operations: unresolvable $ref " .. tostring(s["$ref"]), 0)
    end
    s = doc.definitions[name]
    seen = seen + 1
    if seen > 50 then error("gen_operations: $ref loop", 0) end
  end
  return s
end

local function ref_name(s)
  return type(s) == "table" and s["$ref"] and s["$ref"]:match("^#/definitions/(.+)$") or nil
end

-- Top-level required property names of a (resolved) schema, allOf merged.
local function required_props(doc, s)
  s = resolve(doc, s)
  local out, seen = {}, {}
  local function add(list)
    for _, n in ipairs(list or {}) do
      if not seen[n] then seen[n] = true; out[#out + 1] = n end
    end
  end
  add(s.required)
  for _, sub in ipairs(s.allOf or {}) do add(resolve(doc, sub).required) end
  return out
end

-- "Usage Plan" table: | Rate (requests per second) | Burst | / | ---- | / | 10 | 10 |
local function usage_plan(desc)
  if type(desc) ~= "string" then return nil end
  local i = desc:find("Usage Plan", 1, true)
  if not i then return nil end
  local rate, burst = desc:match("|%s*%-+%s*|%s*%-+%s*|%s*\n%s*|%s*([%d%.]+)%s*|%s*([%d%.]+)%s*|", i)
  if not rate then return nil end
  return tonumber(rate), tonumber(burst)
end

-- Walk a response schema for the next-page token field; returns "a.b.c".
local function find_token_field(doc, schema)
  local found
  local function walk(s, prefix, depth)
    if found or depth > 4 then return end
    s = resolve(doc, s)
    if type(s) ~= "table" or type(s.properties) ~= "table" then return end
    local keys = sorted_keys(s.properties)
    for _, k in ipairs(keys) do -- this level first (shallowest match wins)
      if PAGE_FIELDS[k] then found = prefix .. k; return end
    end
    for _, k in ipairs(keys) do walk(s.properties[k], prefix .. k .. ".", depth + 1) end
  end
  walk(schema, "", 0)
  return found
end

-- Where a body schema has date-time strings: dotted paths ("a.b", "list.[].when":
-- "[]" is every item of an array), sorted. The client turns Unix seconds found
-- there into ISO 8601, as it does for parameters.
local function date_paths(doc, schema)
  local out, seen = {}, {}
  local function walk(s, prefix, depth, visiting)
    if depth > 12 then return end
    local name = ref_name(s)
    if name then
      if visiting[name] then return end
      visiting[name] = true
    end
    local r = resolve(doc, s)
    if type(r) == "table" then
      if r.format == "date-time" and prefix ~= "" and not seen[prefix] then
        seen[prefix] = true
        out[#out + 1] = prefix
      end
      if type(r.properties) == "table" then
        for _, k in ipairs(sorted_keys(r.properties)) do
          walk(r.properties[k], prefix == "" and k or (prefix .. "." .. k), depth + 1, visiting)
        end
      end
      if r.items then walk(r.items, prefix == "" and "[]" or (prefix .. ".[]"), depth + 1, visiting) end
      for _, sub in ipairs(r.allOf or {}) do walk(sub, prefix, depth + 1, visiting) end
    end
    if name then visiting[name] = nil end
  end
  walk(schema, "", 0, {})
  table.sort(out)
  return out
end

local function success_response(op)
  local best
  for code in pairs(op.responses or {}) do
    local n = tonumber(code)
    if n and n >= 200 and n < 300 and (not best or n < best) then best = n end
  end
  if not best then return nil end
  return best, op.responses[tostring(best)]
end

local function copy_array(a)
  if type(a) ~= "table" then return nil end
  local out = {}
  for i, v in ipairs(a) do out[i] = v end
  return out
end

local function build_param(doc, p)
  if p["$ref"] then
    local name = p["$ref"]:match("^#/parameters/(.+)$")
    p = name and doc.parameters and doc.parameters[name]
    if not p then error("gen_operations: unresolvable parameter $ref", 0) end
  end
  local out = { name = p.name, ["in"] = p["in"], required = p.required == true }
  if p["in"] == "body" then
    local s = resolve(doc, p.schema or {})
    out.type = s.type or ((s.properties or s.allOf) and "object") or nil
    out.schema = ref_name(p.schema)
    local req = required_props(doc, p.schema or {})
    if #req > 0 then out.body_required = req end
    local dates = date_paths(doc, p.schema or {})
    if #dates > 0 then out.body_dates = dates end
    return out
  end
  out.type = p.type
  out.format = p.format
  out.enum = copy_array(p.enum)
  out.minimum, out.maximum = p.minimum, p.maximum
  out.max_length, out.min_length = p.maxLength, p.minLength
  out.pattern = p.pattern
  out.default = p.default
  if p.type == "array" then
    local it = p.items or {}
    out.items = { type = it.type, format = it.format, enum = copy_array(it.enum),
                  pattern = it.pattern, max_length = it.maxLength, min_length = it.minLength }
    out.collection_format = p.collectionFormat or "csv"
    out.max_items, out.min_items = p.maxItems, p.minItems
  end
  return out
end

-- The definition name of an operation's body (lua/spapi/schemas/<api>.lua
-- holds it, and the body's schema under operations.<name>.body).
local function body_schema(params)
  for _, p in ipairs(params) do
    if p["in"] == "body" then return p.schema end
  end
  return nil
end

local function build_operation(doc, api, path, method, item, op)
  local desc = op.description or ""
  local rate, burst = usage_plan(desc)
  local restricted = M.RESTRICTED[api] and M.RESTRICTED[api][op.operationId] or false
  local grantless = desc:lower():find("is grantless", 1, true) ~= nil
  local consumes = (op.consumes or doc.consumes or {})[1]
  local produces = (op.produces or doc.produces or {})[1]

  -- params: path-level first, op-level overrides the same (name, in)
  local params, index = {}, {}
  local function add(p)
    local bp = build_param(doc, p)
    local key = bp["in"] .. ":" .. bp.name
    if index[key] then params[index[key]] = bp
    else params[#params + 1] = bp; index[key] = #params end
  end
  for _, p in ipairs(item.parameters or {}) do add(p) end
  for _, p in ipairs(op.parameters or {}) do add(p) end

  -- paging
  local paging
  local page_param
  for _, p in ipairs(params) do
    if p["in"] == "query" and PAGE_PARAMS[p.name] then page_param = p; break end
  end
  local code, resp = success_response(op)
  if page_param and resp and resp.schema then
    local field = find_token_field(doc, resp.schema)
    if field then
      paging = { token = field, param = page_param.name }
      -- reports/feeds: "include this token as the only parameter"
      local pd
      for _, list in ipairs({ item.parameters or {}, op.parameters or {} }) do
        for _, p in ipairs(list) do
          if p.name == page_param.name then pd = p.description end
        end
      end
      if type(pd) == "string" and (pd:find("as the only parameter", 1, true)
          or pd:find("with any other parameters", 1, true)) then
        paging.exclusive = true
      end
    end
  end

  local response_type = "json"
  if not code or code == 204 or not (resp and resp.schema) then
    response_type = "empty"
  elseif produces and not produces:find("json", 1, true) then
    response_type = "binary"
  end

  -- one-line summary for help screens: the description's first sentence
  local summary = op.summary
  if type(summary) ~= "string" or summary == "" or summary == op.operationId then
    summary = (desc:match("^%s*([^\n]*)") or "")
    summary = summary:match("^(.-%.)%s") or summary
  end
  summary = summary:gsub("%[([^%]]*)%]%([^%)]*%)", "%1"):gsub("`", ""):gsub("%*%*", ""):gsub("%s+$", "")
  if #summary > 200 then summary = summary:sub(1, 197) .. "..." end

  local o = {
    summary = summary ~= "" and summary or nil,
    method = method:upper(),
    path = path,
    rate = rate, burst = burst,
    restricted = restricted,
    data_elements = M.DATA_ELEMENTS[api] and M.DATA_ELEMENTS[api][op.operationId] or nil,
    grantless = grantless,
    scope = grantless and M.GRANTLESS_SCOPES[api] or nil,
    sandbox_only = item["x-amzn-api-sandbox-only"] == true or op["x-amzn-api-sandbox-only"] == true or nil,
    deprecated = op.deprecated == true or nil,
    consumes = consumes,
    produces = produces,
    idempotent = (method == "get" or method == "put" or method == "delete" or method == "head"),
    params = params,
    paging = paging,
    success = code,
    response_type = response_type,
    response_schema = resp and ref_name(resp.schema) or nil,
    body_schema = body_schema(params),
  }
  return o
end

-- ---------------------------------------------------------------------------
-- serialiser (deterministic Lua source)
-- ---------------------------------------------------------------------------

local function fmt_number(n)
  if n ~= n or n == math.huge or n == -math.huge then error("gen_operations: non-finite number", 0) end
  if n == math.floor(n) and math.abs(n) < 2 ^ 53 then
    return string.format("%.0f", n)
  end
  return string.format("%.14g", n)
end

local function fmt_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' elseif c == "\\" then return "\\\\"
    elseif c == "\n" then return "\\n" elseif c == "\r" then return "\\r" elseif c == "\t" then return "\\t" end
    return string.format("\\%03d", c:byte())
  end) .. '"'
end

M.fmt_number, M.fmt_string = fmt_number, fmt_string -- (tools/gen_schemas.lua prints as this does)

local IDENT = "^[%a_][%w_]*$"
local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or repeat
  return then true until while]]):gmatch("%a+") do KEYWORDS[w] = true end

local function fmt_key(k)
  if type(k) == "string" and k:match(IDENT) and not KEYWORDS[k] then return k end
  return "[" .. fmt_string(k) .. "]"
end

local function is_array(t)
  local n = #t
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

-- Preferred field order (others follow, sorted).
local ORDER = {}
for i, k in ipairs({
  "api", "version", "title", "model",
  "summary", "method", "path", "rate", "burst", "restricted", "data_elements", "grantless", "scope",
  "sandbox_only", "deprecated", "consumes", "produces", "idempotent",
  "name", "in", "required", "type", "format", "schema", "body_required", "body_dates", "enum", "items",
  "collection_format", "min_items", "max_items", "minimum", "maximum", "min_length", "max_length",
  "pattern", "default",
  "params", "paging", "token", "param", "exclusive", "success", "response_type", "response_schema", "body_schema",
  "operations",
}) do ORDER[k] = i end

local function field_order(a, b)
  local oa, ob = ORDER[a], ORDER[b]
  if oa and ob then return oa < ob end
  if oa then return true end
  if ob then return false end
  return tostring(a) < tostring(b)
end

local function fmt_value(v, indent, inline)
  local t = type(v)
  if t == "string" then return fmt_string(v)
  elseif t == "number" then return fmt_number(v)
  elseif t == "boolean" then return tostring(v)
  elseif t ~= "table" then error("gen_operations: cannot serialise a " .. t, 0) end
  if next(v) == nil then return "{}" end
  if is_array(v) then
    local simple = true
    for _, x in ipairs(v) do if type(x) == "table" then simple = false end end
    if simple then
      local parts = {}
      for i, x in ipairs(v) do parts[i] = fmt_value(x) end
      return "{ " .. table.concat(parts, ", ") .. " }"
    end
    local lines = {}
    for _, x in ipairs(v) do lines[#lines + 1] = indent .. "  " .. fmt_value(x, indent .. "  ", true) .. "," end
    return "{\n" .. table.concat(lines, "\n") .. "\n" .. indent .. "}"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, field_order)
  if inline then -- one line (parameters)
    local parts = {}
    for _, k in ipairs(keys) do parts[#parts + 1] = fmt_key(k) .. " = " .. fmt_value(v[k], indent, true) end
    return "{ " .. table.concat(parts, ", ") .. " }"
  end
  local lines = {}
  for _, k in ipairs(keys) do
    local sub = v[k]
    local one_line = type(sub) ~= "table" or k == "paging" or k == "items" or
      (is_array(sub) and (function() for _, x in ipairs(sub) do if type(x) == "table" then return false end end return true end)())
    lines[#lines + 1] = indent .. "  " .. fmt_key(k) .. " = " .. fmt_value(sub, indent .. "  ", one_line and type(sub) == "table") .. ","
  end
  return "{\n" .. table.concat(lines, "\n") .. "\n" .. indent .. "}"
end

-- ---------------------------------------------------------------------------
-- generation
-- ---------------------------------------------------------------------------

-- The operation table of one API (a plain Lua table), and the model file used.
function M.build_api(models_dir, api)
  local file = M.model_file(models_dir, api)
  local doc = load_model(models_dir, file)
  local ops = {}
  for _, path in ipairs(sorted_keys(doc.paths or {})) do
    local item = doc.paths[path]
    for _, m in ipairs(METHODS) do
      local op = item[m]
      if type(op) == "table" then
        local id = op.operationId
        if not id then error("gen_operations: " .. file .. ": " .. m:upper() .. " " .. path .. " has no operationId", 0) end
        if ops[id] then error("gen_operations: " .. file .. ": duplicate operationId " .. id, 0) end
        ops[id] = build_operation(doc, api, path, m, item, op)
      end
    end
  end
  -- every restricted op named in the facts table must exist
  for name in pairs(M.RESTRICTED[api] or {}) do
    if not ops[name] then error("gen_operations: " .. file .. ": restricted operation " .. name .. " not in the model", 0) end
  end
  local info = doc.info or {}
  return {
    api = api, version = info.version, title = info.title and (info.title:gsub("%s+$", "")), model = file,
    operations = ops,
  }, file
end

function M.render_api(models_dir, api)
  local t, file = M.build_api(models_dir, api)
  local header = "-- GENERATED by tools/gen_operations.lua from " .. file .. "; do not edit.\n" ..
                 "-- Regenerate with `make operations MODELS=<models dir>`.\n"
  return header .. "return " .. fmt_value(t, "") .. "\n", t
end

function M.render_index(tables)
  local apis = {}
  for _, api in ipairs(sorted_keys(M.APIS)) do apis[api] = "spapi.operations." .. api end
  -- every alias must point at an existing operation
  for alias, target in pairs(M.MWS_ALIASES) do
    local api, op = target:match("^([%w_]+)%.([%w_]+)$")
    if tables and not (tables[api] and tables[api].operations[op]) then
      error("gen_operations: alias " .. alias .. " -> " .. target .. ": no such operation", 0)
    end
  end
  local t = { apis = apis, aliases = M.MWS_ALIASES }
  return "-- GENERATED by tools/gen_operations.lua; do not edit.\n" ..
         "-- apis: API key -> module; aliases: MWS Fulfillment Outbound names -> \"api.operation\".\n" ..
         "return " .. fmt_value(t, "") .. "\n"
end

local function write_file(path, s)
  local f, err = io.open(path, "wb")
  if not f then error("gen_operations: cannot write " .. path .. ": " .. tostring(err), 0) end
  f:write(s)
  f:close()
end

-- Generate every API into out_dir. Returns the list of written file names.
function M.generate(models_dir, out_dir)
  local written, tables = {}, {}
  for _, api in ipairs(sorted_keys(M.APIS)) do
    local src, t = M.render_api(models_dir, api)
    tables[api] = t
    write_file(out_dir .. "/" .. api .. ".lua", src)
    written[#written + 1] = api .. ".lua"
  end
  write_file(out_dir .. "/init.lua", M.render_index(tables))
  written[#written + 1] = "init.lua"
  return written
end

if select("#", ...) >= 2 then
  local models_dir, out_dir = ...
  local ok, err = pcall(M.generate, models_dir, out_dir)
  if not ok then
    io.stderr:write(tostring(err), "\n")
    os.exit(1)
  end
  local n = 0
  for _ in pairs(M.APIS) do n = n + 1 end
  io.stdout:write(string.format("gen_operations: wrote %d API tables + init.lua to %s\n", n, out_dir))
elseif select("#", ...) == 1 or (select("#", ...) == 0 and type(arg) == "table"
    and type(arg[0]) == "string" and arg[0]:match("gen_operations%.lua$")) then
  io.stderr:write("usage: lua5.4 tools/gen_operations.lua <models_dir> <out_dir>\n")
  os.exit(2)
end

return M
