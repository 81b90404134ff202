-- The REPL as a person at a terminal uses it: bin/spapi in a tmux pane (a real
-- pseudo-terminal, lua-readline doing the line editing) against a sandbox.
-- Keys go in through tmux send-keys; the screen is read back with capture-pane.
local H = require "helpers"
local S = require "cli.support"
local spapi = require "spapi"

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  return out
end

-- a tmux server of this spec's own (its socket in a private directory)
local function terminal(dir, command)
  os.execute("mkdir -p " .. S.q(dir))
  local sock = dir .. "/tmux.sock"
  local t = {}
  local function tmux(args) return sh("tmux -S " .. S.q(sock) .. " -f /dev/null " .. args) end
  tmux("new-session -d -x 150 -y 50 " .. S.q(command))
  function t.type(text) tmux("send-keys -t 0 -l " .. S.q(text)) end
  function t.key(...) tmux("send-keys -t 0 " .. table.concat({ ... }, " ")) end
  function t.screen() return tmux("capture-pane -p -J -S -2000 -t 0") end
  --- the screen once plain-text `want` is on it (fails after 15 s without it)
  function t.wait(want, from)
    local s
    for _ = 1, 300 do
      s = t.screen()
      if s:find(want, from or 1, true) then return s end
      spapi.sleep(0.05)
    end
    error("not on the screen: " .. want .. "\n---\n" .. tostring(s), 2)
  end
  --- the number of times `want` is on the screen
  function t.count(want)
    local s, n, i = t.screen(), 0, 1
    while true do
      local a, b = s:find(want, i, true)
      if not a then return n end
      n, i = n + 1, b + 1
    end
  end
  --- wait until `want` is on the screen n times
  function t.wait_n(want, n)
    for _ = 1, 300 do
      if t.count(want) >= n then return t.screen() end
      spapi.sleep(0.05)
    end
    error("not on the screen " .. n .. " times: " .. want .. "\n---\n" .. t.screen(), 2)
  end
  function t.alive() return not tmux("has-session -t 0"):find("%S") end
  function t.close() tmux("kill-server") end
  return t
end

