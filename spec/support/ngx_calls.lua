-- Request handlers for the OpenResty specs (spec/openresty/*): spapi called
-- from inside a real nginx. Each answers JSON. Query arguments:
--   ep         the SP-API endpoint (LWA at ep/auth/o2/token)
--   transport  "ngx" | "curl" | absent (the default inside nginx)
--   verify     "0" for verify = false
-- One client per worker and set of arguments (built on first use, as an
-- integrator builds one per worker).
local spapi = require "spapi"
local json = require "spapi.json"

local _M = {}
local clients = {}

local function arg(name)
  local v = ngx.var["arg_" .. name]
  return v and ngx.unescape_uri(v) or nil
end

function _M.client(extra)
  local ep = arg("ep")
  local key = table.concat({ ep, arg("transport") or "", arg("verify") or "", extra and json.encode(extra) or "" }, "|")
  local sp = clients[key]
  if sp then return sp end
  local cfg = { env = false, endpoint = ep, lwa_endpoint = ep .. "/auth/o2/token",
    client_id = "amzn1.application-oa2-client.openresty", client_secret = "openresty-secret",
    refresh_token = "Atzr|openresty", transport = arg("transport"), rate_scale = 1e6,
    retry_base = 0.05, retry_cap = 0.2 }
  if arg("verify") == "0" then cfg.verify = false end
  for k, v in pairs(extra or {}) do cfg[k] = v end
  sp = assert(spapi.client(cfg))
  clients[key] = sp
  return sp
end

local function now()
  ngx.update_time()
  return ngx.now()
end

local function reply(t)
  ngx.header["Content-Type"] = "application/json"
  ngx.say(json.encode(t))
end
_M.reply = reply

local function failure(err)
  return { ok = false, kind = err.kind, code = err.code, message = tostring(err.message) }
end

--- /features: one getFeatures call, with when it started and ended (ngx.now)
--- and which worker ran it.
function _M.features()
  local sp = _M.client()
  local t0 = now()
  local body, err = sp.fulfillment_outbound.getFeatures{ marketplaceId = "ATVPDKIKX0DER" }
  local out = body and { ok = true, features = #body.payload.features } or failure(err)
  out.t0, out.t1, out.pid, out.transport = t0, now(), ngx.worker.pid(), sp.transport.name
  out.stats = sp.transport.stats and sp.transport:stats() or nil
  reply(out)
end

--- /ping: when it was answered, by which worker
function _M.ping()
  reply{ pong = true, t = now(), pid = ngx.worker.pid() }
end

--- /failure?op=...: one call with no retries → the error's kind and message
function _M.failure()
  local sp = _M.client{ max_retries = 0, timeout = tonumber(arg("timeout")) or 30 }
  local body, err = sp.fulfillment_outbound.getFeatures{ marketplaceId = "ATVPDKIKX0DER" }
  reply(body and { ok = true } or failure(err))
end

--- /flow: a fresh client does LWA, an RDT-guarded call, a feed document
--- upload and a gzip'd report download, all through its transport; answers
--- what it got and the transport's request count. ?doc=URL also downloads that
--- (gzip'd) document.
function _M.flow()
  local ep = arg("ep")
  local sp = assert(spapi.client{ env = false, endpoint = ep, lwa_endpoint = ep .. "/auth/o2/token",
    client_id = "amzn1.application-oa2-client.flow", client_secret = "flow-secret",
    refresh_token = "Atzr|openresty", transport = arg("transport"),
    rate_scale = 1e6, retry_base = 0.05 })
  local out = { transport = sp.transport.name }
  local function step(name, ok, err)
    out[name] = ok and true or tostring(err)
    return ok
  end
  local t = os.time()
  local orders, err = sp.vendor_df_orders.getOrders{ createdAfter = t - 86400, createdBefore = t, status = "NEW" }
  step("rdt_call", orders, err)
  local ct = "text/tab-separated-values; charset=UTF-8"
  local doc
  doc, err = sp.feeds.createFeedDocument{ body = { contentType = ct } }
  if step("feed_document", doc, err) then
    step("upload", sp:upload_document(doc, "sku\tquantity\nNGX-1\t3\n", ct))
  end
  local report
  report, err = sp.reports.createReport{ body = { reportType = "GET_MERCHANT_LISTINGS_ALL_DATA",
    marketplaceIds = { "ATVPDKIKX0DER" } } }
  out.report_id = report and report.reportId
  step("create_report", report, err)
  out.requests = sp.transport:stats().requests
  reply(out)
end

--- /report?id=: the report's document, downloaded (and gunzipped) through the transport
function _M.report()
  local sp = _M.client()
  local r, err = sp.reports.getReport{ reportId = arg("id") }
  if not r then return reply(failure(err)) end
  if r.processingStatus ~= "DONE" then return reply{ ok = false, status = r.processingStatus } end
  local meta
  meta, err = sp.reports.getReportDocument{ reportDocumentId = r.reportDocumentId }
  if not meta then return reply(failure(err)) end
  local text
  text, err = sp:download_document(meta)
  if not text then return reply(failure(err)) end
  reply{ ok = true, compression = meta.compressionAlgorithm, text = text }
end

--- /download?url=: a document at url, declared GZIP
function _M.download()
  local sp = _M.client()
  local text, err = sp:download_document{ url = arg("url"), compressionAlgorithm = arg("gzip") and "GZIP" or nil }
  if not text then return reply(failure(err)) end
  reply{ ok = true, text = text, stats = sp.transport:stats() }
end

--- /chunked: a gzip'd document sent in chunks (chunked transfer coding)
function _M.chunked()
  local core = require "spapi.core"
  local gz = core.gzip(_M.CHUNKED_TEXT)
  ngx.header["Content-Type"] = "application/octet-stream"
  local step = math.ceil(#gz / 4)
  for i = 1, #gz, step do
    ngx.print(gz:sub(i, i + step - 1))
    ngx.flush(true)
  end
end
_M.CHUNKED_TEXT = string.rep("sku\tquantity\nCHUNK-1\t12\n", 500)

--- A call from nginx phase `phase` (a client with the default transport),
--- recorded in the lua_shared_dict "phases" as { raised, ok, message }.
--- → the record's JSON
function _M.in_phase(phase, ep)
  local sp = assert(spapi.client{ env = false, endpoint = ep, lwa_endpoint = ep .. "/auth/o2/token",
    client_id = "amzn1.application-oa2-client.phase", client_secret = "phase-secret",
    refresh_token = "Atzr|phase", max_retries = 0 })
  local ok, body, err = pcall(sp.fulfillment_outbound.getFeatures, { marketplaceId = "ATVPDKIKX0DER" })
  local rec = { phase = phase, transport = sp.transport.name, raised = not ok }
  if not ok then rec.message = tostring(body) else rec.ok, rec.message = body ~= nil, err and tostring(err) end
  local s = json.encode(rec)
  ngx.shared.phases:add(phase, s) -- (the body filter runs once per chunk: the first is kept)
  return s
end

--- /phases: what in_phase recorded, by phase
function _M.phases()
  local out = {}
  for _, k in ipairs(ngx.shared.phases:get_keys(0)) do out[k] = json.decode(ngx.shared.phases:get(k)) end
  reply(out)
end

--- /batch?n=: n getFeatures calls through client:batch; how long it took and
--- how long one call took just before
function _M.batch()
  local sp = _M.client()
  local t0 = now()
  local one, err = sp.fulfillment_outbound.getFeatures{ marketplaceId = "ATVPDKIKX0DER" }
  if not one then return reply(failure(err)) end
  local t1 = now()
  local list = {}
  for i = 1, tonumber(arg("n")) do list[i] = { "fulfillment_outbound.getFeatures", { marketplaceId = "ATVPDKIKX0DER" } } end
  local results = sp:batch(list, { concurrency = 32 })
  local t2 = now()
  local ok = 0
  for _, r in ipairs(results) do
    if r.ok and #r.body.payload.features == 3 then ok = ok + 1 end
  end
  reply{ ok = ok, one = t1 - t0, all = t2 - t1 }
end

return _M
