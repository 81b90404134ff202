-- Vendor Direct Fulfillment Inventory v1: submitInventoryUpdate.
-- The update is validated on receipt; the result shows in getTransactionStatus.
-- Accepted updates are kept per warehouse (state kind "vdf_inventory"); a full
-- update replaces the warehouse's items, a partial one merges by product id.
local type, ipairs, pairs, tostring = type, ipairs, pairs, tostring
local lib = require("spapi.sandbox.programs.vendor_df_transactions").lib

local _M = {}
local KIND = "vdf_inventory"

_M.handlers = {
  submitInventoryUpdate = lib.locked("vdf", function(req, sb)
    local warehouse = req.params.warehouseId
    local b = req.body
    local inv = type(b) == "table" and b.inventory
    if type(inv) ~= "table" then
      return sb.err(400, "InvalidInput", "The request body must contain an inventory object")
    end
    local errors = {}
    local function bad(msg) errors[#errors + 1] = { code = "InvalidInput", message = "inventory: " .. msg } end
    if not lib.party_id(inv.sellingParty) then bad("sellingParty.partyId is required") end
    if type(inv.isFullUpdate) ~= "boolean" then bad("isFullUpdate is required (true or false)") end
    if not lib.is_array(inv.items) then bad("items must be a non-empty array") end
    for i, it in ipairs(type(inv.items) == "table" and inv.items or {}) do
      local w = "items[" .. (i - 1) .. "]"
      if type(it) ~= "table" then bad(w .. " must be an object")
      else
        if not lib.str(it.buyerProductIdentifier) and not lib.str(it.vendorProductIdentifier) then
          bad(w .. " needs buyerProductIdentifier or vendorProductIdentifier")
        end
        local q = it.availableQuantity
        if type(q) ~= "table" or not lib.str(q.unitOfMeasure) or (q.amount ~= nil and (type(q.amount) ~= "number" or q.amount < 0)) then
          bad(w .. ".availableQuantity needs unitOfMeasure and a non-negative amount")
        end
      end
    end
    local id = lib.new_transaction(sb, req, "submitInventoryUpdate", errors)
    if #errors == 0 then
      local key = tostring(req.selling_partner) .. "/" .. warehouse
      local cur = (not inv.isFullUpdate) and sb.state.get(KIND, key) or { items = {} }
      local by = {}
      for _, it in pairs(cur.items) do by[it.vendorProductIdentifier or it.buyerProductIdentifier] = it end
      for _, it in ipairs(inv.items) do by[it.vendorProductIdentifier or it.buyerProductIdentifier] = it end
      local items = {}
      for _, it in pairs(by) do items[#items + 1] = it end
      sb.state.put(KIND, key, { warehouseId = warehouse, sellingParty = inv.sellingParty.partyId, items = items,
                                updated = sb.now() })
    end
    return 202, { payload = { transactionId = id } }
  end),
}

return _M
