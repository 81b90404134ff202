-- The sandbox's https side (`spapi sandbox start --tls`): a certificate
-- authority made in the sandbox's directory and a server certificate it signs
-- for this machine (127.0.0.1, ::1, localhost) and for Amazon's API and LWA
-- host names, so that an SP-API client pointed at the sandbox by name
-- resolution alone (/etc/hosts) verifies it once it trusts the CA.
-- Made with the `openssl` command; the CA is kept across restarts (a client
-- told to trust it stays told), the server certificate is made again when its
-- host list changes or it is missing.
--
--   local tls = require "spapi.sandbox.tls"
--   local files = assert(tls.ensure(dir))  -- { ca =, cert =, key = } (paths)
local _M = {}

local fmt, concat = string.format, table.concat

-- the names the server certificate holds
_M.HOSTS = {
  "localhost",
  "sellingpartnerapi-na.amazon.com", "sellingpartnerapi-eu.amazon.com", "sellingpartnerapi-fe.amazon.com",
  "sandbox.sellingpartnerapi-na.amazon.com", "sandbox.sellingpartnerapi-eu.amazon.com",
  "sandbox.sellingpartnerapi-fe.amazon.com",
  "api.amazon.com", "api.amazon.co.uk", "api.amazon.co.jp",
}
_M.ADDRESSES = { "127.0.0.1", "::1" }

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function write(path, data)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  f:write(data)
  f:close()
  return true
end

-- run a shell command → true | nil, its output
local function run(cmd)
  local p = io.popen("(" .. cmd .. ") 2>&1; echo \"rc=$?\"")
  if not p then return nil, "cannot run a shell" end
  local out = p:read("*a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  if rc == 0 then return true end
  return nil, (out:gsub("rc=%d+%s*$", ""):gsub("%s+$", ""))
end

--- Whether the openssl command is there → true | nil, message
function _M.openssl()
  local ok = run("command -v openssl >/dev/null")
  if ok then return true end
  return nil, "the openssl command is needed for --tls (Debian: apt-get install openssl)"
end

local function san()
  local t = {}
  for _, a in ipairs(_M.ADDRESSES) do t[#t + 1] = "IP:" .. a end
  for _, h in ipairs(_M.HOSTS) do t[#t + 1] = "DNS:" .. h end
  return concat(t, ",")
end

--- The CA and the server certificate under dir/tls (made when missing).
--- → { dir =, ca =, cert =, key = } | nil, message
function _M.ensure(dir)
  local ok, err = _M.openssl()
  if not ok then return nil, err end
  local d = dir .. "/tls"
  local files = { dir = d, ca = d .. "/ca.pem", ca_key = d .. "/ca.key", cert = d .. "/server.pem",
    key = d .. "/server.key" }
  -- keys readable by their owner only
  ok, err = run(fmt("umask 077 && mkdir -p %s", quote(d)))
  if not ok then return nil, "cannot make " .. d .. ": " .. err end
  local ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
  local fresh_ca = false
  if not (exists(files.ca) and exists(files.ca_key)) then
    ok, err = run(fmt("umask 077 && openssl req -x509 %s -keyout %s -out %s -days 3650 -sha256"
      .. " -subj '/O=spapi/CN=spapi local sandbox CA'"
      .. " -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign'",
      ec, quote(files.ca_key), quote(files.ca)))
    if not ok then return nil, "openssl could not make the sandbox CA: " .. err end
    fresh_ca = true
  end
  local ext = concat({
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    "extendedKeyUsage=serverAuth",
    "subjectAltName=" .. san(),
    "",
  }, "\n")
  local ext_path = d .. "/server.ext"
  if fresh_ca or not exists(files.cert) or not exists(files.key) or read(ext_path) ~= ext then
    ok, err = write(ext_path, ext)
    if not ok then return nil, "cannot write " .. ext_path .. ": " .. tostring(err) end
    local csr = d .. "/server.csr"
    ok, err = run(fmt("umask 077 && openssl req %s -keyout %s -out %s -subj '/O=spapi/CN=localhost'"
      .. " && openssl x509 -req -in %s -CA %s -CAkey %s -set_serial 0x%s -days 825 -sha256 -extfile %s -out %s"
      .. " && rm -f %s",
      ec, quote(files.key), quote(csr), quote(csr), quote(files.ca), quote(files.ca_key),
      require("spapi.core").hex(require("spapi.core").random_bytes(8)), quote(ext_path), quote(files.cert),
      quote(csr)))
    if not ok then return nil, "openssl could not make the sandbox's server certificate: " .. err end
  end
  -- the CA certificate (not its key) is for everyone who talks to the sandbox
  run(fmt("chmod 0644 %s %s; chmod 0755 %s", quote(files.ca), quote(files.cert), quote(d)))
  return files
end

return _M
