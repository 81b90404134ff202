-- The OpenResty/nginx transport: every request over nginx's cosockets
-- (ngx.socket.tcp), so a call waits without blocking the worker — the other
-- requests of the worker run meanwhile. The default inside nginx (see
-- available()); `transport = "curl"` forces libcurl, which blocks the worker
-- for the whole exchange.
--
-- It implements the transport contract of docs/extending.md:
--   transport:send(req) → status, headers (the header block), body
--                       | nil, message, kind   (resolve, connect, tls, send, recv, closed, timeout)
--   transport:multi() → m (m:add(req) → id; m:wait(timeout); m:count(); m:close()):
--     the requests run in nginx light threads (ngx.thread)
--   transport:stats(), transport:close()
--
-- HTTP/1.1 through lua-resty-http when it is installed, else through
-- spapi.transport.http1 (ours, small). TLS through sslhandshake with SNI and,
-- unless verify = false, certificate and host name verification. nginx checks
-- certificates against `lua_ssl_trusted_certificate` of nginx.conf (a socket
-- cannot be given its own CA), so nginx.conf must name the CA bundle — the
-- system's (/etc/ssl/certs/ca-certificates.crt on Debian) or the config's
-- cainfo — plus `lua_ssl_verify_depth 5` (Amazon's chains are deeper than the
-- default of 1) and a `resolver` (nginx does not read /etc/hosts or
-- resolv.conf for cosockets). Connections are kept in nginx's keepalive pools,
-- one pool per scheme, host, port, verify and CA; the handshake is made on a
-- fresh connection only.
--
-- Sending from a phase without cosockets (init, init_worker, set, header and
-- body filters, log) raises an error naming the phase: nginx would refuse the
-- socket, and libcurl there would block the worker.
local _M = {}
local mt = { __index = _M }

local http1 = require "spapi.transport.http1"

local type, pairs, ipairs, tostring, tonumber, pcall, setmetatable, error, rawget =
  type, pairs, ipairs, tostring, tonumber, pcall, setmetatable, error, rawget
local fmt, find, lower, match, min = string.format, string.find, string.lower, string.match, math.min

local ngx = rawget(_G, "ngx")

-- the phases in which nginx lets Lua open sockets
local COSOCKET_PHASES = { rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true }
_M.COSOCKET_PHASES = COSOCKET_PHASES

--- Whether this Lua runs inside nginx with cosockets (lua-nginx-module): then
--- a client's transport is "ngx" unless its config says otherwise.
function _M.available()
  return type(ngx) == "table" and type(ngx.socket) == "table" and type(ngx.socket.tcp) == "function"
    and type(ngx.get_phase) == "function"
end

-- lua-resty-http, when installed (false otherwise); looked for inside nginx only
local resty_http
local function find_resty_http()
  if resty_http == nil then
    local ok, m = pcall(require, "resty.http")
    resty_http = ok and type(m) == "table" and type(m.new) == "function" and m or false
  end
  return resty_http
end

-- what a request is, for an error
local function what_of(req)
  local op = req.plan and req.plan.name or req.operation or req.phase
  if op == "lwa" then return "the LWA token request" end
  return op or (req.method or "GET") .. " request"
end

local function phase_error(phase, req)
  return fmt("spapi: nginx's '%s' phase has no cosockets, so the ngx transport cannot send %s from it "
    .. "(call spapi from rewrite_by_lua, access_by_lua or content_by_lua, or from a timer: ngx.timer.at(0, fn)); "
    .. "transport = \"curl\" would send from any phase but blocks the nginx worker", phase, what_of(req))
end

function _M.new(cfg)
  if not _M.available() then
    error("spapi.client: transport = \"ngx\" needs nginx's cosockets (OpenResty or lua-nginx-module); "
      .. "outside nginx use transport = \"curl\" (the default there)", 0)
  end
  if cfg.proxy then
    error("spapi.client: the ngx transport does not go through a proxy (proxy = ...): use transport = \"curl\"", 0)
  end
  local self = {
    name = "ngx",
    timeout = cfg.timeout or 30, connect_timeout = cfg.connect_timeout or 10,
    verify = cfg.verify ~= false, ca = cfg.cainfo or cfg.capath or "system",
    user_agent = cfg.user_agent,
    pool_size = cfg.max_connections or 64,
    keepalive_ms = 60 * 1000, -- (how long a pooled connection may stay idle)
    dests = {}, -- "scheme://authority" → { host, port, tls, pool, host_header }
    counts = { requests = 0, connections = 0, reused = 0, resent = 0 },
    backend = find_resty_http() and "lua-resty-http" or "http1",
  }
  return setmetatable(self, mt)
