-- The sandbox inside nginx: init (init_by_lua) and handle() (content_by_lua)
-- for every request: LWA, control API, documents, SP-API operations.
-- See SANDBOX.md (the contract) for the program module interface and `sb`.
local _M = {}

local util = require "spapi.sandbox.util"
local config = require "spapi.sandbox.config"
local state = require "spapi.sandbox.state"
local router = require "spapi.sandbox.router"
local auth = require "spapi.sandbox.auth"
local ratelimit = require "spapi.sandbox.ratelimit"
local faults = require "spapi.sandbox.faults"
local documents = require "spapi.sandbox.documents"
local json = util.json
local ngx = ngx
local type, pairs, ipairs, tostring, tonumber, pcall, xpcall, require =
  type, pairs, ipairs, tostring, tonumber, pcall, xpcall, require
local floor = math.floor

local function meta() return ngx.shared.spapi_meta end

-- Programs -----------------------------------------------------------------
local programs = {}     -- api → module (false when absent/broken)
local program_errors = {}

local function program(api)
  local p = programs[api]
  if p == nil then
    local ok, mod = pcall(require, "spapi.sandbox.programs." .. api)
    if ok and type(mod) == "table" then
      p = mod
    else
      p = false
      if not tostring(mod):find("module 'spapi.sandbox.programs." .. api .. "' not found", 1, true) then
        program_errors[api] = tostring(mod)
        ngx.log(ngx.ERR, "sandbox: program ", api, " failed to load: ", tostring(mod))
      end
    end
    programs[api] = p
  end
  return p or nil
end

local function load_programs()
  for _, api in ipairs(router.apis()) do program(api) end
end

-- Clock ----------------------------------------------------------------------
local clock_cache = { ver = -1 }
local function clock()
  local ver = meta():get("clock_ver") or 0
  if clock_cache.ver ~= ver then
    clock_cache.ver = ver
    clock_cache.real = meta():get("clock_real") or ngx.now()
    clock_cache.base = meta():get("clock_base") or ngx.now()
    clock_cache.speed = meta():get("clock_speed") or 1
  end
  return clock_cache
end

local function now()
  local c = clock()
  return c.base + (ngx.now() - c.real) * c.speed
end

local function set_clock(base, speed)
  ngx.update_time()
  meta():set("clock_real", ngx.now())
  meta():set("clock_base", base)
  meta():set("clock_speed", speed)
  meta():incr("clock_ver", 1, 0)
end

-- sb: the services given to program handlers --------------------------------
local sb = {}
sb.state = state
sb.json = json
sb.now = now
sb.iso = util.iso
sb.parse_iso = util.parse_iso
sb.b64 = util.b64
sb.unb64 = util.unb64
sb.gzip = util.gzip
sb.gunzip = util.gunzip
sb.documents = documents
sb.url = documents.url
sb.program = program
sb.copy = util.copy
sb.config = config.get
function sb.err(status, code, message, details)
  return status, { errors = { { code = code, message = message, details = details or "" } } }
end
function sb.rng(m, n)
  local k = meta():incr("rng_n", 1, 0)
  local u = util.unit_hash(tostring(config.get().seed or 1) .. ":rng:" .. k)
  if m == nil then return u end
  if n == nil then m, n = 1, m end
  return m + floor(u * (n - m + 1))
end
function sb.log(...)
  ngx.log(ngx.INFO, ...)
end
function sb.request_id() return ngx.ctx.request_id end
_M.sb = sb

-- Seeding / reset -------------------------------------------------------------
local function seed_programs()
  for _, api in ipairs(router.apis()) do
    local p = program(api)
    if p and p.seed then
      local ok, err = pcall(p.seed, sb)
      if not ok then ngx.log(ngx.ERR, "sandbox: seeding ", api, " failed: ", tostring(err)) end
    end
  end
end

local function ensure_seeded()
  if meta():get("seeded") then return end
  state.with_lock("seed", function()
    if meta():get("seeded") then return end
    ngx.update_time()
    set_clock(ngx.now(), tonumber(config.get().speed) or 1)
    seed_programs()
    meta():set("seeded", true)
  end)
end
_M.ensure_seeded = ensure_seeded

