-- The lua_shared_dict store (spapi.store.ngx) in a real nginx with 2 workers:
-- the store contract of docs/extending.md (spec/store/contract.lua's cases, each
-- store call made inside nginx), what is its own (its clock, a client choosing it
-- with shared_dict, the errors), and across the workers: a take is atomic (no two
-- workers spend the same token or reserve the same slot) and a lock is held by
-- one worker at a time (each worker's timer starts when /go is posted).
local H = require "helpers"
local json = require "spapi.json"
local core = require "spapi.core"
local spapi = require "spapi"

local http = core.session{ timeout = 20 }
local function get(url)
  local status, _, body = http:request{ method = "GET", url = url }
  assert.equal(200, status, body)
  return assert(json.decode(body), body)
end

local srv
setup(function()
    srv = H.nginx([[
      location = /store { content_by_lua_block {
        -- one call of a store method: { m, n, args } → { n, r } (JSON nulls for nils)
        local json = require("spapi.json")
        local store = assert(require("spapi.store.ngx").new("spapi_t"))
        ngx.req.read_body()
        local q = json.decode(ngx.req.get_body_data())
        local args = {}
        for i = 1, q.n do if q.args[i] ~= json.null then args[i] = q.args[i] end end
        local function pack(...) return select("#", ...), { ... } end
        local n, r = pack(store[q.m](store, unpack(args, 1, q.n)))
        for i = 1, n do if r[i] == nil then r[i] = json.null end end
        ngx.say(json.encode{ n = n, r = r })
      } }
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

      location = /go { content_by_lua_block { ngx.shared.ctl:set("go", true) ngx.say("{}") } }
      location = /result { content_by_lua_block {
        local ctl, out = ngx.shared.ctl, { ready = 0, results = {} }
        for w = 0, ngx.worker.count() - 1 do
          if ctl:get("ready:" .. w) then out.ready = out.ready + 1 end
          local s = ctl:get("result:" .. w)
          if s then out.results[#out.results + 1] = require("spapi.json").decode(s) end
        end
        ngx.say(require("spapi.json").encode(out))
      } }
    ]], [[
      lua_shared_dict spapi_s 1m;
      lua_shared_dict spapi_t 1m;
      lua_shared_dict ctl 1m;
      init_worker_by_lua_block {
        ngx.timer.at(0, function()
          local ctl = ngx.shared.ctl
          local store = assert(require("spapi.store.ngx").new("spapi_s"))
          ctl:set("ready:" .. ngx.worker.id(), true)
          while not ctl:get("go") do ngx.sleep(0.002) end
          local r = { waits = {}, overlaps = 0, held = 0 }
          -- 500 takes each from one bucket of 600 tokens that hardly refills:
          -- a reservation's wait names its slot
          for i = 1, 500 do
            local ok, wait = store:take("shared", 1e-6, 600, math.huge)
            r.waits[i] = ok and wait or -1
            if i % 50 == 0 then ngx.sleep(0) end -- let the other worker interleave
          end
          -- a lock: while one worker holds it, the other never does
          for _ = 1, 100 do
            if store:lock("L", 5) then
              r.held = r.held + 1
              if ctl:incr("inside", 1, 0) ~= 1 then r.overlaps = r.overlaps + 1 end
              ngx.sleep(0.001)
              ctl:incr("inside", -1)
              store:unlock("L")
            end
            ngx.sleep(0.001)
          end
          ctl:set("result:" .. ngx.worker.id(), require("spapi.json").encode(r))
        end)
      }
    ]], { workers = 2 })
    for _ = 1, 200 do
      if get(srv.url .. "/result").ready == 2 then return end
      core.sleep(0.05)
    end
    error("the nginx workers did not start")
end)

-- a store whose every call runs inside the nginx
local function remote_store()
  local http_ = core.session{ timeout = 20 }
  local s = {}
  for _, m in ipairs({ "get", "set", "delete", "take", "lock", "unlock" }) do
    s[m] = function(_, ...)
      local n, args = select("#", ...), { ... }
      for i = 1, n do if args[i] == nil then args[i] = json.null end end
      local status, _, raw = http_:request{ method = "POST", url = srv.url .. "/store",
        body = json.encode{ m = m, n = n, args = args } }
      assert(status == 200, raw)
      local out = json.decode(raw)
      local r = {}
      for i = 1, out.n do if out.r[i] ~= json.null then r[i] = out.r[i] end end
      return (table.unpack or unpack)(r, 1, out.n)
    end
  end
  return s
end

describe("spapi.store.ngx (the store contract)", function()
  for _, case in ipairs(require "store.contract") do
    it(case.name, function() case.run(remote_store(), core.sleep) end)
  end
end)

describe("spapi.store.ngx", function()
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

describe("the shared-dict store across 2 nginx workers", function()
  it("spends each token once and reserves each slot once; the lock is exclusive", function()
    get(srv.url .. "/go")
    local out
    for _ = 1, 400 do
      out = get(srv.url .. "/result")
      if #out.results == 2 then break end
      core.sleep(0.05)
    end
    assert.equal(2, #out.results)
    local now_, slots, seen = 0, {}, {}
    for _, r in ipairs(out.results) do
      for _, w in ipairs(r.waits) do
        assert.is_true(w >= 0)
        if w == 0 then now_ = now_ + 1 else slots[#slots + 1] = w end
      end
      assert.equal(0, r.overlaps)
      assert.is_true(r.held > 0)
    end
    assert.equal(600, now_) -- exactly the burst went at once
    assert.equal(400, #slots)
    table.sort(slots)
    for i, w in ipairs(slots) do
      -- the i-th reservation in debt waits i / rate (to the clock's resolution)
      local slot = math.floor(w * 1e-6 + 0.5)
      assert.is_nil(seen[slot], "two takes reserved slot " .. slot)
      seen[slot] = true
      assert.equal(i, slot)
    end
  end)
end)
