-- Sandbox program: Supply Sources API 2020-07-01 (Multi-Location Inventory).
--
-- State: kind "supply_source", id = supplySourceId, doc = the SupplySource as the
-- API returns it (supplySourceId, supplySourceCode, alias, status, address,
-- configuration, capabilities, createdAt, updatedAt).
--
-- Behaviour (what a client sees):
-- * createSupplySource needs supplySourceCode, alias and an address (name,
--   addressLine1, countryCode, stateOrRegion). Codes are unique for ever
--   (InvalidInput, details "1004"); aliases are unique among the supply sources
--   that are not archived. A new supply source starts "Inactive": activate it
--   with updateSupplySourceStatus before putting a quantity on it.
-- * getSupplySources lists the supply sources that are not archived, oldest
--   first, pageSize 1..50 (default 10), with an opaque nextPageToken.
-- * updateSupplySource / updateSupplySourceStatus / archiveSupplySource answer
--   204 without a body. An archived supply source cannot be modified
--   (InvalidInput, details "1005"); archiving cannot be undone.
-- * The seller's default location is seeded (Active), as MLI does when an
--   account is enabled.
--
-- Other programs use _M.resolve(sb, code) to turn a fulfillment channel code
-- (a supplySourceId, supplySourceCode or alias) into the supply source.
local _M = {}

local type, tostring, tonumber, ipairs = type, tostring, tonumber, ipairs
local fmt, floor = string.format, math.floor

local KIND = "supply_source"
_M.KIND = KIND

local STATUSES = { Active = true, Inactive = true }
local TIME_UNITS = { Hours = true, Minutes = true, Days = true }

local function bad(sb, message, details)
  return sb.err(400, "InvalidInput", message, details)
end

local function is_null(sb, v)
  return v == nil or (sb.json and v == sb.json.null)
end

local function nonempty_string(v)
  return type(v) == "string" and v:match("%S") ~= nil
end

-- A deterministic, unique UUID-shaped id: the counter is the last group, the
-- other groups are a hash of it so ids do not look sequential.
local function new_id(sb)
  local raw = sb.state.next_id("ss")
  local n = tonumber(tostring(raw):match("(%d+)$")) or 0
  local h = (n * 2654435761 + 97531) % 4294967296
  local h2 = (h * 40503 + n) % 4294967296
  return fmt("%08x-%04x-4%03x-%04x-%012x", h, floor(h2 / 65536), h2 % 4096,
    0x8000 + (h % 0x4000), n)
end

local function all(sb)
  return sb.state.list(KIND) or {}
end

--- Find a supply source by id, code or alias (id first, then code, then the
-- alias of a supply source that is not archived, else of an archived one).
-- Returns the doc or nil.
function _M.resolve(sb, code)
  if type(code) ~= "string" or code == "" then return nil end
  local doc = sb.state.get(KIND, code)
  if doc then return doc end
  local by_alias, archived_alias
  for _, s in ipairs(all(sb)) do
    if s.supplySourceCode == code then return s end
    if s.alias == code then
      if s.status ~= "Archived" then
        by_alias = by_alias or s
      else
        archived_alias = s -- the latest archived one, if no live one has the alias
      end
    end
  end
  return by_alias or archived_alias
end

local function alias_taken(sb, alias, except_id)
  for _, s in ipairs(all(sb)) do
    if s.alias == alias and s.status ~= "Archived" and s.supplySourceId ~= except_id then
      return true
    end
  end
  return false
end

local function code_taken(sb, code)
  for _, s in ipairs(all(sb)) do
    if s.supplySourceCode == code then return true end
  end
  return false
end

-- light validation of the nested configuration objects; returns an error message or nil
local function check_duration(d, where)
  if type(d) ~= "table" then return where .. " must be an object" end
  if d.value ~= nil and (type(d.value) ~= "number" or d.value < 0 or d.value ~= floor(d.value)) then
    return where .. ".value must be a non-negative integer"
  end
  if d.timeUnit ~= nil and not TIME_UNITS[d.timeUnit] then
    return where .. ".timeUnit must be one of Hours, Minutes, Days"
  end
  return nil
end

local function check_hhmm(v)
  if type(v) ~= "string" then return false end
  local h, m = v:match("^(%d%d?):(%d%d)$")
  h, m = tonumber(h), tonumber(m)
  return h ~= nil and h <= 24 and m <= 59
