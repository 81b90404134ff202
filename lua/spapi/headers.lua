-- Response headers. A transport returns the header block (the lines as
-- received, docs/extending.md); the pipeline reads the few it needs from it, and
-- a table is made only when someone asks for them all (response.headers), which
-- spares most calls building one. Both functions also take a table (lowercase
-- names), for code holding one already.
local core = require "spapi.core"

local type, rawget, getmetatable, setmetatable = type, rawget, getmetatable, setmetatable
local header, parse_headers = core.header, core.parse_headers

local _M = {}

-- header tables have lowercase names; look-ups in any case find them
local MT = { __index = function(t, k)
  if type(k) == "string" then return rawget(t, k:lower()) end
end }
_M.MT = MT

--- get(h, name) → value | nil. name: lowercase.
function _M.get(h, name)
  if type(h) == "string" then return header(h, name) end
  return h and h[name]
end

--- table(h) → the headers as a table, looked up in any case (none: an empty one).
function _M.table(h)
  if type(h) == "string" then return parse_headers(h, MT) end
  if h == nil then return setmetatable({}, MT) end
  if getmetatable(h) == nil then setmetatable(h, MT) end
  return h
end

return _M
