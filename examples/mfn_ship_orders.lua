-- Merchant Fulfillment: buy the cheapest label for every unshipped seller-fulfilled
-- order, save it, confirm the shipment. Safe to re-run: the journal makes sure no
-- order ever gets a second label, even after a crash.
--
--   make demo EXAMPLES=examples/mfn_ship_orders.lua    # against the local sandbox
local spapi = require "spapi"
local mfn = require "spapi.workflows.mfn"

local sp = assert(spapi.client{ user_agent = "spapi-mfn-example/1.0" })

local report = assert(mfn.run(sp, {
  journal = os.getenv("MFN_JOURNAL") or "mfn.journal",     -- what was bought, per order
  labels = os.getenv("MFN_LABELS") or "labels",            -- <order>-<shipment>.png / .pdf / .zpl
  choose = "cheapest",                                     -- or "fastest", or function(services, order)
  ship_from = { Name = "Acme Goods", AddressLine1 = "300 Turnbull Ave", City = "Detroit", StateOrProvinceCode = "MI",
    PostalCode = "48123", CountryCode = "US", Email = "shipping@acme.example", Phone = "7132341234" },
  package = { PackageDimensions = { Length = 10, Width = 8, Height = 4, Unit = "inches" },
              Weight = { Value = 14, Unit = "oz" } },
}))
for _, o in ipairs(report.orders) do print(mfn.describe(o)) end
if #report.orders == 0 then print("no unshipped merchant-fulfilled orders") end
if report.stopped then print("stopped: " .. tostring(report.stopped) .. " (fix it and run again)") os.exit(1) end
