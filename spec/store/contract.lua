-- The store contract of docs/extending.md as cases any store's spec can run:
--
--   local contract = require "store.contract"
--   describe("my store (the store contract)", function()
--     for _, case in ipairs(contract) do
--       it(case.name, function() case.run(new_store(), advance) end)
--     end
--   end)
--
-- advance(s) lets s seconds pass on the store's clock (a manual clock for the
-- memory store; a real sleep for a store whose clock is its server's; the cases
-- ask for less than a second each). The keys are unique to each run, so a
-- shared server needs no clean-up. Atomicity across processes is each store's
-- own spec to prove. assert is busted's (luassert).
local assert = require "luassert"

local run = 0
local function keys()
  run = run + 1
  local prefix = ("contract:%d:%d:"):format(os.time(), run)
  return function(key) return prefix .. key end
end

local cases = {}
local function it(name, fn)
  cases[#cases + 1] = { name = name, run = function(s, advance) return fn(s, keys(), advance) end }
end

it("gets what was set until its ttl passes", function(s, k, advance)
  assert.is_true(s:set(k"a", "1", 0.3))
  assert.is_true(s:set(k"forever", "2"))
  assert.equal("1", s:get(k"a"))
  advance(0.5)
  assert.is_nil(s:get(k"a"))
  assert.equal("2", s:get(k"forever"))
  assert.is_true(s:set(k"forever", "3"))
  assert.equal("3", s:get(k"forever")) -- the last set wins
  assert.is_true(s:delete(k"forever"))
  assert.is_true(s:delete(k"never-set"))
  assert.is_nil(s:get(k"forever"))
end)

it("starts a bucket full and reserves future slots up to max_wait", function(s, k)
  local key = k"bucket"
  assert.same({ true, 0 }, { s:take(key, 2, 2, 10) })
  assert.same({ true, 0 }, { s:take(key, 2, 2, 10) })
  local ok, wait = s:take(key, 2, 2, 10) -- in debt: a slot about 0.5 s away
  assert.is_true(ok)
  assert.near(0.5, wait, 0.05)
  ok, wait = s:take(key, 2, 2, 0.1) -- past max_wait: nothing reserved
  assert.is_false(ok)
  assert.near(1.0, wait, 0.05)
  ok, wait = s:take(key, 2, 2, 0.1) -- (still nothing reserved)
  assert.is_false(ok)
  assert.near(1.0, wait, 0.05)
end)

it("refills a bucket at its rate, never beyond its burst", function(s, k, advance)
  local key = k"refill"
  assert.is_true((s:take(key, 4, 1, 0)))
  assert.is_false((s:take(key, 4, 1, 0)))
  advance(0.6) -- 2.4 tokens' worth, capped at the burst of 1
  assert.same({ true, 0 }, { s:take(key, 4, 1, 0) })
  local ok, wait = s:take(key, 4, 1, 0)
  assert.is_false(ok)
  assert.is_true(wait > 0.15 and wait <= 0.25, "wait " .. wait)
end)

it("keeps one bucket per key", function(s, k)
  assert.is_true((s:take(k"x", 1, 1, 0)))
  assert.is_false((s:take(k"x", 1, 1, 0)))
  assert.is_true((s:take(k"y", 1, 1, 0)))
end)

it("holds a lock until unlock or its expiry", function(s, k, advance)
  local key = k"lock"
  assert.is_true(s:lock(key, 10))
  assert.is_false(s:lock(key, 10))
  assert.is_true(s:unlock(key))
  assert.is_true(s:lock(key, 0.3))
  assert.is_false(s:lock(key, 0.3))
  advance(0.5)
  assert.is_true(s:lock(key, 10)) -- a holder that died releases it by expiry
end)

return cases
