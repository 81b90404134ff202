-- AWS Signature Version 4 (optional: only used when AWS keys are configured).
-- sign{ method=, url=, headers=, body=, region=, service=, access_key=, secret_key=,
--       session_token=, time= } → the headers to add (Authorization, x-amz-date,
-- x-amz-security-token when a session token is given). Pure: no I/O.
local _M = {}
local core = require "spapi.core"

function _M.sign(t)
  if type(t) ~= "table" then error("spapi.sigv4.sign: table expected", 2) end
  for _, k in ipairs({ "method", "url", "region", "service", "access_key", "secret_key" }) do
    if type(t[k]) ~= "string" or t[k] == "" then
      error("spapi.sigv4.sign: '" .. k .. "' is required", 2)
    end
  end
  local args = {}
  for k, v in pairs(t) do args[k] = v end
  args.time = args.time or os.time()
  return core.sigv4_sign(args)
end

function _M.canonical(t)
  local args = {}
  for k, v in pairs(t) do args[k] = v end
  args.time = args.time or os.time()
  return core.sigv4_canonical(args)
end

return _M
