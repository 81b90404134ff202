-- Operations the models mark x-amzn-api-sandbox-only exist only on Amazon's
-- sandbox hosts: against a production host the client raises, naming the operation.
local spapi = require "spapi"
local H = require "helpers"

describe("client: sandbox-only operations", function()
  local function client(extra)
    local cfg = { env = false, client_id = "c", client_secret = "s", refresh_token = "Atzr|r",
      lwa_endpoint = "http://127.0.0.1:" .. H.free_port() .. "/auth/o2/token" }
    for k, v in pairs(extra) do cfg[k] = v end
    return assert(spapi.client(cfg))
  end

  it("knows which operations they are, from the models", function()
    assert.is_true(spapi.client{ env = false, client_id = "c", client_secret = "s" }
      :operation("fba_inventory.createInventoryItem").sandbox_only)
    assert.is_nil(spapi.client{ env = false, client_id = "c", client_secret = "s" }
      :operation("fba_inventory.getInventorySummaries").sandbox_only)
  end)

  it("raises against a production host, naming the operation", function()
    for _, region in ipairs({ "na", "eu", "fe" }) do
      local events = {}
      local sp = client{ region = region, debug = function(ev) events[#events + 1] = ev end }
      local ok, err = pcall(sp.call, sp, "fba_inventory.createInventoryItem", { body = { sellerSku = "S",
        marketplaceId = spapi.marketplace(region == "na" and "US" or region == "eu" and "DE" or "JP").id,
        productName = "P" } })
      assert.is_false(ok)
      assert.matches("fba_inventory.createInventoryItem is a sandbox-only operation", err, 1, true)
      assert.matches("sellingpartnerapi-" .. region .. ".amazon.com", err, 1, true)
      ok, err = pcall(function() return sp.vendor_df_sandbox.generateOrderScenarios end)
      assert.is_false(ok)
      assert.matches("vendor_df_sandbox.generateOrderScenarios is a sandbox-only operation", err, 1, true)
      assert.equal(0, #events)
    end
  end)

  it("lets them through to Amazon's sandbox hosts and to the local sandbox", function()
    local sp = client{ sandbox = true }
    local body, err = sp.fba_inventory.createInventoryItem{ body = { sellerSku = "S", marketplaceId = "ATVPDKIKX0DER",
      productName = "P" } }
    assert.is_nil(body)
    assert.equal("LWAUnreachable", err.code) -- it got as far as the token request
    local sb = H.sandbox{ reset = true }
    local local_sp = assert(spapi.client{ env = false, endpoint = sb.endpoint, lwa_endpoint = sb.lwa_endpoint,
      client_id = "amzn1.application-oa2-client.so", client_secret = "s", refresh_token = "Atzr|so" })
    assert(local_sp.fba_inventory.createInventoryItem{ body = { sellerSku = "SANDBOX-ONLY-1",
      marketplaceId = "ATVPDKIKX0DER", productName = "A sandbox item" } })
  end)
end)
