-- spapi ops [FILTER]: every operation, one line each — API.op, method, path,
-- rate/burst, and flags: RDT (needs a restricted data token), sandbox-only,
-- grantless, MWS=<name> (the legacy MWS name that is an alias of it).
-- FILTER matches API keys, operation ids and API.op, case-insensitive.
local _M = {}

local fmt = string.format

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

--- Every operation (filter: a case-insensitive substring of the API key, the
--- operation id or API.op; nil for all) → { { api=, id=, full=, op=, mws={...} }, ... }
function _M.list(filter)
  local index = require "spapi.operations"
  local mws = {}
  for name, target in pairs(index.aliases or {}) do
    mws[target] = mws[target] or {}
    table.insert(mws[target], name)
  end
  local f = filter and filter:lower()
  local out = {}
  for _, api in ipairs(sorted_keys(index.apis)) do
    local t = require(index.apis[api])
    for _, id in ipairs(sorted_keys(t.operations)) do
      local full = api .. "." .. id
      local hit = not f or api:lower():find(f, 1, true) or id:lower():find(f, 1, true)
        or full:lower():find(f, 1, true)
      if not hit and mws[full] then
        for _, m in ipairs(mws[full]) do if m:lower():find(f, 1, true) then hit = true end end
      end
      if hit then
        local names = mws[full]
        if names then table.sort(names) end
        out[#out + 1] = { api = api, id = id, full = full, op = t.operations[id], mws = names or {} }
      end
    end
  end
  return out
end

--- The flags of an operation, as shown by ops and describe.
function _M.flags(e)
  local flags = {}
  if e.op.restricted == true then flags[#flags + 1] = "RDT" end
  if e.op.sandbox_only then flags[#flags + 1] = "sandbox-only" end
  if e.op.grantless then flags[#flags + 1] = "grantless" end
  for _, m in ipairs(e.mws) do flags[#flags + 1] = "MWS=" .. m end
  return table.concat(flags, " ")
end

function _M.rate(op)
  if not op.rate then return "-" end
  return fmt("%s/%s", tostring(op.rate), tostring(op.burst or "-"))
end

--- The lines for a list from _M.list.
function _M.lines(list)
  local w, pw = 0, 0
  for _, e in ipairs(list) do
    if #e.full > w then w = #e.full end
    if #e.op.path > pw then pw = #e.op.path end
  end
  local lines = {}
  for i, e in ipairs(list) do
    lines[i] = (fmt("%-" .. w .. "s  %-6s %-" .. pw .. "s  %-7s %s", e.full, e.op.method, e.op.path, _M.rate(e.op),
      _M.flags(e)):gsub("%s+$", ""))
  end
  return lines
end

local function usage(out)
  out:write([[
usage: spapi ops [FILTER]

Lists the operations: API.op, method, path, rate/burst (requests per second / burst, from
the model's usage plan) and flags: RDT (needs a restricted data token), sandbox-only,
grantless, MWS=<name> (a legacy MWS name accepted as an alias).
FILTER matches API keys, operation ids and API.op, case-insensitive (spapi ops order).
]])
end

function _M.run(args)
  local filter = args[1]
  if filter == "-h" or filter == "--help" then usage(io.stdout) return 0 end
  if args[2] then
    io.stderr:write("spapi ops: one FILTER at most (got '", args[2], "')\n")
    return 2
  end
  local list = _M.list(filter)
  if #list == 0 then
    io.stderr:write("spapi ops: no operation matches '", tostring(filter), "'\n")
    return 2
  end
  for _, line in ipairs(_M.lines(list)) do io.stdout:write(line, "\n") end
  return 0
end

return _M
