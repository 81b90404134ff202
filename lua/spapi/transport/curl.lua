-- The default transport: libcurl through the C core (one share handle, reused
-- easy handles, keep-alive). It implements the transport contract of
-- docs/extending.md:
--   transport:send(req) → status, headers (the header block), body | nil, message, kind
--   transport:multi() → m: m:add(req) → id; m:wait(timeout) → finished results;
--                          m:count(); m:close()
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
  -- an instance's send is the session's request itself (a C function of (_, req)
  -- whose answer already has the contract's shape)
  return setmetatable({ session = session, name = "curl", send = session:sender() }, mt)
end

-- (what an instance's send does, for code that calls it through the module)
function _M:send(req)
  return self.session:request(req)
end

function _M:multi() return self.session:multi() end
function _M:stats() return self.session:stats() end
function _M:close() return self.session:close() end

return _M
