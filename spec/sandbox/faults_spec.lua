-- Fault injection through the control API: status, delay, close, truncated and
-- invalid JSON; count and seeded rate; per operation or global.
local H = require "helpers"
local core = require "spapi.core"
local json = require "cjson.safe"

local FEATURES = "/fba/outbound/2020-07-01/features"
local MP = { marketplaceId = "ATVPDKIKX0DER" }
local OP = "fulfillment_outbound.getFeatures"

describe("sandbox faults", function()
  local sb, token

  local function call(path)
    return H.sandbox_http("GET", path or FEATURES, { token = token, query = MP })
  end

  local function fault(spec) return assert(sb.control("/_sandbox/faults", spec)) end

  before_each(function()
    sb = H.sandbox{ reset = true }
    assert(sb.control("/_sandbox/config", { rate_scale = 100 }))
    token = H.sandbox_token()
  end)

  it("injects 500, 503 and 429 with SP-API bodies for the next N requests", function()
    fault{ operation = OP, kind = "status", status = 503, retry_after = 3, count = 2 }
    local status, headers, body = call()
    assert.equal(503, status)
    assert.equal("3", headers["retry-after"])
    assert.equal("ServiceUnavailable", body.errors[1].code)
    assert.equal(503, (call()))
    assert.equal(200, (call()))

    fault{ operation = OP, status = 500, count = 1 }
    status, _, body = call()
    assert.equal(500, status)
    assert.equal("InternalFailure", body.errors[1].code)

    fault{ operation = OP, kind = "status", status = 429, count = 1 }
    status, headers, body = call()
    assert.equal(429, status)
    assert.equal("QuotaExceeded", body.errors[1].code)
    assert.is_string(headers["x-amzn-ratelimit-limit"])

    local _, _, stats = H.sandbox_http("GET", "/_sandbox/stats")
    assert.equal(4, stats.faults_injected)
    assert.equal(0, stats.server_errors)
  end)

  it("only touches the operation it names, unless it is global", function()
    fault{ operation = OP, status = 500, count = 1 }
    assert.equal(200, (call("/fba/outbound/2020-07-01/returnReasonCodes?sellerSku=SKU-RED-MUG")))
    assert.equal(500, (call()))
    fault{ status = 503, count = 1 }
    assert.equal(503, (call("/fba/outbound/2020-07-01/returnReasonCodes?sellerSku=SKU-RED-MUG")))
    assert.equal(200, (call()))
  end)

  it("delays responses", function()
    fault{ operation = OP, kind = "delay", delay_ms = 400, count = 1 }
    local t0 = core.monotonic()
    assert.equal(200, (call()))
    local slow = core.monotonic() - t0
    t0 = core.monotonic()
    assert.equal(200, (call()))
    local fast = core.monotonic() - t0
    assert.is_true(slow >= 0.35, "delayed call took " .. slow)
    assert.is_true(fast < slow)
  end)

  it("closes the connection in the middle of the response", function()
    fault{ operation = OP, kind = "close", count = 1 }
    local status, err = call()
    assert.is_nil(status)
    assert.is_string(err)
    assert.equal(200, (call()))
  end)

  it("sends truncated and invalid JSON", function()
    fault{ operation = OP, kind = "truncated", count = 1 }
    local status, _, body, raw = call()
    assert.equal(200, status)
    assert.is_nil(body)
    assert.is_nil(json.decode(raw))
    assert.equal('{"', raw:sub(1, 2))

    fault{ operation = OP, kind = "invalid_json", count = 1 }
    status, _, body, raw = call()
    assert.equal(200, status)
    assert.is_nil(body)
    assert.is_nil(json.decode(raw))
    assert.equal(200, (call()))
  end)

  it("fires a rate fault deterministically for a given seed", function()
    local function pattern()
      assert(sb.reset{ seed = 7 })
      assert(sb.control("/_sandbox/config", { rate_scale = 100 }))
      fault{ operation = OP, status = 500, rate = 0.3 }
      local out = {}
      for i = 1, 40 do out[i] = (call()) == 500 and "x" or "." end
      return table.concat(out)
    end
    local a, b = pattern(), pattern()
    assert.equal(a, b)
    local n = select(2, a:gsub("x", ""))
    assert.is_true(n > 2 and n < 25, a)
  end)

  it("faults the LWA endpoint when asked, and DELETE clears every fault", function()
    fault{ operation = "lwa", status = 503, count = 5 }
    local status = H.sandbox_http("POST", "/auth/o2/token", { body = "grant_type=refresh_token&refresh_token=x&client_id=a&client_secret=b",
      headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } })
    assert.equal(503, status)
    fault{ operation = OP, status = 500 }
    assert.equal(500, (call()))
    local listed = assert(sb.control("/_sandbox/faults"))
    assert.equal(2, #listed.faults)
    assert(sb.control("/_sandbox/faults", {}, "DELETE"))
    assert.equal(200, (call()))
    assert.is_string(H.sandbox_token())
  end)

  it("rejects malformed fault specs", function()
    local _, err = sb.control("/_sandbox/faults", { operation = "nope.nothing", status = 500 })
    assert.matches("unknown operation", err)
    _, err = sb.control("/_sandbox/faults", { kind = "explode" })
    assert.matches("kind", err)
    _, err = sb.control("/_sandbox/faults", { kind = "delay" })
    assert.matches("delay_ms", err)
  end)
end)
