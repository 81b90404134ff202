-- Login with Amazon (POST /auth/o2/token), access-token checks on every API
-- call, grantless scopes and restricted data tokens (RDT).
-- Tokens live in the lua_shared_dict "spapi_tokens"; their expiry runs on
-- real time (not the accelerated sandbox clock) so a speeded-up clock never
-- invalidates a client's cached token.
local _M = {}

local util = require "spapi.sandbox.util"
local config = require "spapi.sandbox.config"
local json = util.json
local ngx = ngx
local type, ipairs, pairs, tostring = type, ipairs, pairs, tostring

local KEEP_EXPIRED = 3600 -- remember expired tokens this long (to say "expired")

local SCOPES = {
  ["sellingpartnerapi::notifications"] = true,
  ["sellingpartnerapi::client_credential:rotation"] = true,
  ["sellingpartnerapi::migration"] = true,
}

local function tokens() return ngx.shared.spapi_tokens end

local function lwa_error(status, code, desc)
  return status, { error = code, error_description = desc }
end

local function well_formed(s)
  return type(s) == "string" and #s > 0 and #s <= 4096 and not s:find("[%s%c]")
end

local function sp_of(refresh_token)
  return "SP" .. ngx.md5(refresh_token):sub(1, 12):upper()
end

-- Find the configured client; returns client (or {} when any is accepted), or nil.
local function find_client(cfg, id, secret)
  if not cfg.credentials then return {} end
  for _, c in ipairs(cfg.credentials) do
    if c.client_id == id and c.client_secret == secret then return c end
  end
  return nil
end

local function find_refresh(client, token)
  if not client.refresh_tokens then return sp_of(token) end
  for _, r in ipairs(client.refresh_tokens) do
    if type(r) == "string" then
      if r == token then return sp_of(token) end
    elseif type(r) == "table" then
      local t = r.refresh_token or r.token
      if t == token then return r.selling_partner or r.selling_partner_id or sp_of(token) end
    end
  end
  return nil
end

local function store(token, rec, lifetime)
  local ok, err = tokens():safe_set(token, assert(json.encode(rec)), lifetime + KEEP_EXPIRED)
  if not ok then
    -- forced eviction of old tokens is fine; anything else is a real failure
    ngx.log(ngx.ERR, "sandbox token store: ", err)
    tokens():set(token, assert(json.encode(rec)), lifetime + KEEP_EXPIRED)
  end
end

local function new_token(prefix)
  return prefix .. util.rand_hex(24) .. util.rand_hex(24) .. util.rand_hex(16)
end

local function count_issued()
  ngx.shared.spapi_meta:incr("stat:tokens_issued", 1, 0)
end

