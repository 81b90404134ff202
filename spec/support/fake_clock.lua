-- A clock the test moves by hand: { now, monotonic, clocks, sleep, advance }.
-- sleep(s) advances it (and records s), so code that waits runs at once.
local _M = {}

function _M.new(t0)
  local c = { t = t0 or 1000, slept = {} }
  function c.now() return c.t end
  c.monotonic = c.now
  function c.clocks() return c.t, c.t end
  function c.sleep(s)
    c.slept[#c.slept + 1] = s
    if s > 0 then c.t = c.t + s end
  end
  function c.advance(s) c.t = c.t + s end
  return c
end

return _M
