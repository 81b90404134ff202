-- The Redis store behind the store interface, against a real redis-server.
local H = require "helpers"
local redis_store = require "spapi.store.redis"
local spapi = require "spapi"

describe("store.redis", function()
  local srv
  setup(function() srv = H.redis{ password = "fleet-pw" } end)
  teardown(function() srv.stop() end)

  local n = 0
  local function store(extra)
    n = n + 1
    local o = { url = srv.url, prefix = "t" .. n .. ":" }
    for k, v in pairs(extra or {}) do o[k] = v end
    return assert(redis_store.new(o))
  end

  describe("(the store contract)", function()
    local clock = require "spapi.clock"
    for _, case in ipairs(require "store.contract") do
      it(case.name, function() case.run(store(), clock.sleep) end)
    end
  end)

  it("parses redis:// URLs and names what is wrong with a bad one", function()
    assert.same({ host = "h.example", port = 6380, password = "p@ss", db = 2 },
      redis_store.parse_url("redis://:p%40ss@h.example:6380/2"))
    assert.same({ host = "127.0.0.1", port = 6379, db = 0 }, redis_store.parse_url("redis://127.0.0.1"))
    for _, bad in ipairs({ "http://h:1", "redis://user:pw@h:1", "redis://h:99999", "redis://", 42 }) do
      local ok, err = redis_store.parse_url(bad)
      assert.is_nil(ok)
      assert.matches("redis", err)
    end
  end)

  it("gets, sets with expiry and deletes strings under its prefix", function()
    local s = store()
    assert.is_nil(s:get("k"))
    assert.is_true(s:set("k", "v 1", 60))
    assert.equal("v 1", s:get("k"))
    assert.equal("v 1", srv.command("GET", s.prefix .. "k"))
    local ttl = srv.command("PTTL", s.prefix .. "k")
    assert.is_true(ttl > 59000 and ttl <= 60000, tostring(ttl))
    s:delete("k")
    assert.is_nil(s:get("k"))
  end)

  it("takes from a bucket atomically on the server's clock, and says how long to wait", function()
    local a, b = store(), store()
    b.prefix = a.prefix -- two stores (two processes) on one bucket
    -- burst 3 at 10/s: three now, then 0.1 s apart
    assert.same({ true, 0 }, { a:take("rl:x", 10, 3, 5) })
    assert.same({ true, 0 }, { b:take("rl:x", 10, 3, 5) })
    assert.same({ true, 0 }, { a:take("rl:x", 10, 3, math.huge) })
    local ok1, w1 = b:take("rl:x", 10, 3, 5)
    local ok2, w2 = a:take("rl:x", 10, 3, 5)
    assert.is_true(ok1 and ok2)
    assert.near(0.1, w1, 0.02)
    assert.near(0.2, w2, 0.03)
    -- a wait over max_wait reserves nothing
    local ok3, needed = a:take("rl:x", 10, 3, 0.05)
    assert.is_false(ok3)
    assert.near(0.3, needed, 0.03)
    assert.near(0.3, select(2, b:take("rl:x", 10, 3, 5)), 0.03)
  end)

  it("loads its script on first use and again after the server lost it (NOSCRIPT)", function()
    local s = store()
    assert.same({ true, 0 }, { s:take("rl:y", 1, 2, 1) })
    assert.equal("OK", srv.command("SCRIPT", "FLUSH"))
    assert.same({ true, 0 }, { s:take("rl:y", 1, 2, 1) })
    assert.near(1, select(2, s:take("rl:y", 1, 2, 2)), 0.05)
  end)

  it("locks with an owner and an expiry: one holder; unlock frees only its own lock", function()
    local a, b = store(), store()
    b.prefix = a.prefix
    assert.is_true(a:lock("lwa:1:lock", 0.3))
    assert.is_false(b:lock("lwa:1:lock", 0.3))
    b:unlock("lwa:1:lock") -- not b's: stays
    assert.is_false(b:lock("lwa:1:lock", 0.3))
    a:unlock("lwa:1:lock")
    assert.is_true(b:lock("lwa:1:lock", 0.3))
    -- a holder that never unlocks: the expiry frees it
    local pttl = srv.command("PTTL", a.prefix .. "lwa:1:lock")
    assert.is_true(pttl > 0 and pttl <= 300, tostring(pttl))
  end)

  it("shows neither the password nor a token in tostring or in its fields", function()
    local s = store()
    s:set("lwa:rt:x", "123.000 Atza|secret-token", 60)
    local seen = { tostring(s) }
    for k, v in pairs(s) do seen[#seen + 1] = tostring(k) .. "=" .. tostring(v) end
    local text = table.concat(seen, " ")
    assert.is_nil(text:find("fleet-pw", 1, true))
    assert.is_nil(text:find("secret-token", 1, true))
  end)

  it("keeps its connection alive: many commands, one connection", function()
    local function accepted() -- connections the server has accepted so far (this query's own included)
      return tonumber(srv.command("INFO", "stats"):match("total_connections_received:(%d+)"))
    end
    local s = store()
    local before = accepted()
    for i = 1, 50 do s:set("k" .. i, "v", 10) assert.equal("v", s:get("k" .. i)) end
    assert.equal(100, s.stats.commands)
    assert.is_true(s.stats.connects <= 1)
    -- at most one new connection for the 100 commands (plus the second INFO's own)
    assert.is_true(accepted() - before <= 2)
  end)

  it("falls back while Redis is gone and goes back to it when it answers again", function()
    local own = H.redis()
    local warnings = {}
    local s = assert(redis_store.new{ url = own.url, retry_after = 0.1, command_timeout = 0.5,
      warn = function(m) warnings[#warnings + 1] = m end })
    assert.is_true(s:set("k", "in redis", 60))
    own.stop()
    assert.is_nil(s:get("k")) -- this process's memory store now
    s:set("k", "in memory", 60)
    assert.equal("in memory", s:get("k"))
    assert.equal(1, #warnings)
    assert(own.start())
    require("spapi.clock").sleep(0.15)
    assert.is_nil(s:get("k")) -- Redis again (restarted empty)
    assert.equal(2, #warnings)
    assert.matches("answers again", warnings[2])
    assert.is_true(s:set("k", "in redis again", 60))
    assert.equal("in redis again", own.command("GET", "spapi:k"))
    own.stop()
  end)

  describe("when Redis does not answer", function()
    local down
    setup(function() down = H.free_port() end)
    local function dead(extra)
      local o = { url = "redis://127.0.0.1:" .. down, connect_timeout = 0.2, command_timeout = 0.2 }
      for k, v in pairs(extra or {}) do o[k] = v end
      return assert(redis_store.new(o))
    end

    it("'local' serves from this process's memory, with one warning", function()
      local warnings = {}
      local s = dead{ warn = function(m) warnings[#warnings + 1] = m end }
      assert.is_nil(s:get("k"))
      s:set("k", "v", 10)
      assert.equal("v", s:get("k"))
      assert.same({ true, 0 }, { s:take("rl:z", 1, 1, 1) })
      local ok, wait = s:take("rl:z", 1, 1, 5)
      assert.is_true(ok)
      assert.near(1, wait, 0.01)
      assert.is_true(s:lock("l", 5))
      assert.is_false(s:lock("l", 5))
      assert.equal(1, #warnings)
      assert.matches("does not answer", warnings[1])
      assert.matches("memory store", warnings[1])
    end)

    it("'fail' returns nil, message naming the server and the operation, from every method", function()
      local s = dead{ on_error = "fail" }
      local unpack = table.unpack or unpack
      for _, call in ipairs({ { "get", "k" }, { "set", "k", "v", 1 }, { "delete", "k" },
        { "take", "rl:k", 1, 1, 1 }, { "lock", "l", 1 }, { "unlock", "l" } }) do
        local v, err = s[call[1]](s, unpack(call, 2))
        assert.is_nil(v, call[1])
        assert.matches("redis store at 127.0.0.1:" .. down, err, 1, true)
        assert.matches("(" .. call[1] .. ")", err, 1, true)
      end
    end)

    it("refuses a bad on_store_error or timeout, naming the setting", function()
      local none, err = redis_store.new{ url = srv.url, on_error = "retry" }
      assert.is_nil(none)
      assert.matches("on_store_error", err)
      none, err = redis_store.new{ url = srv.url, command_timeout = -1 }
      assert.is_nil(none)
      assert.matches("redis_command_timeout", err)
    end)
  end)

  it("is chosen by the client's `redis` setting, whose password stays out of the client", function()
    local c = assert(spapi.client{ env = false, client_id = "id", client_secret = "secret", refresh_token = "Atzr|r",
      redis = srv.url, redis_prefix = "c:" })
    assert.equal("c:", c.store.prefix)
    assert.is_nil(c.cfg.redis)
    assert.is_nil(tostring(c):find("fleet-pw", 1, true))
    local none, err = spapi.client{ env = false, client_id = "id", client_secret = "secret", redis = "http://x" }
    assert.is_nil(none)
    assert.matches("redis", err)
    none, err = spapi.client{ env = false, client_id = "id", client_secret = "secret", redis = srv.url,
      store = require("spapi.store.memory").new() }
    assert.is_nil(none)
    assert.matches("store or redis", err)
    assert.is_nil(err:find("fleet-pw", 1, true))
  end)
end)
