-- Tokens API 2021-03-01: createRestrictedDataToken.
local _M = {}

local auth = require "spapi.sandbox.auth"
local router = require "spapi.sandbox.router"

local METHODS = { GET = true, PUT = true, POST = true, DELETE = true, PATCH = true }

-- Is (method, path) a restricted operation? path may be concrete or the generic
-- path with {placeholders}.
local function restricted_route(method, path)
  local route = router.match(method, path)
  if route then return route.op.restricted and route or nil end -- true or "conditional"
  if path:find("{", 1, true) then
    local r = router.match(method, (path:gsub("{[^}/]*}", "x")))
    if r and r.op.restricted then return r end
  end
  return nil
end

_M.handlers = {}

function _M.handlers.createRestrictedDataToken(req, sb)
  local body = req.body
  if type(body) ~= "table" or type(body.restrictedResources) ~= "table" or #body.restrictedResources == 0 then
    return sb.err(400, "InvalidInput", "restrictedResources is required and must not be empty.")
  end
  local resources = {}
  for i, r in ipairs(body.restrictedResources) do
    if type(r) ~= "table" or type(r.method) ~= "string" or type(r.path) ~= "string" then
      return sb.err(400, "InvalidInput", "restrictedResources[" .. (i - 1) .. "] needs method and path.")
    end
    local method = r.method:upper()
    if not METHODS[method] then
      return sb.err(400, "InvalidInput", "Invalid method " .. r.method .. " in restrictedResources.")
    end
    if r.path:sub(1, 1) ~= "/" or r.path:find("?", 1, true) then
      return sb.err(400, "InvalidInput", "Invalid path " .. r.path .. " in restrictedResources.")
    end
    if not restricted_route(method, r.path) then
      return sb.err(400, "InvalidInput", "The path " .. r.path .. " (" .. method .. ") is not a restricted operation.")
    end
    if r.dataElements ~= nil and type(r.dataElements) ~= "table" then
      return sb.err(400, "InvalidInput", "dataElements must be an array.")
    end
    resources[#resources + 1] = { method = method, path = r.path, dataElements = r.dataElements }
  end
  local token, lifetime = auth.issue_rdt(req.client_id, req.selling_partner, resources)
  return 200, { restrictedDataToken = token, expiresIn = lifetime }
end

return _M
