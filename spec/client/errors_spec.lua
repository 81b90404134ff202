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