end

local DAYS = { "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday" }

local function check_operational(oc, where)
  if type(oc) ~= "table" then return where .. " must be an object" end
  if oc.handlingTime ~= nil then
    local e = check_duration(oc.handlingTime, where .. ".handlingTime")
    if e then return e end
  end
  local tc = oc.throughputConfig
  if tc ~= nil then
    if type(tc) ~= "table" then return where .. ".throughputConfig must be an object" end
    if tc.throughputCap ~= nil then
      local e = check_duration(tc.throughputCap, where .. ".throughputConfig.throughputCap")
      if e then return e end
    end
  end
  local cd = oc.contactDetails
  if type(cd) == "table" and type(cd.primary) == "table" and cd.primary.email ~= nil then
    local email = cd.primary.email
    if type(email) ~= "string" or not email:match("^[%w_%-%.]+@[%w_%-%.]+%.%a%a+$") then
      return where .. ".contactDetails.primary.email is not a valid email address"
    end
  end
  local oh = oc.operatingHoursByDay
  if oh ~= nil then
    if type(oh) ~= "table" then return where .. ".operatingHoursByDay must be an object" end
    for _, day in ipairs(DAYS) do
      local hours = oh[day]
      if hours ~= nil then
        if type(hours) ~= "table" then return where .. ".operatingHoursByDay." .. day .. " must be an array" end
        for i, h in ipairs(hours) do
          if type(h) ~= "table" or not check_hhmm(h.startTime) or not check_hhmm(h.endTime) then
            return fmt("%s.operatingHoursByDay.%s[%d] needs startTime and endTime as HH:mm", where, day, i)
          end
        end
      end
    end
  end
  return nil
end

local function check_configuration(c)
  if type(c) ~= "table" then return "configuration must be an object" end
  if c.operationalConfiguration ~= nil then
    local e = check_operational(c.operationalConfiguration, "configuration.operationalConfiguration")
    if e then return e end
  end
  if c.timezone ~= nil and type(c.timezone) ~= "string" then return "configuration.timezone must be a string" end
  return nil
end

local function check_capabilities(c)
  if type(c) ~= "table" then return "capabilities must be an object" end
  for _, k in ipairs({ "outbound", "services" }) do
    local cap = c[k]
    if cap ~= nil then
      if type(cap) ~= "table" then return "capabilities." .. k .. " must be an object" end
      if cap.isSupported ~= nil and type(cap.isSupported) ~= "boolean" then
        return "capabilities." .. k .. ".isSupported must be a boolean"
      end
      if cap.operationalConfiguration ~= nil then
        local e = check_operational(cap.operationalConfiguration, "capabilities." .. k .. ".operationalConfiguration")
        if e then return e end
      end
    end
  end
  local out = c.outbound
  if type(out) == "table" and type(out.pickupChannel) == "table" and out.pickupChannel.inventoryHoldPeriod ~= nil then
    local e = check_duration(out.pickupChannel.inventoryHoldPeriod, "capabilities.outbound.pickupChannel.inventoryHoldPeriod")
    if e then return e end
  end
  return nil
end

local ADDRESS_REQUIRED = { "name", "addressLine1", "countryCode", "stateOrRegion" }
local ADDRESS_FIELDS = { "name", "addressLine1", "addressLine2", "addressLine3", "city", "county",
  "district", "stateOrRegion", "postalCode", "countryCode", "phone" }

local function check_address(a)
  if type(a) ~= "table" then return "address is required" end
  for _, k in ipairs(ADDRESS_REQUIRED) do
    if not nonempty_string(a[k]) then return "address." .. k .. " is required" end
  end
  for _, k in ipairs(ADDRESS_FIELDS) do
    if a[k] ~= nil and type(a[k]) ~= "string" then return "address." .. k .. " must be a string" end
  end
  if not a.countryCode:match("^%u%u$") then return "address.countryCode must be a two-letter ISO 3166 code" end
  return nil
end

local function copy_address(a)
  local out = {}
  for _, k in ipairs(ADDRESS_FIELDS) do out[k] = a[k] end
  return out
end

local function create(sb, fields)
  local now = sb.iso(sb.now())
  local id = fields.supplySourceId or new_id(sb)
  local doc = {
    supplySourceId = id,
    supplySourceCode = fields.supplySourceCode,
    alias = fields.alias,
    status = fields.status or "Inactive",
    address = copy_address(fields.address),
    configuration = fields.configuration,
    capabilities = fields.capabilities,
    createdAt = now,
    updatedAt = now,
  }
  sb.state.put(KIND, id, doc)
  return doc
