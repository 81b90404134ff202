-- Token buckets per (client, selling partner, operation) with the model's rate and burst.
local H = require "helpers"

local FEATURES = "/fba/outbound/2020-07-01/features"
local MP = { marketplaceId = "ATVPDKIKX0DER" }

describe("sandbox rate limits", function()
  before_each(function() H.sandbox{ reset = true } end)

  it("answers 429 QuotaExceeded once the burst is spent, with the rate header on every response", function()
    local token = H.sandbox_token()
    -- getFeatures: rate 2/s, burst 30 in the model
    local ok, throttled, last_body = 0, 0, nil
    for _ = 1, 45 do
      local status, headers, body = H.sandbox_http("GET", FEATURES, { token = token, query = MP })
      assert.equal("2.0", headers["x-amzn-ratelimit-limit"])
      assert.is_string(headers["x-amzn-requestid"])
      if status == 200 then ok = ok + 1
      elseif status == 429 then throttled = throttled + 1 last_body = body end
    end
    assert.is_true(ok >= 30 and ok < 45, "ok = " .. ok)
    assert.is_true(throttled >= 1)
    assert.same({ errors = { { code = "QuotaExceeded",
      message = "You exceeded your quota for the requested resource.", details = "" } } }, last_body)
    local _, _, stats = H.sandbox_http("GET", "/_sandbox/stats")
    assert.equal(throttled, stats.throttled)
    assert.equal(45, stats.requests["fulfillment_outbound.getFeatures"])
  end)

  it("refills the bucket over time", function()
    local token = H.sandbox_token()
    -- getInventorySummaries: rate 2/s, burst 2
    local q = { granularityType = "Marketplace", granularityId = "ATVPDKIKX0DER", marketplaceIds = "ATVPDKIKX0DER" }
    local statuses = {}
    for i = 1, 4 do statuses[i] = (H.sandbox_http("GET", "/fba/inventory/v1/summaries", { token = token, query = q })) end
    assert.equal(200, statuses[1])
    assert.equal(429, statuses[4])
    require("spapi.core").sleep(1.1)
    assert.equal(200, (H.sandbox_http("GET", "/fba/inventory/v1/summaries", { token = token, query = q })))
  end)

  it("keeps separate buckets per selling partner and per operation", function()
    local a = H.sandbox_token{ refresh_token = "Atzr|seller-a" }
    local b = H.sandbox_token{ refresh_token = "Atzr|seller-b" }
    local q = { granularityType = "Marketplace", granularityId = "ATVPDKIKX0DER", marketplaceIds = "ATVPDKIKX0DER" }
    for _ = 1, 3 do H.sandbox_http("GET", "/fba/inventory/v1/summaries", { token = a, query = q }) end
    assert.equal(429, (H.sandbox_http("GET", "/fba/inventory/v1/summaries", { token = a, query = q })))
    assert.equal(200, (H.sandbox_http("GET", "/fba/inventory/v1/summaries", { token = b, query = q })))
    assert.equal(200, (H.sandbox_http("GET", FEATURES, { token = a, query = MP })))
  end)

  it("scales rates and bursts with rate_scale", function()
    assert(H.sandbox().control("/_sandbox/config", { rate_scale = 10 }))
    local token = H.sandbox_token()
    local q = { granularityType = "Marketplace", granularityId = "ATVPDKIKX0DER", marketplaceIds = "ATVPDKIKX0DER" }
    for i = 1, 15 do
      local status, headers = H.sandbox_http("GET", "/fba/inventory/v1/summaries", { token = token, query = q })
      assert.equal("20.0", headers["x-amzn-ratelimit-limit"])
      assert.equal(200, status, "request " .. i)
    end
  end)

  it("grants an operation its own rate and burst (config limits), unscaled, until a reset", function()
    local sb = H.sandbox()
    local cfg = assert(sb.control("/_sandbox/config", { rate_scale = 10,
      limits = { ["fba_inventory.getInventorySummaries"] = { rate = 3, burst = 1 } } }))
    assert.same({ ["fba_inventory.getInventorySummaries"] = { rate = 3, burst = 1 } }, cfg.limits)
    local token = H.sandbox_token()
    local q = { granularityType = "Marketplace", granularityId = "ATVPDKIKX0DER", marketplaceIds = "ATVPDKIKX0DER" }
    local s1, h1 = H.sandbox_http("GET", "/fba/inventory/v1/summaries", { token = token, query = q })
    local s2 = H.sandbox_http("GET", "/fba/inventory/v1/summaries", { token = token, query = q })
    assert.equal(200, s1)
    assert.equal("3.0", h1["x-amzn-ratelimit-limit"])
    assert.equal(429, s2)
    local bad = H.sandbox_http("POST", "/_sandbox/config", { body = { limits = { ["nope.op"] = { rate = 1, burst = 1 } } } })
    assert.equal(400, bad)
    H.sandbox{ reset = true }
    local _, _, after = H.sandbox_http("GET", "/_sandbox/config")
    assert.is_nil(after.limits)
    local _, h3 = H.sandbox_http("GET", "/fba/inventory/v1/summaries", { token = token, query = q })
    assert.equal("2.0", h3["x-amzn-ratelimit-limit"])
  end)
end)
