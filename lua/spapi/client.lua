-- The client: operations by name, and the one loop every call runs (call, batch
-- and the pages/each iterators alike), one function per step, in this order:
--
--   validate and build (new_job) → per attempt: token (authorize) → rate limiter
--   (reserve_slot) → send (the transport) → outcome → retry (spapi.retry's policy)
--
-- Words used here, in docs/extending.md and in the specs:
--   operation  an API's operationId, named "api.operationId"
--              (fulfillment_outbound.getFeatures); MWS names are aliases.
--   plan       what every call of one operation through this client shares: the
--              compiled request builder, the rate-limit key, the model's rate and
--              burst, whether a re-send is safe. Made on the operation's first call.
--   job        one call in progress: its HTTP request (method, url, headers, body,
--              timeout: what the transport reads) and its state across attempts
--              (attempts, deadline, opts).
--   attempt    one send of a job through the transport.
--   slot       a token reserved from the operation's rate-limit bucket: the time
--              at which the job may send without a 429.
--   outcome    what an attempt's answer means: done (body, response), error
--              (err), or retry after a delay.
--   deadline   the monotonic time by which a call ends, whatever it is doing
--              (token fetch, waiting for a slot, sending, backing off).
--   idempotent a job that may be sent twice (GET, PUT, DELETE, the SAFE_POSTS).
local _M = {}
local Client = {}

local config = require "spapi.config"
local errors = require "spapi.errors"
local request = require "spapi.request"
local json = require "spapi.json"
local auth = require "spapi.auth"
local ratelimit = require "spapi.ratelimit"
local retry = require "spapi.retry"
local redact = require "spapi.redact"
local default_clock = require "spapi.clock"
local operations = require "spapi.operations"
local memory = require "spapi.store.memory"
local hdr = require "spapi.headers"

local type, pairs, ipairs, tostring, tonumber, setmetatable, rawget, rawset, pcall, error =
  type, pairs, ipairs, tostring, tonumber, setmetatable, rawget, rawset, pcall, error
local fmt, max = string.format, math.max
local hget = hdr.get
-- the call path's functions, defined below (locals: the sugar's calls do no
-- method look-ups)
local new_job, run_job

_M.VERSION = "0.1.0"

-- secrets live outside the client table so dumping or printing a client shows none
local secrets_of = setmetatable({}, { __mode = "k" })

---------------------------------------------------------------------------
-- operations
---------------------------------------------------------------------------
local api_cache = {}
local function load_api(name)
  local t = api_cache[name]
  if t then return t end
  local mod = operations.apis[name]
  if not mod then return nil end
  t = require(mod)
  api_cache[name] = t
  return t
end
_M.load_api = load_api

