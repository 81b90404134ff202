-- Feeds against a real sandbox, over plain HTTP: createFeedDocument → upload →
-- createFeed → the sandbox clock moves the feed IN_QUEUE → IN_PROGRESS → DONE →
-- getFeedDocument → download (gunzip when compressed) → processing report →
-- the listings changed. POST_ORDER_FULFILLMENT_DATA (XML) records shipment
-- confirmations; broken input ends FATAL; cancelFeed only while IN_QUEUE.
local H = require "helpers"
local core = require "spapi.core"
local xml = require "spapi.sandbox.xml"
local cjson = require("cjson.safe").new()

local FEEDS = "/feeds/2021-06-30"
local SS = "/supplySources/2020-07-01/supplySources"
local SELLER = "A1FEEDSPECSELLER"
local MARKET = "ATVPDKIKX0DER"
local ITEMS = "/listings/2021-08-01/items/" .. SELLER

describe("sandbox: Feeds", function()
  local sandbox, token

  local function http(method, path, o)
    o = o or {}
    if o.token == nil then o.token = token end
    local status, headers, body, raw = H.sandbox_http(method, path, o)
    assert(status, headers)
    return status, body, raw, headers
  end

  local function advance(seconds)
    assert(sandbox.control("/_sandbox/clock", { advance = seconds }))
  end

  local function supply_source(code, alias)
    local st, body = http("POST", SS, { body = { supplySourceCode = code, alias = alias, address = {
      name = alias, addressLine1 = "1 Main St", stateOrRegion = "WA", countryCode = "US" } } })
    assert.equal(200, st)
    st = http("PUT", SS .. "/" .. body.supplySourceId .. "/status", { body = { status = "Active" } })
    assert.equal(204, st)
    return body.supplySourceId
  end

  -- createFeedDocument + PUT the bytes to its url; returns the document id
  local function upload(content, content_type, opts)
    opts = opts or {}
    local st, body = http("POST", FEEDS .. "/documents", { body = { contentType = content_type } })
    assert.equal(201, st)
    assert.is_string(body.feedDocumentId)
    assert.matches("^https?://", body.url)
    local bytes = opts.gzip and assert(core.gzip(content)) or content
    local ust = http("PUT", body.url, { token = false, body = bytes, headers = { ["Content-Type"] = content_type } })
    assert.equal(200, ust)
    return body.feedDocumentId
  end

  local function create_feed(feed_type, doc_id)
    local st, body, raw = http("POST", FEEDS .. "/feeds", { body = { feedType = feed_type,
      marketplaceIds = { MARKET }, inputFeedDocumentId = doc_id } })
    assert.equal(202, st, raw)
    assert.is_string(body.feedId)
    return body.feedId
  end

  local function get_feed(id)
    local st, body = http("GET", FEEDS .. "/feeds/" .. id)
    assert.equal(200, st)
    assert.equal(id, body.feedId)
    return body
  end

  -- the result document of a finished feed: text (gunzipped when needed), getFeedDocument body
  local function result_document(feed)
    assert.is_string(feed.resultFeedDocumentId)
    local st, doc = http("GET", FEEDS .. "/documents/" .. feed.resultFeedDocumentId)
    assert.equal(200, st)
    assert.equal(feed.resultFeedDocumentId, doc.feedDocumentId)
    local dst, _, raw = http("GET", doc.url, { token = false })
    assert.equal(200, dst)
    if doc.compressionAlgorithm == "GZIP" then raw = assert(core.gunzip(raw)) end
    return raw, doc
  end

  local function availability(sku)
    local st, body = http("GET", ITEMS .. "/" .. core.urlencode(sku), { query = { marketplaceIds = MARKET,
      includedData = "fulfillmentAvailability,summaries" } })
    if st == 404 then return nil end
    assert.equal(200, st)
    local map = {}
    for _, e in ipairs(body.fulfillmentAvailability) do map[e.fulfillmentChannelCode] = e.quantity end
    return map, body
  end

  local function listings_feed(messages, report)
    local header = { sellerId = SELLER, version = "2.0" }
    if report then header.report = { includedData = report, apiVersion = "2021-08-01" } end
    return assert(cjson.encode({ header = header, messages = messages }))
  end

  before_each(function()
    sandbox = H.sandbox{ reset = { speed = 0 } } -- the clock moves only when told
    assert(sandbox.control("/_sandbox/config", { rate_scale = 100 })) -- not a throttling spec
    token = token or H.sandbox_token()
  end)

  it("applies a gzip-uploaded JSON_LISTINGS_FEED once and reports on it (compressed)", function()
    local s1 = supply_source("FEED-S1", "Feed Store 1")
    supply_source("FEED-S2", "Feed Store 2")
    local feed = listings_feed({
      { messageId = 1, sku = "ssnm001", operationType = "UPDATE", productType = "PRODUCT",
        requirements = "LISTING_OFFER_ONLY",
        attributes = { fulfillment_availability = { { fulfillment_channel_code = "DEFAULT", quantity = 3 } } } },
      { messageId = 2, sku = "ssnm001", operationType = "PATCH", productType = "PRODUCT",
        patches = { { op = "replace", path = "/attributes/fulfillment_availability", value = {
          { fulfillment_channel_code = s1, quantity = 10 },
          { fulfillment_channel_code = "FEED-S2", quantity = 5 },
          { fulfillment_channel_code = "DEFAULT", quantity = 0 } } } } },
      { messageId = 3, sku = "ssnm002", operationType = "UPDATE", productType = "PRODUCT",
        requirements = "LISTING_OFFER_ONLY",
        attributes = { fulfillment_availability = { { fulfillment_channel_code = "Feed Store 1", quantity = 7 },
          { fulfillment_channel_code = "DEFAULT", quantity = 0 } } } },
      -- refused: a supply source that does not exist
      { messageId = 4, sku = "ssnm002", operationType = "PATCH", productType = "PRODUCT",
        patches = { { op = "replace", path = "/attributes/fulfillment_availability",
          value = { { fulfillment_channel_code = "NOWHERE", quantity = 1 } } } } },
      -- refused: DELETE takes no productType
      { messageId = 5, sku = "ssnm002", operationType = "DELETE", productType = "PRODUCT" },
      -- refused: PARTIAL_UPDATE needs an existing listing
      { messageId = 6, sku = "ssnm003", operationType = "PARTIAL_UPDATE", productType = "PRODUCT",
        attributes = { fulfillment_availability = { { fulfillment_channel_code = "DEFAULT", quantity = 1 } } } },
    }, { "fulfillmentAvailability", "issues" })
    local doc = upload(feed, "application/json; charset=UTF-8", { gzip = true })
    local id = create_feed("JSON_LISTINGS_FEED", doc)

    local f = get_feed(id)
    assert.equal("IN_QUEUE", f.processingStatus)
    assert.equal("JSON_LISTINGS_FEED", f.feedType)
    assert.same({ MARKET }, f.marketplaceIds)
    assert.is_nil(f.resultFeedDocumentId)
    assert.is_nil(availability("ssnm001"))

    advance(12)
    f = get_feed(id)
    assert.equal("IN_PROGRESS", f.processingStatus)
    assert.is_string(f.processingStartTime)
    assert.is_nil(availability("ssnm001"))
    local st, body = http("DELETE", FEEDS .. "/feeds/" .. id)
    assert.equal(400, st)
    assert.is_string(body.errors[1].message)

    advance(30)
    f = get_feed(id)
    assert.equal("DONE", f.processingStatus)
    assert.is_string(f.processingEndTime)
    local text, rdoc = result_document(f)
    assert.equal("GZIP", rdoc.compressionAlgorithm)
    local report = assert(cjson.decode(text))
    assert.equal(id, report.header.feedId)
    assert.equal(SELLER, report.header.sellerId)
    assert.equal("2.0", report.header.version)
    local s = report.summary
    assert.same({ 6, 3, 3 }, { s.messagesProcessed, s.messagesAccepted, s.messagesInvalid })
    local errors, by_message = 0, {}
    for _, i in ipairs(report.issues) do
      if i.severity == "ERROR" then errors = errors + 1 end
      by_message[i.messageId] = i.code
    end
    assert.equal(errors, s.errors)
    assert.equal(3, s.errors)
    assert.equal("MLI_UNKNOWN_SUPPLY_SOURCE", by_message[4])
    assert.is_string(by_message[5])
    assert.equal("LISTING_NOT_FOUND", by_message[6])
    -- items are the listings as they are after the feed
    assert.equal(2, s.itemSummary.items)
    local items = {}
    for _, it in ipairs(report.items) do items[it.sku] = it end
    assert.same({ { fulfillmentChannelCode = "DEFAULT", quantity = 7 },
      { fulfillmentChannelCode = "Feed Store 1", quantity = 7 } }, items.ssnm002.fulfillmentAvailability)

    -- the listings changed, with DEFAULT consolidating the locations
    local map, item = availability("ssnm001")
    assert.same({ DEFAULT = 15, [s1] = 10, ["FEED-S2"] = 5 }, map)
    assert.same({ DEFAULT = 7, ["Feed Store 1"] = 7 }, (availability("ssnm002")))
    assert.is_nil(availability("ssnm003"))

    -- applied exactly once: later reads change nothing
    local updated = item.summaries[1].lastUpdatedDate
    advance(600)
    f = get_feed(id)
    assert.equal("DONE", f.processingStatus)
    local again
    map, again = availability("ssnm001")
    assert.equal(updated, again.summaries[1].lastUpdatedDate)
    assert.same({ DEFAULT = 15, [s1] = 10, ["FEED-S2"] = 5 }, map)
  end)

  it("serves an uncompressed report for a plain upload, and when asked compresses it", function()
    local feed = listings_feed({ { messageId = 1, sku = "plain-1", operationType = "UPDATE", productType = "PRODUCT",
      requirements = "LISTING_OFFER_ONLY",
      attributes = { fulfillment_availability = { { fulfillment_channel_code = "DEFAULT", quantity = 2 } } } } })
    local id = create_feed("JSON_LISTINGS_FEED", upload(feed, "application/json; charset=UTF-8"))
    assert(sandbox.control("/_sandbox/programs/feeds/config", { compressResults = true }))
    local id2 = create_feed("JSON_LISTINGS_FEED", upload(feed, "application/json; charset=UTF-8"))
    advance(60)
    local text, rdoc = result_document(get_feed(id))
    assert.is_nil(rdoc.compressionAlgorithm)
    local report = assert(cjson.decode(text))
    assert.same({ 1, 1, 0, 0 }, { report.summary.messagesProcessed, report.summary.messagesAccepted,
      report.summary.messagesInvalid, report.summary.errors })
    assert.same({}, report.issues)
    assert.is_nil(report.items) -- no includedData asked
    local text2, rdoc2 = result_document(get_feed(id2))
    assert.equal("GZIP", rdoc2.compressionAlgorithm)
    assert.equal(1, assert(cjson.decode(text2)).summary.messagesAccepted)
    assert.same({ DEFAULT = 2 }, (availability("plain-1")))
  end)

  it("ends FATAL on content that is not JSON, and reports envelope errors", function()
    local bad = create_feed("JSON_LISTINGS_FEED", upload("{ this is not json", "application/json"))
    local empty = create_feed("JSON_LISTINGS_FEED", upload(cjson.encode({ messages = {} }), "application/json"))
    local st, body = http("POST", FEEDS .. "/documents", { body = { contentType = "application/json" } })
    assert.equal(201, st)
    local never = create_feed("JSON_LISTINGS_FEED", body.feedDocumentId) -- never uploaded
    advance(60)
    local f = get_feed(bad)
    assert.equal("FATAL", f.processingStatus)
    local report = assert(cjson.decode((result_document(f))))
    assert.equal(1, report.summary.errors)
    assert.equal("ERROR", report.issues[1].severity)
    assert.matches("JSON", report.issues[1].message)

    f = get_feed(empty)
    assert.equal("DONE", f.processingStatus)
    report = assert(cjson.decode((result_document(f))))
    assert.same({ 0, 1 }, { report.summary.messagesProcessed, report.summary.errors })
    assert.matches("header", report.issues[1].message)

    f = get_feed(never)
    assert.equal("FATAL", f.processingStatus)
    report = assert(cjson.decode((result_document(f))))
    assert.matches("no content", report.issues[1].message)
  end)

  it("records shipment confirmations from POST_ORDER_FULFILLMENT_DATA", function()
    local feed = [[<?xml version="1.0" encoding="utf-8"?>
<AmazonEnvelope xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <Header><DocumentVersion>1.01</DocumentVersion><MerchantIdentifier>M_SPEC</MerchantIdentifier></Header>
  <MessageType>OrderFulfillment</MessageType>
  <Message>
    <MessageID>1</MessageID>
    <OrderFulfillment>
      <AmazonOrderID>701-1234567-7654321</AmazonOrderID>
      <FulfillmentDate>2023-01-01T01:01:01+02:00</FulfillmentDate>
      <FulfillmentData>
        <CarrierCode>USPS</CarrierCode>
        <ShippingMethod>USPS First Class Mail</ShippingMethod>
        <ShipperTrackingNumber>1234567891011121314</ShipperTrackingNumber>
      </FulfillmentData>
      <Item><AmazonOrderItemCode>11111111111111</AmazonOrderItemCode><Quantity>2</Quantity></Item>
    </OrderFulfillment>
  </Message>
  <Message>
    <MessageID>2</MessageID>
    <OrderFulfillment>
      <AmazonOrderID>702-1234567-7654321</AmazonOrderID>
      <FulfillmentDate>2023-01-02T00:00:00Z</FulfillmentDate>
      <FulfillmentData>
        <CarrierCode>Other</CarrierCode>
        <CarrierName>Kangaroo &amp; Sons</CarrierName>
        <ShippingMethod>Ground</ShippingMethod>
        <ShipperTrackingNumber>KS-1</ShipperTrackingNumber>
      </FulfillmentData>
    </OrderFulfillment>
  </Message>
  <Message>
    <MessageID>3</MessageID>
    <OrderFulfillment>
      <AmazonOrderID>703-1234567-7654321</AmazonOrderID>
      <FulfillmentDate>2023-01-02T00:00:00Z</FulfillmentDate>
      <FulfillmentData><CarrierCode>Other</CarrierCode><ShippingMethod>Ground</ShippingMethod>
        <ShipperTrackingNumber>X-1</ShipperTrackingNumber></FulfillmentData>
    </OrderFulfillment>
  </Message>
</AmazonEnvelope>]]
    local id = create_feed("POST_ORDER_FULFILLMENT_DATA", upload(feed, "text/xml; charset=UTF-8"))
    local broken = create_feed("POST_ORDER_FULFILLMENT_DATA", upload("<AmazonEnvelope><Message></AmazonEnvelope>",
      "text/xml; charset=UTF-8"))
    advance(60)
    local f = get_feed(id)
    assert.equal("DONE", f.processingStatus)
    local root = assert(xml.parse((result_document(f))))
    local pr = xml.child(xml.child(root, "Message"), "ProcessingReport")
    assert.equal(id, xml.text(pr, "DocumentTransactionID"))
    local sum = xml.child(pr, "ProcessingSummary")
    assert.same({ "3", "2", "1" }, { xml.text(sum, "MessagesProcessed"), xml.text(sum, "MessagesSuccessful"),
      xml.text(sum, "MessagesWithError") })
    local results = xml.children(pr, "Result")
    assert.equal(1, #results)
    assert.equal("3", xml.text(results[1], "MessageID"))
    assert.equal("Error", xml.text(results[1], "ResultCode"))
    assert.matches("CarrierName", xml.text(results[1], "ResultDescription"))

    local ships = assert(sandbox.control("/_sandbox/programs/feeds/shipments", {})).shipments
    assert.equal(2, #ships)
    local by_order = {}
    for _, s in ipairs(ships) do by_order[s.amazonOrderId] = s end
    local s1 = by_order["701-1234567-7654321"]
    assert.same({ "USPS", "USPS First Class Mail", "1234567891011121314", "2022-12-31T23:01:01Z", id },
      { s1.carrierCode, s1.shippingMethod, s1.shipperTrackingNumber, s1.fulfillmentDate, s1.feedId })
    assert.equal(2, s1.items[1].quantity)
    assert.equal("Kangaroo & Sons", by_order["702-1234567-7654321"].carrierName)
    assert.is_nil(by_order["703-1234567-7654321"])

    f = get_feed(broken)
    assert.equal("FATAL", f.processingStatus)
    root = assert(xml.parse((result_document(f))))
    pr = xml.child(xml.child(root, "Message"), "ProcessingReport")
    assert.matches("XML", xml.text(xml.child(pr, "Result"), "ResultDescription"))
  end)

  it("refuses XML with a DOCTYPE (no entity expansion) and reports missing confirmation data", function()
    local xxe = [[<?xml version="1.0"?>
<!DOCTYPE AmazonEnvelope [<!ENTITY xxe SYSTEM "file:///etc/passwd"><!ENTITY a "aaaaaaaaaa">]>
<AmazonEnvelope><MessageType>OrderFulfillment</MessageType><Message><MessageID>1</MessageID>
<OrderFulfillment><AmazonOrderID>&xxe;</AmazonOrderID></OrderFulfillment></Message></AmazonEnvelope>]]
    local missing = [[<AmazonEnvelope><Header><MerchantIdentifier>M</MerchantIdentifier></Header>
<MessageType>OrderFulfillment</MessageType>
<Message><MessageID>1</MessageID><OrderFulfillment><MerchantOrderID>M-1</MerchantOrderID>
<FulfillmentDate>yesterday</FulfillmentDate><FulfillmentData><CarrierCode>UPS</CarrierCode></FulfillmentData>
<Item><MerchantOrderItemID>I-1</MerchantOrderItemID><Quantity>0</Quantity></Item></OrderFulfillment></Message>
</AmazonEnvelope>]]
    local a = create_feed("POST_ORDER_FULFILLMENT_DATA", upload(xxe, "text/xml"))
    local b = create_feed("POST_ORDER_FULFILLMENT_DATA", upload(missing, "text/xml"))
    advance(60)
    local f = get_feed(a)
    assert.equal("FATAL", f.processingStatus)
    local text = result_document(f)
    assert.matches("DOCTYPE", text)
    assert.is_nil(text:find("root:", 1, true))

    f = get_feed(b)
    assert.equal("DONE", f.processingStatus)
    local pr = xml.child(xml.child(assert(xml.parse((result_document(f)))), "Message"), "ProcessingReport")
    assert.equal("1", xml.text(xml.child(pr, "ProcessingSummary"), "MessagesWithError"))
    local descriptions = {}
    for _, r in ipairs(xml.children(pr, "Result")) do descriptions[#descriptions + 1] = xml.text(r, "ResultDescription") end
    local all = table.concat(descriptions, "\n")
    for _, what in ipairs({ "FulfillmentDate", "ShippingMethod", "ShipperTrackingNumber", "Quantity" }) do
      assert.matches(what, all)
    end
    assert.same({}, assert(sandbox.control("/_sandbox/programs/feeds/shipments", { merchantOrderId = "M-1" })).shipments)
  end)

  it("cancels only feeds that are IN_QUEUE, and never applies them", function()
    local feed = listings_feed({ { messageId = 1, sku = "cancelled-1", operationType = "UPDATE", productType = "PRODUCT",
      requirements = "LISTING_OFFER_ONLY",
      attributes = { fulfillment_availability = { { fulfillment_channel_code = "DEFAULT", quantity = 2 } } } } })
    local id = create_feed("JSON_LISTINGS_FEED", upload(feed, "application/json"))
    local st, _, raw = http("DELETE", FEEDS .. "/feeds/" .. id)
    assert.equal(200, st)
    assert.equal("", raw or "")
    local f = get_feed(id)
    assert.equal("CANCELLED", f.processingStatus)
    st = http("DELETE", FEEDS .. "/feeds/" .. id)
    assert.equal(400, st)
    advance(120)
    f = get_feed(id)
    assert.equal("CANCELLED", f.processingStatus)
    assert.is_nil(f.resultFeedDocumentId)
    assert.is_nil(availability("cancelled-1"))
    st = http("DELETE", FEEDS .. "/feeds/99999")
    assert.equal(404, st)
    st = http("GET", FEEDS .. "/feeds/99999")
    assert.equal(404, st)
  end)

  it("lists feeds with filters and nextToken paging", function()
    local doc = upload(listings_feed({ { messageId = 1, sku = "list-1", operationType = "DELETE" } }), "application/json")
    local ids = {}
    for i = 1, 3 do ids[i] = create_feed("JSON_LISTINGS_FEED", doc) advance(1) end
    local xid = create_feed("POST_ORDER_FULFILLMENT_DATA", upload("<AmazonEnvelope/>", "text/xml"))
    assert.equal(200, (http("DELETE", FEEDS .. "/feeds/" .. ids[2])))

    local st, body = http("GET", FEEDS .. "/feeds", { query = { feedTypes = "JSON_LISTINGS_FEED", pageSize = 2 } })
    assert.equal(200, st)
    assert.equal(2, #body.feeds)
    assert.is_string(body.nextToken)
    local seen = { body.feeds[1].feedId, body.feeds[2].feedId }
    st, body = http("GET", FEEDS .. "/feeds", { query = { nextToken = body.nextToken } })
    assert.equal(200, st)
    assert.equal(1, #body.feeds)
    assert.is_nil(body.nextToken)
    seen[3] = body.feeds[1].feedId
    assert.same({ ids[3], ids[2], ids[1] }, seen) -- newest first

    st, body = http("GET", FEEDS .. "/feeds", { query = { feedTypes = "JSON_LISTINGS_FEED,POST_ORDER_FULFILLMENT_DATA",
      processingStatuses = "CANCELLED" } })
    assert.equal(200, st)
    assert.equal(1, #body.feeds)
    assert.equal(ids[2], body.feeds[1].feedId)
    st, body = http("GET", FEEDS .. "/feeds", { query = { feedTypes = "POST_ORDER_FULFILLMENT_DATA" } })
    assert.equal(1, #body.feeds)
    assert.equal(xid, body.feeds[1].feedId)

    -- refused: no feedTypes nor nextToken; nextToken with other parameters; a bad status
    st = http("GET", FEEDS .. "/feeds")
    assert.equal(400, st)
    st = http("GET", FEEDS .. "/feeds", { query = { nextToken = "x", feedTypes = "JSON_LISTINGS_FEED" } })
    assert.equal(400, st)
    st = http("GET", FEEDS .. "/feeds", { query = { feedTypes = "JSON_LISTINGS_FEED", processingStatuses = "LOST" } })
    assert.equal(400, st)
  end)

  it("validates createFeed and createFeedDocument", function()
    local doc = upload("{}", "application/json")
    local st, body = http("POST", FEEDS .. "/feeds", { body = { feedType = "POST_PRODUCT_DATA",
      marketplaceIds = { MARKET }, inputFeedDocumentId = doc } })
    assert.equal(400, st)
    assert.equal("InvalidInput", body.errors[1].code)
    st = http("POST", FEEDS .. "/feeds", { body = { feedType = "JSON_LISTINGS_FEED",
      marketplaceIds = { MARKET }, inputFeedDocumentId = "no-such-document" } })
    assert.equal(400, st)
    st = http("POST", FEEDS .. "/feeds", { body = { feedType = "JSON_LISTINGS_FEED", marketplaceIds = {},
      inputFeedDocumentId = doc } })
    assert.equal(400, st)
    st = http("POST", FEEDS .. "/documents", { body = { other = "x" } })
    assert.equal(400, st)
    st = http("GET", FEEDS .. "/documents/no-such-document")
    assert.equal(404, st)
  end)

  it("refuses ShipFromSupplySourceId and records ShipFromAddress, as the MLI guide says", function()
    local of = require "spapi.feeds.order_fulfillment"
    local good = of.build{ merchant_id = "M_SPEC", confirmations = { { amazon_order_id = "711-1234567-7654321",
      date = "2026-12-01T10:00:00Z", carrier = "Bob's Bikes <local>", shipping_method = "Same day",
      tracking_number = "BB-1", ship_from = { name = "Seattle store", address_line1 = "1 Main St", city = "Seattle",
        state_or_region = "WA", postal_code = "98109", country_code = "US" } } } }
    local bad = [[<?xml version="1.0" encoding="UTF-8"?>
<AmazonEnvelope><Header><DocumentVersion>1.01</DocumentVersion><MerchantIdentifier>M_SPEC</MerchantIdentifier></Header>
<MessageType>OrderFulfillment</MessageType>
<Message><MessageID>1</MessageID><OrderFulfillment><AmazonOrderID>712-1234567-7654321</AmazonOrderID>
<FulfillmentDate>2026-12-01T10:00:00Z</FulfillmentDate><FulfillmentData><CarrierCode>USPS</CarrierCode>
<ShippingMethod>Ground</ShippingMethod><ShipperTrackingNumber>94001</ShipperTrackingNumber></FulfillmentData>
<ShipFromSupplySourceId>5a5b8e5c-0d1e-4f00-9000-00000000d3f7</ShipFromSupplySourceId>
</OrderFulfillment></Message></AmazonEnvelope>]]
    local g = create_feed("POST_ORDER_FULFILLMENT_DATA", upload(good, "text/xml; charset=UTF-8"))
    local b = create_feed("POST_ORDER_FULFILLMENT_DATA", upload(bad, "text/xml; charset=UTF-8"))
    advance(60)
    local report = assert(of.decode_report((result_document(get_feed(b)))))
    assert.equal(1, report.errors)
    assert.matches("ShipFromSupplySourceId is not supported", report.results[1].description)
    report = assert(of.decode_report((result_document(get_feed(g)))))
    assert.same({ 1, 1, 0 }, { report.processed, report.successful, report.errors })
    local ships = assert(sandbox.control("/_sandbox/programs/feeds/shipments",
      { amazonOrderId = "711-1234567-7654321" })).shipments
    assert.equal(1, #ships)
    assert.equal("Other", ships[1].carrierCode)
    assert.equal("Bob's Bikes <local>", ships[1].carrierName)
    assert.equal("Seattle store", ships[1].shipFromAddress.Name)
    assert.equal("98109", ships[1].shipFromAddress.PostalCode)
    assert.equal(0, #assert(sandbox.control("/_sandbox/programs/feeds/shipments",
      { amazonOrderId = "712-1234567-7654321" })).shipments)
  end)
end)
