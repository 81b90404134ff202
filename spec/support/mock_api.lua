-- A scripted SP-API stand-in that runs inside a real nginx (see H.mock_api()).
-- It speaks LWA (POST /auth/o2/token), issues RDTs, checks access tokens, and
-- answers API paths from per-path queues of scripted responses; with nothing
-- queued it echoes the request. Every API request is logged for assertions.
local cjson = require "cjson.safe"
local _M = {}

local dict = ngx.shared.mock

local function getj(key, default)
  local v = dict:get(key)
  if v == nil then return default end
  return cjson.decode(v)
end
local function setj(key, v) dict:set(key, cjson.encode(v)) end

local function reply(status, body, headers)
  ngx.status = status
  for k, v in pairs(headers or {}) do ngx.header[k] = v end
  if body ~= nil then
    if type(body) == "table" then
      ngx.header["Content-Type"] = "application/json"
      body = cjson.encode(body)
    end
    ngx.print(body)
  end
  return ngx.exit(status)
end

local function errbody(code, message, details)
  return { errors = { { code = code, message = message, details = details or "" } } }
end

local function form(body)
  local t = {}
  for k, v in (body or ""):gmatch("([^&=]+)=([^&]*)") do t[ngx.unescape_uri(k)] = ngx.unescape_uri(v) end
  return t
end

local function lwa()
  ngx.req.read_body()
  dict:incr("lwa_calls", 1, 0)
  local f = form(ngx.req.get_body_data())
  if f.client_secret ~= dict:get("client_secret") and dict:get("client_secret") then
    return reply(401, { error = "invalid_client", error_description = "Client authentication failed" })
  end
  if f.grant_type == "refresh_token" and f.refresh_token == "Atzr|revoked" then
    return reply(400, { error = "invalid_grant", error_description = "The request has an invalid grant parameter : refresh_token" })
  end
  if f.grant_type == "client_credentials" and not f.scope then
    return reply(400, { error = "invalid_scope", error_description = "scope missing" })
  end
  local n = dict:incr("token_seq", 1, 0)
  local token = "Atza|mock-token-" .. n
  local life = dict:get("expires_in") or 3600
  -- "token_ttl" makes the server forget tokens sooner than it says (expired-token path)
  dict:set("tok:" .. token, f.grant_type == "client_credentials" and ("cc:" .. f.scope) or "rt",
    dict:get("token_ttl") or life)
  return reply(200, { access_token = token, token_type = "bearer", expires_in = life,
    refresh_token = f.refresh_token })
end

local function rdt(token)
  ngx.req.read_body()
  local body = cjson.decode(ngx.req.get_body_data() or "") or {}
  dict:incr("rdt_calls", 1, 0)
  local n = dict:incr("rdt_seq", 1, 0)
  local res = body.restrictedResources and body.restrictedResources[1] or {}
  local t = "Atz.sprdt|mock-rdt-" .. n
  dict:set("rdt:" .. t, (res.method or "") .. " " .. (res.path or ""), 3600)
  return reply(200, { restrictedDataToken = t, expiresIn = 3600 })
end

-- does an RDT's resource (method + generic or exact path) cover this request?
local function rdt_covers(resource, method, path)
  local m, p = resource:match("^(%S*) (.*)$")
  if m ~= method then return false end
  local pat = "^" .. p:gsub("[%-%.%+%[%]%(%)%$%^%%%?%*]", "%%%0"):gsub("{[^}]+}", "[^/]+") .. "$"
  return path:match(pat) ~= nil
end

local function control(uri)
  ngx.req.read_body()
  local body = cjson.decode(ngx.req.get_body_data() or "{}") or {}
  if uri == "/_mock/reset" then
    dict:flush_all()
    for k, v in pairs(body) do dict:set(k, v) end
    return reply(200, { ok = true })
  elseif uri == "/_mock/script" then
    local key = "script:" .. body.path
    local q = getj(key, {})
    for _, r in ipairs(body.responses or {}) do q[#q + 1] = r end
    setj(key, q)
    local paths = getj("script_paths", {})
    local seen = false
    for _, p in ipairs(paths) do if p == body.path then seen = true end end
    if not seen then paths[#paths + 1] = body.path; setj("script_paths", paths) end
    return reply(200, { queued = #q })
  elseif uri == "/_mock/log" then
    return reply(200, getj("log", {}))
  elseif uri == "/_mock/counters" then
    return reply(200, { lwa_calls = dict:get("lwa_calls") or 0, rdt_calls = dict:get("rdt_calls") or 0,
      requests = dict:get("requests") or 0 })
  end
  return reply(404, { error = "unknown control" })
end

local function next_scripted(path)
  for _, p in ipairs(getj("script_paths", {})) do
    if path:match(p) then
      local q = getj("script:" .. p, {})
      if #q > 0 then
        local r = table.remove(q, 1)
        setj("script:" .. p, q)
        return r
      end
    end
  end
end

function _M.handle()
  local uri = ngx.var.uri
  local method = ngx.req.get_method()
  if uri:sub(1, 7) == "/_mock/" then return control(uri) end
  if uri == "/auth/o2/token" then return lwa() end

  local token = ngx.var.http_x_amz_access_token
  ngx.req.read_body()
  local raw = ngx.req.get_body_data()
  local log = getj("log", {})
  local hdrs = ngx.req.get_headers()
  log[#log + 1] = { method = method, path = uri, query = ngx.var.args or "", body = raw,
    token = token, user_agent = hdrs["user-agent"], authorization = hdrs["authorization"],
    amz_date = hdrs["x-amz-date"] }
  setj("log", log)
  dict:incr("requests", 1, 0)

  if uri == "/tokens/2021-03-01/restrictedDataToken" then
    if not token or not dict:get("tok:" .. token) then
      return reply(403, errbody("Unauthorized", "Access to requested resource is denied."))
    end
    return rdt(token)
  end

  local restricted = dict:get("restricted_prefix")
  if token and token:find("^Atz%.sprdt|") then
    local res = dict:get("rdt:" .. token)
    if not res or not rdt_covers(res, method, uri) then
      return reply(403, errbody("Unauthorized", "Access to requested resource is denied."))
    end
  elseif not token or not dict:get("tok:" .. token) then
    -- Amazon's shapes: the reason in details, a missing token its own code
    if not token then
      return reply(403, errbody("MissingAuthenticationToken", "Access to requested resource is denied."))
    end
    return reply(403, errbody("Unauthorized", "Access to requested resource is denied.",
      "The access token you provided has expired."))
  elseif restricted and uri:sub(1, #restricted) == restricted then
    return reply(403, errbody("Unauthorized", "Access to requested resource is denied."))
  end

  local r = next_scripted(uri)
  if r then
    if r.delay then ngx.sleep(r.delay) end
    if r.close then
      ngx.header["Content-Length"] = 1000
      ngx.header["Content-Type"] = "application/json"
      ngx.print('{"partial":')
      ngx.flush(true)
      return ngx.exit(444)
    end
    return reply(r.status or 200, r.raw or r.body or {}, r.headers)
  end
  local raw_path = ngx.var.request_uri:match("^[^?]*") -- as sent, before nginx decodes it
  return reply(200, { echo = { method = method, path = raw_path, query = ngx.var.args or "",
    body = raw and cjson.decode(raw) or cjson.null } }, { ["x-amzn-RequestId"] = "req-" .. dict:get("requests") })
end

return _M
