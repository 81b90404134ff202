-- Fault injection: per operation ("api.op", or "lwa" for the token endpoint)
-- or global (every API operation). Kinds:
--   status        answer with `status` (500, 503, 429, ...) and an SP-API error body,
--                 optional retry_after (seconds) as Retry-After
--   delay         sleep delay_ms, then handle the request normally
--   close         handle the request, send the headers and part of the body, close the connection
--   truncated     handle the request, send only the first part of the JSON body (complete HTTP message)
--   invalid_json  handle the request, send a body that is not JSON
-- `count` = the next N matching requests; `rate` = probability 0..1 drawn from a
-- PRNG seeded with the sandbox seed (deterministic); neither = every matching request.
local _M = {}

local util = require "spapi.sandbox.util"
local config = require "spapi.sandbox.config"
local json = util.json
local ngx = ngx
local type, ipairs, pairs, tostring, tonumber = type, ipairs, pairs, tostring, tonumber

local KINDS = {
  status = "status", delay = "delay", close = "close", truncated = "truncated",
  truncated_json = "truncated", invalid_json = "invalid_json", invalid = "invalid_json",
  slow = "delay",
}

local BODIES = {
  [500] = { code = "InternalFailure", message = "We encountered an internal error. Please try again." },
  [502] = { code = "InternalFailure", message = "Bad gateway. Please try again." },
  [503] = { code = "ServiceUnavailable", message = "Service temporarily unavailable. Please try again." },
  [504] = { code = "InternalFailure", message = "Gateway timeout. Please try again." },
  [429] = { code = "QuotaExceeded", message = "You exceeded your quota for the requested resource." },
  [400] = { code = "InvalidInput", message = "Request has missing or invalid parameters and cannot be parsed." },
  [403] = { code = "Unauthorized", message = "Access to requested resource is denied." },
  [404] = { code = "NotFound", message = "The resource specified does not exist." },
}

local function meta() return ngx.shared.spapi_meta end

local cached, cached_ver
local function all()
  local ver = meta():get("faults_ver") or 0
  if cached and cached_ver == ver then return cached end
  local s = meta():get("faults")
  cached = s and json.decode(s) or {}
  cached_ver = ver
  return cached
end
_M.list = all

local function save(list)
  meta():set("faults", assert(json.encode(json.array(list))))
  meta():incr("faults_ver", 1, 0)
  cached = nil
end

--- Validate and add one fault spec; returns the stored fault or nil, message.
function _M.add(spec, known_operation)
  if type(spec) ~= "table" then return nil, "fault must be a JSON object" end
  local kind = KINDS[spec.kind or spec.type or (spec.status and "status") or ""]
  if not kind then
    return nil, "fault kind must be one of status, delay, close, truncated, invalid_json"
  end
  local op = spec.operation or spec.op
  if op == "*" or op == json.null then op = nil end
  if op ~= nil and (type(op) ~= "string" or (op ~= "lwa" and known_operation and not known_operation(op))) then
    return nil, "unknown operation '" .. tostring(op) .. "' (use \"api.operationId\", \"lwa\" or omit)"
  end
  local f = { kind = kind, operation = op }
  if kind == "status" then
    f.status = tonumber(spec.status) or 500
    if f.status < 400 or f.status > 599 then return nil, "status must be 400..599" end
    f.retry_after = tonumber(spec.retry_after or spec["Retry-After"])
    if type(spec.body) == "table" then f.body = spec.body end
  elseif kind == "delay" then
    f.delay_ms = tonumber(spec.delay_ms or spec.ms or spec.delay)
    if not f.delay_ms or f.delay_ms < 0 then return nil, "delay faults need delay_ms >= 0" end
  end
  if spec.count ~= nil and spec.count ~= json.null then
    f.count = tonumber(spec.count)
    if not f.count or f.count < 1 then return nil, "count must be >= 1" end
  end
  if spec.rate ~= nil and spec.rate ~= json.null then
    f.rate = tonumber(spec.rate)
    if not f.rate or f.rate < 0 or f.rate > 1 then return nil, "rate must be 0..1" end
  end
  f.id = "F" .. tostring(meta():incr("fault_seq", 1, 0))
  if f.count then meta():set("fault_left:" .. f.id, f.count) end
  local list = util.copy(all())
  list[#list + 1] = f
  save(list)
  return f
end

function _M.clear(id)
  if not id then save({}) return true end
  local list, found = {}, false
  for _, f in ipairs(all()) do
    if f.id == id then found = true else list[#list + 1] = f end
  end
  save(list)
  return found
end

local function fires(f)
  if f.count then
    local left = meta():incr("fault_left:" .. f.id, -1, 0)
    if not left or left < 0 then return false end
  end
  if f.rate then
    local n = meta():incr("fault_n:" .. f.id, 1, 0)
    local seed = tostring(config.get().seed or 1)
    return util.unit_hash(seed .. ":" .. f.id .. ":" .. n) < f.rate
  end
  return true
end

--- Faults that apply to this request: applies delay faults (sleeping),
--- returns the first other fault that fires (or nil).
function _M.pick(opname)
  local list = all()
  if #list == 0 then return nil end
  for _, f in ipairs(list) do
    local match
    if f.operation == nil then match = opname ~= "lwa" else match = f.operation == opname end
    if match and fires(f) then
      meta():incr("stat:faults_injected", 1, 0)
      if f.kind == "delay" then
        ngx.sleep(f.delay_ms / 1000)
      else
        return f
      end
    end
  end
  return nil
end

function _M.status_response(f)
  local body = f.body
  if not body then
    local b = BODIES[f.status] or { code = "InternalFailure", message = "Injected fault." }
    body = { errors = { { code = b.code, message = b.message, details = "" } } }
  end
  local headers = {}
  if f.retry_after then headers["Retry-After"] = tostring(f.retry_after) end
  return f.status, body, headers
end

--- Corrupt an encoded body for truncated / invalid_json faults.
function _M.corrupt(f, body)
  if f.kind == "truncated" then
    local n = math.floor(#body / 2)
    if n < 1 then n = 1 end
    return body:sub(1, n)
  end
  return "<html><body>Bad Gateway</body></html>\n" .. body
end

--- close: send headers announcing the full length and part of the body, then drop the connection.
function _M.send_and_close(status, body, headers)
  ngx.status = status
  for k, v in pairs(headers) do ngx.header[k] = v end
  ngx.header["Content-Length"] = #body
  ngx.send_headers()
  ngx.print(body:sub(1, math.floor(#body / 2)))
  ngx.flush(true)
  return ngx.exit(444)
end

return _M