--- Clear all program state, faults, buckets, documents and counters; re-seed.
--- opts.tokens = true also revokes every token issued.
function _M.reset(opts)
  opts = opts or {}
  state.with_lock("seed", function()
    state.flush()
    ratelimit.flush()
    documents.flush()
    faults.clear()
    if opts.tokens == true then auth.revoke_all() end
    local m = meta()
    for _, k in ipairs(m:get_keys(0)) do
      if k:find("^stat:") or k:find("^fault_") or k == "rng_n" then m:delete(k) end
    end
    local cfg = config.get()
    local initial = cfg.initial or {}
    local changes = { speed = tonumber(opts.speed) or initial.speed or 1, limits = json.null }
    if opts.seed ~= nil then changes.seed = opts.seed end
    if opts.rate_scale ~= nil then changes.rate_scale = tonumber(opts.rate_scale) end
    cfg = config.set(changes)
    ngx.update_time()
    set_clock(ngx.now(), tonumber(cfg.speed) or 1)
    seed_programs()
    m:set("seeded", true)
  end)
end

function _M.set_clock(opts)
  local c = clock()
  local t = now()
  local speed = c.speed
  if opts.speed ~= nil then
    speed = tonumber(opts.speed)
    if not speed or speed < 0 then return nil, "speed must be a number >= 0" end
    config.set({ speed = speed })
  end
  if opts.advance ~= nil then
    local a = tonumber(opts.advance)
    if not a then return nil, "advance must be a number of seconds" end
    t = t + a
  end
  if opts.now ~= nil then
    local n = tonumber(opts.now) or util.parse_iso(opts.now)
    if not n then return nil, "now must be Unix seconds or an ISO-8601 date-time" end
    t = n
  end
  set_clock(t, speed)
  return { now = t, iso = util.iso(t), speed = speed }
end

function _M.clock_info()
  local t = now()
  return { now = t, iso = util.iso(t), speed = clock().speed }
end

-- init_by_lua -------------------------------------------------------------------
function _M.init(config_path)
  local cfg = config.load_file(config_path)
  if cfg.lua_path and cfg.lua_path ~= "" then
    package.path = cfg.lua_path .. ";" .. package.path
  end
  meta():delete("seeded")
  router.load()
  load_programs()
end

function _M.programs()
  return programs, program_errors
end

-- responses -----------------------------------------------------------------------
local function send(status, body, headers, fault)
  ngx.status = status
  local ctype = "application/json"
  if headers then
    for k, v in pairs(headers) do
      if k:lower() == "content-type" then ctype = v else ngx.header[k] = v end
    end
  end
  ngx.header["Content-Type"] = ctype
  local s
  if type(body) == "table" then
    local err
    s, err = json.encode(body)
    if not s then
      ngx.log(ngx.ERR, "sandbox: cannot encode response: ", err)
      meta():incr("stat:server_errors", 1, 0)
      ngx.status = 500
      s = '{"errors":[{"code":"InternalFailure","message":"sandbox could not encode the response","details":""}]}'
    end
  elseif body ~= nil then
    s = tostring(body)
  end
  if fault and s then
    if fault.kind == "close" then
      return faults.send_and_close(ngx.status, s, { ["Content-Type"] = ctype })
    end
    s = faults.corrupt(fault, s)
  end
  if s then
    ngx.header["Content-Length"] = #s
    ngx.print(s)
  else
    ngx.header["Content-Length"] = 0
    ngx.send_headers()
  end
  return ngx.exit(ngx.OK)
end

local function err(status, code, message)
  return status, { errors = { { code = code, message = message, details = "" } } }
end

