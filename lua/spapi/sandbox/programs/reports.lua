-- Reports 2021-06-30: createReport → IN_QUEUE → IN_PROGRESS (+30 s) → DONE (+60 s,
-- sandbox clock) with a generated, gzip-compressed document served under
-- /_documents/. Report types with inventory or MCF data are filled from the
-- sandbox state; any other type gets a small tab-separated placeholder.
local _M = {}

local KIND = "report"
local T_PROGRESS, T_DONE = 30, 60
local PERIODS = { PT5M = 300, PT15M = 900, PT30M = 1800, PT1H = 3600, PT2H = 7200, PT4H = 14400, PT8H = 28800,
  PT12H = 43200, P1D = 86400, P2D = 172800, P3D = 259200, PT84H = 302400, P7D = 604800, P14D = 1209600,
  P15D = 1296000, P18D = 1555200, P30D = 2592000, P1M = 2592000 }

local function content_for(sb, report)
  local rows
  local t = report.reportType
  if t:find("INVENTORY") or t:find("MYI") or t == "GET_AFN_INVENTORY_DATA" then
    rows = { "sku\tfnsku\tasin\tproduct-name\tcondition\tafn-fulfillable-quantity\tafn-reserved-quantity" }
    for _, it in ipairs(sb.state.list("fba_inventory")) do
      rows[#rows + 1] = table.concat({ it.sellerSku, it.fnSku, it.asin, it.productName, it.condition,
        tostring(it.fulfillable), tostring(it.reserved) }, "\t")
    end
  elseif t:find("FULFILLED_SHIPMENTS") or t:find("MCF") then
    rows = { "merchant-order-id\tshipment-id\tsku\tquantity-shipped\tcarrier\ttracking-number" }
    for _, o in ipairs(sb.state.list("mcf_order")) do
      if o.sp == report.sp and o.settled then
        for _, it in ipairs(o.items) do
          rows[#rows + 1] = table.concat({ o.request.sellerFulfillmentOrderId, o.shipment_id, it.sellerSku,
            tostring(it.granted), o.carrier, string.format("TBA%012d", 300000000000 + o.package) }, "\t")
        end
      end
    end
  else
    rows = { "report-type\tmarketplace-ids\tgenerated", table.concat({ t, table.concat(report.marketplaceIds, ","),
      sb.iso(sb.now()) }, "\t") }
  end
  return table.concat(rows, "\n") .. "\n"
end

-- Lazy progress: returns the report as of now (creating its document once DONE).
local function advance(sb, report)
  if report.processingStatus == "CANCELLED" or report.processingStatus == "DONE" then return report end
  local e = sb.now() - report.created
  if e >= T_DONE then
    return sb.state.update(KIND, report.reportId, function(r)
      if r.processingStatus ~= "IN_QUEUE" and r.processingStatus ~= "IN_PROGRESS" then return nil end
      local doc_id = sb.documents.put(content_for(sb, r), "text/tab-separated-values; charset=UTF-8", { compress = true })
      r.processingStatus = "DONE"
      r.reportDocumentId = doc_id
      r.processingStartTime = r.created + T_PROGRESS
      r.processingEndTime = r.created + T_DONE
      return r
    end)
  elseif e >= T_PROGRESS then
    report.processingStatus = "IN_PROGRESS"
    report.processingStartTime = report.created + T_PROGRESS
  end
  return report
end

local function view(sb, r)
  return {
    reportId = r.reportId, reportType = r.reportType, marketplaceIds = sb.json.array(r.marketplaceIds),
    dataStartTime = r.dataStartTime, dataEndTime = r.dataEndTime, reportScheduleId = r.reportScheduleId,
    createdTime = sb.iso(r.created), processingStatus = r.processingStatus,
    processingStartTime = r.processingStartTime and sb.iso(r.processingStartTime) or nil,
    processingEndTime = r.processingEndTime and sb.iso(r.processingEndTime) or nil,
    reportDocumentId = r.reportDocumentId,
  }
end

local function mine(req, r) return r and r.sp == req.selling_partner and r or nil end

local function csv(req, name)
  local out, n = {}, 0
  for _, v in ipairs(req.query_all[name] or {}) do
    for x in v:gmatch("[^,]+") do out[x] = true n = n + 1 end
  end
  return n > 0 and out or nil
end

_M.handlers = {}

function _M.handlers.createReport(req, sb)
  local b = req.body or {}
  if type(b.reportType) ~= "string" or b.reportType == "" then
    return sb.err(400, "InvalidInput", "reportType is required.")
  end
  if type(b.marketplaceIds) ~= "table" or #b.marketplaceIds == 0 then
    return sb.err(400, "InvalidInput", "marketplaceIds is required.")
  end
  for _, f in ipairs({ "dataStartTime", "dataEndTime" }) do
    if b[f] ~= nil and not sb.parse_iso(b[f]) then
      return sb.err(400, "InvalidInput", f .. " must be an ISO-8601 date-time.")
    end
  end
  local id = tostring(50000000000 + sb.state.incr("report_id", 1))
  sb.state.put(KIND, id, { reportId = id, sp = req.selling_partner, reportType = b.reportType,
    marketplaceIds = b.marketplaceIds, dataStartTime = b.dataStartTime, dataEndTime = b.dataEndTime,
    reportOptions = b.reportOptions, created = sb.now(), processingStatus = "IN_QUEUE" })
  return 202, { reportId = id }
end

