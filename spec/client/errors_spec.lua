local errors = require "spapi.errors"

describe("spapi.Error", function()
  it("is built from an SP-API error body", function()
    local e = errors.from_response("merchant_fulfillment.createShipment", 400,
      { ["x-amzn-requestid"] = "abc-123" },
      { errors = { { code = "InvalidShippingServiceOfferId", message = "The offer is invalid", details = "expired" } } })
    assert.is_true(errors.is(e))
    assert.equal(400, e.status)
    assert.equal("InvalidShippingServiceOfferId", e.code)
    assert.equal("abc-123", e.request_id)
    assert.is_false(e.retryable)
    assert.equal("spapi: merchant_fulfillment.createShipment: 400 InvalidShippingServiceOfferId: The offer is invalid (expired) [request id abc-123]",
      tostring(e))
  end)

  it("reads LWA error bodies and falls back to the raw text", function()
    local e = errors.from_response("lwa.token", 401, {}, { error = "invalid_client", error_description = "Client authentication failed" })
    assert.equal("invalid_client", e.code)
    assert.equal("Client authentication failed", e.message)
    local raw = errors.from_response("x.y", 502, {}, nil, "<html>Bad gateway</html>")
    assert.equal("HTTP502", raw.code)
    assert.equal("<html>Bad gateway</html>", raw.message)
    assert.is_true(raw.retryable)
  end)
end)

describe("memory store and rate limiter", function()
  local memory = require "spapi.store.memory"
  local ratelimit = require "spapi.ratelimit"

  it("reserves tokens from a bucket and says how long to wait", function()
    local s = memory.new()
    assert.equal(0, s:take("k", 2, 2, 100, 10))
    assert.equal(0, s:take("k", 2, 2, 100, 10))
    assert.near(0.5, s:take("k", 2, 2, 100, 10), 1e-9) -- bucket in debt: wait for the refill
    assert.near(1.0, s:take("k", 2, 2, 100, 10), 1e-9)
    local none, needed = s:take("k", 2, 2, 100, 0.1)
    assert.is_nil(none)
    assert.near(1.5, needed, 1e-9)
    assert.equal(0, s:take("k", 2, 2, 102, 10)) -- refilled after 2 s
  end)

  it("expires values and holds single-flight locks", function()
    local s = memory.new()
    s:set("a", "1", 0.05)
    assert.equal("1", s:get("a"))
    require("spapi.clock").sleep(0.08)
    assert.is_nil(s:get("a"))
    assert.is_true(s:lock("l", 10))
    assert.is_false(s:lock("l", 10))
    s:unlock("l")
    assert.is_true(s:lock("l", 10))
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

  it("reserves from the memory store's own buckets, shared by every limiter on that store", function()
    local store = memory.new()
    local a, b = ratelimit.new(store, { margin = 1 }), ratelimit.new(store, { margin = 1 })
    assert.equal(0, a:reserve("sp:op", 2, 2, 10, 100))
    assert.equal(0, b:reserve("sp:op", 2, 2, 10, 100))          -- the burst of 2 is one budget
    assert.near(0.5, a:reserve("sp:op", 2, 2, 10, 100), 1e-9)
    local none, needed = b:reserve("sp:op", 2, 2, 0.1, 100)
    assert.is_nil(none)
    assert.near(1.0, needed, 1e-9)
    assert.near(0.5, store:take("rl:sp:op", 2, 2, 100.5, 10), 1e-9) -- the store sees the same bucket
    assert.equal(0, a:reserve("sp:none", nil, nil, 10, 100))      -- an operation without a rate: no wait
    assert.equal(0, a:reserve("sp:none", nil, nil, 0, 100))
  end)

  it("reserves through the store's take for other stores, at the rate in force", function()
    local mem, takes = memory.new(), {}
    local other = { -- as a shared-dict or Redis store: no local buckets
      take = function(_, key, rate, burst, now, max_wait)
        takes[#takes + 1] = { key, rate, burst }
        return mem:take(key, rate, burst, now, max_wait)
      end,
      get_rate = function(_, key) return mem:get_rate(key) end,
      set_rate = function(_, key, rate, burst) return mem:set_rate(key, rate, burst) end,
    }
    local rl = ratelimit.new(other, { margin = 0.5 })
    assert.equal(0, rl:reserve("sp:op", 4, 3, 10, 100))
    assert.same({ "rl:sp:op", 2, 3 }, takes[1]) -- the model's rate, less the margin
    rl:observe("sp:op", "10", 4, 3)
    assert.equal(0, rl:reserve("sp:op", 4, 3, 10, 100.1)) -- within the second: the new rate at once
    assert.same({ "rl:sp:op", 5, 3 }, takes[2])
  end)

  it("goes through the take of a store built on the memory store that replaces it", function()
    local Metered = setmetatable({}, { __index = memory })
    local meta = { __index = Metered }
    local takes = 0
    function Metered:take(...)
      takes = takes + 1
      return memory.take(self, ...)
    end
    local store = setmetatable(memory.new(), meta)
    local rl = ratelimit.new(store, { margin = 1 })
    for _ = 1, 3 do assert.equal(0, rl:reserve("sp:op", 2, 5, 10, 100)) end
    assert.equal(3, takes)
  end)

  it("applies the rate from the response header over the model's", function()
    local rl = ratelimit.new(memory.new())
    assert.equal(10, (rl:limits("sp:op", 10, 10)))
    rl:observe("sp:op", "0.5", 10, 10)
    local r, b = rl:limits("sp:op", 10, 10)
    assert.equal(0.5, r)
    assert.equal(10, b)
  end)
end)
