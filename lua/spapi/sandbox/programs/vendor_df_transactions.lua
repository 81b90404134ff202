-- Vendor Direct Fulfillment Transactions 2021-12-28 (getTransactionStatus),
-- plus the small library every DF program of the sandbox shares: transaction
-- records, ids, ISO/list-parameter parsing, paging and label payloads.
--
-- A DF submit operation (acknowledgements, shipment confirmations, invoices,
-- inventory, label requests) validates its payload when it is received and
-- stores a transaction whose outcome is fixed at that moment; the outcome is
-- only revealed after _M.DELAY seconds of sandbox time (status "Processing"
-- before).  State changes caused by a successful transaction are stored as
-- transitions stamped with that same ready time, so every reader sees them
-- appear exactly when the transaction turns "Success" - no timers involved.
local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local floor = math.floor
local format, byte = string.format, string.byte
local ngx = ngx -- luacheck: ignore (nil outside nginx)

local _M = {}
local L = {}
_M.lib = L

L.DELAY = 30            -- sandbox seconds a DF transaction stays "Processing"
L.TXN = "vdf_txn"       -- state kind of DF transactions
L.PNG = "\137PNG\013\010\026\010\000\000\000\013IHDR\000\000\000\008\000\000\000\012\001\000\000\000\000w\229\1930\000\000\000\019IDATx\218c\096\096\168\131B\0398\171\142\129\001\0008\028\004\177\221\233\1853\000\000\000\000IEND\174B\096\130"

-- 32 hex characters derived from s (MD5 inside nginx, a simple mix elsewhere)
function L.hex(s)
  if ngx and ngx.md5 then return ngx.md5(s) end
  local out = {}
  for k = 1, 4 do
    local h = 2166136261 + k * 7919
    for i = 1, #s do h = (h * 31 + byte(s, i) + k) % 4294967296 end
    out[k] = format("%08x", h)
  end
  return table.concat(out)
end

function L.uuid(sb, salt)
  local n = sb.state.incr("vdf_uuid_seq", 1)
  local h = L.hex(tostring(salt) .. ":" .. tostring(n) .. ":" .. tostring(sb.now()))
  local v = ("89ab"):sub(n % 4 + 1, n % 4 + 1)
  return h:sub(1, 8) .. "-" .. h:sub(9, 12) .. "-4" .. h:sub(14, 16) .. "-" .. v
    .. h:sub(18, 20) .. "-" .. h:sub(21, 32)
end

-- Amazon's DF transaction ids look like 20190108091302-6ca0ac50-d06e-45f5-a1e2-eb448eadac50
function L.txn_id(sb, salt)
  local stamp = sb.iso(sb.now()):gsub("%D", ""):sub(1, 14)
  return stamp .. "-" .. L.uuid(sb, salt)
end

function L.b64dec(s)
  if type(s) ~= "string" then return nil end
  if ngx and ngx.decode_base64 then return ngx.decode_base64(s) end
  return nil
end

function L.array(sb, t)
  t = t or {}
  if sb.json and sb.json.array then return sb.json.array(t) end
  return t
end

function L.deepcopy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = L.deepcopy(x) end
  return t
end

function L.is_array(v)
  return type(v) == "table" and #v > 0
end

function L.str(v)
  return type(v) == "string" and v ~= ""
end

-- party: { partyId = "..." }
function L.party_id(v)
  if type(v) == "table" and L.str(v.partyId) then return v.partyId end
  return nil
end

