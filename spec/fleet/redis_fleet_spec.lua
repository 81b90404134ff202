-- A fleet of OS processes sharing one Redis: one rate budget, one access token,
-- a refresh lock that outlives a dead holder only until it expires, and calls that
-- survive Redis going away. Each process is spec/fleet/worker.lua under the same
-- Lua as busted; the sandbox's counters say what reached the server.
local H = require "helpers"
local core = require "spapi.core"

local OP = "fba_inventory.getInventorySummaries"
local LUA = _VERSION == "Lua 5.1" and "luajit" or "lua5.4"

describe("a fleet sharing a Redis store", function()
  local sb, srv

  local function stats() return (assert(sb.control("/_sandbox/stats", nil, "GET"))) end
  local function grant(rate, burst)
    assert(sb.control("/_sandbox/config", { limits = { [OP] = { rate = rate, burst = burst } } }))
  end

  -- start one worker process → { pid, out (its output file) }
  local function spawn(env)
    local dir = H.tmpdir("fleet")
    local vars = { SPAPI_ROOT = H.root, FLEET_ENDPOINT = sb.url, FLEET_REDIS = srv.url }
    for k, v in pairs(env or {}) do vars[k] = tostring(v) end
    local parts = {}
    for k, v in pairs(vars) do parts[#parts + 1] = string.format("%s='%s'", k, v) end
    local p = assert(io.popen(string.format("cd '%s' && env %s %s spec/fleet/worker.lua >'%s/out' 2>'%s/err' & echo $!",
      H.root, table.concat(parts, " "), LUA, dir, dir)))
    local pid = assert(tonumber(p:read("*l")))
    p:close()
    return { pid = pid, out = dir .. "/out", errf = dir .. "/err" }
  end

  local function read(path)
    local f = io.open(path)
    if not f then return "" end
    local s = f:read("*a")
    f:close()
    return s
  end

  local function alive(w) return H.run("kill -0 " .. w.pid .. " 2>/dev/null") == 0 end

  -- wait (bounded) for the workers to exit → each one's parsed output
  local function finish(workers, limit)
    local t_end = core.monotonic() + (limit or 120)
    for _, w in ipairs(workers) do
      while alive(w) and core.monotonic() < t_end do core.sleep(0.05) end
      if alive(w) then H.run("kill -9 " .. w.pid) end
      local r = { ok = 0, err = {}, oks = {}, stderr = read(w.errf) }
      for line in read(w.out):gmatch("[^\n]+") do
        local word, a, b, c, d, e = line:match("^(%S+) ?(%S*) ?(%S*) ?(%S*) ?(%S*) ?(.*)$")
        if word == "ok" then
          r.ok = r.ok + 1
          r.oks[#r.oks + 1] = { i = tonumber(a), attempts = tonumber(b), at = tonumber(c) }
        elseif word == "err" then
          r.err[#r.err + 1] = { i = tonumber(a), kind = b, code = c, at = tonumber(d), text = e }
        elseif word == "done" then
          r.first, r.last = tonumber(a), tonumber(b)
        elseif word == "start" then
          r.start = tonumber(a)
        end
      end
      w.result = r
    end
    return workers
  end

  setup(function() srv = H.redis() end)
  teardown(function() srv.stop() end)
  before_each(function()
    sb = H.sandbox{ reset = true }
    assert.equal("OK", srv.command("FLUSHALL"))
  end)

  it("four processes × 200 calls draw on one budget (50/s, burst 10): no 429, near the minimum time, one token", function()
    grant(50, 10)
    local workers = {}
    for i = 1, 4 do workers[i] = spawn{ FLEET_CALLS = 200, FLEET_MARGIN = 0.97 } end
    finish(workers, 180)
    local first, last, calls = math.huge, 0, 0
    for i, w in ipairs(workers) do
      local r = w.result
      assert.equal(200, r.ok, "worker " .. i .. ": " .. r.stderr .. tostring(r.err[1] and r.err[1].text))
      calls = calls + r.ok
      first, last = math.min(first, r.first), math.max(last, r.last)
    end
    local s = stats()
    assert.equal(0, s.throttled) -- not one 429 from the sandbox
    assert.equal(800, s.requests[OP]) -- and no retries
    assert.equal(1, s.tokens_issued) -- (2) one LWA token request for the whole fleet
    -- (1) the burst at once, the other 790 at 50/s: 15.8 s at least; at most 1.1 times that
    local min = (calls - 10) / 50
    local took = last - first
    io.stderr:write(string.format("\n[fleet] 800 calls in %.2f s; minimum %.2f s; ratio %.3f\n", took, min, took / min))
    assert.is_true(took >= min and took <= 1.1 * min,
      string.format("800 calls took %.2f s; the minimum is %.2f s (ratio %.3f)", took, min, took / min))
  end)

  it("a process killed while it holds the refresh lock: the others have a token within the lock's expiry and one refresh", function()
    grant(50, 10)
    local TTL = 2
    -- the first process's token request hangs (6 s) while it holds the lock
    assert(sb.control("/_sandbox/faults", { operation = "lwa", kind = "delay", delay_ms = 6000, count = 1 }))
    local holder = spawn{ FLEET_CALLS = 1, FLEET_LOCK_TTL = TTL }
    local lock_key
    for _ = 1, 400 do
      local keys = srv.command("KEYS", "fleet:lwa:*:lock")
      if type(keys) == "table" and keys[1] then lock_key = keys[1] break end
      core.sleep(0.025)
    end
    assert.is_string(lock_key, "the first process never took the refresh lock")
    local t_locked = core.now()
    local pttl = srv.command("PTTL", lock_key)
    H.run("kill -9 " .. holder.pid)
    local killed_at = core.now()
    local others = { spawn{ FLEET_CALLS = 3, FLEET_LOCK_TTL = TTL }, spawn{ FLEET_CALLS = 3, FLEET_LOCK_TTL = TTL } }
    finish(others, 60)
    for i, w in ipairs(others) do
      local r = w.result
      assert.equal(3, r.ok, "process " .. i .. ": " .. r.stderr .. tostring(r.err[1] and r.err[1].text))
      -- its first call ended no later than the lock's expiry plus one refresh (and the call)
      local by = t_locked + pttl / 1000 + 1.0
      assert.is_true(r.oks[1].at <= by, string.format("first call done %.2f s after the kill; the lock expired %.2f s"
        .. " after it", r.oks[1].at - killed_at, t_locked + pttl / 1000 - killed_at))
      -- and not before the lock expired: nobody refreshed past a live lock
      assert.is_true(r.oks[1].at >= t_locked + pttl / 1000 - 0.05)
    end
    -- the dead holder's request is still hanging in the sandbox: one token so far, theirs
    assert.equal(1, stats().tokens_issued)
    -- (and the sandbox finishes it: wait, so its token does not land in the next test)
    local t_end = core.monotonic() + 15
    while stats().tokens_issued < 2 and core.monotonic() < t_end do core.sleep(0.1) end
    assert.equal(2, stats().tokens_issued)
  end)

  it("redis-server stopped mid-run: every call succeeds on the process's own store, none sent twice", function()
    grant(1000, 100) -- (each process paces itself alone once Redis is gone)
    -- (enough calls that Redis stops while both are still calling, however loaded the machine)
    local workers = { spawn{ FLEET_CALLS = 600 }, spawn{ FLEET_CALLS = 600 } }
    -- stop Redis once both are well into their calls
    local t_end = core.monotonic() + 60
    repeat core.sleep(0.05) until (stats().requests[OP] or 0) >= 60 or core.monotonic() > t_end
    srv.stop()
    finish(workers, 120)
    srv.start()
    local ok = 0
    for i, w in ipairs(workers) do
      local r = w.result
      assert.equal(600, r.ok, "worker " .. i .. ": " .. tostring(r.err[1] and r.err[1].text))
      ok = ok + r.ok
      -- one warning, naming the fallback
      local _, warnings = r.stderr:gsub("does not answer", "")
      assert.equal(1, warnings, r.stderr)
      assert.matches("memory store", r.stderr)
    end
    local s = stats()
    assert.equal(ok, s.requests[OP] - s.throttled) -- each call went through exactly once
  end)

  it("redis-server stopped mid-run with on_store_error = \"fail\": calls fail with a store error, unsent", function()
    grant(1000, 100)
    local w = spawn{ FLEET_CALLS = 1000, FLEET_POLICY = "fail" }
    local t_end = core.monotonic() + 60
    repeat core.sleep(0.05) until (stats().requests[OP] or 0) >= 40 or core.monotonic() > t_end
    srv.stop()
    finish({ w }, 120)
    srv.start()
    local r = w.result
    assert.is_true(r.ok >= 40 and #r.err >= 1, r.ok .. " ok, " .. #r.err .. " failed")
    assert.equal(1000, r.ok + #r.err)
    for _, e in ipairs(r.err) do
      assert.equal("store", e.kind)
      assert.equal("StoreFailed", e.code)
      assert.matches("redis store at 127.0.0.1:" .. srv.port, e.text, 1, true)
    end
    local s = stats()
    assert.equal(r.ok, s.requests[OP] - s.throttled) -- the failed calls were never sent
  end)
end)
