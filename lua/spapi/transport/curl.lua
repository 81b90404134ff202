-- The default transport: libcurl through the C core (one share handle, reused
-- easy handles, keep-alive). The transport interface:
--   transport:send(req) → status, headers, body [, request_id, rate_limit]
--                       | nil, message, kind
--     req: { method, url, headers, body, timeout, json } (other fields are
--     ignored); the transport adds the User-Agent (cfg.user_agent) unless req
--     has one; req.json is set only for a transport with decodes_json = true,
--     which may then return a 2xx body that is a JSON object or array already
--     decoded (a table, as spapi.json.decode gives);
--     headers: a table with lowercase names, or the raw header block (the
--     lines as received; spapi.headers reads either); request_id and
--     rate_limit, when given, are the x-amzn-RequestId and
--     x-amzn-RateLimit-Limit values (false: no such header), which spares the
--     pipeline looking them up in headers; kind names the failure
--     (timeout, connect, resolve, tls, send, recv, closed, other).
--   transport:multi() → m (optional: many requests at once)
--     m:add(req) → id;  m:wait(timeout) → list of { id, status, headers, body }
--     or { id, err = message, kind };  m:count();  m:close()
--   transport:stats(), transport:close()
local _M = {}
local mt = { __index = _M }

local core = require "spapi.core"
local json = require "spapi.json"

function _M.new(cfg)
  local session = core.session{
    connect_timeout = cfg.connect_timeout, timeout = cfg.timeout,
    proxy = cfg.proxy, noproxy = cfg.noproxy, cainfo = cfg.cainfo, capath = cfg.capath,
    verify = cfg.verify, user_agent = cfg.user_agent,
    max_host_connections = cfg.max_connections, header_block = true,
    pick = { "x-amzn-requestid", "x-amzn-ratelimit-limit" }, json = json.decode,
  }
  -- an instance's send is the session's request itself (a C function: no Lua
  -- call between the client and libcurl); its answer has the interface's shape
  return setmetatable({ session = session, name = "curl", send = session:sender(), decodes_json = true }, mt)
end

-- (what an instance's send does, for code that calls it through the module)
function _M:send(req)
  return self.session:request(req)
end

function _M:multi() return self.session:multi() end
function _M:stats() return self.session:stats() end
function _M:close() return self.session:close() end

return _M
