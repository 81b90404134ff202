-- spapi call API.operation [name=value ...] [--body FILE|-|JSON] [--all] [--json] [client options]
-- Calls one operation and prints the decoded body as JSON on stdout; with --all,
-- follows nextToken and prints one JSON document per item. Values are typed by
-- the operation's parameter schema (spapi.cli.params): a string parameter gets
-- exactly the characters typed. Errors go to stderr (one JSON object with
-- --json); the exit code says which kind (spapi.cli.common).
local _M = {}

local common = require "spapi.cli.common"
local params_of = require "spapi.cli.params"

local fmt = string.format

local function usage(out)
  out:write([[
usage: spapi call API.operation [name=value ...] [--body FILE|-] [--all] [--json] [client options]

  name=value      a parameter, typed by the operation's model: strings exactly as typed,
                  numbers and booleans where the model says so, arrays as comma lists
                  (or repeat name=value), a body as JSON text or @FILE
  --body FILE|-   the request body (JSON) from a file, or from stdin with '-'
                  (JSON text starting with { or [ is taken as the body itself)
  --all           follow nextToken to the last page; print one JSON document per item
  --json          errors as one JSON object on stderr (with exit_code, kind, status, code, ...)
  --compact       print the result on one line even on a terminal

The result is JSON on stdout (indented on a terminal). Exit codes: 0 success, 1 an API
error, 2 a usage error, 3 a network failure or timeout, 4 an LWA or credentials failure.
See `spapi ops` for the operations and `spapi describe API.op` for their parameters.

]])
  out:write(common.CLIENT_FLAGS_HELP)
end

-- the body of --body: a file, stdin, or JSON text → value | nil, message
local function read_body(arg)
  local json = require "spapi.json"
  local text, err
  if arg:match("^%s*[{%[]") then
    text = arg
  else
    text, err = common.read_file(arg)
    if not text then return nil, "--body: cannot read " .. arg .. ": " .. tostring(err) end
  end
  local v, derr = json.decode(text)
  if v == nil then return nil, "--body is not JSON: " .. tostring(derr) end
  return v
end

local function parse(args)
  local o = { client = {}, pairs = {} }
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "-h" or a == "--help" then o.help = true
    elseif a == "--all" then o.all = true
    elseif a == "--json" then o.json = true
    elseif a == "--compact" then o.compact = true
    elseif a == "--body" then
      if not args[i + 1] then return nil, "--body needs a file, '-' (stdin) or JSON text" end
      o.body_arg = args[i + 1]
      i = i + 1
    elseif a:sub(1, 2) == "--" then
      local n, err = common.client_flag(args, i, o.client)
      if not n then return nil, err end
      if n == 0 then return nil, "unknown option " .. a end
      i = i + n - 1
    elseif not o.op then o.op = a
    else o.pairs[#o.pairs + 1] = a
    end
    i = i + 1
  end
  return o
end

--- Check the operation and build its parameters without a client.
--- → full name, op, params | nil, err (a usage error)
function _M.prepare(op_name, pair_list, body)
  local client = require "spapi.client"
  local ok, full, api, op_id, op = pcall(client.resolve, op_name, 1)
  if not ok then return nil, common.usage_error(common.raised_message(full)) end
  local params, perr = params_of.parse(op, full, pair_list)
  if not params then return nil, common.usage_error(perr, full) end
  if body ~= nil then
    if params.body ~= nil then return nil, common.usage_error(full .. ": the body is given twice (body= and --body)", full) end
    params.body = body
  end
  -- every parameter checked by the request builder before anything is sent
  local req, berr = require("spapi.request").try(api, op_id, params)
  if not req then return nil, common.usage_error(berr, full) end
  return full, op, params
end

local function print_json(value, compact)
  local json = require "spapi.json"
  local s, err = json.encode(value)
  if not s then return nil, err end
  if not compact then s = require("spapi.cli.pretty").json_indent(s) end
  io.stdout:write(s, "\n")
  return true
end

-- --all: every item of every page, one JSON document per line
local function call_all(sp, full, op, params)
  local pages = require "spapi.pages"
  local json = require "spapi.json"
  -- one line on stderr when it is a terminal, nothing when it is not
  local progress = require("spapi.progress").new{ label = "items of " .. full }
  local n, npages = 0, 0
  for page, err in sp:pages(full, params) do
    if page == false then
      progress:finish(fmt("(%d pages, then an error)", npages))
      return nil, err
    end
    npages = npages + 1
    local items = pages.items(page, op.paging.token)
    if not items then
      progress:finish()
      return nil, require("spapi.errors").new{ kind = "decode", code = "NoItems", operation = full,
        message = "cannot tell which field of the response holds the items" }
    end
    for _, item in ipairs(items) do
      io.stdout:write((json.encode(item)), "\n")
      n = n + 1
    end
    progress:update(n, fmt("(%d pages)", npages))
  end
  progress:finish(fmt("(%d pages)", npages))
  io.stdout:flush()
  return true
end

function _M.run(args)
  local o, perr = parse(args)
  if not o then return common.report(common.usage_error(perr), false, "spapi call") end
  if o.help then usage(io.stdout) return 0 end
  if not o.op then
    usage(io.stderr)
    return common.USAGE
  end
  local body
  if o.body_arg then
    local berr
    body, berr = read_body(o.body_arg)
    if body == nil then return common.report(common.usage_error(berr), o.json, "spapi call") end
  end
  local full, op, params = _M.prepare(o.op, o.pairs, body)
  if not full then return common.report(op, o.json, "spapi call") end
  if o.all and not op.paging then
    return common.report(common.usage_error(full .. " does not page (no nextToken in its model): --all does not apply",
      full), o.json, "spapi call")
  end
  local sp, cerr = common.client(o.client)
  if not sp then return common.report(cerr, o.json, "spapi call") end
  local ok, res, err
  if o.all then
    ok, res, err = pcall(call_all, sp, full, op, params)
  else
    ok, res, err = pcall(sp.call, sp, full, params)
  end
  sp:close()
  if not ok then
    -- a raise is a programmer error: with the checks above, one the builder did not foresee
    return common.report(common.usage_error(common.raised_message(res), full), o.json, "spapi call")
  end
  if not res then return common.report(err, o.json, "spapi call") end
  if not o.all then
    local printed, jerr = print_json(res, o.compact or not common.isatty(1))
    if not printed then
      return common.report(require("spapi.errors").new{ kind = "decode", code = "InvalidJSON", operation = full,
        message = "cannot print the response as JSON: " .. tostring(jerr) }, o.json, "spapi call")
    end
  end
  return common.OK
end

return _M
