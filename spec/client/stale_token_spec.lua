-- A token the server no longer takes, answered in Amazon's shape (HTTP 403,
-- "Access to requested resource is denied.", the reason in `details`): the client
-- refreshes it once and retries; a refusal that is not about the token is returned.
local H = require "helpers"

local MP = "ATVPDKIKX0DER"

describe("client: stale access tokens", function()
  local sb

  local function client(extra)
    local cfg = { env = false, endpoint = sb.endpoint, lwa_endpoint = sb.lwa_endpoint,
      client_id = "amzn1.application-oa2-client.stale", client_secret = "s", refresh_token = "Atzr|stale-spec",
      retry_base = 0.05, retry_cap = 0.3 }
    for k, v in pairs(extra or {}) do cfg[k] = v end
    return assert(require("spapi").client(cfg))
  end

  local function tokens_issued() return assert(sb.control("/_sandbox/stats", nil, "GET")).tokens_issued end

  before_each(function() sb = H.sandbox{ reset = true } end)

  it("refreshes a revoked token once (the reason is in details) and the call succeeds", function()
    local sp = client()
    assert(sp.fulfillment_outbound.getFeatures{ marketplaceId = MP })
    assert(sb.reset{ tokens = true }) -- the token the client holds is now revoked (and the counters zeroed)
    local body, resp = sp.fulfillment_outbound.getFeatures{ marketplaceId = MP }
    assert.is_table(body, tostring(resp))
    assert.equal(1, resp.attempts) -- a refresh is not a retry
    assert.equal(1, tokens_issued())
    -- and the new token stays in use
    assert(sp.fulfillment_outbound.getFeatures{ marketplaceId = MP })
    assert.equal(1, tokens_issued())
  end)

  it("refreshes when the answer says, in details, that the token expired", function()
    local sp = client()
    assert(sp.fulfillment_outbound.getFeatures{ marketplaceId = MP })
    local issued = tokens_issued()
    -- the next answer is Amazon's expired-token 403, word for word
    assert(sb.control("/_sandbox/faults", { operation = "fulfillment_outbound.getFeatures", kind = "status",
      status = 403, count = 1, body = { errors = { { code = "Unauthorized",
        message = "Access to requested resource is denied.",
        details = "The access token you provided has expired." } } } }))
    local body, resp = sp.fulfillment_outbound.getFeatures{ marketplaceId = MP }
    assert.is_table(body, tostring(resp))
    assert.equal(1, resp.attempts)
    assert.equal(issued + 1, tokens_issued())
  end)

  it("refreshes only once when the new token is refused too", function()
    local refused = 0
    local sp = client{ debug = function(ev)
      if ev.phase == "response" and ev.operation == "lwa" then
        assert(sb.reset{ tokens = true }) -- every token is revoked as soon as it is issued
      elseif ev.phase == "response" and ev.status == 403 then
        refused = refused + 1
      end
    end }
    local body, err = sp.fulfillment_outbound.getFeatures{ marketplaceId = MP }
    assert.is_nil(body)
    assert.equal(403, err.status)
    assert.equal("Unauthorized", err.code)
    assert.equal("The access token you provided is revoked, malformed or invalid.", err.details)
    assert.equal(2, refused) -- the first answer and the one retry
  end)

  it("does not refresh for a refusal that is not about the token", function()
    local sp = client()
    assert(sp.fulfillment_outbound.getFeatures{ marketplaceId = MP })
    local issued = tokens_issued()
    -- a restricted operation with a plain LWA token: denied, with empty details
    local body, err = sp.merchant_fulfillment.getShipment({ shipmentId = "a1b2c3d4-0000-4000-8000-000000000001" }, { rdt = false })
    assert.is_nil(body)
    assert.equal(403, err.status)
    assert.equal("Unauthorized", err.code)
    assert.is_nil(err.details)
    assert.equal(issued, tokens_issued())
  end)
end)

describe("errors.stale_token", function()
  local errors = require "spapi.errors"
  local function e(status, code, message, details)
    return errors.from_response("x.y", status, {}, { errors = { { code = code, message = message, details = details } } })
  end
  local DENIED = "Access to requested resource is denied."

  it("reads code, message and details together", function()
    assert.is_true(errors.stale_token(e(403, "Unauthorized", DENIED, "The access token you provided has expired.")))
    assert.is_true(errors.stale_token(e(403, "Unauthorized", DENIED,
      "The access token you provided is revoked, malformed or invalid.")))
    assert.is_true(errors.stale_token(e(403, "MissingAuthenticationToken", DENIED, "")))
    assert.is_true(errors.stale_token(e(401, "Unauthorized", "whatever")))
    assert.is_false(errors.stale_token(e(403, "Unauthorized", DENIED, "")))
    assert.is_false(errors.stale_token(e(400, "InvalidInput", "the token parameter is bad")))
  end)
end)
