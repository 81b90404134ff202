-- Support for the CLI specs: bin/spapi run as a user runs it (stdout and stderr
-- apart), a private sandbox with an access log (what the server received) and
-- known credentials, and a tmux session as the user's terminal.
local H = require "helpers"

local S = {}

S.CLIENT_ID = "amzn1.application-oa2-client.clispec"
S.CLIENT_SECRET = "cli-spec-secret-5f1e2d"
S.REFRESH_TOKEN = "Atzr|cli-spec-refresh-9a8b7c"
S.PROFILE_CLIENT_ID = "amzn1.application-oa2-client.fromprofile" -- a second application, in a profile file

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
S.q = q

local function read(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end
S.read = read

--- A sandbox of this spec file's own (access log on, credentials fixed) → handle
function S.sandbox()
  local dir = H.tmpdir("cli-sandbox")
  local h, err
  for _ = 1, 3 do
    h, err = require("spapi.sandbox").start{ port = H.free_port(), dir = dir, access_log = true, seed = 7,
      credentials = { { client_id = S.CLIENT_ID, client_secret = S.CLIENT_SECRET, refresh_tokens = { S.REFRESH_TOKEN } },
        { client_id = S.PROFILE_CLIENT_ID, client_secret = S.CLIENT_SECRET, refresh_tokens = { S.REFRESH_TOKEN } } } }
    if h or not tostring(err):find("in use", 1, true) then break end
  end
  assert(h, err)
  --- the request lines the sandbox received since the last call (LWA's left out)
  local seen = 0
  function h.requests()
    local log = read(dir .. "/logs/access.log")
    local out = {}
    for line in log:sub(seen + 1):gmatch("[^\n]+") do
      local req = line:match('"(%u+ [^"]-) HTTP/[%d.]+"')
      if req and not req:find(" /auth/o2/token", 1, true) then out[#out + 1] = req end
    end
    seen = #log
    return out
  end
  return h
end

--- The environment a user sets for the sandbox h (overrides: name → value, false = unset)
function S.env(h, overrides)
  local vars = {
    LWA_CLIENT_ID = S.CLIENT_ID, LWA_CLIENT_SECRET = S.CLIENT_SECRET, LWA_REFRESH_TOKEN = S.REFRESH_TOKEN,
    SPAPI_ENDPOINT = h and h.endpoint, SPAPI_LWA_ENDPOINT = h and h.lwa_endpoint,
    SPAPI_CONFIG_FILE = "/nonexistent", SPAPI_PROFILE = false, SPAPI_REGION = false,
  }
  for k, v in pairs(overrides or {}) do vars[k] = v end
  local unset, set = {}, {}
  local names = {}
  for k in pairs(vars) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    local v = vars[k]
    if v then set[#set + 1] = k .. "=" .. q(v) else unset[#unset + 1] = "-u " .. k end
  end
  return "env " .. table.concat(unset, " ") .. " " .. table.concat(set, " ")
end

--- Run bin/spapi with args (a shell string) in env → rc, stdout, stderr. opts.stdin: text.
function S.spapi(env, args, opts)
  opts = opts or {}
  local dir = H.tmpdir("cli-run")
  local input = "/dev/null"
  if opts.stdin then
    input = dir .. "/stdin"
    local f = assert(io.open(input, "wb"))
    f:write(opts.stdin)
    f:close()
  end
  local cmd = string.format("cd %s && %s bin/spapi %s < %s > %s/out 2> %s/err; echo $? > %s/rc",
    q(H.root), env or "", args, q(input), q(dir), q(dir), q(dir))
  os.execute(cmd)
  local rc = tonumber(read(dir .. "/rc"):match("%d+"))
  local out, err = read(dir .. "/out"), read(dir .. "/err")
  os.execute("rm -rf " .. q(dir))
  return rc, out, err
end

--- Lines of text
function S.lines(s)
  local t = {}
  for line in s:gmatch("[^\n]+") do t[#t + 1] = line end
  return t
end

--- Assert that no secret of the spec's credentials is in s.
function S.no_secret(s)
  assert(not s:find(S.CLIENT_SECRET, 1, true), "the client secret was printed:\n" .. s)
  assert(not s:find(S.REFRESH_TOKEN:sub(6), 1, true), "the refresh token was printed:\n" .. s)
  assert(not s:find("Atz[%a.]*|[^%[]"), "a token was printed:\n" .. s)
end

return S
