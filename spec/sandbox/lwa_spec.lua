-- LWA token endpoint, access-token checks, grantless tokens and restricted data tokens.
local H = require "helpers"

local FEATURES = "/fba/outbound/2020-07-01/features"
local MP = { marketplaceId = "ATVPDKIKX0DER" }

local function form(t)
  local enc = require("spapi.core").urlencode
  local parts = {}
  for _, k in ipairs({ "grant_type", "refresh_token", "client_id", "client_secret", "scope" }) do
    if t[k] then parts[#parts + 1] = k .. "=" .. enc(t[k]) end
  end
  return table.concat(parts, "&")
end

local function lwa(t)
  return H.sandbox_http("POST", "/auth/o2/token", { body = form(t),
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } })
end

describe("sandbox LWA", function()
  before_each(function() H.sandbox{ reset = true } end)

  it("issues an access token for any well-formed credentials by default", function()
    local status, headers, body = lwa{ grant_type = "refresh_token", refresh_token = "Atzr|anything",
      client_id = "amzn1.application-oa2-client.x", client_secret = "s3cret" }
    assert.equal(200, status)
    assert.matches("^application/json", headers["content-type"])
    assert.matches("^Atza|", body.access_token)
    assert.equal("bearer", body.token_type)
    assert.equal(3600, body.expires_in)
    assert.equal("Atzr|anything", body.refresh_token)
    -- and the token opens the API
    local st, h = H.sandbox_http("GET", FEATURES, { token = body.access_token, query = MP })
    assert.equal(200, st)
    assert.is_string(h["x-amzn-requestid"])
  end)

  it("answers invalid_request when a field is missing", function()
    local status, _, body = lwa{ grant_type = "refresh_token", client_id = "a", client_secret = "b" }
    assert.equal(400, status)
    assert.equal("invalid_request", body.error)
    assert.matches("refresh_token", body.error_description)
    status, _, body = lwa{ refresh_token = "Atzr|x", client_id = "a", client_secret = "b" }
    assert.equal(400, status)
    assert.equal("invalid_request", body.error)
    status, _, body = lwa{ grant_type = "refresh_token", refresh_token = "Atzr|x", client_secret = "b" }
    assert.equal(400, status)
    assert.equal("invalid_request", body.error)
    status, _, body = lwa{ grant_type = "password", refresh_token = "Atzr|x", client_id = "a", client_secret = "b" }
    assert.equal(400, status)
    assert.equal("unsupported_grant_type", body.error)
  end)

  describe("with configured credentials", function()
    before_each(function()
      assert(H.sandbox().control("/_sandbox/credentials", { credentials = {
        { client_id = "amzn1.application-oa2-client.good", client_secret = "right-secret",
          refresh_tokens = { "Atzr|known", { refresh_token = "Atzr|other-seller", selling_partner = "A2SELLER" } } },
      } }))
    end)

    it("accepts only the configured client and refresh tokens", function()
      local status, _, body = lwa{ grant_type = "refresh_token", refresh_token = "Atzr|known",
        client_id = "amzn1.application-oa2-client.good", client_secret = "right-secret" }
      assert.equal(200, status)
      assert.matches("^Atza|", body.access_token)

      status, _, body = lwa{ grant_type = "refresh_token", refresh_token = "Atzr|known",
        client_id = "amzn1.application-oa2-client.good", client_secret = "wrong" }
      assert.equal(401, status)
      assert.same({ error = "invalid_client", error_description = "Client authentication failed" }, body)

      status, _, body = lwa{ grant_type = "refresh_token", refresh_token = "Atzr|known",
        client_id = "amzn1.application-oa2-client.unknown", client_secret = "right-secret" }
      assert.equal(401, status)
      assert.equal("invalid_client", body.error)

      status, _, body = lwa{ grant_type = "refresh_token", refresh_token = "Atzr|stranger",
        client_id = "amzn1.application-oa2-client.good", client_secret = "right-secret" }
      assert.equal(400, status)
      assert.equal("invalid_grant", body.error)
    end)

    it("keeps the data of different selling partners apart", function()
      local t1 = H.sandbox_token{ refresh_token = "Atzr|known", client_id = "amzn1.application-oa2-client.good",
        client_secret = "right-secret" }
      local t2 = H.sandbox_token{ refresh_token = "Atzr|other-seller", client_id = "amzn1.application-oa2-client.good",
        client_secret = "right-secret" }
      local order = {
        sellerFulfillmentOrderId = "LWA-SEP-1", displayableOrderId = "LWA-SEP-1",
        displayableOrderDate = "2026-11-01T10:00:00Z", displayableOrderComment = "Thanks",
        shippingSpeedCategory = "Standard",
        destinationAddress = { name = "A", addressLine1 = "1 Main St", city = "Seattle", stateOrRegion = "WA",
          postalCode = "98101", countryCode = "US" },
        items = { { sellerSku = "SKU-RED-MUG", sellerFulfillmentOrderItemId = "1", quantity = 1 } },
      }
      assert.equal(200, (H.sandbox_http("POST", "/fba/outbound/2020-07-01/fulfillmentOrders", { token = t1, body = order })))
      assert.equal(200, (H.sandbox_http("GET", "/fba/outbound/2020-07-01/fulfillmentOrders/LWA-SEP-1", { token = t1 })))
      assert.equal(404, (H.sandbox_http("GET", "/fba/outbound/2020-07-01/fulfillmentOrders/LWA-SEP-1", { token = t2 })))
    end)
  end)

  it("refuses API calls without, with unknown and with expired tokens", function()
    local status, headers, body = H.sandbox_http("GET", FEATURES, { query = MP })
    assert.equal(403, status)
    assert.same({ errors = { { code = "MissingAuthenticationToken", message = "Access to requested resource is denied.",
      details = "" } } }, body)
    assert.is_string(headers["x-amzn-requestid"])

    status, _, body = H.sandbox_http("GET", FEATURES, { query = MP, token = "Atza|never-issued" })
    assert.equal(403, status)
    assert.same({ errors = { { code = "Unauthorized", message = "Access to requested resource is denied.",
      details = "The access token you provided is revoked, malformed or invalid." } } }, body)

    assert(H.sandbox().control("/_sandbox/config", { token_lifetime = 1 }))
    local token, full = H.sandbox_token()
    assert.equal(1, full.expires_in)
    assert.equal(200, (H.sandbox_http("GET", FEATURES, { query = MP, token = token })))
    require("spapi.core").sleep(1.3)
    status, _, body = H.sandbox_http("GET", FEATURES, { query = MP, token = token })
    assert.equal(403, status)
    assert.same({ errors = { { code = "Unauthorized", message = "Access to requested resource is denied.",
      details = "The access token you provided has expired." } } }, body)
  end)

  it("revokes every token it issued on reset{tokens = true}", function()
    local token = H.sandbox_token()
    assert.equal(200, (H.sandbox_http("GET", FEATURES, { query = MP, token = token })))
    assert(H.sandbox().reset{ tokens = true })
    -- (each worker forgets its cached copy: ask several times)
    for _ = 1, 4 do
      local status, _, body = H.sandbox_http("GET", FEATURES, { query = MP, token = token })
      assert.equal(403, status)
      assert.equal("The access token you provided is revoked, malformed or invalid.", body.errors[1].details)
    end
  end)

  it("issues grantless tokens for client_credentials with a known scope", function()
    local status, _, body = lwa{ grant_type = "client_credentials", client_id = "amzn1.application-oa2-client.x",
      client_secret = "s", scope = "sellingpartnerapi::notifications" }
    assert.equal(200, status)
    assert.is_nil(body.refresh_token)
    local grantless = body.access_token
    -- grantless operations need it ...
    assert.equal(200, (H.sandbox_http("GET", "/notifications/v1/destinations", { token = grantless })))
    assert.equal(403, (H.sandbox_http("GET", "/notifications/v1/destinations", { token = H.sandbox_token() })))
    -- ... and it opens nothing else
    assert.equal(403, (H.sandbox_http("GET", FEATURES, { query = MP, token = grantless })))

    status, _, body = lwa{ grant_type = "client_credentials", client_id = "a", client_secret = "s", scope = "bogus::scope" }
    assert.equal(400, status)
    assert.equal("invalid_scope", body.error)
    status, _, body = lwa{ grant_type = "client_credentials", client_id = "a", client_secret = "s" }
    assert.equal(400, status)
    assert.equal("invalid_request", body.error)
  end)
end)

