-- The C core's surface: what Lua sees of spapi.core, and what the shared object
-- exports (only luaopen_spapi_core; every other symbol is static or hidden).
local core = require "spapi.core"

local function sorted_keys(t, want_type)
  local out = {}
  for k, v in pairs(t) do
    if not want_type or type(v) == want_type then out[#out + 1] = k end
  end
  table.sort(out)
  return out
end

describe("spapi.core", function()
  it("offers the documented functions", function()
    assert.same({
      "aes256cbc_decrypt", "aes256cbc_encrypt", "b64decode", "b64encode", "clocks", "free_port", "fsync",
      "gunzip", "gzip", "header", "hex", "hmac_sha256", "isatty", "json_decoder", "json_flat", "lwa_form",
      "lwa_parse", "md5", "monotonic", "now", "parse_headers", "random_bytes", "redis_connect", "session", "sha256", "sigv4_canonical",
      "sigv4_sign", "sleep", "tcp_probe", "urldecode", "urlencode",
    }, sorted_keys(core, "function"))
    assert.is_string(core.curl_version)
    assert.is_string(core._VERSION)
  end)

  it("gives sessions and multis their methods and metamethods", function()
    local s = core.session{}
    local m = s:multi()
    local smt, mmt = getmetatable(s), getmetatable(m)
    assert.same({ "close", "multi", "request", "sender", "stats" }, sorted_keys(smt.__index))
    assert.same({ "add", "close", "count", "wait" }, sorted_keys(mmt.__index))
    for _, mt in ipairs({ smt, mmt }) do
      assert.is_function(mt.__gc)
      assert.is_function(mt.__close)
      assert.is_function(mt.__tostring)
    end
    assert.equal("spapi.Session", smt.__name)
    assert.equal("spapi.Multi", mmt.__name)
    m:close()
    s:close()
  end)

  it("exports luaopen_spapi_core and nothing else from the shared object", function()
    local so = assert(package.searchpath("spapi.core", package.cpath))
    local p = assert(io.popen("nm -D --defined-only '" .. so .. "' 2>&1"))
    local out = p:read("*a")
    p:close()
    local names = {}
    for name in out:gmatch("%x+ [TDBRV] ([%w_]+)") do names[#names + 1] = name end
    assert.same({ "luaopen_spapi_core" }, names)
  end)
end)
