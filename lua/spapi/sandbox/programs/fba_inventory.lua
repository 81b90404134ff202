-- FBA Inventory v1: getInventorySummaries, plus the sandbox-only
-- createInventoryItem / addInventory / deleteInventoryItem.
-- The inventory (state kind "fba_inventory", keyed by seller SKU) is shared with
-- Fulfillment Outbound, which reserves and ships units from it.
-- Seed data: POST /_sandbox/seed { inventory = { { sku=, quantity=, asin=, fnSku=, productName=, weight= } } }.
local _M = {}

local KIND = "fba_inventory"
local PAGE = 50

local DEFAULT = {
  { sku = "SKU-RED-MUG", quantity = 100, asin = "B0SANDBX01", productName = "Red coffee mug", weight = 0.9 },
  { sku = "SKU-BLUE-MUG", quantity = 50, asin = "B0SANDBX02", productName = "Blue coffee mug", weight = 0.9 },
  { sku = "SKU-TEE-M", quantity = 20, asin = "B0SANDBX03", productName = "T-shirt, size M", weight = 0.4 },
  { sku = "SKU-LOW-STOCK", quantity = 2, asin = "B0SANDBX04", productName = "Almost sold out lamp", weight = 2.5 },
  { sku = "SKU-OUT-OF-STOCK", quantity = 0, asin = "B0SANDBX05", productName = "Sold out kettle", weight = 1.8 },
}

local function fnsku_for(sku, sb)
  local h = ngx.md5(sku):upper():gsub("[^A-Z0-9]", "")
  return "X00" .. h:sub(1, 7)
end

local function record(sb, spec, old)
  local sku = spec.sku or spec.sellerSku
  local item = old or {}
  item.sellerSku = sku
  item.asin = spec.asin or item.asin or ("B0" .. ngx.md5(sku):upper():sub(1, 8))
  item.fnSku = spec.fnSku or item.fnSku or fnsku_for(sku, sb)
  item.productName = spec.productName or item.productName or sku
  item.condition = spec.condition or item.condition or "NewItem"
  item.fulfillable = math.floor(tonumber(spec.quantity or spec.fulfillableQuantity) or item.fulfillable or 0)
  item.reserved = item.reserved or 0
  item.shipped = item.shipped or 0
  item.unfulfillable = tonumber(spec.unfulfillable) or item.unfulfillable or 0
  item.inbound = tonumber(spec.inbound) or item.inbound or 0
  item.weight = tonumber(spec.weight) or item.weight or 0.5
  item.updated = sb.now()
  return item
end

local function put(sb, spec)
  local sku = spec.sku or spec.sellerSku
  sb.state.put(KIND, sku, record(sb, spec, sb.state.get(KIND, sku)))
end

function _M.seed(sb)
  for _, spec in ipairs(DEFAULT) do put(sb, spec) end
end

function _M.get(sb, sku) return sb.state.get(KIND, sku) end

--- Reserve units for an order: lines = { { sku=, quantity= } }, policy "FillOrKill" (all or nothing)
--- or "FillAllAvailable" (what there is). Returns granted = { sku → n } or nil, code, message.
function _M.reserve(sb, lines, policy)
  return sb.state.with_lock(KIND, function()
    local need, items = {}, {}
    for _, l in ipairs(lines) do
      local item = items[l.sku] or sb.state.get(KIND, l.sku)
      if not item then return nil, "InvalidInput", "Invalid SKU: '" .. l.sku .. "' is not in the FBA inventory." end
      items[l.sku] = item
      need[l.sku] = (need[l.sku] or 0) + l.quantity
    end
    local granted = {}
    for sku, n in pairs(need) do
      local have = items[sku].fulfillable
      if have < n and policy ~= "FillAllAvailable" and policy ~= "FillAll" then
        return nil, "InvalidInput", string.format(
          "Not enough fulfillable inventory for SKU '%s': requested %d, available %d.", sku, n, have)
      end
      granted[sku] = math.min(have, n)
    end
    for sku, n in pairs(granted) do
      local item = items[sku]
      item.fulfillable = item.fulfillable - n
      item.reserved = item.reserved + n
      item.updated = sb.now()
      sb.state.put(KIND, sku, item)
    end
    return granted
  end)
end

-- Move reserved units to another bucket of the item: counts = { sku → n }
local function move_reserved(sb, counts, to)
  return sb.state.with_lock(KIND, function()
    for sku, n in pairs(counts) do
      local item = sb.state.get(KIND, sku)
      if item and n > 0 then
        local k = math.min(n, item.reserved)
        item.reserved = item.reserved - k
        item[to] = item[to] + k
        item.updated = sb.now()
        sb.state.put(KIND, sku, item)
      end
    end
  end)
end

--- Give reserved units back (cancelled order): counts = { sku → n }
function _M.release(sb, counts) return move_reserved(sb, counts, "fulfillable") end

--- Reserved units left the building (order shipped): counts = { sku → n }
function _M.ship(sb, counts) return move_reserved(sb, counts, "shipped") end

--- A returned unit reached a fulfillment center: sellable units are fulfillable
--- again, others unfulfillable.
function _M.receive_return(sb, sku, n, sellable)
  return sb.state.with_lock(KIND, function()
    local item = sb.state.get(KIND, sku)
    if not item then return end
    if sellable then item.fulfillable = item.fulfillable + n else item.unfulfillable = item.unfulfillable + n end
    item.updated = sb.now()
    sb.state.put(KIND, sku, item)
  end)
