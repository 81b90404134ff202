#!/usr/bin/env lua5.4
-- tools/gen_schemas.lua — generate lua/spapi/schemas/*.lua, the models' schemas
-- as plain Lua data, from Amazon's Swagger 2.0 models.
--
--   lua5.4 tools/gen_schemas.lua <models_dir> <out_dir>    (make operations MODELS=...)
--
-- One file per API of tools/gen_operations.lua's APIS list:
--
--   return {
--     api = "feeds", model = "feeds_2021-06-30.json",
--     definitions = { Name = schema, ... },        -- every definition of the model
--     operations = { opName = { body = schema, responses = { ["200"] = schema, ... } } },
--   }
--
-- A schema keeps the constraint keywords of the model under their JSON-Schema
-- names (type, format, enum, required, properties, items, additionalProperties,
-- pattern, minLength, maxLength, minimum, maximum, exclusiveMinimum,
-- exclusiveMaximum, minItems, maxItems, uniqueItems, allOf, x-nullable); a
-- "$ref": "#/definitions/Name" becomes ref = "Name". Descriptions and examples
-- are left out. spapi.validate checks request bodies against these, the sandbox
-- specs check response bodies.
--
-- Loaded without arguments (loadfile(path)()) it returns the generator as a
-- module ({ generate = function(models_dir, out_dir) -> written files,
-- render_api = function(models_dir, api) -> source }); output is deterministic
-- (keys sorted, lists in model order, numbers as gen_operations prints them).

local cjson = require("cjson.safe").new()

local here = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./")
local GEN = assert(loadfile(here .. "gen_operations.lua"))()

local M = {}

local KEYWORDS = {
  "type", "format", "enum", "required", "properties", "items", "additionalProperties", "pattern",
  "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
  "minItems", "maxItems", "uniqueItems", "allOf", "x-nullable",
}
local METHODS = { "get", "put", "post", "delete", "patch", "head", "options" }

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks, function(a, b) return tostring(a) < tostring(b) end)
  return ks
end

local function copy_list(a)
  local out = {}
  for i, v in ipairs(a) do out[i] = v end
  return out
end

-- A model schema → its Lua data (constraint keywords only).
local function convert(s, where)
  if type(s) ~= "table" then error("gen_schemas: " .. where .. ": a schema must be an object", 0) end
  if s["$ref"] then
    local name = s["$ref"]:match("^#/definitions/(.+)$")
    if not name then error("gen_schemas: " .. where .. ": unsupported $ref " .. tostring(s["$ref"]), 0) end
    return { ref = name }
  end
  local out = {}
  for _, k in ipairs(KEYWORDS) do
    local v = s[k]
    if v ~= nil then
      if k == "properties" then
        local props = {}
        for _, name in ipairs(sorted_keys(v)) do props[name] = convert(v[name], where .. "." .. name) end
        out[k] = props
      elseif k == "items" then
        out[k] = convert(v, where .. "[]")
      elseif k == "additionalProperties" then
        out[k] = type(v) == "table" and convert(v, where .. ".*") or v
      elseif k == "allOf" then
        local list = {}
        for i, sub in ipairs(v) do list[i] = convert(sub, where .. ".allOf") end
        out[k] = list
      elseif k == "enum" or k == "required" then
        out[k] = copy_list(v)
      else
        out[k] = v
      end
    end
  end
  return out
end

-- The schema table of one API, and the model file used.
function M.build_api(models_dir, api)
  local file = GEN.model_file(models_dir, api)
  local f, err = io.open(models_dir .. "/" .. file, "rb")
  if not f then error("gen_schemas: cannot read " .. file .. ": " .. tostring(err), 0) end
  local doc, derr = cjson.decode(f:read("*a"))
  f:close()
  if not doc then error("gen_schemas: " .. file .. " is not JSON: " .. tostring(derr), 0) end

  local defs = {}
  for name, s in pairs(doc.definitions or {}) do defs[name] = convert(s, name) end
  local ops = {}
  for _, path in pairs(doc.paths or {}) do
    for _, m in ipairs(METHODS) do
      local op = path[m]
      if type(op) == "table" and op.operationId then
        local o = { responses = {} }
        local params = {}
        for _, list in ipairs({ path.parameters or {}, op.parameters or {} }) do
          for _, p in ipairs(list) do params[#params + 1] = p end
        end
        for _, p in ipairs(params) do
          if p["$ref"] then p = doc.parameters[p["$ref"]:match("^#/parameters/(.+)$")] end
          if p["in"] == "body" and p.schema then o.body = convert(p.schema, op.operationId .. ".body") end
        end
        for code, r in pairs(op.responses or {}) do
          if type(r) == "table" and r.schema then
            o.responses[tostring(code)] = convert(r.schema, op.operationId .. "." .. tostring(code))
          end
        end
        ops[op.operationId] = o
      end
    end
  end
  -- every ref names a definition
  local function check(s, where)
    if s.ref and not defs[s.ref] then error("gen_schemas: " .. file .. ": " .. where .. ": no definition " .. s.ref, 0) end
    for _, sub in pairs(s.properties or {}) do check(sub, where) end
    if s.items then check(s.items, where) end
    if type(s.additionalProperties) == "table" then check(s.additionalProperties, where) end
    for _, sub in ipairs(s.allOf or {}) do check(sub, where) end
  end
  for name, s in pairs(defs) do check(s, name) end
  for name, o in pairs(ops) do
    if o.body then check(o.body, name) end
    for _, s in pairs(o.responses) do check(s, name) end
  end
  return { api = api, model = file, definitions = defs, operations = ops }, file
end

-- serialiser: keys sorted, a table holding no table on one line
local fmt_string, fmt_number = GEN.fmt_string, GEN.fmt_number
local IDENT = "^[%a_][%w_]*$"
local RESERVED = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or repeat
  return then true until while]]):gmatch("%a+") do RESERVED[w] = true end

local function fmt_key(k)
  if k:match(IDENT) and not RESERVED[k] then return k end
  return "[" .. fmt_string(k) .. "]"
end

local function fmt(v, indent)
  local t = type(v)
  if t == "string" then return fmt_string(v)
  elseif t == "number" then return fmt_number(v)
  elseif t == "boolean" then return tostring(v) end
  if next(v) == nil then return "{}" end
  local flat = true
  for _, x in pairs(v) do if type(x) == "table" then flat = false end end
  local parts = {}
  if #v > 0 then -- a list (enum, required, allOf)
    for i, x in ipairs(v) do parts[i] = fmt(x, indent .. "  ") end
  else
    for _, k in ipairs(sorted_keys(v)) do parts[#parts + 1] = fmt_key(k) .. " = " .. fmt(v[k], indent .. "  ") end
  end
  if flat then return "{ " .. table.concat(parts, ", ") .. " }" end
  return "{\n" .. indent .. "  " .. table.concat(parts, ",\n" .. indent .. "  ") .. ",\n" .. indent .. "}"
end

function M.render_api(models_dir, api)
  local t, file = M.build_api(models_dir, api)
  return "-- GENERATED by tools/gen_schemas.lua from " .. file .. "; do not edit.\n" ..
         "-- Regenerate with `make operations MODELS=<models dir>`.\n" ..
         "-- definitions: the model's schemas by name (ref = \"Name\" refers to one);\n" ..
         "-- operations: each operation's body schema and response schemas by status.\n" ..
         "return " .. fmt(t, "") .. "\n", t
end

function M.generate(models_dir, out_dir)
  local written = {}
  for _, api in ipairs(sorted_keys(GEN.APIS)) do
    local src = M.render_api(models_dir, api)
    local f, err = io.open(out_dir .. "/" .. api .. ".lua", "wb")
    if not f then error("gen_schemas: cannot write " .. out_dir .. "/" .. api .. ".lua: " .. tostring(err), 0) end
    f:write(src)
    f:close()
    written[#written + 1] = api .. ".lua"
  end
  return written
end

if select("#", ...) >= 2 then
  local models_dir, out_dir = ...
  local ok, res = pcall(M.generate, models_dir, out_dir)
  if not ok then
    io.stderr:write(tostring(res), "\n")
    os.exit(1)
  end
  io.stdout:write(string.format("gen_schemas: wrote %d schema tables to %s\n", #res, out_dir))
elseif select("#", ...) == 1 or (select("#", ...) == 0 and type(arg) == "table"
    and type(arg[0]) == "string" and arg[0]:match("gen_schemas%.lua$")) then
  io.stderr:write("usage: lua5.4 tools/gen_schemas.lua <models_dir> <out_dir>\n")
  os.exit(2)
end

return M
