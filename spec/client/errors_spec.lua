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

  it("applies the rate from the response header over the model's", function()
    local rl = ratelimit.new(memory.new())
    assert.equal(10, (rl:limits("sp:op", 10, 10)))
    rl:observe("sp:op", "0.5", 10, 10)
    local r, b = rl:limits("sp:op", 10, 10)
    assert.equal(0.5, r)
    assert.equal(10, b)
  end)
end)
