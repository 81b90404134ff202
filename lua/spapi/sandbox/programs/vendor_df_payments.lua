-- Vendor Direct Fulfillment Payments v1: submitInvoice.
--
-- Two stages, as the model's examples show:
-- * syntax (required elements, decimal amounts, date-times) is checked at once:
--   400 with InvalidInput errors worded like Amazon's schema validator
--   ("The value '2020-03.13' of element 'invoiceDate' is not valid.");
-- * meaning is checked in the transaction, whose outcome getTransactionStatus
--   (Transactions API) reveals after processing: an unknown PO, an item not in
--   the PO, an invoice number already accepted, and - as the DF workflow guide
--   says, items may only be invoiced after they are confirmed and shipped - a PO
--   that is not SHIPPED (yet) make the transaction fail.
-- A body without invoices is accepted (202) and its transaction fails, like the
-- model's example for an empty body.
local type, ipairs, tostring, tonumber = type, ipairs, tostring, tonumber
local lib = require("spapi.sandbox.programs.vendor_df_transactions").lib
local P = require("spapi.sandbox.programs.vendor_df_orders").po

local _M = {}
local INVOICE = "vdf_invoice"

local function decimal(v) return type(v) == "string" and v:match("^%-?%d+%.?%d*$") ~= nil end

local function money_ok(m)
  return type(m) == "table" and lib.str(m.currencyCode) and decimal(m.amount)
end

-- syntax of one invoice → array of messages
local function syntax(sb, inv, where)
  local errs = {}
  local function bad(msg) errs[#errs + 1] = { code = "InvalidInput", message = msg, details = where } end
  local function incomplete(element, expected)
    bad("The content of element '" .. element .. "' is not complete. One of '{" .. expected .. "}' is expected.")
  end
  if type(inv) ~= "table" then bad("Element 'invoice' must be an object."); return errs end
  if not lib.str(inv.invoiceNumber) then incomplete("invoice", "invoiceNumber, referenceNumber") end
  if not lib.str(inv.invoiceDate) then incomplete("invoice", "invoiceDate")
  elseif not sb.parse_iso(inv.invoiceDate) then
    bad("The value '" .. inv.invoiceDate .. "' of element 'invoiceDate' is not valid.")
    bad("'" .. inv.invoiceDate .. "' is not a valid value for 'dateTime'.")
  end
  if not lib.party_id(inv.remitToParty) then incomplete("invoice", "remitToParty") end
  if not lib.party_id(inv.shipFromParty) then incomplete("invoice", "shipFromParty") end
  if not money_ok(inv.invoiceTotal) then incomplete("invoice", "invoiceTotal") end
  if not lib.is_array(inv.items) then incomplete("invoice", "items") end
  for j, it in ipairs(type(inv.items) == "table" and inv.items or {}) do
    if type(it) ~= "table" then bad("Element 'items[" .. (j - 1) .. "]' must be an object.")
    else
      if not lib.str(it.itemSequenceNumber) then incomplete("item", "itemSequenceNumber") end
      if type(it.invoicedQuantity) ~= "table" or type(it.invoicedQuantity.amount) ~= "number" then
        incomplete("item", "invoicedQuantity")
      end
      if not money_ok(it.netCost) then incomplete("item", "netCost") end
      if not lib.str(it.purchaseOrderNumber) then incomplete("item", "purchaseOrderNumber") end
    end
  end
  return errs
end

-- meaning of one (syntactically valid) invoice → array of errors for the transaction
local function semantics(sb, req, inv, where, seen)
  local errs = {}
  local function bad(msg) errs[#errs + 1] = { code = "InvalidInput", message = where .. ": " .. msg } end
  if seen[inv.invoiceNumber] or sb.state.get(INVOICE, inv.invoiceNumber) then
    bad("invoice " .. inv.invoiceNumber .. " has already been submitted")
  end
  seen[inv.invoiceNumber] = true
  local now = sb.now()
  for j, it in ipairs(inv.items) do
    local w = "items[" .. (j - 1) .. "]"
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
  return errs
end

_M.handlers = {
  submitInvoice = lib.locked("vdf", function(req, sb)
    local b = req.body
    local invoices = type(b) == "table" and b.invoices
    if invoices ~= nil and type(invoices) ~= "table" then
      return sb.err(400, "InvalidInput", "Element 'invoices' must be an array.")
    end
    if not lib.is_array(invoices) then
      local id = lib.new_transaction(sb, req, "submitInvoice", {
        { code = "InvalidInput", message = "The request contains no invoices." } })
      return 202, { payload = { transactionId = id } }
    end
    -- the purchase orders this request invoices (counted however it ends)
    local named = {}
    for _, inv in ipairs(invoices) do
      for _, it in ipairs(type(inv) == "table" and type(inv.items) == "table" and inv.items or {}) do
        if type(it) == "table" then named[#named + 1] = it.purchaseOrderNumber end
      end
    end
    lib.count("vdf.invoices", named)
    local bad = {}
    for i, inv in ipairs(invoices) do
      for _, e in ipairs(syntax(sb, inv, "invoices[" .. (i - 1) .. "]")) do bad[#bad + 1] = e end
    end
    if #bad > 0 then return 400, { errors = bad } end
    local errors, seen = {}, {}
    for i, inv in ipairs(invoices) do
      for _, e in ipairs(semantics(sb, req, inv, "invoices[" .. (i - 1) .. "]", seen)) do
        errors[#errors + 1] = e
      end
    end
    local id = lib.new_transaction(sb, req, "submitInvoice", errors)
    if #errors == 0 then
      lib.count("vdf.invoiced", named)
      for _, inv in ipairs(invoices) do
        sb.state.put(INVOICE, inv.invoiceNumber, { transactionId = id, invoice = inv })
      end
    end
    return 202, { payload = { transactionId = id } }
  end),
}

return _M
