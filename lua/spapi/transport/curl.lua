-- The default transport: libcurl through the C core (one share handle, reused
-- easy handles, keep-alive). The transport interface:
--   transport:send(req) → status, headers, body | nil, message, kind
--     req: { method, url, headers, body, timeout } (other fields are ignored);
--     the transport adds the User-Agent (cfg.user_agent) unless req has one;
--     headers: a table with lowercase names, or the raw header block (the
--     lines as received; spapi.headers reads either); kind names the failure
--     (timeout, connect, resolve, tls, send, recv, closed, other).
--   transport:multi() → m (optional: many requests at once)
--     m:add(req) → id;  m:wait(timeout) → list of { id, status, headers, body }
--     or { id, err = message, kind };  m:count();  m:close()
--   transport:stats(), transport:close()
local _M = {}
local mt = { __index = _M }

local core = require "spapi.core"

function _M.new(cfg)
  local session = core.session{
    connect_timeout = cfg.connect_timeout, timeout = cfg.timeout,
    proxy = cfg.proxy, noproxy = cfg.noproxy, cainfo = cfg.cainfo, capath = cfg.capath,
    verify = cfg.verify, user_agent = cfg.user_agent,
    max_host_connections = cfg.max_connections, header_block = true,
  }
  return setmetatable({ session = session, name = "curl" }, mt)
end

-- the session's own answer has the interface's shape
function _M:send(req)
  return self.session:request(req)
end

function _M:multi() return self.session:multi() end
function _M:stats() return self.session:stats() end
function _M:close() return self.session:close() end

return _M
