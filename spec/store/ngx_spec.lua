-- The lua_shared_dict store (spapi.store.ngx) keeps the store contract of
-- lua/spapi/store/memory.lua, run inside a real nginx (the store needs ngx.shared);
-- `shared_dict = "<name>"` chooses it, and a wrong name or a missing nginx is a
-- clear error.
local H = require "helpers"
local json = require "spapi.json"
local spapi = require "spapi"

local function get(url)
  local status, _, body = require("spapi.core").session{ timeout = 20 }:request{ method = "GET", url = url }
  assert.equal(200, status, body)
  return assert(json.decode(body), body)
end

describe("spapi.store.ngx", function()
  local srv
  setup(function()
    srv = H.nginx([[
      location /contract { content_by_lua_block {
        local store = assert(require("spapi.store.ngx").new("spapi_t"))
        local r = {}
        -- values, with and without expiry
        r.set = store:set("k", "v1")
        r.get = store:get("k")
        store:set("short", "s", 0.1)
        r.short_before = store:get("short")
        ngx.sleep(0.25)
        r.short_after = store:get("short") or "expired"
        store:delete("k")
        r.deleted = store:get("k") or "gone"
        r.missing = store:get("never") or "none"
        -- a bucket: rate 2/s, burst 3, at times the caller gives
        local t = 1000
        r.takes = {}
        for i = 1, 5 do r.takes[i] = store:take("b1", 2, 3, t) end -- 0,0,0, then 0.5 and 1.0 in debt
        local none, needed = store:take("b1", 2, 3, t, 1)   -- would wait 1.5 > max_wait 1
        r.refused, r.needed = none == nil, needed
        r.after_refill = store:take("b1", 2, 3, t + 2)       -- 2 s refill 4 tokens: debt -2 → 2 left
        r.back_in_time = store:take("b1", 2, 3, t + 1)       -- an earlier clock refills nothing: 1 left
        r.other_bucket = store:take("b2", 2, 3, t)
        -- rates
        r.no_rate = store:get_rate("op") or "none"
        store:set_rate("op", 10, 5)
        r.rate, r.burst = store:get_rate("op")
        -- locks
        r.lock1 = store:lock("L", 30)
        r.lock2 = store:lock("L", 30)
        store:unlock("L")
        r.lock3 = store:lock("L", 30)
        store:unlock("L")
        r.exp1 = store:lock("E", 0.1)
        ngx.sleep(0.25)
        r.exp2 = store:lock("E", 30)
        r.tostring = tostring(store)
        -- through a client
        local sp, err = require("spapi").client{ env = false, client_id = "amzn1.application-oa2-client.t",
          client_secret = "s", refresh_token = "Atzr|t", shared_dict = "spapi_t" }
        r.client_store = sp and tostring(sp.store) or tostring(err)
        local none2, err2 = require("spapi").client{ env = false, client_id = "amzn1.application-oa2-client.t",
          client_secret = "s", refresh_token = "Atzr|t", shared_dict = "nope" }
        r.missing_dict = none2 == nil and err2 or "made"
        local none3, err3 = require("spapi").client{ env = false, client_id = "amzn1.application-oa2-client.t",
          client_secret = "s", refresh_token = "Atzr|t", shared_dict = "spapi_t", store = {} }
        r.both = none3 == nil and err3 or "made"
        ngx.say(require("spapi.json").encode(r))
      } }
    ]], "lua_shared_dict spapi_t 1m;")
  end)

  it("keeps values with expiry, buckets, rates and locks in the shared dict", function()
    local r = get(srv.url .. "/contract")
    assert.is_true(r.set)
    assert.equal("v1", r.get)
    assert.equal("s", r.short_before)
    assert.equal("expired", r.short_after)
    assert.equal("gone", r.deleted)
    assert.equal("none", r.missing)
    assert.same({ 0, 0, 0, 0.5, 1 }, r.takes)
    assert.is_true(r.refused)
    assert.near(1.5, r.needed, 1e-9)
    assert.equal(0, r.after_refill)
    assert.equal(0, r.back_in_time)
    assert.equal(0, r.other_bucket)
    assert.equal("none", r.no_rate)
    assert.equal(10, r.rate)
    assert.equal(5, r.burst)
    assert.is_true(r.lock1)
    assert.is_false(r.lock2)
    assert.is_true(r.lock3)
    assert.is_true(r.exp1)
    assert.is_true(r.exp2)
    assert.equal("spapi.store.ngx(spapi_t)", r.tostring)
    assert.equal("spapi.store.ngx(spapi_t)", r.client_store)
  end)

  it("names the lua_shared_dict directive to add when the dict is missing", function()
    local r = get(srv.url .. "/contract")
    assert.matches('shared_dict = "nope"', r.missing_dict, 1, true)
    assert.matches("add `lua_shared_dict nope 1m;` to the http {} block of nginx.conf", r.missing_dict, 1, true)
    assert.equal("spapi.client: give store or shared_dict, not both", r.both)
  end)

  it("is refused outside nginx, saying it needs OpenResty", function()
    local sp, err = spapi.client{ env = false, client_id = "amzn1.application-oa2-client.t", client_secret = "s",
      refresh_token = "Atzr|t", shared_dict = "spapi" }
    assert.is_nil(sp)
    assert.matches('shared_dict = "spapi" needs OpenResty/nginx', err, 1, true)
    local _, err2 = spapi.client{ env = false, client_id = "amzn1.application-oa2-client.t", client_secret = "s",
      shared_dict = 42 }
    assert.matches("shared_dict must be the name of a lua_shared_dict (got 42)", err2, 1, true)
  end)
end)
