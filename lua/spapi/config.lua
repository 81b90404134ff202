-- Client configuration: built-in regions, hosts and marketplaces, and credentials
-- from (in order of precedence) the config table, the environment, a profile file.
--
-- Profile file: $SPAPI_CONFIG_FILE, else $XDG_CONFIG_HOME/spapi/profiles, else
-- ~/.config/spapi/profiles. INI style; the section is the profile name
-- (`profile=` in the table, or $SPAPI_PROFILE, default "default"):
--   [default]
--   client_id = amzn1.application-oa2-client.xxx
--   client_secret = ...
--   refresh_token = Atzr|...
--   region = na
local _M = {}

local getenv, type, pairs, ipairs, tonumber, tostring = os.getenv, type, pairs, ipairs, tonumber, tostring
local fmt = string.format

_M.regions = {
  na = { host = "sellingpartnerapi-na.amazon.com", aws_region = "us-east-1" },
  eu = { host = "sellingpartnerapi-eu.amazon.com", aws_region = "eu-west-1" },
  fe = { host = "sellingpartnerapi-fe.amazon.com", aws_region = "us-west-2" },
}
_M.lwa_endpoint = "https://api.amazon.com/auth/o2/token"

-- id, country code, region
_M.marketplaces = {}
for _, m in ipairs({
  { "A2EUQ1WTGCTBG2", "CA", "na" }, { "ATVPDKIKX0DER", "US", "na" },
  { "A1AM78C64UM0Y8", "MX", "na" }, { "A2Q3Y263D00KWC", "BR", "na" },
  { "A28R8C7NBKEWEA", "IE", "eu" }, { "A1RKKUPIHCS9HS", "ES", "eu" },
  { "A1F83G8C2ARO7P", "GB", "eu" }, { "A13V1IB3VIYZZH", "FR", "eu" },
  { "AMEN7PMS3EDWL", "BE", "eu" }, { "A1805IZSGTT6HS", "NL", "eu" },
  { "A1PA6795UKMFR9", "DE", "eu" }, { "APJ6JRA9NG5V4", "IT", "eu" },
  { "A2NODRKZP88ZB9", "SE", "eu" }, { "AE08WJ6YKNBMC", "ZA", "eu" },
  { "A1C3SOZRARQ6R3", "PL", "eu" }, { "ARBP9OOSHTCHU", "EG", "eu" },
  { "A33AVAJ2PDY3EV", "TR", "eu" }, { "A17E79C6D8DWNP", "SA", "eu" },
  { "A2VIGQ35RCS4UG", "AE", "eu" }, { "A21TJRUUN4KGV", "IN", "eu" },
  { "A19VAU5U5O7RUS", "SG", "fe" }, { "A39IBJ37TRP1C6", "AU", "fe" },
  { "A1VC38T7YXB528", "JP", "fe" },
}) do
  local rec = { id = m[1], country = m[2], region = m[3] }
  _M.marketplaces[m[1]] = rec
  _M.marketplaces[m[2]] = rec
end

-- codes people use that are not the ISO country code
local ALIASES = { UK = "GB" }

