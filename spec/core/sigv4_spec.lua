-- AWS Signature Version 4 against AWS's published test suite (aws-sig-v4-test-suite,
-- https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html).
-- Each vector gives the suite's canonical request (.creq), the hash line of its
-- string to sign (.sts) and its signature (.authz). Where the suite's files
-- disagree with each other (post-x-www-form-urlencoded*: a later edit added
-- content-length to the .creq but not to the .sts/.authz), the request here is
-- the one whose .sts and .authz AWS published together.
-- Vectors marked sdk come from the copy of the suite in aws-sdk-js-v3
-- (packages/signature-v4/src/suite.fixture.ts), which gives only .authz.
local core = require "spapi.core"

local E = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" -- sha256("")
local DATE = "x-amz-date:20150830T123600Z"
local HOST = "host:example.amazonaws.com"
local UNRESERVED = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
local TOKEN = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
local FORM_HASH = "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e" -- sha256("Param1=value1")

local function lines(...) return table.concat({ ... }, "\n") end

local V = {
  { name = "get-vanilla", method = "GET", path = "/",
    creq = lines("GET", "/", "", HOST, DATE, "", "host;x-amz-date", E),
    sts = "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
    sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
  { name = "get-header-key-duplicate", method = "GET", path = "/",
    headers = { { "My-Header1", "value2" }, { "My-Header1", "value2" }, { "My-Header1", "value1" } },
    creq = lines("GET", "/", "", HOST, "my-header1:value2,value2,value1", DATE, "", "host;my-header1;x-amz-date", E),
    sts = "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
    sig = "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea" },
  { name = "get-header-value-order", method = "GET", path = "/",
    headers = { { "My-Header1", "value4" }, { "My-Header1", "value1" }, { "My-Header1", "value3" }, { "My-Header1", "value2" } },
    creq = lines("GET", "/", "", HOST, "my-header1:value4,value1,value3,value2", DATE, "", "host;my-header1;x-amz-date", E),
    sts = "31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86",
    sig = "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01" },
  { name = "get-header-value-trim", method = "GET", path = "/",
    headers = { { "My-Header1", " value1" }, { "My-Header2", ' "a   b   c"' } },
    creq = lines("GET", "/", "", HOST, "my-header1:value1", 'my-header2:"a b c"', DATE, "",
      "host;my-header1;my-header2;x-amz-date", E),
    sts = "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
    sig = "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736" },
  { name = "get-header-value-multiline (sdk)", method = "GET", path = "/",
    headers = { ["My-Header1"] = "value1\n  value2\n     value3" },
    creq = lines("GET", "/", "", HOST, "my-header1:value1,value2,value3", DATE, "", "host;my-header1;x-amz-date", E),
    sig = "ba17b383a53190154eb5fa66a1b836cc297cc0a3d70a5d00705980573d8ff790" },
  { name = "get-unreserved", method = "GET", path = "/" .. UNRESERVED,
    creq = lines("GET", "/" .. UNRESERVED, "", HOST, DATE, "", "host;x-amz-date", E),
    sts = "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9",
    sig = "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f" },
  { name = "get-utf8 (sdk)", method = "GET", path = "/\225\136\180",
    creq = lines("GET", "/%E1%88%B4", "", HOST, DATE, "", "host;x-amz-date", E),
    sig = "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85" },
  { name = "get-vanilla-empty-query-key", method = "GET", path = "/?Param1=value1",
    creq = lines("GET", "/", "Param1=value1", HOST, DATE, "", "host;x-amz-date", E),
    sts = "1e24db194ed7d0eec2de28d7369675a243488e08526e8c1c73571282f7c517ab",
    sig = "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb" },
  { name = "get-vanilla-query", method = "GET", path = "/",
    creq = lines("GET", "/", "", HOST, DATE, "", "host;x-amz-date", E),
    sts = "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
    sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
  { name = "get-vanilla-query-order-key", method = "GET", path = "/?Param1=value2&Param1=Value1",
    creq = lines("GET", "/", "Param1=Value1&Param1=value2", HOST, DATE, "", "host;x-amz-date", E),
    sts = "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89",
    sig = "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1" },
  { name = "get-vanilla-query-order-key-case", method = "GET", path = "/?Param2=value2&Param1=value1",
    creq = lines("GET", "/", "Param1=value1&Param2=value2", HOST, DATE, "", "host;x-amz-date", E),
    sts = "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
    sig = "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500" },
  { name = "get-vanilla-query-order-value", method = "GET", path = "/?Param1=value2&Param1=value1",
    creq = lines("GET", "/", "Param1=value1&Param1=value2", HOST, DATE, "", "host;x-amz-date", E),
    sts = "c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606",
    sig = "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694" },
  { name = "get-vanilla-query-unreserved", method = "GET", path = "/?" .. UNRESERVED .. "=" .. UNRESERVED,
    creq = lines("GET", "/", UNRESERVED .. "=" .. UNRESERVED, HOST, DATE, "", "host;x-amz-date", E),
    sts = "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177",
    sig = "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197" },
  { name = "get-vanilla-utf8-query", method = "GET", path = "/?\225\136\180=bar",
    creq = lines("GET", "/", "%E1%88%B4=bar", HOST, DATE, "", "host;x-amz-date", E),
    sts = "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
    sig = "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04" },
  { name = "post-header-key-case", method = "POST", path = "/",
    creq = lines("POST", "/", "", HOST, DATE, "", "host;x-amz-date", E),
    sts = "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
    sig = "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b" },
  { name = "post-header-key-sort", method = "POST", path = "/", headers = { ["My-Header1"] = "value1" },
    creq = lines("POST", "/", "", HOST, "my-header1:value1", DATE, "", "host;my-header1;x-amz-date", E),
    sts = "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65",
    sig = "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c" },
  { name = "post-header-value-case", method = "POST", path = "/", headers = { ["My-Header1"] = "VALUE1" },
    creq = lines("POST", "/", "", HOST, "my-header1:VALUE1", DATE, "", "host;my-header1;x-amz-date", E),
    sts = "d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93",
    sig = "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d" },
  { name = "post-vanilla", method = "POST", path = "/",
    creq = lines("POST", "/", "", HOST, DATE, "", "host;x-amz-date", E),
    sts = "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
    sig = "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b" },
  { name = "post-vanilla-empty-query-value", method = "POST", path = "/?Param1=value1",
    creq = lines("POST", "/", "Param1=value1", HOST, DATE, "", "host;x-amz-date", E),
    sts = "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
    sig = "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11" },
  { name = "post-vanilla-query", method = "POST", path = "/?Param1=value1",
    creq = lines("POST", "/", "Param1=value1", HOST, DATE, "", "host;x-amz-date", E),
    sts = "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
    sig = "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11" },
  { name = "post-vanilla-query-nonunreserved (sdk)", method = "POST",
    path = "/?%40%23%24%25%5E=&%2B=%2F%2C%3F%3E%3C%60%22%3B%3A%5C%7C%5D%5B%7B%7D",
    creq = lines("POST", "/", "%2B=%2F%2C%3F%3E%3C%60%22%3B%3A%5C%7C%5D%5B%7B%7D&%40%23%24%25%5E=", HOST, DATE, "",
      "host;x-amz-date", E),
    sig = "66c82657c86e26fb25238d0e69f011edc4c6df5ae71119d7cb98ed9b87393c1e" },
  { name = "post-vanilla-query-space (sdk)", method = "POST", path = "/?p",
    creq = lines("POST", "/", "p=", HOST, DATE, "", "host;x-amz-date", E),
    sig = "e71688addb58a26418614085fb730ba3faa623b461c17f48f2fbdb9361b94a9b" },
  { name = "post-x-www-form-urlencoded", method = "POST", path = "/", body = "Param1=value1",
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded" },
    creq = lines("POST", "/", "", "content-type:application/x-www-form-urlencoded", HOST, DATE, "",
      "content-type;host;x-amz-date", FORM_HASH),
    sts = "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
    sig = "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a" },
  { name = "post-x-www-form-urlencoded-parameters", method = "POST", path = "/", body = "Param1=value1",
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded; charset=utf8" },
    creq = lines("POST", "/", "", "content-type:application/x-www-form-urlencoded; charset=utf8", HOST, DATE, "",
      "content-type;host;x-amz-date", FORM_HASH),
    sts = "2e1cf7ed91881a30569e46552437e4156c823447bf1781b921b5d486c568dd1c",
    sig = "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe" },
  { name = "normalize-path/get-relative", method = "GET", path = "/example/..",
    creq = lines("GET", "/", "", HOST, DATE, "", "host;x-amz-date", E),
    sts = "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
    sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
  { name = "normalize-path/get-relative-relative", method = "GET", path = "/example1/example2/../..",
    creq = lines("GET", "/", "", HOST, DATE, "", "host;x-amz-date", E),
    sts = "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
    sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
  { name = "normalize-path/get-slash", method = "GET", path = "//",
    creq = lines("GET", "/", "", HOST, DATE, "", "host;x-amz-date", E),
    sts = "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
    sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
  { name = "normalize-path/get-slash-dot-slash", method = "GET", path = "/./",
    creq = lines("GET", "/", "", HOST, DATE, "", "host;x-amz-date", E),
    sts = "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
    sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
  { name = "normalize-path/get-slash-pointless-dot", method = "GET", path = "/./example",
    creq = lines("GET", "/example", "", HOST, DATE, "", "host;x-amz-date", E),
    sts = "214d50c111a8edc4819da6a636336472c916b5240f51e9a51b5c3305180cf702",
    sig = "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5" },
  { name = "normalize-path/get-slashes", method = "GET", path = "//example//",
    creq = lines("GET", "/example/", "", HOST, DATE, "", "host;x-amz-date", E),
    sts = "cb96b4ac96d501f7c5c15bc6d67b3035061cfced4af6585ad927f7e6c985c015",
    sig = "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84" },
  { name = "normalize-path/get-space", method = "GET", path = "/example space/",
    creq = lines("GET", "/example%20space/", "", HOST, DATE, "", "host;x-amz-date", E),
    sts = "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86",
    sig = "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741" },
  { name = "post-sts-token/post-sts-header-before", method = "POST", path = "/", session_token = TOKEN,
    creq = lines("POST", "/", "", HOST, DATE, "x-amz-security-token:" .. TOKEN, "",
      "host;x-amz-date;x-amz-security-token", E),
    sts = "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
    sig = "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead" },
}

local function args(v)
  return {
    method = v.method, url = "https://example.amazonaws.com" .. v.path, headers = v.headers, body = v.body,
    region = "us-east-1", service = "service", access_key = "AKIDEXAMPLE",
    secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", session_token = v.session_token,
    time = 1440938160, -- 20150830T123600Z
  }
end

local function signed_headers(creq)
  local parts = {}
  for l in (creq .. "\n"):gmatch("([^\n]*)\n") do parts[#parts + 1] = l end
  return parts[#parts - 1]
end

describe("core.sigv4 against aws-sig-v4-test-suite", function()
  for _, v in ipairs(V) do
    it(v.name, function()
      local creq, sts = core.sigv4_canonical(args(v))
      assert.equal(v.creq, creq)
      local sts_lines = {}
      for l in sts:gmatch("[^\n]+") do sts_lines[#sts_lines + 1] = l end
      assert.same({ "AWS4-HMAC-SHA256", "20150830T123600Z", "20150830/us-east-1/service/aws4_request",
        v.sts or core.hex(core.sha256(v.creq)) }, sts_lines)
      local h = core.sigv4_sign(args(v))
      assert.equal("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders="
        .. signed_headers(v.creq) .. ", Signature=" .. v.sig, h.Authorization)
      assert.equal("20150830T123600Z", h["x-amz-date"])
      assert.equal(v.session_token, h["x-amz-security-token"])
      assert.is_nil(h["x-amz-content-sha256"])
    end)
  end
end)

describe("core.sigv4_sign", function()
  local base = args({ method = "GET", path = "/" })

  it("emits x-amz-content-sha256 when asked, and signs it", function()
    local a = args({ method = "PUT", path = "/doc", body = "hello" })
    a.content_sha256 = true
    local h = core.sigv4_sign(a)
    assert.equal(core.hex(core.sha256("hello")), h["x-amz-content-sha256"])
    assert.matches("SignedHeaders=host;x%-amz%-content%-sha256;x%-amz%-date,", h.Authorization)
  end)

  it("derives Host with a non-default port and drops default ports", function()
    local a = args({ method = "GET", path = "/" })
    a.url = "http://127.0.0.1:8080/x?b=2&a=1"
    local creq = core.sigv4_canonical(a)
    assert.matches("\nhost:127.0.0.1:8080\n", creq, 1, true)
    assert.matches("\na=1&b=2\n", creq, 1, true)
    a.url = "https://Example.com:443/x"
    assert.matches("\nhost:example.com\n", core.sigv4_canonical(a), 1, true)
    a.url = "http://example.com:80/x"
    assert.matches("\nhost:example.com\n", core.sigv4_canonical(a), 1, true)
  end)

  it("uses a Host header given by the caller", function()
    local a = args({ method = "GET", path = "/", headers = { host = "api.example" } })
    assert.matches("\nhost:api.example\n", core.sigv4_canonical(a), 1, true)
  end)

  it("encodes already-encoded path segments again and query values once (non-S3 rules)", function()
    local a = args({ method = "GET", path = "/listings/2021-08-01/items/A1/SKU%20X%2F1?marketplaceIds=ATVPDKIKX0DER%2CA2&q=a+b" })
    local creq = core.sigv4_canonical(a)
    assert.matches("\n/listings/2021%-08%-01/items/A1/SKU%%2520X%%252F1\n", creq)
    assert.matches("\nmarketplaceIds=ATVPDKIKX0DER%%2CA2&q=a%%2Bb\n", creq)
  end)

  it("is deterministic for a fixed time and changes with the secret", function()
    local a, b = core.sigv4_sign(base), core.sigv4_sign(base)
    assert.equal(a.Authorization, b.Authorization)
    local other = args({ method = "GET", path = "/" })
    other.secret_key = "another"
    assert.are_not.equal(a.Authorization, core.sigv4_sign(other).Authorization)
  end)

  it("refuses a time whose x-amz-date would not have a four-digit year", function()
    for _, t in ipairs({ 253402300800, -62167219201, 1e18, -1e18, 0 / 0, math.huge }) do
      local a = args({ method = "GET", path = "/" })
      a.time = t
      assert.has_error(function() core.sigv4_sign(a) end, "sigv4_sign: 'time' out of range")
    end
    local a = args({ method = "GET", path = "/" })
    a.time = 253402300799 -- the last second of 9999
    assert.equal("99991231T235959Z", core.sigv4_sign(a)["x-amz-date"])
    a.time = 0
    assert.equal("19700101T000000Z", core.sigv4_sign(a)["x-amz-date"])
  end)

  it("defaults time to now", function()
    local a = args({ method = "GET", path = "/" })
    a.time = nil
    local h = core.sigv4_sign(a)
    assert.equal(os.date("!%Y%m%d", os.time()), h["x-amz-date"]:sub(1, 8))
  end)

  it("raises naming a missing field, never showing the secret", function()
    for _, f in ipairs({ "method", "url", "region", "service", "access_key", "secret_key" }) do
      local a = args({ method = "GET", path = "/" })
      a[f] = nil
      local ok, err = pcall(core.sigv4_sign, a)
      assert.is_false(ok)
      assert.matches(f, err, 1, true)
      assert.is_nil(err:find("wJalrXUtnFEMI", 1, true))
    end
    local a = args({ method = "GET", path = "/" })
    a.url = "not a url"
    assert.has_error(function() core.sigv4_sign(a) end)
  end)
end)
