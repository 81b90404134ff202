-- Vendor Direct Fulfillment Payments v1: submitInvoice.
--
-- The invoice is checked when it is received; the outcome shows in
-- getTransactionStatus (Transactions API) once the transaction has finished
-- processing.  As the DF workflow guide says, items may only be invoiced after
-- their purchase order has been confirmed and shipped: an invoice naming a PO
-- that is not SHIPPED (yet) makes the transaction fail, as does an unknown PO
-- or an invoice number that was already accepted.
local type, ipairs, tostring, tonumber = type, ipairs, tostring, tonumber
local lib = require("spapi.sandbox.programs.vendor_df_transactions").lib
local P = require("spapi.sandbox.programs.vendor_df_orders").po

local _M = {}
local INVOICE = "vdf_invoice"

local function money_ok(m)
  return type(m) == "table" and lib.str(m.currencyCode) and type(m.amount) == "string"
    and tonumber(m.amount) ~= nil
end

local function validate_invoice(sb, req, inv, where, seen)
  local errs = {}
  local function bad(msg) errs[#errs + 1] = { code = "InvalidInput", message = where .. ": " .. msg } end
  if type(inv) ~= "table" then bad("must be an object"); return errs end
  if not lib.str(inv.invoiceNumber) then bad("invoiceNumber is required") end
  if not lib.str(inv.invoiceDate) then bad("invoiceDate is required")
  elseif not sb.parse_iso(inv.invoiceDate) then
    bad("The value '" .. inv.invoiceDate .. "' of element 'invoiceDate' is not valid.")
  end
  if not lib.party_id(inv.remitToParty) then bad("remitToParty.partyId is required") end
  if not lib.party_id(inv.shipFromParty) then bad("shipFromParty.partyId is required") end
  if not money_ok(inv.invoiceTotal) then bad("invoiceTotal needs currencyCode and a decimal amount") end
  if not lib.is_array(inv.items) then bad("items is required") end
  if #errs > 0 then return errs end
  if seen[inv.invoiceNumber] or sb.state.get(INVOICE, inv.invoiceNumber) then
    bad("invoice " .. inv.invoiceNumber .. " has already been submitted")
  end
  seen[inv.invoiceNumber] = true
  local now = sb.now()
  for j, it in ipairs(inv.items) do
    local w = "items[" .. (j - 1) .. "]"
    if type(it) ~= "table" then bad(w .. " must be an object")
    else
      if not lib.str(it.itemSequenceNumber) then bad(w .. ".itemSequenceNumber is required") end
      if type(it.invoicedQuantity) ~= "table" or type(it.invoicedQuantity.amount) ~= "number" then
        bad(w .. ".invoicedQuantity.amount is required")
      end
      if not money_ok(it.netCost) then bad(w .. ".netCost needs currencyCode and a decimal amount") end
      if not lib.str(it.purchaseOrderNumber) then bad(w .. ".purchaseOrderNumber is required")
      else
        local po = P.get(sb, req, it.purchaseOrderNumber)
        if not po then
          bad(w .. ": purchase order " .. it.purchaseOrderNumber .. " does not exist")
        else
          local st = P.status(po, now)
          if st ~= "SHIPPED" then
            bad(w .. ": purchase order " .. it.purchaseOrderNumber .. " is " .. st
              .. "; items can only be invoiced after the shipment has been confirmed")
          elseif not P.item_numbers(po)[tonumber(it.itemSequenceNumber) or -1] then
            bad(w .. ": item " .. tostring(it.itemSequenceNumber) .. " is not part of purchase order " .. po.purchaseOrderNumber)
          end
        end
      end
    end
  end
  return errs
end

_M.handlers = {
  submitInvoice = lib.locked("vdf", function(req, sb)
    local b = req.body
    if type(b) ~= "table" or not lib.is_array(b.invoices) then
      return sb.err(400, "InvalidInput", "The request body must contain a non-empty invoices array")
    end
    local errors, seen = {}, {}
    for i, inv in ipairs(b.invoices) do
      for _, e in ipairs(validate_invoice(sb, req, inv, "invoices[" .. (i - 1) .. "]", seen)) do
        errors[#errors + 1] = e
      end
    end
    local id = lib.new_transaction(sb, req, "submitInvoice", errors)
    if #errors == 0 then
      for _, inv in ipairs(b.invoices) do
        sb.state.put(INVOICE, inv.invoiceNumber, { transactionId = id, invoice = inv })
      end
    end
    return 202, { payload = { transactionId = id } }
  end),
}

return _M
