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
  })
  started[#started + 1] = h
  return h
end

return H
