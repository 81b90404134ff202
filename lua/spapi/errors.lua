-- The one error type of spapi. Every run-time failure (HTTP error, throttling after
-- retries, timeout, DNS, bad JSON, LWA refusal) comes back as `nil, err` where err is
-- an spapi.Error: { status, code, message, details, errors, request_id, operation,
-- retryable, kind, attempts }. Programmer errors raise instead (see raise()).
local _M = {}

local setmetatable, getmetatable, type, tostring = setmetatable, getmetatable, type, tostring
local fmt, concat = string.format, table.concat
local redact_message = require("spapi.redact").message

local Error = {}
Error.__index = Error
Error.__name = "spapi.Error"

function Error.__tostring(e)
  local parts = { "spapi" }
  if e.operation then parts[#parts + 1] = e.operation end
  local head = e.status and tostring(e.status) or (e.kind or "error")
  if e.code and e.code ~= "" then head = head .. " " .. e.code end
  parts[#parts + 1] = head
  local s = concat(parts, ": ")
  if e.message and e.message ~= "" then s = s .. ": " .. e.message end
  if e.details and e.details ~= "" then s = s .. " (" .. tostring(e.details) .. ")" end
  if e.request_id then s = s .. " [request id " .. e.request_id .. "]" end
  if e.attempts and e.attempts > 1 then s = s .. fmt(" after %d attempts", e.attempts) end
  return s
end

--- Make an error. Fields: status, code, message, details, errors, request_id,
--- operation, retryable, kind ("http", "decode", "lwa", "ratelimit", "store",
--- "config", "document", or a transport's: "timeout", "connect", "resolve",
--- "tls", "send", "recv", "closed", "other"), attempts, maybe_applied.
function _M.new(t)
  t = t or {}
  if t.retryable == nil then t.retryable = false end
  -- a transport's message names the URL: never with its query (a pre-signed
  -- document URL's is a credential)
  if t.message then t.message = redact_message(t.message) end
  return setmetatable(t, Error)
end

function _M.is(v)
  return getmetatable(v) == Error
end

-- SP-API error bodies: {"errors":[{"code":..,"message":..,"details":..}]}; a few APIs
-- (MFN v0) use the same shape; LWA uses {"error":..,"error_description":..}.
function _M.from_response(op, status, headers, decoded, raw)
  local e = { status = status, operation = op, kind = "http",
              request_id = headers and headers["x-amzn-requestid"] or nil }
  if type(decoded) == "table" then
    local list = decoded.errors
    if type(list) == "table" and type(list[1]) == "table" then
      e.code = list[1].code
      e.message = list[1].message
      local d = list[1].details
      if type(d) == "string" and d ~= "" then e.details = d end
      e.errors = list
    elseif type(decoded.error) == "string" then
      e.code = decoded.error
      e.message = decoded.error_description
    end
  end
  if not e.code then e.code = "HTTP" .. tostring(status) end
  if not e.message then
    local snippet = type(raw) == "string" and raw:sub(1, 200):gsub("%s+", " ") or ""
    e.message = snippet ~= "" and snippet or ("HTTP status " .. tostring(status))
  end
  e.retryable = status == 429 or status >= 500
  return _M.new(e)
end

--- Whether an HTTP error says the access token was stale (expired, revoked,
--- missing): a 401, or a 403 whose code, message or details speak of the token.
--- Amazon puts the reason in `details` ("The access token you provided has
--- expired.") under the message "Access to requested resource is denied.".
function _M.stale_token(e)
  local status = e.status
  if status == 401 then return true end
  if status ~= 403 then return false end
  local text = (tostring(e.code or "") .. " " .. tostring(e.message or "") .. " "
    .. tostring(e.details or "")):lower()
  return text:find("token", 1, true) ~= nil or text:find("expired", 1, true) ~= nil
end

--- Whether an HTTP error says the thing to create exists already (a duplicate
--- id): a 400 or 409 whose code, message or details say so.
function _M.duplicate(e)
  if e.status ~= 400 and e.status ~= 409 then return false end
  local text = (tostring(e.code or "") .. " " .. tostring(e.message or "") .. " "
    .. tostring(e.details or "")):lower()
  return text:find("duplicate", 1, true) ~= nil or text:find("already exist", 1, true) ~= nil
end

--- Raise a programmer error naming the operation (level 3 = the user's call site
--- by default).
function _M.raise(op, msg, level)
  error((op and ("spapi: " .. op .. ": ") or "spapi: ") .. msg, (level or 2) + 1)
end

_M.Error = Error
return _M
