-- spapi ops [api] : list the APIs, or one API's operations with method, path and rate.
local _M = {}

function _M.run(args)
  local index = require "spapi.operations"
  local api = args[1]
  if not api or api == "-h" or api == "--help" then
    local names = {}
    for k in pairs(index.apis) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do
      local t = require(index.apis[k])
      local n = 0
      for _ in pairs(t.operations) do n = n + 1 end
      io.stdout:write(string.format("%-26s %-10s %2d operations  %s\n", k, t.version, n, t.title or ""))
    end
    return 0
  end
  if not index.apis[api] then io.stderr:write("spapi ops: unknown API '" .. api .. "'\n") return 2 end
  local t = require(index.apis[api])
  local names = {}
  for k in pairs(t.operations) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    local op = t.operations[k]
    io.stdout:write(string.format("%-34s %-6s %-70s rate %s burst %s%s\n", k, op.method, op.path,
      tostring(op.rate or "-"), tostring(op.burst or "-"), op.restricted == true and "  (restricted: RDT)" or ""))
  end
  return 0
end

return _M
