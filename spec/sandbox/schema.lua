-- Spec support: check a sandbox response body against the model's response
-- schema: required properties, types, enums, date-times, arrays, refs and allOf.
-- Used by the sandbox specs so that "responses follow the models" is tested, not
-- assumed. The schemas are the ones `make operations` generates from Amazon's
-- models into lua/spapi/schemas/<api>.lua (a ref = "Name" names a definition), so
-- the check needs nothing outside the repository.
local json = require("cjson.safe").new()

local S = {}

local function is_iso(s)
  return type(s) == "string" and s:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d") ~= nil
end

local function is_array(v)
  if type(v) ~= "table" then return false end
  local n = 0
  for k in pairs(v) do
    if type(k) ~= "number" then return false end
    n = n + 1
  end
  return n == #v
end

local function check(m, schema, v, path, errs, depth)
  if depth > 40 or schema == nil then return end
  if schema.ref then
    return check(m, m.definitions[schema.ref], v, path, errs, depth + 1)
  end
  if schema.allOf then
    for _, s in ipairs(schema.allOf) do check(m, s, v, path, errs, depth + 1) end
  end
  if v == nil then return end
  if v == json.null then
    if not schema["x-nullable"] then errs[#errs + 1] = path .. ": null" end
    return
  end
  local t = schema.type
  if t == "object" or (t == nil and schema.properties) then
    if type(v) ~= "table" or (next(v) ~= nil and is_array(v)) then
      errs[#errs + 1] = path .. ": expected an object"
      return
    end
    for _, r in ipairs(schema.required or {}) do
      if v[r] == nil then errs[#errs + 1] = path .. "." .. r .. ": required property missing" end
    end
    for k, sub in pairs(schema.properties or {}) do
      check(m, sub, v[k], path .. "." .. k, errs, depth + 1)
    end
  elseif t == "array" then
    if not is_array(v) then errs[#errs + 1] = path .. ": expected an array" return end
    for i, x in ipairs(v) do check(m, schema.items, x, path .. "[" .. (i - 1) .. "]", errs, depth + 1) end
  elseif t == "string" then
    if type(v) ~= "string" then errs[#errs + 1] = path .. ": expected a string, got " .. type(v) return end
    if schema.enum then
      local ok = false
      for _, e in ipairs(schema.enum) do if e == v then ok = true end end
      if not ok then errs[#errs + 1] = path .. ": '" .. v .. "' is not in the enum" end
    end
    if schema.format == "date-time" and not is_iso(v) then errs[#errs + 1] = path .. ": not a date-time: " .. v end
  elseif t == "integer" then
    if type(v) ~= "number" or v ~= math.floor(v) then errs[#errs + 1] = path .. ": expected an integer" end
  elseif t == "number" then
    if type(v) ~= "number" then errs[#errs + 1] = path .. ": expected a number" end
  elseif t == "boolean" then
    if type(v) ~= "boolean" then errs[#errs + 1] = path .. ": expected a boolean" end
  end
end

-- (method, path) → api, operation table
local routes
local function find(method, path)
  if not routes then
    routes = {}
    local index = require "spapi.operations"
    for api, modname in pairs(index.apis) do
      local mod = require(type(modname) == "string" and modname or ("spapi.operations." .. api))
      for name, op in pairs(mod.operations) do
        local pat = "^" .. op.path:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"):gsub("{[^}]*}", "[^/]+") .. "$"
        routes[#routes + 1] = { method = op.method, pat = pat, api = api, name = name, op = op,
          literal = #op.path:gsub("{[^}]*}", "") }
      end
    end
    table.sort(routes, function(a, b) return a.literal > b.literal end)
  end
  path = path:match("^[^?]*")
  for _, r in ipairs(routes) do
    if r.method == method and path:match(r.pat) then return r end
  end
end

--- Errors (array of strings) of a 2xx response body against the operation's response schema.
function S.errors(method, path, status, body)
  local r = find(method, path)
  if not r then return { "no operation for " .. method .. " " .. path } end
  local m = require("spapi.schemas." .. r.api)
  local schema = m.operations[r.name] and m.operations[r.name].responses[tostring(status)]
  if not schema then
    -- a declared status without a body schema (the operation's success answer) has nothing to check
    if status == r.op.success then return {} end
    return { r.api .. "." .. r.name .. ": status " .. tostring(status) .. " has no response schema in the model" }
  end
  local errs = {}
  check(m, schema, body, r.api .. "." .. r.name, errs, 0)
  return errs
end

--- Assert-style: raises with every violation.
function S.assert_valid(method, path, status, body)
  local errs = S.errors(method, path, status, body)
  if #errs > 0 then error("response does not follow the model:\n  " .. table.concat(errs, "\n  "), 2) end
end

return S
