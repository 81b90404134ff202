-- Settings parse strictly: a boolean is true/false, yes/no, on/off or 1/0 (any
-- case), anything else is an error naming the key; verify = false warns once;
-- credentials go over plain http only to this machine unless allow_insecure = true.
local config = require "spapi.config"
local spapi = require "spapi"
local H = require "helpers"

local function env(t) return function(k) return t[k] end end

local function profile(text)
  local dir = H.tmpdir("strict")
  local f = assert(io.open(dir .. "/profiles", "w"))
  f:write("[default]\nclient_id = id\nclient_secret = secret\n", text, "\n")
  f:close()
  return env{ SPAPI_CONFIG_FILE = dir .. "/profiles" }, dir .. "/profiles"
end

describe("config: strict values", function()
  it("reads profile booleans in any case and refuses anything else, naming the key", function()
    for text, want in pairs({ ["verify = True"] = true, ["verify = OFF"] = false, ["verify = no"] = false,
      ["verify = Yes"] = true, ["verify = 1"] = true, ["verify = 0"] = false, ["verify = FALSE"] = false }) do
      local c = assert(config.resolve({}, (profile(text))))
      assert.equal(want, c.verify, text)
    end
    local e, path = profile("verify = treu")
    local none, err = config.resolve({}, e)
    assert.is_nil(none)
    assert.matches("'verify' must be true/false, yes/no, on/off or 1/0 (got 'treu')", err, 1, true)
    assert.matches(path, err, 1, true)
    none, err = config.resolve({}, (profile("sandbox = maybe")))
    assert.is_nil(none)
    assert.matches("'sandbox'", err, 1, true)
    none, err = config.resolve({}, (profile("timeout = soon")))
    assert.is_nil(none)
    assert.matches("'timeout' must be a number (got 'soon')", err, 1, true)
  end)

  it("takes the same words in a config table", function()
    assert.is_true(assert(config.resolve({ sandbox = "On" }, env{})).sandbox)
    assert.is_false(config.boolean("verify", "OFF")) -- (resolving verify = false would warn here)
    assert.is_true(config.boolean("verify", 1))
    local none, err = spapi.client{ env = false, client_id = "c", client_secret = "s", verify = "nah" }
    assert.is_nil(none)
    assert.matches("'verify' must be", err, 1, true)
    none, err = spapi.client{ env = false, client_id = "c", client_secret = "s", sandbox = {} }
    assert.is_nil(none)
    assert.matches("'sandbox' must be", err, 1, true)
  end)

  it("warns once per process when TLS verification is off", function()
    local script = "local spapi = require 'spapi'; for _ = 1, 3 do "
      .. "assert(spapi.client{ env = false, client_id = 'c', client_secret = 's', verify = 'off' }) end "
      .. "assert(spapi.client{ env = false, client_id = 'c', client_secret = 's' }); io.stdout:write('done')"
    local lua = (_VERSION == "Lua 5.1") and "luajit" or "lua5.4"
    local cpath = (_VERSION == "Lua 5.1") and "build/5.1/?.so" or "build/5.4/?.so"
    local rc, out = H.run(string.format("cd %q && LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='%s;;' %s -e %q",
      H.root, cpath, lua, script))
    assert.equal(0, rc, out)
    local n = 0
    for _ in out:gmatch("verify = false") do n = n + 1 end
    assert.equal(1, n, out)
    assert.matches("done", out, 1, true)
  end)

  it("sends credentials over plain http only to this machine, unless allow_insecure", function()
    local base = { env = false, client_id = "c", client_secret = "s" }
    local function with(t)
      local c = {}
      for k, v in pairs(base) do c[k] = v end
      for k, v in pairs(t) do c[k] = v end
      return c
    end
    local none, err = spapi.client(with{ endpoint = "http://sp.example.com" })
    assert.is_nil(none)
    assert.matches("endpoint is plain http to a host that is not this machine (sp.example.com)", err, 1, true)
    assert.matches("allow_insecure = true", err, 1, true)
    none, err = spapi.client(with{ lwa_endpoint = "http://user@lwa.example.com:8080/auth/o2/token" })
    assert.is_nil(none)
    assert.matches("lwa_endpoint is plain http to a host that is not this machine (lwa.example.com:8080)", err, 1, true)
    for _, u in ipairs({ "http://127.0.0.1:1", "http://localhost:8787", "http://[::1]:8787", "http://127.9.9.9",
      "https://sp.example.com" }) do
      assert(spapi.client(with{ endpoint = u, lwa_endpoint = u .. "/auth/o2/token" }))
    end
    assert(spapi.client(with{ endpoint = "http://sp.example.com", allow_insecure = true }))
    assert(config.resolve({ endpoint = "http://sp.example.com" }, (profile("allow_insecure = yes"))))
  end)

  it("fetches a document over plain http from another machine only with allow_insecure", function()
    local events = {}
    local sp = assert(spapi.client{ env = false, client_id = "c", client_secret = "s", max_retries = 0,
      debug = function(ev) events[#events + 1] = ev end })
    local body, err = sp:download_document{ url = "http://docs.example.com/doc.txt?X-Amz-Signature=abc" }
    assert.is_nil(body)
    assert.equal("InsecureURL", err.code)
    assert.matches("docs.example.com", err.message, 1, true)
    assert.is_nil(err.message:find("X-Amz", 1, true))
    assert.equal(0, #events) -- nothing was sent
  end)
end)
