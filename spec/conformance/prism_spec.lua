-- Request conformance: every operation of every API, built by spapi.request with
-- sample parameters derived from the generated tables (and bodies synthesised
-- from the model's definitions), is sent to Prism serving Amazon's models with
-- STRICT=1 (unknown body fields are violations) and REQUIRE_TOKEN=1. Any request
-- violation, unmatched route or invalid JSON fails. A few deliberately bad
-- requests check that Prism does report what it should.
--
-- Prism: SPAPI_PRISM_URL if set (e.g. http://127.0.0.1:4010), else started here
-- through scripts/prism.sh (installs @stoplight/prism-cli@5.14.2 on first use)
-- and stopped in teardown.
local H = require "helpers"
local request = require "spapi.request"
local json = require "spapi.json"
local cjson = require("cjson.safe").new()

local ROOT, MODELS = H.root, H.models
-- Prism serves Amazon's raw models: without them every test here is skipped, not run
local it = H.it_with_models(it)
local TOKEN = { ["x-amz-access-token"] = "test" }

-- ---------------------------------------------------------------------------
-- HTTP: the C core session (core.session{...}:request{...} → status, headers,
-- body | nil, msg). Until the core has sessions, the curl CLI stands in.
-- ---------------------------------------------------------------------------
local send, sender_name
do
  local ok, core = pcall(require, "spapi.core")
  if ok and type(core) == "table" and type(core.session) == "function" then
    local session
    sender_name = "spapi.core session"
    send = function(req)
      session = session or core.session{ timeout = 10 }
      return session:request(req)
    end
  else
    sender_name = "curl CLI (spapi.core has no session yet)"
    local n = 0
    send = function(req)
      n = n + 1
      local dir = H.root .. "/build/test"
      local hfile = string.format("%s/prism-h-%d", dir, n)
      local bfile = string.format("%s/prism-b-%d", dir, n)
      local cmd = { "curl -s -S --max-time 10 -D '" .. hfile .. "' -o '" .. bfile .. "' -X " .. req.method }
      for k, v in pairs(req.headers or {}) do
        cmd[#cmd + 1] = "-H '" .. (k .. ": " .. v):gsub("'", "'\\''") .. "'"
      end
      local dfile
      if req.body then
        dfile = bfile .. ".req"
        local f = assert(io.open(dfile, "wb")); f:write(req.body); f:close()
        cmd[#cmd + 1] = "--data-binary '@" .. dfile .. "'"
      end
      cmd[#cmd + 1] = "'" .. req.url:gsub("'", "'\\''") .. "'"
      local okc = os.execute(table.concat(cmd, " ") .. " 2>/dev/null")
      if okc ~= true and okc ~= 0 then return nil, "curl failed" end
      local hf = assert(io.open(hfile, "rb")); local head = hf:read("*a"); hf:close()
      local bf = assert(io.open(bfile, "rb")); local body = bf:read("*a"); bf:close()
      os.remove(hfile); os.remove(bfile); if dfile then os.remove(dfile) end
      local status = tonumber(head:match("^HTTP/%S+ (%d+)"))
      local headers = {}
      for name, value in head:gmatch("\n([^:\r\n]+):%s*([^\r\n]*)") do headers[name:lower()] = value end
      return status, headers, body
    end
  end
end

local function header(headers, name)
  if type(headers) ~= "table" then return nil end
  name = name:lower()
  for k, v in pairs(headers) do
    if type(k) == "string" and k:lower() == name then
      if type(v) == "table" then return v[#v] end
      return v
    elseif type(k) == "number" then -- list forms: { name, value } or "Name: value"
      if type(v) == "table" and type(v[1]) == "string" and v[1]:lower() == name then return v[2] end
      if type(v) == "string" then
        local n, val = v:match("^([^:]+):%s*(.*)$")
        if n and n:lower() == name then return val end
      end
    end
  end
end

-- ---------------------------------------------------------------------------
-- Prism lifecycle
-- ---------------------------------------------------------------------------
local prism_url, started_port

local function start_prism()
  local url = os.getenv("SPAPI_PRISM_URL")
  if url and url ~= "" then return (url:gsub("/+$", "")) end
  os.execute("mkdir -p '" .. ROOT .. "/build/test'")
  local log = ROOT .. "/build/test/prism-start.log"
  local p = io.popen("cd '" .. ROOT .. "' && SPAPI_MODELS='" .. MODELS .. "' scripts/prism.sh start 2>'" .. log .. "'")
  local out = p:read("*a")
  p:close()
  local u = out:match("(http://127%.0%.0%.1:%d+)%s*$")
  if not u then
    local f = io.open(log, "rb")
    local why = f and f:read("*a") or ""
    if f then f:close() end
    error("scripts/prism.sh start failed:\n" .. out .. why, 0)
  end
  started_port = u:match(":(%d+)$")
  return u
end

local function stop_prism()
  if started_port then
    os.execute("cd '" .. ROOT .. "' && scripts/prism.sh stop " .. started_port .. " >/dev/null 2>&1")
    started_port = nil
  end
end

-- Send a built request (or a raw { method, path, query, headers, body }).
local function exchange(req, extra_headers)
  local headers = {}
  for k, v in pairs(req.headers or {}) do headers[k] = v end
  for k, v in pairs(extra_headers or TOKEN) do headers[k] = v end
  local url = prism_url .. req.path .. ((req.query and req.query ~= "") and ("?" .. req.query) or "")
  local status, rh, body = send{ method = req.method, url = url, headers = headers, body = req.body }
  assert(status, "transport failure for " .. tostring(req.operation) .. ": " .. tostring(rh))
  local violations = {}
  local raw = header(rh, "sl-violations")
  if raw then
    local list = cjson.decode(raw)
    assert(type(list) == "table", "sl-violations is not JSON: " .. raw)
    for _, v in ipairs(list) do
      if type(v.location) == "table" and v.location[1] == "request" then violations[#violations + 1] = v end
    end
  end
  if os.getenv("SPAPI_PRISM_TRACE") then -- debugging aid: one line per exchange on stderr
    io.stderr:write(string.format("prism: %s %s -> %s %s\n", req.method, url, tostring(status), raw or ""))
  end
  return { status = status, headers = rh, body = body, violations = violations, url = url,
           content_type = header(rh, "content-type") or "" }
end

local function problems(res)
  local out = {}
  for _, v in ipairs(res.violations) do
    out[#out + 1] = string.format("%s: %s", table.concat(v.location, "."), tostring(v.message))
  end
  if (res.status == 404 or res.status == 405) and res.content_type:find("problem+json", 1, true) then
    out[#out + 1] = "no route: " .. res.status .. " " .. tostring(res.body)
  end
  if res.status == 401 then out[#out + 1] = "401 (token not accepted): " .. tostring(res.body) end
  if type(res.body) == "string" and res.body:find('"invalid_json"', 1, true) then
    out[#out + 1] = "invalid_json: " .. res.body
  end
  return out
end

-- ---------------------------------------------------------------------------
-- Sample values
-- ---------------------------------------------------------------------------
local PATTERN_SAMPLES = {
  ["[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"] = "a1b2c3d4-0000-1111-2222-333344445555",
  ["^[a-zA-Z0-9]+$"] = "abc123",
  ["^([a-zA-Z0-9_\\-\\.]+)@([a-zA-Z0-9_\\-\\.]+)\\.([a-zA-Z]{2,5})$"] = "jane@example.com",
  ["^[1-9](\\.[1-9])?$"] = "1",
  ["^arn:aws:sqs:\\S+:\\S+:\\S+"] = "arn:aws:sqs:us-east-1:123456789012:spapi-queue",
}
local DATE = "2024-01-02T03:04:05Z"

local function sample_string(s, hint)
  if s.enum then return s.enum[1] end
  if s.pattern then
    local v = PATTERN_SAMPLES[s.pattern]
    assert(v, "no sample for pattern " .. s.pattern .. " (add one to PATTERN_SAMPLES)")
    return v
  end
  if s.format == "date-time" then return DATE end
  if s.format == "date" then return "2024-01-02" end
  if s.format == "ip" then return "127.0.0.1" end
  local v = hint or "sample"
  local maxl = s.max_length or s.maxLength
  local minl = s.min_length or s.minLength
  if maxl and #v > maxl then v = v:sub(1, maxl) end
  if minl and #v < minl then v = v .. ("x"):rep(minl - #v) end
  return v
end

local function sample_number(s, integer)
  local v = s.minimum or 1
  if s.maximum and v > s.maximum then v = s.maximum end
  if integer then v = math.ceil(v) end
  return v
end

-- Body synthesis from the model's definitions: required properties only,
-- type-valid values, first enum, one item per array (or minItems).
local function resolve(doc, s)
  local n = 0
  while type(s) == "table" and s["$ref"] do
    s = doc.definitions[s["$ref"]:match("^#/definitions/(.+)$")]
    n = n + 1
    assert(n < 50 and s, "bad $ref")
  end
  return s or {}
end

local synth
synth = function(doc, s, depth, name)
  s = resolve(doc, s)
  assert(depth < 20, "schema too deep at " .. tostring(name))
  if s.allOf then
    local o = {}
    for _, sub in ipairs(s.allOf) do
      local v = synth(doc, sub, depth + 1, name)
      if type(v) == "table" then for k, x in pairs(v) do o[k] = x end end
    end
    return o
  end
  if s.enum then return s.enum[1] end
  local t = s.type or (s.properties and "object")
  if t == "object" then
    local o = {}
    for _, r in ipairs(s.required or {}) do
      o[r] = synth(doc, (s.properties or {})[r] or {}, depth + 1, r)
    end
    return o
  elseif t == "array" then
    local n = math.max(s.minItems or 1, 1)
    local a = json.array()
    for i = 1, n do a[i] = synth(doc, s.items or { type = "string" }, depth + 1, name) end
    return a
  elseif t == "integer" then return sample_number(s, true)
  elseif t == "number" then return sample_number(s, false)
  elseif t == "boolean" then return true
  else return sample_string(s, "v") end
end

local models = {}
local function model(file)
  if not models[file] then
    local f = assert(io.open(MODELS .. "/" .. file, "rb"))
    models[file] = assert(cjson.decode(f:read("*a")))
    f:close()
  end
  return models[file]
end

-- A few realistic bodies, written by hand (they must pass as well as the
-- synthesised minimal ones).
local BODIES = {
  ["fulfillment_outbound.createFulfillmentOrder"] = {
    sellerFulfillmentOrderId = "ORDER-1", displayableOrderId = "ORDER-1", displayableOrderDate = DATE,
    displayableOrderComment = "Thank you", shippingSpeedCategory = "Standard",
    destinationAddress = { name = "Jane Doe", addressLine1 = "1 Main St", city = "Seattle",
                           stateOrRegion = "WA", postalCode = "98101", countryCode = "US" },
    items = { { sellerSku = "SKU-1", sellerFulfillmentOrderItemId = "1", quantity = 2 } },
    notificationEmails = json.array({ "jane@example.com" }),
  },
  ["vendor_df_orders.submitAcknowledgement"] = {
    orderAcknowledgements = { {
      purchaseOrderNumber = "PO-1", vendorOrderNumber = "V-1", acknowledgementDate = DATE,
      acknowledgementStatus = { code = "00", description = "Shipping 100 percent of ordered product" },
      sellingParty = { partyId = "VENDOR" }, shipFromParty = { partyId = "WH1" },
      itemAcknowledgements = { { itemSequenceNumber = "1", acknowledgedQuantity = { amount = 1, unitOfMeasure = "Each" } } },
    } },
  },
  ["tokens.createRestrictedDataToken"] = {
    restrictedResources = { { method = "GET", path = "/mfn/v0/shipments/{shipmentId}" } },
  },
  ["reports.createReport"] = {
    reportType = "GET_FLAT_FILE_OPEN_LISTINGS_DATA", marketplaceIds = { "ATVPDKIKX0DER" },
    dataStartTime = DATE, reportOptions = { custom = "true" },
  },
  ["feeds.createFeedDocument"] = { contentType = "application/json; charset=UTF-8" },
}

-- Parameters for an operation: required ones, or all of them (`full`).
local function sample_params(api, t, name, op, full)
  local params = {}
  for _, p in ipairs(op.params) do
    if p.required or full then
      local where = p["in"]
      if where == "body" then
        params[p.name] = synth(model(t.model), { ["$ref"] = "#/definitions/" .. p.schema }, 0, p.name)
      elseif p.type == "array" then
        local items = p.items or {}
        local n = math.min(items.enum and 2 or 2, p.max_items or 2)
        local list = {}
        for i = 1, n do
          if items.enum then list[i] = items.enum[i] or items.enum[1]
          else list[i] = sample_string(items, i == 1 and "A1" or "B 2") end
        end
        params[p.name] = list
      elseif p.type == "integer" then params[p.name] = sample_number(p, true)
      elseif p.type == "number" then params[p.name] = sample_number(p, false)
      elseif p.type == "boolean" or p.format == "boolean" then params[p.name] = true
      elseif p.format == "date-time" then params[p.name] = 1704164645 -- Unix seconds → 2024-01-02T03:04:05Z
      elseif where == "path" then
        params[p.name] = (p.enum or p.pattern) and sample_string(p) or "A 1/2+3"
      elseif where == "header" then
        params[p.name] = sample_string(p, "tok-1")
      else
        params[p.name] = sample_string(p, "value 1")
      end
    end
  end
  return params
end

local each_operation = H.each_operation

-- ---------------------------------------------------------------------------
describe("request conformance against Prism (" .. sender_name .. ")", function()
  setup(function() if MODELS then prism_url = start_prism() end end)
  teardown(stop_prism)

  it("accepts a minimal and a full valid request for every operation of every API", function()
    local failures, count = {}, 0
    each_operation(function(api, t, name, op)
      for _, full in ipairs({ false, true }) do
        local params = sample_params(api, t, name, op, full)
        local req = request.build(t, name, params)
        local res = exchange(req)
        count = count + 1
        local probs = problems(res)
        if #probs > 0 then
          failures[#failures + 1] = string.format("%s (%s) %s %s -> %d\n    %s", req.operation,
            full and "full" or "minimal", req.method, res.url, res.status, table.concat(probs, "\n    "))
        end
      end
    end)
    assert.equal(176, count)
    assert(#failures == 0, #failures .. " requests rejected by Prism:\n" .. table.concat(failures, "\n"))
  end)

  it("accepts every operation sent through spapi.client (tokens, RDTs, headers, pipeline)", function()
    -- LWA is not in the models: a static token endpoint stands in for it
    local lwa = H.nginx([[
      default_type application/json;
      location = /auth/o2/token { return 200 '{"access_token":"Atza|prism","token_type":"bearer","expires_in":3600}'; }
    ]])
    local seen, failures = {}, {}
    local sp = assert(require("spapi").client{ env = false, endpoint = prism_url,
      lwa_endpoint = lwa.url .. "/auth/o2/token", client_id = "amzn1.application-oa2-client.prism",
      client_secret = "s", refresh_token = "Atzr|prism", max_retries = 0, rate_scale = 1e6,
      debug = function(ev)
        if ev.phase ~= "response" or ev.url:find("/auth/o2/token", 1, true) then return end
        local res = { status = ev.status, headers = ev.headers, body = ev.body, violations = {},
          content_type = header(ev.headers, "content-type") or "" }
        local raw = header(ev.headers, "sl-violations")
        for _, v in ipairs(raw and cjson.decode(raw) or {}) do
          if type(v.location) == "table" and v.location[1] == "request" then res.violations[#res.violations + 1] = v end
        end
        seen[#seen + 1] = ev.url
        local probs = problems(res)
        if #probs > 0 then
          failures[#failures + 1] = string.format("%s %s -> %d\n    %s", ev.method, ev.url, ev.status,
            table.concat(probs, "\n    "))
        end
      end })
    local ops, rdts = 0, 0
    each_operation(function(api, t, name, op)
      local params = sample_params(api, t, name, op, true)
      ops = ops + 1
      if op.restricted == true then rdts = rdts + 1 end
      sp:call(api .. "." .. name, params) -- the answer is Prism's example; the request is what is checked
    end)
    assert.equal(88, ops)
    -- every operation reached Prism, and restricted ones were preceded by their RDT request
    assert.is_true(#seen >= ops, "only " .. #seen .. " requests reached Prism")
    local rdt_requests = 0
    for _, u in ipairs(seen) do if u:find("/tokens/2021-03-01/restrictedDataToken", 1, true) then rdt_requests = rdt_requests + 1 end end
    assert.is_true(rdt_requests >= 1 and rdts >= 10)
    print(string.format("\nclient pass: %d operations, %d requests reached Prism, %d RDT requests", ops, #seen, rdt_requests))
    assert(#failures == 0, #failures .. " client requests rejected by Prism:\n" .. table.concat(failures, "\n"))
  end)

  it("accepts the hand-written realistic bodies", function()
    for key, body in pairs(BODIES) do
      local api, name = key:match("^(.-)%.(.+)$")
      local res = exchange(request.build(api, name, { body = body }))
      local probs = problems(res)
      assert(#probs == 0, key .. ": " .. table.concat(probs, "; "))
    end
  end)

  it("accepts those bodies with their date-times given as Unix seconds (spapi converts them)", function()
    local function unix(v)
      if type(v) == "table" then
        local c = {}
        for k, x in pairs(v) do c[k] = unix(x) end
        return setmetatable(c, getmetatable(v))
      end
      if v == DATE then return 1704164645 end -- the same instant
      return v
    end
    local converted = 0
    for key, body in pairs(BODIES) do
      local api, name = key:match("^(.-)%.(.+)$")
      local numeric = unix(body)
      local req = request.build(api, name, { body = numeric })
      if req.body:find(DATE, 1, true) then converted = converted + 1 end
      local probs = problems(exchange(req))
      assert(#probs == 0, key .. ": " .. table.concat(probs, "; "))
    end
    assert.is_true(converted >= 3)
  end)

  describe("negative cases (Prism must notice)", function()
    local function has(res, pattern)
      for _, v in ipairs(res.violations) do
        if tostring(v.message):find(pattern, 1, true) or table.concat(v.location, "."):find(pattern, 1, true) then
          return true
        end
      end
      return false
    end

    it("reports a bad enum in a csv array (which request.build refuses too)", function()
      assert.has_error(function()
        request.build("feeds", "getFeeds", { processingStatuses = { "BAD_VALUE", "DONE" } })
      end)
      local res = exchange({ method = "GET", path = "/feeds/2021-06-30/feeds",
                             query = "processingStatuses=BAD_VALUE,DONE" })
      assert.equal(400, res.status)
      assert.is_true(has(res, "processingstatuses"))
    end)

    it("reports an out-of-range page size (which request.build refuses too)", function()
      assert.has_error(function() request.build("reports", "getReports", { pageSize = 500 }) end)
      local res = exchange({ method = "GET", path = "/reports/2021-06-30/reports", query = "pageSize=500" })
      assert.is_true(has(res, "<= 100"))
    end)

    it("reports a missing access token", function()
      local req = request.build("vendor_df_orders", "getOrder", { purchaseOrderNumber = "PO1" })
      local res = exchange(req, {})
      assert.equal(401, res.status)
      assert.truthy(header(res.headers, "sl-violations"))
    end)

    it("reports an unknown body field in strict mode", function()
      local body = { contentType = "text/tab-separated-values", contentTyp = "typo" }
      local res = exchange(request.build("feeds", "createFeedDocument", { body = body }))
      assert.is_true(#res.violations > 0)
      assert.is_true(has(res, "additional properties") or has(res, "contentTyp"))
    end)

    it("reports a missing required body property (which request.build refuses too)", function()
      assert.has_error(function() request.build("reports", "createReport", { body = { reportType = "X" } }) end)
      local res = exchange({ method = "POST", path = "/reports/2021-06-30/reports",
        headers = { ["Content-Type"] = "application/json" }, body = '{"reportType":"X"}' })
      assert.is_true(has(res, "marketplaceIds"))
    end)

    it("routes an encoded slash in a SKU, but not a raw one", function()
      local req = request.build("listings_items", "getListingsItem",
        { sellerId = "S1", sku = "AB/CD", marketplaceIds = { "ATVPDKIKX0DER" } })
      assert.equal(0, #problems(exchange(req)))
      local raw = exchange({ method = "GET", path = "/listings/2021-08-01/items/S1/AB/CD",
                             query = "marketplaceIds=ATVPDKIKX0DER" })
      assert.equal(404, raw.status)
    end)

    it("reports a date that is not a date-time", function()
      local res = exchange({ method = "GET", path = "/vendor/directFulfillment/orders/2021-12-28/purchaseOrders",
        query = "createdAfter=yesterday&createdBefore=2024-01-02T03%3A04%3A05Z" })
      assert.is_true(has(res, "date-time"))
    end)
  end)
end)
