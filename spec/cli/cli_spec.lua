-- bin/spapi as a user runs it: start the sandbox, list operations, call one, stop.
local H = require "helpers"
local json = require "spapi.json"

local run = H.run

describe("bin/spapi", function()
  local dir, env
  setup(function()
    dir = H.tmpdir("cli")
    local rc, out = run(string.format("cd %q && bin/spapi sandbox start --port %d --dir %q", H.root, H.free_port(), dir))
    assert.equal(0, rc, out)
    local endpoint = out:match("endpoint=(http://[%d.:]+)")
    assert.truthy(endpoint, out)
    assert.matches("lwa_endpoint=" .. endpoint:gsub("%p", "%%%0") .. "/auth/o2/token", out)
    env = string.format("LWA_CLIENT_ID=amzn1.application-oa2-client.cli LWA_CLIENT_SECRET=s LWA_REFRESH_TOKEN='Atzr|cli' "
      .. "SPAPI_ENDPOINT=%s SPAPI_LWA_ENDPOINT=%s/auth/o2/token SPAPI_CONFIG_FILE=/nonexistent", endpoint, endpoint)
  end)
  teardown(function()
    local rc, out = run(string.format("cd %q && bin/spapi sandbox stop --dir %q", H.root, dir))
    assert.equal(0, rc, out)
    rc = run(string.format("cd %q && bin/spapi sandbox status --dir %q", H.root, dir))
    assert.equal(3, rc)
  end)

  it("reports the sandbox running", function()
    local rc, out = run(string.format("cd %q && bin/spapi sandbox status --dir %q", H.root, dir))
    assert.equal(0, rc, out)
  end)

  it("lists APIs and operations", function()
    local rc, out = run(string.format("cd %q && bin/spapi ops", H.root))
    assert.equal(0, rc, out)
    assert.matches("vendor_df_orders", out)
    rc, out = run(string.format("cd %q && bin/spapi ops merchant_fulfillment", H.root))
    assert.equal(0, rc, out)
    assert.matches("createShipment%s+POST%s+/mfn/v0/shipments", out)
    assert.matches("RDT", out)
  end)

  it("calls an operation and prints the body as JSON", function()
    local rc, out = run(string.format("cd %q && %s bin/spapi call fulfillment_outbound.getFeatures marketplaceId=ATVPDKIKX0DER",
      H.root, env))
    assert.equal(0, rc, out)
    local body = assert(json.decode(out))
    assert.is_table(body.payload.features)
  end)

  it("exits non-zero with the error for a bad parameter or a failed call", function()
    local rc, out = run(string.format("cd %q && %s bin/spapi call vendor_df_orders.getOrders status=NEW", H.root, env))
    assert.equal(2, rc)
    assert.matches("createdAfter", out)
    rc, out = run(string.format("cd %q && %s bin/spapi call fulfillment_outbound.getFulfillmentOrder sellerFulfillmentOrderId=nope",
      H.root, env))
    assert.equal(1, rc)
    assert.matches("404", out)
  end)
end)
