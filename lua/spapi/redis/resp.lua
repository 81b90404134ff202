-- A small Redis client over nginx cosockets (RESP2), for the Redis store inside
-- nginx, where hiredis's blocking socket would stall the worker. Only what the
-- store needs: one command at a time, replies as Lua values, connections back to
-- nginx's keep-alive pool. (lua-resty-redis is not packaged by Debian.)
--   resp.connect(server) → c, reused | nil, message, kind     (server: spapi.redis.conn.server)
--   c:command(name, arg...) → reply | nil, message, kind      (as core.redis_connect's)
--   c:keepalive()  back to the pool        c:close()
local _M = {}
local C = {}
local mt = { __index = C }

local ngx = ngx
local tostring, tonumber, type, setmetatable, select = tostring, tonumber, type, setmetatable, select
local concat, fmt, byte, sub = table.concat, string.format, string.byte, string.sub
local floor = math.floor

local KEEPALIVE_MS, POOL_SIZE = 60000, 32
local MAX_DEPTH = 8

local function kind_of(err)
  if err == "timeout" then return "timeout" end
  if err == "closed" then return "closed" end
  return "io"
end

-- the connection failed mid-exchange: its state is unknown, it is closed
local function broken(self, what, err)
  self.sock:close()
  self.dead = true
  return nil, fmt("redis %s: %s", what, tostring(err)), kind_of(err)
end

local function encode(n, ...)
  local parts = { "*", n, "\r\n" }
  for i = 1, n do
    local a = select(i, ...)
    local s = a
    if type(a) == "number" then
      s = (a == floor(a) and a > -2 ^ 53 and a < 2 ^ 53) and fmt("%d", a) or fmt("%.17g", a)
    end
    if type(s) ~= "string" then
      error(fmt("command: string or number expected for argument %d, got %s", i, type(a)), 3)
    end
    parts[#parts + 1] = "$"
    parts[#parts + 1] = #s
    parts[#parts + 1] = "\r\n"
    parts[#parts + 1] = s
    parts[#parts + 1] = "\r\n"
  end
  return concat(parts)
end

-- one reply → value | nil, message, kind ("reply" for a server error)
local function read_reply(self, depth)
  local sock = self.sock
  local line, err = sock:receive("*l")
  if not line then return broken(self, "command", err) end
  local t, rest = byte(line, 1), sub(line, 2)
  if t == 43 then -- '+' status
    return rest
  elseif t == 45 then -- '-' error
    return nil, rest, "reply"
  elseif t == 58 then -- ':' integer
    return tonumber(rest)
  elseif t == 36 then -- '$' bulk string
    local n = tonumber(rest)
    if not n then return broken(self, "command", "protocol error: " .. line) end
    if n < 0 then return false end
    local data
    data, err = sock:receive(n + 2)
    if not data then return broken(self, "command", err) end
    return sub(data, 1, n)
  elseif t == 42 then -- '*' array
    local n = tonumber(rest)
    if not n then return broken(self, "command", "protocol error: " .. line) end
    if n < 0 then return false end
    local out = {}
    for i = 1, n do
      local v, e, k = read_reply(self, depth + 1)
      if v == nil and k ~= "reply" then return nil, e, k end
      -- an error inside an array (a script's) is kept as its message
      if v == nil then v = e end
      out[i] = depth < MAX_DEPTH and v or false
    end
    return out
  end
  return broken(self, "command", "protocol error: " .. line)
end

function C:command(...)
  local n = select("#", ...)
  if n < 1 then error("command: a command name is required", 2) end
  if self.dead then return nil, "redis: the connection is closed", "closed" end
  local ok, err = self.sock:send(encode(n, ...))
  if not ok then return broken(self, "command", err) end
  return read_reply(self, 0)
end

function C:keepalive()
  if self.dead then return end
  self.dead = true
  local ok = self.sock:setkeepalive(KEEPALIVE_MS, POOL_SIZE)
  if not ok then self.sock:close() end
end

function C:close()
  if self.dead then return end
  self.dead = true
  self.sock:close()
end

function C:closed() return self.dead == true end

function _M.connect(server)
  local sock = ngx.socket.tcp()
  local ms = floor(server.command_timeout * 1000)
  sock:settimeouts(floor(server.connect_timeout * 1000), ms, ms)
  local ok, err = sock:connect(server.host, server.port, { pool = "spapi.redis:" .. server.key })
  if not ok then
    return nil, "redis connect: " .. tostring(err), err == "timeout" and "timeout" or "connect"
  end
  local self = setmetatable({ sock = sock, dead = false }, mt)
  local reused = (sock:getreusedtimes() or 0) > 0
  if not reused then
    -- a new connection: log in and choose the database (a pooled one already has)
    if server.password then
      local r, e, k = self:command("AUTH", server.password)
      if r == nil then
        self:close()
        return nil, k == "reply" and ("redis AUTH refused: " .. tostring(e)) or e, k
      end
    end
    if server.db and server.db ~= 0 then
      local r, e, k = self:command("SELECT", server.db)
      if r == nil then
        self:close()
        return nil, k == "reply" and ("redis SELECT refused: " .. tostring(e)) or e, k
      end
    end
  end
  return self, reused
end

return _M
