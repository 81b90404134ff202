-- (method, raw path) → api, operation, path params, from the generated
-- operation tables lua/spapi/operations/<api>.lua.
local _M = {}

local ngx = ngx
local type, ipairs, pairs, tostring, require, pcall = type, ipairs, pairs, tostring, require, pcall
local sort = table.sort

local routes        -- method → array of { pattern, names, api, name, op, literal }
local by_name       -- "api.op" → { api, name, op }
local apis_loaded   -- array of api names

local function compile(path)
  local names = {}
  local literal = #path:gsub("{[^}]*}", "")
  local pat = path:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")
  pat = pat:gsub("{([^}]*)}", function(n)
    names[#names + 1] = n
    return "([^/]+)"
  end)
  return "^" .. pat .. "/?$", names, literal
end

local function api_names(index)
  local list, modules = {}, {}
  local src = type(index) == "table" and (index.apis or index) or {}
  if src[1] ~= nil then
    for _, v in ipairs(src) do
      list[#list + 1] = type(v) == "table" and (v.api or v.name) or v
    end
  else
    for k, v in pairs(src) do
      if type(k) == "string" then
        list[#list + 1] = k
        if type(v) == "string" then modules[k] = v end
      end
    end
    sort(list)
  end
  return list, modules
end

function _M.load()
  routes, by_name, apis_loaded = {}, {}, {}
  local ok, index = pcall(require, "spapi.operations")
  if not ok then
    ngx.log(ngx.ERR, "sandbox: cannot load spapi.operations: ", index)
    index = {}
  end
  local names, modules = api_names(index)
  for _, api in ipairs(names) do
    local ok2, mod = pcall(require, modules[api] or ("spapi.operations." .. api))
    if ok2 and type(mod) == "table" and type(mod.operations) == "table" then
      apis_loaded[#apis_loaded + 1] = api
      for name, op in pairs(mod.operations) do
        local pattern, names, literal = compile(op.path)
        local m = op.method:upper()
        routes[m] = routes[m] or {}
        local r = { pattern = pattern, names = names, api = api, name = name, op = op, literal = literal }
        routes[m][#routes[m] + 1] = r
        by_name[api .. "." .. name] = r
      end
    else
      ngx.log(ngx.ERR, "sandbox: cannot load spapi.operations.", api, ": ", tostring(mod))
    end
  end
  for _, list in pairs(routes) do
    sort(list, function(a, b)
      if a.literal ~= b.literal then return a.literal > b.literal end
      return a.pattern < b.pattern
    end)
  end
end

function _M.apis()
  if not routes then _M.load() end
  return apis_loaded
end

--- Match a request; raw_path is the undecoded path (no query string).
-- Returns route, params (url-decoded) or nil.
function _M.match(method, raw_path)
  if not routes then _M.load() end
  local list = routes[method]
  if not list then return nil end
  for _, r in ipairs(list) do
    local caps = { raw_path:match(r.pattern) }
    if caps[1] ~= nil then
      local params = {}
      for i, n in ipairs(r.names) do params[n] = ngx.unescape_uri(caps[i]) end
      return r, params
    end
  end
  return nil
end

--- "api.operationId" → route or nil
function _M.find(fullname)
  if not routes then _M.load() end
  return by_name[fullname]
end

--- Required query/body parameters present? Returns nil or a message.
function _M.validate(op, query, has_body)
  for _, p in ipairs(op.params or {}) do
    local where = p["in"]
    if p.required then
      if where == "query" and (query[p.name] == nil or query[p.name] == "") then
        return "Missing required parameter: " .. p.name
      elseif where == "body" and not has_body then
        return "Missing required request body"
      end
    end
    if where == "query" and p.enum and query[p.name] ~= nil and p.type ~= "array" then
      local v, ok = query[p.name], false
      for _, e in ipairs(p.enum) do
        if e == v then ok = true break end
      end
      if not ok then return "Invalid value for parameter " .. p.name .. ": " .. tostring(v) end
    end
  end
  return nil
end

return _M