end

local function summary(sb, item, details)
  local s = {
    asin = item.asin, fnSku = item.fnSku, sellerSku = item.sellerSku, condition = item.condition,
    lastUpdatedTime = sb.iso(item.updated), productName = item.productName,
    totalQuantity = item.fulfillable + item.reserved + item.unfulfillable + item.inbound,
    stores = sb.json.array(),
  }
  if details then
    s.inventoryDetails = {
      fulfillableQuantity = item.fulfillable,
      inboundWorkingQuantity = 0,
      inboundShippedQuantity = item.inbound,
      inboundReceivingQuantity = 0,
      reservedQuantity = { totalReservedQuantity = item.reserved, pendingCustomerOrderQuantity = item.reserved,
                           pendingTransshipmentQuantity = 0, fcProcessingQuantity = 0 },
      researchingQuantity = { totalResearchingQuantity = 0, researchingQuantityBreakdown = sb.json.array() },
      unfulfillableQuantity = { totalUnfulfillableQuantity = item.unfulfillable, customerDamagedQuantity = 0,
        warehouseDamagedQuantity = item.unfulfillable, distributorDamagedQuantity = 0, carrierDamagedQuantity = 0,
        defectiveQuantity = 0, expiredQuantity = 0 },
    }
  end
  return s
end

_M.handlers = {}

function _M.handlers.getInventorySummaries(req, sb)
  local q = req.query
  if q.granularityType ~= "Marketplace" then
    return sb.err(400, "InvalidInput", "granularityType must be Marketplace.")
  end
  local wanted
  local skus = q.sellerSkus or q.sellerSku
  if skus and skus ~= "" then
    wanted = {}
    local n = 0
    for _, v in ipairs(req.query_all.sellerSkus or req.query_all.sellerSku or {}) do
      for s in v:gmatch("[^,]+") do wanted[s] = true n = n + 1 end
    end
    if n > 50 then return sb.err(400, "InvalidInput", "sellerSkus accepts at most 50 SKUs.") end
  end
  local since = q.startDateTime and sb.parse_iso(q.startDateTime)
  if q.startDateTime and not since then
    return sb.err(400, "InvalidInput", "startDateTime is not an ISO-8601 date-time.")
  end
  local details = q.details == "true"
  local all = {}
  for _, item in ipairs(sb.state.list(KIND)) do
    if (not wanted or wanted[item.sellerSku]) and (not since or item.updated >= since) then
      all[#all + 1] = item
    end
  end
  local start = 1
  if q.nextToken and q.nextToken ~= "" then
    start = tonumber((sb.unb64(q.nextToken) or ""):match("^inv:(%d+)$"))
    if not start then return sb.err(400, "InvalidInput", "Invalid nextToken.") end
  end
  local page = sb.json.array()
  for i = start, math.min(#all, start + PAGE - 1) do page[#page + 1] = summary(sb, all[i], details) end
  local body = {
    payload = { granularity = { granularityType = "Marketplace", granularityId = q.granularityId },
                inventorySummaries = page },
  }
  if start + PAGE <= #all then
    body.pagination = { nextToken = sb.b64("inv:" .. (start + PAGE)) }
  end
  return 200, body
end

function _M.handlers.createInventoryItem(req, sb)
  local b = req.body or {}
  if type(b.sellerSku) ~= "string" or b.sellerSku == "" then
    return sb.err(400, "InvalidInput", "sellerSku is required.")
  end
  if sb.state.get(KIND, b.sellerSku) then
    return sb.err(400, "InvalidInput", "Inventory item '" .. b.sellerSku .. "' already exists.")
  end
  put(sb, { sku = b.sellerSku, productName = b.productName, quantity = 0 })
  return 200, {}
end

function _M.handlers.addInventory(req, sb)
  local b = req.body or {}
  if type(b.inventoryItems) ~= "table" or #b.inventoryItems == 0 then
    return sb.err(400, "InvalidInput", "inventoryItems is required.")
  end
  sb.state.with_lock(KIND, function()
    for _, it in ipairs(b.inventoryItems) do
      local item = sb.state.get(KIND, it.sellerSku) or record(sb, { sku = it.sellerSku, quantity = 0 })
      item.fulfillable = item.fulfillable + math.floor(tonumber(it.quantity) or 0)
      item.updated = sb.now()
      sb.state.put(KIND, it.sellerSku, item)
    end
  end)
  return 200, {}
end

function _M.handlers.deleteInventoryItem(req, sb)
  local sku = req.params.sellerSku
  if not sb.state.get(KIND, sku) then
    return sb.err(404, "NotFound", "Inventory item '" .. sku .. "' not found.")
  end
  sb.state.delete(KIND, sku)
  return 200, {}
end

function _M.control(sb, action, args)
  if action == "seed" then
    local list = args.inventory or args.fba_inventory
    if type(list) ~= "table" then return 404 end
    for i, spec in ipairs(list) do
      if type(spec) ~= "table" or type(spec.sku or spec.sellerSku) ~= "string" then
        return sb.err(400, "InvalidInput", "inventory[" .. i .. "] needs sku")
      end
      sb.state.with_lock(KIND, function() put(sb, spec) end)
    end
    return 200, { inventory = #list }
  elseif action == "inventory" then
    return 200, sb.json.array(sb.state.list(KIND))
  end
  return 404, { errors = { { code = "NotFound", message = "unknown action " .. tostring(action) } } }
end

return _M
