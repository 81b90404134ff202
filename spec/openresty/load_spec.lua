-- spapi loads inside a real nginx (LuaJIT, lua-nginx-module): the C core built
-- for 5.1, request building and validation, JSON, SigV4 and the sandbox-independent
-- parts of the client, in a request handler.
local H = require "helpers"
local json = require "spapi.json"

describe("inside nginx", function()
  local srv
  setup(function()
    srv = H.nginx([[
      location /t { content_by_lua_block {
        local spapi = require "spapi"
        local core = require "spapi.core"
        local request = require "spapi.request"
        local sp = assert(spapi.client{ env = false, client_id = "amzn1.application-oa2-client.ngx",
          client_secret = "s", refresh_token = "Atzr|ngx" })
        local req = request.build("vendor_df_orders", "getOrders", { createdAfter = 0, createdBefore = 86400, status = "NEW" })
        local ok, err = pcall(sp.call, sp, "vendor_df_orders.getOrders", {})
        local signed = spapi.sigv4.sign{ method = "GET", url = "https://example.amazonaws.com/", region = "us-east-1",
          service = "service", access_key = "AKIDEXAMPLE", secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
          time = 1440938160 }
        ngx.say(spapi.json.encode{ lua = jit and jit.version or _VERSION, version = spapi.VERSION,
          query = req.query, sha = core.hex(core.sha256("abc")), raised = not ok and tostring(err) or "",
          authorization = signed.Authorization, empty = spapi.json.array{},
          rate = sp:operation("vendor_df_orders.getOrders").rate, client = tostring(sp) })
      } }
    ]])
  end)

  it("loads the module and the C core and builds, validates and signs requests", function()
    local status, _, body = require("spapi.core").session{}:request{ method = "GET", url = srv.url .. "/t" }
    assert.equal(200, status, body)
    local t = assert(json.decode(body), body)
    assert.matches("^LuaJIT", t.lua)
    assert.equal(require("spapi").VERSION, t.version)
    assert.equal("status=NEW&createdAfter=1970-01-01T00%3A00%3A00Z&createdBefore=1970-01-02T00%3A00%3A00Z", t.query)
    assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", t.sha)
    assert.matches("missing required parameter 'createdAfter'", t.raised, 1, true)
    assert.matches("Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31$", t.authorization)
    assert.same({}, t.empty)
    assert.equal(10, t.rate)
    assert.is_nil(t.client:find("Atzr", 1, true))
  end)
end)