end

local function load(sb, req)
  local id = req.params and req.params.supplySourceId
  if not nonempty_string(id) then return nil, bad(sb, "Invalid Input", "supplySourceId is required") end
  local doc = sb.state.get(KIND, id)
  if not doc then
    return nil, sb.err(404, "NotFound", "Supply source not found", "no supply source with id " .. id)
  end
  return doc
end

local ARCHIVED_MSG, ARCHIVED_DETAILS = "Supply Source has been archived and cannot be modified.", "1005"

local function page_token(offset) return fmt("ss1.%d", offset) end
local function parse_token(t)
  local n = type(t) == "string" and t:match("^ss1%.(%d+)$")
  return n and tonumber(n)
end

_M.handlers = {}

function _M.handlers.getSupplySources(req, sb)
  local q = req.query or {}
  local size = 10
  if q.pageSize ~= nil and q.pageSize ~= "" then
    size = tonumber(q.pageSize)
    if not size or size ~= floor(size) or size < 1 or size > 50 then
      return bad(sb, "Invalid Input", "pageSize must be an integer from 1 to 50")
    end
  end
  local offset = 0
  if q.nextPageToken ~= nil and q.nextPageToken ~= "" then
    offset = parse_token(q.nextPageToken)
    if not offset then return bad(sb, "Invalid Input", "nextPageToken is not valid") end
  end
  local live = {}
  for _, s in ipairs(all(sb)) do
    if s.status ~= "Archived" then live[#live + 1] = s end
  end
  local items = {}
  for i = offset + 1, math.min(offset + size, #live) do
    local s = live[i]
    items[#items + 1] = { supplySourceId = s.supplySourceId, supplySourceCode = s.supplySourceCode,
      alias = s.alias, address = s.address }
  end
  local body = { supplySources = sb.json.array(items) }
  if offset + size < #live then body.nextPageToken = page_token(offset + size) end
  return 200, body
end

function _M.handlers.createSupplySource(req, sb)
  local b = req.body
  if type(b) ~= "table" then return bad(sb, "Invalid Input", "a JSON request body is required") end
  if not nonempty_string(b.supplySourceCode) then return bad(sb, "Invalid Input", "supplySourceCode is required") end
  if not nonempty_string(b.alias) then return bad(sb, "Invalid Input", "alias is required") end
  local e = check_address(b.address)
  if e then return bad(sb, "Invalid Input", e) end
  if code_taken(sb, b.supplySourceCode) then
    return bad(sb, "Supply Source with given Code already exists", "1004")
  end
  if alias_taken(sb, b.alias) then
    return bad(sb, "Supply Source with given alias already exists", "1004")
  end
  local doc = create(sb, { supplySourceCode = b.supplySourceCode, alias = b.alias, address = b.address })
  return 200, { supplySourceId = doc.supplySourceId, supplySourceCode = doc.supplySourceCode }
end

function _M.handlers.getSupplySource(req, sb)
  local doc, status, body = load(sb, req)
  if not doc then return status, body end
  return 200, doc
end

function _M.handlers.updateSupplySource(req, sb)
  local doc, status, body = load(sb, req)
  if not doc then return status, body end
  if doc.status == "Archived" then return bad(sb, ARCHIVED_MSG, ARCHIVED_DETAILS) end
  local b = req.body
  if b == nil or is_null(sb, b) then b = {} end
  if type(b) ~= "table" then return bad(sb, "Invalid Input", "the request body must be a JSON object") end
  if b.alias ~= nil then
    if not nonempty_string(b.alias) then return bad(sb, "Invalid Input", "alias must be a non-empty string") end
    if alias_taken(sb, b.alias, doc.supplySourceId) then
      return bad(sb, "Supply Source with given alias already exists", "1004")
    end
  end
  if b.configuration ~= nil then
    local e = check_configuration(b.configuration)
    if e then return bad(sb, "Invalid Input", e) end
  end
  if b.capabilities ~= nil then
    local e = check_capabilities(b.capabilities)
    if e then return bad(sb, "Invalid Input", e) end
  end
  if b.alias ~= nil then doc.alias = b.alias end
  if b.configuration ~= nil then doc.configuration = b.configuration end
  if b.capabilities ~= nil then doc.capabilities = b.capabilities end
  doc.updatedAt = sb.iso(sb.now())
  sb.state.put(KIND, doc.supplySourceId, doc)
  return 204, nil
end

function _M.handlers.archiveSupplySource(req, sb)
  local doc, status, body = load(sb, req)
  if not doc then return status, body end
  if doc.status == "Archived" then return bad(sb, ARCHIVED_MSG, ARCHIVED_DETAILS) end
  doc.status = "Archived"
  doc.updatedAt = sb.iso(sb.now())
  sb.state.put(KIND, doc.supplySourceId, doc)
  return 204, nil
end

function _M.handlers.updateSupplySourceStatus(req, sb)
  local doc, status, body = load(sb, req)
  if not doc then return status, body end
  local b = req.body
  local st = type(b) == "table" and b.status or nil
  if not STATUSES[st] then
    return bad(sb, "Invalid Input", "status must be Active or Inactive")
  end
  if doc.status == "Archived" then return bad(sb, ARCHIVED_MSG, ARCHIVED_DETAILS) end
  if doc.status ~= st then
    doc.status = st
    doc.updatedAt = sb.iso(sb.now())
    sb.state.put(KIND, doc.supplySourceId, doc)
  end
  return 204, nil
end

-- The seller's default location, added as a supply source when MLI is enabled.
_M.DEFAULT_LOCATION = {
  supplySourceId = "5a5b8e5c-0d1e-4f00-9000-00000000d3f7",
  supplySourceCode = "default-location",
  alias = "Default Location",
  status = "Active",
  address = { name = "Default Location", addressLine1 = "410 Terry Ave N", city = "Seattle",
    stateOrRegion = "WA", postalCode = "98109", countryCode = "US" },
}

function _M.seed(sb)
  if not sb.state.get(KIND, _M.DEFAULT_LOCATION.supplySourceId) then
    create(sb, _M.DEFAULT_LOCATION)
  end
end

-- POST /_sandbox/programs/supply_sources/<action>
--   list {includeArchived=true}: every supply source with its status.
--   seed {supplySources=[{supplySourceCode, alias, address, status="Active"}]}: add supply
--     sources (also reached through POST /_sandbox/seed); answers their ids. Idempotent:
--     a supply source with the same code and alias is left as it is.
function _M.control(sb, action, args)
  if action == "seed" then
    local list = type(args) == "table" and args.supplySources
    if type(list) ~= "table" then return sb.err(404, "NotFound", "no supplySources in the seed data") end
    local ids = {}
    for i, s in ipairs(list) do
      if type(s) ~= "table" or not nonempty_string(s.supplySourceCode) or not nonempty_string(s.alias) then
        return bad(sb, "Invalid Input", fmt("supplySources[%d] needs supplySourceCode and alias", i))
      end
      local e = check_address(s.address)
      if e then return bad(sb, "Invalid Input", fmt("supplySources[%d]: %s", i, e)) end
      if s.status ~= nil and not STATUSES[s.status] then
        return bad(sb, "Invalid Input", fmt("supplySources[%d].status must be Active or Inactive", i))
      end
      local existing = _M.resolve(sb, s.supplySourceCode)
      if existing and existing.supplySourceCode == s.supplySourceCode and existing.alias == s.alias then
        ids[i] = existing.supplySourceId -- seeding the same data twice is harmless
      elseif code_taken(sb, s.supplySourceCode) or alias_taken(sb, s.alias) then
        return bad(sb, "Invalid Input", fmt("supplySources[%d]: code or alias already exists", i), "1004")
      else
        ids[i] = create(sb, { supplySourceCode = s.supplySourceCode, alias = s.alias, address = s.address,
          status = s.status or "Active", configuration = s.configuration, capabilities = s.capabilities }).supplySourceId
      end
    end
    return 200, { supplySourceIds = sb.json.array(ids) }
  end
  if action == "list" then
    local out = {}
    for _, s in ipairs(all(sb)) do
      if s.status ~= "Archived" or (type(args) == "table" and args.includeArchived) then out[#out + 1] = s end
    end
    return 200, { supplySources = sb.json.array(out) }
  end
  return sb.err(404, "NotFound", "unknown supply_sources control action: " .. tostring(action))
end

_M._new_id = new_id

return _M