describe("the spapi REPL", function()
  local sb, dir, env, term
  setup(function()
    assert(sh("command -v tmux"):find("tmux"), "tmux is needed (scripts/deps.sh installs it)")
    assert(sh("lua5.4 -e 'require \"readline\"' && echo ok"):find("ok"), "lua-readline is needed (scripts/deps.sh)")
    sb = S.sandbox()
    dir = H.tmpdir("repl")
    local f = assert(io.open(dir .. "/profiles", "wb"))
    f:write("[other]\nclient_id = ", S.PROFILE_CLIENT_ID, "\nclient_secret = ", S.CLIENT_SECRET,
      "\nrefresh_token = ", S.REFRESH_TOKEN, "\nendpoint = ", sb.endpoint, "\nlwa_endpoint = ", sb.lwa_endpoint, "\n")
    f:close()
    env = S.env(sb, { SPAPI_CONFIG_FILE = dir .. "/profiles", XDG_STATE_HOME = dir .. "/state", TERM = "xterm" })
    term = terminal(dir, "cd " .. S.q(H.root) .. " && " .. env .. " bin/spapi")
    term.wait("spapi> ")
  end)
  teardown(function()
    if term then term.close() end
    if sb then sb.stop() end
  end)

  it("opens with sp ready", function()
    local s = term.wait("sp = spapi.Client(endpoint=" .. sb.endpoint)
    assert.matches(":help", s, 1, true)
  end)

  it("completes API keys, operations and parameter names with Tab, and prints a call's result", function()
    term.type("sp.fba_inv")
    term.key("Tab")
    term.wait("spapi> sp.fba_inventory")
    term.type(".getInv")
    term.key("Tab")
    term.wait("spapi> sp.fba_inventory.getInventorySummaries")
    term.type("{granularityT")
    term.key("Tab")
    term.wait("spapi> sp.fba_inventory.getInventorySummaries{granularityType")
    term.type('="Marketplace", granularityI')
    term.key("Tab")
    term.wait('granularityType="Marketplace", granularityId')
    term.type('="ATVPDKIKX0DER", marketplaceIds={"ATVPDKIKX0DER"}}')
    term.key("Enter")
    local s = term.wait("-- 200 · request id")
    assert.matches('sellerSku = "SKU-RED-MUG"', s, 1, true)
    assert.matches("inventorySummaries = {  -- 5 items", s, 1, true)
  end)

  it("prints a failed call's structured error, and a bad call's message, never a traceback", function()
    term.type('sp.fulfillment_outbound.getFulfillmentOrder{ sellerFulfillmentOrderId = "nope" }')
    term.key("Enter")
    local s = term.wait("error 404 NotFound (fulfillment_outbound.getFulfillmentOrder)")
    assert.matches("request id: ", s, 1, true)
    term.type("sp.fulfillment_outbound.getFeatures{}")
    term.key("Enter")
    s = term.wait("missing required parameter 'marketplaceId'")
    term.type("sp.fulfillment_outbound.nope{}")
    term.key("Enter")
    s = term.wait("has no operation 'nope'")
    assert.is_nil(s:find("traceback", 1, true))
    assert.is_nil(s:find("%.lua:%d+:"))
  end)

  it("continues an unfinished expression on the next line", function()
    term.type("t = { 'a',")
    term.key("Enter")
    term.wait("   ...> ")
    term.type("'b' }")
    term.key("Enter")
    term.type("#t .. t[2]")
    term.key("Enter")
    term.wait('"2b"')
  end)

  it("cuts long lists with a count of the rest", function()
    term.type("local t = {} for i = 1, 25 do t[i] = i * 2 end return t")
    term.key("Enter")
    local s = term.wait("-- ... 15 more (25 items in all)")
    assert.matches("{  -- 25 items", s, 1, true)
  end)

  it("has :help, :ops, :describe and :profile", function()
    term.type(":help")
    term.key("Enter")
    term.wait(":describe api.op")
    term.type(":ops getfeaturesku")
    term.key("Enter")
    term.wait("fulfillment_outbound.getFeatureSKU  GET")
    term.type(":describe tokens.createRestrictedDataToken")
    term.key("Enter")
    term.wait('"restrictedResources": [')
    term.type(":profile other")
    term.key("Enter")
    term.wait("sp = spapi.Client(endpoint=" .. sb.endpoint .. ", region=na, client_id=amzn1.ap…file)")
    term.type('#sp.fulfillment_outbound.getFeatures{ marketplaceId = "ATVPDKIKX0DER" }.payload.features + 1000')
    term.key("Enter")
    term.wait("\n1003\n")
    term.type(":profile missing")
    term.key("Enter")
    term.wait("profile 'missing' not found")
  end)

  it("prints no secret", function()
    term.type('sp.tokens.createRestrictedDataToken{ body = { restrictedResources = { { method = "GET", '
      .. 'path = "/mfn/v0/shipments/X" } } } }')
    term.key("Enter")
    local s = term.wait("restrictedDataToken = ")
    assert.matches('restrictedDataToken = "Atz[%a.]*|%[redacted%]"', s)
    for _, expr in ipairs({ "sp", "sp.cfg", "sp.auth", "sp.store", "spapi.config.resolve()",
      'os.getenv("LWA_CLIENT_SECRET")', '{ os.getenv("LWA_REFRESH_TOKEN") }' }) do
      term.type(expr)
      term.key("Enter")
    end
    term.wait("buckets = {")
    term.wait('{ "Atzr|[redacted]" }') -- the last one
    S.no_secret(term.screen())
  end)

  it("keeps history across sessions in the XDG state directory", function()
    term.type("marker_for_history = 42")
    term.key("Enter")
    term.key("C-d")
    for _ = 1, 100 do
      if not term.alive() then break end
      spapi.sleep(0.05)
    end
    assert.is_false(term.alive())
    local hist = S.read(dir .. "/state/spapi/history")
    local p = io.popen("stat -c %a " .. S.q(dir .. "/state/spapi/history"))
    assert.equal("600", p:read("*l"))
    p:close()
    assert.matches("marker_for_history = 42", hist, 1, true)
    S.no_secret(hist)
    term = terminal(dir, "cd " .. S.q(H.root) .. " && " .. env .. " bin/spapi")
    term.wait("spapi> ")
    term.key("Up")
    term.wait("spapi> marker_for_history = 42")
  end)

  it("reads plain lines without lua-readline (SPAPI_NO_READLINE=1), same results and errors", function()
    local t = terminal(dir .. "/plain", "cd " .. S.q(H.root) .. " && SPAPI_NO_READLINE=1 " .. env .. " bin/spapi")
    finally(function() t.close() end)
    t.wait("spapi> ")
    t.type('#sp.fulfillment_outbound.getFeatures{ marketplaceId = "ATVPDKIKX0DER" }.payload.features')
    t.key("Enter")
    t.wait("\n3\n")
    t.type('sp.fulfillment_outbound.getFulfillmentOrder{ sellerFulfillmentOrderId = "nope" }')
    t.key("Enter")
    t.wait("error 404 NotFound")
    t.type("{ 1,")
    t.key("Enter")
    t.wait("   ...> ")
    t.type("2 }")
    t.key("Enter")
    t.wait("{ 1, 2 }")
    S.no_secret(t.screen())
  end)

  it("shows spapi call --all's progress on a terminal's stderr", function()
    local t = terminal(dir .. "/all", "cd " .. S.q(H.root) .. " && " .. env
      .. " bin/spapi call fba_inventory.getInventorySummaries granularityType=Marketplace granularityId=ATVPDKIKX0DER"
      .. " marketplaceIds=ATVPDKIKX0DER --all > " .. S.q(dir .. "/all.out") .. "; echo rc=$?; sleep 60")
    finally(function() t.close() end)
    local s = t.wait("rc=0")
    assert.matches("items of fba_inventory.getInventorySummaries 5 [%d.]+s %(1 pages%)", s)
    local n = 0
    for line in S.read(dir .. "/all.out"):gmatch("[^\n]+") do
      assert.is_string(require("spapi.json").decode(line).sellerSku)
      n = n + 1
    end
    assert.equal(5, n)
  end)

  it("indents spapi call's JSON on a terminal", function()
    local t = terminal(dir .. "/indent", "cd " .. S.q(H.root) .. " && " .. env
      .. " bin/spapi call fulfillment_outbound.getFeatures marketplaceId=ATVPDKIKX0DER; echo rc=$?; sleep 60")
    finally(function() t.close() end)
    local s = t.wait("rc=0")
    assert.matches('^{\n  "payload": {\n    "features": %[\n      {\n', s)
  end)

  it("says on a terminal why a call waits (a 429), and nothing when stderr is piped", function()
    assert(sb.control("/_sandbox/faults", { operation = "fulfillment_outbound.getFeatures", kind = "status",
      status = 429, retry_after = 1, count = 1 }))
    local t = terminal(dir .. "/wait", "cd " .. S.q(H.root) .. " && " .. env
      .. " bin/spapi call fulfillment_outbound.getFeatures marketplaceId=ATVPDKIKX0DER --compact; echo rc=$?; sleep 60")
    finally(function() t.close() end)
    local s = t.wait("rc=0")
    assert.matches("spapi: fulfillment_outbound.getFeatures: 429 (throttled): waiting to retry\n{\"payload\"", s, 1, true)
    assert(sb.control("/_sandbox/faults", { operation = "fulfillment_outbound.getFeatures", kind = "status",
      status = 429, retry_after = 1, count = 1 }))
    local rc, out, err = S.spapi(env, "call fulfillment_outbound.getFeatures marketplaceId=ATVPDKIKX0DER")
    assert.equal(0, rc, err)
    assert.equal("", err)
    assert.is_table(require("spapi.json").decode(out).payload)
  end)
end)
