-- Connections to a Redis server, kept alive and reused between commands.
--   conn.server{ host=, port=, password=, db=, connect_timeout=, command_timeout= } → server
--   conn.get(server) → c, reused | nil, message, kind      c:command(...) → reply | nil, message, kind
--   conn.put(server, c)   back to the pool after a command that went through
-- Plain Lua: hiredis through the C core (core.redis_connect), a small pool per
-- server in this process. Inside nginx, where a blocking socket would stall the
-- worker, connections come from spapi.redis.resp (RESP over cosockets) and go
-- back to nginx's keep-alive pool.
local _M = {}

local core = require "spapi.core"
local fmt, remove, pairs, ipairs = string.format, table.remove, pairs, ipairs

local POOL_MAX = 4
local pools = {} -- server key → idle connections

local function in_nginx()
  local ngx = rawget(_G, "ngx")
  if not (ngx and ngx.socket and ngx.socket.tcp and ngx.get_phase) then return false end
  local phase = ngx.get_phase()
  -- the phases where cosockets work
  return phase == "rewrite" or phase == "access" or phase == "content" or phase == "timer"
    or phase == "ssl_cert" or phase == "ssl_session_fetch"
end
_M.in_nginx = in_nginx

--- The connection settings of one server, with the key of its pool (the
--- password enters it only as a digest).
function _M.server(o)
  local pw = o.password and core.hex(core.sha256(o.password)):sub(1, 16) or ""
  return {
    host = o.host, port = o.port, password = o.password, db = o.db or 0,
    connect_timeout = o.connect_timeout or 1, command_timeout = o.command_timeout or 1,
    key = fmt("%s:%d/%d/%s", o.host, o.port, o.db or 0, pw),
  }
end

local resp -- spapi.redis.resp, loaded on the first use inside nginx

function _M.get(server)
  if in_nginx() then
    resp = resp or require "spapi.redis.resp"
    return resp.connect(server)
  end
  local pool = pools[server.key]
  local c = pool and remove(pool)
  if c then return c, true end
  local err, kind
  c, err, kind = core.redis_connect(server.host, server.port, {
    connect_timeout = server.connect_timeout, command_timeout = server.command_timeout,
    password = server.password, db = server.db ~= 0 and server.db or nil })
  if not c then return nil, err, kind end
  return c, false
end

function _M.put(server, c)
  if c.keepalive then return c:keepalive() end -- a cosocket connection
  local pool = pools[server.key]
  if not pool then
    pool = {}
    pools[server.key] = pool
  end
  if #pool < POOL_MAX and not c:closed() then pool[#pool + 1] = c else c:close() end
end

--- Close this process's idle connections (all servers, or one).
function _M.drain(server)
  for key, pool in pairs(pools) do
    if not server or key == server.key then
      for _, c in ipairs(pool) do c:close() end
      pools[key] = nil
    end
  end
end

return _M
