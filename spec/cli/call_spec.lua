-- spapi call as a user runs it, against a sandbox whose access log shows what it
-- received: values typed by the model (strings exactly as typed), every exit
-- code, --json errors, --body, --all.
local H = require "helpers"
local S = require "cli.support"
local json = require "spapi.json"

local MP = "ATVPDKIKX0DER"
local SUMMARIES = "fba_inventory.getInventorySummaries granularityType=Marketplace granularityId=" .. MP
  .. " marketplaceIds=" .. MP

describe("spapi call", function()
  local sb, env
  setup(function()
    sb = S.sandbox()
    env = S.env(sb)
    -- SKUs that look like numbers: a Lua/JSON reading would change every one
    assert(sb.control("/_sandbox/seed", { inventory = {
      { sku = "0012E4", quantity = 3 }, { sku = "0.10", quantity = 4 }, { sku = "123456789012345678", quantity = 5 },
    } }))
    sb.requests()
  end)
  teardown(function() if sb then sb.stop() end end)

  it("sends a string parameter exactly as typed: 0012E4, 0.10, an 18-digit id", function()
    local rc, out, err = S.spapi(env, "call " .. SUMMARIES .. " sellerSku=0012E4")
    assert.equal(0, rc, err)
    local body = assert(json.decode(out))
    assert.equal(1, #body.payload.inventorySummaries)
    assert.equal("0012E4", body.payload.inventorySummaries[1].sellerSku)
    -- a csv array of strings: each item as typed
    rc, out, err = S.spapi(env, "call " .. SUMMARIES .. " sellerSkus=0.10,123456789012345678 --compact")
    assert.equal(0, rc, err)
    body = assert(json.decode(out))
    local skus = {}
    for _, s in ipairs(body.payload.inventorySummaries) do skus[#skus + 1] = s.sellerSku end
    table.sort(skus)
    assert.same({ "0.10", "123456789012345678" }, skus)
    -- in a path too
    rc, out, err = S.spapi(env, "call fulfillment_outbound.getFeatureSKU featureName=BLANK_BOX sellerSku=0012E4"
      .. " marketplaceId=" .. MP)
    assert.equal(0, rc, err)
    assert.equal("0012E4", assert(json.decode(out)).payload.sellerSku)
    local reqs = sb.requests()
    assert.matches("[?&]sellerSku=0012E4&", reqs[#reqs - 2] .. "&")
    assert.matches("[?&]sellerSkus=0.10,123456789012345678[&$]", reqs[#reqs - 1] .. "&")
    assert.matches("/features/inventory/BLANK_BOX/0012E4%?", reqs[#reqs])
  end)

  it("types numbers and booleans only where the model says, and names a bad value's parameter", function()
    local rc, out, err = S.spapi(env, "call " .. SUMMARIES .. " details=true sellerSku=0.10")
    assert.equal(0, rc, err)
    assert.is_table(assert(json.decode(out)).payload.inventorySummaries[1].inventoryDetails)
    assert.matches("[?&]details=true[&$]", sb.requests()[1] .. "&")
    rc, out, err = S.spapi(env, "call " .. SUMMARIES .. " details=yes")
    assert.equal(2, rc)
    assert.equal("", out)
    assert.matches("fba_inventory.getInventorySummaries: parameter 'details' must be true or false", err, 1, true)
    rc, _, err = S.spapi(env, "call vendor_df_orders.getOrders createdAfter=2026-01-01T00:00:00Z"
      .. " createdBefore=2026-01-02T00:00:00Z limit=12E4")
    assert.equal(2, rc)
    assert.matches("parameter 'limit' must be an integer (got '12E4')", err, 1, true)
    rc, _, err = S.spapi(env, "call vendor_df_orders.getOrders createdAfter=2026-01-01T00:00:00Z"
      .. " createdBefore=2026-01-02T00:00:00Z limit=123456789012345678901")
    assert.equal(2, rc)
    assert.matches("too large to send exactly", err, 1, true)
    assert.same({}, sb.requests()) -- nothing bad was sent
    -- a date-time as Unix seconds (digits) goes out as ISO 8601
    rc, _, err = S.spapi(env, "call " .. SUMMARIES .. " startDateTime=1700000000")
    assert.equal(0, rc, err)
    assert.matches("[?&]startDateTime=2023%-11%-14T22%%3A13%%3A20Z[&$]", sb.requests()[1] .. "&")
  end)

  it("exits 0 on success with the body as JSON on stdout", function()
    local rc, out, err = S.spapi(env, "call fulfillment_outbound.getFeatures marketplaceId=" .. MP)
    assert.equal(0, rc, err)
    assert.equal("", err)
    assert.is_table(assert(json.decode(out)).payload.features)
  end)

  it("exits 1 on an API error, the error on stderr", function()
    local rc, out, err = S.spapi(env, "call fulfillment_outbound.getFulfillmentOrder sellerFulfillmentOrderId=nope")
    assert.equal(1, rc)
    assert.equal("", out)
    assert.matches("404 NotFound", err, 1, true)
    assert.matches("request id", err, 1, true)
  end)

  it("exits 2 on a usage error, without a traceback or a request", function()
    sb.requests()
    for _, args in ipairs({
      "call fulfillment_outbound.nope",                               -- unknown operation
      "call nope.getFeatures",                                        -- unknown API
      "call fulfillment_outbound.getFeatures",                        -- missing parameter
      "call fulfillment_outbound.getFeatures marketplaceId=" .. MP .. " nope=1", -- unknown parameter
      "call fulfillment_outbound.getFeatures marketplaceId",          -- not name=value
      "call fulfillment_outbound.getFeatures marketplaceId=" .. MP .. " --frobnicate",
      "call fulfillment_outbound.getFeatures marketplaceId=" .. MP .. " --all", -- does not page
      "call fulfillment_outbound.createFulfillmentOrder --body /nonexistent.json",
      "call",
    }) do
      local rc, out, err = S.spapi(env, args)
      assert.equal(2, rc, args .. "\n" .. err)
      assert.equal("", out, args)
      assert.is_nil(err:find("traceback", 1, true), err)
      assert.is_nil(err:find("%.lua:%d+:"), err)
    end
    local _, _, err = S.spapi(env, "call fulfillment_outbound.getFeatures marketplaceId=" .. MP .. " marketplaceID=x")
    assert.matches("unknown parameter 'marketplaceID' (did you mean 'marketplaceId'?)", err, 1, true)
    assert.same({}, sb.requests())
  end)

  it("exits 3 on a network failure", function()
    local port = H.free_port() -- nothing listens there
    local rc, out, err = S.spapi(S.env(nil, { SPAPI_ENDPOINT = "http://127.0.0.1:" .. port,
      SPAPI_LWA_ENDPOINT = "http://127.0.0.1:" .. port .. "/auth/o2/token" }),
      "call fulfillment_outbound.getFeatures marketplaceId=" .. MP .. " --json")
    assert.equal(3, rc, err)
    assert.equal("", out)
    local e = assert(json.decode(err))
    assert.equal(3, e.exit_code)
    assert.equal("connect", e.kind)
  end)

  it("exits 4 when LWA refuses the credentials or there are none, and prints no secret", function()
    local rc, out, err = S.spapi(S.env(sb, { LWA_CLIENT_SECRET = "wrong-secret-value" }),
      "call fulfillment_outbound.getFeatures marketplaceId=" .. MP)
    assert.equal(4, rc, err)
    assert.equal("", out)
    assert.matches("invalid_client", err, 1, true)
    assert.is_nil(err:find("wrong-secret-value", 1, true))
    rc, out, err = S.spapi(S.env(sb, { LWA_REFRESH_TOKEN = "Atzr|not-the-one" }),
      "call fulfillment_outbound.getFeatures marketplaceId=" .. MP .. " --json")
    assert.equal(4, rc, err)
    local e = assert(json.decode(err))
    assert.same({ 4, "lwa", "invalid_grant" }, { e.exit_code, e.kind, e.code })
    assert.is_nil(err:find("not-the-one", 1, true))
    rc, out, err = S.spapi(S.env(sb, { LWA_CLIENT_ID = false, LWA_CLIENT_SECRET = false }),
      "call fulfillment_outbound.getFeatures marketplaceId=" .. MP)
    assert.equal(4, rc, err)
    assert.matches("client_id and client_secret are required", err, 1, true)
    S.no_secret(out .. err)
  end)

  it("takes credentials and endpoints from --profile over the environment's", function()
    local dir = H.tmpdir("cli-profile")
    local f = assert(io.open(dir .. "/profiles", "wb"))
    f:write("[other]\nclient_id = ", S.PROFILE_CLIENT_ID, "\nclient_secret = ", S.CLIENT_SECRET,
      "\nrefresh_token = ", S.REFRESH_TOKEN, "\nendpoint = ", sb.endpoint, "\nlwa_endpoint = ", sb.lwa_endpoint, "\n")
    f:close()
    local penv = S.env(nil, { LWA_CLIENT_SECRET = "wrong-secret-value", SPAPI_ENDPOINT = "http://127.0.0.1:1",
      SPAPI_CONFIG_FILE = dir .. "/profiles" })
    local rc, out, err = S.spapi(penv, "call fulfillment_outbound.getFeatures marketplaceId=" .. MP .. " --profile other")
    assert.equal(0, rc, err)
    assert.is_table(assert(json.decode(out)).payload.features)
    rc, out, err = S.spapi(penv, "call fulfillment_outbound.getFeatures marketplaceId=" .. MP .. " --profile nope --json")
    assert.equal(4, rc, err)
    assert.equal("ProfileNotFound", assert(json.decode(err)).code)
  end)

  it("prints an error as one JSON object with --json", function()
    local rc, out, err = S.spapi(env, "call fulfillment_outbound.getFulfillmentOrder sellerFulfillmentOrderId=nope --json")
    assert.equal(1, rc)
    assert.equal("", out)
    local e = assert(json.decode(err))
    assert.same({ 1, 404, "NotFound", "fulfillment_outbound.getFulfillmentOrder" },
      { e.exit_code, e.status, e.code, e.operation })
    assert.is_string(e.request_id)
    assert.is_string(e.message)
    rc, _, err = S.spapi(env, "call fulfillment_outbound.getFeatures --json")
    assert.equal(2, rc)
    e = assert(json.decode(err))
    assert.same({ 2, "usage" }, { e.exit_code, e.kind })
    assert.matches("missing required parameter 'marketplaceId'", e.message, 1, true)
  end)

  it("takes the body from a file, from stdin, or as name=JSON", function()
    local dir = H.tmpdir("cli-body")
    local f = assert(io.open(dir .. "/item.json", "wb"))
    f:write(json.encode({ sellerSku = "00777", marketplaceId = MP, productName = "File body" }))
    f:close()
    local rc, _, err = S.spapi(env, "call fba_inventory.createInventoryItem --body " .. S.q(dir .. "/item.json"))
    assert.equal(0, rc, err)
    rc, _, err = S.spapi(env, "call fba_inventory.createInventoryItem --body -", {
      stdin = json.encode({ sellerSku = "1E10", marketplaceId = MP, productName = "Stdin body" }) })
    assert.equal(0, rc, err)
    rc, _, err = S.spapi(env, "call fba_inventory.createInventoryItem " .. S.q("body="
      .. json.encode({ sellerSku = "0x1F", marketplaceId = MP, productName = "Inline body" })))
    assert.equal(0, rc, err)
    local out
    rc, out, err = S.spapi(env, "call " .. SUMMARIES .. " sellerSkus=00777,1E10,0x1F --compact")
    assert.equal(0, rc, err)
    local names = {}
    for _, s in ipairs(assert(json.decode(out)).payload.inventorySummaries) do names[s.sellerSku] = s.productName end
    assert.same({ ["00777"] = "File body", ["1E10"] = "Stdin body", ["0x1F"] = "Inline body" }, names)
    rc, _, err = S.spapi(env, "call fba_inventory.createInventoryItem --body -", { stdin = "{not json" })
    assert.equal(2, rc)
    assert.matches("--body is not JSON", err, 1, true)
  end)

  it("--all follows nextToken and prints one JSON document per item", function()
    local inv = {}
    for i = 1, 120 do inv[i] = { sku = string.format("ALL-%03d", i), quantity = i } end
    assert(sb.control("/_sandbox/seed", { inventory = inv }))
    sb.requests()
    local rc, out, err = S.spapi(env, "call " .. SUMMARIES .. " --all")
    assert.equal(0, rc, err)
    assert.equal("", err) -- no progress when stderr is not a terminal
    local seen, n = {}, 0
    for _, line in ipairs(S.lines(out)) do
      local item = assert(json.decode(line), line)
      assert.is_string(item.sellerSku)
      assert.is_nil(seen[item.sellerSku])
      seen[item.sellerSku] = true
      n = n + 1
    end
    for i = 1, 120 do assert.is_true(seen[string.format("ALL-%03d", i)]) end
    local pages, asked = 0, {} -- (a page retried after a 429 is the same request line)
    for _, r in ipairs(sb.requests()) do
      if r:find("/fba/inventory/v1/summaries", 1, true) and not asked[r] then pages, asked[r] = pages + 1, true end
    end
    assert.equal(math.ceil(n / 50), pages)
    assert.is_true(pages >= 3)
  end)
end)
