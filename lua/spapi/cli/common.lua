-- What the spapi subcommands share: the exit codes, the client flags
-- (--profile, --endpoint, --lwa-endpoint, --region, --sandbox), building the
-- client, reporting an error (text, or one JSON object with --json), terminals.
--
-- Exit codes (documented in the README):
--   0 success · 1 an API error · 2 a usage error (unknown operation, bad or
--   missing parameter, bad flag) · 3 a network failure or timeout (reaching LWA
--   too) · 4 an LWA or credentials failure
local _M = {}

local errors = require "spapi.errors"

local type, tostring, ipairs, pairs = type, tostring, ipairs, pairs
local fmt = string.format

_M.OK, _M.API, _M.USAGE, _M.NETWORK, _M.CREDENTIALS = 0, 1, 2, 3, 4

local NETWORK_KINDS = { timeout = true, connect = true, resolve = true, tls = true, send = true, recv = true,
  closed = true, other = true, deadline = true }

--- The exit code for a run-time error (an spapi.Error).
function _M.exit_code(err)
  if errors.is(err) then
    if NETWORK_KINDS[err.kind] then return _M.NETWORK end
    if err.kind == "lwa" or err.kind == "config" then return _M.CREDENTIALS end
    if err.kind == "usage" then return _M.USAGE end
  end
  return _M.API
end

--- A usage error (exit 2) as an spapi.Error, so it prints like the others.
function _M.usage_error(message, operation)
  return errors.new{ kind = "usage", code = "UsageError", message = message, operation = operation }
end

-- a message raised by spapi ("file.lua:12: spapi: ...") without the position
function _M.raised_message(e)
  if errors.is(e) then return e end
  local s = tostring(e)
  return (s:gsub("^[^\n]-:%d+: (spapi)", "%1"))
end

--- Is file descriptor fd (0 stdin, 1 stdout, 2 stderr) a terminal? (spapi.fs, asked once)
function _M.isatty(fd)
  return require("spapi.fs").isatty(fd)
end

---------------------------------------------------------------------------
-- client flags
---------------------------------------------------------------------------
local VALUE_FLAGS = { ["--profile"] = "profile", ["--endpoint"] = "endpoint", ["--lwa-endpoint"] = "lwa_endpoint",
  ["--region"] = "region" }

