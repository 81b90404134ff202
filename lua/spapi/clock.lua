-- Time for the Lua layer: the C core's clocks when loaded, os.time otherwise
-- (so pure modules can be used inside nginx without the core).
local _M = {}
local ok, core = pcall(require, "spapi.core")
if ok and core.now then
  _M.now, _M.monotonic, _M.sleep = core.now, core.monotonic, core.sleep
else
  local ngx = rawget(_G, "ngx")
  if ngx then
    _M.now = function() return ngx.now() end
    _M.monotonic = _M.now
    _M.sleep = function(s) ngx.sleep(s) end
  else
    _M.now = function() return os.time() end
    _M.monotonic = function() return os.clock() end
    _M.sleep = function(s) os.execute("sleep " .. tonumber(s)) end
  end
end
return _M
