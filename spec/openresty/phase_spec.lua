-- A call from an nginx phase without cosockets (init, init_worker, set, the
-- header and body filters, log) is a clear error naming the phase — not a
-- request that blocks the worker — while the same call from content, or from a
-- timer that init_worker starts, succeeds.
local H = require "helpers"
local core = require "spapi.core"
local json = require "spapi.json"

describe("spapi in nginx phases without cosockets", function()
  local rec
  setup(function()
    local sb = H.sandbox{ reset = true }
    local ep = string.format("%q", sb.endpoint)
    local srv = H.nginx(([[
      location = /set {
        set_by_lua_block $r { return require("ngx_calls").in_phase("set", EP) }
        return 200 $r;
      }
      location = /filters {
        content_by_lua_block { require("ngx_calls").in_phase("content", EP) ngx.say("ok") }
        header_filter_by_lua_block { require("ngx_calls").in_phase("header_filter", EP) }
        body_filter_by_lua_block { require("ngx_calls").in_phase("body_filter", EP) }
        log_by_lua_block { require("ngx_calls").in_phase("log", EP) }
      }
      location = /phases { content_by_lua_block { require("ngx_calls").phases() } }
    ]]):gsub("EP", ep), ([[
      lua_shared_dict phases 1m;
      init_by_lua_block { require("ngx_calls").in_phase("init", EP) }
      init_worker_by_lua_block {
        require("ngx_calls").in_phase("init_worker", EP)
        ngx.timer.at(0, function() require("ngx_calls").in_phase("timer", EP) end)
      }
    ]]):gsub("EP", ep), { workers = 2 })
    local s = core.session{ timeout = 30 }
    assert.equal(200, (s:request{ method = "GET", url = srv.url .. "/set" }))
    assert.equal(200, (s:request{ method = "GET", url = srv.url .. "/filters" }))
    -- the log phase runs after the answer: asked until it is there
    for _ = 1, 100 do
      local status, _, body = s:request{ method = "GET", url = srv.url .. "/phases" }
      assert.equal(200, status)
      rec = json.decode(body)
      if rec.log and rec.timer then break end
      core.sleep(0.02)
    end
  end)

  for _, phase in ipairs{ "init", "init_worker", "set", "header_filter", "body_filter", "log" } do
    it("raises a clear error in the " .. phase .. " phase", function()
      local r = assert(rec[phase], "no call recorded in " .. phase)
      assert.equal("ngx", r.transport)
      assert.is_true(r.raised)
      -- (the call's first request is its LWA token's)
      local says = "spapi: nginx's '" .. phase .. "' phase has no cosockets, so the ngx transport cannot send "
        .. "the LWA token request from it"
      assert.equal(says, r.message:sub(1, #says))
      assert.matches("content_by_lua", r.message, 1, true)
      assert.matches("ngx.timer.at", r.message, 1, true)
    end)
  end

  it("calls from the content phase, and from a timer started in init_worker", function()
    for _, phase in ipairs{ "content", "timer" } do
      assert.is_false(rec[phase].raised, rec[phase].message)
      assert.is_true(rec[phase].ok, rec[phase].message)
      assert.equal("ngx", rec[phase].transport)
    end
  end)
end)
