-- The rate limiter over any store (through the store contract alone), on a clock
-- the spec moves.
local memory = require "spapi.store.memory"
local ratelimit = require "spapi.ratelimit"
local fake_clock = require "support.fake_clock"

describe("rate limiter", function()
  local clock, store
  before_each(function()
    clock = fake_clock.manual()
    store = memory.new{ clock = clock }
  end)

  local function limiter(opts)
    opts = opts or {}
    opts.clock = clock
    return ratelimit.new(opts.store or store, opts)
  end

  it("reserves from the store's buckets, one budget for every limiter on that store", function()
    local a, b = limiter{ margin = 1 }, limiter{ margin = 1 }
    assert.same({ true, 0 }, { a:reserve("sp:op", 2, 2, 10) })
    assert.same({ true, 0 }, { b:reserve("sp:op", 2, 2, 10) }) -- the burst of 2 is one budget
    local ok, wait = a:reserve("sp:op", 2, 2, 10)
    assert.is_true(ok)
    assert.near(0.5, wait, 1e-9)
    ok, wait = b:reserve("sp:op", 2, 2, 0.1)
    assert.is_false(ok)
    assert.near(1.0, wait, 1e-9)
    ok, wait = store:take("rl:sp:op", 2, 2, 10) -- the store sees the same bucket
    assert.near(1.0, wait, 1e-9)
  end)

  it("does not wait for an operation without a rate", function()
    local rl = limiter()
    for _ = 1, 5 do assert.same({ true, 0 }, { rl:reserve("sp:none", nil, nil, 0) }) end
  end)

  it("goes through any store's take, at the rate and burst in force less the margin", function()
    local takes = {}
    local other = setmetatable({
      take = function(self, key, rate, burst, max_wait)
        takes[#takes + 1] = { key, rate, burst }
        return memory.take(self, key, rate, burst, max_wait)
      end,
    }, { __index = store })
    local rl = limiter{ store = other, margin = 0.5 }
    assert.is_true((rl:reserve("sp:op", 4, 3, 10)))
    assert.same({ "rl:sp:op", 2, 1.5 }, takes[1]) -- the model's rate and burst, less the margin
    assert.is_true((rl:reserve("sp:one", 4, 1, 10)))
    assert.same({ "rl:sp:one", 2, 1 }, takes[2]) -- a burst of at least 1
    table.remove(takes, 2)
    rl:observe("sp:op", "10", 4, 3)
    assert.is_true((rl:reserve("sp:op", 4, 3, 10))) -- the new rate at once
    assert.same({ "rl:sp:op", 5, 1.5 }, takes[2])
  end)

  it("applies the rate from the response header over the model's", function()
    local rl = limiter()
    assert.equal(10, (rl:limits("sp:op", 10, 10)))
    rl:observe("sp:op", "0.5", 10, 10)
    local r, b = rl:limits("sp:op", 10, 10)
    assert.equal(0.5, r)
    assert.equal(10, b)
    rl:observe("sp:op", "garbage", 10, 10)
    assert.equal(0.5, (rl:limits("sp:op", 10, 10)))
  end)

  it("follows a rate another limiter sharing the store learned, within a second", function()
    local a, b = limiter(), limiter()
    assert.equal(1, (b:limits("sp:op", 1, 1)))
    a:observe("sp:op", "20", 1, 1)
    assert.equal(1, (b:limits("sp:op", 1, 1))) -- b read it less than a second ago
    clock.advance(1.01)
    assert.equal(20, (b:limits("sp:op", 1, 1)))
  end)

  it("passes a store's failure on as nil, message", function()
    local broken = setmetatable({
      take = function() return nil, "redis: connection refused" end,
    }, { __index = store })
    local rl = limiter{ store = broken }
    assert.same({ nil, "redis: connection refused" }, { rl:reserve("sp:op", 1, 1, 10) })
  end)
end)