describe("sandbox restricted data tokens", function()
  before_each(function() H.sandbox{ reset = true } end)

  local SHIPMENT = "/mfn/v0/shipments/{shipmentId}"

  it("issues an RDT for restricted resources and refuses a plain token on them", function()
    local token = H.sandbox_token()
    local status, _, body = H.sandbox_http("POST", "/tokens/2021-03-01/restrictedDataToken", { token = token,
      body = { restrictedResources = { { method = "GET", path = SHIPMENT } } } })
    assert.equal(200, status)
    assert.matches("^Atz%.sprdt|", body.restrictedDataToken)
    assert.equal(3600, body.expiresIn)
    local rdt = body.restrictedDataToken

    -- a plain LWA token is refused on a restricted operation
    status, _, body = H.sandbox_http("GET", "/mfn/v0/shipments/S-1", { token = token })
    assert.equal(403, status)
    assert.equal("Unauthorized", body.errors[1].code)
    -- the RDT passes the token check (the program may still say 404 for an unknown shipment)
    status = H.sandbox_http("GET", "/mfn/v0/shipments/S-1", { token = rdt })
    assert.is_not.equal(403, status)
    -- but not for another method or path, nor for an unrestricted operation
    assert.equal(403, (H.sandbox_http("DELETE", "/mfn/v0/shipments/S-1", { token = rdt })))
    assert.equal(403, (H.sandbox_http("GET", FEATURES, { token = rdt, query = MP })))
  end)

  it("binds an RDT to the exact path when one is given", function()
    local rdt = H.sandbox_rdt({ { method = "GET", path = "/mfn/v0/shipments/S-42" } })
    assert.is_not.equal(403, (H.sandbox_http("GET", "/mfn/v0/shipments/S-42", { token = rdt })))
    assert.equal(403, (H.sandbox_http("GET", "/mfn/v0/shipments/S-43", { token = rdt })))
  end)

  it("refuses resources that are not restricted operations and bad requests", function()
    local token = H.sandbox_token()
    local status, _, body = H.sandbox_http("POST", "/tokens/2021-03-01/restrictedDataToken", { token = token,
      body = { restrictedResources = { { method = "GET", path = FEATURES } } } })
    assert.equal(400, status)
    assert.equal("InvalidInput", body.errors[1].code)
    status = H.sandbox_http("POST", "/tokens/2021-03-01/restrictedDataToken", { token = token,
      body = { restrictedResources = {} } })
    assert.equal(400, status)
    status = H.sandbox_http("POST", "/tokens/2021-03-01/restrictedDataToken", { token = token })
    assert.equal(400, status)
  end)
end)
