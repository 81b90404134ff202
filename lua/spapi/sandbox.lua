-- The local SP-API sandbox: a stateful emulator running in a private nginx.
--
--   local sandbox = require "spapi.sandbox"
--   local sb = assert(sandbox.start{ port = 8787 })
--   print(sb.endpoint, sb.lwa_endpoint)
--   sb.control("/_sandbox/clock", { advance = 3600 })
--   sb.stop()
--
-- start{} options:
--   port            TCP port on 127.0.0.1 (default 8787; 0 = pick a free one)
--   dir             private directory for config, pid and logs
--                   (default <repo>/build/sandbox, or $TMPDIR/spapi-sandbox when installed)
--   workers         nginx worker processes (default 1; state is shared by all)
--   credentials     { { client_id=, client_secret=, refresh_tokens = { "Atzr|..." or
--                     { refresh_token=, selling_partner= } } } }; nil = accept any well-formed values
--   token_lifetime  seconds an LWA / restricted data token lives (default 3600, real time)
--   speed           sandbox clock factor (default 1): time-based progress runs this much faster
--   rate_scale      multiplies the models' rates and bursts (default 1)
--   seed            seed of the deterministic PRNG (faults with a rate, program randomness)
--   state_size      size of the program state store (nginx size, default "32m")
--   tls             true: also serve https, with a CA made in dir/tls and a certificate
--                   for 127.0.0.1, localhost and Amazon's API and LWA host names
--                   (spapi.sandbox.tls; needs the openssl command)
--   tls_port        the https port on 127.0.0.1 (default port + 1; 0 = pick a free one)
-- Runtime failures return nil, err.
local _M = {}

local nginx = require "spapi.nginx"
local cjson = require "cjson.safe"
local json = cjson.new()

local type, tostring, tonumber, pcall, require = type, tostring, tonumber, pcall, require
local fmt = string.format

_M.DEFAULT_PORT = 8787

local function source_top()
  local src = debug.getinfo(1, "S").source
  local path = src:sub(1, 1) == "@" and src:sub(2) or "./lua/spapi/sandbox.lua"
  local lua_dir = path:match("^(.*)/spapi/sandbox%.lua$") or "lua"
  return lua_dir:match("^(.*)/lua$") or (lua_dir == "lua" and ".") or nil, lua_dir
end

--- The default private directory.
function _M.default_dir()
  local top = source_top()
  if top and nginx.read_file(top .. "/Makefile") and nginx.read_file(top .. "/lua/spapi/nginx.lua") then
    return top .. "/build/sandbox"
  end
  local tmp = os.getenv("TMPDIR")
  if not tmp or tmp == "" then tmp = "/tmp" end
  return tmp .. "/spapi-sandbox"
end

local function absolute(dir)
  if dir:sub(1, 1) == "/" then return dir end
  local cwd = os.getenv("PWD")
  if not cwd or cwd == "" then
    local p = io.popen("pwd")
    cwd = p and p:read("*l") or "."
    if p then p:close() end
  end
  return (cwd .. "/" .. dir):gsub("/%./", "/")
end

local function sleep(s)
  local ok, core = pcall(require, "spapi.core")
  if ok and type(core) == "table" and core.sleep then return core.sleep(s) end
  os.execute(fmt("sleep %.3f", s))
end

local function probe(port)
  local ok, core = pcall(require, "spapi.core")
  if ok and type(core) == "table" and core.tcp_probe then
    local r = core.tcp_probe("127.0.0.1", port)
    return r and true or false
  end
  -- without the C core: ask the shell
  local p = io.popen(fmt("(exec 3<>/dev/tcp/127.0.0.1/%d) 2>/dev/null && echo up", port))
  if not p then return false end
  local out = p:read("*a") or ""
  p:close()
  return out:find("up", 1, true) ~= nil
end

