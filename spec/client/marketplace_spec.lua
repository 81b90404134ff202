-- Marketplaces and regions: a marketplaceId of another region than the
-- endpoint's is refused before anything is sent; spapi.marketplace knows "UK".
local spapi = require "spapi"
local H = require "helpers"

describe("marketplaces", function()
  it("finds a marketplace by id, country code (any case) or the common alias UK", function()
    assert.equal("A1F83G8C2ARO7P", spapi.marketplace("UK").id)
    assert.equal("GB", spapi.marketplace("uk").country)
    assert.equal("GB", spapi.marketplace("A1F83G8C2ARO7P").country)
    assert.equal("eu", spapi.marketplace("gb").region)
  end)

  it("raises for an unknown code, listing the known ones", function()
    local ok, err = pcall(spapi.marketplace, "XX")
    assert.is_false(ok)
    assert.matches("unknown marketplace 'XX'", err, 1, true)
    assert.matches("DE, EG, ES", err, 1, true)
    assert.matches("UK", err, 1, true)
    ok, err = pcall(spapi.marketplace, nil)
    assert.is_false(ok)
    assert.matches("unknown marketplace nil", err, 1, true)
  end)

  it("tells the region of Amazon's hosts only", function()
    local config = require "spapi.config"
    assert.same({ "eu", true }, { config.endpoint_region("https://sellingpartnerapi-eu.amazon.com") })
    assert.same({ "fe", false }, { config.endpoint_region("https://sandbox.sellingpartnerapi-fe.amazon.com/") })
    assert.same({}, { config.endpoint_region("http://127.0.0.1:8787") })
    assert.same({}, { config.endpoint_region("https://sellingpartnerapi-na.amazon.com.evil.example") })
  end)
end)

describe("client: marketplace and endpoint region", function()
  local events, sp

  before_each(function()
    events = {}
    -- production NA; LWA on a closed local port (a call that passes the check fails there)
    sp = assert(spapi.client{ env = false, region = "na", client_id = "c", client_secret = "s", refresh_token = "Atzr|r",
      lwa_endpoint = "http://127.0.0.1:" .. H.free_port() .. "/auth/o2/token",
      debug = function(ev) events[#events + 1] = ev end })
  end)

  it("refuses a marketplaceId of another region before sending, naming both", function()
    local ok, err = pcall(sp.fulfillment_outbound.getFeatures, { marketplaceId = "A1PA6795UKMFR9" })
    assert.is_false(ok)
    assert.matches("fulfillment_outbound.getFeatures: marketplaceId A1PA6795UKMFR9 (DE) is a marketplace of region eu, "
      .. "but the endpoint https://sellingpartnerapi-na.amazon.com is region na", err, 1, true)
    -- in a list, and in a body
    ok, err = pcall(sp.feeds.getFeeds, { feedTypes = { "JSON_LISTINGS_FEED" },
      marketplaceIds = { "ATVPDKIKX0DER", "A1VC38T7YXB528" } })
    assert.is_false(ok)
    assert.matches("marketplaceIds A1VC38T7YXB528 (JP) is a marketplace of region fe", err, 1, true)
    ok, err = pcall(sp.feeds.createFeed, { body = { feedType = "JSON_LISTINGS_FEED",
      marketplaceIds = { "A1F83G8C2ARO7P" }, inputFeedDocumentId = "doc-1" } })
    assert.is_false(ok)
    assert.matches("body.marketplaceIds A1F83G8C2ARO7P (GB) is a marketplace of region eu", err, 1, true)
    assert.equal(0, #events) -- nothing was sent, not even a token request
  end)

  it("lets a marketplace of the endpoint's region (or one it does not know) through", function()
    for _, id in ipairs({ "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2", "ANEWMARKET123" }) do
      local body, err = sp.fulfillment_outbound.getFeatures{ marketplaceId = id }
      assert.is_nil(body)
      assert.equal("LWAUnreachable", err.code) -- it got as far as the token request
    end
  end)

  it("checks nothing against an endpoint that is not Amazon's (the local sandbox)", function()
    local sb = H.sandbox{ reset = true }
    local local_sp = assert(spapi.client{ env = false, endpoint = sb.endpoint, lwa_endpoint = sb.lwa_endpoint,
      client_id = "amzn1.application-oa2-client.mp", client_secret = "s", refresh_token = "Atzr|mp" })
    assert(local_sp.fulfillment_outbound.getFeatures{ marketplaceId = "A1PA6795UKMFR9" })
  end)
end)
