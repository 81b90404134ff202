-- Shared spec helpers: servers on 127.0.0.1 with ephemeral ports, temp dirs.
-- Servers started here are stopped when the Lua state closes (busted exits).
local nginx = require "spapi.nginx"

local H = {}
H.root = os.getenv("SPAPI_ROOT") or "."
H.models = os.getenv("SPAPI_MODELS") or (H.root .. "/../shared/models")

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
  local dir = string.format("%s/build/test/tmp-%s-%d-%d", H.root, tag or "t",
    math.floor(os.time()), counter)
  os.execute("rm -rf '" .. dir .. "' && mkdir -p '" .. dir .. "'")
  return dir
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

return H