--- POST /auth/o2/token (form-encoded or JSON body).
function _M.lwa(raw_body, headers)
  local cfg = config.get()
  local ctype = headers["content-type"] or ""
  if type(ctype) == "table" then ctype = ctype[1] end
  local args
  if ctype:find("json", 1, true) then
    args = json.decode(raw_body or "") or {}
  else
    args = ngx.decode_args(raw_body or "", 100) or {}
  end
  for k, v in pairs(args) do
    if type(v) == "table" then args[k] = v[#v] end
    if v == true then args[k] = "" end
  end
  -- client credentials may also come as HTTP Basic auth
  local basic = headers["authorization"]
  if type(basic) == "string" and basic:match("^[Bb]asic ") then
    local dec = ngx.decode_base64(basic:sub(7)) or ""
    local id, secret = dec:match("^([^:]*):(.*)$")
    if id then
      args.client_id = args.client_id or ngx.unescape_uri(id)
      args.client_secret = args.client_secret or ngx.unescape_uri(secret)
    end
  end
  local grant = args.grant_type
  if not grant or grant == "" then
    return lwa_error(400, "invalid_request", "The request is missing a required parameter : grant_type")
  end
  if grant ~= "refresh_token" and grant ~= "client_credentials" then
    return lwa_error(400, "unsupported_grant_type",
      "The authorization grant type is not supported by the authorization server")
  end
  for _, f in ipairs({ "client_id", "client_secret" }) do
    if not args[f] or args[f] == "" then
      return lwa_error(400, "invalid_request", "The request is missing a required parameter : " .. f)
    end
  end
  if not well_formed(args.client_id) or not well_formed(args.client_secret) then
    return lwa_error(401, "invalid_client", "Client authentication failed")
  end
  local client = find_client(cfg, args.client_id, args.client_secret)
  if not client then
    return lwa_error(401, "invalid_client", "Client authentication failed")
  end
  local lifetime = tonumber(cfg.token_lifetime) or 3600
  local now = ngx.now()
  if grant == "refresh_token" then
    local rt = args.refresh_token
    if not rt or rt == "" then
      return lwa_error(400, "invalid_request", "The request is missing a required parameter : refresh_token")
    end
    local sp = well_formed(rt) and find_refresh(client, rt)
    if not sp then
      return lwa_error(400, "invalid_grant", "The request has an invalid grant parameter : refresh_token")
    end
    local token = new_token("Atza|")
    store(token, { kind = "access", client_id = args.client_id, sp = sp, exp = now + lifetime }, lifetime)
    count_issued()
    return 200, { access_token = token, token_type = "bearer", expires_in = lifetime, refresh_token = rt }
  end
  -- client_credentials (grantless)
  local scope = args.scope
  if not scope or scope == "" then
    return lwa_error(400, "invalid_request", "The request is missing a required parameter : scope")
  end
  local granted = {}
  for s in scope:gmatch("%S+") do
    if not SCOPES[s] then return lwa_error(400, "invalid_scope", "An unknown scope was specified.") end
    granted[#granted + 1] = s
  end
  local token = new_token("Atc|")
  store(token, { kind = "grantless", client_id = args.client_id, sp = "default", scopes = granted,
                 exp = now + lifetime }, lifetime)
  count_issued()
  return 200, { access_token = token, token_type = "bearer", expires_in = lifetime, scope = scope }
end

-- Amazon's answers to a token it will not take: HTTP 403, the same message, the
-- reason (if any) in `details`; a request without a token gets its own code.
local DENIED = "Access to requested resource is denied."
local EXPIRED = "The access token you provided has expired."
local INVALID = "The access token you provided is revoked, malformed or invalid."
local function unauthorized(details, code)
  return 403, { errors = { { code = code or "Unauthorized", message = DENIED, details = details or "" } } }
end
_M.unauthorized = unauthorized

local function template_pattern(path)
  local p = path:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")
  p = p:gsub("{[^}/]*}", "[^/]+")
  return "^" .. p .. "$"
end
_M.template_pattern = template_pattern

local function resource_matches(res, method, path)
  if type(res) ~= "table" or type(res.path) ~= "string" then return false end
  if tostring(res.method or ""):upper() ~= method then return false end
  if res.path == path then return true end
  if res.path:find("{", 1, true) then
    return path:match(template_pattern(res.path)) ~= nil
  end
  return false
end

-- Token records never change once issued: keep decoded ones per worker (until
-- revoke_all, which every worker sees by the generation number).
local cache, cached_n, cache_gen = {}, 0, nil
local function lookup(token)
  local gen = ngx.shared.spapi_meta:get("tokens_gen")
  if gen ~= cache_gen then cache, cached_n, cache_gen = {}, 0, gen end
  local rec = cache[token]
  if rec then return rec end
  local s = tokens():get(token)
  rec = s and json.decode(s) or nil
  if rec then
    if cached_n >= 10000 then cache, cached_n = {}, 0 end
    cache[token] = rec
    cached_n = cached_n + 1
  end
  return rec
end

--- Check the caller of an API operation.
-- Returns ctx { client_id, selling_partner, kind } or nil, status, body.
function _M.check(op, method, path, headers)
  local token = headers["x-amz-access-token"]
  if type(token) == "table" then token = token[#token] end
  if not token or token == "" then return nil, unauthorized("", "MissingAuthenticationToken") end
  local rec = lookup(token)
  if not rec then return nil, unauthorized(INVALID) end
  if rec.exp < ngx.now() then return nil, unauthorized(EXPIRED) end
  if op.grantless then
    if rec.kind ~= "grantless" then return nil, unauthorized() end
    local want = op.scope or op.scopes
    if type(want) == "string" then want = { want } end
    if type(want) == "table" and #want > 0 then
      local ok = false
      for _, w in ipairs(want) do
        for _, s in ipairs(rec.scopes or {}) do
          if s == w then ok = true end
        end
      end
      if not ok then return nil, unauthorized() end
    end
  elseif rec.kind == "grantless" then
    return nil, unauthorized()
  elseif rec.kind == "rdt" then
    -- an RDT is good for the restricted resources it names, nothing else
    if not op.restricted then return nil, unauthorized() end
    local ok = false
    for _, res in ipairs(rec.resources or {}) do
      if resource_matches(res, method, path) then ok = true break end
    end
    if not ok then return nil, unauthorized() end
  elseif op.restricted == true then
    -- restricted operations need an RDT; "conditional" ones (restricted only
    -- for some data, e.g. some report types) also take a plain token here
    return nil, unauthorized()
  end
  return { client_id = rec.client_id, selling_partner = rec.sp, kind = rec.kind, scopes = rec.scopes }
end

--- Forget every token issued: each is then "revoked, malformed or invalid", as
--- after Amazon revokes them (POST /_sandbox/reset {"tokens": true}).
function _M.revoke_all()
  tokens():flush_all()
  ngx.shared.spapi_meta:incr("tokens_gen", 1, 0)
end

--- Issue a restricted data token for resources (already validated).
function _M.issue_rdt(client_id, sp, resources, lifetime)
  lifetime = lifetime or tonumber(config.get().token_lifetime) or 3600
  local token = new_token("Atz.sprdt|")
  store(token, { kind = "rdt", client_id = client_id, sp = sp, resources = resources,
                 exp = ngx.now() + lifetime }, lifetime)
  count_issued()
  return token, lifetime
end

return _M
