-- nextToken iteration. Each operation's table says where its token is in the
-- response (paging.token, a dotted path) and which parameter sends it back
-- (paging.param). Iterators yield false, err when a call fails, then stop.
local _M = {}

local errors = require "spapi.errors"
local type, pairs, ipairs = type, pairs, ipairs

local function dig(t, path)
  for part in path:gmatch("[^.]+") do
    if type(t) ~= "table" then return nil end
    t = t[part]
  end
  return t
end
_M.dig = dig

local function copy(t)
  local c = {}
  for k, v in pairs(t or {}) do c[k] = v end
  return c
end

function _M.pages(client, name, params, opts)
  local op, full = client:operation(name)
  local paging = op.paging
  if not paging then
    error("spapi: " .. full .. " does not page (no nextToken in its model)", 3)
  end
  params = copy(params)
  local finished = false
  return function()
    if finished then return nil end
    local body, meta = client:call(full, params, opts)
    if not body then
      finished = true
      return false, meta
    end
    local token = dig(body, paging.token)
    if type(token) == "string" and token ~= "" then
      if paging.exclusive then
        -- e.g. feeds/reports: nextToken must be sent alone
        local keep = {}
        for _, p in ipairs(op.params) do
          if p.required and p["in"] ~= "query" then keep[p.name] = params[p.name] end
        end
        params = keep
      end
      params[paging.param] = token
    else
      finished = true
    end
    return body, meta
  end
end

-- The list of items in a page: the one array next to the token, else the only
-- array at the top level or under payload. A page with no array at all holds no
-- items (the models make the list optional); two candidate arrays are ambiguous.
function _M.items(body, token_path)
  local parent_path = token_path and token_path:match("^(.*)%.[^.]+$")
  -- (the token's parent is often absent on the last page: no holes in this list)
  local candidates = {}
  if parent_path then candidates[#candidates + 1] = dig(body, parent_path) end
  candidates[#candidates + 1] = body
  if type(body) == "table" then candidates[#candidates + 1] = body.payload end
  local ambiguous = false
  for _, c in ipairs(candidates) do
    if type(c) == "table" then
      local found, count = nil, 0
      for k, v in pairs(c) do
        if type(v) == "table" and k ~= "pagination" and (v[1] ~= nil or next(v) == nil) then
          found, count = v, count + 1
        end
      end
      if count == 1 then return found end
      if count > 1 then ambiguous = true end
    end
  end
  if ambiguous then return nil end
  return {}
end

function _M.each(client, name, params, opts)
  local op, full = client:operation(name)
  local next_page = _M.pages(client, full, params, opts)
  local items, i = nil, 0
  return function()
    while true do
      if items then
        i = i + 1
        local v = items[i]
        if v ~= nil then return v end
      end
      local page, meta = next_page()
      if page == nil then return nil end
      if page == false then return false, meta end
      items, i = _M.items(page, op.paging.token), 0
      if not items then
        return false, errors.new{ kind = "decode", code = "NoItems", operation = full,
          message = "cannot tell which field of the response holds the items; use client:pages" }
      end
    end
  end
end

return _M
