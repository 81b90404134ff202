-- spapi.labels — shipping labels out of SP-API answers, decoded and saved as the
-- files they are (PDF, PNG, ZPL).
--
--   local labels = require "spapi.labels"
--   local label = sp.vendor_df_shipping.createShippingLabels{ purchaseOrderNumber = po, body = ... }
--   local files, err = labels.save(label, { dir = "labels" })
--   -- files[i] = { path = "labels/2JK3S9VC-001.png", type = "PNG", bytes = 1234,
--   --              tracking = "1Z...", package = "001" }
--   local shipment = sp.merchant_fulfillment.createShipment{ body = ... }
--   files, err = labels.save(shipment, { dir = "labels" })   -- labels/<ShipmentId>.pdf
--
--   labels.decode(label[, opts]) → the same list with `data` (the file's bytes) instead
--                                  of `path`, nothing written (to print directly)
--   labels.save(label, opts)     → list | nil, err; opts.dir (default "."), opts.name
--                                  (the file name without extension; default the purchase
--                                  order / shipment id / tracking number), opts.format
--                                  (the type of a bare label whose answer did not say it)
--
-- What `label` may be (the models' label fields):
--   Vendor DF Shipping 2021-12-28: a ShippingLabel (createShippingLabels, getShippingLabel,
--     an item of getShippingLabels) — labelFormat PNG|ZPL, labelData[i].content base64,
--     one file per package (name-<packageIdentifier>); a single LabelData; a
--     ContainerLabel (content + format) or createContainerLabel's { containerLabel = }.
--   Merchant Fulfillment v0: a createShipment/getShipment answer ({ payload = Shipment }),
--     a Shipment, its Label or the Label's FileContents — Contents base64 of gzip data,
--     FileType application/pdf|application/zpl|image/png, Checksum base64 MD5.
-- The bytes are base64-decoded, gunzipped when they are gzip data (MFN always is),
-- checked against the Checksum when one is given (the MD5 of the gzip bytes or of the
-- file — the model does not say which, so either matches), and their type is read from
-- the bytes (%PDF, PNG signature, ZPL's ^XA) and must agree with the declared one.
--
-- Bad input (a label that is none of the above) raises; undecodable contents, a checksum
-- or type mismatch and write failures return nil, err (an spapi error, kind "label").
local _M = {}

local core = require "spapi.core"
local errors = require "spapi.errors"
local fs = require "spapi.fs"

local type, ipairs, tostring, error = type, ipairs, tostring, error
local fmt, byte = string.format, string.byte

local EXT = { PDF = "pdf", PNG = "png", ZPL = "zpl" }
_M.EXT = EXT

-- declared format → PDF | PNG | ZPL
local DECLARED = {
  PDF = "PDF", PNG = "PNG", ZPL = "ZPL", ZPL203 = "ZPL", ZPL300 = "ZPL",
  ["application/pdf"] = "PDF", ["image/png"] = "PNG", ["application/zpl"] = "ZPL",
  pdf = "PDF", png = "PNG", zpl = "ZPL",
}

local function fail(code, msg)
  return nil, errors.new{ kind = "label", code = code, message = msg }
end

--- labels.sniff(bytes) → "PDF" | "PNG" | "ZPL" | nil — the file type the bytes are
function _M.sniff(data)
  if data:sub(1, 5) == "%PDF-" then return "PDF" end
  if data:sub(1, 8) == "\137PNG\r\n\26\n" then return "PNG" end
  local head = data:match("^[%s\239\187\191]*(.?.?.?)")
  if head and (head:sub(1, 3) == "^XA" or head:sub(1, 3) == "~DG" or head:sub(1, 2) == "${") then return "ZPL" end
  return nil
end

local function is_gzip(s) return byte(s, 1) == 0x1f and byte(s, 2) == 0x8b end

-- one label file: b64 contents, declared type (may be nil), checksum (may be nil)
local function decode_one(what, b64, declared, checksum, opts)
  if type(b64) ~= "string" or b64 == "" then return fail("LabelEmpty", what .. ": the label has no contents") end
  local raw = core.b64decode((b64:gsub("%s+", "")))
  if not raw or raw == "" then return fail("LabelUndecodable", what .. ": the contents are not base64") end
  local data = raw
  if is_gzip(raw) then
    local inflated, err = core.gunzip(raw, opts.max_bytes)
    if not inflated then return fail("LabelUndecodable", what .. ": the contents are not valid gzip: " .. tostring(err)) end
    data = inflated
  end
  if checksum ~= nil then
    if type(checksum) ~= "string" or checksum == "" then return fail("LabelChecksum", what .. ": the checksum is empty") end
    local want = core.b64decode(checksum)
    if want ~= core.md5(raw) and want ~= core.md5(data) then
      return fail("LabelChecksum", what .. ": the contents do not match their checksum " .. checksum)
    end
  end
  local kind = DECLARED[declared or ""] or DECLARED[opts.format or ""]
  if declared ~= nil and not DECLARED[declared] and declared ~= "ShippingServiceDefault" then
    return fail("LabelType", what .. ": unknown label format " .. tostring(declared))
  end
  local sniffed = _M.sniff(data)
  if sniffed and kind and sniffed ~= kind then
    return fail("LabelType", fmt("%s: the label is declared %s but its contents are %s", what, kind, sniffed))
  end
  kind = sniffed or kind
  if not kind then return fail("LabelType", what .. ": cannot tell the label's file type (pass opts.format)") end
  return { data = data, type = kind, ext = EXT[kind], bytes = #data, compressed = data ~= raw }
end

local function sanitize(s) return (tostring(s):gsub("[^%w%-_.]", "_")) end

-- label → list of { b64, declared, checksum, name, tracking, package, what }
local function parts(label, opts)
  if type(label) ~= "table" then
    error("spapi.labels: 'label' must be a label table from a VDF or MFN answer (got " .. type(label) .. ")", 4)
  end
  if label.payload and type(label.payload) == "table" then label = label.payload end -- MFN answer
  if label.containerLabel then label = label.containerLabel end                       -- createContainerLabel
  if label.Label then                                                                   -- MFN Shipment
    local l = label.Label
    return { { b64 = l.FileContents and l.FileContents.Contents, declared = l.FileContents and l.FileContents.FileType
               or l.LabelFormat, checksum = l.FileContents and l.FileContents.Checksum,
               name = label.ShipmentId or label.TrackingId, tracking = label.TrackingId,
               what = "shipment " .. tostring(label.ShipmentId or "?") } }
  end
  if label.FileContents then                                                            -- MFN Label
    local fc = label.FileContents
    return { { b64 = fc.Contents, declared = fc.FileType or label.LabelFormat, checksum = fc.Checksum,
               what = "label" } }
  end
  if label.Contents then                                                                -- MFN FileContents
    return { { b64 = label.Contents, declared = label.FileType, checksum = label.Checksum, what = "label" } }
  end
  if type(label.labelData) == "table" then                                             -- VDF ShippingLabel
    local out, po = {}, label.purchaseOrderNumber
    for i, d in ipairs(label.labelData) do
      local pkg = d.packageIdentifier or fmt("%03d", i)
      out[i] = { b64 = d.content, declared = label.labelFormat, tracking = d.trackingNumber, package = pkg,
                 name = (po or d.trackingNumber or "label") .. (#label.labelData > 1 and ("-" .. pkg) or ""),
                 what = "purchase order " .. tostring(po) .. " package " .. tostring(pkg) }
    end
    if #out == 0 then return nil, "purchase order " .. tostring(po) .. ": the label has no labelData" end
    return out
  end
  if label.content then                                  -- VDF LabelData or ContainerLabel
    return { { b64 = label.content, declared = label.format, tracking = label.trackingNumber
               or label.containerTrackingNumber, package = label.packageIdentifier,
               name = label.trackingNumber or label.containerTrackingNumber or label.packageIdentifier,
               what = "label " .. tostring(label.trackingNumber or label.containerTrackingNumber or "") } }
  end
  error("spapi.labels: 'label' is not a VDF ShippingLabel/LabelData/ContainerLabel nor an MFN "
    .. "Shipment/Label/FileContents", 4)
end

local function check_opts(fn, opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error("spapi.labels." .. fn .. ": 'opts' must be a table", 3) end
  for _, k in ipairs({ "dir", "name", "format" }) do
    if opts[k] ~= nil and type(opts[k]) ~= "string" then
      error(fmt("spapi.labels.%s: 'opts.%s' must be a string (got %s)", fn, k, type(opts[k])), 3)
    end
  end
  return opts
end

local function decode(label, opts)
  local list, msg = parts(label, opts)
  if not list then return fail("LabelEmpty", msg) end
  local out = {}
  for i, p in ipairs(list) do
    local f, err = decode_one(p.what, p.b64, p.declared, p.checksum, opts)
    if not f then return nil, err end
    f.tracking, f.package, f.name = p.tracking, p.package, p.name
    out[i] = f
  end
  return out
end

function _M.decode(label, opts)
  return decode(label, check_opts("decode", opts))
end

function _M.save(label, opts)
  opts = check_opts("save", opts)
  local list, err = decode(label, opts)
  if not list then return nil, err end
  local dir = opts.dir or "."
  local out = {}
  for i, f in ipairs(list) do
    local name = opts.name and (opts.name .. (#list > 1 and ("-" .. (f.package or i)) or "")) or f.name or ("label-" .. i)
    local path = dir .. "/" .. sanitize(name) .. "." .. f.ext
    local ok, werr = fs.write_atomic(path, f.data)
    if not ok then return fail("LabelWriteFailed", "cannot save the label: " .. tostring(werr)) end
    out[i] = { path = path, type = f.type, bytes = f.bytes, tracking = f.tracking, package = f.package }
  end
  return out
end

return _M
