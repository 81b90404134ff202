-- The sandbox's own limits: what it inflates is capped (413), a request that
-- fills the state store leaves nothing behind, document URLs name the sandbox's
-- own address whatever the Host header says, and the file holding strict
-- credentials is readable by its owner only.
local H = require "helpers"
local core = require "spapi.core"

local MP = "ATVPDKIKX0DER"

describe("sandbox limits", function()
  describe("on the shared sandbox", function()
    local token
    before_each(function()
      H.sandbox{ reset = true }
      token = H.sandbox_token()
    end)

    local function upload_url(host)
      local status, _, body = H.sandbox_http("POST", "/feeds/2021-06-30/documents", { token = token,
        body = { contentType = "application/json; charset=UTF-8" }, headers = host and { Host = host } or nil })
      assert.equal(201, status)
      return body.url
    end

    it("refuses an upload that inflates past its cap with 413, and keeps serving", function()
      local url = upload_url()
      local bomb = assert(core.gzip(string.rep("\0", 40 * 1024 * 1024))) -- 40 MB of zeros, ~40 KB
      assert.is_true(#bomb < 100 * 1024)
      local status, _, _, raw = H.sandbox_http("PUT", url, { body = bomb,
        headers = { ["Content-Type"] = "application/json; charset=UTF-8" } })
      assert.equal(413, status)
      assert.matches("<Code>EntityTooLarge</Code>", raw, 1, true)
      -- the sandbox still answers, and a gzip'd upload under the cap goes in
      assert.equal(200, (H.sandbox_http("GET", "/_sandbox/health")))
      local small = assert(core.gzip('{"header":{"sellerId":"S","version":"2.0"},"messages":[]}'))
      assert.equal(200, (H.sandbox_http("PUT", upload_url(), { body = small,
        headers = { ["Content-Type"] = "application/json; charset=UTF-8" } })))
    end)

    it("builds document URLs from its own address, not the Host header", function()
      local url = upload_url("attacker.example:9")
      assert.equal(H.sandbox().url .. "/_documents/", url:sub(1, #H.sandbox().url + 12))
      assert.is_nil(url:find("attacker", 1, true))
    end)
  end)

  describe("on a sandbox of its own", function()
    local own, token
    local CREDS = { { client_id = "amzn1.application-oa2-client.limits", client_secret = "limits-secret",
      refresh_tokens = { "Atzr|limits-refresh" } } }

    setup(function()
      own = assert(require("spapi.sandbox").start{ port = H.free_port(), dir = H.tmpdir("limits"),
        credentials = CREDS, state_size = "256k" })
      assert(own.control("/_sandbox/config", { rate_scale = 10000 }))
      local enc = core.urlencode
      local status, _, body = H.sandbox_http("POST", own.url .. "/auth/o2/token", {
        headers = { ["Content-Type"] = "application/x-www-form-urlencoded" },
        body = "grant_type=refresh_token&refresh_token=" .. enc("Atzr|limits-refresh") .. "&client_id="
          .. enc(CREDS[1].client_id) .. "&client_secret=" .. enc(CREDS[1].client_secret) })
      assert.equal(200, status)
      token = body.access_token
    end)
    teardown(function() if own then own.stop() end end)

    it("keeps the strict credentials in a file only its owner can read", function()
      local rc, mode = H.run("stat -c %a " .. require("spapi.nginx").shell_quote(own.dir .. "/sandbox.json"))
      assert.equal(0, rc)
      assert.equal("600", (mode:gsub("%s+$", "")))
    end)

    local function stock(sku)
      local status, _, body = H.sandbox_http("GET", own.url .. "/fba/inventory/v1/summaries", { token = token,
        query = { granularityType = "Marketplace", granularityId = MP, marketplaceIds = MP, details = "true",
          sellerSkus = sku } })
      assert.equal(200, status)
      local d = body.payload.inventorySummaries[1].inventoryDetails
      return d.fulfillableQuantity, d.reservedQuantity.totalReservedQuantity
    end

    it("rolls back what a request reserved when the state store fills up", function()
      assert(own.control("/_sandbox/seed", { inventory = { { sku = "SKU-FILL", quantity = 100000 } } }))
      local created, last_status, last_body = 0, nil, nil
      for i = 1, 2000 do
        local status, _, body = H.sandbox_http("POST", own.url .. "/fba/outbound/2020-07-01/fulfillmentOrders", {
          token = token, body = { marketplaceId = MP, sellerFulfillmentOrderId = "FILL-" .. i,
            displayableOrderId = "FILL-" .. i, displayableOrderDate = "2026-11-20T10:00:00Z",
            displayableOrderComment = string.rep("a comment that takes room ", 8), shippingSpeedCategory = "Standard",
            destinationAddress = { name = "Jane Doe", addressLine1 = "410 Terry Ave N", city = "Seattle",
              stateOrRegion = "WA", postalCode = "98109", countryCode = "US" },
            items = { { sellerSku = "SKU-FILL", sellerFulfillmentOrderItemId = "FILL-" .. i .. "-1", quantity = 1 } } } })
        if status ~= 200 then last_status, last_body = status, body break end
        created = created + 1
      end
      assert.equal(500, last_status)
      assert.matches("state store is full", last_body.errors[1].message, 1, true)
      assert.is_true(created > 0)
      local fulfillable, reserved = stock("SKU-FILL")
      assert.equal(created, reserved) -- the failed order reserved nothing
      assert.equal(100000 - created, fulfillable)
      local status = H.sandbox_http("GET", own.url .. "/fba/outbound/2020-07-01/fulfillmentOrders/FILL-" .. (created + 1),
        { token = token })
      assert.equal(404, status)
    end)
  end)
end)