--- "api.operationId" (or an MWS alias) → full name, api table, op name, op def; raises.
local resolved = {}
local function resolve(name, level)
  local r = resolved[name]
  if r then return r[1], r[2], r[3], r[4] end
  if type(name) ~= "string" then
    error("spapi: operation name must be a string like 'fulfillment_outbound.getFulfillmentOrder'", level + 1)
  end
  local alias_of = nil
  local alias = operations.aliases and operations.aliases[name]
  if alias then alias_of, name = name, alias end
  local api_name, op_name = name:match("^([%w_]+)%.([%w_]+)$")
  local api = api_name and load_api(api_name)
  if not api then
    local known = {}
    for k in pairs(operations.apis) do known[#known + 1] = k end
    table.sort(known)
    error(fmt("spapi: unknown API in operation '%s' (APIs: %s)", name, table.concat(known, ", ")), level + 1)
  end
  local op = api.operations[op_name]
  if not op then
    error(fmt("spapi: unknown operation '%s' (API %s has no operation '%s')", name, api_name, op_name), level + 1)
  end
  resolved[alias_of or name] = { name, api, op_name, op }
  return name, api, op_name, op
end
_M.resolve = resolve

---------------------------------------------------------------------------
-- construction
---------------------------------------------------------------------------
local function lua_version()
  local jit = rawget(_G, "jit")
  if jit then return "LuaJIT/" .. (jit.version:match("[%d.]+[%w-]*") or "2.1") end
  return (_VERSION:gsub("Lua ", "Lua/"))
end

local function user_agent(ua)
  local suffix = fmt("(Language=%s; Platform=Linux)", lua_version())
  if not ua or ua == "" then return fmt("spapi/%s %s", _M.VERSION, suffix) end
  if ua:find("%(") then return ua end
  return ua .. " " .. suffix
end

-- client.<api>.<operationId>{params}  (sugar over client:call): one proxy per
-- API, made with the client, whose functions are made on first use.
local function api_proxy(self, key)
  local proxy
  proxy = setmetatable({}, { __index = function(_, op)
    local full = key .. "." .. op
    resolve(full, 2)
    local plan = self:_plan(full, 2)
    local f = function(a, b, c)
      if a == proxy then a, b = b, c end -- tolerate proxy:op{...}
      return run_job(self, new_job(self, plan, a, b, 2), true)
    end
    rawset(proxy, op, f)
    return f
  end })
  return proxy
end

-- Where tokens and rate buckets live: cfg.store, else the lua_shared_dict named
-- by cfg.shared_dict (every nginx worker shares it), else the Redis server named
-- by cfg.redis (a fleet shares one budget and one token), else this process's
-- memory. (The Redis URL, which may hold a password, leaves the client's config.)
local function store_for(cfg, clock)
  local url = cfg.redis
  cfg.redis = nil
  if url == "" then url = nil end
  local function both(a, b) return nil, "spapi.client: give " .. a .. " or " .. b .. ", not both" end
  if cfg.store and url then return both("store", "redis") end
  if cfg.shared_dict ~= nil then
    if cfg.store then return both("store", "shared_dict") end
    if url then return both("shared_dict", "redis") end
    return require("spapi.store.ngx").new(cfg.shared_dict)
  end
  if cfg.store then return cfg.store end
  if url == nil then return memory.new{ clock = clock } end
  return require("spapi.store.redis").new{ url = url, prefix = cfg.redis_prefix,
    connect_timeout = cfg.redis_connect_timeout, command_timeout = cfg.redis_command_timeout,
    on_error = cfg.on_store_error }
end

--- spapi.client(config) → client | nil, err
function _M.new(t)
  if t ~= nil and type(t) ~= "table" then
    error("spapi.client: config must be a table", 2)
  end
  local cfg, err = config.resolve(t)
  if not cfg then return nil, err end
  local s = {
    client_id = cfg.client_id, client_secret = cfg.client_secret, refresh_token = cfg.refresh_token,
    aws_access_key = cfg.aws_access_key, aws_secret_key = cfg.aws_secret_key,
    aws_session_token = cfg.aws_session_token,
  }
  for _, k in ipairs({ "client_secret", "refresh_token", "aws_secret_key", "aws_session_token" }) do
    cfg[k] = nil
  end
  if not s.client_id or not s.client_secret then
    return nil, "spapi.client: client_id and client_secret are required (config table, "
      .. "LWA_CLIENT_ID/LWA_CLIENT_SECRET, or the profile file " .. tostring(config.profile_path()) .. ")"
  end
  if (s.aws_access_key == nil) ~= (s.aws_secret_key == nil) then
    return nil, "spapi.client: AWS signing needs both aws_access_key and aws_secret_key"
  end
  cfg.user_agent = user_agent(cfg.user_agent)
  local self = setmetatable({ cfg = cfg, plans = {} }, Client)
  secrets_of[self] = s
  -- cfg.clock ({ now, monotonic, sleep }): the time of this client, its default
  -- store, limiter and token cache (tests pass one that does not sleep)
  self.clock = cfg.clock or default_clock
  local store, serr = store_for(cfg, self.clock)
  if not store then return nil, serr end
  self.store = store
  if cfg.transport and type(cfg.transport) == "table" then
    self.transport = cfg.transport
  else
    -- inside nginx: cosockets (the worker goes on while a call waits); elsewhere libcurl
    local tname = cfg.transport or (require("spapi.transport.ngx").available() and "ngx" or "curl")
    self.transport = require("spapi.transport." .. tname).new(cfg)
  end
  self.signs = s.aws_access_key ~= nil -- SigV4 on every request
  self.limiter = ratelimit.new(self.store, { scale = cfg.rate_scale, margin = cfg.rate_margin, clock = self.clock })
  -- whose budget a call draws on: Amazon grants rates per selling partner and region
  self.sp_id = (cfg.selling_partner_id or auth.fingerprint(s.client_id, s.refresh_token or "grantless"))
    .. "@" .. cfg.region
  self.auth = auth.new(cfg, s, self.store, function(req) return self:_send(req) end)
  -- on Amazon's hosts: the endpoint's region (marketplaces are checked against
  -- it) and whether it is production (sandbox-only operations are refused there)
  self.endpoint_region, self.production = config.endpoint_region(cfg.endpoint)
  self.debug = cfg.debug
  self.cfg.debug = nil
  for key in pairs(operations.apis) do self[key] = api_proxy(self, key) end
  return self
end

function Client.__tostring(self)
  local id = self.cfg.client_id or ""
  if #id > 12 then id = id:sub(1, 8) .. "…" .. id:sub(-4) end
  return fmt("spapi.Client(endpoint=%s, region=%s, client_id=%s)", self.cfg.endpoint, self.cfg.region, id)
end

-- methods are found by a table look-up (a function here would cost a call per
-- method and stop LuaJIT's traces)
Client.__index = Client

---------------------------------------------------------------------------
-- transport + debug hook
---------------------------------------------------------------------------
-- One exchange through the transport, seen by the debug hook.
-- → status, headers, body | nil, message, kind
function Client:_exchange(req)
  if not self.debug then return self.transport:send(req) end
  local t0 = self:_debug_request(req)
  local status, headers, body = self.transport:send(req)
  self:_debug_result(req, t0, status, headers, body)
  return status, headers, body
end

-- The same as one response table (LWA, documents). → resp | nil, message, kind
function Client:_send(req)
  req.timeout = req.timeout or self.cfg.timeout
  local status, headers, body = self:_exchange(req)
  if not status then return nil, headers, body end
  return { status = status, headers = hdr.table(headers), body = body }
end

local function operation_of(req)
  return req.plan and req.plan.name or req.operation or req.phase
end

-- the debug hook sees every exchange, secrets redacted; returns the start time
function Client:_debug_request(req)
  pcall(self.debug, { phase = "request", operation = operation_of(req), method = req.method,
    url = redact.url(req.url), headers = redact.headers(req.headers), body = redact.body(req.body) })
  return self.clock.monotonic()
end

-- status, headers, body | nil, message, kind: what the transport returned
function Client:_debug_result(req, t0, status, headers, body)
  local ev = { operation = operation_of(req), method = req.method, url = redact.url(req.url),
    elapsed = self.clock.monotonic() - t0 }
  if status then
    ev.phase, ev.status = "response", status
    ev.headers, ev.body = redact.headers(hdr.table(headers)), redact.body(body)
  else
    ev.phase, ev.kind, ev.message = "error", body, redact.message(headers)
  end
  pcall(self.debug, ev)
end

---------------------------------------------------------------------------
-- plans and jobs
---------------------------------------------------------------------------
-- POSTs that change nothing (or are idempotent by a client-chosen key) and may be
-- re-sent after a 5xx or a lost response.
local SAFE_POSTS = {
  ["fulfillment_outbound.getFulfillmentPreview"] = true,
  ["fulfillment_outbound.createFulfillmentOrder"] = true, -- idempotent on sellerFulfillmentOrderId
  ["fulfillment_outbound_2026.getOrderPreview"] = true,
  ["merchant_fulfillment.getEligibleShipmentServices"] = true,
  ["merchant_fulfillment.getAdditionalSellerInputs"] = true,
  ["tokens.createRestrictedDataToken"] = true,
}
_M.SAFE_POSTS = SAFE_POSTS

local NET_CODES = { timeout = "Timeout", connect = "ConnectFailed", resolve = "ResolveFailed",
  tls = "TLSFailed", send = "SendFailed", recv = "ReceiveFailed", closed = "ConnectionClosed",
  other = "NetworkError" }

local GRANTLESS_SCOPE = "sellingpartnerapi::notifications"

local NO_OPTS = setmetatable({}, { __newindex = function() error("spapi: internal: NO_OPTS is read-only") end })

-- What a call of one operation through this client needs that does not change
-- between calls: computed on the first call, then one table read.
function Client:_plan(name, level)
  local plans = self.plans
  local plan = plans[name]
  if plan then return plan end
  local full, api, op_name, op = resolve(name, level + 1)
  if op.sandbox_only and self.production then
    error(fmt("spapi: %s is a sandbox-only operation (x-amzn-api-sandbox-only in the model): it cannot be "
      .. "called on the production endpoint %s (use sandbox = true)", full, self.cfg.endpoint), level + 1)
  end
  local idempotent = op.idempotent
  if idempotent == nil then idempotent = op.method ~= "POST" and op.method ~= "PATCH" end
  plan = {
    name = full, op = op, method = op.method, build = request.compile(api, op_name),
    rate = op.rate, burst = op.burst, rl_key = self.sp_id .. ":" .. full,
    idempotent = idempotent or SAFE_POSTS[full] or false,
    scope = op.grantless and (op.scope or GRANTLESS_SCOPE) or nil,
    rdt = not self.cfg.sandbox and op.restricted == true, -- unless opts.rdt says otherwise
    binary = op.response_type == "binary",
    -- the x-amzn-RateLimit-Limit value of the latest answer that had one (false:
    -- none yet) and its number: the limiter hears of a rate only when it changes
    limit_seen = false, limit_num = nil,
  }
  plans[name] = plan
  return plan
end

-- A job is the HTTP request of one call (method, url, headers, body, timeout:
-- what the transport reads) plus the call's state across attempts.
function Client:_job(name, params, opts, level)
  return new_job(self, self.plans[name] or self:_plan(name, level + 1), params, opts, level) -- (a tail call)
end

-- per-call options (see client:call), checked when given
local OPT_NUMBERS = { "timeout", "deadline", "max_retries", "max_wait" }
local function check_opts(plan, opts, level)
  if type(opts) ~= "table" then
    error(fmt("spapi: %s: options must be a table (got %s)", plan.name, type(opts)), level + 1)
  end
  for _, k in ipairs(OPT_NUMBERS) do
    local v = opts[k]
    if v ~= nil and (type(v) ~= "number" or v < 0) then
      error(fmt("spapi: %s: option '%s' must be a non-negative number (got %s)", plan.name, k, tostring(v)), level + 1)
    end
  end
end

-- a marketplace of another region than the endpoint's is refused before sending
local function check_marketplaces(self, plan, params, level)
  local msg = config.foreign_marketplace(self.endpoint_region, self.cfg.endpoint, params)
  if msg then error(fmt("spapi: %s: %s", plan.name, msg), level + 1) end
end

-- the job of a call to plan's operation; errors at the caller's level + 1
function new_job(self, plan, params, opts, level)
  if params ~= nil and type(params) ~= "table" then
    error(fmt("spapi: %s: parameters must be a table (got %s)", plan.name, type(params)), level + 1)
  end
  local cfg, job = self.cfg, plan.spare
  local url, headers, body = plan.build(params, cfg.endpoint, job and job.headers)
  if not url then error(headers, level + 1) end
  if params and self.endpoint_region then check_marketplaces(self, plan, params, level + 1) end
  if opts == nil then opts = NO_OPTS else check_opts(plan, opts, level + 1) end
  -- the deadline (job.deadline, monotonic) is set when the call starts (start)
  if job and job.headers == headers then -- the finished job of an earlier call, made new
    plan.spare = nil
    job.url, job.body, job.opts, job.attempts, job.deadline, job.reauthed = url, body, opts, 0, false, nil
    job.resent, job.slot_at = nil, nil
    return job
  end
  return {
    method = plan.method, url = url, headers = headers, body = body,
    timeout = cfg.timeout, plan = plan, opts = opts, attempts = 0, deadline = false, reauthed = nil,
  }
end

-- Amazon's sandbox hosts take LWA tokens; elsewhere restricted operations (or
-- opts.rdt = true) need a restricted data token
local function uses_rdt(self, job)
  local rdt = job.opts.rdt
  if rdt ~= nil and not self.cfg.sandbox then return rdt end
  return job.plan.rdt
end

local function idempotent(job)
  return job.plan.idempotent or job.opts.idempotent == true
end

-- An RDT for op, fetched (tokens.createRestrictedDataToken) by a call through
-- this same loop, within the calling job's deadline.
function Client:_rdt(op, deadline)
  return self.auth:restricted_token(op.method, op.path, op.data_elements,
    function(n, p) return self:call(n, p, { deadline = max(0, deadline - self.clock.monotonic()) }) end, deadline)
end

-- Creates keyed by an id the caller chooses (and re-sent after a lost answer,
-- see SAFE_POSTS): a duplicate-id answer to a re-send means an earlier attempt
-- made it. `get` fetches it by `key`; `same` tells whether the one found is the
-- one sent (not an older one that had the id).
local KEYED_CREATES = {
  ["fulfillment_outbound.createFulfillmentOrder"] = {
    get = "fulfillment_outbound.getFulfillmentOrder", key = "sellerFulfillmentOrderId",
    same = function(sent, found)
      local p = type(found) == "table" and found.payload
      local o = type(p) == "table" and p.fulfillmentOrder
      if type(o) ~= "table" or o.displayableOrderId ~= sent.displayableOrderId then return false end
      local ids = {}
      for _, it in ipairs(type(p.fulfillmentOrderItems) == "table" and p.fulfillmentOrderItems or {}) do
        ids[tostring(it.sellerFulfillmentOrderItemId)] = true
      end
      for _, it in ipairs(type(sent.items) == "table" and sent.items or {}) do
        if not ids[tostring(it.sellerFulfillmentOrderItemId)] then return false end
      end
      return true
    end,
  },
}

-- A re-sent create answered "duplicate": fetch what the first attempt made.
-- → response, body (the fetch's: the order) | nil when it is not the one sent
function Client:_resent_create(job, meta)
  local keyed = KEYED_CREATES[job.plan.name]
  local sent = type(job.body) == "string" and json.decode(job.body) or job.body
  local id = type(sent) == "table" and sent[keyed.key]
  if type(id) ~= "string" then return nil end
  local body, resp = self:call(keyed.get, { [keyed.key] = id },
    { deadline = max(0, job.deadline - self.clock.monotonic()) })
  if not body or not keyed.same(sent, body) then return nil end
  resp.operation, resp.attempts, resp.recovered = job.plan.name, job.attempts, "duplicate"
  resp.create_response = meta
  return resp, body
end

---------------------------------------------------------------------------
-- the steps of an attempt, in the loop's order
---------------------------------------------------------------------------
local SIGNATURE_HEADERS = { "Authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256" }

-- drops a request's SigV4 headers (before signing it again, and when it is kept)
local function unsign(headers)
  for _, k in ipairs(SIGNATURE_HEADERS) do headers[k] = nil end
end

-- SigV4 for the next attempt (a new date, so a new signature)
function Client:_sign(job)
  local headers, s = job.headers, secrets_of[self]
  unsign(headers)
  local signed = require("spapi.sigv4").sign{
    method = job.method, url = job.url, headers = headers, body = job.body or "",
    region = self.cfg.aws_region, service = "execute-api",
    access_key = s.aws_access_key, secret_key = s.aws_secret_key, session_token = s.aws_session_token,
  }
  for k, v in pairs(signed) do headers[k] = v end
end

-- 0. The call starts: its deadline counts from its first attempt.
local function start(self, job, now)
  if not job.deadline then job.deadline = now + (job.opts.deadline or self.cfg.deadline) end
end

-- 1. Token: the access token (or RDT) for the next attempt and, with AWS keys, a
-- fresh signature. A token fetch counts against the call's deadline: past it,
-- the request is not sent. → true | nil, err
local function authorize(self, job)
  local plan = job.plan
  local token, err
  if uses_rdt(self, job) then
    token, err = self:_rdt(plan.op, job.deadline)
  else
    token, err = self.auth:access_token(plan.scope, job.deadline)
  end
  if not token then
    if errors.is(err) then err.operation = err.operation or plan.name end
    return nil, err
  end
  if self.clock.monotonic() >= job.deadline then
    return nil, errors.new{ kind = "timeout", code = "DeadlineExceeded", operation = plan.name, retryable = true,
      attempts = job.attempts, message = "the call's deadline passed while its access token was fetched" }
  end
  job.headers["x-amz-access-token"] = token -- (the transport adds the User-Agent)
  if self.signs then self:_sign(job) end
  return true
end

-- 2. Rate limiter: a slot for the next attempt, at most max_wait away and never
-- past the deadline. → the seconds until the slot (0: now) | nil, err
local function reserve_slot(self, job, now)
  local plan, opts = job.plan, job.opts
  local budget, left = opts.max_wait or self.cfg.max_wait, job.deadline - now
  if left < budget then budget = left > 0 and left or 0 end
  local ok, wait = self.limiter:reserve(plan.rl_key, plan.rate, plan.burst, budget)
  if ok then return wait end
  if ok == false then
    return nil, errors.new{ kind = "ratelimit", code = "RateLimitWait", operation = plan.name, retryable = true,
      attempts = job.attempts,
      message = fmt("the next request slot is %.2fs away, more than max_wait (or the deadline) allows", wait) }
  end
  return nil, errors.new{ kind = "store", code = "StoreFailed", operation = plan.name, retryable = true,
    attempts = job.attempts, message = "the rate limiter's store failed: " .. tostring(wait) }
end

-- 3. Send: the attempt's timeout (the call's, never past its deadline), then one
-- exchange through the transport. → what the transport returns
local function send(self, job)
  local timeout, left = job.opts.timeout or self.cfg.timeout, job.deadline - self.clock.monotonic()
  if left < timeout then timeout = left > 0.001 and left or 0.001 end
  job.timeout = timeout
  return self:_exchange(job)
end

-- 5. Retry: after a failed attempt, the policy of every request (spapi.retry)
-- says whether and when. → "retry", delay | "error", err
local function retry_or_fail(self, job, err, delay)
  err.attempts = job.attempts
  local d, why = retry.next(self.cfg, job.attempts, job.opts.max_retries, job.deadline, self.clock.monotonic(), delay)
  if d then return "retry", d end
  if why == "retry deadline reached" then err.message = (err.message or "") .. " (retry deadline reached)" end
  return "error", err
end

-- The response table a call returns: status, request_id, rate_limit, attempts,
-- operation, raw_headers (the header block as the transport gave it) and
-- headers, a table made from raw_headers when first read.
local RESPONSE = { __index = function(t, k)
  if k ~= "headers" then return nil end
  local h = hdr.table(rawget(t, "raw_headers"))
  rawset(t, "headers", h)
  return h
end }

-- 4. Outcome: what one attempt's answer (status, headers, body | nil, message,
-- kind: the transport's) means for the call.
-- → "done", body, response | "error", err | "retry", delay
local function outcome(self, job, status, headers, raw)
  job.attempts = job.attempts + 1
  local plan = job.plan
  if not status then -- no answer: headers, raw are the message and kind
    local msg, kind = headers, raw
    local again = retry.lost_again(kind, idempotent(job))
    local before_send = kind == "connect" or kind == "resolve" or kind == "tls"
    if again and not before_send then job.resent = true end -- the lost attempt may have been applied
    local err = errors.new{ kind = kind, code = NET_CODES[kind] or "NetworkError", message = msg,
      operation = plan.name, retryable = true, maybe_applied = not before_send and not again }
    if again then return retry_or_fail(self, job, err) end
    err.attempts = job.attempts
    return "error", err
  end
  local limit, rate_limit = hget(headers, "x-amzn-ratelimit-limit"), nil
  if limit then
    if limit ~= plan.limit_seen then -- the store hears of a rate only when it changes
      plan.limit_seen, plan.limit_num = limit, tonumber(limit)
      self.limiter:observe(plan.rl_key, limit, plan.rate, plan.burst)
    end
    rate_limit = plan.limit_num
  end
  local meta = setmetatable({ status = status, request_id = hget(headers, "x-amzn-requestid"),
    rate_limit = rate_limit, attempts = job.attempts, operation = plan.name, raw_headers = headers }, RESPONSE)
  if status >= 200 and status < 300 then
    if raw == nil or raw == "" then return "done", {}, meta end
    if plan.binary then return "done", raw, meta end
    local body, derr = json.decode(raw)
    if body ~= nil then return "done", body, meta end
    local err = errors.new{ kind = "decode", code = "InvalidJSON", status = status, operation = plan.name,
      message = "response is not valid JSON: " .. tostring(derr), request_id = meta.request_id,
      retryable = true }
    if idempotent(job) then
      job.resent = true
      return retry_or_fail(self, job, err)
    end
    -- the server took it (2xx): sending it again could do it twice
    err.retryable, err.maybe_applied, err.attempts = false, true, job.attempts
    return "error", err
  end
  local decoded = (raw and raw ~= "") and json.decode(raw) or nil
  local err = errors.from_response(plan.name, status, meta.headers, decoded, raw)
  err.response = meta
  if status == 400 and job.resent and KEYED_CREATES[plan.name] and errors.duplicate(err) then
    local found, order = self:_resent_create(job, meta)
    if found then return "done", order, found end
  end
  if (status == 401 or status == 403) and not job.reauthed and errors.stale_token(err) then
    job.reauthed = true
    job.attempts = job.attempts - 1 -- a token refresh is not a retry
    local op, refused = plan.op, job.headers["x-amz-access-token"]
    if uses_rdt(self, job) then
      self.auth:invalidate_rdt(op.method, op.path, op.data_elements, refused)
    else
      self.auth:invalidate(plan.scope, refused)
    end
    return "retry", 0
  end
  if retry.status_again(status, idempotent(job)) then
    local delay = retry.retry_after(headers)
    if status == 429 and not delay then -- at least one slot at the rate in force
      local rate = self.limiter:limits(plan.rl_key, plan.rate, plan.burst)
      delay = max(retry.backoff(self.cfg, job.attempts), rate and 1 / rate or 0)
    end
    if status >= 500 then job.resent = true end
    return retry_or_fail(self, job, err, delay)
  end
  if status >= 500 then err.maybe_applied = true end
  err.attempts = job.attempts
  return "error", err
end

---------------------------------------------------------------------------
-- the loop: one job to its end (call, the iterators, a batch without multi)
---------------------------------------------------------------------------
-- Keeps a finished job for the operation's next call, without its token and
-- signature headers (a dumped client shows none; every attempt sets them anew).
local function park(self, job)
  job.headers["x-amz-access-token"] = nil
  if self.signs then unsign(job.headers) end
  job.plan.spare = job
end

-- one job, sequentially, to its end → body, response | nil, err. With `reuse`,
-- the job (which nothing else holds) is left to the operation's next call.
function run_job(self, job, reuse)
  local clock = self.clock
  start(self, job, clock.monotonic())
  while true do
    local ok, err = authorize(self, job)
    local wait
    if ok then wait, err = reserve_slot(self, job, clock.monotonic()) end
    local action, a, b
    if not wait then
      action, a = "error", err
    else
      if wait > 0 then clock.sleep(wait) end
      action, a, b = outcome(self, job, send(self, job))
    end
    if action ~= "retry" then
      if reuse then park(self, job) end
      if action == "done" then return a, b end
      return nil, a
    end
    if a > 0 then clock.sleep(a) end
  end
end

---------------------------------------------------------------------------
-- public API
---------------------------------------------------------------------------
--- client:call("api.operationId", params [, opts]) → body, response | nil, err
-- opts: timeout, deadline, max_retries, max_wait, rdt (force/skip a restricted data token)
function Client:call(name, params, opts)
  return run_job(self, self:_job(name, params, opts, 2), true)
end

-- In a batch, whether a job may be sent now: the same token and rate-limiter
-- steps as run_job, but a job whose slot is ahead holds it (job.slot_at) instead
-- of sleeping, and at most one job per operation holds a slot (held[rl_key]):
-- the others reserve theirs when it is their turn, so every reservation is made
-- at the rate in force then. A slot reserved before the server stated another
-- rate (x-amzn-RateLimit-Limit) is dropped and reserved again at the new one.
-- → "go" | "wait", at | "error", err
local function launchable(self, job, held, now)
  local plan = job.plan
  local key = plan.rl_key
  if job.slot_at then
    if job.slot_limit ~= plan.limit_seen then -- re-plan at the new rate
      job.slot_at, held[key] = nil, nil
    elseif job.slot_at <= now then
      job.slot_at, held[key] = nil, nil
      return "go"
    else
      return "wait", job.slot_at
    end
  elseif held[key] then
    return "wait", held[key].slot_at
  end
  local ok, err = authorize(self, job)
  if not ok then return "error", err end
  local wait
  wait, err = reserve_slot(self, job, now)
  if not wait then return "error", err end
  if wait == 0 then return "go" end
  job.slot_at, job.slot_limit, held[key] = now + wait, plan.limit_seen, job
  return "wait", job.slot_at
end

--- client:batch{ {"api.op", params [, opts]}, ... } [, { concurrency = 16 }]
-- Runs the calls concurrently (the transport's multi, shared connections) under
-- the same rate limiter and retry policy; returns results in input order, each
-- { ok = true, body =, response = } or { ok = false, err = }.
function Client:batch(list, opts)
  if type(list) ~= "table" then error("spapi: batch expects a list of {operation, params}", 2) end
  opts = opts or {}
  local jobs = {}
  for i, item in ipairs(list) do
    if type(item) ~= "table" then error(fmt("spapi: batch item %d must be {operation, params}", i), 2) end
    jobs[i] = self:_job(item[1] or item.operation, item[2] or item.params, item[3] or item.opts, 2)
    jobs[i].index = i
  end
  local concurrency = opts.concurrency or 16
  if type(concurrency) ~= "number" or not (concurrency >= 1) then -- (NaN too)
    error("spapi: batch: concurrency must be a number >= 1 (got " .. tostring(concurrency) .. ")", 2)
  end
  local clock, results, n = self.clock, {}, #jobs
  local t0 = clock.monotonic() -- every call's deadline counts from here
  for _, job in ipairs(jobs) do start(self, job, t0) end
  if n == 0 then return results end
  if not self.transport.multi then
    for i, job in ipairs(jobs) do
      local body, meta = run_job(self, job)
      results[i] = body and { ok = true, body = body, response = meta } or { ok = false, err = meta }
    end
    return results
  end
  local m = self.transport:multi()
  -- queue: jobs not in flight, in input order (a retried job goes to the end);
  -- job.ready_at: when a retried job may go again
  local queue, inflight, held, running, done = {}, {}, {}, 0, 0
  for i = 1, n do queue[i] = jobs[i]; jobs[i].ready_at = 0 end
  local function finish(job, r)
    results[job.index] = r
    done = done + 1
  end
  while done < n do
    local now = clock.monotonic()
    local wake, keep = nil, {} -- wake: the earliest time a waiting job may go
    for _, job in ipairs(queue) do
      local state, at = "wait", job.ready_at
      if running < concurrency and job.ready_at <= now then state, at = launchable(self, job, held, now) end
      if state == "go" then
        job.debug_t0 = self.debug and self:_debug_request(job)
        local timeout, left = job.opts.timeout or self.cfg.timeout, job.deadline - clock.monotonic()
        job.timeout = left < timeout and max(left, 0.001) or timeout
        inflight[m:add(job)] = job
        running = running + 1
      elseif state == "error" then
        finish(job, { ok = false, err = at })
      else
        keep[#keep + 1] = job
        if at > now and (not wake or at < wake) then wake = at end
      end
    end
    queue = keep
    if running > 0 then
      local timeout = wake and max(0.001, wake - clock.monotonic()) or 1
      for _, r in ipairs(m:wait(timeout < 1 and timeout or 1)) do
        local job = inflight[r.id]
        inflight[r.id] = nil
        running = running - 1
        -- r: { id, status, headers, body } or { id, err = message, kind }
        local status, headers, body = r.status, r.headers, r.body
        if not status then headers, body = r.err, r.kind end
        if job.debug_t0 then self:_debug_result(job, job.debug_t0, status, headers, body) end
        local action, a, b = outcome(self, job, status, headers, body)
        if action == "done" then
          finish(job, { ok = true, body = a, response = b })
        elseif action == "error" then
          finish(job, { ok = false, err = a })
        else
          job.ready_at = clock.monotonic() + a
          queue[#queue + 1] = job
        end
      end
    elseif wake then
      local d = wake - clock.monotonic()
      if d > 0 then clock.sleep(d) end
    end
  end
  m:close()
  return results
end

--- client:pages(op, params) → iterator of page, response (page == false, err on failure)
function Client:pages(name, params, opts)
  return require("spapi.pages").pages(self, name, params, opts)
end

--- client:each(op, params) → iterator of item (false, err on failure)
function Client:each(name, params, opts)
  return require("spapi.pages").each(self, name, params, opts)
end

--- PUT content to a feed document's pre-signed upload URL → true | nil, err
function Client:upload_document(doc, content, content_type)
  return require("spapi.documents").upload(self, doc, content, content_type)
end

--- GET a feed/report document, decrypted and gunzipped → content | nil, err
function Client:download_document(doc)
  return require("spapi.documents").download(self, doc)
end

--- Operation metadata (method, path, params, rate, burst, restricted, paging).
function Client:operation(name)
  local full, _, _, op = resolve(name, 2)
  return op, full
end

function Client:close()
  if self.transport and self.transport.close then self.transport:close() end
end

_M.Client = Client
return _M
