-- Merge the models of spapi's APIs into one Swagger 2.0 document, so that one Prism
-- process serves all of them (Prism's CLI takes exactly one document).
--
--   lua5.4 tools/merge_models.lua [--strict] [--require-token] OUT.json MODELS_DIR
--
-- The models are the ones tools/gen_operations.lua generates from (one file per API,
-- found in MODELS_DIR the same way). Their paths are disjoint, but they reuse
-- definition names with different shapes (Error, Address, ...): every definition is
-- renamed "<model file stem>.<Name>" and every local $ref rewritten. The model's
-- consumes/produces are copied onto each of its operations; an operationId seen
-- before gets the stem as a prefix.
--
-- --strict: every object schema that lists properties and says nothing about
--   additionalProperties gets additionalProperties = false, so Prism reports unknown
--   (misspelled) fields; Amazon's models never close their objects.
-- --require-token: an apiKey scheme for the x-amz-access-token header is required on
--   every operation, so Prism answers 401 when it is missing (the models declare none).
--
-- Needs spapi.json (the C core built: `make`), which keeps empty arrays as arrays.
local json = require "spapi.json"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local GEN = assert(loadfile(here .. "gen_operations.lua"))()

local METHODS = { "get", "put", "post", "delete", "options", "head", "patch" }
local TOP_KEYS = { swagger = true, info = true, host = true, schemes = true, consumes = true,
  produces = true, paths = true, definitions = true, basePath = true }
local NOT_SCHEMAS = { example = true, examples = true, ["x-amzn-api-sandbox"] = true }

local function is_object(v) return type(v) == "table" and v ~= json.null and not json.is_array(v) end

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks)
  return ks
end

local function rewrite_refs(node, prefix)
  if type(node) ~= "table" or node == json.null then return node end
  local out = json.is_array(node) and json.array() or {}
  for k, v in pairs(node) do
    if k == "$ref" and type(v) == "string" and v:find("^#/definitions/") then
      out[k] = "#/definitions/" .. prefix .. v:sub(#"#/definitions/" + 1)
    else
      out[k] = rewrite_refs(v, prefix)
    end
  end
  return out
end

local function close_objects(node)
  if type(node) ~= "table" or node == json.null then return end
  if is_object(node.properties) and node.additionalProperties == nil then node.additionalProperties = false end
  for k, v in pairs(node) do
    if k == "properties" and is_object(v) then
      for _, sub in pairs(v) do close_objects(sub) end
    elseif not NOT_SCHEMAS[k] then
      close_objects(v)
    end
  end
end

local function read(path)
  local f, err = io.open(path, "rb")
  if not f then error("merge_models: cannot read " .. path .. ": " .. tostring(err), 0) end
  local s = f:read("*a")
  f:close()
  local doc, derr = json.decode(s)
  if not doc then error("merge_models: " .. path .. " is not JSON: " .. tostring(derr), 0) end
  return doc
end

local function merge(models_dir, strict, require_token)
  local merged = {
    swagger = "2.0",
    info = { title = "SP-API merged models (spapi conformance fixture)", version = "merged" },
    host = "sellingpartnerapi-na.amazon.com",
    schemes = { "https" },
    consumes = { "application/json" },
    produces = { "application/json" },
    paths = {},
    definitions = {},
  }
  local seen_ops, files = {}, {}
  for _, api in ipairs(sorted_keys(GEN.APIS)) do files[#files + 1] = GEN.model_file(models_dir, api) end
  for _, file in ipairs(files) do
    local doc = read(models_dir .. "/" .. file)
    local stem = file:gsub("%.json$", "")
    local prefix = stem .. "."
    for key in pairs(doc) do
      if not TOP_KEYS[key] then error("merge_models: " .. file .. ": unsupported top-level key " .. key, 0) end
    end
    for name, schema in pairs(doc.definitions or {}) do
      merged.definitions[prefix .. name] = rewrite_refs(schema, prefix)
    end
    for _, path in ipairs(sorted_keys(doc.paths)) do
      if merged.paths[path] then error("merge_models: " .. file .. ": path " .. path .. " is defined twice", 0) end
      local item = rewrite_refs(doc.paths[path], prefix)
      for _, m in ipairs(METHODS) do
        local op = item[m]
        if is_object(op) then
          op.consumes = op.consumes or doc.consumes or { "application/json" }
          op.produces = op.produces or doc.produces or { "application/json" }
          if op.operationId and seen_ops[op.operationId] then op.operationId = stem .. "." .. op.operationId end
          if op.operationId then seen_ops[op.operationId] = true end
        end
      end
      merged.paths[path] = item
    end
  end
  if strict then
    close_objects(merged.definitions)
    close_objects(merged.paths)
  end
  if require_token then
    merged.securityDefinitions = {
      LwaAccessToken = { type = "apiKey", ["in"] = "header", name = "x-amz-access-token" },
    }
    merged.security = { { LwaAccessToken = json.array() } }
  end
  return merged, files
end

local args, strict, require_token = { ... }, false, false
while args[1] == "--strict" or args[1] == "--require-token" do
  if table.remove(args, 1) == "--strict" then strict = true else require_token = true end
end
if #args ~= 2 then
  io.stderr:write("usage: lua5.4 tools/merge_models.lua [--strict] [--require-token] OUT.json MODELS_DIR\n")
  os.exit(2)
end
local ok, merged, files = pcall(merge, args[2], strict, require_token)
if not ok then
  io.stderr:write(tostring(merged), "\n")
  os.exit(1)
end
local out = assert(json.encode(merged))
local f = assert(io.open(args[1], "wb"))
f:write(out)
f:close()
local npaths = 0
for _ in pairs(merged.paths) do npaths = npaths + 1 end
print(string.format("merge_models: wrote %s: %d paths from %d models", args[1], npaths, #files))
