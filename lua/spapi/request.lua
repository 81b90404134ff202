-- spapi.request — operation + params → the HTTP request to send (pure, no I/O).
--
--   local req = request.build(api, op_name, params [, opts])   -- raises
--   local req, msg = request.try(api, op_name, params)          -- nil, msg
--   local f = request.compile(api, op_name)                     -- the client's form
--   local url, headers, body = f(params [, base [, headers]])   -- or nil, msg
--
-- api: a generated operation table (require "spapi.operations.feeds") or its key
-- ("feeds"). params: a table keyed by the model's parameter names; an operation
-- with exactly one body parameter also takes it under `body`. build returns
--
--   { method = "GET", path = "/feeds/2021-06-30/feeds/F%2F1" (path params
--     substituted, RFC 3986-encoded), query = "a=1&b=x%2Cy" (no "?", params in
--     model order, "" when none), headers = { Accept = "application/json",
--     ["Content-Type"] = consumes when a body is sent, header params... },
--     body = JSON string | nil, operation = "feeds.getFeed",
--     template = "/feeds/.../{feedId}" }
--
-- compile's function gives base .. path [.. "?" .. query], the headers (in the
-- table given, emptied of what an earlier call set, or a new one) and the body.
--
-- Every value is checked by spapi.validate against the model (parameters by
-- their rules, a table body against its schema at every depth) before anything
-- is built: a missing required parameter or property, an unknown parameter
-- (with a suggestion), a wrong type, a value outside the enum / min / max /
-- length / item-count / pattern / date-time, a header with a NUL, CR or LF, a
-- body JSON cannot encode. A JSON string body is sent as given. opts.level says
-- where build's error points, as for error() counted from the caller of build:
-- 1 (default) = the caller of build, 2 = its caller.
local json = require "spapi.json"
local validate = require "spapi.validate"

local type, pairs, ipairs, next, tostring, tonumber = type, pairs, ipairs, next, tostring, tonumber
local error, pcall, require, setmetatable = error, pcall, require, setmetatable
local abs = math.abs
local concat, sort = table.concat, table.sort
local sformat, sgsub, sfind, slower, ssub, sbyte = string.format, string.gsub, string.find,
  string.lower, string.sub, string.byte
local null = json.null
local FAIL, fail, quote = validate.FAIL, validate.fail, validate.quote
local check_param, check_body = validate.param, validate.body

local _M = { _VERSION = "0.1" }

-- RFC 3986 percent-encoding from the C core; a pure-Lua equivalent only if the
-- core cannot be loaded (e.g. a spec run before `make`).
local urlencode
do
  local ok, core = pcall(require, "spapi.core")
  if ok and type(core) == "table" and core.urlencode then
    urlencode = core.urlencode
  else
    urlencode = function(s)
      return (sgsub(s, "[^%w%-%._~]", function(c) return sformat("%%%02X", sbyte(c)) end))
    end
  end
end
_M.urlencode = urlencode

-- Levenshtein distance, for "did you mean".
local function distance(a, b)
  local la, lb = #a, #b
  if abs(la - lb) > 3 then return 99 end
  local prev = {}
  for j = 0, lb do prev[j] = j end
  for i = 1, la do
    local cur = { [0] = i }
    local ca = sbyte(a, i)
    for j = 1, lb do
      local cost = (ca == sbyte(b, j)) and 0 or 1
      local d = prev[j] + 1
      if cur[j - 1] + 1 < d then d = cur[j - 1] + 1 end
      if prev[j - 1] + cost < d then d = prev[j - 1] + cost end
      cur[j] = d
    end
    prev = cur
  end
  return prev[lb]
end

