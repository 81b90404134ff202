-- Multi-Location Inventory: push a CSV of sku,location,quantity to Amazon. Only SKUs
-- whose quantities differ are sent, in one JSON_LISTINGS_FEED; a re-run with
-- nothing changed sends nothing (it only reads the listings).
--
--   make demo EXAMPLES=examples/mli_sync_inventory.lua       # against the local sandbox
--   lua5.4 examples/mli_sync_inventory.lua inventory.csv      # MLI_SELLER_ID, LWA_*, SPAPI_* set
local spapi = require "spapi"
local mli = require "spapi.workflows.mli"

local path = arg[1] or "examples/mli_inventory.csv"
local SELLER = os.getenv("MLI_SELLER_ID") or "A1SANDBOXSELLER"
local sp = assert(spapi.client{ user_agent = "spapi-mli-example/1.0" })
local f = assert(io.open(path, "rb"))
local rows = assert(mli.read_csv(f:read("a")))
f:close()

if os.getenv("SPAPI_DEMO_GENERATE") then
  -- a fresh sandbox has neither these locations nor these listings: make them
  local seen = {}
  for _, r in ipairs(rows) do
    if not seen[r.location] then
      seen[r.location] = true
      assert(mli.create_supply_source(sp, { code = r.location, alias = r.location, address = { name = r.location,
        addressLine1 = "1 Main St", city = "Seattle", stateOrRegion = "WA", postalCode = "98109", countryCode = "US" } }))
    end
    if not seen[r.sku] and not mli.quantities(sp, SELLER, r.sku) then
      assert(sp.listings_items.putListingsItem{ sellerId = SELLER, sku = r.sku, marketplaceIds = { "ATVPDKIKX0DER" },
        body = { productType = "PRODUCT", requirements = "LISTING_OFFER_ONLY", attributes = {
          fulfillment_availability = { { fulfillment_channel_code = "DEFAULT", quantity = 3 } } } } })
    end
    seen[r.sku] = true
  end
end

for run = 1, 2 do
  local r = assert(mli.sync(sp, { seller_id = SELLER, rows = rows, interval = 0.2 }))
  print(string.format("run %d: %d SKUs sent, %d unchanged", run, #r.changed, #r.unchanged))
  for _, sku in ipairs(r.changed) do
    local s = r.report.skus[sku]
    print(string.format("  %-12s %s", sku, s.status))
    for _, i in ipairs(s.issues) do print(string.format("    %s %s: %s", i.severity, i.code, i.message)) end
  end
end
for _, sku in ipairs({ "ssnm001", "mug, red" }) do
  local q = assert(mli.quantities(sp, SELLER, sku))
  local parts = {}
  for code, n in pairs(q.availability) do parts[#parts + 1] = code .. "=" .. n end
  table.sort(parts)
  print(string.format("  %-12s %s", sku, table.concat(parts, " ")))
end
print("done: inventory of " .. path .. " is on Amazon")
