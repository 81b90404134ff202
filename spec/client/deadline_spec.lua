-- The call's deadline (opts.deadline / cfg.deadline) covers the access token's
-- fetch: an LWA or restricted-data-token exchange that hangs ends the call at
-- its deadline, and the request itself is not sent after it (found in review:
-- the call waited out the token and then sent the request anyway).
local H = require "helpers"
local clock = require "spapi.clock"

describe("a call's deadline", function()
  local h
  setup(function()
    h = H.nginx([[
      location = /auth/o2/token { content_by_lua_block {
        ngx.sleep(3)
        ngx.header["Content-Type"] = "application/json"
        ngx.print('{"access_token":"Atza|x","token_type":"bearer","expires_in":3600}') } }
      location = /tokens/2021-03-01/restrictedDataToken { content_by_lua_block {
        ngx.sleep(3)
        ngx.header["Content-Type"] = "application/json"
        ngx.print('{"restrictedDataToken":"Atz.sprdt|y","expiresIn":3600}') } }
      location = /fast/auth/o2/token { content_by_lua_block {
        ngx.header["Content-Type"] = "application/json"
        ngx.print('{"access_token":"Atza|x","token_type":"bearer","expires_in":3600}') } }
      location / { content_by_lua_block {
        ngx.header["Content-Type"] = "application/json"
        ngx.header["x-amzn-RequestId"] = "r1"
        ngx.print('{"payload":{}}') } }
    ]])
  end)
  local function client(lwa)
    return assert(require("spapi").client{ endpoint = h.url, lwa_endpoint = h.url .. lwa, env = false,
      client_id = "amzn1.application-oa2-client.t", client_secret = "s", refresh_token = "Atzr|r" })
  end

  it("ends the call when the LWA token does not come in time, without sending the request", function()
    local sp = client("/auth/o2/token")
    local t0 = clock.monotonic()
    local body, err = sp.fulfillment_outbound.getFeatures({ marketplaceId = "ATVPDKIKX0DER" }, { deadline = 0.5 })
    local took = clock.monotonic() - t0
    assert.is_nil(body)
    assert.equal("timeout", err.kind)
    assert.equal("lwa.token", err.operation) -- (what failed: the token request)
    assert.is_true(took < 2.5, "waited out the token: " .. took .. "s") -- the token endpoint answers after 3s
  end)

  it("ends a restricted call when its restricted data token does not come in time", function()
    local sp = client("/fast/auth/o2/token")
    local t0 = clock.monotonic()
    local body, err = sp.merchant_fulfillment.getShipment({ shipmentId = "0a1b2c3d-0000-1111-2222-333344445555" },
      { deadline = 0.5 })
    local took = clock.monotonic() - t0
    assert.is_nil(body)
    assert.equal("timeout", err.kind)
    assert.is_true(took < 2.5, "waited out the token: " .. took .. "s")
  end)
end)
