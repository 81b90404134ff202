-- spapi: Amazon Selling Partner API for Lua.
--   local spapi = require "spapi"
--   local sp = assert(spapi.client{ region = "na" })
--   local order, err = sp.fulfillment_outbound.getFulfillmentOrder{ sellerFulfillmentOrderId = "A-1" }
local _M = {}
local client = require "spapi.client"
local type, error = type, error

_M.VERSION = client.VERSION
_M.client = client.new
_M.errors = require "spapi.errors"
_M.json = require "spapi.json"
_M.config = require "spapi.config"
_M.marketplace = _M.config.marketplace
local clock = require "spapi.clock"
_M.sleep = clock.sleep -- yields inside nginx, sleeps elsewhere
_M.now = clock.now

--- spapi.md5(s) → the MD5 of s as 32 lowercase hex characters. Not for security: MD5 is
-- what Merchant Fulfillment's label checksums use (spapi.labels checks them itself).
local core = require "spapi.core"
function _M.md5(s)
  if type(s) ~= "string" then error("spapi.md5: s must be a string (got " .. type(s) .. ")", 2) end
  return core.hex(core.md5(s))
end

setmetatable(_M, { __index = function(t, k)
  -- lazily loaded parts (keep `require "spapi"` cheap)
  local mods = { sigv4 = "spapi.sigv4", sandbox = "spapi.sandbox", pages = "spapi.pages",
                 redact = "spapi.redact", store = "spapi.store.memory",
                 journal = "spapi.journal", labels = "spapi.labels", progress = "spapi.progress" }
  if mods[k] then
    local m = require(mods[k])
    rawset(t, k, m)
    return m
  end
end })

return _M
