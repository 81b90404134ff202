-- Feed and report documents: the bytes behind createFeedDocument's upload URL and
-- getFeedDocument / getReportDocument's download URL. The URLs are pre-signed: no
-- access token is sent (it would leak it to the storage host). Downloads are
-- decrypted (AES-256-CBC, older documents with encryptionDetails) and gunzipped
-- (compressionAlgorithm = "GZIP") here.
--
--   local doc = assert(sp.feeds.createFeedDocument{ body = { contentType = "application/json; charset=UTF-8" } })
--   assert(sp:upload_document(doc, json_text, "application/json; charset=UTF-8"))
--   local meta = assert(sp.feeds.getFeedDocument{ feedDocumentId = id })
--   local text = assert(sp:download_document(meta))
local _M = {}

local core = require "spapi.core"
local errors = require "spapi.errors"
local config = require "spapi.config"
local retry = require "spapi.retry"

local type, tostring = type, tostring

local function fail(op, code, message, extra)
  local e = { kind = "document", code = code, message = message, operation = op }
  for k, v in pairs(extra or {}) do e[k] = v end
  return nil, errors.new(e)
end

-- One request to a storage URL, retried on network failures, 429 and 5xx by the
-- policy of every request (spapi.retry). → resp | nil, err
local function exchange(client, op, what, req)
  req.operation = op
  if not config.http_url(req.url) then
    return fail(op, "InvalidURL", "the document's " .. what .. " URL must be http:// or https:// (got scheme '"
      .. config.scheme(req.url) .. "')", { kind = "config" })
  end
  -- a pre-signed URL is a credential: not in clear to another machine unless allowed
  local secure, why = config.secure_enough(client.cfg, req.url, "the document's " .. what .. " URL")
  if not secure then return fail(op, "InsecureURL", why:gsub("^spapi: ", ""), { kind = "config" }) end
  -- a GET, or a PUT of the same bytes to the same URL, may be sent twice: the
  -- one retry policy, within the client's deadline for a call
  local clock = client.clock
  local resp, msg, kind, attempts = retry.exchange(client.cfg, clock, function(r) return client:_send(r) end, req,
    clock.monotonic() + client.cfg.deadline, true)
  if not resp then
    return fail(op, "NetworkError", tostring(msg), { kind = kind, retryable = true, attempts = attempts })
  end
  if resp.status < 200 or resp.status >= 300 then
    return fail(op, "HTTP" .. resp.status, what .. " refused: " .. tostring(resp.body):sub(1, 200),
      { status = resp.status, attempts = resp.attempts, retryable = resp.status >= 500 or resp.status == 429 })
  end
  return resp
end

--- PUT content to a document's pre-signed URL. doc: the createFeedDocument answer
--- ({ feedDocumentId, url }) or a URL string. → true | nil, err
function _M.upload(client, doc, content, content_type)
  local url = type(doc) == "table" and doc.url or doc
  if type(url) ~= "string" or url == "" then
    error("spapi: upload_document: the document has no url (pass createFeedDocument's answer)", 3)
  end
  if type(content) ~= "string" then error("spapi: upload_document: content must be a string", 3) end
  if type(content_type) ~= "string" or content_type == "" then
    error("spapi: upload_document: content_type is required (the one given to createFeedDocument)", 3)
  end
  -- a PUT of the same bytes to the same URL is idempotent: transient failures are retried
  local resp, err = exchange(client, "documents.upload", "upload",
    { method = "PUT", url = url, body = content, headers = { ["Content-Type"] = content_type } })
  if not resp then return nil, err end
  return true
end

--- GET a document from its download URL, decrypt and decompress it.
--- doc: getFeedDocument / getReportDocument's answer ({ url, compressionAlgorithm?,
--- encryptionDetails? }). → content | nil, err
function _M.download(client, doc)
  if type(doc) ~= "table" or type(doc.url) ~= "string" then
    error("spapi: download_document: pass getFeedDocument's or getReportDocument's answer (it has a url)", 3)
  end
  local resp, err = exchange(client, "documents.download", "download",
    { method = "GET", url = doc.url, headers = {} })
  if not resp then return nil, err end
  local data = resp.body
  local enc = doc.encryptionDetails
  if type(enc) == "table" then
    if enc.standard ~= "AES" then
      return fail("documents.download", "UnsupportedEncryption", "encryption standard " .. tostring(enc.standard))
    end
    local key, iv = core.b64decode(enc.key or ""), core.b64decode(enc.initializationVector or "")
    if not key or #key ~= 32 or not iv or #iv ~= 16 then
      return fail("documents.download", "BadEncryptionDetails", "the key must be 32 bytes and the IV 16 (base64)")
    end
    local plain, err = core.aes256cbc_decrypt(key, iv, data)
    if not plain then return fail("documents.download", "DecryptFailed", tostring(err)) end
    data = plain
  end
  local alg = doc.compressionAlgorithm
  if alg ~= nil and alg ~= "GZIP" then
    return fail("documents.download", "UnsupportedCompression", "compression algorithm " .. tostring(alg))
  end
  -- GZIP declared, or served with Content-Encoding: gzip (not decoded by the transport)
  local ce = resp.headers and resp.headers["content-encoding"]
  if alg == "GZIP" or (type(ce) == "string" and ce:lower():find("gzip", 1, true)) then
    local inflated, err = core.gunzip(data)
    if not inflated then return fail("documents.download", "DecompressFailed", tostring(err)) end
    data = inflated
  end
  return data
end

return _M
