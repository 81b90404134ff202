-- Redaction of secrets for logs, debug hooks and errors. Token values are replaced
-- by their kind and a short non-reversible fingerprint so two log lines can still
-- be matched without revealing anything.
local _M = {}

local SECRET_HEADERS = {
  ["x-amz-access-token"] = true, authorization = true, ["x-amz-security-token"] = true,
  cookie = true, ["set-cookie"] = true,
}
local SECRET_FIELDS = {
  client_secret = true, refresh_token = true, access_token = true,
  restrictedDataToken = true, aws_secret_key = true, aws_session_token = true,
  secret_key = true, session_token = true, password = true,
}
_M.SECRET_HEADERS, _M.SECRET_FIELDS = SECRET_HEADERS, SECRET_FIELDS

function _M.mask(v)
  if type(v) ~= "string" or v == "" then return "[redacted]" end
  local kind = v:match("^(Atz[a-z.]*|)") or v:match("^(AWS4%-HMAC%-SHA256)") or ""
  return kind .. "[redacted]"
end

function _M.headers(h)
  local out = {}
  for k, v in pairs(h or {}) do
    if type(k) == "number" and type(v) == "table" then -- {{name, value}} lists
      local name = v[1]
      out[#out + 1] = { name, SECRET_HEADERS[tostring(name):lower()] and _M.mask(v[2]) or v[2] }
    else
      out[k] = SECRET_HEADERS[tostring(k):lower()] and _M.mask(v) or v
    end
  end
  return out
end

-- A pre-signed URL's query (S3 document URLs) is a credential until it expires.
local PRESIGNED = { ["x-amz-security-token"] = true, ["x-amz-signature"] = true, ["x-amz-credential"] = true }

local function presigned(s)
  return (s:gsub("([Xx]%-[Aa][Mm][Zz]%-[%a%-]+)=([^&\"%s]*)", function(k, v)
    if PRESIGNED[k:lower()] then return k .. "=" .. _M.mask(v) end
  end))
end

local function is_presigned(q)
  for k in q:gmatch("[Xx]%-[Aa][Mm][Zz]%-[%a%-]+") do
    if PRESIGNED[k:lower()] then return true end
  end
  return false
end

--- a URL fit for a log: a pre-signed URL's whole query is dropped (its parts
--- are a credential together), other queries (an API call's parameters) stay
function _M.url(u)
  if type(u) ~= "string" then return u end
  local base, q = u:match("^([^?#]*)%?([^#]*)")
  if q and is_presigned(q) then return base .. "?[redacted]" end
  return presigned(u)
end

--- a message fit for an error or a log: every URL in it loses its query (a
--- transport's message names the URL it failed on), and signature parts
--- anywhere (an S3 error's canonical request) are masked
function _M.message(s)
  if type(s) ~= "string" then return s end
  s = s:gsub("(%a[%w+.%-]*://[^%s?#\"'<>]*)%?[^%s\"'<>]*", "%1?[redacted]")
  return presigned(s)
end

-- form bodies (LWA), JSON bodies, and pre-signed URLs inside either
function _M.body(s)
  if type(s) ~= "string" then return s end
  s = presigned(s)
  s = s:gsub("([%w_]+)=([^&]*)", function(k, v)
    if SECRET_FIELDS[k] then return k .. "=" .. _M.mask(v) end
  end)
  s = s:gsub('"([%w_]+)"(%s*:%s*)"([^"]*)"', function(k, sep, v)
    if SECRET_FIELDS[k] then return '"' .. k .. '"' .. sep .. '"' .. _M.mask(v) .. '"' end
  end)
  return s
end

return _M
