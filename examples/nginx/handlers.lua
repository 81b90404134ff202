-- spapi inside nginx: the handlers of examples/nginx/nginx.conf.
--   POST /mcf/preview     what each shipping speed would cost for an order (JSON body)
--   POST /mcf/orders      preview, choose a speed ("speed": "cheapest" by default) and create
--                         the order (keyed by its "id": posting it again returns it, "existing")
--   GET  /vdf/orders/new  the NEW Vendor Direct Fulfillment purchase orders (?days=7)
-- An order: { "id": "WEB-1001", "address": { "name", "addressLine1", "city",
-- "stateOrRegion", "postalCode", "countryCode" }, "items": [ { "sku", "quantity" } ] }
-- (spapi.workflows.mcf's order table).
--
-- One client per worker, built in init_worker_by_lua from the environment (the
-- `env` directives of nginx.conf) on the lua_shared_dict "spapi": every worker
-- shares one LWA token and one rate budget, and calls go over cosockets.
local spapi = require "spapi"
local mcf = require "spapi.workflows.mcf"
local json = require "spapi.json"

local ngx = ngx
local _M = {}

local sp, client_err -- this worker's client

--- init_worker_by_lua: build the client (no call here: init_worker has no cosockets)
function _M.init()
  sp, client_err = spapi.client{ shared_dict = "spapi", user_agent = "spapi-nginx-example/1.0" }
  -- (the message names a missing setting; it holds no secret)
  if not sp then ngx.log(ngx.ERR, "spapi: ", client_err) end
end

local function reply(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(json.encode(body))
  return ngx.exit(status)
end

-- a call that failed at run time: log it (tostring(err) carries no secret) and
-- answer 502 with what Amazon (or the sandbox) said
local function failed(what, err)
  ngx.log(ngx.ERR, what, " failed: ", tostring(err))
  return reply(502, { error = { code = err.code, message = err.message, status = err.status,
    request_id = err.request_id, operation = err.operation } })
end

local function client()
  if not sp then reply(500, { error = { message = "spapi client not configured: " .. tostring(client_err) } }) end
  return sp
end

-- the request's JSON body as an order; a malformed one is the caller's mistake (400)
local function order_of()
  ngx.req.read_body()
  local order = json.decode(ngx.req.get_body_data() or "")
  if type(order) ~= "table" then return reply(400, { error = { message = "the body must be a JSON order" } }) end
  return order
end

-- mcf's functions raise on a malformed order (naming what is wrong): a 400
local function checked(fn, ...)
  local ok, a, b = pcall(fn, ...)
  if not ok then return reply(400, { error = { message = (tostring(a):gsub("^[^:]*:%d+: ", "")) } }) end
  return a, b
end

-- preview options without their raw SP-API payload
local function summary(options)
  local out = {}
  for i, o in ipairs(options) do
    out[i] = { speed = o.speed, fulfillable = o.fulfillable, fee = o.fee, currency = o.currency,
      earliest_arrival = o.earliest_arrival, latest_arrival = o.latest_arrival,
      unfulfillable = json.array(o.unfulfillable) }
  end
  return json.array(out)
end

function _M.mcf_preview()
  local sp_, order = client(), order_of()
  local options, err = checked(mcf.preview, sp_, order)
  if not options then return failed("mcf preview", err) end
  return reply(200, { options = summary(options) })
end

function _M.mcf_order()
  local sp_, order = client(), order_of()
  local options, err = checked(mcf.preview, sp_, order)
  if not options then return failed("mcf preview", err) end
  local option, cerr = checked(mcf.choose, options, order.speed or "cheapest")
  if not option then return reply(409, { error = { code = cerr.code, message = cerr.message },
    options = summary(options) }) end
  local placed, how_or_err = checked(mcf.create, sp_, order, option)
  if not placed then return failed("mcf create", how_or_err) end
  local o = placed.fulfillmentOrder or {}
  return reply(how_or_err == "created" and 201 or 200, { result = how_or_err, speed = option.speed,
    fee = option.fee, currency = option.currency, id = o.sellerFulfillmentOrderId,
    status = o.fulfillmentOrderStatus })
end

function _M.vdf_new_orders()
  local sp_ = client()
  local days = tonumber(ngx.var.arg_days) or 7
  ngx.update_time()
  local now = math.floor(ngx.now())
  local orders = {}
  for po, err in sp_:each("vendor_df_orders.getOrders", { status = "NEW", createdAfter = now - days * 86400,
    createdBefore = now, includeDetails = "true" }) do
    if not po then return failed("vdf getOrders", err) end
    local d = po.orderDetails or {}
    orders[#orders + 1] = { purchase_order = po.purchaseOrderNumber, date = d.orderDate,
      ship_from = d.shipFromParty and d.shipFromParty.partyId, items = d.items and #d.items or 0 }
  end
  return reply(200, { orders = json.array(orders) })
end

return _M
