-- spapi.core sessions and multis against a real nginx on loopback.
local core = require "spapi.core"
local H = require "helpers"
local cjson = require("cjson.safe").new()

local srv = H.nginx([[
  client_max_body_size 16m;
  client_body_buffer_size 16m;
  location /echo { content_by_lua_block {
    local cjson = require("cjson.safe").new()
    ngx.req.read_body()
    ngx.header["Content-Type"] = "application/json"
    ngx.say(cjson.encode({ method = ngx.req.get_method(), headers = ngx.req.get_headers(),
      body = ngx.req.get_body_data(), uri = ngx.var.request_uri }))
  } }
  location /digest { content_by_lua_block {
    ngx.req.read_body()
    local b = ngx.req.get_body_data() or ""
    ngx.say(#b, " ", ngx.md5(b))
  } }
  location ~ ^/status/(\d+)$ { content_by_lua_block {
    ngx.status = tonumber(ngx.var[1])
    if ngx.status == 429 then ngx.header["Retry-After"] = "2" end
    ngx.header["x-amzn-RequestId"] = "req-" .. ngx.var[1]
    ngx.say("status ", ngx.var[1])
  } }
  location /multi-header { content_by_lua_block {
    ngx.header["X-Multi"] = { "one", "two" }
    ngx.header["X-Spaced"] = "  padded  "
    ngx.say("ok")
  } }
  location /many-headers { content_by_lua_block {
    for i = 1, 80 do ngx.header["X-H-" .. i] = "v" .. i .. "-" .. (ngx.var.arg_r or "") end
    ngx.header[string.rep("X-Long-Name-", 5)] = "long"
    ngx.header[string.rep("X-Very-Long-", 25)] = "very long"
    ngx.header[ngx.var.arg_r == "2" and "X-CASE-Test" or "x-case-test"] = "c" .. (ngx.var.arg_r or "")
    ngx.say("ok")
  } }
  location /redirect { return 302 /echo?from=redirect; }
  location /picked { content_by_lua_block {
    ngx.header["X-Amzn-RequestId"] = "  rid-1 "
    ngx.header["x-amzn-ratelimit-limit"] = ngx.var.arg_twice and { "5", "6" } or nil
    ngx.header["X-Amzn-RequestId-Not"] = "other"
    ngx.say("ok")
  } }
  location /picked-redirect { add_header X-Amzn-RequestId rid-redirect; return 302 /echo; }
  location /json { content_by_lua_block {
    ngx.status = tonumber(ngx.var.arg_status) or 200
    ngx.print(ngx.var.arg_body and ngx.unescape_uri(ngx.var.arg_body) or '{"a":[1,{"b":null}],"e":[]}')
  } }
  location /slow { content_by_lua_block {
    ngx.sleep(tonumber(ngx.var.arg_s) or 3)
    ngx.say("slept ", ngx.var.arg_i or "")
  } }
  location /close { return 444; }
  location /gz {
    gzip on; gzip_types application/json; gzip_min_length 0;
    content_by_lua_block {
      ngx.header["Content-Type"] = "application/json"
      ngx.say(string.rep('{"compressible":true}', 200))
    }
  }
  location /big { content_by_lua_block { ngx.print(string.rep("0123456789abcdef", 131072)) } }
]])

local function session(opts) return core.session(opts) end
-- spec/support/finalizer_close.lua <mode> under this interpreter and core.so
local function finalizer_close_cmd(mode)
  return string.format("cd %q && LUA_PATH='lua/?.lua;;' LUA_CPATH=%q %s spec/support/finalizer_close.lua %s",
    H.root, package.cpath, rawget(_G, "jit") and "luajit" or "lua5.4", mode)
end
local function ngx_escape(v) return (v:gsub("[^%w]", function(c) return string.format("%%%02X", c:byte()) end)) end

describe("core.session", function()
  it("is a userdata with a safe __tostring", function()
    local s = session{ user_agent = "ua-test" }
    assert.equal("userdata", type(s))
    assert.matches("^spapi%.Session: 0?x?%x+", tostring(s))
    s:close()
  end)

  it("GETs and returns status, lowercase headers and body", function()
    local s = session()
    local status, headers, body = s:request{ url = srv.url .. "/echo?a=1&b=x%20y" }
    assert.equal(200, status)
    assert.equal(math.type and "integer" or "number", math.type and math.type(status) or type(status))
    assert.equal("application/json", headers["content-type"])
    local echo = assert(cjson.decode(body))
    assert.equal("GET", echo.method)
    assert.equal("/echo?a=1&b=x%20y", echo.uri)
    assert.matches("^spapi/", echo.headers["user-agent"])
    assert.is_nil(echo.headers["expect"])
    s:close()
  end)

  it("gives every response header table the session's headers_mt, in request and multi", function()
    local mt = { __index = function(t, k) return rawget(t, k:lower()) end }
    local s = session{ headers_mt = mt }
    local _, headers = s:request{ url = srv.url .. "/echo" }
    assert.equal(mt, getmetatable(headers))
    assert.equal("application/json", headers["Content-Type"])
    local m = s:multi()
    m:add{ url = srv.url .. "/echo" }
    local r = m:wait(10)[1]
    assert.equal(mt, getmetatable(r.headers))
    m:close()
    s:close()
    local _, plain = session():request{ url = srv.url .. "/echo" }
    assert.is_nil(getmetatable(plain))
    assert.has_error(function() session{ headers_mt = "ci" } end, "session: 'headers_mt' must be a table")
  end)

  it("returns the raw header block with header_block, which header() and parse_headers() read", function()
    local s = session{ header_block = true }
    local status, block = s:request{ url = srv.url .. "/multi-header" }
    assert.equal(200, status)
    assert.is_string(block)
    assert.matches("^HTTP/1%.1 200", block)
    assert.equal("one, two", core.header(block, "x-multi"))
    assert.equal("one, two", core.header(block, "X-MULTI"))
    assert.equal("padded", core.header(block, "x-spaced"))
    assert.is_nil(core.header(block, "x-absent"))
    local mt = { __index = function(t, k) return rawget(t, k:lower()) end }
    local t = core.parse_headers(block, mt)
    assert.equal(mt, getmetatable(t))
    assert.equal("one, two", t["X-Multi"])
    -- the same table a session without header_block gives
    local _, plain = session():request{ url = srv.url .. "/multi-header" }
    plain.date, t.date = nil, nil
    assert.same(plain, setmetatable(t, nil))
    local m = s:multi()
    m:add{ url = srv.url .. "/multi-header" }
    assert.equal("one, two", core.header(m:wait(10)[1].headers, "x-multi"))
    m:close()
    assert.is_nil(core.header("", "x"))
    assert.same({}, core.parse_headers("HTTP/1.1 204 No Content\r\n\r\n"))
    assert.is_nil(getmetatable(core.parse_headers(block)))
  end)

  it("picks named headers out of each response, after the body", function()
    local s = session{ header_block = true, pick = { "x-amzn-requestid", "X-AMZN-RATELIMIT-LIMIT" } }
    local status, block, body, rid, limit, extra = s:request{ url = srv.url .. "/picked" }
    assert.equal(200, status)
    assert.equal("ok\n", body)
    assert.equal("rid-1", rid)            -- any case, trimmed; X-Amzn-RequestId-Not is another header
    assert.is_false(limit)                -- absent
    assert.is_nil(extra)
    assert.equal("rid-1", core.header(block, "x-amzn-requestid"))
    -- a header sent twice is left to the caller (nil), who joins it from the headers
    local _, headers, _, rid2, limit2 = s:request{ url = srv.url .. "/picked?twice=1" }
    assert.equal("rid-1", rid2)
    assert.is_nil(limit2)
    assert.equal("5, 6", core.header(headers, "x-amzn-ratelimit-limit"))
    -- with a redirect followed, the final response's headers count
    local _, _, _, rid3 = s:request{ url = srv.url .. "/picked-redirect", follow = true }
    assert.is_false(rid3)
    local _, _, _, rid4 = s:request{ url = srv.url .. "/picked-redirect" }
    assert.equal("rid-redirect", rid4)
    -- a failure returns no picks
    assert.same({ n = 4 }, { n = select("#", s:request{ url = "http://127.0.0.1:1/" }) })
    assert.has_error(function() session{ pick = "x" } end, "session: 'pick' must be a list of header names")
    assert.has_error(function() session{ pick = { "a", "b", "c", "d", "e" } } end)
    assert.has_error(function() session{ pick = { "bad name" } } end)
    assert.has_error(function() session{ pick = { "x-a", "X-A" } } end, "session: 'pick' names 'X-A' twice")
  end)

  it("gives a send function for transport tables (its first argument ignored)", function()
    local s = session{ pick = { "x-amzn-requestid" } }
    local send = s:sender()
    local status, headers, body, rid = send({}, { url = srv.url .. "/picked" })
    assert.equal(200, status)
    assert.equal("ok\n", body)
    assert.equal("rid-1", rid)
    assert.equal("rid-1", headers["x-amzn-requestid"])
    s:close()
    assert.has_error(function() send({}, { url = srv.url .. "/picked" }) end, "request: the session is closed")
  end)

  it("decodes a 2xx JSON object or array body when the request asks (json = true)", function()
    local json = require "spapi.json"
    local s = session{ json = json.decode }
    local function get(q, want_json)
      local status, _, body = s:request{ url = srv.url .. "/json" .. (q or ""), json = want_json }
      return body, status
    end
    local body = get(nil, true)
    assert.same({ a = { 1, { b = json.null } }, e = {} }, body)
    assert.equal(json.array_mt, getmetatable(body.e)) -- [] stays an array
    assert.equal('{"a":[1,{"b":null}],"e":[]}', get(nil, false)) -- not asked: the text
    assert.same({ 1, 2 }, get("?body=" .. ngx_escape(" [1,2] "), true))
    -- anything else comes as the text, for the caller to handle
    assert.equal("42", get("?body=42", true))                     -- not an object or array
    assert.equal('{"a":', get("?body=" .. ngx_escape('{"a":'), true)) -- not JSON
    assert.equal('{"a":1} x', get("?body=" .. ngx_escape('{"a":1} x'), true))
    local text, status = get("?status=400&body=" .. ngx_escape('{"errors":[]}'), true)
    assert.equal(400, status)
    assert.equal('{"errors":[]}', text)
    assert.equal("", get("?status=200&body=", true))
    -- a session without a decoder returns the text
    local _, _, plain = session():request{ url = srv.url .. "/json", json = true }
    assert.equal('{"a":[1,{"b":null}],"e":[]}', plain)
    assert.has_error(function() session{ json = function() end } end,
      "session: 'json' must be a decoder made by core.json_decoder")
  end)

  -- Finalizers run by the GC steps of a decode in C can make requests on the
  -- session, or close it, mid-response (found in review: a close there left the
  -- share handle unfreed, which valgrind.sh reports as a leak).
  it("keeps decoded bodies intact when finalizers request or close the session mid-decode", function()
    local web = H.nginx([[
      location /big { content_by_lua_block {
        local t = {}
        for i = 1, 2000 do t[i] = '{"k' .. i .. '":"' .. string.rep("v", i % 40) .. '","n":' .. i .. '}' end
        ngx.header["X-Amzn-RequestId"] = "rid-" .. (ngx.var.arg_i or "")
        ngx.print("[" .. table.concat(t, ",") .. "]")
      } }
    ]])
    local s = core.session{ header_block = true, pick = { "x-amzn-requestid" }, json = require("spapi.json").decode }
    local send = s:sender()
    local nested, closed, bad = 0, false, nil
    local function on_gc(o)
      if closed then return end
      if o.close then closed = true; s:close(); return end
      local st, _, body, rid = send(nil, { url = web.url .. "/big?i=in", json = true })
      nested = nested + 1
      if not (st == 200 and type(body) == "table" and #body == 2000 and rid == "rid-in") then bad = "nested" end
    end
    local function arm(close)
      local o = { close = close }
      if newproxy then -- LuaJIT: tables have no __gc
        local p = newproxy(true)
        getmetatable(p).__gc = function() on_gc(o) end
        return
      end
      setmetatable(o, { __gc = on_gc })
    end
    local pause = collectgarbage("setpause", 0) -- a GC step on (nearly) every allocation
    local outer, armed_close = 0, false
    for i = 1, 40 do
      for _ = 1, 10 do arm(false) end
      -- the close is armed once a nested request has run (finalizers may run
      -- newest first, and the close would silence the rest), at round 30 at the latest
      if not armed_close and ((i >= 5 and nested > 0) or i == 30) then
        arm(true)
        armed_close = true
      end
      -- (the request is made first: its allocations may run the closing finalizer)
      local req = { url = web.url .. "/big?i=" .. i, json = true }
      local was_closed = closed
      local ok, st, _, body, rid = pcall(send, nil, req)
      if ok then
        outer = outer + 1
        if not (st == 200 and type(body) == "table" and #body == 2000 and body[2000].n == 2000) then bad = "outer body" end
        if rid ~= "rid-" .. i then bad = "outer request id" end
      elseif not (was_closed and tostring(st):find("the session is closed", 1, true)) then
        bad = tostring(st)
      end
      if was_closed then break end
    end
    collectgarbage("setpause", pause)
    collectgarbage()
    web.stop()
    assert.is_nil(bad)
    assert.is_true(nested > 0)
    assert.is_true(outer >= 4) -- the first four come before the close is armed
    assert.is_true(closed)
    assert.has_error(function() send(nil, { url = web.url .. "/big" }) end, "request: the session is closed")
  end)

  -- Lua code can run while a response is pushed (a __gc finalizer run by the
  -- GC step of lua_pushlstring) and make a request on the same session: the
  -- outer request's handle must stay its own (found in review: an earlier
  -- reclaim gave it to the inner request, then freed it twice).
  it("keeps a request's response intact when a finalizer makes a request on the same session mid-response", function()
    local web = H.nginx([[
      location /a { content_by_lua_block { ngx.header["X-Pad"] = string.rep("p", 4000) ngx.print(string.rep("A", 64)) } }
      location /b { content_by_lua_block { ngx.print(string.rep("B", 64)) } }
    ]])
    local script = H.tmpdir("reenter") .. "/reenter.lua"
    local f = assert(io.open(script, "w"))
    f:write([==[
local url = arg[1]
local core = require "spapi.core"
local s = core.session{ timeout = 5, header_block = true }
local request = s.request
local jit = rawget(_G, "jit")
local armed, ran = false, 0
local function fin()
  ran = ran + 1
  if armed then armed = false; request(s, { url = url .. "/b" }) end
end
local mt = { __gc = fin }
if not jit then collectgarbage("incremental", 200, 100, 10) end
local bad, want, req = 0, string.rep("A", 64), { url = url .. "/a" }
for _ = 1, 20 do
  collectgarbage()
  ran = 0
  for _ = 1, 5000 do
    if jit then local p = newproxy(true); getmetatable(p).__gc = fin else setmetatable({}, mt) end
  end
  -- leave the collector in its finalizer phase, with finalizers still pending
  collectgarbage("stop")
  repeat collectgarbage("step", 0) until ran > 0
  collectgarbage("restart")
  armed = true
  local _, _, body = request(s, req)
  armed = false
  if body ~= want then bad = bad + 1 end
end
collectgarbage()
for _ = 1, 5 do local st, _, b = request(s, req); if st ~= 200 or b ~= want then bad = bad + 1 end end
s:close()
io.write("bad ", bad)
]==])
    f:close()
    local lua = rawget(_G, "jit") and "luajit" or "lua5.4"
    local rc, out = H.run(string.format("cd %q && LUA_PATH='lua/?.lua;;' LUA_CPATH=%q %s %q %q", H.root,
      package.cpath, lua, script, web.url))
    assert.equal("bad 0", out)
    assert.equal(0, rc)
  end)

  it("goes through a proxy named in the environment, and straight to the host without one", function()
    -- the spec's nginx stands in for the proxy: it serves /echo whatever host the
    -- absolute request line names; the host itself does not resolve
    local lua = (rawget(_G, "jit") and "luajit" or "lua5.4")
    local script = [[
      local s = require("spapi.core").session{ connect_timeout = 2, timeout = 5 }
      local st, h, body = s:request{ url = "http://spapi-no-such-host.invalid/echo" }
      io.write(tostring(st), " ", st and body:match('"host":"([^"]*)"') or tostring(body))
    ]]
    local cmd = string.format("cd %q && LUA_PATH='lua/?.lua;;' LUA_CPATH=%q %%s %s -e %q", H.root,
      package.cpath, lua, script)
    local rc, out = H.run(string.format(cmd, "env http_proxy=" .. srv.url))
    assert.equal(0, rc, out)
    assert.equal("200 spapi-no-such-host.invalid", out)
    rc, out = H.run(string.format(cmd, "env -u http_proxy -u HTTPS_PROXY -u https_proxy -u ALL_PROXY -u all_proxy"))
    assert.equal(0, rc, out)
    assert.equal("nil resolve", out) -- (failure: nil, message, kind)
  end)

  it("sends headers given as a map or as a list, and bodies with any method", function()
    local s = session{ user_agent = "my-app/1.0 (Language=Lua)" }
    local _, _, body = s:request{ method = "POST", url = srv.url .. "/echo",
      headers = { ["Content-Type"] = "application/json", ["X-Amz-Access-Token"] = "Atza|t", ["X-Num"] = 5 },
      body = '{"a":1}' }
    local echo = cjson.decode(body)
    assert.equal("POST", echo.method)
    assert.equal('{"a":1}', echo.body)
    assert.equal("application/json", echo.headers["content-type"])
    assert.equal("Atza|t", echo.headers["x-amz-access-token"])
    assert.equal("5", echo.headers["x-num"])
    assert.equal("my-app/1.0 (Language=Lua)", echo.headers["user-agent"])
    for _, m in ipairs({ "PUT", "PATCH", "DELETE" }) do
      local st, _, b = s:request{ method = m, url = srv.url .. "/echo",
        headers = { { "X-Dup", "1" }, { "Content-Type", "text/plain" } }, body = m .. " body" }
      assert.equal(200, st)
      local e = cjson.decode(b)
      assert.equal(m, e.method)
      assert.equal(m .. " body", e.body)
      assert.equal("1", e.headers["x-dup"])
    end
    local st, _, b = s:request{ method = "DELETE", url = srv.url .. "/echo" }
    assert.equal(200, st)
    assert.equal("DELETE", cjson.decode(b).method)
    st, _, b = s:request{ method = "HEAD", url = srv.url .. "/echo" }
    assert.equal(200, st)
    assert.equal("", b)
    s:close()
  end)

  it("reuses one handle correctly across a mix of methods", function()
    local s = session()
    local plan = {
      { "HEAD" }, { "GET" }, { "POST", "p" }, { "GET" }, { "HEAD" }, { "PUT", "u" }, { "DELETE" },
      { "POST" }, { "GET" }, { "PATCH", "x" }, { "OPTIONS" }, { "GET" },
    }
    for i, step in ipairs(plan) do
      local status, headers, body = s:request{ method = step[1], url = srv.url .. "/echo?step=" .. i, body = step[2],
        accept_encoding = (i == 4) and "gzip" or nil, headers = (i == 2) and { ["X-Once"] = "1" } or nil }
      assert.equal(200, status, step[1])
      if step[1] == "HEAD" then
        assert.equal("", body)
        assert.equal("application/json", headers["content-type"])
      else
        local e = cjson.decode(body)
        assert.equal(step[1], e.method)
        assert.equal("/echo?step=" .. i, e.uri)
        assert.equal(step[2], e.body)
        if step[1] == "POST" and not step[2] then assert.equal("0", e.headers["content-length"]) end
        assert.equal(i == 2 and "1" or nil, e.headers["x-once"])
        assert.equal(i == 4 and "gzip" or nil, e.headers["accept-encoding"])
      end
    end
    assert.equal(1, s:stats().connects)
    s:close()
  end)

  it("sends each request's own headers when a pooled handle is reused", function()
    local s = session{ user_agent = "ua-session/1" }
    local long = string.rep("t", 3000) -- longer than the header lines kept on the C stack
    local plan = {
      { h = { ["X-A"] = "1" } },
      { h = { ["X-A"] = "1" } },
      { h = { ["X-A"] = "2" } },
      { h = nil },
      { h = { ["user-AGENT"] = "mine/2", ["X-A"] = "1" } },
      { h = { ["X-A"] = "1" } },
      { h = { ["X-Amz-Access-Token"] = long, ["X-A"] = "3" } },
      { h = { ["X-Amz-Access-Token"] = long, ["X-A"] = "3" }, method = "POST", body = "b" },
      { h = { ["X-A"] = "1" }, follow = true },
      { h = { ["X-A"] = "1" } },
    }
    for i, step in ipairs(plan) do
      local status, headers, body = s:request{ method = step.method, url = srv.url .. (step.follow and "/redirect" or "/echo"),
        headers = step.h, body = step.body, follow = step.follow, timeout = (i % 2 == 0) and 5 or 30 }
      assert.equal(200, status, i)
      assert.equal("application/json", headers["content-type"])
      local e = cjson.decode(body)
      local h = step.h or {}
      assert.equal(h["X-A"], e.headers["x-a"], i)
      assert.equal(h["X-Amz-Access-Token"], e.headers["x-amz-access-token"], i)
      assert.equal(h["user-AGENT"] or "ua-session/1", e.headers["user-agent"], i)
      assert.is_nil(e.headers["expect"], i)
      assert.equal(step.method or "GET", e.method, i)
      assert.equal(step.body, e.body, i)
    end
    assert.equal(1, s:stats().connects)
    s:close()
  end)

  it("refuses a user_agent with a line break", function()
    assert.has_error(function() core.session{ user_agent = "x\r\nInjected: 1" } end)
  end)

  it("returns HTTP error statuses as normal results", function()
    local s = session()
    for _, code in ipairs({ 400, 403, 404, 429, 500, 503 }) do
      local status, headers, body = s:request{ url = srv.url .. "/status/" .. code }
      assert.equal(code, status)
      assert.equal("req-" .. code, headers["x-amzn-requestid"])
      assert.equal("status " .. code .. "\n", body)
      if code == 429 then assert.equal("2", headers["retry-after"]) end
    end
    s:close()
  end)

  it("joins repeated response headers with ', ' and trims values", function()
    local s = session()
    local _, headers = s:request{ url = srv.url .. "/multi-header" }
    assert.equal("one, two", headers["x-multi"])
    assert.equal("padded", headers["x-spaced"])
    s:close()
  end)

  it("names many response headers right on every request (names are cached per session)", function()
    local s = session()
    for r = 1, 3 do
      local status, headers = s:request{ url = srv.url .. "/many-headers?r=" .. r }
      assert.equal(200, status)
      for i = 1, 80 do assert.equal("v" .. i .. "-" .. r, headers["x-h-" .. i]) end
      assert.equal("long", headers[string.lower(string.rep("X-Long-Name-", 5))])
      assert.equal("very long", headers[string.lower(string.rep("X-Very-Long-", 25))]) -- 300 bytes
      assert.equal("c" .. r, headers["x-case-test"])
      assert.is_nil(headers["X-CASE-Test"])
      assert.equal("text/plain", headers["content-type"])
    end
    s:close()
  end)

  it("refuses a bad request field by name, before sending, and stays usable", function()
    local s = session()
    local url = srv.url .. "/echo"
    local cases = {
      { {}, "request: 'url' is required" },
      { { url = 42 }, "request: 'url' must be a string" },
      { { url = url, method = true }, "request: 'method' must be a string" },
      { { url = url, body = {} }, "request: 'body' must be a string" },
      { { url = url, accept_encoding = 1 }, "request: 'accept_encoding' must be a string" },
      { { url = url, timeout = "5" }, "request: 'timeout' must be a number" },
      { { url = url, timeout = 0 }, "request: 'timeout' must be positive" },
      { { url = url, connect_timeout = -1 }, "request: 'connect_timeout' must be positive" },
      { { url = url, headers = "x" }, "request: 'headers' must be a table" },
      { { url = url, headers = { ["X-A"] = "1\r\nX-B: 2" } }, "request: header 'X-A' contains a line break" },
    }
    local before = s:stats().requests
    for _, c in ipairs(cases) do
      assert.has_error(function() s:request(c[1]) end, c[2])
    end
    assert.equal(before, s:stats().requests) -- nothing was sent
    local status, _, body = s:request{ url = url, method = "PUT", body = "b", headers = { ["X-A"] = "1" } }
    assert.equal(200, status)
    local echo = cjson.decode(body)
    assert.equal("PUT", echo.method)
    assert.equal("1", echo.headers["x-a"])
    s:close()
  end)

  it("does not follow redirects unless asked, and keeps only the final headers", function()
    local s = session()
    local status, headers = s:request{ url = srv.url .. "/redirect" }
    assert.equal(302, status)
    assert.matches("/echo%?from=redirect$", headers["location"])
    local status2, headers2, body2 = s:request{ url = srv.url .. "/redirect", follow = true }
    assert.equal(200, status2)
    assert.is_nil(headers2["location"])
    assert.equal("/echo?from=redirect", cjson.decode(body2).uri)
    s:close()
  end)

  it("sends and receives large bodies", function()
    local s = session()
    local data = core.random_bytes(3 * 1024 * 1024)
    local status, _, body = s:request{ method = "PUT", url = srv.url .. "/digest", body = data,
      headers = { ["Content-Type"] = "application/octet-stream" } }
    assert.equal(200, status)
    local len, md5 = body:match("^(%d+) (%x+)")
    assert.equal(#data, tonumber(len))
    assert.equal(32, #md5)
    local _, _, big = s:request{ url = srv.url .. "/big" }
    assert.equal(2 * 1024 * 1024, #big)
    assert.equal(string.rep("0123456789abcdef", 4), big:sub(1, 64))
    s:close()
  end)

  it("leaves gzip bodies alone unless accept_encoding is given", function()
    local s = session()
    local status, headers, raw = s:request{ url = srv.url .. "/gz", headers = { ["Accept-Encoding"] = "gzip" } }
    assert.equal(200, status)
    assert.equal("gzip", headers["content-encoding"])
    local expected = string.rep('{"compressible":true}', 200) .. "\n"
    assert.equal(expected, core.gunzip(raw))
    local _, _, decoded = s:request{ url = srv.url .. "/gz", accept_encoding = "gzip" }
    assert.equal(expected, decoded)
    s:close()
  end)

  it("reports a timeout with kind 'timeout' and no header values in the message", function()
    local s = session()
    local url = srv.url .. "/slow?s=3"
    local ok, msg, kind, code = s:request{ url = url, timeout = 0.5, headers = { ["X-Amz-Access-Token"] = "TOPSECRET" } }
    assert.is_nil(ok)
    assert.equal("timeout", kind)
    assert.equal(28, code)
    assert.equal("timeout after 0.5s: GET " .. url, msg)
    assert.is_nil(msg:find("TOPSECRET", 1, true))
    s:close()
  end)

  it("reports a connection closed without a reply as kind 'closed'", function()
    local s = session()
    local ok, msg, kind, code = s:request{ url = srv.url .. "/close" }
    assert.is_nil(ok)
    assert.equal("closed", kind)
    assert.equal(52, code)
    assert.matches("GET " .. srv.url .. "/close", msg, 1, true)
    -- the session stays usable
    assert.equal(200, (s:request{ url = srv.url .. "/echo" }))
    s:close()
  end)

  it("reports refused connections and unknown hosts", function()
    local s = session{ connect_timeout = 3 }
    local ok, msg, kind = s:request{ url = "http://127.0.0.1:" .. core.free_port() .. "/x" }
    assert.is_nil(ok)
    assert.equal("connect", kind)
    assert.is_string(msg)
    ok, msg, kind = s:request{ url = "http://no-such-host.invalid/x" }
    assert.is_nil(ok)
    assert.equal("resolve", kind)
    assert.matches("no-such-host.invalid", msg, 1, true)
    s:close()
  end)

  it("reuses one keep-alive connection for sequential requests", function()
    local s = session()
    for i = 1, 20 do
      local status = s:request{ url = srv.url .. "/echo?i=" .. i }
      assert.equal(200, status)
    end
    assert.same({ requests = 20, connects = 1, reused = 19 }, s:stats())
    s:close()
  end)

  it("raises on programmer errors", function()
    local s = session()
    assert.has_error(function() s:request{} end)
    assert.has_error(function() s:request{ url = srv.url, headers = { ["X-Bad"] = "a\r\nInjected: 1" } } end)
    assert.has_error(function() s:request{ url = srv.url, headers = { ["Bad Name"] = "x" } } end)
    assert.has_error(function() s:request{ url = srv.url, headers = { ["X-Bad"] = "a\0Injected: 1" } } end,
      "request: header 'X-Bad' contains a NUL byte")
    assert.has_error(function() s:request{ url = srv.url, timeout = "soon" } end)
    assert.has_error(function() core.session{ timeout = -1 } end)
    s:close()
  end)

  -- Found in review: read_opts allocates (number header values become strings),
  -- a finalizer run then closed the session, and the request went on to copy the
  -- session's freed User-Agent line (a crash). Run in a fresh process, whose
  -- small heap makes a GC cycle, so a finalizer, fall inside the request often.
  it("fails as closed when a finalizer closes the session while it reads the request", function()
    local rc, out = H.run(finalizer_close_cmd("request"))
    assert.equal(0, rc, out)
    local fired, bad = out:match("^fired=(%d+) refused=%d+ bad=(.*)$")
    assert.equal("none", bad, out)
    assert.is_true(tonumber(fired) > 0, out)
  end)

  it("close is idempotent and a closed session refuses requests", function()
    local s = session()
    s:close()
    s:close()
    assert.matches("closed", tostring(s))
    local ok, err = pcall(s.request, s, { url = srv.url .. "/echo" })
    assert.is_false(ok)
    assert.matches("closed", err)
  end)
end)

describe("core multi", function()
  it("runs 16 requests at once and returns every result with its id", function()
    local s = session()
    local m = s:multi()
    assert.matches("^spapi%.Multi: ", tostring(m))
    local want = {}
    for i = 1, 16 do
      local id = m:add{ url = srv.url .. "/slow?s=0.2&i=" .. i }
      want[id] = "slept " .. i .. "\n"
    end
    assert.equal(16, m:count())
    local got, n = {}, 0
    while m:count() > 0 do
      for _, r in ipairs(m:wait(10)) do
        assert.is_nil(r.err)
        assert.equal(200, r.status)
        assert.is_table(r.headers)
        got[r.id] = r.body
        n = n + 1
      end
    end
    assert.equal(16, n)
    assert.same(want, got)
    assert.equal(16, s:stats().requests)
    m:close()
    s:close()
  end)

  it("reports failures per request and returns an empty table on timeout", function()
    local s = session()
    local m = s:multi()
    local bad = m:add{ url = "http://127.0.0.1:" .. core.free_port() .. "/" }
    local slow = m:add{ url = srv.url .. "/slow?s=5", timeout = 0.5 }
    local results = {}
    for _ = 1, 50 do
      for _, r in ipairs(m:wait(5)) do results[r.id] = r end
      if m:count() == 0 then break end
    end
    assert.equal("connect", results[bad].kind)
    assert.equal(7, results[bad].curl_code)
    assert.equal("timeout", results[slow].kind)
    assert.matches("^timeout after 0.5s: GET ", results[slow].err)
    assert.same({}, m:wait(0.05)) -- nothing in flight
    local id = m:add{ url = srv.url .. "/slow?s=2" }
    assert.same({}, m:wait(0.1))
    assert.equal(1, m:count())
    assert.is_number(id)
    m:close()
    m:close()
    assert.equal(0, m:count())
    assert.has_error(function() m:add{ url = srv.url } end)
    s:close()
  end)

  it("shares connections with the session and honours max_host_connections", function()
    local s = session{ max_host_connections = 2 }
    local m = s:multi()
    for i = 1, 8 do m:add{ url = srv.url .. "/slow?s=0.1&i=" .. i } end
    local n = 0
    while m:count() > 0 do n = n + #m:wait(10) end
    assert.equal(8, n)
    local st = s:stats()
    assert.equal(8, st.requests)
    assert.equal(2, st.connects)
    -- a sequential request afterwards reuses one of those connections
    assert.equal(200, (s:request{ url = srv.url .. "/echo" }))
    assert.equal(2, s:stats().connects)
    m:close()
    s:close()
  end)

  it("survives the session being closed while a multi still runs", function()
    local s = session()
    local m = s:multi()
    m:add{ url = srv.url .. "/slow?s=0.2" }
    s:close()
    local r
    while m:count() > 0 do r = m:wait(5)[1] or r end
    assert.equal(200, r.status)
    assert.matches("^nginx", r.headers["server"])
    assert.has_error(function() m:add{ url = srv.url } end)
    m:close()
  end)

  -- Found in review: making wait's results allocates, a finalizer run then closed
  -- the multi, and wait went on with requests the close had freed (a crash).
  it("finishes wait's results when a finalizer closes the multi meanwhile, and refuses a nested wait", function()
    local rc, out = H.run(finalizer_close_cmd("wait"))
    assert.equal(0, rc, out)
    local fired, refused, bad = out:match("^fired=(%d+) refused=(%d+) bad=(.*)$")
    assert.equal("none", bad, out)
    assert.is_true(tonumber(fired) > 0, out)
    assert.is_true(tonumber(refused) > 0, out)
  end)

  it("is collected without an explicit close", function()
    local s = session()
    local m = s:multi()
    m:add{ url = srv.url .. "/slow?s=1" }
    m = nil
    s = nil
    collectgarbage()
    collectgarbage()
  end)
end)

describe("core.session over TLS", function()
  local dir = H.tmpdir("tls")
  local ok = os.execute("openssl req -x509 -newkey rsa:2048 -nodes -keyout " .. dir .. "/key.pem -out "
    .. dir .. "/cert.pem -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 >/dev/null 2>&1")
  assert(ok == true or ok == 0, "openssl could not make a test certificate")
  local tls_port = H.free_port()
  H.nginx(string.format([[
    listen 127.0.0.1:%d ssl;
    ssl_certificate %s/cert.pem;
    ssl_certificate_key %s/key.pem;
    location / { return 200 "secure"; }
  ]], tls_port, dir, dir))
  local base = "https://127.0.0.1:" .. tls_port

  it("verifies certificates by default and reports failures as kind 'tls'", function()
    local s = core.session()
    local st, msg, kind = s:request{ url = base .. "/" }
    assert.is_nil(st)
    assert.equal("tls", kind)
    assert.matches(base, msg, 1, true)
    s:close()
  end)

  it("accepts a certificate from cainfo", function()
    local s = core.session{ cainfo = dir .. "/cert.pem" }
    local st, _, body = s:request{ url = base .. "/" }
    assert.equal(200, st)
    assert.equal("secure", body)
    for _ = 1, 3 do assert.equal(200, (s:request{ url = base .. "/" })) end
    assert.equal(1, s:stats().connects)
    s:close()
  end)

  it("can skip verification when verify = false", function()
    local s = core.session{ verify = false }
    local st, _, body = s:request{ url = base .. "/" }
    assert.equal(200, st)
    assert.equal("secure", body)
    s:close()
  end)
end)
