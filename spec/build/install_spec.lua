-- `make install` and `luarocks make` give a working module and a working `spapi`
-- command, sandbox included, outside the source tree, for Lua 5.4 and LuaJIT; plain
-- PUC Lua 5.1 is refused with a clear message.
local H = require "helpers"

local sh = H.run

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

-- the caller's Lua paths (scripts/test.sh points LUA_CPATH at build/) must not help
local CLEAN = "cd /tmp && unset LUA_PATH LUA_CPATH LUA_PATH_5_4 LUA_CPATH_5_4 SPAPI_ROOT && "

local LOAD = [[local s = require 'spapi'; local c = require 'spapi.core';
  assert(c.sha256 and s.client and s.VERSION); local sp = assert(s.client{ env = false, client_id = 'x', client_secret = 'y', refresh_token = 'z' });
  assert(sp:operation('vendor_df_orders.getOrders').rate == 10); print('loaded ' .. s.VERSION)]]

-- `spapi ops`, then `spapi sandbox start`, `status` and `stop` with the command at bin,
-- after `setup` (shell commands setting the environment, as a user's shell would have it)
local function check_command(bin, setup, tag)
  local rc, out = sh(CLEAN .. setup .. bin .. " ops")
  assert.equal(0, rc, out)
  assert.matches("vendor_df_orders%.getOrders%s+GET%s+/vendor/directFulfillment/orders/2021%-12%-28/purchaseOrders", out)
  local dir = H.tmpdir("sandbox-" .. tag)
  rc, out = sh(CLEAN .. setup .. bin .. " sandbox start --port 0 --dir " .. dir)
  assert.equal(0, rc, out)
  local endpoint = out:match("endpoint=(http://127%.0%.0%.1:%d+)")
  assert.truthy(endpoint, out)
  -- the sandbox answers: an LWA token for any well-formed credentials
  local status, _, body = require("spapi.core").session{ timeout = 10 }:request{ method = "POST",
    url = endpoint .. "/auth/o2/token", headers = { ["Content-Type"] = "application/x-www-form-urlencoded" },
    body = "grant_type=refresh_token&refresh_token=Atzr%7Cx&client_id=amzn1.application-oa2-client.x&client_secret=y" }
  rc, out = sh(CLEAN .. setup .. bin .. " sandbox status --dir " .. dir)
  local _, stop_out = sh(CLEAN .. setup .. bin .. " sandbox stop --dir " .. dir)
  assert.equal(200, status, tostring(body))
  assert.matches('"access_token"', body)
  assert.equal(0, rc, out)
  assert.matches("stopped", stop_out)
  rc, out = sh(CLEAN .. setup .. bin .. " sandbox status --dir " .. dir)
  assert.are_not.equal(0, rc, out)
end

describe("make install", function()
  it("installs the Lua 5.4 layout, which loads and whose spapi command runs the sandbox", function()
    local prefix = H.tmpdir("install54")
    local rc, out = sh(string.format("cd %q && make --no-print-directory install PREFIX=%q", H.root, prefix))
    assert.equal(0, rc, out)
    assert.is_true(exists(prefix .. "/lib/lua/5.4/spapi/core.so"))
    assert.is_true(exists(prefix .. "/share/lua/5.4/spapi/init.lua"))
    assert.is_true(exists(prefix .. "/share/lua/5.4/spapi/operations/vendor_df_orders.lua"))
    assert.is_true(exists(prefix .. "/share/lua/5.4/spapi/sandbox.lua"))
    assert.is_true(exists(prefix .. "/share/lua/5.4/spapi/sandbox/init.lua"))
    rc, out = sh(string.format(CLEAN .. "LUA_PATH='%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua;;' LUA_CPATH='%s/lib/lua/5.4/?.so;;' lua5.4 -e %q",
      prefix, prefix, prefix, LOAD))
    assert.equal(0, rc, out)
    assert.matches("loaded", out)
    check_command(prefix .. "/bin/spapi", "", "make54")
  end)

  it("installs the LuaJIT layout with LUA_VERSION=5.1, which loads and whose spapi command runs the sandbox", function()
    local prefix = H.tmpdir("installjit")
    local rc, out = sh(string.format("cd %q && make --no-print-directory install PREFIX=%q LUA_VERSION=5.1 LUA_INCDIR=/usr/include/luajit-2.1",
      H.root, prefix))
    assert.equal(0, rc, out)
    assert.is_true(exists(prefix .. "/lib/lua/5.1/spapi/core.so"))
    assert.is_true(exists(prefix .. "/share/lua/5.1/spapi/client.lua"))
    rc, out = sh(string.format(CLEAN .. "LUA_PATH='%s/share/lua/5.1/?.lua;%s/share/lua/5.1/?/init.lua;;' LUA_CPATH='%s/lib/lua/5.1/?.so;;' luajit -e %q",
      prefix, prefix, prefix, LOAD))
    assert.equal(0, rc, out)
    assert.matches("loaded", out)
    assert.matches("luajit", select(2, sh("head -1 " .. prefix .. "/bin/spapi")))
    check_command(prefix .. "/bin/spapi", "", "makejit")
  end)
end)

describe("luarocks make", function()
  -- Debian's luarocks defaults to Lua 5.1; --lua-version 5.4 or a config naming LuaJIT
  -- picks the Lua (as the README says). --deps-mode=none: lua-cjson is Debian's package.
  local function rocks(tree, flags, env)
    return sh(string.format("cd %q && %sluarocks %s --tree %q make --deps-mode=none spapi-scm-1.rockspec",
      H.root, env or "", flags, tree))
  end

  it("builds for Lua 5.4: the module loads and the spapi command runs the sandbox", function()
    local tree = H.tmpdir("rocks54")
    local rc, out = rocks(tree, "--lua-version 5.4")
    assert.equal(0, rc, out)
    assert.is_true(exists(tree .. "/lib/lua/5.4/spapi/core.so"))
    -- the launcher and the code running inside nginx are two modules, both installed
    assert.is_true(exists(tree .. "/share/lua/5.4/spapi/sandbox.lua"))
    assert.is_true(exists(tree .. "/share/lua/5.4/spapi/sandbox/init.lua"))
    -- as a user would: `luarocks path` exports 5.4 paths (its cjson.so cannot load in
    -- nginx's LuaJIT: the sandbox's nginx must not inherit them)
    local path = string.format('eval "$(luarocks --lua-version 5.4 --tree %q path)" && ', tree)
    rc, out = sh(CLEAN .. path .. "lua5.4 -e " .. string.format("%q", LOAD))
    assert.equal(0, rc, out)
    assert.matches("loaded", out)
    check_command(tree .. "/bin/spapi", path, "rocks54")
  end)

  it("builds for LuaJIT: the module loads and the spapi command runs the sandbox", function()
    local tree = H.tmpdir("rocksjit")
    local conf = tree .. "/luajit-config.lua"
    assert(H.run(string.format([[printf '%%s\n' 'lua_interpreter = "luajit"' 'variables = { LUA_INCDIR = "/usr/include/luajit-2.1" }' > %q]], conf)) == 0)
    local env = string.format("LUAROCKS_CONFIG=%q ", conf)
    local rc, out = rocks(tree, "--lua-version 5.1", env)
    assert.equal(0, rc, out)
    assert.is_true(exists(tree .. "/lib/lua/5.1/spapi/core.so"))
    assert.matches("luajit", select(2, sh("cat " .. tree .. "/bin/spapi")))
    local path = string.format('eval "$(%sluarocks --lua-version 5.1 --tree %q path)" && ', env, tree)
    rc, out = sh(CLEAN .. path .. "luajit -e " .. string.format("%q", LOAD))
    assert.equal(0, rc, out)
    assert.matches("loaded", out)
    check_command(tree .. "/bin/spapi", path, "rocksjit")
  end)

  it("refuses plain PUC Lua 5.1 (Debian's default) with a message saying what to use", function()
    local tree = H.tmpdir("rocks51")
    local rc, out = rocks(tree, "--lua-version 5.1")
    assert.are_not.equal(0, rc, out)
    assert.matches("spapi needs Lua 5.4 or LuaJIT, not PUC Lua 5.1", out, 1, true)
    assert.is_false(exists(tree .. "/bin/spapi"))
  end)
end)

describe("rockspec", function()
  it("lists every module of the tree (regenerate with make rockspec)", function()
    local p = assert(io.popen("cd '" .. H.root .. "' && lua5.4 tools/gen_rockspec.lua"))
    local fresh = p:read("*a")
    p:close()
    local f = assert(io.open(H.root .. "/spapi-scm-1.rockspec"))
    local committed = f:read("*a")
    f:close()
    assert.equal(fresh, committed)
  end)

  it("maps each module name once", function()
    local seen, count = {}, 0
    for name in io.lines(H.root .. "/spapi-scm-1.rockspec") do
      local mod = name:match('^%s*%["([%w%._]+)"%]')
      if mod then
        assert.is_nil(seen[mod], mod .. " is mapped twice")
        seen[mod] = true
        count = count + 1
      end
    end
    assert.is_true(count > 50)
    assert.is_true(seen["spapi.sandbox"] and seen["spapi.sandbox.init"])
  end)
end)
