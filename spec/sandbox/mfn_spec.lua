-- Merchant Fulfillment v0 against a real sandbox, over plain HTTP: eligible
-- services → createShipment (label: base64 → gunzip) → getShipment →
-- cancelShipment, and every error code of the API guide's table that a
-- request can provoke.
local H = require "helpers"
local core = require "spapi.core"

local MFN = "/mfn/v0"

describe("sandbox: Merchant Fulfillment", function()
  local sandbox, token, rdt

  local function http(method, path, o)
    o = o or {}
    if o.token == nil then o.token = token end
    local status, headers, body, raw = H.sandbox_http(method, path, o)
    assert(status, headers)
    return status, body, raw
  end

  local function advance(seconds)
    assert(sandbox.control("/_sandbox/clock", { advance = seconds }))
  end

  local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t)) end

  local n_orders = 0
  -- a fresh unshipped order: items { {OrderItemId, Quantity} }
  local function new_order(items, marketplace)
    n_orders = n_orders + 1
    local id = string.format("113-%07d-%07d", 5550000 + n_orders, 1234567)
    local list = {}
    for i, it in ipairs(items) do
      list[i] = { OrderItemId = it[1], Quantity = it[2], ASIN = "B0SPEC" .. i }
    end
    assert(sandbox.control("/_sandbox/programs/merchant_fulfillment/order",
      { AmazonOrderId = id, MarketplaceId = marketplace, items = list }))
    return id
  end

  local function ship_from()
    return { Name = "John Doe", AddressLine1 = "300 Turnbull Ave", Email = "jdoe@example.com", City = "Detroit",
             StateOrProvinceCode = "MI", PostalCode = "48123", CountryCode = "US", Phone = "7132341234" }
  end

  local function details(order, items, o)
    o = o or {}
    local list = {}
    for i, it in ipairs(items) do list[i] = { OrderItemId = it[1], Quantity = it[2] } end
    return {
      AmazonOrderId = order, ItemList = list, ShipFromAddress = o.from or ship_from(),
      PackageDimensions = { Length = 10, Width = 8, Height = 4, Unit = "inches" },
      Weight = { Value = o.oz or 10, Unit = "oz" },
      MustArriveByDate = o.must_arrive,
      ShippingServiceOptions = { DeliveryExperience = o.experience or "DeliveryConfirmationWithoutSignature",
                                 CarrierWillPickUp = false, LabelFormat = o.format },
    }
  end

  local function eligible(d)
    return http("POST", MFN .. "/eligibleShippingServices", { body = { ShipmentRequestDetails = d } })
  end

  local function offer_for(d, service)
    local st, body = eligible(d)
    assert.equal(200, st)
    for _, s in ipairs(body.payload.ShippingServiceList) do
      if s.ShippingServiceId == service then return s end
    end
    error("no offer for " .. service)
  end

  local function create(d, service, offer_id)
    return http("POST", MFN .. "/shipments", { token = rdt, body = {
      ShipmentRequestDetails = d, ShippingServiceId = service, ShippingServiceOfferId = offer_id } })
  end

  local function assert_error(status, code, st, body)
    assert.equal(status, st)
    assert.is_table(body and body.errors, "no errors array")
    assert.equal(code, body.errors[1].code)
    assert.is_string(body.errors[1].message)
    return body.errors[1].message
  end

  setup(function()
    sandbox = H.sandbox{ reset = true }
    assert(sandbox.control("/_sandbox/config", { rate_scale = 100 })) -- not a throttling test
    token = H.sandbox_token()
    rdt = H.sandbox_rdt({
      { method = "POST", path = MFN .. "/shipments" },
      { method = "GET", path = MFN .. "/shipments/{shipmentId}" },
      { method = "DELETE", path = MFN .. "/shipments/{shipmentId}" },
    }, token)
  end)

  teardown(function()
    if sandbox then sandbox.control("/_sandbox/config", { rate_scale = 1 }) end
  end)

  it("quotes services, buys a label, reads it back and cancels it", function()
    local order = "902-1845936-5435065" -- seeded
    local d = details(order, { { "52986411826454", 1 } })
    local st, body = eligible(d)
    assert.equal(200, st)
    local p = body.payload
    assert.is_true(#p.ShippingServiceList >= 3)
    for _, s in ipairs(p.ShippingServiceList) do
      assert.is_string(s.ShippingServiceOfferId)
      assert.is_string(s.CarrierName)
      assert.equal("USD", s.Rate.CurrencyCode)
      assert.is_true(s.Rate.Amount > 0)
      assert.is_true(s.LatestEstimatedDeliveryDate >= s.EarliestEstimatedDeliveryDate)
    end
    assert.same({ { CarrierName = "DHLECOMMERCE" } }, p.TemporarilyUnavailableCarrierList)
    assert.same({ { CarrierName = "YANWEN" } }, p.TermsAndConditionsNotAcceptedCarrierList)

    local offer
    for _, s in ipairs(p.ShippingServiceList) do if s.ShippingServiceId == "UPS_PTP_GND" then offer = s end end
    assert.is_table(offer)
    st, body = create(d, "UPS_PTP_GND", offer.ShippingServiceOfferId)
    assert.equal(200, st)
    local sh = body.payload
    assert.equal(order, sh.AmazonOrderId)
    assert.equal("Purchased", sh.Status)
    assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", sh.ShipmentId)
    assert.matches("^1Z", sh.TrackingId)
    assert.equal("UPS_PTP_GND", sh.ShippingService.ShippingServiceId)
    assert.equal(offer.Rate.Amount, sh.ShippingService.Rate.Amount)
    assert.equal("New York", sh.ShipToAddress.City)
    -- the label: base64 of a gzip of the PNG
    local fc = sh.Label.FileContents
    assert.equal("image/png", fc.FileType)
    assert.equal("PNG", sh.Label.LabelFormat)
    local gz = core.b64decode(fc.Contents)
    assert.equal("\31\139", gz:sub(1, 2))
    assert.equal("\137PNG\r\n\26\n", core.gunzip(gz):sub(1, 8))
    assert.equal(16, #core.b64decode(fc.Checksum)) -- an MD5

    local raw
    st, body, raw = http("GET", MFN .. "/shipments/" .. sh.ShipmentId, { token = rdt })
    assert.equal(200, st)
    assert.matches('"ExcludedBenefits":[]', raw, 1, true) -- still a JSON array after storage
    assert.equal(sh.ShipmentId, body.payload.ShipmentId)
    assert.equal(sh.TrackingId, body.payload.TrackingId)
    assert.equal("Purchased", body.payload.Status)
    assert.equal(fc.Contents, body.payload.Label.FileContents.Contents)

    st, body = http("DELETE", MFN .. "/shipments/" .. sh.ShipmentId, { token = rdt })
    assert.equal(200, st)
    assert.equal("RefundPending", body.payload.Status)
    -- InvalidState: already being refunded
    local msg = assert_error(404, "InvalidState", http("DELETE", MFN .. "/shipments/" .. sh.ShipmentId, { token = rdt }))
    assert.matches("RefundPending", msg, 1, true)
    advance(3600)
    st, body = http("GET", MFN .. "/shipments/" .. sh.ShipmentId, { token = rdt })
    assert.equal("RefundApplied", body.payload.Status)
    assert_error(404, "InvalidState", http("DELETE", MFN .. "/shipments/" .. sh.ShipmentId, { token = rdt }))

    -- cancelled items can be shipped again
    st = create(details(order, { { "52986411826454", 1 } }), "USPS_PTP_PRI")
    assert.equal(200, st)
  end)

  it("prints PDF and ZPL labels when asked", function()
    local order = new_order({ { "9001", 2 } })
    local st, body = create(details(order, { { "9001", 1 } }, { format = "PDF" }), "USPS_PTP_PRI")
    assert.equal(200, st)
    assert.equal("application/pdf", body.payload.Label.FileContents.FileType)
    assert.equal("%PDF-", core.gunzip(core.b64decode(body.payload.Label.FileContents.Contents)):sub(1, 5))
    st, body = create(details(order, { { "9001", 1 } }, { format = "ZPL300" }), "FEDEX_PTP_HOME_DELIVERY")
    assert.equal(200, st)
    assert.equal("application/zpl", body.payload.Label.FileContents.FileType)
    local zpl = core.gunzip(core.b64decode(body.payload.Label.FileContents.Contents))
    assert.equal("^XA", zpl:sub(1, 3))
    assert.matches(body.payload.TrackingId, zpl, 1, true)
  end)

  it("reports additional seller inputs", function()
    local st, body = http("POST", MFN .. "/additionalSellerInputs", { body = {
      ShippingServiceId = "UPS_PTP_GND", ShipFromAddress = ship_from(), OrderId = "902-1845936-5435065" } })
    assert.equal(200, st)
    assert.equal("SENDER_ADDRESS_TRANSLATED", body.payload.ShipmentLevelFields[1].AdditionalInputFieldName)
    assert.equal(2, #body.payload.ItemLevelFieldsList)
    local bad = ship_from()
    bad.PostalCode = "NOT-A-ZIP"
    local msg = assert_error(400, "InvalidInput", http("POST", MFN .. "/additionalSellerInputs", { body = {
      ShippingServiceId = "UPS_PTP_GND", ShipFromAddress = bad, OrderId = "902-1845936-5435065" } }))
    assert.equal("Invalid Ship From Address when calling GetAdditionalSellerInputs", msg)
    assert_error(404, "ResourceNotFound", http("POST", MFN .. "/additionalSellerInputs", { body = {
      ShippingServiceId = "UPS_PTP_GND", ShipFromAddress = ship_from(), OrderId = "999-0000000-0000000" } }))
  end)

  -- Amazon's examples live only in the raw model (the generated schemas leave them out)
  H.it_with_models(it)("answers the model's x-amzn-api-sandbox examples as documented", function()
    local json = require "cjson.safe"
    local f = assert(io.open(H.models .. "/merchantFulfillmentV0.json", "rb"))
    local model = assert(json.decode(f:read("*a")))
    f:close()
    local cases = {}
    for path, ops in pairs(model.paths) do
      for method, op in pairs(ops) do
        if type(op) == "table" and op.operationId then
          for code, resp in pairs(op.responses) do
            for _, c in ipairs(resp["x-amzn-api-sandbox"] and resp["x-amzn-api-sandbox"].static or {}) do
              cases[#cases + 1] = { op = op.operationId, method = method:upper(), path = path,
                                    status = tonumber(code), req = c.request.parameters, resp = c.response }
            end
          end
        end
      end
    end
    table.sort(cases, function(a, b) return a.op .. a.status < b.op .. b.status end)
    local checked = 0
    for _, c in ipairs(cases) do
      local path = c.path:gsub("{(%w+)}", function(n) return c.req[n].value end)
      local id = c.req.shipmentId and c.req.shipmentId.value
      local st, body = http(c.method, path, {
        token = path:find("/shipments", 1, true) and rdt or token,
        body = c.req.body and c.req.body.value })
      local what = c.op .. " " .. c.status
      if c.status == 400 and id and id:match("^%x+%-") then
        -- the model's mock answers 400 to these well-formed ids; here an unknown id is a 404
        assert.equal(404, st, what)
        assert.equal("ResourceNotFound", body.errors[1].code, what)
      else
        assert.equal(c.status, st, what)
        if c.status == 200 then
          if c.resp.payload.AmazonOrderId then
            assert.equal(c.resp.payload.AmazonOrderId, body.payload.AmazonOrderId, what)
          end
          if c.op == "getShipment" or c.op == "cancelShipment" then
            assert.equal(id, body.payload.ShipmentId, what)
          end
          if c.op == "createShipment" then
            -- a new shipment (the example's id belongs to the seeded one cancelled above)
            assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", body.payload.ShipmentId)
            assert.not_equal(c.resp.payload.ShipmentId, body.payload.ShipmentId)
            assert.equal("UPS_PTP_2ND_DAY_AIR", body.payload.ShippingService.ShippingServiceId)
          elseif c.op == "cancelShipment" then
            assert.equal("RefundPending", body.payload.Status)
          elseif c.op == "getEligibleShipmentServices" then
            assert.is_true(#body.payload.ShippingServiceList > 0)
          end
        else
          assert.equal(c.resp.errors[1].code, body.errors[1].code, what)
          if c.req.body then assert.equal(c.resp.errors[1].message, body.errors[1].message, what) end
        end
      end
      checked = checked + 1
    end
    assert.equal(10, checked)
  end)

  describe("errors", function()
    it("ResourceNotFound for unknown orders and shipments", function()
      assert_error(404, "ResourceNotFound", eligible(details("999-9999999-9999999", { { "1", 1 } })))
      assert_error(404, "ResourceNotFound",
        http("GET", MFN .. "/shipments/00000000-0000-4000-8000-000000000000", { token = rdt }))
      assert_error(404, "ResourceNotFound",
        http("DELETE", MFN .. "/shipments/00000000-0000-4000-8000-000000000000", { token = rdt }))
    end)

    it("InvalidInput for values breaking the model's constraints", function()
      assert_error(400, "InvalidInput", http("GET", MFN .. "/shipments/TEST_CASE_400", { token = rdt }))
      local from = ship_from()
      from.CountryCode = "USA"
      local msg = assert_error(400, "InvalidInput", eligible(details("902-1845936-5435065", { { "52986411826454", 1 } },
        { from = from })))
      assert.matches("shipmentRequestDetails.shipFromAddress.countryCode", msg, 1, true)
    end)

    it("InvalidRequest for missing or malformed fields", function()
      local d = details("902-1845936-5435065", { { "52986411826454", 1 } })
      d.Weight = nil
      assert_error(400, "InvalidRequest", eligible(d))
      d = details("902-1845936-5435065", { { "52986411826454", 1 } })
      d.ShippingServiceOptions.DeliveryExperience = "Pigeon"
      assert_error(400, "InvalidRequest", eligible(d))
      d = details("902-1845936-5435065", { { "52986411826454", 1 } })
      d.ShipFromAddress.Email = nil
      assert_error(400, "InvalidRequest", eligible(d))
      assert_error(400, "InvalidRequest", http("POST", MFN .. "/shipments", { token = rdt, body = {
        ShipmentRequestDetails = details("902-1845936-5435065", { { "52986411826454", 1 } }) } }))
    end)

    it("InvalidShipFromAddress", function()
      local from = ship_from()
      from.PostalCode = "ABCDE"
      local msg = assert_error(400, "InvalidShipFromAddress",
        eligible(details("902-1845936-5435065", { { "52986411826454", 1 } }, { from = from })))
      assert.matches("ZIP", msg, 1, true)
      from = ship_from()
      from.CountryCode = "CA"
      assert_error(400, "InvalidShipFromAddress",
        create(details("902-1845936-5435065", { { "52986411826455", 1 } }, { from = from }), "UPS_PTP_GND"))
    end)

    it("RegionNotSupported", function()
      assert_error(404, "RegionNotSupported", eligible(details("701-2345678-9012345", { { "70000000000001", 1 } })))
    end)

    it("ItemsNotInOrder", function()
      local order = new_order({ { "9101", 2 } })
      assert_error(404, "ItemsNotInOrder", eligible(details(order, { { "NOPE", 1 } })))
      assert_error(404, "ItemsNotInOrder", create(details(order, { { "9101", 3 } }), "UPS_PTP_GND"))
    end)

    it("ShippingServiceNotAvailable", function()
      local order = new_order({ { "9201", 1 } })
      assert_error(404, "ShippingServiceNotAvailable", create(details(order, { { "9201", 1 } }), "NO_SUCH_SERVICE"))
      -- First Class is limited to 15.99 oz: rejected in the quote, not available for the label
      local st, body = eligible(details(order, { { "9201", 1 } }, { oz = 20 }))
      assert.equal(200, st)
      assert.equal("USPS_PTP_FIRST_CLASS", body.payload.RejectedShippingServiceList[1].ShippingServiceId)
      for _, s in ipairs(body.payload.ShippingServiceList) do assert.not_equal("USPS_PTP_FIRST_CLASS", s.ShippingServiceId) end
      assert_error(404, "ShippingServiceNotAvailable",
        create(details(order, { { "9201", 1 } }, { oz = 20 }), "USPS_PTP_FIRST_CLASS"))
    end)

    it("InvalidShippingServiceOfferId", function()
      local order = new_order({ { "9301", 1 } })
      local d = details(order, { { "9301", 1 } })
      assert_error(400, "InvalidShippingServiceOfferId", create(d, "UPS_PTP_GND", "bm90LWFuLW9mZmVy"))
      local ups = offer_for(d, "UPS_PTP_GND")
      assert_error(400, "InvalidShippingServiceOfferId", create(d, "FEDEX_PTP_HOME_DELIVERY", ups.ShippingServiceOfferId))
    end)

    it("ShippingServiceOfferNotAvailable when the offer expired or the rate changed", function()
      local order = new_order({ { "9401", 1 } })
      local d = details(order, { { "9401", 1 } })
      local offer = offer_for(d, "UPS_PTP_GND")
      local heavier = details(order, { { "9401", 1 } }, { oz = 40 })
      assert_error(400, "ShippingServiceOfferNotAvailable", create(heavier, "UPS_PTP_GND", offer.ShippingServiceOfferId))
      advance(2 * 3600)
      local msg = assert_error(400, "ShippingServiceOfferNotAvailable", create(d, "UPS_PTP_GND", offer.ShippingServiceOfferId))
      assert.matches("expired", msg, 1, true)
      -- a fresh quote works
      local st = create(d, "UPS_PTP_GND", offer_for(d, "UPS_PTP_GND").ShippingServiceOfferId)
      assert.equal(200, st)
    end)

    it("LabelFormatNotSupported", function()
      local order = new_order({ { "9501", 1 } })
      local msg = assert_error(400, "LabelFormatNotSupported",
        create(details(order, { { "9501", 1 } }, { format = "ZPL300" }), "USPS_PTP_PRI"))
      assert.matches("ZPL300", msg, 1, true)
    end)

    it("ShipmentRequestDetailsTooRestrictive", function()
      local order = new_order({ { "9601", 1 } })
      local c = assert(sandbox.control("/_sandbox/clock"))
      local d = details(order, { { "9601", 1 } }, { must_arrive = iso(c.now + 36 * 3600) })
      -- no ground service can arrive in 36 hours: not offered, and too restrictive to buy
      local st, body = eligible(d)
      assert.equal(200, st)
      for _, s in ipairs(body.payload.ShippingServiceList) do assert.not_equal("UPS_PTP_GND", s.ShippingServiceId) end
      assert_error(400, "ShipmentRequestDetailsTooRestrictive", create(d, "UPS_PTP_GND"))
      d = details(order, { { "9601", 1 } }, { experience = "DeliveryConfirmationWithSignature" })
      assert_error(400, "ShipmentRequestDetailsTooRestrictive", create(d, "USPS_PTP_FIRST_CLASS"))
    end)

    it("ShipmentAlreadyExists names the existing shipment", function()
      local order = new_order({ { "9701", 1 } })
      local d = details(order, { { "9701", 1 } })
      local st, body = create(d, "UPS_PTP_GND")
      assert.equal(200, st)
      local msg = assert_error(400, "ShipmentAlreadyExists", create(d, "UPS_PTP_GND"))
      assert.matches(body.payload.ShipmentId, msg, 1, true)
    end)

    it("InsufficientFunds", function()
      local order = new_order({ { "9801", 1 } })
      assert(sandbox.control("/_sandbox/programs/merchant_fulfillment/account", { balance = 1 }))
      local ok, err = pcall(function()
        assert_error(400, "InsufficientFunds", create(details(order, { { "9801", 1 } }), "UPS_PTP_GND"))
      end)
      assert(sandbox.control("/_sandbox/programs/merchant_fulfillment/account", { balance = 1000 }))
      assert(ok, err)
      assert.equal(200, (create(details(order, { { "9801", 1 } }), "UPS_PTP_GND")))
    end)

    it("LabelCancelWindowExpired", function()
      local order = new_order({ { "9901", 1 } })
      local st, body = create(details(order, { { "9901", 1 } }), "USPS_PTP_FIRST_CLASS")
      assert.equal(200, st)
      advance(25 * 3600)
      assert_error(400, "LabelCancelWindowExpired",
        http("DELETE", MFN .. "/shipments/" .. body.payload.ShipmentId, { token = rdt }))
      st, body = http("GET", MFN .. "/shipments/" .. body.payload.ShipmentId, { token = rdt })
      assert.equal("Purchased", body.payload.Status)
    end)

    it("InvalidState for a label whose refund the carrier rejected", function()
      local order = new_order({ { "9961", 1 } })
      local st, body = create(details(order, { { "9961", 1 } }), "UPS_PTP_GND")
      assert.equal(200, st)
      local id = body.payload.ShipmentId
      assert.equal(200, (http("DELETE", MFN .. "/shipments/" .. id, { token = rdt })))
      assert(sandbox.control("/_sandbox/programs/merchant_fulfillment/reject_refund", { ShipmentId = id }))
      advance(3600)
      st, body = http("GET", MFN .. "/shipments/" .. id, { token = rdt })
      assert.equal("RefundRejected", body.payload.Status)
      assert_error(404, "InvalidState", http("DELETE", MFN .. "/shipments/" .. id, { token = rdt }))
      -- the items stay shipped
      assert_error(400, "ShipmentAlreadyExists", create(details(order, { { "9961", 1 } }), "UPS_PTP_GND"))
    end)

    it("403 for label operations without a restricted data token", function()
      local order = new_order({ { "9951", 1 } })
      local st, body = http("POST", MFN .. "/shipments", { body = {
        ShipmentRequestDetails = details(order, { { "9951", 1 } }), ShippingServiceId = "UPS_PTP_GND" } })
      assert.equal(403, st)
      assert.is_string(body.errors[1].code)
    end)
  end)
end)
