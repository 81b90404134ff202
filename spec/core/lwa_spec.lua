-- Login with Amazon: token request body and answer parsing (pure, no I/O).
local core = require "spapi.core"

describe("core.lwa_form", function()
  it("builds a refresh_token body in the documented field order", function()
    local body = core.lwa_form{
      client_secret = "s3cr+t/=", client_id = "amzn1.application-oa2-client.abc",
      refresh_token = "Atzr|IwEB a&b=c", grant_type = "refresh_token",
    }
    assert.equal("grant_type=refresh_token&refresh_token=Atzr%7CIwEB%20a%26b%3Dc"
      .. "&client_id=amzn1.application-oa2-client.abc&client_secret=s3cr%2Bt%2F%3D", body)
  end)
  it("builds a client_credentials (grantless) body with scope", function()
    local body = core.lwa_form{
      grant_type = "client_credentials", scope = "sellingpartnerapi::notifications",
      client_id = "id", client_secret = "sec",
    }
    assert.equal("grant_type=client_credentials&scope=sellingpartnerapi%3A%3Anotifications&client_id=id&client_secret=sec", body)
  end)
  it("percent-encodes UTF-8 values bytewise", function()
    local body = core.lwa_form{ grant_type = "refresh_token", refresh_token = "β", client_id = "i", client_secret = "s" }
    assert.matches("refresh_token=%%CE%%B2&", body)
  end)
  local good = { grant_type = "refresh_token", refresh_token = "Atzr|r", client_id = "id", client_secret = "TOPSECRET" }
  local function without(field, extra)
    local t = {}
    for k, v in pairs(good) do t[k] = v end
    t[field] = nil
    for k, v in pairs(extra or {}) do t[k] = v end
    return t
  end
  for _, f in ipairs({ "grant_type", "refresh_token", "client_id", "client_secret" }) do
    it("raises naming a missing " .. f .. " without leaking the secret", function()
      local ok, err = pcall(core.lwa_form, without(f))
      assert.is_false(ok)
      assert.matches(f, err, 1, true)
      assert.is_nil(err:find("TOPSECRET", 1, true))
    end)
  end
  it("requires scope for client_credentials and a known grant_type", function()
    local ok, err = pcall(core.lwa_form, { grant_type = "client_credentials", client_id = "i", client_secret = "s" })
    assert.is_false(ok)
    assert.matches("scope", err)
    ok, err = pcall(core.lwa_form, without("grant_type", { grant_type = "password" }))
    assert.is_false(ok)
    assert.matches("grant_type", err)
  end)
  it("raises on non-string and empty values", function()
    assert.has_error(function() core.lwa_form(without("client_id", { client_id = 42 })) end)
    assert.has_error(function() core.lwa_form(without("client_id", { client_id = "" })) end)
    assert.has_error(function() core.lwa_form("x") end)
  end)
end)

