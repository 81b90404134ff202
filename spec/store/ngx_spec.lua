-- The lua_shared_dict store (spapi.store.ngx) keeps the store contract of
-- docs/extending.md, run inside a real nginx (the store needs ngx.shared);
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
        local c = { t = 1000 }
        function c.now() return c.t end
        local store = assert(require("spapi.store.ngx").new{ dict = "spapi_t", clock = c })
        local r = {}
        local function pair(a, b) return { a, b } end
        -- values, with and without expiry (the dict's own clock)
        r.set = store:set("k", "v1")
        r.get = store:get("k")
        store:set("short", "s", 0.1)
        r.short_before = store:get("short")
        ngx.sleep(0.25)
        r.short_after = store:get("short") or "expired"
        r.delete = store:delete("k")
        r.deleted = store:get("k") or "gone"
        r.missing = store:get("never") or "none"
        -- a bucket: rate 2/s, burst 3, on the injected clock
        r.takes = {}
        for i = 1, 5 do r.takes[i] = pair(store:take("b1", 2, 3, 10)) end -- 3 now, then 0.5 and 1.0 in debt
        r.refused = pair(store:take("b1", 2, 3, 1))    -- would wait 1.5 > max_wait 1: nothing taken
        c.t = 1002
        r.after_refill = pair(store:take("b1", 2, 3, 0)) -- 2 s refill 4 tokens: debt -2 → 2 left, take 1
        c.t = 1001
        r.back_in_time = pair(store:take("b1", 2, 3, 0)) -- an earlier clock refills nothing: take the last
        r.empty = pair(store:take("b1", 2, 3, 0))
        r.other_bucket = pair(store:take("b2", 2, 3, 0))
        -- locks
        r.lock1 = store:lock("L", 30)
        r.lock2 = store:lock("L", 30)
        r.unlock = store:unlock("L")
        r.lock3 = store:lock("L", 30)
        store:unlock("L")
        r.exp1 = store:lock("E", 0.1)
        ngx.sleep(0.25)
        r.exp2 = store:lock("E", 30)
        -- the default clock: the host's
        local host = assert(require("spapi.store.ngx").new("spapi_t"))
        r.host_take = pair(host:take("h", 1, 1, 0))
        r.host_second = pair(host:take("h", 1, 1, 5))
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
    assert.is_true(r.delete)
    assert.same({ { true, 0 }, { true, 0 }, { true, 0 }, { true, 0.5 }, { true, 1 } }, r.takes)
    assert.same({ false, 1.5 }, r.refused)
    assert.same({ true, 0 }, r.after_refill)
    assert.same({ true, 0 }, r.back_in_time)
    assert.same({ false, 0.5 }, r.empty)
    assert.same({ true, 0 }, r.other_bucket)
    assert.is_true(r.unlock)
    assert.same({ true, 0 }, r.host_take)
    assert.is_true(r.host_second[1])
    assert.is_true(r.host_second[2] > 0.9 and r.host_second[2] <= 1, tostring(r.host_second[2]))
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
