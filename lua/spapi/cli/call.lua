-- spapi call <api.operation> [name=value ...] [--body JSON] [--raw]
-- Calls one operation with credentials from the environment / profile and prints
-- the decoded body as JSON. Values that look like JSON (numbers, true/false,
-- [..], {..}) are decoded; name=a,b,c for arrays of strings is passed as a list
-- when the parameter is an array.
local _M = {}

local function usage(out)
  out:write([[
usage: spapi call <api.operation> [name=value ...] [--body JSON] [--profile NAME]

Credentials and endpoints come from the environment (LWA_CLIENT_ID, LWA_CLIENT_SECRET,
LWA_REFRESH_TOKEN, SPAPI_REGION, SPAPI_ENDPOINT, SPAPI_LWA_ENDPOINT) or the profile file.
Prints the response body as JSON; on failure prints the error and exits 1.
]])
end

function _M.run(args)
  local spapi = require "spapi"
  local json = spapi.json
  local op, params, profile = nil, {}, nil
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "-h" or a == "--help" then usage(io.stdout) return 0
    elseif a == "--body" then
      local body, err = json.decode(args[i + 1] or "")
      if body == nil then io.stderr:write("spapi call: --body is not JSON: " .. tostring(err) .. "\n") return 2 end
      params.body = body
      i = i + 1
    elseif a == "--profile" then profile = args[i + 1]; i = i + 1
    elseif not op then op = a
    else
      local k, v = a:match("^([%w_]+)=(.*)$")
      if not k then io.stderr:write("spapi call: expected name=value, got '" .. a .. "'\n") return 2 end
      local decoded = (v:match("^[%[{%d%-]") or v == "true" or v == "false") and json.decode(v)
      params[k] = decoded ~= nil and decoded or v
    end
    i = i + 1
  end
  if not op then usage(io.stderr) return 2 end
  local sp, err = spapi.client{ profile = profile }
  if not sp then io.stderr:write(tostring(err) .. "\n") return 1 end
  local spec = sp:operation(op)
  for _, p in ipairs(spec.params) do
    local v = params[p.name]
    if p.type == "array" and type(v) == "string" then
      local list = {}
      for item in v:gmatch("[^,]+") do list[#list + 1] = item end
      params[p.name] = list
    end
  end
  local ok, body, resp = pcall(sp.call, sp, op, params)
  if not ok then io.stderr:write(tostring(body) .. "\n") return 2 end
  if not body then io.stderr:write(tostring(resp) .. "\n") return 1 end
  io.stdout:write(json.encode(body), "\n")
  return 0
end

return _M
