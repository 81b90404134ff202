-- Shared spec helpers: servers on 127.0.0.1 with ephemeral ports, temp dirs.
-- Servers started here are stopped when the Lua state closes (busted exits).
local nginx = require "spapi.nginx"

local H = {}
H.root = os.getenv("SPAPI_ROOT") or os.getenv("PWD") or "."

-- Amazon's raw SP-API models as one folder of .json files, found by scripts/models.sh
-- ($SPAPI_MODELS, a folder or a checkout of selling-partner-api-models, then
-- ../shared/models); nil when there are none. Only the specs that check generated
-- files against the models need them (H.it_with_models).
local function find_models()
  local p = io.popen("'" .. H.root:gsub("'", "'\\''") .. "/scripts/models.sh' 2>/dev/null")
  local dir = p:read("*l")
  p:close()
  return dir ~= "" and dir or nil
end
H.models = find_models()
H.MODELS_HINT = "they need Amazon's SP-API models: set SPAPI_MODELS to a checkout of"
  .. " https://github.com/amzn/selling-partner-api-models (or to a folder of its model .json files),"
  .. " or put the models in ../shared/models"

--- Record a test as skipped, not run: scripts/test.sh counts the lines of
--- $SPAPI_TEST_DIR/skipped and prints each distinct reason once.
function H.skip(name, reason)
  local dir = os.getenv("SPAPI_TEST_DIR")
  local f = dir and io.open(dir .. "/skipped", "a")
  if f then
    f:write(reason:gsub("\n", " "), "\t", name:gsub("\n", " "), "\n")
    f:close()
  else
    io.stderr:write("skipped: ", name, " (", reason, ")\n")
  end
end

--- busted's `it` for tests that need something the repository does not hold: with
--- `have` true it is `it`; otherwise each test is recorded as skipped (H.skip) and not run.
function H.it_needing(have, reason, it_fn)
  if have then return it_fn end
  return function(name) H.skip(name, reason) end
end

--- `it` for tests that need Amazon's raw models (H.models).
function H.it_with_models(it_fn)
  return H.it_needing(H.models ~= nil, H.MODELS_HINT, it_fn)
end

local started = {}
-- a sentinel whose finaliser stops every server when the state closes
H._sentinel = setmetatable({}, { __gc = function()
  for _, h in ipairs(started) do pcall(h.stop) end
end })
if _VERSION == "Lua 5.1" then -- LuaJIT: __gc on tables needs a proxy userdata
  local proxy = newproxy(true)
  getmetatable(proxy).__gc = function()
    for _, h in ipairs(started) do pcall(h.stop) end
  end
  H._proxy = proxy
end

local counter = 0
function H.tmpdir(tag)
  counter = counter + 1
  -- unique across the busted processes and spec files that reload this module
  local ok, core = pcall(require, "spapi.core")
  local salt = ok and core.hex(core.random_bytes(4)) or tostring(math.random(1e9))
  -- scripts/test.sh gives each run its own directory (and cleans up only that)
  local base = os.getenv("SPAPI_TEST_DIR") or (H.root .. "/build/test")
  local dir = string.format("%s/tmp-%s-%d-%s-%d", base, tag or "t",
    math.floor(os.time()), salt, counter)
  os.execute("rm -rf '" .. dir .. "' && mkdir -p '" .. dir .. "'")
  return dir
end

