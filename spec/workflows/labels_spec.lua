-- spapi.labels: labels from real sandbox answers (VDF createShippingLabels, MFN
-- createShipment) saved as the files they are; bad contents refused.
local H = require "helpers"
local labels = require "spapi.labels"
local core = require "spapi.core"

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

describe("spapi.labels", function()
  local sb, sp, dir

  setup(function()
    sb = H.sandbox{ reset = true }
    assert(sb.control("/_sandbox/config", { rate_scale = 100 }))
    sp = assert(require("spapi").client{ env = false, endpoint = sb.endpoint, lwa_endpoint = sb.lwa_endpoint,
      client_id = "amzn1.application-oa2-client.labels", client_secret = "s", refresh_token = "Atzr|labels-spec" })
  end)
  teardown(function() sb.control("/_sandbox/config", { rate_scale = 1 }) end)
  before_each(function() dir = H.tmpdir("labels") end)

  it("saves a Vendor DF shipping label as the PNG it is, one file per package", function()
    local now = sb.control("/_sandbox/clock").now
    local iso = function(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t)) end
    local list = assert(sp.vendor_df_orders.getOrders{ status = "NEW", createdAfter = iso(now - 86400),
      createdBefore = iso(now + 60) })
    local po = assert(list.orders[1], "the sandbox seeds NEW purchase orders")
    local d, items = po.orderDetails, {}
    for i, it in ipairs(d.items) do
      items[i] = { itemSequenceNumber = it.itemSequenceNumber, acknowledgedQuantity = it.orderedQuantity }
    end
    assert(sp.vendor_df_orders.submitAcknowledgement{ body = { orderAcknowledgements = { {
      purchaseOrderNumber = po.purchaseOrderNumber, vendorOrderNumber = "V1", acknowledgementDate = iso(now),
      acknowledgementStatus = { code = "00" }, sellingParty = d.sellingParty, shipFromParty = d.shipFromParty,
      itemAcknowledgements = items } } } })
    assert(sb.control("/_sandbox/clock", { advance = 120 }))
    local label = assert(sp.vendor_df_shipping.createShippingLabels{ purchaseOrderNumber = po.purchaseOrderNumber,
      body = { sellingParty = d.sellingParty, shipFromParty = d.shipFromParty, containers = {
        { containerType = "Carton", containerIdentifier = "C1", weight = { unitOfMeasure = "KG", value = "1" },
          packedItems = { { itemSequenceNumber = 1, packedQuantity = { amount = 1, unitOfMeasure = "Each" } } } },
        { containerType = "Carton", containerIdentifier = "C2", weight = { unitOfMeasure = "KG", value = "1" },
          packedItems = { { itemSequenceNumber = 1, packedQuantity = { amount = 1, unitOfMeasure = "Each" } } } },
      } } })
    local files = assert(labels.save(label, { dir = dir }))
    assert.equal(2, #files)
    for i, f in ipairs(files) do
      assert.equal("PNG", f.type)
      assert.equal(dir .. "/" .. po.purchaseOrderNumber .. "-C" .. i .. ".png", f.path)
      assert.equal(label.labelData[i].trackingNumber, f.tracking)
      local bytes = slurp(f.path)
      assert.equal("\137PNG\r\n\26\n", bytes:sub(1, 8))
      assert.equal(core.b64decode(label.labelData[i].content), bytes)
      assert.equal(#bytes, f.bytes)
    end
    -- the same label read back through getShippingLabel (a restricted operation) saves the same
    local again = assert(sp.vendor_df_shipping.getShippingLabel{ purchaseOrderNumber = po.purchaseOrderNumber })
    local files2 = assert(labels.save(again, { dir = dir, name = "again" }))
    assert.equal(dir .. "/again-C1.png", files2[1].path)
    assert.equal(slurp(files[1].path), slurp(files2[1].path))
  end)

  it("saves Merchant Fulfillment labels (gzip, checked against their MD5) as PDF, ZPL and PNG", function()
    for n, want in ipairs({ { "PDF", "PDF", "%PDF-" }, { "ZPL203", "ZPL", "^XA" }, { "PNG", "PNG", "\137PNG" } }) do
      local order = string.format("113-%07d-%07d", 7770000 + n, 7654321)
      assert(sb.control("/_sandbox/programs/merchant_fulfillment/order",
        { AmazonOrderId = order, items = { { OrderItemId = "LBL" .. n, Quantity = 1, ASIN = "B0LABEL" .. n } } }))
      local details = { AmazonOrderId = order, ItemList = { { OrderItemId = "LBL" .. n, Quantity = 1 } },
        ShipFromAddress = { Name = "John Doe", AddressLine1 = "300 Turnbull Ave", Email = "jdoe@example.com",
          City = "Detroit", StateOrProvinceCode = "MI", PostalCode = "48123", CountryCode = "US", Phone = "7132341234" },
        PackageDimensions = { Length = 10, Width = 8, Height = 4, Unit = "inches" }, Weight = { Value = 10, Unit = "oz" },
        ShippingServiceOptions = { DeliveryExperience = "DeliveryConfirmationWithoutSignature",
          CarrierWillPickUp = false, LabelFormat = want[1] } }
      local offers = assert(sp.merchant_fulfillment.getEligibleShipmentServices{ body = {
        ShipmentRequestDetails = details } })
      local s = assert(offers.payload.ShippingServiceList[1])
      local shipment = assert(sp.merchant_fulfillment.createShipment{ body = { ShipmentRequestDetails = details,
        ShippingServiceId = s.ShippingServiceId, ShippingServiceOfferId = s.ShippingServiceOfferId } })
      local files = assert(labels.save(shipment, { dir = dir }))
      assert.equal(1, #files)
      assert.equal(want[2], files[1].type)
      local id = shipment.payload.ShipmentId
      assert.equal(dir .. "/" .. id .. "." .. want[2]:lower(), files[1].path)
      local bytes = slurp(files[1].path)
      assert.equal(want[3], bytes:sub(1, #want[3]))
      local fc = shipment.payload.Label.FileContents
      assert.equal(core.gunzip(core.b64decode(fc.Contents)), bytes)
      -- decode alone gives the bytes without writing
      local dec = assert(labels.decode(shipment.payload.Label))
      assert.equal(bytes, dec[1].data)
      assert.is_true(dec[1].compressed)
    end
  end)

  describe("refuses what is not the label it claims to be", function()
    local pdf = "%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
    local function mfn(data, file_type, checksum)
      local gz = core.gzip(data)
      return { FileContents = { Contents = core.b64encode(gz), FileType = file_type,
        Checksum = checksum or core.b64encode(core.md5(gz)) } }
    end

    it("a checksum that does not match", function()
      assert(labels.decode(mfn(pdf, "application/pdf")))
      assert(labels.decode(mfn(pdf, "application/pdf", core.b64encode(core.md5(pdf))))) -- MD5 of the file also counts
      local l, err = labels.decode(mfn(pdf, "application/pdf", core.b64encode(core.md5("other"))))
      assert.is_nil(l)
      assert.equal("LabelChecksum", err.code)
    end)

    it("contents of another type than declared, or of no known type", function()
      local l, err = labels.decode(mfn(pdf, "image/png"))
      assert.is_nil(l)
      assert.equal("LabelType", err.code)
      assert.matches("declared PNG but its contents are PDF", err.message)
      l, err = labels.decode({ labelFormat = "ZPL", purchaseOrderNumber = "X1",
        labelData = { { content = core.b64encode("^XA^FDhello^FS^XZ") } } })
      assert.equal("ZPL", l[1].type)
      l, err = labels.decode({ content = core.b64encode("just some text") })
      assert.is_nil(l)
      assert.equal("LabelType", err.code)
      assert(labels.decode({ content = core.b64encode("just some text") }, { format = "ZPL" }))
    end)

    it("contents that are not base64 or not gzip", function()
      local l, err = labels.decode({ labelFormat = "PNG", labelData = { { content = "***" } } })
      assert.is_nil(l)
      assert.equal("LabelUndecodable", err.code)
      l, err = labels.decode({ FileContents = { Contents = core.b64encode("\31\139broken"), FileType = "application/pdf" } })
      assert.is_nil(l)
      assert.equal("LabelUndecodable", err.code)
    end)

    it("a write that fails, and arguments of the wrong kind", function()
      local l, err = labels.save({ content = core.b64encode(pdf) }, { dir = dir .. "/missing/dir" })
      assert.is_nil(l)
      assert.equal("LabelWriteFailed", err.code)
      assert.error_matches(function() labels.save("PO1") end, "'label' must be a label table")
      assert.error_matches(function() labels.save({ foo = 1 }) end, "is not a VDF ShippingLabel")
      assert.error_matches(function() labels.save({ content = "x" }, { dir = 5 }) end, "'opts.dir' must be a string")
    end)
  end)
end)