describe("core.lwa_parse", function()
  it("returns the token on 2xx", function()
    local t = core.lwa_parse(200, [[{"access_token":"Atza|IwEBIA","refresh_token":"Atzr|new",
      "token_type":"bearer","expires_in":3600}]])
    assert.same({ access_token = "Atza|IwEBIA", refresh_token = "Atzr|new", token_type = "bearer", expires_in = 3600 }, t)
    assert.equal("3600", string.format("%d", t.expires_in))
  end)
  it("leaves refresh_token out when absent and skips nested values", function()
    local t = core.lwa_parse(200, [[ {"access_token":"a\"b\\c\u00e9\ud83d\ude00","token_type":"bearer",
      "expires_in":3600, "extra":{"x":[1,2,{"y":"}"}]}, "n":null, "ok":true} ]])
    assert.equal('a"b\\cé😀', t.access_token)
    assert.is_nil(t.refresh_token)
    assert.equal(3600, t.expires_in)
  end)
  it("returns the LWA error code and description on 4xx", function()
    local v, err = core.lwa_parse(400, [[{"error_description":"The request has an invalid grant parameter : refresh_token","error":"invalid_grant"}]])
    assert.is_nil(v)
    assert.same({ status = 400, code = "invalid_grant",
      message = "The request has an invalid grant parameter : refresh_token" }, err)
    v, err = core.lwa_parse(401, [[{"error":"invalid_client","error_description":"Client authentication failed"}]])
    assert.is_nil(v)
    assert.equal("invalid_client", err.code)
    assert.equal(401, err.status)
  end)
  it("reports garbage bodies as invalid_response", function()
    for _, body in ipairs({ "<html>503</html>", "", "[1,2]", '{"a":1', '{"a":1} trailing', '"str"' }) do
      local v, err = core.lwa_parse(503, body)
      assert.is_nil(v)
      assert.equal("invalid_response", err.code)
      assert.equal(503, err.status)
      assert.is_string(err.message)
    end
    local v, err = core.lwa_parse(200, "not json")
    assert.is_nil(v)
    assert.equal("invalid_response", err.code)
    v, err = core.lwa_parse(503, '{"a":1')
    assert.equal("LWA answered HTTP 503 with a body that is not a JSON object (unexpected end of text at character 7)",
      err.message)
  end)
  it("reads an expires_in sent as a string of digits", function()
    local t = core.lwa_parse(200, [[{"access_token":"a","expires_in":"3600"}]])
    assert.equal(3600, t.expires_in)
    assert.equal("3600", string.format("%d", t.expires_in))
  end)
  it("treats a 2xx without access_token as invalid, never echoing the body", function()
    local v, err = core.lwa_parse(200, [[{"token_type":"bearer","secret_thing":"Atza|LEAK"}]])
    assert.is_nil(v)
    assert.equal("invalid_response", err.code)
    assert.is_nil(err.message:find("LEAK", 1, true))
  end)
end)

describe("core.json_flat", function()
  it("decodes scalars and escapes", function()
    local t = core.json_flat([[{"s":"x\n\t\/","n":-1.5e2,"i":7,"t":true,"f":false,"z":null}]])
    assert.same({ s = "x\n\t/", n = -150, i = 7, t = true, f = false }, t)
  end)
  it("skips well-formed nested values of every kind", function()
    local t = core.json_flat([=[{"a":{"x":[1,-2.5e3,true,false,null,"s\"]",{"y":{}}],"z":[]},"b":2,"c":[{},[[]]]}]=])
    assert.same({ b = 2 }, t)
  end)
  it("reads JSON as spapi.json.decode does: same rules, same message", function()
    local json = require "spapi.json"
    for _, s in ipairs({ [[{"s":"\ud800x"}]], '{"a":1,}', '{"a":[1 2]}', '{"a":"x', '{"a":1} x' }) do
      local v, err = core.json_flat(s)
      local dv, derr = json.decode(s)
      assert.is_nil(v)
      assert.is_nil(dv)
      assert.equal("spapi.json.decode: " .. err, derr)
    end
    assert.equal("\240\159\152\128", core.json_flat([[{"s":"\ud83d\ude00"}]]).s)
  end)
  it("returns nil, err for malformed input", function()
    for _, s in ipairs({ "{", '{"a"}', '{"a":}', '{"a":"\\q"}', '{"a":"x', '{"a":1,}', "{'a':1}",
      '{"a":1\0}', '{"a":1\0\0\0,"b":2}', '{"a":1.}', '{"a":01}', '{"a":+1}', '{"a":1e}', '{"a":--1}',
      '{"a":[},"b":1}', '{"a":{"x":1]}', '{"a":[1 2]}', '{"a":{"x"}}', '{"a":[nul]}', '{"a":[1,]}',
      '{"a":' .. string.rep("[", 1100) .. string.rep("]", 1100) .. '}' }) do
      local v, err = core.json_flat(s)
      assert.is_nil(v)
      assert.is_string(err)
    end
  end)
end)
