-- Clocks for timing specs, with the shape of spapi.clock ({ now, monotonic,
-- clocks, sleep }); each records the seconds it was asked to sleep in `slept`.
--   manual(t0)  time stands still until the spec calls advance(s); sleep(s)
--               advances it: waits run at once, in order
--   skipping()  real time plus whatever was slept: sleep returns at once, but
--               the time the client reads has moved on (for specs against a
--               server that does not care how fast the client goes)
--   recording() the real clock, really sleeping (for a server that enforces
--               rates: the spec reads what the client decided to wait)
local real = require "spapi.clock"

local _M = {}

local function total(c)
  local sum = 0
  for _, s in ipairs(c.slept) do sum = sum + s end
  return sum
end

function _M.manual(t0)
  local c = { t = t0 or 1000, slept = {}, total = total }
  function c.now() return c.t end
  c.monotonic = c.now
  function c.clocks() return c.t, c.t end
  function c.advance(s) c.t = c.t + s end
  function c.sleep(s)
    c.slept[#c.slept + 1] = s
    if s > 0 then c.t = c.t + s end
  end
  return c
end

function _M.skipping()
  local c = { offset = 0, slept = {}, total = total }
  function c.now() return real.now() + c.offset end
  function c.monotonic() return real.monotonic() + c.offset end
  function c.clocks() return c.now(), c.monotonic() end
  function c.advance(s) c.offset = c.offset + s end
  function c.sleep(s)
    c.slept[#c.slept + 1] = s
    if s > 0 then c.offset = c.offset + s end
  end
  return c
end

function _M.recording()
  local c = { slept = {}, total = total, now = real.now, monotonic = real.monotonic, clocks = real.clocks }
  function c.sleep(s)
    c.slept[#c.slept + 1] = s
    real.sleep(s)
  end
  return c
end

return _M