--- Marketplace record by id or country code ("US", "ATVPDKIKX0DER", "uk");
--- an unknown one raises, listing the known codes.
function _M.marketplace(key)
  local m = _M.marketplaces[key]
  if m then return m end
  if type(key) == "string" then
    local up = key:upper()
    m = _M.marketplaces[ALIASES[up] or up]
    if m then return m end
  end
  local codes = {}
  for k, rec in pairs(_M.marketplaces) do
    if k == rec.country then codes[#codes + 1] = k end
  end
  for k in pairs(ALIASES) do codes[#codes + 1] = k end
  table.sort(codes)
  error(fmt("spapi.marketplace: unknown marketplace %s (known: %s, or a marketplace id)",
    type(key) == "string" and ("'" .. key .. "'") or tostring(key), table.concat(codes, ", ")), 2)
end

--- The region of an endpoint on Amazon's hosts, and whether it is production:
--- "https://sellingpartnerapi-eu.amazon.com" → "eu", true; the sandbox host →
--- "eu", false; any other host → nil.
function _M.endpoint_region(endpoint)
  local host = type(endpoint) == "string" and endpoint:match("^%a[%w+.%-]*://([^/?#]*)")
  if not host then return nil end
  host = host:gsub("^.*@", ""):gsub(":%d*$", ""):lower()
  local sandbox, r = host:match("^(.-)sellingpartnerapi%-(%a%a)%.amazon%.com%.?$")
  if not r or not _M.regions[r] or (sandbox ~= "" and sandbox ~= "sandbox.") then return nil end
  return r, sandbox == ""
end

-- marketplace ids in a parameter value (an id, a comma-separated list, or an array)
local function each_id(v, fn)
  if type(v) == "string" then
    for id in v:gmatch("[^,%s]+") do
      local r = fn(id)
      if r then return r end
    end
  elseif type(v) == "table" then
    for _, id in ipairs(v) do
      if type(id) == "string" then
        local r = fn(id)
        if r then return r end
      end
    end
  end
end

local MARKETPLACE_PARAMS = { "marketplaceId", "marketplaceIds", "MarketplaceId", "MarketplaceIds" }

--- A message when an operation's parameters (or its body's top level) name a
--- marketplace of another region than `region` (the endpoint's); else nil.
function _M.foreign_marketplace(region, endpoint, params)
  local function check(where, t)
    if type(t) ~= "table" then return nil end
    for _, name in ipairs(MARKETPLACE_PARAMS) do
      local msg = each_id(t[name], function(id)
        local m = _M.marketplaces[id]
        if m and m.id == id and m.region ~= region then
          return fmt("%s%s %s (%s) is a marketplace of region %s, but the endpoint %s is region %s",
            where, name, id, m.country, m.region, endpoint, region)
        end
      end)
      if msg then return msg end
    end
  end
  local msg = check("", params)
  if msg then return msg end
  for k, v in pairs(params) do -- the body, under `body` or its model name
    if type(v) == "table" and type(k) == "string" then
      msg = check(k .. ".", v)
      if msg then return msg end
    end
  end
end

--- Whether u is an http:// or https:// URL: the only schemes spapi sends to
--- (libcurl would also read file://, ftp://, ...).
function _M.http_url(u)
  return type(u) == "string" and u:sub(1, 8):lower():match("^https?://") ~= nil and #u > #"http://"
end

--- The scheme of a URL, for a message ("file", "ftp"; "none" without one).
function _M.scheme(u)
  return type(u) == "string" and u:match("^(%a[%w+.%-]*):") or "none"
end

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

function _M.profile_path(getenv_fn)
  local getenv = getenv_fn or getenv
  local p = getenv("SPAPI_CONFIG_FILE")
  if p and p ~= "" then return p end
  local xdg = getenv("XDG_CONFIG_HOME")
  if xdg and xdg ~= "" then return xdg .. "/spapi/profiles" end
  local home = getenv("HOME")
  if home and home ~= "" then return home .. "/.config/spapi/profiles" end
end

--- Read one profile section from an INI-style file; nil when absent.
function _M.read_profile(path, name)
  local f = path and io.open(path, "r")
  if not f then return nil end
  local section, out = nil, nil
  for line in f:lines() do
    line = trim(line)
    if line ~= "" and not line:match("^[#;]") then
      local sec = line:match("^%[(.-)%]$")
      if sec then
        section = trim(sec)
        if section == name then out = out or {} end
      elseif section == name then
        local k, v = line:match("^([%w_]+)%s*=%s*(.*)$")
        if k then out[k] = v end
      end
    end
  end
  f:close()
  return out
end

local ENV = {
  client_id = "LWA_CLIENT_ID", client_secret = "LWA_CLIENT_SECRET",
  refresh_token = "LWA_REFRESH_TOKEN", region = "SPAPI_REGION",
  endpoint = "SPAPI_ENDPOINT", lwa_endpoint = "SPAPI_LWA_ENDPOINT",
  aws_access_key = "AWS_ACCESS_KEY_ID", aws_secret_key = "AWS_SECRET_ACCESS_KEY",
  aws_session_token = "AWS_SESSION_TOKEN", redis = "SPAPI_REDIS",
}

local NUMERIC = { timeout = true, connect_timeout = true, max_retries = true,
  max_wait = true, rate_margin = true, rate_scale = true, deadline = true, retry_base = true, retry_cap = true,
  redis_connect_timeout = true, redis_command_timeout = true, token_lock_ttl = true }
local BOOLEAN = { sandbox = true, verify = true, allow_insecure = true }
local WORDS = { ["true"] = true, yes = true, on = true, ["1"] = true,
  ["false"] = false, no = false, off = false, ["0"] = false }

--- A boolean setting from a config table or a profile: a boolean, or one of
--- true/false, yes/no, on/off, 1/0 in any case. → value | nil, message naming key
function _M.boolean(key, v, where)
  if type(v) == "boolean" then return v end
  if type(v) == "string" or type(v) == "number" then
    local b = WORDS[trim(tostring(v)):lower()]
    if b ~= nil then return b end
  end
  return nil, fmt("spapi: %s'%s' must be true/false, yes/no, on/off or 1/0 (got %s)", where or "",
    key, type(v) == "string" and ("'" .. v .. "'") or tostring(v))
end

-- What a profile line gives for key (numbers and booleans parsed). → value | nil, message
local function profile_value(key, v, where)
  if BOOLEAN[key] then return _M.boolean(key, v, where) end
  if NUMERIC[key] then
    local n = tonumber(v)
    if not n then return nil, fmt("spapi: %s'%s' must be a number (got '%s')", where, key, v) end
    return n
  end
  return v
end

--- Whether a URL's host is this machine (127.0.0.0/8, ::1, localhost).
function _M.loopback(u)
  local host = type(u) == "string" and u:match("^%a[%w+.%-]*://([^/?#]*)")
  if not host then return false end
  host = host:gsub("^.*@", ""):lower()
  host = host:match("^%[(.*)%]") or host:gsub(":%d*$", "")
  return host == "localhost" or host:match("%.localhost$") ~= nil or host == "::1"
    or host:match("^127%.%d+%.%d+%.%d+$") ~= nil
end

--- Whether credentials may go to URL u: https, plain http to this machine, or
--- any http with allow_insecure. → true | nil, message
function _M.secure_enough(cfg, u, what)
  if cfg.allow_insecure or u:sub(1, 8):lower() == "https://" or _M.loopback(u) then return true end
  return nil, fmt("spapi: %s is plain http to a host that is not this machine (%s): the credentials "
    .. "would travel in clear; use https, or set allow_insecure = true", what,
    (u:match("^%a[%w+.%-]*://([^/?#]*)") or ""):gsub("^.*@", ""))
end

-- verify = false: said once per process
local warned_verify = false
local function warn(msg)
  local ngx = rawget(_G, "ngx")
  if ngx and ngx.log and ngx.WARN then ngx.log(ngx.WARN, msg) else io.stderr:write(msg, "\n") end
end

--- Merge table → env → profile into one resolved config; returns cfg or nil, err.
-- (getenv: for tests, a function standing in for os.getenv)
function _M.resolve(t, getenv_fn)
  t = t or {}
  local getenv = getenv_fn or getenv
  local cfg = {}
  local use_env = t.env ~= false
  -- a profile asked for by name (config or SPAPI_PROFILE) must exist; "default" may not
  local named = t.profile or (use_env and getenv("SPAPI_PROFILE")) or nil
  if named == "" or named == "default" then named = nil end
  local prof_path = t.profile_file or _M.profile_path(getenv)
  local prof = _M.read_profile(prof_path, named or "default")
  if named and not prof then
    return nil, "spapi: profile '" .. named .. "' not found in " .. tostring(prof_path)
  end
  prof = prof or {}
  local where = fmt("profile '%s' in %s: ", named or "default", tostring(prof_path))
  for k, v in pairs(prof) do
    local value, perr = profile_value(k, v, where)
    if value == nil then return nil, perr end
    cfg[k] = value
  end
  if use_env then
    for k, var in pairs(ENV) do
      local v = getenv(var)
      if v and v ~= "" then cfg[k] = v end
    end
  end
  for k, v in pairs(t) do
    if BOOLEAN[k] then
      local b, berr = _M.boolean(k, v)
      if b == nil then return nil, berr end
      v = b
    end
    cfg[k] = v
  end
  cfg.env, cfg.profile_file = nil, nil

  cfg.region = cfg.region or "na"
  local region = _M.regions[cfg.region]
  if not region then
    return nil, "spapi: unknown region '" .. tostring(cfg.region) .. "' (expected na, eu or fe)"
  end
  cfg.aws_region = cfg.aws_region or region.aws_region
  if not cfg.endpoint then
    cfg.endpoint = "https://" .. (cfg.sandbox and "sandbox." or "") .. region.host
  end
  cfg.lwa_endpoint = cfg.lwa_endpoint or _M.lwa_endpoint
  for _, k in ipairs({ "endpoint", "lwa_endpoint" }) do
    if not _M.http_url(cfg[k]) then
      return nil, "spapi: " .. k .. " must be an http:// or https:// URL (got scheme '" .. _M.scheme(cfg[k]) .. "')"
    end
  end
  local ok, ierr = _M.secure_enough(cfg, cfg.endpoint, "endpoint")
  if ok then ok, ierr = _M.secure_enough(cfg, cfg.lwa_endpoint, "lwa_endpoint") end
  if not ok then return nil, ierr end
  cfg.endpoint = cfg.endpoint:gsub("/+$", "")
  cfg.timeout = cfg.timeout or 30
  cfg.connect_timeout = cfg.connect_timeout or 10
  cfg.max_retries = cfg.max_retries or 3
  cfg.max_wait = cfg.max_wait or 60
  cfg.deadline = cfg.deadline or 120
  cfg.retry_base = cfg.retry_base or 0.5
  cfg.retry_cap = cfg.retry_cap or 20
  if cfg.verify == nil then cfg.verify = true end
  if cfg.verify == false and not warned_verify then
    warned_verify = true
    warn("spapi: warning: verify = false: TLS certificates and host names are not checked")
  end
  return cfg
end

return _M
