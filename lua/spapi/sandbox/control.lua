-- The control API under /_sandbox/ (no token needed):
--   GET  /_sandbox/health                      → { ok = true }
--   POST /_sandbox/reset      {seed=,speed=}   state cleared, programs re-seeded, clock restarted, counters zeroed
--   POST /_sandbox/seed       {inventory=[...], ...}   program data (each program's control(sb, "seed", data))
--   GET|POST /_sandbox/clock  {speed=N} | {advance=s} | {now=t}
--   GET  /_sandbox/stats      → { requests = { ["api.op"] = N }, requests_total, tokens_issued,
--                                 token_requests (POSTs to the LWA endpoint, answered or not), throttled,
--                                 faults_injected, server_errors, counters = { [name] = { [key] = N } } }
--                                 counters: what programs count per object (count(name, key) below), e.g.
--                                 VDF per purchase order: vdf.acknowledgements / vdf.acknowledged (requests
--                                 naming the PO / accepted ones), vdf.label_requests / vdf.labelled,
--                                 vdf.confirmations / vdf.confirmed, vdf.invoices / vdf.invoiced
--   GET|POST|DELETE /_sandbox/faults[/<id>]  (see faults.lua)
--   POST /_sandbox/credentials {credentials=[{client_id=,client_secret=,refresh_tokens={...}}]} (null = accept any)
--   GET|POST /_sandbox/config {token_lifetime=, rate_scale=, seed=, speed=, limits=}
--                             limits = { ["api.op"] = { rate =, burst = } }: the rate and burst granted
--                             to an operation (not scaled; null clears; a reset clears them too)
--   POST /_sandbox/programs/<api>/<action> → the program's control(sb, action, args)
--   POST /_sandbox/documents {contentType=}    → { documentId, url } an upload destination (PUT the bytes to url)
--   GET  /_sandbox/documents/<id>              → { contentType, compressed, text } (text gunzipped)
--   GET  /_sandbox/state/<kind>[/<id>]         (debugging: program documents)
local _M = {}

local util = require "spapi.sandbox.util"
local config = require "spapi.sandbox.config"
local faults = require "spapi.sandbox.faults"
local router = require "spapi.sandbox.router"
local state = require "spapi.sandbox.state"
local json = util.json
local ngx = ngx
local type, pairs, ipairs, tostring, tonumber, pcall = type, pairs, ipairs, tostring, tonumber, pcall

local function bad(msg)
  return 400, { errors = { { code = "InvalidInput", message = msg, details = "" } } }
end

local function read_json()
  ngx.req.read_body()
  local s = ngx.req.get_body_data()
  if not s then
    local f = ngx.req.get_body_file()
    if f then
      local h = io.open(f, "rb")
      if h then s = h:read("*a") h:close() end
    end
  end
  if not s or s:match("^%s*$") then return {} end
  local v, err = json.decode(s)
  if v == nil then return nil, "control API body is not valid JSON: " .. tostring(err) end
  return v
end

--- count(name, key[, n]): add n (default 1) to the counter `name` of `key` (a PO
--- number, an order id); reset clears them, /_sandbox/stats shows them.
function _M.count(name, key, n)
  ngx.shared.spapi_meta:incr("stat:count:" .. name .. "|" .. tostring(key), n or 1, 0)
end

local function stats()
  local m = ngx.shared.spapi_meta
  local out = { requests = {}, requests_total = 0, counters = {} }
  for _, k in ipairs(m:get_keys(0)) do
    local op = k:match("^stat:req:(.+)$")
    if op then
      local n = m:get(k) or 0
      out.requests[op] = n
      out.requests_total = out.requests_total + n
    end
    local name, key = k:match("^stat:count:([^|]+)|(.*)$")
    if name then
      out.counters[name] = out.counters[name] or {}
      out.counters[name][key] = m:get(k) or 0
    end
  end
  out.tokens_issued = m:get("stat:tokens_issued") or 0
  out.token_requests = m:get("stat:token_requests") or 0
  out.throttled = m:get("stat:throttled") or 0
  out.faults_injected = m:get("stat:faults_injected") or 0
  out.server_errors = m:get("stat:server_errors") or 0
  return out
end
_M.stats = stats

local function valid_credentials(list)
  if list == nil or list == json.null or list == false then return true end
  if type(list) ~= "table" then return false, "credentials must be an array" end
  for i, c in ipairs(list) do
    if type(c) ~= "table" or type(c.client_id) ~= "string" or type(c.client_secret) ~= "string" then
      return false, "credentials[" .. i .. "] needs client_id and client_secret strings"
    end
    if c.refresh_tokens ~= nil and type(c.refresh_tokens) ~= "table" then
      return false, "credentials[" .. i .. "].refresh_tokens must be an array"
    end
  end
  return true
end

-- limits = { ["api.op"] = { rate = > 0, burst = >= 1 } } or null
local function valid_limits(l)
  if l == json.null then return true end
  if type(l) ~= "table" then return nil, "limits must be an object of \"api.operationId\": {rate=, burst=}" end
  for name, g in pairs(l) do
    if not router.find(name) then return nil, "limits: unknown operation " .. tostring(name) end
    local r, b = type(g) == "table" and tonumber(g.rate), type(g) == "table" and tonumber(g.burst)
    if not r or r <= 0 or not b or b < 1 then
      return nil, "limits: " .. name .. " needs rate > 0 and burst >= 1"
    end
  end
  return true
end

local function public_config()
  local cfg = config.get()
  local creds = json.null
  if cfg.credentials then
    creds = {}
    for i, c in ipairs(cfg.credentials) do
      creds[i] = { client_id = c.client_id, refresh_tokens = c.refresh_tokens and #c.refresh_tokens or json.null }
    end
  end
  return { token_lifetime = cfg.token_lifetime, rate_scale = cfg.rate_scale, seed = cfg.seed,
           speed = cfg.speed, credentials = creds, limits = cfg.limits }
end

function _M.handle(method, sub, core)
  local sb = core.sb
  local args, jerr
  if method == "POST" or method == "PUT" or method == "DELETE" then
    args, jerr = read_json()
    if not args then return bad(jerr) end
  end
  local parts = {}
  for seg in sub:gmatch("[^/]+") do parts[#parts + 1] = ngx.unescape_uri(seg) end
  local what = parts[1] or ""

  if what == "health" or what == "" then
    return 200, { ok = true, clock = core.clock_info() }
  elseif what == "reset" and method == "POST" then
    core.reset(args)
    return 200, { ok = true, clock = core.clock_info() }
  elseif what == "stats" and method == "GET" then
    return 200, stats()
  elseif what == "clock" then
    if method == "GET" then return 200, core.clock_info() end
    if method ~= "POST" then return 405, { errors = { { code = "MethodNotAllowed", message = "use GET or POST" } } } end
    local info, err = core.set_clock(args)
    if not info then return bad(err) end
    return 200, info
  elseif what == "faults" then
    if method == "GET" then return 200, { faults = json.array(util.copy(faults.list())) } end
    if method == "DELETE" then
      if parts[2] then
        if not faults.clear(parts[2]) then return 404, { errors = { { code = "NotFound", message = "no fault " .. parts[2] } } } end
      else
        faults.clear()
      end
      return 200, { ok = true }
    end
    if method == "POST" then
      local specs = args.faults or { args }
      local added = {}
      local known = function(name) return router.find(name) ~= nil end
      for _, spec in ipairs(specs) do
        local f, err = faults.add(spec, known)
        if not f then return bad(err) end
        added[#added + 1] = f
      end
      if args.faults then return 200, { faults = added } end
      return 200, added[1]
    end
  elseif what == "credentials" and method == "POST" then
    local list = args.credentials
    if list == nil and args[1] then list = args end
    local ok, err = valid_credentials(list)
    if not ok then return bad(err) end
    local changes = { credentials = (list == nil) and json.null or list }
    if args.token_lifetime then changes.token_lifetime = tonumber(args.token_lifetime) end
    config.set(changes)
    return 200, public_config()
  elseif what == "config" then
    if method == "GET" then return 200, public_config() end
    if method ~= "POST" then return 405, { errors = { { code = "MethodNotAllowed", message = "use GET or POST" } } } end
    local changes = {}
    for _, k in ipairs({ "token_lifetime", "rate_scale", "seed" }) do
      if args[k] ~= nil then
        changes[k] = tonumber(args[k])
        if not changes[k] or changes[k] < 0 then return bad(k .. " must be a number >= 0") end
      end
    end
    if args.limits ~= nil then
      local ok, err = valid_limits(args.limits)
      if not ok then return bad(err) end
      changes.limits = args.limits
    end
    if args.credentials ~= nil then
      local ok, err = valid_credentials(args.credentials)
      if not ok then return bad(err) end
      changes.credentials = args.credentials
    end
    config.set(changes)
    if args.speed ~= nil then
      local _, err = core.set_clock({ speed = args.speed })
      if err then return bad(err) end
    end
    return 200, public_config()
  elseif what == "seed" and method == "POST" then
    local results, handled = {}, false
    local progs = {}
    for _, api in ipairs(router.apis()) do
      local p = sb.program(api)
      if p and p.control then progs[#progs + 1] = { api, p } end
    end
    local first_err
    for _, ap in ipairs(progs) do
      local ok, st, body = pcall(ap[2].control, sb, "seed", args)
      if ok and tonumber(st) and tonumber(st) < 300 then
        handled = true
        results[ap[1]] = body or true
      elseif not ok then
        ngx.log(ngx.ERR, "sandbox: seed of ", ap[1], " failed: ", tostring(st))
        first_err = first_err or { 500, { errors = { { code = "InternalFailure",
          message = "seeding " .. ap[1] .. " failed: " .. tostring(st) } } } }
      elseif tonumber(st) and tonumber(st) == 400 then
        -- a program that knows the data but rejects it; others answer 404 (not mine)
        first_err = first_err or { 400, body }
      end
    end
    if not handled then
      if first_err then return first_err[1], first_err[2] end
      return bad("no program accepted this seed data")
    end
    return 200, { ok = true, programs = results }
  elseif what == "programs" and method == "POST" then
    local api, action = parts[2], parts[3]
    if not api or not action then return bad("use /_sandbox/programs/<api>/<action>") end
    local p = sb.program(api)
    if not p then return 404, { errors = { { code = "NotFound", message = "no sandbox program " .. api } } } end
    if not p.control then return 404, { errors = { { code = "NotFound", message = api .. " has no control actions" } } } end
    local ok, st, body, headers = pcall(p.control, sb, action, args)
    if not ok then
      ngx.log(ngx.ERR, "sandbox: control ", api, "/", action, " failed: ", tostring(st))
      return 500, { errors = { { code = "InternalFailure", message = tostring(st) } } }
    end
    return tonumber(st) or 200, body, headers
  elseif what == "documents" and method == "POST" and not parts[2] then
    local id, url = sb.documents.new_upload(args.contentType or args.content_type)
    return 200, { documentId = id, url = url }
  elseif what == "documents" and method == "GET" and parts[2] then
    local doc = sb.documents.get(parts[2])
    if not doc then return 404, { errors = { { code = "NotFound", message = "no document " .. parts[2] } } } end
    return 200, { documentId = parts[2], contentType = doc.content_type, compressed = doc.compressed or json.null,
                  uploadedContentType = doc.uploaded_content_type or json.null, text = doc.text or json.null }
  elseif what == "state" and method == "GET" then
    local kind, id = parts[2], parts[3]
    if not kind then return bad("use /_sandbox/state/<kind>[/<id>]") end
    if id then
      local doc = state.get(kind, id)
      if not doc then return 404, { errors = { { code = "NotFound", message = kind .. " " .. id .. " not found" } } } end
      return 200, doc
    end
    return 200, json.array(state.list(kind))
  elseif what == "programs" and method == "GET" then
    local progs, errs = core.programs()
    local out = {}
    for _, api in ipairs(router.apis()) do
      out[api] = progs[api] and "loaded" or (errs[api] and ("error: " .. errs[api]) or "absent")
    end
    return 200, out
  end
  return 404, { errors = { { code = "NotFound", message = "unknown control endpoint " .. method .. " /_sandbox/" .. sub } } }
end

return _M