--- Plain HTTP through the C core; returns status, headers, body or nil, err.
local function http(method, url, body, headers)
  local ok, core = pcall(require, "spapi.core")
  if not ok or type(core) ~= "table" or not core.session then
    return nil, "spapi.core with session() is required for the control API"
  end
  local s = core.session{}
  return s:request{ method = method, url = url, headers = headers or {}, body = body }
end
_M._http = http

local function http_conf(dir, opts)
  return table.concat({
    fmt("  lua_shared_dict spapi_state %s;", opts.state_size or "32m"),
    "  lua_shared_dict spapi_meta 4m;",
    "  lua_shared_dict spapi_tokens 16m;",
    "  lua_shared_dict spapi_buckets 8m;",
    "  lua_shared_dict spapi_docs 64m;",
    "  lua_socket_log_errors off;",
    "  client_max_body_size 64m;",
    "  client_body_buffer_size 16m;",
    "  server_tokens off;",
    fmt("  init_by_lua_block { require('spapi.sandbox.init').init(%q) }", dir .. "/sandbox.json"),
  }, "\n")
end

local SERVER = [[
    default_type application/json;
    location / {
      content_by_lua_block { require('spapi.sandbox.init').handle() }
    }
]]

-- the https listener of the server{} block (certificate files from spapi.sandbox.tls)
local function tls_server(port, files)
  return fmt([[
    listen 127.0.0.1:%d ssl;
    ssl_certificate %s;
    ssl_certificate_key %s;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:spapi_tls:1m;
]], port, files.cert, files.key)
end

-- what the handle and status say of the https side
local function add_tls(h, tls_port, ca)
  if not tls_port then return h end
  h.tls_port, h.ca = tls_port, ca
  -- by name: the certificate holds 127.0.0.1 too, but nginx's cosockets check names only
  h.https_url = fmt("https://localhost:%d", tls_port)
  h.https_endpoint, h.https_lwa_endpoint = h.https_url, h.https_url .. "/auth/o2/token"
  return h
end

local function handle_for(dir, port, tls_port, ca)
  local url = fmt("http://127.0.0.1:%d", port)
  local h = add_tls({ dir = dir, port = port, url = url, endpoint = url, lwa_endpoint = url .. "/auth/o2/token" },
    tls_port, ca)
  function h.stop() return nginx.stop_dir(dir) end
  --- control(path, tbl[, method]) → decoded body, status | nil, err
  function h.control(path, tbl, method)
    if path:sub(1, 1) ~= "/" then path = "/" .. path end
    if not path:find("^/_sandbox/") and not path:find("^/_documents/") then path = "/_sandbox" .. path end
    method = method or (tbl ~= nil and "POST" or "GET")
    local body
    if tbl ~= nil then body = assert(json.encode(tbl)) end
    local status, _, rbody = http(method, url .. path, body,
      body and { ["Content-Type"] = "application/json" } or {})
    if not status then return nil, _ end
    local decoded = rbody and rbody ~= "" and json.decode(rbody) or nil
    if tonumber(status) >= 400 then
      local msg = decoded and decoded.errors and decoded.errors[1] and decoded.errors[1].message or rbody
      return nil, fmt("sandbox control %s %s: HTTP %s %s", method, path, tostring(status), tostring(msg)), status
    end
    return decoded, status
  end
  function h.reset(opts) return h.control("/_sandbox/reset", opts or {}) end
  function h.pid() return nginx.pid(dir) end
  return h
end

