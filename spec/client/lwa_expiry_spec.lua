-- An LWA answer's expires_in must be a finite positive number: anything else is
-- an `lwa` error, and no API request is sent with the token.
local H = require "helpers"

describe("client: LWA expires_in", function()
  local srv

  setup(function()
    -- /lwa/<json text> answers a token whose expires_in is that JSON text ("none": absent);
    -- every other path is an API answering features
    srv = H.nginx([[
      location ~ ^/lwa/(.+)$ { content_by_lua_block {
        local v = ngx.unescape_uri(ngx.var[1])
        ngx.header["Content-Type"] = "application/json"
        ngx.print('{"access_token":"Atza|expiry-spec","token_type":"bearer"'
          .. (v == "none" and "" or (',"expires_in":' .. v)) .. '}')
      } }
      location / { content_by_lua_block {
        ngx.header["Content-Type"] = "application/json"
        ngx.print('{"payload":{"features":[]}}')
      } }
    ]])
  end)

  -- a client whose LWA answers expires_in = value; events: the operations of its exchanges
  local function client(value, events)
    return assert(require("spapi").client{ env = false, endpoint = srv.url,
      lwa_endpoint = srv.url .. "/lwa/" .. require("spapi.core").urlencode(value),
      client_id = "amzn1.application-oa2-client.expiry", client_secret = "s", refresh_token = "Atzr|expiry",
      debug = function(ev) if ev.phase == "request" then events[#events + 1] = ev.operation end end })
  end

  it("accepts a finite positive lifetime and keeps the token", function()
    local events = {}
    local sp = client("3600", events)
    assert(sp.fulfillment_outbound.getFeatures{ marketplaceId = "ATVPDKIKX0DER" })
    assert(sp.fulfillment_outbound.getFeatures{ marketplaceId = "ATVPDKIKX0DER" })
    assert.same({ "lwa", "fulfillment_outbound.getFeatures", "fulfillment_outbound.getFeatures" }, events)
  end)

  for _, bad in ipairs({ '"nan"', "0", "-30", "1e999", '"soon"', "true", "none" }) do
    it("refuses expires_in = " .. bad .. " as an lwa error and sends no API request", function()
      local events = {}
      local sp = client(bad, events)
      local body, err = sp.fulfillment_outbound.getFeatures{ marketplaceId = "ATVPDKIKX0DER" }
      assert.is_nil(body)
      assert.equal("lwa", err.kind)
      assert.equal("InvalidExpiry", err.code)
      assert.matches("expires_in", err.message, 1, true)
      for _, op in ipairs(events) do assert.equal("lwa", op) end -- no API request
      -- and nothing was cached: the next call asks LWA again
      local n = #events
      assert.is_nil((sp.fulfillment_outbound.getFeatures{ marketplaceId = "ATVPDKIKX0DER" }))
      assert.is_true(#events > n)
    end)
  end
end)
