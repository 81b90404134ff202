-- Soak: thousands of mixed requests, 16 in flight, against the two-worker
-- sandbox; no 5xx may come back that was not injected, and the workers must
-- agree on the state afterwards.
local H = require "helpers"
local core = require "spapi.core"
local json = require "cjson.safe"
local schema = require "sandbox.schema"

local N, IN_FLIGHT = 3000, 16
local MP = "ATVPDKIKX0DER"
local BASE = "/fba/outbound/2020-07-01"

describe("sandbox soak", function()
  it("serves " .. N .. " concurrent requests without an un-injected 5xx", function()
    local sb = H.sandbox{ reset = true }
    assert(sb.control("/_sandbox/config", { rate_scale = 1000 }))
    assert(sb.control("/_sandbox/seed", { inventory = { { sku = "SOAK-SKU", quantity = 1000000 } } }))
    local token = H.sandbox_token()
    local address = { name = "Soak", addressLine1 = "1 Loop", city = "Austin", stateOrRegion = "TX",
      postalCode = "78701", countryCode = "US" }
    local created = 0
    local function request(i)
      local kind = i % 6
      local h = { ["x-amz-access-token"] = token }
      if kind == 0 then
        created = created + 1
        local id = "SOAK-" .. i
        h["Content-Type"] = "application/json"
        return { method = "POST", url = sb.url .. BASE .. "/fulfillmentOrders", headers = h, body = json.encode({
          sellerFulfillmentOrderId = id, displayableOrderId = id, displayableOrderDate = "2026-11-20T10:00:00Z",
          displayableOrderComment = "soak", shippingSpeedCategory = "Standard", destinationAddress = address,
          items = { { sellerSku = "SOAK-SKU", sellerFulfillmentOrderItemId = "1", quantity = 1 } } }) }, "create"
      elseif kind == 1 then
        return { method = "GET", url = sb.url .. BASE .. "/fulfillmentOrders/SOAK-" .. (i - 1 - (i - 1) % 6),
          headers = h }, "get"
      elseif kind == 2 then
        h["Content-Type"] = "application/json"
        return { method = "POST", url = sb.url .. BASE .. "/fulfillmentOrders/preview", headers = h,
          body = json.encode({ marketplaceId = MP, address = address,
            items = { { sellerSku = "SOAK-SKU", sellerFulfillmentOrderItemId = "1", quantity = 2 } } }) }, "preview"
      elseif kind == 3 then
        return { method = "GET", url = sb.url .. "/fba/inventory/v1/summaries?granularityType=Marketplace&granularityId="
          .. MP .. "&marketplaceIds=" .. MP .. "&sellerSkus=SOAK-SKU&details=true", headers = h }, "inventory"
      elseif kind == 4 then
        return { method = "GET", url = sb.url .. BASE .. "/features?marketplaceId=" .. MP, headers = h }, "features"
      end
      return { method = "POST", url = sb.lwa_endpoint,
        headers = { ["Content-Type"] = "application/x-www-form-urlencoded" },
        body = "grant_type=refresh_token&refresh_token=Atzr%7Csoak&client_id=amzn1.soak&client_secret=soak" }, "lwa"
    end

    local session = core.session{ timeout = 30 }
    local m = session:multi()
    local kinds, statuses, failures, server_errors = {}, {}, {}, 0
    local sent, done = 0, 0
    local sent_req = {}
    local t0 = core.monotonic()
    while done < N do
      while sent < N and m:count() < IN_FLIGHT do
        sent = sent + 1
        local r, kind = request(sent)
        local id = m:add(r)
        kinds[id] = kind
        sent_req[id] = r
      end
      for _, res in ipairs(m:wait()) do
        done = done + 1
        local kind = kinds[res.id]
        local r = sent_req[res.id]
        kinds[res.id], sent_req[res.id] = nil, nil
        -- a sample of the answers against the models' response schemas
        if res.status == 200 and kind ~= "lwa" and done % 20 == 0 then
          schema.assert_valid(r.method, r.url:match("^https?://[^/]+(.*)$"), 200, json.decode(res.body))
        end
        if not res.status then
          failures[#failures + 1] = kind .. ": " .. tostring(res.err)
        else
          statuses[res.status] = (statuses[res.status] or 0) + 1
          if res.status >= 500 then
            server_errors = server_errors + 1
            failures[#failures + 1] = kind .. ": HTTP " .. res.status .. " " .. res.body:sub(1, 200)
          elseif res.status ~= 200 and not (kind == "get" and res.status == 404) then
            -- a get may overtake the create it reads (both in flight): 404 is fine there
            failures[#failures + 1] = kind .. ": HTTP " .. res.status .. " " .. res.body:sub(1, 200)
          end
        end
      end
    end
    local elapsed = core.monotonic() - t0
    m:close()
    assert.same({}, failures)
    assert.equal(0, server_errors)
    assert.equal(N, (statuses[200] or 0) + (statuses[404] or 0))

    local stats = assert(sb.control("/_sandbox/stats"))
    assert.equal(0, stats.server_errors)
    assert.equal(created, stats.requests["fulfillment_outbound.createFulfillmentOrder"])
    -- both workers wrote into the same state: every created order is listed once
    local seen, next_token, listed = {}, nil, 0
    repeat
      local q = next_token and { nextToken = next_token } or nil
      local status, _, body = H.sandbox_http("GET", BASE .. "/fulfillmentOrders", { token = token, query = q })
      assert.equal(200, status)
      for _, o in ipairs(body.payload.fulfillmentOrders) do
        assert.is_nil(seen[o.sellerFulfillmentOrderId])
        seen[o.sellerFulfillmentOrderId] = true
        listed = listed + 1
      end
      next_token = body.payload.nextToken
    until not next_token
    assert.equal(created, listed)
    local _, _, inv = H.sandbox_http("GET", "/fba/inventory/v1/summaries", { token = token, query = {
      granularityType = "Marketplace", granularityId = MP, marketplaceIds = MP, sellerSkus = "SOAK-SKU", details = "true" } })
    assert.equal(1000000 - created, inv.payload.inventorySummaries[1].inventoryDetails.fulfillableQuantity)
    io.stderr:write(string.format("\n[soak] %d requests, %d in flight, %.2f s, %.0f req/s\n", N, IN_FLIGHT,
      elapsed, N / elapsed))
  end)
end)
