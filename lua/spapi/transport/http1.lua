-- A small HTTP/1.1 client over one nginx cosocket (ngx.socket.tcp), for the ngx
-- transport when lua-resty-http is not installed (Debian does not package it).
-- It writes one request and reads one response: the status line, the headers,
-- and the body delimited by Content-Length, by chunked transfer coding, or by
-- the end of the connection. Bodies are returned as received (no
-- Content-Encoding is asked for or undone: documents are gunzipped by
-- spapi.documents, as with the curl transport).
--
--   local ok, err, kind = http1.send_request(sock, method, target, host, headers, body, user_agent)
--   local status, header_block, body, keep | nil, err, kind = http1.read_response(sock, method, arm)
--
-- `arm(sock)` is called before each read and sets the socket's timeout to what
-- is left of the request's time (it returns nil when none is left). Failures
-- carry a kind: timeout, send, recv, closed.
local _M = {}

local type, pairs, tonumber, tostring = type, pairs, tonumber, tostring
local concat, lower, find, sub, match = table.concat, string.lower, string.find, string.sub, string.match

-- a socket error message → kind (what the contract names)
local function io_kind(err, default)
  if err == "timeout" then return "timeout" end
  if err == "closed" or (type(err) == "string" and (find(err, "reset by peer", 1, true)
      or find(err, "broken pipe", 1, true))) then
    return "closed"
  end
  return default
end
_M.io_kind = io_kind

-- header names whose values come from here, not from the caller
local OWN = { host = true, ["content-length"] = true, ["transfer-encoding"] = true, connection = true }

--- Write the request: request line, Host, User-Agent (unless given), the
--- caller's headers, Content-Length, the body. → true | nil, message, kind
function _M.send_request(sock, method, target, host, headers, body, user_agent)
  local t, n = { method, " ", target, " HTTP/1.1\r\nHost: ", host, "\r\n" }, 6
  local has_ua = false
  if headers then
    for k, v in pairs(headers) do
      local lk = lower(k)
      if not OWN[lk] then
        if lk == "user-agent" then has_ua = true end
        t[n + 1], t[n + 2], t[n + 3], t[n + 4] = k, ": ", tostring(v), "\r\n"
        n = n + 4
      end
    end
  end
  if not has_ua and user_agent then
    t[n + 1], t[n + 2], t[n + 3] = "User-Agent: ", user_agent, "\r\n"
    n = n + 3
  end
  if body and body ~= "" then
    t[n + 1], t[n + 2], t[n + 3], t[n + 4] = "Content-Length: ", tostring(#body), "\r\n\r\n", body
    n = n + 4
  elseif method == "POST" or method == "PUT" or method == "PATCH" then
    t[n + 1] = "Content-Length: 0\r\n\r\n"
    n = n + 1
  else
    t[n + 1] = "\r\n"
    n = n + 1
  end
  local sent, err = sock:send(t)
  if not sent then return nil, "send failed: " .. tostring(err), io_kind(err, "send") end
  return true
end

-- read n bytes → data | nil, message, kind
local function read_exact(sock, arm, n)
  if not arm(sock) then return nil, "timed out reading the body", "timeout" end
  local data, err = sock:receive(n)
  if not data then return nil, "reading the body: " .. tostring(err), io_kind(err, "recv") end
  return data
end

local function read_line(sock, arm, what)
  if not arm(sock) then return nil, "timed out reading the " .. what, "timeout" end
  local line, err = sock:receive("*l")
  if not line then return nil, "reading the " .. what .. ": " .. tostring(err), io_kind(err, "recv") end
  return line
end

-- the chunked transfer coding → body | nil, message, kind
local function read_chunked(sock, arm)
  local parts, n = {}, 0
  while true do
    local line, err, kind = read_line(sock, arm, "chunk size")
    if not line then return nil, err, kind end
    local size = tonumber(match(line, "^%s*(%x+)"), 16)
    if not size then return nil, "bad chunk size line: " .. sub(line, 1, 40), "recv" end
    if size == 0 then
      repeat -- trailers, up to the empty line
        line, err, kind = read_line(sock, arm, "chunked trailer")
        if not line then return nil, err, kind end
      until line == ""
      return concat(parts, "", 1, n)
    end
    local data
    data, err, kind = read_exact(sock, arm, size)
    if not data then return nil, err, kind end
    n = n + 1
    parts[n] = data
    data, err, kind = read_exact(sock, arm, 2)
    if not data then return nil, err, kind end
  end
end

--- Read one response. → status, header block (the status line and header
--- lines as received, each ending in "\r\n"), body, keepalive
--- | nil, message, kind, nothing_read (true when the connection failed before
--- a byte of the answer came: a pooled connection the server had closed).
function _M.read_response(sock, method, arm)
  local status, line, err, kind, version, partial
  local first = true
  repeat -- skip 1xx interim answers
    if not arm(sock) then return nil, "timed out waiting for the answer", "timeout" end
    line, err, partial = sock:receive("*l")
    if not line then
      return nil, "reading the status line: " .. tostring(err), io_kind(err, "recv"),
        first and (partial == nil or partial == "")
    end
    first = false
    version, status = match(line, "^HTTP/(%d%.%d) (%d%d%d)")
    status = tonumber(status)
    if not status then return nil, "not an HTTP answer: " .. sub(line, 1, 40), "recv" end
    local block, n = { line, "\r\n" }, 2
    -- the three headers that frame the body
    local length, chunked, conn
    while true do
      line, err, kind = read_line(sock, arm, "headers")
      if not line then return nil, err, kind end
      if line == "" then break end
      n = n + 2
      block[n - 1], block[n] = line, "\r\n"
      local name, value = match(line, "^([^:]+):%s*(.-)%s*$")
      if name then
        name = lower(name)
        if name == "content-length" then
          length = value
        elseif name == "transfer-encoding" then
          chunked = chunked or find(lower(value), "chunked", 1, true) ~= nil
        elseif name == "connection" then
          conn = (conn or "") .. lower(value)
        end
      end
    end
    if status >= 200 or status == 101 then
      conn = conn or ""
      local keep = (version == "1.1" and not find(conn, "close", 1, true))
        or (version == "1.0" and find(conn, "keep-alive", 1, true) ~= nil)
      local headers = concat(block, "", 1, n)
      if method == "HEAD" or status == 204 or status == 304 then return status, headers, "", keep end
      local body
      if chunked then
        body, err, kind = read_chunked(sock, arm)
      elseif length then
        local len = tonumber(length)
        if not len or len < 0 then return nil, "bad Content-Length: " .. sub(length, 1, 20), "recv" end
        if len == 0 then body = "" else body, err, kind = read_exact(sock, arm, len) end
      else -- delimited by the end of the connection
        keep = false
        if not arm(sock) then return nil, "timed out reading the body", "timeout" end
        body, err = sock:receive("*a")
        if not body then kind = io_kind(err, "recv") err = "reading the body: " .. tostring(err) end
      end
      if not body then return nil, err, kind end
      return status, headers, body, keep
    end
  until false
end

return _M
