-- Time for the Lua layer. Inside nginx the event loop's clock and ngx.sleep (which
-- yields instead of blocking the worker); elsewhere the C core's clocks.
-- now() → wall-clock seconds; monotonic() → seconds for intervals and deadlines;
-- clocks() → now(), monotonic() in one call.
local _M = {}
local ngx = rawget(_G, "ngx")
if ngx and ngx.sleep and ngx.now then
  local update, now = ngx.update_time, ngx.now
  _M.now = function() update(); return now() end
  _M.monotonic = _M.now
  _M.clocks = function() update(); local t = now(); return t, t end
  -- ngx.sleep counts whole milliseconds, dropping the rest: a wait for a rate
  -- slot 0.4 ms away would be ngx.sleep(0) (a mere yield, and a warning in the
  -- error log each time) and any wait would end up to 1 ms early. Round up.
  local sleep, ceil = ngx.sleep, math.ceil
  _M.sleep = function(s)
    if s > 0 then s = ceil(s * 1000) / 1000 end
    return sleep(s)
  end
else
  local ok, core = pcall(require, "spapi.core")
  if ok and type(core) == "table" and core.now then
    _M.now, _M.monotonic, _M.sleep = core.now, core.monotonic, core.sleep
    local now, monotonic = core.now, core.monotonic
    _M.clocks = core.clocks or function() return now(), monotonic() end -- (a core.so older than clocks)
  else
    _M.now = os.time
    _M.monotonic = os.time
    _M.clocks = function() local t = os.time(); return t, t end
    _M.sleep = function(s) os.execute("sleep " .. tonumber(s)) end
  end
end
return _M