local function suggest(name, candidates)
  if type(name) ~= "string" then return nil end
  local lname = slower(name)
  local best, bestd
  for _, c in ipairs(candidates) do
    if slower(c) == lname then return c end
    local d = distance(lname, slower(c))
    if not bestd or d < bestd or (d == bestd and c < best) then best, bestd = c, d end
  end
  if best and bestd <= (#name >= 6 and 2 or 1) then return best end
  return nil
end

local function resolve_api(api)
  if type(api) == "string" then
    local ok, t = pcall(require, "spapi.operations." .. api)
    if not ok or type(t) ~= "table" then return nil end
    return t
  end
  return api
end

-- The schema of an operation's body: the generated one (lua/spapi/schemas) for
-- a shipped operation table; for a table of one's own, its top-level required
-- properties. → schema, definitions
local function body_schema(api, op_name, p)
  local ok, s = pcall(require, "spapi.schemas." .. tostring(api.api))
  local o = ok and type(s) == "table" and s.model == api.model and s.operations[op_name]
  if o and o.body then return o.body, s.definitions end
  return { type = p.type == "object" and "object" or nil, required = p.body_required }, {}
end

local SEPARATORS = { csv = ",", ssv = " ", tsv = "\t", pipes = "|" }

-- What a call of an operation needs that does not change between calls
-- (made once per operation table; carries .operation for fail()).
local plans = setmetatable({}, { __mode = "k" })
local function plan_of(api, op_name, op)
  local plan = plans[op]
  if plan then return plan end
  plan = { operation = tostring(api.api) .. "." .. tostring(op_name), op = op, known = {}, names = {},
           params = {}, varying = {}, nbody = 0 }
  for i, p in ipairs(op.params) do
    local name, where = p.name, p["in"]
    plan.known[name] = true
    plan.names[#plan.names + 1] = name
    local rule = validate.rule(p)
    local e = { name = name, where = where, required = p.required, rule = rule,
                label = "parameter '" .. name .. "'", key = urlencode(name), array = p.type == "array",
                -- a string with no rule: any string will do
                plain = (rule.type == "string" or rule.type == nil) and not (rule.format or rule.enum or
                  rule.pattern or rule.minLength or rule.maxLength) }
    if where == "body" then
      plan.nbody, plan.body_param = plan.nbody + 1, name
      e.schema, e.defs = body_schema(api, op_name, p)
      plan.varying[#plan.varying + 1] = "Content-Type"
    elseif where == "header" then
      plan.varying[#plan.varying + 1] = name
    elseif where == "query" and e.array then
      e.multi = p.collection_format == "multi"
      local sep = SEPARATORS[p.collection_format or "csv"]
      e.sep = sep and (sep == "," and "," or urlencode(sep))
      e.format = p.collection_format
    elseif where == "path" then
      e.required = true -- a path cannot be built without it
    end
    plan.params[i] = e
  end
  plan.body_alias = plan.nbody == 1 and plan.body_param ~= "body"
  if plan.body_alias then plan.known.body = true end
  -- the path: literal pieces, and a place for each path parameter's value
  local at = {}
  for _, e in ipairs(plan.params) do
    if e.where == "path" then
      local a, b = sfind(op.path, "{" .. e.name .. "}", 1, true)
      if a then at[#at + 1] = { a = a, b = b, e = e } end
    end
  end
  sort(at, function(x, y) return x.a < y.a end)
  local parts, pos, tpl = {}, 1, op.path
  for _, v in ipairs(at) do
    if v.a > pos then parts[#parts + 1] = ssub(tpl, pos, v.a - 1) end
    parts[#parts + 1] = false
    v.e.piece, pos = #parts, v.b + 1
  end
  if pos <= #tpl then parts[#parts + 1] = ssub(tpl, pos) end
  plan.parts = #at > 0 and parts or nil
  plans[op] = plan
  return plan
end

local function unknown(plan, k)
  local cands = plan.names
  if plan.body_alias then
    cands = { "body" }
    for i, n in ipairs(plan.names) do cands[i + 1] = n end
  end
  local s = suggest(k, cands)
  fail(plan, "unknown parameter %s%s", type(k) == "string" and ("'" .. k .. "'") or quote(k),
    s and (" (did you mean '" .. s .. "'?)") or "")
end

-- a list parameter → its items' wire strings
local function list_values(plan, e, v)
  if type(v) == "table" then
    local n = #v
    for k in next, v do
      if type(k) ~= "number" or k < 1 or k > n or k % 1 ~= 0 then
        fail(plan, "%s must be a list (array table), got a table with key %s", e.label, quote(k))
      end
    end
  elseif type(v) == "string" or type(v) == "number" or type(v) == "boolean" then
    v = { v }
  else
    fail(plan, "%s must be a list or a single value (got %s)", e.label, type(v))
  end
  local rule, n = e.rule, #v
  if rule.maxItems and n > rule.maxItems then
    fail(plan, "%s must have at most %d items (got %d)", e.label, rule.maxItems, n)
  end
  if rule.minItems and n < rule.minItems then
    fail(plan, "%s must have at least %d items (got %d)", e.label, rule.minItems, n)
  end
  local out = {}
  for i = 1, n do out[i] = check_param(plan, rule.items, e.label .. " item " .. i, v[i]) end
  return out
end

local EMPTY = setmetatable({}, { __newindex = function() error("spapi: internal: EMPTY is read-only") end })

-- plan + params → path, query (nil when none), headers, body; raises FAIL
local function assemble(plan, params, H)
  if params == nil then params = EMPTY
  elseif type(params) ~= "table" then fail(plan, "params must be a table (got %s)", type(params)) end
  local known = plan.known
  for k in next, params do
    if not known[k] then unknown(plan, k) end
  end
  if H == nil then
    H = { Accept = "application/json" }
  else -- a table given again keeps the access token; what this call sets goes
    local varying = plan.varying
    for i = 1, #varying do H[varying[i]] = nil end
  end
  local list = plan.params
  -- the path's pieces: its literal text, and the path parameters' values put
  -- in by this call (assemble never yields, so a call has them to itself)
  local parts = plan.parts
  local query, body
  for i = 1, #list do
    local e = list[i]
    local name, where = e.name, e.where
    local v = params[name]
    if where == "body" and plan.body_alias and params.body ~= nil then
      if v ~= nil then fail(plan, "give the body as '%s' or as 'body', not both", name) end
      v, name = params.body, "body"
    end
    if v == null then v = nil end
    local empty_list = e.array and type(v) == "table" and next(v) == nil
    if v == nil or empty_list then
      if e.required then
        fail(plan, "missing required parameter '%s'%s", e.name, empty_list and " (got an empty list)" or "")
      end
    elseif where == "query" then
      local piece
      if not e.array then
        if not (e.plain and type(v) == "string") then v = check_param(plan, e.rule, e.label, v) end
        piece = e.key .. "=" .. urlencode(v)
      elseif e.multi then
        local items = list_values(plan, e, v)
        for j = 1, #items do items[j] = e.key .. "=" .. urlencode(items[j]) end
        piece = concat(items, "&")
      else
        if not e.sep then fail(plan, "%s uses collection format %s, which spapi does not support", e.label, e.format) end
        local items = list_values(plan, e, v)
        for j = 1, #items do items[j] = urlencode(items[j]) end
        piece = e.key .. "=" .. concat(items, e.sep)
      end
      if query then query = query .. "&" .. piece else query = piece end
    elseif where == "path" then
      local s = (e.plain and type(v) == "string") and v or check_param(plan, e.rule, e.label, v)
      if s == "" then fail(plan, "%s must not be empty", e.label) end
      s = urlencode(s)
      -- "." and ".." are unreserved but would be removed as dot-segments by
      -- URL normalisation (curl does that): send them encoded
      if s == "." or s == ".." then s = sgsub(s, "%.", "%%2E") end
      if e.piece then parts[e.piece] = s end
    elseif where == "header" then
      local s = check_param(plan, e.rule, e.label, v)
      if sfind(s, "[%z\r\n]") then fail(plan, "%s must not contain a NUL, CR or LF", e.label) end
      H[name] = s
    elseif where == "body" then
      local label = name == e.name and e.label or "parameter 'body'"
      local tv = type(v)
      if tv == "string" then
        body = v
      elseif tv == "table" then
        local s, err = json.encode(check_body(plan, e.defs, e.schema, v, name))
        if not s then fail(plan, "%s cannot be encoded as JSON: %s", label, tostring(err)) end
        body = s
      else
        fail(plan, "%s must be a table or a JSON string (got %s)", label, tv)
      end
      H["Content-Type"] = plan.op.consumes or "application/json"
    else
      fail(plan, "%s is sent in '%s', which spapi does not support", e.label, tostring(where))
    end
  end
  return parts and concat(parts) or plan.op.path, query, H, body
end

local function unknown_operation(api, op_name)
  local ctx = { operation = tostring(api.api) .. "." .. tostring(op_name) }
  local names = {}
  for k in pairs(api.operations) do names[#names + 1] = k end
  sort(names)
  local s = suggest(op_name, names)
  fail(ctx, "unknown operation%s", s and (" (did you mean '" .. s .. "'?)") or "")
end

local function build(api, op_name, params)
  local op = api.operations[op_name]
  if not op then unknown_operation(api, op_name) end
  local plan = plans[op] or plan_of(api, op_name, op)
  local path, query, headers, body = assemble(plan, params)
  return {
    method = op.method,
    path = path,
    query = query or "",
    headers = headers,
    body = body,
    operation = plan.operation,
    template = op.path,
  }
end

--- try(api, op_name, params) → request | nil, message: build without raising
--- (the message is the one build would raise, without a position).
function _M.try(api, op_name, params)
  local t = resolve_api(api)
  if type(t) ~= "table" or type(t.operations) ~= "table" then
    return nil, "spapi: unknown API " .. quote(type(api) == "table" and tostring(api.api) or api)
  end
  local ok, res = pcall(build, t, op_name, params)
  if ok then return res end
  if type(res) == "table" and res[FAIL] then return nil, res.msg end
  error(res, 0)
end

function _M.build(api, op_name, params, opts)
  local level = 2 + ((type(opts) == "table" and tonumber(opts.level)) or 1)
  local t = resolve_api(api)
  if type(t) ~= "table" or type(t.operations) ~= "table" then
    error("spapi: unknown API " .. quote(type(api) == "table" and tostring(api.api) or api), level - 1)
  end
  local ok, res = pcall(build, t, op_name, params)
  if ok then return res end
  if type(res) == "table" and res[FAIL] then error(res.msg, level - 1) end
  error(res, 0)
end

-- compile's result: nil, message on a refused value (raised again otherwise)
local function refused(ok, a, b, c, d)
  if ok then return a, b, c, d end
  if type(a) == "table" and a[FAIL] then return nil, a.msg end
  error(a, 0)
end

--- compile(api_table, op_name) → f(params [, base [, headers]]) → url, headers, body | nil, message
function _M.compile(api, op_name)
  local op = api.operations[op_name]
  if not op then
    return function() return refused(pcall(unknown_operation, api, op_name)) end
  end
  local plan = plan_of(api, op_name, op)
  return function(params, base, H)
    local ok, path, query, headers, body = pcall(assemble, plan, params, H)
    if not ok then return refused(ok, path) end
    if query then return (base or "") .. path .. "?" .. query, headers, body end
    return (base or "") .. path, headers, body
  end
end

return _M
