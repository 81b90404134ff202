-- The memory store against the store contract of docs/extending.md, on a clock
-- the spec moves, and what is its own.
local memory = require "spapi.store.memory"
local fake_clock = require "support.fake_clock"

describe("memory store (the store contract)", function()
  for _, case in ipairs(require "store.contract") do
    it(case.name, function()
      local clock = fake_clock.manual()
      case.run(memory.new{ clock = clock }, clock.advance)
    end)
  end
end)

describe("memory store", function()
  local clock, s
  before_each(function()
    clock = fake_clock.manual()
    s = memory.new{ clock = clock }
  end)

  -- Found in review: with the values kept in a side table, an object delegating
  -- to the store saw none of them, and its delete left an undying value
  it("serves an object that delegates to it (__index) the same values", function()
    local base = memory.new()
    local proxy = setmetatable({}, { __index = base })
    base:set("k", "tok-1", 3600)
    assert.equal("tok-1", proxy:get("k"))
    proxy:delete("k")
    assert.is_nil(base:get("k"))
    proxy:set("k2", "tok-2")
    assert.equal("tok-2", base:get("k2"))
  end)

  it("reserves exact slots on its clock", function()
    local ok, wait
    for _ = 1, 2 do assert.same({ true, 0 }, { s:take("k", 2, 2, 10) }) end
    for i = 1, 3 do
      ok, wait = s:take("k", 2, 2, 10)
      assert.is_true(ok)
      assert.near(0.5 * i, wait, 1e-9)
    end
    clock.advance(10)
    assert.same({ true, 0 }, { s:take("k", 2, 2, 0) })
  end)

  it("uses the rate and burst of the take at hand", function()
    assert.is_true((s:take("k", 1, 1, 0)))
    assert.is_false((s:take("k", 1, 1, 0)))
    clock.advance(0.1)
    local ok, wait = s:take("k", 10, 5, 0) -- a higher rate granted: 1 token after 0.1 s
    assert.is_true(ok)
    assert.equal(0, wait)
    ok, wait = s:take("k", 10, 5, 1)
    assert.near(0.1, wait, 1e-9)
  end)

  it("shows no value when dumped", function()
    s:set("lwa:rt:x", "123.0 Atza|secret-token", 60)
    local seen = {}
    local function walk(t, depth)
      if depth > 4 or seen[t] then return end
      seen[t] = true
      for k, v in pairs(t) do
        assert.is_false(tostring(k):find("secret", 1, true) ~= nil)
        if type(v) == "table" then walk(v, depth + 1)
        else assert.is_false(tostring(v):find("secret", 1, true) ~= nil) end
      end
    end
    walk(s, 0)
  end)
end)
