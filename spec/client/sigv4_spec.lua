-- spapi.sigv4.sign: the public signing entry point (AWS test suite's get-vanilla).
local sigv4 = require "spapi.sigv4"

describe("spapi.sigv4.sign", function()
  local args = { method = "GET", url = "https://example.amazonaws.com/", region = "us-east-1", service = "service",
    access_key = "AKIDEXAMPLE", secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", time = 1440938160 }

  it("returns the headers to add, agreeing with AWS's get-vanilla vector", function()
    local h = sigv4.sign(args)
    assert.equal("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
      .. "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
      h.Authorization)
    assert.equal("20150830T123600Z", h["x-amz-date"])
    assert.is_nil(h["x-amz-security-token"])
  end)

  it("adds x-amz-security-token with a session token and defaults time to now", function()
    local a = {}
    for k, v in pairs(args) do a[k] = v end
    a.session_token, a.time = "session-token-value", nil
    local h = sigv4.sign(a)
    assert.equal("session-token-value", h["x-amz-security-token"])
    assert.equal(os.date("!%Y%m%d", os.time()), h["x-amz-date"]:sub(1, 8))
  end)

  it("names a missing argument", function()
    local a = {}
    for k, v in pairs(args) do a[k] = v end
    a.secret_key = nil
    local ok, err = pcall(sigv4.sign, a)
    assert.is_false(ok)
    assert.matches("secret_key", err)
    assert.is_nil(tostring(err):find("wJalr", 1, true))
  end)
end)
