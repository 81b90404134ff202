-- spapi.core time and loopback-network helpers.
local core = require "spapi.core"

describe("core.now / monotonic / sleep", function()
  it("now() is wall-clock Unix time with sub-second precision", function()
    local t = core.now()
    assert.is_true(math.abs(t - os.time()) < 2)
    local seen_fraction = false
    for _ = 1, 5 do
      local x = core.now()
      if x ~= math.floor(x) then seen_fraction = true end
      core.sleep(0.001)
    end
    assert.is_true(seen_fraction)
  end)
  it("monotonic() never goes backwards and sleep() waits at least the time asked", function()
    local a = core.monotonic()
    core.sleep(0.05)
    local b = core.monotonic()
    assert.is_true(b >= a + 0.05)
    local prev = b
    for _ = 1, 100 do
      local x = core.monotonic()
      assert.is_true(x >= prev)
      prev = x
    end
  end)
  it("clocks() reads both clocks at once: now(), monotonic()", function()
    local n0, m0 = core.now(), core.monotonic()
    local n, m = core.clocks()
    local n1, m1 = core.now(), core.monotonic()
    assert.is_true(n >= n0 and n <= n1)
    assert.is_true(m >= m0 and m <= m1)
    assert.is_true(math.abs(n - m) > 1) -- two clocks, not one read twice
  end)
  it("sleep(0) and negative values return at once", function()
    core.sleep(0)
    core.sleep(-1)
  end)
  it("sleep raises on a non-number", function()
    assert.has_error(function() core.sleep("x") end)
  end)
end)

describe("core.free_port / tcp_probe", function()
  it("free_port gives a usable ephemeral port", function()
    local p = core.free_port()
    assert.is_number(p)
    assert.is_true(p > 1024 and p < 65536)
    local ok, err = core.tcp_probe("127.0.0.1", p, 0.5)
    assert.is_false(ok)
    assert.is_string(err)
  end)
  it("tcp_probe sees a listening nginx", function()
    local H = require "helpers"
    local srv = H.nginx([[ location / { return 200 "ok"; } ]])
    assert.is_true(core.tcp_probe("127.0.0.1", srv.port, 2))
    assert.is_true(core.tcp_probe("localhost", srv.port, 2))
    srv.stop()
    local ok, err = core.tcp_probe("127.0.0.1", srv.port, 1)
    assert.is_false(ok)
    assert.matches(tostring(srv.port), err)
  end)
  it("tcp_probe reports unresolvable names", function()
    local ok, err = core.tcp_probe("no-such-host.invalid", 80, 0.5)
    assert.is_false(ok)
    assert.is_string(err)
  end)
  it("tcp_probe raises on a bad port", function()
    assert.has_error(function() core.tcp_probe("127.0.0.1", 0) end)
  end)
end)