--- Record a DF transaction whose outcome is decided now.
-- errors: array of { code=, message= } (empty/nil = success).  Returns id, ready time.
function L.new_transaction(sb, req, op, errors)
  local id = L.txn_id(sb, op)
  local now = sb.now()
  local t = {
    transactionId = id, operation = op, created = now, ready = now + L.DELAY,
    owner = req and req.selling_partner or nil,
    errors = (errors and #errors > 0) and errors or nil,
  }
  sb.state.put(L.TXN, id, t)
  return id, t.ready
end

--- Parse the common list parameters of DF list operations.
-- Returns p = { after, before, limit, desc, offset, shipFromPartyId } or nil, status, body.
function L.list_params(sb, req, default_limit)
  local q = req.query or {}
  local after = q.createdAfter and sb.parse_iso(q.createdAfter)
  if not after then
    return nil, sb.err(400, "InvalidInput",
      "createdAfter is required and must be an ISO-8601 date-time, got " .. tostring(q.createdAfter))
  end
  local before = q.createdBefore and sb.parse_iso(q.createdBefore)
  if not before then
    return nil, sb.err(400, "InvalidInput",
      "createdBefore is required and must be an ISO-8601 date-time, got " .. tostring(q.createdBefore))
  end
  if after > before then
    return nil, sb.err(400, "InvalidInput", "createdAfter must not be later than createdBefore")
  end
  local limit = default_limit or 50
  if q.limit ~= nil then
    limit = tonumber(q.limit)
    if not limit or limit ~= floor(limit) or limit < 1 or limit > 100 then
      return nil, sb.err(400, "InvalidInput", "limit must be an integer between 1 and 100, got " .. tostring(q.limit))
    end
  end
  local desc = false
  if q.sortOrder ~= nil then
    if q.sortOrder == "DESC" then desc = true
    elseif q.sortOrder ~= "ASC" then
      return nil, sb.err(400, "InvalidInput", "sortOrder must be ASC or DESC, got " .. tostring(q.sortOrder))
    end
  end
  local offset = 0
  if q.nextToken ~= nil then
    local raw = L.b64dec(q.nextToken)
    offset = raw and raw:match("^%d+$") and tonumber(raw)
    if not offset then
      return nil, sb.err(400, "InvalidInput", "nextToken is not valid: " .. tostring(q.nextToken))
    end
  end
  return { after = after, before = before, limit = limit, desc = desc, offset = offset,
           shipFromPartyId = q.shipFromPartyId }
end

--- rows: array of { t = creation time, v = rendered item }; filtered by the caller
-- except for the creation window.  Returns page (array), nextToken or nil.
function L.paginate(sb, rows, p)
  local sel = {}
  for i, r in ipairs(rows) do
    if r.t >= p.after and r.t <= p.before then
      r.i = i
      sel[#sel + 1] = r
    end
  end
  table.sort(sel, function(a, b)
    if a.t == b.t then
      if p.desc then return a.i > b.i end
      return a.i < b.i
    end
    if p.desc then return a.t > b.t end
    return a.t < b.t
  end)
  local page = {}
  for i = p.offset + 1, math.min(#sel, p.offset + p.limit) do page[#page + 1] = sel[i].v end
  local token
  if p.offset + p.limit < #sel then token = sb.b64(format("%010d", p.offset + p.limit)) end
  return page, token
end

--- A tiny but well-formed one-page PDF showing the given text lines.
function L.pdf(lines)
  local text = { "BT /F1 10 Tf 36 400 Td 12 TL" }
  for _, l in ipairs(lines) do
    text[#text + 1] = "(" .. tostring(l):gsub("[()\\]", "\\%0") .. ") '"
  end
  text[#text + 1] = "ET"
  local stream = table.concat(text, "\n")
  local objs = {
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 288 432] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
    "<< /Length " .. #stream .. " >>\nstream\n" .. stream .. "\nendstream",
    "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
  }
  local out, offsets = { "%PDF-1.4\n" }, {}
  local len = #out[1]
  for i, o in ipairs(objs) do
    offsets[i] = len
    local s = i .. " 0 obj\n" .. o .. "\nendobj\n"
    out[#out + 1] = s
    len = len + #s
  end
  local xref = { "xref\n0 " .. (#objs + 1) .. "\n0000000000 65535 f \n" }
  for i = 1, #objs do xref[#xref + 1] = format("%010d 00000 n \n", offsets[i]) end
  out[#out + 1] = table.concat(xref)
  out[#out + 1] = "trailer\n<< /Size " .. (#objs + 1) .. " /Root 1 0 R >>\nstartxref\n" .. len .. "\n%%EOF\n"
  return table.concat(out)
end

-- ZPL II text for a 4x6 label
function L.zpl(lines)
  local out = { "^XA", "^CF0,30" }
  for i, l in ipairs(lines) do
    out[#out + 1] = format("^FO50,%d^FD%s^FS", 40 + i * 40, tostring(l):gsub("[%^~]", ""))
  end
  out[#out + 1] = "^XZ"
  return table.concat(out, "\n")
end

-- Carrier-looking tracking numbers from a counter (UPS style 1Z + 16)
local ALNUM = "0123456789ABCDEFGHJKLMNPRSTUVWXY"
function L.tracking(sb, carrier)
  local n = sb.state.incr("vdf_tracking_seq", 1)
  local h = L.hex("trk:" .. n .. ":" .. tostring(carrier))
  if carrier == "USPS" then
    local d = {}
    for i = 1, 18 do d[i] = tostring(tonumber(h:sub(i, i), 16) % 10) end
    return "9400" .. table.concat(d)
  elseif carrier == "FEDEX" then
    local d = {}
    for i = 1, 12 do d[i] = tostring(tonumber(h:sub(i, i), 16) % 10) end
    return table.concat(d)
  end
  local s = {}
  for i = 1, 16 do
    local x = tonumber(h:sub(i * 2 - 1, i * 2), 16) % #ALNUM + 1
    s[i] = ALNUM:sub(x, x)
  end
  return "1Z" .. table.concat(s)
end

-- Count, per purchase order, what the DF programs receive and accept (shown by
-- /_sandbox/stats as counters[name][po]; see control.lua). `pos` is a list of PO
-- numbers; each is counted once however often the request names it.
function L.count(name, pos)
  if not (ngx and ngx.shared and ngx.shared.spapi_meta) then return end
  local control, seen = require "spapi.sandbox.control", {}
  for _, po in ipairs(pos) do
    if type(po) == "string" and not seen[po] then
      seen[po] = true
      control.count(name, po)
    end
  end
end

-- Wrap a mutating handler so validation and state changes of one request do
-- not interleave with another worker's (sb.state.with_lock when the framework has it).
function L.locked(name, handler)
  return function(req, sb)
    if sb.state.with_lock then return sb.state.with_lock(name, handler, req, sb) end
    return handler(req, sb)
  end
end

-- Status of a DF transaction as the 2021-12-28 Transactions API reports it.
local function transaction_view(sb, t)
  local view = { transactionId = t.transactionId }
  if sb.now() < t.ready then
    view.status = "Processing"
  elseif t.errors then
    view.status = "Failure"
    view.errors = { errors = t.errors }
  else
    view.status = "Success"
  end
  return view
end
L.transaction_view = transaction_view

_M.handlers = {
  getTransactionStatus = function(req, sb)
    local id = req.params.transactionId
    local t = sb.state.get(L.TXN, id)
    if not t or (t.owner ~= nil and t.owner ~= req.selling_partner) then
      -- the model gives this 404 the single Error shape; keep the usual errors array too
      local st, body = sb.err(404, "NotFound", "Transaction " .. tostring(id) .. " does not exist")
      local e = body.errors[1]
      body.code, body.message, body.details = e.code, e.message, e.details
      return st, body
    end
    return 200, { transactionStatus = transaction_view(sb, t) }
  end,
}

return _M
