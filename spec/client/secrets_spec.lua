-- A pre-signed document URL's query is a credential: it appears in no error
-- message and no debug event field. Only http(s) URLs are ever fetched.
local H = require "helpers"

local SIG, CRED, TOK = "5ec2e7516e0a7e5", "AKIAPRESIGNEDCRED", "FwoGZXIvYXdzEPRESIGNTOKEN"
local QUERY = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" .. CRED .. "%2F20261206%2Fus-east-1%2Fs3%2Faws4_request"
  .. "&X-Amz-Date=20261206T120000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Security-Token=" .. TOK
  .. "&X-Amz-Signature=" .. SIG

-- everything in a value (tables walked), as one string
local function dump(v, out)
  out = out or {}
  if type(v) == "table" then
    for k, x in pairs(v) do dump(k, out); dump(x, out) end
  else
    out[#out + 1] = tostring(v)
  end
  return table.concat(out, " ")
end

local function assert_clean(s)
  for _, secret in ipairs({ SIG, CRED, TOK, "X-Amz-Algorithm" }) do
    assert.is_nil(s:find(secret, 1, true), "found " .. secret .. " in: " .. s)
  end
end

describe("client: pre-signed URLs and schemes", function()
  local srv, events

  setup(function()
    -- an S3 stand-in that refuses every request and, like S3's SignatureDoesNotMatch,
    -- echoes the canonical request (with the query) in its error
    srv = H.nginx([[
      location / { content_by_lua_block {
        ngx.status = 403
        ngx.header["Content-Type"] = "application/xml"
        ngx.print("<Error><Code>SignatureDoesNotMatch</Code><CanonicalRequest>GET\n" .. ngx.var.uri .. "\n"
          .. (ngx.var.args or "") .. "</CanonicalRequest></Error>")
      } }
    ]])
  end)

  local function client(extra)
    events = {}
    local cfg = { env = false, endpoint = srv.url, lwa_endpoint = srv.url .. "/auth/o2/token",
      client_id = "amzn1.application-oa2-client.sec", client_secret = "s", refresh_token = "Atzr|sec",
      max_retries = 0, debug = function(ev) events[#events + 1] = ev end }
    for k, v in pairs(extra or {}) do cfg[k] = v end
    return assert(require("spapi").client(cfg))
  end

  it("keeps a failed download's pre-signed query out of the error and the debug events", function()
    local sp = client()
    local port = H.free_port() -- nothing listens there
    local body, err = sp:download_document{ url = "http://127.0.0.1:" .. port .. "/doc.txt?" .. QUERY }
    assert.is_nil(body)
    assert.equal("connect", err.kind)
    assert.matches("127.0.0.1:" .. port .. "/doc.txt?[redacted]", err.message, 1, true)
    assert_clean(tostring(err))
    assert_clean(dump(err))
    assert.is_true(#events >= 2)
    assert_clean(dump(events))
  end)

  it("masks the signature a storage host echoes in its refusal", function()
    local sp = client()
    local body, err = sp:download_document{ url = srv.url .. "/doc.txt?" .. QUERY }
    assert.is_nil(body)
    assert.equal(403, err.status)
    assert.matches("SignatureDoesNotMatch", err.message, 1, true)
    assert_clean(tostring(err):gsub("X%-Amz%-Algorithm", "")) -- (the echo names the parameters)
    for _, secret in ipairs({ SIG, CRED, TOK }) do
      assert.is_nil(dump(err):find(secret, 1, true))
      assert.is_nil(dump(events):find(secret, 1, true))
    end
    -- the debug events show where it went, without the query
    local seen = false
    for _, ev in ipairs(events) do
      if ev.phase == "request" then
        seen = true
        assert.equal(srv.url .. "/doc.txt?[redacted]", ev.url)
      end
    end
    assert.is_true(seen)
  end)

  it("fetches documents over http(s) only", function()
    local sp = client()
    local f = assert(io.open("/etc/hostname", "rb"))
    local host = f:read("*l")
    f:close()
    local body, err = sp:download_document{ url = "file:///etc/hostname" }
    assert.is_nil(body)
    assert.equal("InvalidURL", err.code)
    assert.matches("'file'", err.message, 1, true)
    if host and #host > 3 then assert.is_nil(tostring(err):find(host, 1, true)) end
    assert.equal(0, #events) -- nothing was sent
    local ok, uerr = sp:upload_document("ftp://127.0.0.1/upload", "x", "text/plain")
    assert.is_nil(ok)
    assert.equal("InvalidURL", uerr.code)
    assert.matches("'ftp'", uerr.message, 1, true)
  end)

  it("takes http(s) API and LWA endpoints only", function()
    local spapi = require "spapi"
    local base = { env = false, client_id = "c", client_secret = "s", refresh_token = "Atzr|r" }
    local function with(k, v)
      local t = {}
      for a, b in pairs(base) do t[a] = b end
      t[k] = v
      return t
    end
    local sp, err = spapi.client(with("endpoint", "file:///etc"))
    assert.is_nil(sp)
    assert.matches("endpoint must be an http:// or https:// URL (got scheme 'file')", tostring(err), 1, true)
    sp, err = spapi.client(with("lwa_endpoint", "gopher://127.0.0.1/x"))
    assert.is_nil(sp)
    assert.matches("lwa_endpoint must be an http:// or https:// URL (got scheme 'gopher')", tostring(err), 1, true)
    assert(spapi.client(with("endpoint", "HTTPS://sandbox.sellingpartnerapi-na.amazon.com")))
  end)
end)