--- Start a sandbox; returns a handle or nil, err.
function _M.start(opts)
  opts = opts or {}
  assert(type(opts) == "table", "spapi.sandbox.start: options table expected")
  local port = tonumber(opts.port) or _M.DEFAULT_PORT
  local picked = port == 0
  if port == 0 then
    local core = require "spapi.core"
    port = assert(core.free_port())
  end
  local dir = absolute(opts.dir or _M.default_dir())
  if opts.state_size ~= nil and not tostring(opts.state_size):match("^%d+[kKmM]?$") then
    error("spapi.sandbox.start: 'state_size' must be an nginx size like \"32m\" or \"512k\"", 2)
  end
  if type(opts.credentials) ~= "nil" and type(opts.credentials) ~= "table" then
    error("spapi.sandbox.start: 'credentials' must be an array of { client_id=, client_secret=, refresh_tokens= }", 2)
  end
  os.execute("mkdir -p " .. nginx.shell_quote(dir))
  local tls_port, files, server = nil, nil, SERVER
  if opts.tls then
    local terr
    files, terr = require("spapi.sandbox.tls").ensure(dir)
    if not files then return nil, terr end
    tls_port = tonumber(opts.tls_port) or (picked and 0 or port + 1)
    if tls_port == 0 then tls_port = assert(require("spapi.core").free_port()) end
    server = SERVER .. tls_server(tls_port, files)
  end
  local cfg = {
    port = port, workers = opts.workers or 1,
    credentials = opts.credentials,
    token_lifetime = tonumber(opts.token_lifetime) or 3600,
    speed = tonumber(opts.speed) or 1,
    rate_scale = tonumber(opts.rate_scale) or 1,
    seed = tonumber(opts.seed) or 1,
    lua_path = opts.lua_path,
    tls_port = tls_port, ca = files and files.ca,
  }
  -- it holds the credentials (--strict-credentials): made afresh, readable by
  -- its owner only, before a byte is written
  local path = dir .. "/sandbox.json"
  os.execute("umask 077 && rm -f " .. nginx.shell_quote(path) .. " && : > " .. nginx.shell_quote(path))
  local ok, err = nginx.write_file(path, assert(json.encode(cfg)))
  if not ok then return nil, "cannot write " .. dir .. "/sandbox.json: " .. tostring(err) end
  local h, serr = nginx.start{
    dir = dir, port = port, workers = cfg.workers, http = http_conf(dir, opts), server = server,
    log_level = opts.log_level or "warn", access_log = opts.access_log,
  }
  if not h then return nil, serr end
  for _ = 1, 200 do
    if probe(port) then return handle_for(dir, port, tls_port, files and files.ca) end
    sleep(0.025)
  end
  nginx.stop_dir(dir)
  local log = nginx.read_file(dir .. "/logs/error.log") or ""
  return nil, "sandbox did not come up on port " .. port .. ": " .. log:sub(-2000)
end

--- Stop the sandbox running in dir (default dir when omitted).
function _M.stop(opts)
  opts = opts or {}
  return nginx.stop_dir(absolute(opts.dir or _M.default_dir()))
end

--- { running = bool, pid =, port =, url =, endpoint =, lwa_endpoint =, dir = }
function _M.status(opts)
  opts = opts or {}
  local dir = absolute(opts.dir or _M.default_dir())
  local s = nginx.read_file(dir .. "/sandbox.json")
  local cfg = s and json.decode(s) or {}
  local pid = nginx.pid(dir)
  local alive = false
  if pid then
    local r = os.execute(fmt("kill -0 %d 2>/dev/null", pid))
    alive = (r == true or r == 0)
  end
  local st = { dir = dir, pid = alive and pid or nil, running = false }
  if cfg.port then
    st.port = cfg.port
    st.url = fmt("http://127.0.0.1:%d", cfg.port)
    st.endpoint = st.url
    st.lwa_endpoint = st.url .. "/auth/o2/token"
    st.running = alive and probe(cfg.port)
    add_tls(st, cfg.tls_port, cfg.ca)
  end
  return st
end

--- A handle for a sandbox already running on url (e.g. from SPAPI_TEST_SANDBOX_URL).
function _M.attach(url)
  local port = tonumber(url:match(":(%d+)/?$")) or 80
  local h = handle_for(nil, port)
  h.url, h.endpoint, h.lwa_endpoint = url:gsub("/$", ""), url:gsub("/$", ""), url:gsub("/$", "") .. "/auth/o2/token"
  h.stop = function() return true end
  return h
end

--- nginx side: content_by_lua entry (delegates to spapi.sandbox.init).
function _M.handle() return require("spapi.sandbox.init").handle() end

return _M