function _M.handlers.getReport(req, sb)
  local r = mine(req, sb.state.get(KIND, req.params.reportId))
  if not r then return sb.err(404, "NotFound", "Report " .. req.params.reportId .. " not found.") end
  return 200, view(sb, advance(sb, r))
end

function _M.handlers.cancelReport(req, sb)
  local id = req.params.reportId
  local r = mine(req, sb.state.get(KIND, id))
  if not r then return sb.err(404, "NotFound", "Report " .. id .. " not found.") end
  r = advance(sb, r)
  if r.processingStatus ~= "IN_QUEUE" then
    return sb.err(400, "InvalidInput", "Only reports in IN_QUEUE can be cancelled; report " .. id .. " is "
      .. r.processingStatus .. ".")
  end
  sb.state.update(KIND, id, function(x) x.processingStatus = "CANCELLED" return x end)
  return 200, {}
end

function _M.handlers.getReports(req, sb)
  local q = req.query
  local start = 1
  local types, statuses, mps = csv(req, "reportTypes"), csv(req, "processingStatuses"), csv(req, "marketplaceIds")
  if q.nextToken and q.nextToken ~= "" then
    start = tonumber((sb.unb64(q.nextToken) or ""):match("^rep:(%d+)$"))
    if not start then return sb.err(400, "InvalidInput", "Invalid nextToken.") end
  elseif not types then
    return sb.err(400, "InvalidInput", "reportTypes or nextToken is required.")
  end
  local size = tonumber(q.pageSize) or 10
  if size < 1 or size > 100 then return sb.err(400, "InvalidInput", "pageSize must be 1..100.") end
  local since = q.createdSince and sb.parse_iso(q.createdSince) or (sb.now() - 90 * 86400)
  local untl = q.createdUntil and sb.parse_iso(q.createdUntil) or math.huge
  local all = {}
  for _, r in ipairs(sb.state.list(KIND)) do
    if r.sp == req.selling_partner then
      r = advance(sb, r)
      local mp_ok = not mps
      for _, m in ipairs(r.marketplaceIds) do if mps and mps[m] then mp_ok = true end end
      if (not types or types[r.reportType]) and (not statuses or statuses[r.processingStatus]) and mp_ok
        and r.created >= since and r.created <= untl then
        all[#all + 1] = r
      end
    end
  end
  local list = sb.json.array()
  for i = start, math.min(#all, start + size - 1) do list[#list + 1] = view(sb, all[i]) end
  local body = { reports = list }
  if start + size <= #all then body.nextToken = sb.b64("rep:" .. (start + size)) end
  return 200, body
end

function _M.handlers.getReportDocument(req, sb)
  local id = req.params.reportDocumentId
  local owner
  for _, r in ipairs(sb.state.list(KIND)) do
    if r.reportDocumentId == id and r.sp == req.selling_partner then owner = r end
  end
  local doc = owner and sb.documents.get(id)
  if not doc then return sb.err(404, "NotFound", "Report document " .. id .. " not found.") end
  return 200, { reportDocumentId = id, url = sb.url("/_documents/" .. id), compressionAlgorithm = doc.compressed }
end

-- Schedules (stored only; the sandbox does not create scheduled reports) ------
function _M.handlers.createReportSchedule(req, sb)
  local b = req.body or {}
  if type(b.reportType) ~= "string" or type(b.marketplaceIds) ~= "table" or not PERIODS[b.period or ""] then
    return sb.err(400, "InvalidInput", "reportType, marketplaceIds and a valid period are required.")
  end
  for _, s in ipairs(sb.state.list("report_schedule")) do
    if s.sp == req.selling_partner and s.reportType == b.reportType then
      sb.state.delete("report_schedule", s.reportScheduleId)
    end
  end
  local id = tostring(60000000000 + sb.state.incr("report_schedule_id", 1))
  local nxt = b.nextReportCreationTime and sb.parse_iso(b.nextReportCreationTime) or (sb.now() + PERIODS[b.period])
  sb.state.put("report_schedule", id, { reportScheduleId = id, sp = req.selling_partner, reportType = b.reportType,
    marketplaceIds = b.marketplaceIds, reportOptions = b.reportOptions, period = b.period, next = nxt })
  return 201, { reportScheduleId = id }
end

local function schedule_view(sb, s)
  return { reportScheduleId = s.reportScheduleId, reportType = s.reportType,
    marketplaceIds = sb.json.array(s.marketplaceIds), reportOptions = s.reportOptions, period = s.period,
    nextReportCreationTime = sb.iso(s.next) }
end

function _M.handlers.getReportSchedules(req, sb)
  local types = csv(req, "reportTypes") or {}
  local list = sb.json.array()
  for _, s in ipairs(sb.state.list("report_schedule")) do
    if s.sp == req.selling_partner and types[s.reportType] then list[#list + 1] = schedule_view(sb, s) end
  end
  return 200, { reportSchedules = list }
end

function _M.handlers.getReportSchedule(req, sb)
  local s = mine(req, sb.state.get("report_schedule", req.params.reportScheduleId))
  if not s then return sb.err(404, "NotFound", "Report schedule " .. req.params.reportScheduleId .. " not found.") end
  return 200, schedule_view(sb, s)
end

function _M.handlers.cancelReportSchedule(req, sb)
  local s = mine(req, sb.state.get("report_schedule", req.params.reportScheduleId))
  if not s then return sb.err(404, "NotFound", "Report schedule " .. req.params.reportScheduleId .. " not found.") end
  sb.state.delete("report_schedule", s.reportScheduleId)
  return 200, {}
end

return _M
