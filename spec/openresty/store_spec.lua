-- The shared-dict store across the 2 workers of a real nginx: a take is atomic
-- (no two workers spend the same token or reserve the same slot) and a lock is
-- held by one worker at a time. Each worker's timer starts when /go is posted.
local H = require "helpers"
local json = require "spapi.json"
local core = require "spapi.core"

local http = core.session{ timeout = 20 }
local function get(url)
  local status, _, body = http:request{ method = "GET", url = url }
  assert.equal(200, status, body)
  return assert(json.decode(body), body)
end

describe("the shared-dict store across 2 nginx workers", function()
  local srv
  setup(function()
    srv = H.nginx([[
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
