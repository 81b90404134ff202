-- One retry policy (spapi.retry) for every request: API calls, LWA exchanges and
-- document transfers wait the server's Retry-After, else the same backoff, and
-- stop at the call's deadline. A real nginx answers; the client's clock skips
-- its waits, and the spec reads the waits it chose.
local H = require "helpers"
local fake_clock = require "support.fake_clock"

describe("one retry policy", function()
  local h
  setup(function()
    -- /_reset?PATH=N: PATH's next N requests fail with a 503. Any path given
    -- ?fail=N&status=S&retry_after=R: its first N requests (counted per path and
    -- ?tag=) fail with S and Retry-After R. Then the LWA token or a small body.
    h = H.nginx([[
      location / { content_by_lua_block {
        local d, a, uri = ngx.shared.retry, ngx.req.get_uri_args(), ngx.var.uri
        if uri == "/_reset" then
          d:flush_all()
          for k, v in pairs(a) do d:set("fail:" .. k, tonumber(v)) end
          return ngx.print("ok")
        end
        local n = d:incr(uri .. (a.tag or ""), 1, 0)
        if n <= tonumber(a.fail or d:get("fail:" .. uri) or 0) then
          ngx.status = tonumber(a.status or 503)
          if a.retry_after then ngx.header["Retry-After"] = a.retry_after end
          return ngx.print('{"errors":[{"code":"Busy","message":"try again"}]}')
        end
        ngx.header["Content-Type"] = "application/json"
        if uri == "/auth/o2/token" then
          return ngx.print('{"access_token":"Atza|x","token_type":"bearer","expires_in":3600}')
        end
        ngx.print('{"payload":{}}')
      } }
    ]], "lua_shared_dict retry 1m;")
  end)

  local function ctl(path)
    local s = require("spapi.core").session{ timeout = 5 }
    local status = s:request{ method = "GET", url = h.url .. path }
    s:close()
    assert.equal(200, status)
  end

  local function client(c, extra)
    local cfg = { env = false, endpoint = h.url, lwa_endpoint = h.url .. "/auth/o2/token",
      client_id = "amzn1.application-oa2-client.rp", client_secret = "s", refresh_token = "Atzr|rp",
      retry_base = 0.4, retry_cap = 3, clock = c }
    for k, v in pairs(extra or {}) do cfg[k] = v end
    return assert(require("spapi").client(cfg))
  end

  before_each(function() ctl("/_reset") end)

  it("backs off an LWA exchange as it does an API call", function()
    ctl("/_reset?%2Fauth%2Fo2%2Ftoken=2") -- two 503s from LWA, without Retry-After
    local c = fake_clock.skipping()
    local sp = client(c)
    assert(sp.fulfillment_outbound.getFeatures{ marketplaceId = "ATVPDKIKX0DER" })
    assert.equal(2, #c.slept) -- LWA waited twice, then the call went through at once
    -- the backoff's draws: retry_base 0.4 → [0.2, 0.4), then [0.4, 0.8)
    assert.is_true(c.slept[1] >= 0.2 and c.slept[1] < 0.4, c.slept[1])
    assert.is_true(c.slept[2] >= 0.4 and c.slept[2] < 0.8, c.slept[2])
  end)

  it("waits a document storage URL's Retry-After, and stops at the deadline", function()
    local c = fake_clock.skipping()
    local sp = client(c)
    local text = assert(sp:download_document{ url = h.url .. "/doc?fail=2&status=429&retry_after=1.5" })
    assert.equal('{"payload":{}}', text)
    assert.same({ 1.5, 1.5 }, c.slept)

    -- a server that asks for more time than the deadline leaves: one attempt, then the error
    local c2 = fake_clock.skipping()
    local sp2 = client(c2, { deadline = 5 })
    local none, err = sp2:download_document{ url = h.url .. "/doc?tag=2&fail=9&status=503&retry_after=30" }
    assert.is_nil(none)
    assert.equal(503, err.status)
    assert.equal(1, err.attempts)
    assert.same({}, c2.slept)
  end)

  it("gives API calls the same backoff and max_retries", function()
    local c = fake_clock.skipping()
    local sp = client(c, { max_retries = 2 })
    -- a path that fails three times: two retries, then the error
    ctl("/_reset?%2Ffba%2Foutbound%2F2020-07-01%2Ffeatures=3")
    local none, err = sp.fulfillment_outbound.getFeatures({ marketplaceId = "ATVPDKIKX0DER" })
    assert.is_nil(none)
    assert.equal(503, err.status)
    assert.equal(3, err.attempts)
    assert.equal(2, #c.slept)
    assert.is_true(c.slept[1] >= 0.2 and c.slept[1] < 0.4, c.slept[1])
    assert.is_true(c.slept[2] >= 0.4 and c.slept[2] < 0.8, c.slept[2])
  end)
end)
