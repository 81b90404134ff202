-- `spapi sandbox start|stop|status` (see bin/spapi).
local _M = {}

local sandbox = require "spapi.sandbox"
local fmt = string.format

local USAGE = [=[
usage: spapi sandbox start  [--port N] [--dir D] [--workers N] [--speed X] [--rate-scale X]
                            [--token-lifetime S] [--seed N] [--strict-credentials FILE]
                            [--tls [--tls-port N]]
       spapi sandbox stop   [--dir D]
       spapi sandbox status [--dir D]

start runs the local SP-API emulator in a private nginx (default port %d,
default dir %s) and prints its endpoint and LWA URL.
--strict-credentials FILE: a JSON array [{"client_id":..,"client_secret":..,
"refresh_tokens":[..]}]; only these are accepted (default: any well-formed values).
--tls: also serve https on --tls-port (default port + 1), with a CA made in
DIR/tls and a certificate for 127.0.0.1, localhost and Amazon's API and LWA
host names; prints the CA's path and the https endpoint (docs/sandbox.md).
]=]

local function usage(out)
  out:write(fmt(USAGE, sandbox.DEFAULT_PORT, sandbox.default_dir()))
end

local OPTS = {
  ["--port"] = "port", ["--dir"] = "dir", ["--workers"] = "workers", ["--speed"] = "speed",
  ["--rate-scale"] = "rate_scale", ["--token-lifetime"] = "token_lifetime", ["--seed"] = "seed",
  ["--strict-credentials"] = "strict_credentials", ["--tls"] = "tls", ["--tls-port"] = "tls_port",
}
local FLAGS = { tls = true }
local NUMERIC = { port = true, workers = true, speed = true, rate_scale = true, token_lifetime = true, seed = true,
  tls_port = true }

local function parse(args)
  local opts = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local key, val = a:match("^(%-%-[%w-]+)=(.*)$")
    key = key or a
    local name = OPTS[key]
    if a == "-h" or a == "--help" then
      opts.help = true
    elseif not name then
      return nil, "unknown option " .. a
    elseif FLAGS[name] then
      if val then return nil, key .. " takes no value" end
      opts[name] = true
    else
      if not val then
        i = i + 1
        val = args[i]
        if val == nil then return nil, key .. " needs a value" end
      end
      if NUMERIC[name] then
        local n = tonumber(val)
        if not n then return nil, key .. " needs a number" end
        val = n
      end
      opts[name] = val
    end
    i = i + 1
  end
  return opts
end

local function read_credentials(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("*a")
  f:close()
  local json = require("cjson.safe").new()
  local v, jerr = json.decode(s)
  if type(v) ~= "table" then return nil, path .. ": not JSON: " .. tostring(jerr) end
  if v.credentials then v = v.credentials end
  if v.client_id then v = { v } end
  return v
end

function _M.run(args)
  local action = args[1]
  local rest = {}
  for i = 2, #args do rest[#rest + 1] = args[i] end
  local opts, err = parse(rest)
  if not action or action == "-h" or action == "--help" or (opts and opts.help) then
    usage(io.stdout)
    return action and 0 or 2
  end
  if not opts then
    io.stderr:write("spapi sandbox: ", err, "\n")
    usage(io.stderr)
    return 2
  end
  if action == "start" then
    if opts.strict_credentials then
      local creds, cerr = read_credentials(opts.strict_credentials)
      if not creds then
        io.stderr:write("spapi sandbox: --strict-credentials: ", tostring(cerr), "\n")
        return 2
      end
      opts.credentials = creds
      opts.strict_credentials = nil
    end
    local h, serr = sandbox.start(opts)
    if not h then
      io.stderr:write("spapi sandbox: ", tostring(serr), "\n")
      return 1
    end
    io.stdout:write(fmt("endpoint=%s\nlwa_endpoint=%s\ndir=%s\npid=%s\n", h.endpoint, h.lwa_endpoint, h.dir,
      tostring(h.pid())))
    io.stdout:write(fmt("export SPAPI_ENDPOINT=%s\nexport SPAPI_LWA_ENDPOINT=%s\n", h.endpoint, h.lwa_endpoint))
    if h.ca then
      io.stdout:write(fmt("https_endpoint=%s\nhttps_lwa_endpoint=%s\nca=%s\n", h.https_endpoint,
        h.https_lwa_endpoint, h.ca))
    end
    return 0
  elseif action == "stop" then
    local ok, serr = sandbox.stop(opts)
    if not ok then
      io.stderr:write("spapi sandbox: ", tostring(serr), "\n")
      return 1
    end
    io.stdout:write("stopped\n")
    return 0
  elseif action == "status" then
    local st = sandbox.status(opts)
    if st.running then
      io.stdout:write(fmt("running pid=%s\nendpoint=%s\nlwa_endpoint=%s\ndir=%s\n", tostring(st.pid), st.endpoint,
        st.lwa_endpoint, st.dir))
      if st.ca then io.stdout:write(fmt("https_endpoint=%s\nca=%s\n", st.https_endpoint, st.ca)) end
      return 0
    end
    io.stdout:write(fmt("not running (dir=%s)\n", st.dir))
    return 3
  end
  io.stderr:write("spapi sandbox: unknown action '", tostring(action), "'\n")
  usage(io.stderr)
  return 2
end

return _M