end

-- "scheme://authority" of a URL → the destination (cached), the request target
local function destination(self, url)
  local scheme, authority, rest = match(url, "^(%a[%w+.-]*)://([^/?#]+)(.*)$")
  if not scheme then return nil, "not an http(s) URL: " .. tostring(url) end
  scheme = lower(scheme)
  local target = rest == "" and "/" or rest
  if target:sub(1, 1) ~= "/" then target = "/" .. target end
  local key = scheme .. "://" .. authority
  local d = self.dests[key]
  if d then return d, target end
  local tls = scheme == "https"
  if not tls and scheme ~= "http" then return nil, "not an http(s) URL: " .. tostring(url) end
  local host, port = match(authority, "^%[([^%]]+)%]:?(%d*)$")
  if not host then host, port = match(authority, "^([^:]+):?(%d*)$") end
  if not host then return nil, "bad host in URL: " .. tostring(url) end
  port = tonumber(port) or (tls and 443 or 80)
  d = {
    host = host, port = port, tls = tls, host_header = authority,
    -- localhost is this machine (RFC 6761), asked of no resolver (nginx's reads
    -- neither /etc/hosts nor resolv.conf); TLS still checks the name
    address = (lower(host) == "localhost" or find(lower(host), "%.localhost$")) and "127.0.0.1" or host,
    -- the pool holds connections that are the same in everything that matters
    pool = fmt("spapi:%s:%s:%d:%s:%s", scheme, host, port, self.verify and "verify" or "noverify", self.ca),
  }
  d.opts = { pool = d.pool, pool_size = self.pool_size }
  self.dests[key] = d
  return d, target
end

-- a connect failure → message, kind
local function connect_failure(d, err)
  err = tostring(err)
  -- (the request was not sent: "connect", which the client may always retry)
  if err == "timeout" then return fmt("connecting to %s:%d timed out", d.host, d.port), "connect" end
  if find(err, "resolve", 1, true) then
    local hint = find(err, "no resolver", 1, true)
      and " (add a `resolver` directive to nginx.conf: nginx resolves names itself, without /etc/hosts)" or ""
    return fmt("cannot resolve %s: %s%s", d.host, err, hint), "resolve"
  end
  return fmt("cannot connect to %s:%d: %s", d.host, d.port, err), "connect"
end

-- a handshake failure → message, kind
local function tls_failure(self, d, err)
  err = tostring(err)
  if err == "timeout" then return fmt("TLS handshake with %s:%d timed out", d.host, d.port), "tls" end
  local msg = fmt("TLS handshake with %s:%d failed: %s", d.host, d.port, err)
  if self.verify and (find(err, "does not match", 1, true) or find(err, "mismatch", 1, true)) then
    if match(d.host, "^[%d.]+$") or find(d.host, ":", 1, true) then
      msg = msg .. " (nginx checks certificates by host name only: use the name, e.g. https://localhost:"
        .. d.port .. " for this machine)"
    end
  elseif self.verify and (find(err, "certificate", 1, true) or find(err, "verify", 1, true)
      or find(err, "issuer", 1, true)) then
    msg = msg .. fmt(" (the ngx transport checks certificates against nginx's lua_ssl_trusted_certificate: "
      .. "set it to %s, with lua_ssl_verify_depth 5)",
      self.ca == "system" and "the system's CA bundle (/etc/ssl/certs/ca-certificates.crt)" or self.ca)
  end
  return msg, "tls"
end

-- The reason a handshake that finished at once failed, read as lua-resty-core
-- reads it. → message | nil
local function sync_failure(sock)
  local ok, msg = pcall(function()
    local ffi, base = require "ffi", require "resty.core.base"
    local sess, errmsg, code = ffi.new("void *[1]"), base.get_errmsg_ptr(), ffi.new("int[1]")
    local rc = ffi.C.ngx_http_lua_ffi_socket_tcp_get_sslhandshake_result(base.get_request(), sock[1], sess,
      errmsg, code)
    if rc == base.FFI_ERROR then return code[0] .. ": " .. ffi.string(errmsg[0]) end
  end)
  return ok and msg or nil
