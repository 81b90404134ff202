-- examples/nginx, started the way the README says (examples/nginx/run.sh: the
-- sandbox and a 2-worker nginx in a prefix directory, credentials from the
-- environment through nginx's `env` directives): its endpoints preview and
-- create an MCF order and list NEW VDF purchase orders, and after failures
-- nginx's logs hold none of the secrets.
local H = require "helpers"
local json = require "spapi.json"
local core = require "spapi.core"

local http = core.session{ timeout = 30 }
local function request(method, url, body)
  local status, _, raw = http:request{ method = method, url = url, body = body and json.encode(body) or nil,
    headers = { ["Content-Type"] = "application/json" } }
  return status, raw and raw ~= "" and json.decode(raw) or nil, raw
end

local ORDER = { id = "WEB-1001", items = { { sku = "SKU-RED-MUG", quantity = 1 } },
  address = { name = "Jane Doe", addressLine1 = "410 Terry Ave N", city = "Seattle", stateOrRegion = "WA",
    postalCode = "98109", countryCode = "US" } }

describe("examples/nginx", function()
  local prefix, url, sandbox, env
  local SECRET = "example-secret-" .. core.hex(core.random_bytes(8))
  local REFRESH = "Atzr|example-refresh-" .. core.hex(core.random_bytes(8))

  setup(function()
    prefix = H.tmpdir("nginx-example")
    local port, sport = H.free_port(), H.free_port()
    url, sandbox = "http://127.0.0.1:" .. port, "http://127.0.0.1:" .. sport
    env = string.format("PREFIX='%s' PORT=%d SANDBOX_PORT=%d LWA_CLIENT_SECRET='%s' LWA_REFRESH_TOKEN='%s'",
      prefix, port, sport, SECRET, REFRESH)
    local rc, out = H.run(env .. " '" .. H.root .. "/examples/nginx/run.sh'")
    assert.equal(0, rc, out)
    assert.matches("curl -s " .. url .. "/vdf/orders/new", out, 1, true)
  end)
  teardown(function()
    if env then H.run(env .. " '" .. H.root .. "/examples/nginx/run.sh' stop") end
  end)

  it("lists the NEW VDF purchase orders", function()
    local status, body, raw = request("GET", url .. "/vdf/orders/new")
    assert.equal(200, status, raw)
    assert.equal(2, #body.orders) -- the sandbox's two seeded NEW orders
    for _, o in ipairs(body.orders) do
      assert.matches("^%w+$", o.purchase_order)
      assert.equal("WAREHOUSE1", o.ship_from)
    end
  end)

  it("previews and creates an MCF order, once", function()
    local status, body, raw = request("POST", url .. "/mcf/preview", ORDER)
    assert.equal(200, status, raw)
    assert.is_true(#body.options >= 1)
    assert.equal("Standard", body.options[1].speed) -- the cheapest first
    status, body, raw = request("POST", url .. "/mcf/orders", ORDER)
    assert.equal(201, status, raw)
    assert.equal("created", body.result)
    assert.equal("WEB-1001", body.id)
    status, body, raw = request("POST", url .. "/mcf/orders", ORDER)
    assert.equal(200, status, raw)
    assert.equal("existing", body.result)
    local _, st = request("GET", sandbox .. "/_sandbox/stats")
    assert.equal(1, st.requests["fulfillment_outbound.createFulfillmentOrder"])
    status, body = request("POST", url .. "/mcf/orders", { id = "WEB-1002" })
    assert.equal(400, status)
    assert.equal("spapi.workflows.mcf: preview: order.address is required (SP-API Address fields)", body.error.message)
  end)

  it("keeps the secrets out of nginx's logs when calls fail", function()
    -- every token revoked and the app's credentials refused: the next call's
    -- token is refused, and so is the refresh
    assert.equal(200, (request("POST", sandbox .. "/_sandbox/credentials", { credentials = {
      { client_id = "amzn1.application-oa2-client.someone-else", client_secret = "other" } } })))
    assert.equal(200, (request("POST", sandbox .. "/_sandbox/reset", { tokens = true })))
    local status, body, raw = request("GET", url .. "/vdf/orders/new")
    assert.equal(502, status, raw)
    assert.equal("invalid_client", body.error.code)
    -- the token endpoint drops the connection (every attempt of the call's); an API error
    assert.equal(200, (request("POST", sandbox .. "/_sandbox/credentials", { credentials = json.null })))
    assert.equal(200, (request("POST", sandbox .. "/_sandbox/faults", { operation = "lwa", kind = "close", count = 20 })))
    status = request("POST", url .. "/mcf/preview", ORDER)
    assert.equal(502, status)
    assert.equal(200, (request("POST", sandbox .. "/_sandbox/faults", { operation = "vendor_df_orders.getOrders",
      kind = "status", status = 500, count = 10 })))
    status = request("GET", url .. "/vdf/orders/new")
    assert.equal(502, status)

    local log = assert(require("spapi.nginx").read_file(prefix .. "/logs/error.log"))
    local access = require("spapi.nginx").read_file(prefix .. "/logs/access.log") or ""
    -- the failures are there (so the search below means something) ...
    assert.matches("vdf getOrders failed: ", log, 1, true)
    assert.matches("mcf preview failed: ", log, 1, true)
    -- ... and no secret: the client secret, the refresh token, any access token
    -- or restricted data token the sandbox issued
    for _, text in ipairs({ log, access }) do
      assert.is_nil(text:find(SECRET, 1, true))
      assert.is_nil(text:find(REFRESH, 1, true))
      assert.is_nil(text:find(REFRESH:sub(6), 1, true))
      assert.is_nil(text:find("Atza|", 1, true))
      assert.is_nil(text:find("Atz.sprdt|", 1, true))
    end
  end)
end)
