-- The default transport: libcurl through the C core (one share handle, reused
-- easy handles, keep-alive). A transport turns a request table
-- { method, url, headers, body, timeout } into a response
-- { status, headers, body } or nil, kind, message.
local _M = {}
local mt = { __index = _M }

local core = require "spapi.core"

function _M.new(cfg)
  local session = core.session{
    connect_timeout = cfg.connect_timeout, timeout = cfg.timeout,
    proxy = cfg.proxy, noproxy = cfg.noproxy, cainfo = cfg.cainfo, capath = cfg.capath,
    verify = cfg.verify, user_agent = cfg.user_agent,
    max_host_connections = cfg.max_connections,
  }
  return setmetatable({ session = session, name = "curl" }, mt)
end

function _M:send(req)
  local status, headers, body, curl_code = self.session:request(req)
  if not status then
    -- on failure: nil, message, kind, curl_code
    return nil, body, headers
  end
  return { status = status, headers = headers, body = body }
end

--- Many requests at once: returns an object with add(req) → id,
--- wait(timeout) → { {id=, resp=} | {id=, kind=, message=} }, count().
function _M:multi()
  local m = self.session:multi()
  local w = {}
  function w.add(req) return m:add(req) end
  function w.count() return m:count() end
  function w.close() return m:close() end
  function w.wait(timeout)
    local out = {}
    for i, r in ipairs(m:wait(timeout)) do
      if r.err then
        out[i] = { id = r.id, kind = r.kind, message = r.err }
      else
        out[i] = { id = r.id, resp = { status = r.status, headers = r.headers, body = r.body } }
      end
    end
    return out
  end
  return w
end

function _M:stats() return self.session:stats() end
function _M:close() return self.session:close() end

return _M
