-- The sandbox over TLS (`spapi sandbox start --tls`) and the ngx transport
-- verifying it: with the sandbox's CA in nginx's lua_ssl_trusted_certificate
-- calls (and document downloads) succeed; with the system's CAs only they fail
-- with kind = "tls". libcurl verifies the same certificate with cainfo.
local H = require "helpers"
local core = require "spapi.core"
local json = require "spapi.json"

local SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"

local SERVER = [[
  location = /features { content_by_lua_block { require("ngx_calls").features() } }
  location = /flow     { content_by_lua_block { require("ngx_calls").flow() } }
  location = /report   { content_by_lua_block { require("ngx_calls").report() } }
]]

local function get(session, url)
  local status, _, body = session:request{ method = "GET", url = url }
  assert(status == 200, tostring(status) .. " " .. tostring(body))
  return assert(json.decode(body), body)
end

local function client(endpoint, extra)
  local cfg = { env = false, endpoint = endpoint, lwa_endpoint = endpoint .. "/auth/o2/token",
    client_id = "amzn1.application-oa2-client.tls", client_secret = "s", refresh_token = "Atzr|tls",
    max_retries = 0, transport = "curl" }
  for k, v in pairs(extra or {}) do cfg[k] = v end
  return assert(require("spapi").client(cfg))
end

describe("the sandbox over TLS", function()
  local sb, s
  setup(function()
    sb = assert(require("spapi.sandbox").start{ port = H.free_port(), tls = true, tls_port = 0,
      dir = H.tmpdir("tls-sandbox"), speed = 0 })
    s = core.session{ timeout = 30 }
  end)
  teardown(function() if sb then sb.stop() end end)

  it("has a CA and serves a certificate for this machine and Amazon's host names", function()
    assert.matches("^https://localhost:%d+$", sb.https_endpoint)
    for _, host in ipairs(require("spapi.sandbox.tls").HOSTS) do
      -- curl checks the name against the certificate, resolving it to the sandbox
      local rc, out = H.run(string.format("curl -sS -o /dev/null -w '%%{http_code}' --cacert '%s' --resolve %s:%d:127.0.0.1"
        .. " https://%s:%d/_sandbox/config", sb.ca, host, sb.tls_port, host, sb.tls_port))
      assert.equal(0, rc, host .. ": " .. out)
      assert.equal("200", out)
    end
    local rc, out = H.run(string.format("curl -sS -o /dev/null -w '%%{http_code}' --cacert '%s'"
      .. " https://127.0.0.1:%d/_sandbox/config", sb.ca, sb.tls_port))
    assert.equal(0, rc, out)
    -- an unknown name is refused
    rc = H.run(string.format("curl -sS -o /dev/null --cacert '%s' --resolve example.com:%d:127.0.0.1"
      .. " https://example.com:%d/", sb.ca, sb.tls_port, sb.tls_port))
    assert.not_equal(0, rc)
  end)

  it("is started by `spapi sandbox start --tls`, which prints the CA and the https endpoint", function()
    local dir = H.tmpdir("tls-cli")
    local bin = H.root .. "/bin/spapi"
    local rc, out = H.run(string.format("'%s' sandbox start --tls --port 0 --tls-port 0 --dir '%s'", bin, dir))
    local _, status_out = H.run(string.format("'%s' sandbox status --dir '%s'", bin, dir))
    local https, ca = out:match("https_endpoint=(%S+)"), out:match("\nca=(%S+)")
    local code = https and ca and select(2, H.run(string.format("curl -sS -o /dev/null -w '%%{http_code}' --cacert '%s' %s/_sandbox/config",
      ca, https)))
    H.run(string.format("'%s' sandbox stop --dir '%s'", bin, dir))
    assert.equal(0, rc, out)
    assert.matches("^https://localhost:%d+$", https)
    assert.equal(dir .. "/tls/ca.pem", ca)
    assert.equal("200", code)
    assert.matches("https_endpoint=" .. https, status_out, 1, true)
  end)

  it("keeps its CA across restarts", function()
    local before = assert(io.open(sb.ca)):read("*a")
    local again = assert(require("spapi.sandbox").start{ port = sb.port, tls = true, tls_port = sb.tls_port,
      dir = sb.dir, speed = 0 })
    assert.equal(before, assert(io.open(again.ca)):read("*a"))
    assert.equal(200, (s:request{ method = "GET", url = sb.url .. "/_sandbox/config" }))
  end)

  it("is verified by the curl transport with cainfo, refused without", function()
    local body, err = client(sb.https_endpoint, { cainfo = sb.ca }).fulfillment_outbound.getFeatures{
      marketplaceId = "ATVPDKIKX0DER" }
    assert.is_truthy(body, tostring(err))
    local _, err2 = client(sb.https_endpoint, { cainfo = SYSTEM_CA }).fulfillment_outbound.getFeatures{
      marketplaceId = "ATVPDKIKX0DER" }
    assert.equal("tls", err2.kind)
  end)

  describe("through the ngx transport", function()
    local trusted, untrusted, ep
    setup(function()
      trusted = H.nginx(SERVER, ("lua_ssl_trusted_certificate %s; lua_ssl_verify_depth 5;"):format(sb.ca),
        { workers = 2 })
      untrusted = H.nginx(SERVER, ("lua_ssl_trusted_certificate %s; lua_ssl_verify_depth 5;"):format(SYSTEM_CA),
        { workers = 2 })
      ep = core.urlencode(sb.https_endpoint)
    end)

    it("succeeds with the sandbox's CA in lua_ssl_trusted_certificate", function()
      local r = get(s, trusted.url .. "/features?ep=" .. ep)
      assert.equal("ngx", r.transport)
      assert.is_true(r.ok, r.message)
      assert.equal(3, r.features)
    end)

    it("uploads and downloads documents over https", function()
      local r = get(s, trusted.url .. "/flow?ep=" .. ep)
      assert.is_true(r.upload)
      assert.is_true(r.create_report)
      assert(sb.control("/_sandbox/clock", { advance = 120 }))
      local rep = get(s, trusted.url .. "/report?ep=" .. ep .. "&id=" .. r.report_id)
      assert.is_true(rep.ok, rep.message or rep.status)
      assert.matches("GET_MERCHANT_LISTINGS_ALL_DATA", rep.text, 1, true)
    end)

    it("fails with kind = \"tls\" without it, saying what nginx.conf needs", function()
      local r = get(s, untrusted.url .. "/features?ep=" .. ep)
      assert.is_false(r.ok)
      assert.equal("tls", r.kind, r.message)
      assert.matches("lua_ssl_trusted_certificate", r.message, 1, true)
    end)

    it("connects without verification only when verify = false", function()
      local r = get(s, untrusted.url .. "/features?verify=0&ep=" .. ep)
      assert.is_true(r.ok, r.message)
      -- a verifying client in the same worker does not get the unverified connection
      for _ = 1, 4 do
        r = get(s, untrusted.url .. "/features?ep=" .. ep)
        assert.equal("tls", r.kind, r.message)
      end
    end)
  end)
end)
