-- Feed documents through the client against the local sandbox: create the document,
-- upload, create the feed, wait, download the (gzip'd) result, see the listing
-- change. Encrypted documents against a plain nginx serving the bytes.
local H = require "helpers"
local core = require "spapi.core"
local json = require "spapi.json"

local SELLER, MARKET = "A1SANDBOXSELLER", "ATVPDKIKX0DER"

local function client(sb)
  return assert(require("spapi").client{ env = false, endpoint = sb.endpoint, lwa_endpoint = sb.lwa_endpoint,
    client_id = "amzn1.application-oa2-client.docs", client_secret = "s", refresh_token = "Atzr|docs",
    retry_base = 0.05 })
end

describe("documents", function()
  local sb, sp
  before_each(function()
    sb = H.sandbox{ reset = { speed = 0 } }
    assert(sb.control("/_sandbox/config", { rate_scale = 100 }))
    sp = client(sb)
  end)

  local function submit(content, compressed)
    assert(sb.control("/_sandbox/programs/feeds/config", { compressResults = compressed }))
    local ct = "application/json; charset=UTF-8"
    local doc = assert(sp.feeds.createFeedDocument{ body = { contentType = ct } })
    assert(sp:upload_document(doc, content, ct))
    local feed = assert(sp.feeds.createFeed{ body = { feedType = "JSON_LISTINGS_FEED", marketplaceIds = { MARKET },
      inputFeedDocumentId = doc.feedDocumentId } })
    assert(sb.control("/_sandbox/clock", { advance = 120 }))
    local f = assert(sp.feeds.getFeed{ feedId = feed.feedId })
    assert.equal("DONE", f.processingStatus)
    local meta = assert(sp.feeds.getFeedDocument{ feedDocumentId = f.resultFeedDocumentId })
    return meta, assert(sp:download_document(meta))
  end

  local function feed_text(sku, qty)
    return assert(json.encode{ header = { sellerId = SELLER, version = "2.0" }, messages = { {
      messageId = 1, sku = sku, operationType = "UPDATE", productType = "PRODUCT", requirements = "LISTING_OFFER_ONLY",
      attributes = { fulfillment_availability = { { fulfillment_channel_code = "DEFAULT", quantity = qty } } } } } })
  end

  it("uploads a feed, and downloads and gunzips its processing report", function()
    local meta, text = submit(feed_text("doc sku/1", 4), true)
    assert.equal("GZIP", meta.compressionAlgorithm)
    local report = assert(json.decode(text))
    assert.equal(1, report.summary.messagesAccepted)
    assert.equal(0, report.summary.errors)
    local item = assert(sp.listings_items.getListingsItem{ sellerId = SELLER, sku = "doc sku/1",
      marketplaceIds = { MARKET }, includedData = { "fulfillmentAvailability" } })
    assert.equal(4, item.fulfillmentAvailability[1].quantity)
  end)

  it("downloads an uncompressed report as is", function()
    local meta, text = submit(feed_text("doc-2", 9), false)
    assert.is_nil(meta.compressionAlgorithm)
    assert.equal(1, assert(json.decode(text)).summary.messagesProcessed)
  end)

  it("refuses to upload without a content type or URL, naming what is missing", function()
    local ok, err = pcall(sp.upload_document, sp, { feedDocumentId = "x" }, "data", "text/plain")
    assert.is_false(ok)
    assert.matches("url", err)
    ok, err = pcall(sp.upload_document, sp, { url = "http://127.0.0.1:1/x" }, "data")
    assert.is_false(ok)
    assert.matches("content_type", err)
  end)
end)

describe("encrypted documents", function()
  it("decrypts AES-256-CBC (encryptionDetails) and then gunzips", function()
    local plain = string.rep("sku\tquantity\nABC-1\t7\n", 50)
    local key, iv = core.random_bytes(32), core.random_bytes(16)
    local dir = H.tmpdir("encdoc")
    local f = assert(io.open(dir .. "/doc.bin", "wb"))
    f:write(core.aes256cbc_encrypt(key, iv, core.gzip(plain)))
    f:close()
    local srv = H.nginx(string.format([[ location = /doc { default_type application/octet-stream; alias %s/doc.bin; }
      location = /missing { return 404; } ]], dir))
    local sp = assert(require("spapi").client{ env = false, endpoint = srv.url, client_id = "x", client_secret = "y",
      refresh_token = "z", max_retries = 0 })
    local meta = { reportDocumentId = "d1", url = srv.url .. "/doc", compressionAlgorithm = "GZIP",
      encryptionDetails = { standard = "AES", key = core.b64encode(key), initializationVector = core.b64encode(iv) } }
    assert.equal(plain, assert(sp:download_document(meta)))
    -- a wrong key does not produce garbage silently
    meta.encryptionDetails.key = core.b64encode(core.random_bytes(32))
    local none, err = sp:download_document(meta)
    assert.is_nil(none)
    -- the padding check catches it, or (1 in 256) the gunzip of the wrong bytes does
    assert.is_true(err.code == "DecryptFailed" or err.code == "DecompressFailed", tostring(err))
    local gone, err2 = sp:download_document{ url = srv.url .. "/missing" }
    assert.is_nil(gone)
    assert.equal(404, err2.status)
  end)
end)