end

-- sslhandshake with SNI and verification → true | nil, message. When the
-- handshake finishes at once and verification fails, lua-resty-core 0.1.25
-- (Debian 12's) hits an assert instead of returning the failure, and with no
-- session asked for it even returns success on a connection it has closed:
-- the assert is caught and the reason read again.
local function handshake(sock, host, verify)
  local ok, session, err = pcall(sock.sslhandshake, sock, nil, host, verify)
  if ok then
    if session == nil then return nil, err end
    return true
  end
  if find(tostring(session), "assertion failed", 1, true) then
    return nil, sync_failure(sock) or "certificate verification failed (see nginx's error log)"
  end
  error(session, 0)
end

-- Connects sock to d (from the pool, or fresh with the TLS handshake).
-- → true, reused | nil, message, kind
local function connect(self, sock, d, deadline)
  local left = deadline - ngx.now()
  if left <= 0 then return nil, "no time left to connect", "connect" end
  sock:settimeout(min(self.connect_timeout, left) * 1000)
  local ok, err = sock:connect(d.address, d.port, d.opts)
  if not ok then return nil, connect_failure(d, err) end
  local reused = (sock:getreusedtimes() or 0) > 0
  if d.tls and not reused then
    left = deadline - ngx.now()
    if left <= 0 then sock:close() return nil, "no time left for the TLS handshake", "tls" end
    sock:settimeout(left * 1000)
    local done, herr = handshake(sock, d.host, self.verify)
    if not done then
      sock:close()
      return nil, tls_failure(self, d, herr)
    end
  end
  local c = self.counts
  if reused then c.reused = c.reused + 1 else c.connections = c.connections + 1 end
  return true, reused
end

-- One exchange on a connected socket with our own client.
-- → status, headers, body | nil, message, kind, nothing_read
local function exchange_http1(self, sock, req, d, target, deadline)
  local method = req.method or "GET"
  local left = deadline - ngx.now()
  if left <= 0 then sock:close() return nil, "timed out before sending", "timeout" end
  sock:settimeout(left * 1000) -- (writing a large upload may take a while)
  local ok, err, kind = http1.send_request(sock, method, target, d.host_header, req.headers, req.body,
    self.user_agent)
  if not ok then
    sock:close()
    return nil, err, kind, kind == "closed"
  end
  local status, headers, body, keep = http1.read_response(sock, method, function(s)
    local left = deadline - ngx.now()
    if left <= 0 then return false end
    s:settimeout(left * 1000)
    return true
  end)
  if not status then
    sock:close()
    return nil, headers, body, keep -- (read_response: nil, message, kind, nothing_read)
  end
  if keep then sock:setkeepalive(self.keepalive_ms, self.pool_size) else sock:close() end
  return status, headers, body
end

-- The same with lua-resty-http (its request and read_body, on the socket
-- connected above). → status, headers, body | nil, message, kind, nothing_read
local function exchange_resty(self, httpc, req, d, target, deadline)
  local headers = {}
  for k, v in pairs(req.headers or {}) do headers[k] = v end
  if self.user_agent and not headers["User-Agent"] and not headers["user-agent"] then
    headers["User-Agent"] = self.user_agent
  end
  headers["Host"] = d.host_header
  local left = deadline - ngx.now()
  if left <= 0 then httpc:close() return nil, "timed out before sending", "timeout" end
  httpc.sock:settimeout(left * 1000)
  local path, query = match(target, "^([^?]*)%??(.*)$")
  local res, err = httpc:request{ method = req.method or "GET", path = path, query = query ~= "" and query or nil,
    headers = headers, body = req.body }
  if not res then
    httpc:close()
    local kind = http1.io_kind(err, "recv")
    return nil, "sending the request or reading the answer: " .. tostring(err), kind, kind == "closed"
  end
  local body
  body, err = res:read_body()
  if not body then
    httpc:close()
    return nil, "reading the body: " .. tostring(err), http1.io_kind(err, "recv")
  end
  -- the header block, as the contract has it
  local block, n = { "HTTP/1.1 ", tostring(res.status), " ", res.reason or "", "\r\n" }, 5
  for k, v in pairs(res.headers) do
    if type(v) ~= "table" then v = { v } end
    for _, one in ipairs(v) do
      block[n + 1], block[n + 2], block[n + 3], block[n + 4] = k, ": ", tostring(one), "\r\n"
      n = n + 4
    end
  end
  httpc:set_keepalive(self.keepalive_ms, self.pool_size) -- (it closes when the server said so)
  return res.status, table.concat(block, "", 1, n), body
end

-- Connect and exchange. A pooled connection the server closed meanwhile fails
-- before any answer: the request goes again on another (at most twice).
local function exchange(self, req, d, target, deadline)
  for _ = 1, 3 do
    local httpc = resty_http and resty_http.new()
    local sock = httpc and httpc.sock or ngx.socket.tcp()
    local ok, reused, kind = connect(self, sock, d, deadline)
    if not ok then return nil, reused, kind end
    local status, headers, body, idle
    if httpc then
      status, headers, body, idle = exchange_resty(self, httpc, req, d, target, deadline)
    else
      status, headers, body, idle = exchange_http1(self, sock, req, d, target, deadline)
    end
    if status or not (reused and idle and body == "closed") then return status, headers, body end
    self.counts.resent = self.counts.resent + 1
  end
  return nil, "the server closed every connection before answering", "closed"
end

--- One request. → status, header block, body | nil, message, kind
function _M:send(req)
  local phase = ngx.get_phase()
  if not COSOCKET_PHASES[phase] then error(phase_error(phase, req), 0) end
  local d, target = destination(self, req.url)
  if not d then return nil, target, "other" end
  self.counts.requests = self.counts.requests + 1
  local deadline = ngx.now() + (req.timeout or self.timeout)
  return exchange(self, req, d, target, deadline)
end

---------------------------------------------------------------------------
-- many at once: one light thread per request
---------------------------------------------------------------------------
local Multi = {}
Multi.__index = Multi

function _M:multi()
  local ok, semaphore = pcall(require, "ngx.semaphore")
  if not ok then error("spapi: the ngx transport's batch needs ngx.semaphore (lua-resty-core)", 2) end
  return setmetatable({ transport = self, n = 0, running = 0, done = {}, threads = {},
    sem = semaphore.new(0) }, Multi)
end

function Multi:add(req)
  local phase = ngx.get_phase()
  if not COSOCKET_PHASES[phase] then error(phase_error(phase, req), 0) end
  local id = self.n + 1
  self.n = id
  local t = self.transport
  local co, err = ngx.thread.spawn(function()
    local ok, status, headers, body = pcall(t.send, t, req)
    local r
    if not ok then
      r = { id = id, err = tostring(status), kind = "other" }
    elseif status then
      r = { id = id, status = status, headers = headers, body = body }
    else
      r = { id = id, err = headers, kind = body }
    end
    self.threads[id] = false -- (false: finished, perhaps before spawn returned)
    self.done[#self.done + 1] = r
    self.sem:post(1)
  end)
  if not co then error("spapi: cannot start a light thread: " .. tostring(err), 2) end
  if self.threads[id] == nil then self.threads[id] = co end
  self.running = self.running + 1
  return id
end

--- → the requests finished since the last wait (waits up to timeout seconds for one)
function Multi:wait(timeout)
  if #self.done == 0 and self.running > 0 then self.sem:wait(timeout or 1) end
  local out = self.done
  self.done = {}
  self.running = self.running - #out
  return out
end

function Multi:count() return self.running end

function Multi:close()
  for id, co in pairs(self.threads) do
    if co then ngx.thread.kill(co) end
    self.threads[id] = nil
  end
  self.running = 0
end

--- { requests, connections (opened), reused (from the pool), resent, backend }
function _M:stats()
  local c = self.counts
  return { requests = c.requests, connections = c.connections, reused = c.reused, resent = c.resent,
    backend = self.backend }
end

-- the connections belong to nginx's pools (they close on their own when idle)
function _M:close() end

return _M