--- Run a shell command → exit code, combined output.
function H.run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1; echo \"rc=$?\""))
  local out = p:read("*a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return rc, (out:gsub("rc=%d+%s*$", ""))
end

--- fn(api_key, api_table, op_name, op) for every operation of every API, in name order.
function H.each_operation(fn)
  local index = require "spapi.operations"
  local apis = {}
  for k in pairs(index.apis) do apis[#apis + 1] = k end
  table.sort(apis)
  for _, api in ipairs(apis) do
    local t = require(index.apis[api])
    local names = {}
    for n in pairs(t.operations) do names[#names + 1] = n end
    table.sort(names)
    for _, n in ipairs(names) do fn(api, t, n, t.operations[n]) end
  end
end

function H.free_port()
  return require("spapi.core").free_port()
end

--- Start a private nginx with the given server{} body (and optional http{} extras).
-- Returns the handle ({ url, port, dir, stop }).
function H.nginx(server, http, opts)
  opts = opts or {}
  local h = assert(nginx.start{
    dir = H.tmpdir("nginx"), port = opts.port or H.free_port(),
    server = server, http = http, workers = opts.workers,
    lua_path = H.root .. "/spec/support/?.lua",
  })
  started[#started + 1] = h
  return h
end

--- A scripted SP-API stand-in (spec/support/mock_api.lua) in a real nginx:
-- LWA, RDTs, token checks, and per-path queues of scripted responses.
function H.mock_api()
  local h = H.nginx([[
    location / { content_by_lua_block { require("mock_api").handle() } }
  ]], "lua_shared_dict mock 8m;")
  h.endpoint = h.url
  h.lwa_endpoint = h.url .. "/auth/o2/token"
  local core = require "spapi.core"
  local json = require "spapi.json"
  local s = core.session{ timeout = 10 }
  --- control: h.ctl("POST", "/_mock/script", {...}) → decoded body
  function h.ctl(method, path, body)
    local status, _, raw = s:request{ method = method, url = h.url .. path,
      headers = { ["Content-Type"] = "application/json" }, body = body and json.encode(body) or nil }
    assert(status == 200, "mock control " .. path .. " failed: " .. tostring(status) .. " " .. tostring(raw))
    return json.decode(raw)
  end
  function h.reset(settings) return h.ctl("POST", "/_mock/reset", settings or {}) end
  --- queue scripted responses for a path (Lua pattern matched against the path)
  function h.script(path, responses) return h.ctl("POST", "/_mock/script", { path = path, responses = responses }) end
  function h.log() return h.ctl("GET", "/_mock/log") end
  function h.counters() return h.ctl("GET", "/_mock/counters") end
  function h.client(extra)
    local cfg = { endpoint = h.endpoint, lwa_endpoint = h.lwa_endpoint, client_id = "amzn1.application-oa2-client.test",
      client_secret = "test-secret-value", refresh_token = "Atzr|test-refresh-token", env = false,
      retry_base = 0.05, retry_cap = 0.2 }
    for k, v in pairs(extra or {}) do cfg[k] = v end
    return assert(require("spapi").client(cfg))
  end
  return h
end

-- Sandbox (spapi.sandbox) ---------------------------------------------------
-- ONE sandbox per busted process, started lazily (or the one at
-- SPAPI_TEST_SANDBOX_URL), stopped at exit. Specs talk plain HTTP to it.
-- busted reloads this module for every spec file (insulation), so the one
-- sandbox of the process is kept in the Lua registry, with its own stopper.
local REG = debug.getregistry()
local shared = REG["spapi.spec.sandbox"]
if not shared then
  shared = {}
  REG["spapi.spec.sandbox"] = shared
  local function stop() if shared.handle then pcall(shared.handle.stop) end end
  if _VERSION == "Lua 5.1" then
    shared.proxy = newproxy(true)
    getmetatable(shared.proxy).__gc = stop
  else
    shared.sentinel = setmetatable({}, { __gc = stop })
  end
end
local sandbox_session

local function sandbox_http_session()
  if not sandbox_session then
    sandbox_session = require("spapi.core").session{ timeout = 30 }
  end
  return sandbox_session
end

-- headers as returned by the core → table with lowercase names
local function lower_headers(hs)
  local out = {}
  for k, v in pairs(hs or {}) do
    if type(k) == "number" and type(v) == "string" then
      local name, val = v:match("^([^:]+):%s*(.-)%s*$")
      if name then out[name:lower()] = val end
    elseif type(k) == "string" then
      out[k:lower()] = type(v) == "table" and v[#v] or v
    end
  end
  return out
end
H.lower_headers = lower_headers

--- The shared sandbox handle. opts.reset = true (or a table of reset options)
--- clears its state through the control API first.
function H.sandbox(opts)
  opts = opts or {}
  if not shared.handle then
    local sandbox = require "spapi.sandbox"
    local url = os.getenv("SPAPI_TEST_SANDBOX_URL")
    if url and url ~= "" then
      shared.handle = sandbox.attach(url)
    else
      local h, err
      for _ = 1, 3 do -- another process may grab the free port first
        h, err = sandbox.start{
          port = H.free_port(), dir = H.tmpdir("sandbox"), workers = 2, seed = 42,
          lua_path = os.getenv("SPAPI_SANDBOX_LUA_PATH"),
        }
        if h or not tostring(err):find("in use", 1, true) then break end
      end
      shared.handle = assert(h, err)
    end
  end
  local sb = shared.handle
  if opts.reset then
    assert(sb.reset(type(opts.reset) == "table" and opts.reset or nil))
    -- back to the start-up configuration as well
    assert(sb.control("/_sandbox/config", { token_lifetime = 3600, rate_scale = 1, credentials = false }))
  end
  return sb
end

-- every 2xx JSON body the sandbox returns to a spec is checked against the model's
-- response schema (SPAPI_SANDBOX_VALIDATE=0 turns the check off)
local VALIDATE = os.getenv("SPAPI_SANDBOX_VALIDATE") ~= "0"

--- Plain HTTP to the sandbox: H.sandbox_http(method, path_or_url, { token=, body= (table → JSON | string),
--- headers=, query= }) → status, headers (lowercase names), decoded JSON body (or nil), raw body.
--- On a transport failure: nil, err.
function H.sandbox_http(method, path, o)
  o = o or {}
  local json = require "cjson.safe"
  local url = path:find("^https?://") and path or (H.sandbox().url .. path)
  local headers = {}
  for k, v in pairs(o.headers or {}) do headers[k] = v end
  if o.token then headers["x-amz-access-token"] = o.token end
  local body = o.body
  if type(body) == "table" then
    body = assert(json.encode(body))
    headers["Content-Type"] = headers["Content-Type"] or "application/json"
  end
  if o.query then
    local parts = {}
    local keys = {}
    for k in pairs(o.query) do keys[#keys + 1] = k end
    table.sort(keys)
    local enc = require("spapi.core").urlencode
    for _, k in ipairs(keys) do parts[#parts + 1] = enc(k) .. "=" .. enc(tostring(o.query[k])) end
    url = url .. (url:find("?", 1, true) and "&" or "?") .. table.concat(parts, "&")
  end
  local status, hs, raw = sandbox_http_session():request{ method = method, url = url, headers = headers, body = body }
  if not status then return nil, hs end
  local decoded = raw and raw ~= "" and json.decode(raw) or nil
  if VALIDATE and status >= 200 and status < 300 and decoded ~= nil then
    -- survey mode: report 2xx bodies that do not follow the model (does not fail the spec)
    local p = url:match("^https?://[^/]+(/[^?]*)") or ""
    if not p:find("^/_") and p ~= "/auth/o2/token" then
      local errs = require("sandbox.schema").errors(method, p, status, decoded)
      if #errs > 0 then
        error(string.format("sandbox response does not follow the model: %s %s %d:\n  %s", method, p, status,
          table.concat(errs, "\n  ")), 2)
      end
    end
  end
  return status, lower_headers(hs), decoded, raw
end

--- An LWA access token from the sandbox (refresh_token grant unless opts.scope is given).
function H.sandbox_token(opts)
  opts = opts or {}
  local enc = require("spapi.core").urlencode
  local form
  if opts.scope then
    form = "grant_type=client_credentials&scope=" .. enc(opts.scope)
  else
    form = "grant_type=refresh_token&refresh_token=" .. enc(opts.refresh_token or "Atzr|spec-refresh-token")
  end
  form = form .. "&client_id=" .. enc(opts.client_id or "amzn1.application-oa2-client.spec")
    .. "&client_secret=" .. enc(opts.client_secret or "spec-client-secret")
  local status, _, body, raw = H.sandbox_http("POST", "/auth/o2/token", {
    body = form, headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } })
  assert(status == 200, "sandbox LWA failed: " .. tostring(status) .. " " .. tostring(raw))
  return body.access_token, body
end

--- A restricted data token for resources = { { method=, path= }, ... }.
function H.sandbox_rdt(resources, token)
  local status, _, body, raw = H.sandbox_http("POST", "/tokens/2021-03-01/restrictedDataToken", {
    token = token or H.sandbox_token(), body = { restrictedResources = resources } })
  assert(status == 200, "sandbox RDT failed: " .. tostring(status) .. " " .. tostring(raw))
  return body.restrictedDataToken
end

-- Redis ---------------------------------------------------------------------
--- A private redis-server (Debian's) on 127.0.0.1 with its own directory and an
--- ephemeral port, nothing persisted; stopped when the Lua state closes.
--- opts.password: requirepass. Returns { host, port, dir, url (redis://…), pid(),
--- stop(), start() (again, on the same port and directory), command(...) (one
--- command on a fresh connection → reply | nil, err) }.
function H.redis(opts)
  opts = opts or {}
  local core = require "spapi.core"
  local h = { host = "127.0.0.1", dir = H.tmpdir("redis") }
  local function read(name)
    local f = io.open(h.dir .. "/" .. name)
    if not f then return nil end
    local s = f:read("*a")
    f:close()
    return s
  end
  function h.pid() return tonumber((read("redis.pid") or ""):match("%d+")) end
  function h.start()
    local cmd = string.format("redis-server --bind 127.0.0.1 --port %d --dir '%s' --save '' --appendonly no"
      .. " --daemonize yes --pidfile '%s/redis.pid' --logfile '%s/redis.log'%s",
      h.port, h.dir, h.dir, h.dir, opts.password and (" --requirepass '" .. opts.password .. "'") or "")
    local rc = H.run(cmd)
    if rc ~= 0 then return nil, "redis-server failed to start" end
    for _ = 1, 200 do
      if h.pid() and core.tcp_probe(h.host, h.port, 0.2) then return true end
      core.sleep(0.025)
    end
    return nil, "redis-server did not come up: " .. tostring(read("redis.log"))
  end
  function h.stop()
    local pid = h.pid()
    if not pid then return nil, "not running" end
    H.run("kill -TERM " .. pid)
    for _ = 1, 200 do
      if H.run("kill -0 " .. pid .. " 2>/dev/null") ~= 0 then break end
      core.sleep(0.025)
    end
    H.run("kill -KILL " .. pid .. " 2>/dev/null")
    os.remove(h.dir .. "/redis.pid")
    return true
  end
  function h.command(...)
    local c, err = core.redis_connect(h.host, h.port, { password = opts.password })
    if not c then return nil, err end
    local r, e = c:command(...)
    c:close()
    return r, e
  end
  local ok, err
  for _ = 1, 3 do -- another process may take the free port first
    h.port = H.free_port()
    ok, err = h.start()
    if ok then break end
  end
  assert(ok, err)
  h.url = string.format("redis://%s%s:%d", opts.password and (":" .. opts.password .. "@") or "", h.host, h.port)
  started[#started + 1] = h
  return h
end

return H
