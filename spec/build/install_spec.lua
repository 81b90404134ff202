-- `make install` and `luarocks make` produce the standard layout, and the installed
-- module loads from there (outside the source tree) under Lua 5.4 and LuaJIT.
local H = require "helpers"

local sh = H.run

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local LOAD = [[local s = require 'spapi'; local c = require 'spapi.core';
  assert(c.sha256 and s.client and s.VERSION); local sp = assert(s.client{ env = false, client_id = 'x', client_secret = 'y', refresh_token = 'z' });
  assert(sp:operation('vendor_df_orders.getOrders').rate == 10); print('loaded ' .. s.VERSION)]]

describe("installation", function()
  it("installs the Lua 5.4 layout with make install and loads from it", function()
    local prefix = H.tmpdir("install54")
    local rc, out = sh(string.format("cd %q && make --no-print-directory install PREFIX=%q", H.root, prefix))
    assert.equal(0, rc, out)
    assert.is_true(exists(prefix .. "/lib/lua/5.4/spapi/core.so"))
    assert.is_true(exists(prefix .. "/share/lua/5.4/spapi/init.lua"))
    assert.is_true(exists(prefix .. "/share/lua/5.4/spapi/operations/vendor_df_orders.lua"))
    assert.is_true(exists(prefix .. "/bin/spapi"))
    rc, out = sh(string.format("cd /tmp && LUA_PATH='%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua;;' LUA_CPATH='%s/lib/lua/5.4/?.so;;' lua5.4 -e %q",
      prefix, prefix, prefix, LOAD))
    assert.equal(0, rc, out)
    assert.matches("loaded", out)
  end)

  it("installs the LuaJIT layout with LUA_VERSION=5.1 and loads from it", function()
    local prefix = H.tmpdir("installjit")
    local rc, out = sh(string.format("cd %q && make --no-print-directory install PREFIX=%q LUA_VERSION=5.1 LUA_INCDIR=/usr/include/luajit-2.1",
      H.root, prefix))
    assert.equal(0, rc, out)
    assert.is_true(exists(prefix .. "/lib/lua/5.1/spapi/core.so"))
    assert.is_true(exists(prefix .. "/share/lua/5.1/spapi/client.lua"))
    rc, out = sh(string.format("cd /tmp && LUA_PATH='%s/share/lua/5.1/?.lua;%s/share/lua/5.1/?/init.lua;;' LUA_CPATH='%s/lib/lua/5.1/?.so;;' luajit -e %q",
      prefix, prefix, prefix, LOAD))
    assert.equal(0, rc, out)
    assert.matches("loaded", out)
  end)

  it("builds and installs with luarocks make", function()
    local tree = H.tmpdir("rocks")
    local rc, out = sh(string.format("cd %q && luarocks --lua-version 5.4 --tree %q make --deps-mode=none spapi-scm-1.rockspec",
      H.root, tree))
    assert.equal(0, rc, out)
    assert.is_true(exists(tree .. "/lib/lua/5.4/spapi/core.so"))
    rc, out = sh(string.format("cd /tmp && LUA_PATH='%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua;;' LUA_CPATH='%s/lib/lua/5.4/?.so;;' lua5.4 -e %q",
      tree, tree, tree, LOAD))
    assert.equal(0, rc, out)
    assert.matches("loaded", out)
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
end)
