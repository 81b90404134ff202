-- Vendor Direct Fulfillment, every day: acknowledge the NEW purchase orders, save
-- their shipping labels, confirm the shipments, send the invoices. Safe to re-run:
-- the journal records what was sent, so a crash or a re-run sends nothing twice.
--   make demo                         # against the local sandbox
--   lua5.4 examples/vdf_daily.lua     # with LWA_* and SPAPI_* set for your account
local spapi = require "spapi"
local vdf = require "spapi.workflows.vdf"

local sp = assert(spapi.client{ user_agent = "spapi-vdf-daily/1.0" })
local report = assert(vdf.run(sp, {
  journal = os.getenv("VDF_JOURNAL") or "vdf.journal",
  labels = os.getenv("VDF_LABELS") or "labels",          -- <PO>.png / .zpl, one per package
  created_after = os.time() - 86400,                     -- the last day's orders (the sandbox's
  created_before = os.time() + 86400,                    -- clock runs ahead: look a day forward)
  acknowledge = function(order, item) return true end,   -- per line: true, false or a quantity
}))
for _, o in ipairs(report.orders) do print(vdf.describe(o)) end
if report.stopped then print("stopped: " .. tostring(report.stopped) .. "; run again to finish") end
print(report.ok and ("done: " .. #report.orders .. " purchase orders acknowledged, labelled, shipped and invoiced")
  or "not done")
os.exit(report.ok and 0 or 1)
