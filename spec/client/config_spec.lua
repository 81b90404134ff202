local config = require "spapi.config"
local spapi = require "spapi"
local H = require "helpers"

local function env(t) return function(k) return t[k] end end

describe("config", function()
  it("has the regions, hosts and marketplaces built in", function()
    local c = assert(config.resolve({ region = "eu" }, env{}))
    assert.equal("https://sellingpartnerapi-eu.amazon.com", c.endpoint)
    assert.equal("eu-west-1", c.aws_region)
    c = assert(config.resolve({ region = "fe", sandbox = true }, env{}))
    assert.equal("https://sandbox.sellingpartnerapi-fe.amazon.com", c.endpoint)
    assert.equal("https://api.amazon.com/auth/o2/token", c.lwa_endpoint)
    assert.equal("US", config.marketplace("ATVPDKIKX0DER").country)
    assert.equal("A1PA6795UKMFR9", config.marketplace("de").id)
    assert.equal("fe", spapi.marketplace("JP").region)
    local none, err = config.resolve({ region = "moon" }, env{})
    assert.is_nil(none)
    assert.matches("moon", err)
  end)

  it("reads credentials from the environment, the table winning", function()
    local e = env{ LWA_CLIENT_ID = "env-id", LWA_CLIENT_SECRET = "env-secret", LWA_REFRESH_TOKEN = "env-rt",
      SPAPI_REGION = "fe", SPAPI_ENDPOINT = "http://127.0.0.1:1", SPAPI_LWA_ENDPOINT = "http://127.0.0.1:2/t",
      AWS_ACCESS_KEY_ID = "AK", AWS_SECRET_ACCESS_KEY = "SK", AWS_SESSION_TOKEN = "ST" }
    local c = assert(config.resolve({ client_id = "table-id" }, e))
    assert.equal("table-id", c.client_id)
    assert.equal("env-secret", c.client_secret)
    assert.equal("env-rt", c.refresh_token)
    assert.equal("fe", c.region)
    assert.equal("http://127.0.0.1:1", c.endpoint)
    assert.equal("http://127.0.0.1:2/t", c.lwa_endpoint)
    assert.equal("AK", c.aws_access_key)
    assert.equal("ST", c.aws_session_token)
    c = assert(config.resolve({ env = false }, e))
    assert.is_nil(c.client_id)
  end)

  it("reads a named profile from the profile file", function()
    local dir = H.tmpdir("profile")
    local f = assert(io.open(dir .. "/profiles", "w"))
    f:write("# spapi profiles\n[default]\nclient_id = def-id\nclient_secret = def-secret\n\n",
      "[eu-shop]\nclient_id = eu-id\nclient_secret = eu-secret\nrefresh_token = Atzr|eu\nregion = eu\ntimeout = 7\n")
    f:close()
    local c = assert(config.resolve({ profile = "eu-shop" }, env{ SPAPI_CONFIG_FILE = dir .. "/profiles" }))
    assert.equal("eu-id", c.client_id)
    assert.equal("Atzr|eu", c.refresh_token)
    assert.equal("https://sellingpartnerapi-eu.amazon.com", c.endpoint)
    assert.equal(7, c.timeout)
    c = assert(config.resolve({}, env{ XDG_CONFIG_HOME = dir .. "/nowhere", SPAPI_CONFIG_FILE = dir .. "/profiles",
      LWA_CLIENT_ID = "env-over-profile" }))
    assert.equal("env-over-profile", c.client_id)
    assert.equal("def-secret", c.client_secret)
    local none, err = config.resolve({ profile = "missing" }, env{ SPAPI_CONFIG_FILE = dir .. "/profiles" })
    assert.is_nil(none)
    assert.matches("missing", err)
    -- the same for SPAPI_PROFILE (found in review: ignored, and the env's credentials used)
    none, err = config.resolve({}, env{ SPAPI_CONFIG_FILE = dir .. "/profiles", SPAPI_PROFILE = "prod",
      LWA_CLIENT_ID = "other-app", LWA_CLIENT_SECRET = "other-secret" })
    assert.is_nil(none)
    assert.matches("profile 'prod' not found", err, 1, true)
    c = assert(config.resolve({}, env{ SPAPI_CONFIG_FILE = dir .. "/profiles", SPAPI_PROFILE = "eu-shop" }))
    assert.equal("eu-id", c.client_id)
    -- "default" may be absent, named or not (credentials from the environment)
    c = assert(config.resolve({}, env{ SPAPI_CONFIG_FILE = dir .. "/none", SPAPI_PROFILE = "default",
      LWA_CLIENT_ID = "env-id" }))
    assert.equal("env-id", c.client_id)
  end)

  it("refuses a client without credentials, naming what is missing", function()
    local sp, err = spapi.client{ env = false, profile_file = "/nonexistent" }
    assert.is_nil(sp)
    assert.matches("client_id", err)
    assert.matches("LWA_CLIENT_ID", err)
  end)

  it("keeps secrets out of tostring and the client table", function()
    local sp = assert(spapi.client{ env = false, client_id = "amzn1.application-oa2-client.abcdef123456",
      client_secret = "s3cr3t-value", refresh_token = "Atzr|rt-value", aws_access_key = "AKID",
      aws_secret_key = "aws-secret-value" })
    local s = tostring(sp)
    assert.matches("spapi.Client", s, 1, true)
    for _, secret in ipairs({ "s3cr3t-value", "Atzr|rt-value", "aws-secret-value" }) do
      assert.is_nil(s:find(secret, 1, true))
      for k, v in pairs(sp.cfg) do
        assert.is_false(v == secret, "cfg." .. tostring(k) .. " holds a secret")
      end
    end
  end)

  -- Found in review: client.auth held the client secret and refresh token, and
  -- the access token sat in the auth memo, the memory store and the finished
  -- request kept for the operation's next call.
  it("keeps every secret and token out of reach of a dump of the client, after calls", function()
    local srv = H.mock_api()
    local sp = srv.client()
    assert(sp.fulfillment_outbound.getFeatures{ marketplaceId = "ATVPDKIKX0DER" })
    assert(sp:call("merchant_fulfillment.getShipment", { shipmentId = "0a1b2c3d-0000-1111-2222-333344445555" },
      { rdt = true }))
    -- and with SigV4: the AWS session token and the signature (the parked request kept them)
    local signed = srv.client{ aws_access_key = "ASIAEXAMPLE", aws_secret_key = "test-secret-value-aws",
      aws_session_token = "test-secret-value-sts" }
    assert(signed.fulfillment_outbound.getFeatures{ marketplaceId = "ATVPDKIKX0DER" })
    signed:call("fulfillment_outbound.getFulfillmentOrder", { sellerFulfillmentOrderId = "none" })
    local seen, found = {}, {}
    local function walk(v, path)
      if type(v) == "string" then
        if v:find("test-secret-value", 1, true) or v:find("Atzr|", 1, true) or v:find("Atza|", 1, true)
          or v:find("Atz.sprdt|", 1, true) or v:find("AWS4-HMAC-SHA256 Credential", 1, true) then
          found[#found + 1] = path
        end
      elseif type(v) == "table" and not seen[v] then
        seen[v] = true
        for k, x in pairs(v) do
          walk(k, path .. "[key]")
          walk(x, path .. "." .. tostring(k))
        end
        walk(getmetatable(v), path .. "<mt>")
      end
    end
    walk(sp, "client")
    walk(signed, "signed client")
    srv.stop()
    assert.same({}, found)
  end)
end)
