-- A cold batch against the sandbox when the server's rate differs from the
-- model's: the batch reserves a slot as it launches each job and re-plans when
-- x-amzn-RateLimit-Limit states another rate (issue 19's measured bug: at 10x
-- the model's rate, 90 of 200 calls failed RateLimitWait after 60 s).
local H = require "helpers"
local clock = require "spapi.clock"

local MP = "ATVPDKIKX0DER"
local OP = "fba_inventory.getInventorySummaries" -- the model: rate 2/s, burst 2
local PARAMS = { granularityType = "Marketplace", granularityId = MP, marketplaceIds = { MP } }

describe("batch against the sandbox's own rate", function()
  local sb

  local function client()
    return assert(require("spapi").client{ env = false, endpoint = sb.endpoint, lwa_endpoint = sb.lwa_endpoint,
      client_id = "amzn1.application-oa2-client.br", client_secret = "s", refresh_token = "Atzr|batch-rate",
      retry_base = 0.05, retry_cap = 0.3 })
  end

  local function stats() return (assert(sb.control("/_sandbox/stats", nil, "GET"))) end

  local function run(n, scale)
    assert(sb.control("/_sandbox/config", { rate_scale = scale }))
    local list = {}
    for i = 1, n do list[i] = { OP, PARAMS } end
    local sp = client()
    local t0 = clock.monotonic()
    local results = sp:batch(list, { concurrency = 16 })
    local took = clock.monotonic() - t0
    local failed = {}
    for i, r in ipairs(results) do
      if not r.ok then failed[#failed + 1] = i .. ": " .. tostring(r.err) end
    end
    return took, failed, stats()
  end

  before_each(function() sb = H.sandbox{ reset = true } end)
  after_each(function() H.sandbox{ reset = true } end)

  it("finishes 200 calls near (200 - burst) / rate at ten times the model's rate, none failed", function()
    local took, failed, st = run(200, 10)
    assert.same({}, failed)
    assert.equal(200, st.requests[OP])
    -- the rate stated is 20/s, paced at 90%: 18/s, less the model's burst of 2
    local expected = (200 - 2) / 18
    assert.is_true(took < expected * 1.5, string.format("took %.1fs, expected about %.1fs", took, expected))
    assert.equal(0, st.throttled)
  end)

  it("draws no more 429s than its first burst costs at half the model's rate", function()
    local took, failed, st = run(6, 0.5)
    assert.same({}, failed)
    -- the server allows 1/s with a burst of 1; the model's burst of 2 goes out
    -- before any answer states the rate: one 429, then none
    assert.is_true(st.throttled <= 1, "throttled " .. st.throttled)
    assert.is_true(took < 12, string.format("took %.1fs", took))
  end)
end)
