-- Feed and report documents, served under /_documents/<id> (the "pre-signed
-- URLs" of the sandbox). Bytes live in the lua_shared_dict "spapi_docs".
-- Compressed documents (GZIP) are served as stored bytes, without a
-- Content-Encoding header, like Amazon's S3 URLs: the client gunzips them
-- because the API said compressionAlgorithm = GZIP.
local _M = {}

local util = require "spapi.sandbox.util"
local json = util.json
local ngx = ngx
local type, tostring = type, tostring

local function dict() return ngx.shared.spapi_docs end

-- the sandbox's own address (where the request arrived), never the Host
-- header: a client must not be able to send another's uploads elsewhere
local function base_url()
  local addr = ngx.var.server_addr or "127.0.0.1"
  if ngx.var.https == "on" then
    -- over the TLS listener: https, and this machine by name (its certificate
    -- holds both, but nginx's cosockets check names only)
    if addr:find("^127%.") or addr == "::1" then addr = "localhost" end
    if addr:find(":", 1, true) then addr = "[" .. addr .. "]" end
    return "https://" .. addr .. ":" .. tostring(ngx.var.server_port)
  end
  if addr:find(":", 1, true) then addr = "[" .. addr .. "]" end
  return "http://" .. addr .. ":" .. tostring(ngx.var.server_port)
end
_M.base_url = base_url

function _M.url(path) return base_url() .. path end

local function new_id()
  local h = util.rand_hex(32)
  return string.format("amzn1.tortuga.4.na.%s-%s-%s-%s-%s.T%s", h:sub(1, 8), h:sub(9, 12), h:sub(13, 16),
    h:sub(17, 20), h:sub(21, 32), util.rand_hex(12):upper())
end

local function set(key, value)
  local ok, err = dict():safe_set(key, value)
  if not ok then error("sandbox document store is full (" .. tostring(err) .. ")", 0) end
end

local function get_meta(id)
  local s = dict():get("m:" .. id)
  return s and json.decode(s) or nil
end

--- Store a document. opts.compress = true gzips it (compressed = "GZIP").
--- Returns doc_id, url.
function _M.put(content, content_type, opts)
  opts = opts or {}
  local id = opts.id or new_id()
  local compressed
  if opts.compress then
    content = assert(util.gzip(content))
    compressed = "GZIP"
  end
  set("c:" .. id, content)
  set("m:" .. id, assert(json.encode({ content_type = content_type or "text/plain", compressed = compressed })))
  return id, _M.url("/_documents/" .. id)
end

--- { content = bytes (as stored), content_type =, compressed = "GZIP"|nil, text = plain bytes } or nil
function _M.get(id)
  local m = get_meta(id)
  if not m then return nil end
  local c = dict():get("c:" .. id)
  if not c then return nil end
  local doc = { content = c, content_type = m.content_type, compressed = m.compressed,
                uploaded_content_type = m.uploaded_content_type }
  if m.compressed or (#c > 2 and c:byte(1) == 0x1f and c:byte(2) == 0x8b) then
    doc.text = util.gunzip(c)
  else
    doc.text = c
  end
  return doc
end

--- Register an upload destination: the client PUTs the bytes to url.
function _M.new_upload(content_type)
  local id = new_id()
  set("m:" .. id, assert(json.encode({ content_type = content_type or "application/octet-stream", upload = true })))
  return id, _M.url("/_documents/" .. id)
end

function _M.flush() dict():flush_all() end

local function read_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body then
    local file = ngx.req.get_body_file()
    if file then
      local f = io.open(file, "rb")
      if f then body = f:read("*a") f:close() end
    end
  end
  return body or ""
end

--- The /_documents/<id> endpoint.
function _M.serve(id)
  local method = ngx.req.get_method()
  local m = get_meta(id)
  if not m then
    ngx.status = 404
    ngx.header["Content-Type"] = "application/xml"
    ngx.print('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
      .. '<Message>The specified key does not exist.</Message></Error>')
    return
  end
  if method == "PUT" then
    if not m.upload then
      ngx.status = 403
      ngx.header["Content-Type"] = "application/xml"
      ngx.print('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
        .. '<Message>Access Denied</Message></Error>')
      return
    end
    local body = read_body()
    -- gzip'd content is inflated later (feed processing): refuse now what would
    -- inflate past the cap
    if #body > 2 and body:byte(1) == 0x1f and body:byte(2) == 0x8b then
      local _, _, too_large = util.gunzip(body)
      if too_large then
        ngx.status = 413
        ngx.header["Content-Type"] = "application/xml"
        ngx.print('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>EntityTooLarge</Code>'
          .. '<Message>Your proposed upload decompresses to more than ' .. util.MAX_INFLATED
          .. ' bytes, the most the sandbox inflates.</Message></Error>')
        return
      end
    end
    set("c:" .. id, body)
    m.uploaded_content_type = ngx.var.http_content_type
    m.uploaded = true
    set("m:" .. id, assert(json.encode(m)))
    ngx.header["ETag"] = '"' .. ngx.md5(body) .. '"'
    ngx.status = 200
    return
  end
  if method ~= "GET" and method ~= "HEAD" then
    ngx.status = 405
    return
  end
  local c = dict():get("c:" .. id)
  if not c then
    ngx.status = 404
    ngx.header["Content-Type"] = "application/xml"
    ngx.print('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
      .. '<Message>The specified key does not exist.</Message></Error>')
    return
  end
  ngx.status = 200
  ngx.header["Content-Type"] = m.uploaded_content_type or m.content_type or "application/octet-stream"
  ngx.header["Content-Length"] = #c
  ngx.header["ETag"] = '"' .. ngx.md5(c) .. '"'
  if method == "GET" then ngx.print(c) end
end

_M.read_body = read_body
return _M
