-- Ship a web shop's order with Amazon Multi-Channel Fulfillment: preview the speeds,
-- create the order (a re-run finds it instead of creating a second one), print the
-- tracking once it ships.
--
--   make demo EXAMPLES=examples/mcf_ship_order.lua    # against the local sandbox
local spapi = require "spapi"
local mcf = require "spapi.workflows.mcf"

-- the order as the shop exports it
local shop_order = {
  number = "#1001", created_at = "2026-12-06T09:30:00Z", note = "Thanks for shopping with us!",
  shipping_address = { first_name = "Jane", last_name = "Doe", address1 = "410 Terry Ave N", city = "Seattle",
    province_code = "WA", zip = "98109", country_code = "US", phone = "+1 206 555 0100" },
  line_items = { { sku = "SKU-RED-MUG", quantity = 2 }, { sku = "SKU-TEE-M", quantity = 1 } },
  shipping_method = "cheapest", -- or "fastest", "Expedited", ...
}

local sp = assert(spapi.client{ user_agent = "spapi-mcf-ship-example/1.0" })
local a = shop_order.shipping_address
local order = { id = "WEB-" .. shop_order.number:gsub("%W", ""), date = shop_order.created_at,
  comment = shop_order.note, items = {},
  address = { name = a.first_name .. " " .. a.last_name, addressLine1 = a.address1, city = a.city,
    stateOrRegion = a.province_code, postalCode = a.zip, countryCode = a.country_code, phone = a.phone } }
for i, li in ipairs(shop_order.line_items) do order.items[i] = { sku = li.sku, quantity = li.quantity } end

local options = assert(mcf.preview(sp, order))
for _, o in ipairs(options) do
  print(string.format("  %-10s fulfillable=%-5s %7.2f %s  arrives %s", o.speed, tostring(o.fulfillable), o.fee,
    o.currency or "", o.earliest_arrival or "-"))
end
local speed = assert(mcf.choose(options, shop_order.shipping_method))
local placed, how = assert(mcf.create(sp, order, speed))
print(string.format("%s %s (%s)", how, order.id, placed.fulfillmentOrder.shippingSpeedCategory))

-- each status is printed as it comes (progress = false: no progress line on top of it)
local shipped = assert(mcf.follow(sp, order.id, { until_status = "shipped", interval = 0.5, progress = false,
  on_status = function(status) print("  status " .. status) end }))
for _, p in ipairs(assert(mcf.tracking(sp, shipped))) do
  print(string.format("  package %d: %s %s, %s (%s)", p.package_number, p.carrier, p.tracking_number, p.status, p.link))
end
print("done: " .. order.id .. " shipped")