_M.CLIENT_FLAGS_HELP = [[
client options:
  --profile NAME        a section of the profile file ($SPAPI_CONFIG_FILE, ~/.config/spapi/profiles);
                        its values win over the environment's LWA_* and SPAPI_* variables
  --endpoint URL        the SP-API endpoint (e.g. the local sandbox's http://127.0.0.1:8787)
  --lwa-endpoint URL    the LWA token endpoint (the local sandbox's is <endpoint>/auth/o2/token)
  --region na|eu|fe     the region (default na, or SPAPI_REGION)
  --sandbox             Amazon's sandbox hosts (sandbox.sellingpartnerapi-*.amazon.com)
Credentials come from the environment (LWA_CLIENT_ID, LWA_CLIENT_SECRET, LWA_REFRESH_TOKEN,
SPAPI_ENDPOINT, SPAPI_LWA_ENDPOINT, SPAPI_REGION) or the profile file.
]]

--- If args[i] is a client flag, store it in opts and return how many arguments
--- it took (1 or 2); 0 when it is not one; nil, message when its value is missing.
function _M.client_flag(args, i, opts)
  local a = args[i]
  if a == "--sandbox" then opts.sandbox = true return 1 end
  local name, value = a:match("^(%-%-[%w-]+)=(.*)$")
  if name and VALUE_FLAGS[name] then opts[VALUE_FLAGS[name]] = value return 1 end
  local key = VALUE_FLAGS[a]
  if not key then return 0 end
  local v = args[i + 1]
  if v == nil or v == "" then return nil, a .. " needs a value" end
  opts[key] = v
  return 2
end

--- The client for opts (from client_flag) → client | nil, err (an spapi.Error
--- whose exit code says usage or credentials).
function _M.client(opts)
  local spapi = require "spapi"
  local cfg = {}
  for k, v in pairs(opts or {}) do cfg[k] = v end
  -- a profile asked for by name is what the user wants, not the environment's
  -- credentials (the profile file itself is still found through the environment)
  if cfg.profile then cfg.env = false end
  if cfg.debug == nil and _M.isatty(2) then cfg.debug = _M.wait_notice end
  local ok, sp, msg = pcall(spapi.client, cfg)
  if not ok then return nil, _M.usage_error(_M.raised_message(sp)) end
  if sp then return sp end
  msg = tostring(msg)
  if msg:find("unknown region", 1, true) then return nil, _M.usage_error(msg) end
  return nil, errors.new{ kind = "config", message = msg,
    code = msg:find("profile '", 1, true) and "ProfileNotFound" or "MissingCredentials" }
end

--- The client's debug hook on a terminal: a line on stderr when an answer
--- means a wait (429: throttled, 5xx, a lost connection), so a long silence
--- has a reason on the screen. (Secrets never reach the hook: spapi.redact.)
function _M.wait_notice(ev)
  local what
  if ev.phase == "response" and (ev.status == 429 or ev.status >= 500) then
    what = ev.status == 429 and "429 (throttled): waiting to retry" or (tostring(ev.status) .. " from the server")
  elseif ev.phase == "error" then
    what = tostring(ev.kind or "network") .. " failure: " .. tostring(ev.message)
  end
  if what then
    io.stderr:write("\r\27[K", "spapi: ", tostring(ev.operation or "request"), ": ", what, "\n")
    io.stderr:flush()
  end
end

---------------------------------------------------------------------------
-- reporting
---------------------------------------------------------------------------
local FIELDS = { "kind", "status", "code", "message", "details", "request_id", "operation", "retryable", "attempts" }

--- err (an spapi.Error or a message) → a plain table for JSON.
function _M.error_table(err, code)
  local t = { exit_code = code }
  if errors.is(err) then
    for _, k in ipairs(FIELDS) do t[k] = err[k] end
    if type(err.errors) == "table" then t.errors = err.errors end
  else
    t.kind, t.code, t.message = "usage", "UsageError", tostring(err)
  end
  return t
end

--- Print err on stderr (one JSON object when as_json) and return its exit code.
function _M.report(err, as_json, prefix)
  local code = errors.is(err) and _M.exit_code(err) or _M.USAGE
  if as_json then
    local json = require "spapi.json"
    io.stderr:write((json.encode(_M.error_table(err, code))), "\n")
  elseif errors.is(err) and err.kind == "usage" then
    local m = tostring(err.message)
    if not m:find("^spapi") then m = (prefix or "spapi") .. ": " .. m end
    io.stderr:write(m, "\n")
  else
    io.stderr:write(tostring(err), "\n")
  end
  return code
end

---------------------------------------------------------------------------
-- the environment of scripts and of the REPL
---------------------------------------------------------------------------
--- A global environment for user code: _G's globals plus `spapi` (the module)
--- and `sp`, a client built from opts (client flags) on first use — code that
--- never touches `sp` needs no credentials; code that does gets the
--- credentials error raised as an spapi.Error.
function _M.env(opts)
  local spapi = require "spapi"
  local env = { spapi = spapi }
  setmetatable(env, { __index = function(t, k)
    if k == "sp" then
      local sp, err = _M.client(opts)
      if not sp then error(err, 2) end
      rawset(t, "sp", sp)
      return sp
    end
    return _G[k]
  end })
  return env
end

--- Load a chunk into env (both Lua worlds) → function | nil, message
function _M.load(text, chunkname, env)
  if setfenv then -- Lua 5.1 / LuaJIT
    local f, err = loadstring(text, chunkname)
    if f then setfenv(f, env) end
    return f, err
  end
  return load(text, chunkname, "t", env)
end

--- What a raised error value means for the user: its text and the exit code
--- (an spapi.Error by its kind; a programmer error raised by spapi: usage; else 1).
function _M.failure(e)
  if errors.is(e) then return tostring(e), _M.exit_code(e) end
  local s = tostring(e)
  if s:find("^spapi[%s%.:]") or s:find("^[^\n]-:%d+: spapi[%s%.:]") then return s, _M.USAGE end
  return s, _M.API
end

--- Read a whole file ("-" = stdin) → text | nil, message.
function _M.read_file(path)
  if path == "-" then return io.stdin:read("*a") end
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("*a")
  f:close()
  return s
end

return _M
