-- Vendor Direct Fulfillment Sandbox Test Data 2021-10-28:
-- generateOrderScenarios / getOrderScenarios.
--
-- Each requested scenario (sellingParty + shipFromParty) yields three test
-- purchase orders (one item; two items with priority shipping and a packing
-- slip; a gift with scheduled delivery).  The orders are written to the PO
-- store at once but stamped with the time the generation transaction turns
-- SUCCESS, so getOrders shows them (status NEW) from that moment on.
local type, ipairs, tostring = type, ipairs, tostring
local lib = require("spapi.sandbox.programs.vendor_df_transactions").lib
local P = require("spapi.sandbox.programs.vendor_df_orders").po

local _M = {}
local KIND = "vdf_scenario"
_M.ORDERS_PER_SCENARIO = 3

_M.handlers = {
  generateOrderScenarios = function(req, sb)
    local b = req.body
    if type(b) ~= "table" or not lib.is_array(b.orders) then
      return sb.err(400, "InvalidInput", "The request body must contain a non-empty orders array")
    end
    for i, o in ipairs(b.orders) do
      local where = "orders[" .. (i - 1) .. "]"
      if type(o) ~= "table" or not lib.party_id(o.sellingParty) then
        return sb.err(400, "InvalidInput", where .. ".sellingParty.partyId is required")
      end
      if not lib.party_id(o.shipFromParty) then
        return sb.err(400, "InvalidInput", where .. ".shipFromParty.partyId is required")
      end
    end
    local id = lib.uuid(sb, "scenario") .. "-" .. sb.iso(sb.now()):gsub("%D", ""):sub(1, 14)
    local ready = sb.now() + lib.DELAY
    local scenarios = {}
    for i, o in ipairs(b.orders) do
      local orders = {}
      for v = 1, _M.ORDERS_PER_SCENARIO do
        local po = P.create(sb, req.selling_partner, o.sellingParty.partyId, o.shipFromParty.partyId, v,
          ready + (v - 1) * 0.001)
        orders[v] = { orderId = po.purchaseOrderNumber }
      end
      scenarios[i] = { scenarioId = "SCENARIO_" .. i, orders = orders }
    end
    sb.state.put(KIND, id, { transactionId = id, ready = ready, owner = req.selling_partner,
                             scenarios = scenarios })
    return 202, { transactionId = id }
  end,

  getOrderScenarios = function(req, sb)
    local id = req.params.transactionId
    local t = sb.state.get(KIND, id)
    if not t or (t.owner ~= nil and t.owner ~= req.selling_partner) then
      return sb.err(404, "NotFound", "Transaction " .. tostring(id) .. " does not exist")
    end
    if sb.now() < t.ready then
      return 200, { transactionStatus = { transactionId = id, status = "PROCESSING" } }
    end
    return 200, { transactionStatus = { transactionId = id, status = "SUCCESS",
                                        testCaseData = { scenarios = t.scenarios } } }
  end,
}

return _M
