-- Sandbox configuration shared by the workers (lua_shared_dict "spapi_meta"):
-- credentials, token lifetime, clock speed, rate scale, seed.
-- Each worker caches the decoded table until the version changes.
local _M = {}

local util = require "spapi.sandbox.util"
local json = util.json
local ngx = ngx

local DEFAULTS = {
  token_lifetime = 3600, speed = 1, rate_scale = 1, seed = 1,
}

local cached, cached_ver

local function meta() return ngx.shared.spapi_meta end

function _M.get()
  local ver = meta():get("config_ver") or 0
  if cached and cached_ver == ver then return cached end
  local s = meta():get("config")
  local cfg = s and json.decode(s) or {}
  for k, v in pairs(DEFAULTS) do
    if cfg[k] == nil or cfg[k] == json.null then cfg[k] = v end
  end
  if cfg.credentials == json.null then cfg.credentials = nil end
  cached, cached_ver = cfg, ver
  return cfg
end

--- Merge changes into the configuration (nil values leave a key unchanged;
--- json.null or false clears it).
function _M.set(changes)
  local cfg = util.copy(_M.get())
  for k, v in pairs(changes) do
    if v == json.null or v == false then cfg[k] = nil else cfg[k] = v end
  end
  meta():set("config", assert(json.encode(cfg)))
  meta():incr("config_ver", 1, 0)
  cached = nil
  return _M.get()
end

--- Called from init_by_lua with the JSON file written by spapi.sandbox.start.
function _M.load_file(path)
  local cfg = {}
  local f = io.open(path, "rb")
  if f then
    local s = f:read("*a")
    f:close()
    cfg = json.decode(s) or {}
  end
  for k, v in pairs(DEFAULTS) do
    if cfg[k] == nil then cfg[k] = v end
  end
  cfg.initial = { speed = cfg.speed, seed = cfg.seed, rate_scale = cfg.rate_scale,
                  token_lifetime = cfg.token_lifetime }
  meta():set("config", assert(json.encode(cfg)))
  meta():incr("config_ver", 1, 0)
  return cfg
end

return _M