local function query_args()
  local args = ngx.req.get_uri_args(500)
  local q, all = {}, {}
  for k, v in pairs(args) do
    if type(v) == "table" then
      local vals = {}
      for i, x in ipairs(v) do vals[i] = (x == true) and "" or x end
      all[k] = vals
      q[k] = vals[#vals]
    else
      if v == true then v = "" end
      all[k] = { v }
      q[k] = v
    end
  end
  return q, all
end

local function api_request(method, raw_path)
  local route, params = router.match(method, raw_path)
  if not route then
    return send(err(404, "NotFound", "Resource not found: " .. method .. " " .. ngx.unescape_uri(raw_path)))
  end
  ensure_seeded()
  local opname = route.api .. "." .. route.name
  local op = route.op
  meta():incr("stat:req:" .. opname, 1, 0)
  ngx.header["x-amzn-RateLimit-Limit"] = ratelimit.header_value(op, opname)

  local headers = ngx.req.get_headers(200)
  local ctx, st, body = auth.check(op, method, raw_path, headers)
  if not ctx then return send(st, body) end

  if not ratelimit.take("b:" .. ctx.client_id .. ":" .. ctx.selling_partner .. ":" .. opname, op, opname) then
    meta():incr("stat:throttled", 1, 0)
    return send(err(429, "QuotaExceeded", "You exceeded your quota for the requested resource."))
  end

  local fault = faults.pick(opname)
  if fault and fault.kind == "status" then
    return send(faults.status_response(fault))
  end

  local raw_body, decoded
  if method ~= "GET" and method ~= "HEAD" then
    raw_body = documents.read_body()
    if raw_body == "" then raw_body = nil end
    if raw_body then
      local e
      decoded, e = json.decode(raw_body)
      if decoded == nil then
        return send(err(400, "InvalidInput", "The request body is not valid JSON: " .. tostring(e)))
      end
    end
  end
  local query, query_all = query_args()
  local msg = router.validate(op, query, decoded ~= nil)
  if msg then return send(err(400, "InvalidInput", msg)) end

  local p = program(route.api)
  local handler = p and p.handlers and p.handlers[route.name]
  if not handler then
    return send(err(501, "NotImplemented", "The sandbox does not implement " .. opname .. " yet."))
  end
  local req = {
    api = route.api, operation = route.name, method = method, path = ngx.unescape_uri(raw_path),
    raw_path = raw_path, params = params, query = query, query_all = query_all, headers = headers,
    body = decoded, raw_body = raw_body, client_id = ctx.client_id, selling_partner = ctx.selling_partner,
    token_kind = ctx.kind, op = op,
  }
  state.begin()
  local ok, rstatus, rbody, rheaders = xpcall(handler, debug.traceback, req, sb)
  if not ok then
    -- what the request wrote goes (units it reserved, ids it took)
    state.rollback()
    ngx.log(ngx.ERR, "sandbox: ", opname, " failed: ", tostring(rstatus))
    meta():incr("stat:server_errors", 1, 0)
    if tostring(rstatus):find("sandbox state is full", 1, true) then
      return send(err(500, "InternalFailure", "The sandbox's state store is full: nothing of this "
        .. opname .. " was kept (reset the sandbox)."))
    end
    return send(err(500, "InternalFailure", "The sandbox failed handling " .. opname .. "."))
  end
  state.finish()
  rstatus = tonumber(rstatus) or 200
  if rstatus >= 500 then meta():incr("stat:server_errors", 1, 0) end
  return send(rstatus, rbody, rheaders, fault)
end

--- content_by_lua entry point.
function _M.handle()
  local rid = util.request_id()
  ngx.ctx.request_id = rid
  ngx.header["x-amzn-RequestId"] = rid
  local method = ngx.req.get_method()
  local raw_path = (ngx.var.request_uri or "/"):match("^[^?#]*")

  if raw_path == "/auth/o2/token" then
    if method ~= "POST" then
      return send(405, { error = "invalid_request", error_description = "POST required" })
    end
    meta():incr("stat:token_requests", 1, 0)
    local fault = faults.pick("lwa")
    if fault and fault.kind == "status" then return send(faults.status_response(fault)) end
    local st, body = auth.lwa(documents.read_body(), ngx.req.get_headers(100))
    return send(st, body, { ["Content-Type"] = "application/json;charset=UTF-8" }, fault)
  end
  if raw_path:sub(1, 10) == "/_sandbox/" or raw_path == "/_sandbox" then
    ensure_seeded()
    local control = require "spapi.sandbox.control"
    local st, body, headers = control.handle(method, raw_path:sub(11), _M)
    return send(st, body, headers)
  end
  if raw_path:sub(1, 12) == "/_documents/" then
    return documents.serve(ngx.unescape_uri(raw_path:sub(13)))
  end
  return api_request(method, raw_path)
end

return _M
