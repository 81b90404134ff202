-- spapi.builder — per-operation request builders, compiled once from the
-- operation table into straight-line Lua, so that a call walks no parameter
-- list and dispatches on no type.
--
--   local f = builder.compile(api, op_name)     -- api: a generated operation table
--   local url, headers, body = f(params [, base [, headers]])
--   -- url: base .. path [.. "?" .. query] (base: e.g. the endpoint; "" if nil);
--   -- headers: a table from an earlier call of f to fill again (else a new one)
--   -- or nil, message
--
-- The compiled code handles the shapes calls usually have: strings (enum,
-- length and pattern rules), ISO 8601 date-times, integers, booleans, lists,
-- header strings and a JSON body. Anything else — a missing or wrong value, an
-- unknown key, a date-time, a value the fast code is not sure of — goes to
-- request.build, which builds it or names the problem. Both give the same
-- request for the same params (spec/request/builder_spec.lua compares them on
-- every operation of every model).
local request = require "spapi.request"
local json = require "spapi.json"

local type, next, pairs, ipairs, tostring, load, setmetatable = type, next, pairs, ipairs, tostring, load, setmetatable
local concat, sformat, sfind = table.concat, string.format, string.find

local _M = {}

-- the slow path: request.build's result in the compiled function's shape
local function slow(api, op_name, params, base)
  local r, msg = request.try(api, op_name, params)
  if not r then return nil, msg end
  if r.query ~= "" then return (base or "") .. r.path .. "?" .. r.query, r.headers, r.body end
  return (base or "") .. r.path, r.headers, r.body
end

local SEPARATORS = { csv = ",", ssv = " ", tsv = "\t", pipes = "|" }

-- Code generation ----------------------------------------------------------
-- g.out: lines; g.up: values the chunk receives (K1, K2, ...)
local LOCAL_CONSTANTS = 40 -- past these, U[n] (LuaJIT allows a function 60 upvalues)

local function constant(g, v)
  local n = #g.up + 1
  g.up[n] = v
  return n <= LOCAL_CONSTANTS and ("K" .. n) or ("U[" .. n .. "]")
end

local function emit(g, ...)
  g.out[#g.out + 1] = concat({ ... })
end

local SLOW = "return SLOW(params, base)"

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

-- Checks of string rules on variable `var` (a string). A pattern the Lua
-- translation cannot express is left to the server, as request.build does.
local function string_rules(g, p, var)
  if p.enum then emit(g, "if not ", constant(g, set_of(p.enum)), "[", var, "] then ", SLOW, " end") end
  -- bytes >= characters: a short enough byte string is short enough
  if p.max_length then emit(g, "if #", var, " > ", p.max_length, " then ", SLOW, " end") end
  if p.min_length then
    emit(g, "if #", var, " < ", p.min_length, " or find(", var, ", '[\\128-\\255]') then ", SLOW, " end")
  end
  if p.pattern then
    local lp = request._regex_to_lua(p.pattern)
    if lp then emit(g, "if not find(", var, ", ", constant(g, lp), ") then ", SLOW, " end") end
  end
end

-- A scalar of p from variable `v` into the string variable `s`; false when the
-- kind is not handled here.
local function scalar(g, p, v, s)
  local t = p.type
  if t == "boolean" or p.format == "boolean" then
    emit(g, "local ", s)
    emit(g, "if ", v, " == true then ", s, " = 'true' elseif ", v, " == false then ", s, " = 'false' ",
      "elseif ", v, " == 'true' or ", v, " == 'false' then ", s, " = ", v, " else ", SLOW, " end")
    return true
  elseif t == "integer" then
    emit(g, "if type(", v, ") ~= 'number' or ", v, " ~= floor(", v, ") or ", v, " == huge or ", v, " == -huge then ",
      SLOW, " end")
    if p.minimum then emit(g, "if ", v, " < ", constant(g, p.minimum), " then ", SLOW, " end") end
    if p.maximum then emit(g, "if ", v, " > ", constant(g, p.maximum), " then ", SLOW, " end") end
    emit(g, "local ", s, " = FI(", v, ")")
    return true
  elseif p.format == "date-time" or t == "string" or t == nil then
    if p.format == "date-time" then -- ISO 8601 text as given; Unix seconds take the slow path
      emit(g, "if type(", v, ") ~= 'string' or not find(", v, ", '^%d%d%d%d%-%d%d%-%d%d[Tt]%d%d:%d%d') then ",
        SLOW, " end")
    else
      emit(g, "if type(", v, ") ~= 'string' then ", SLOW, " end")
    end
    string_rules(g, p, v)
    emit(g, "local ", s, " = ", v)
    return true
  end
  return false
end

-- a list parameter from `v` into the encoded query text `e` (items joined)
local function list(g, p, v, key, qpiece)
  local items = p.items or { type = "string" }
  local cf = p.collection_format or "csv"
  local sep = SEPARATORS[cf]
  if cf ~= "multi" and not sep then return false end
  local probe = { out = {}, up = {} }
  if not scalar(probe, items, "x", "xs") then return false end
  emit(g, "if type(", v, ") ~= 'table' then ", SLOW, " end")
  emit(g, "local n = #", v)
  -- a list and nothing else: its keys are 1..n (counted: a key may come anywhere)
  emit(g, "if n == 0 then ", SLOW, " end")
  emit(g, "local c = 0 for _ in next, ", v, " do c = c + 1 end")
  emit(g, "if c ~= n then ", SLOW, " end")
  if p.max_items then emit(g, "if n > ", p.max_items, " then ", SLOW, " end") end
  if p.min_items then emit(g, "if n < ", p.min_items, " then ", SLOW, " end") end
  emit(g, "for i = 1, n do")
  emit(g, "local x = ", v, "[i]")
  scalar(g, items, "x", "xs")
  if cf == "multi" then
    qpiece("'" .. key .. "=' .. ENC(xs)")
    emit(g, "end")
  else
    emit(g, "if i == 1 then e = ENC(xs) else e = e .. ", sformat("%q", sep == "," and "," or request.urlencode(sep)),
      " .. ENC(xs) end")
    emit(g, "end")
    qpiece("'" .. key .. "=' .. e")
  end
  return true
end

local function generate(api, op_name, op)
  local g = { out = {}, up = {} }
  local known, nbody, body_param = {}, 0, nil
  for _, p in ipairs(op.params) do
    known[p.name] = true
    if p["in"] == "body" then nbody, body_param = nbody + 1, p end
  end
  local body_alias = nbody == 1 and body_param.name ~= "body"
  if body_alias then known.body = true end

  emit(g, "return function(params, base, H)")
  local decl_at = #g.out + 1
  emit(g, "if params == nil then params = EMPTY end")
  emit(g, "if base == nil then base = '' end")
  emit(g, "for k in next, params do if not ", constant(g, known), "[k] then ", SLOW, " end end")
  emit(g, "local q, e, body")
  -- the headers table is sized for what the call will add (nil fields count in
  -- the constructor's size, store nothing): the token, Content-Type, header params
  local slots, varying = { "Accept = 'application/json'", "['x-amz-access-token'] = nil" }, {}
  for _, p in ipairs(op.params) do
    if p["in"] == "header" then varying[#varying + 1] = "[" .. sformat("%q", p.name) .. "]" end
  end
  if nbody > 0 then varying[#varying + 1] = "['Content-Type']" end
  for _, k in ipairs(varying) do slots[#slots + 1] = k .. " = nil" end
  -- a table given again keeps the access token (replaced before sending) and
  -- loses what this call may not set
  emit(g, "if H == nil then H = { ", concat(slots, ", "), " }")
  if #varying > 0 then
    emit(g, "else ", concat(varying, " = nil H") :gsub("^", "H") , " = nil")
  end
  emit(g, "end")
  local pathvars = {}
  -- when every query parameter is a required scalar, the query goes straight
  -- into the URL's one concatenation (no intermediate string)
  local fixed, nquery, qvars = {}, 0, {}
  for _, p in ipairs(op.params) do
    if p["in"] == "query" then
      nquery = nquery + 1
      if not p.required or p.type == "array" then fixed = nil end
    end
  end
  if nquery == 0 then fixed = nil end
  local function qpiece(expr)
    emit(g, "if q then q = q .. '&' .. ", expr, " else q = ", expr, " end")
  end
  for i, p in ipairs(op.params) do
    local where, name = p["in"], p.name
    local v = "v" .. i
    emit(g, "do")
    if where == "body" then
      emit(g, "local ", v, " = params[", sformat("%q", name), "]")
      if body_alias then
        emit(g, "if params.body ~= nil then if ", v, " ~= nil then ", SLOW, " end ", v, " = params.body end")
      end
      emit(g, "if ", v, " == nil then")
      if p.required then emit(g, SLOW) end
      emit(g, "elseif type(", v, ") == 'table' then")
      if p.body_required and p.type == "object" then
        for _, req in ipairs(p.body_required) do
          emit(g, "if ", v, "[", sformat("%q", req), "] == nil or ", v, "[", sformat("%q", req), "] == NULL then ",
            SLOW, " end")
        end
      end
      if p.body_dates then emit(g, v, " = DATES(", v, ", ", constant(g, p.body_dates), ")") end
      emit(g, "body = JENC(", v, ") if not body then ", SLOW, " end")
      emit(g, "elseif type(", v, ") == 'string' then body = ", v)
      emit(g, "else ", SLOW, " end")
      emit(g, "if body then H['Content-Type'] = ", sformat("%q", op.consumes or "application/json"), " end")
    else
      emit(g, "local ", v, " = params[", sformat("%q", name), "]")
      local handled
      if where == "query" and p.type == "array" then
        emit(g, "if ", v, " ~= nil then")
        handled = list(g, p, v, request.urlencode(name), qpiece)
        if handled then emit(g, "end") end
      elseif where == "query" or where == "path" or where == "header" then
        emit(g, "if ", v, " ~= nil then")
        local s = "s" .. i
        handled = scalar(g, p, v, s)
        if handled then
          if where == "query" and fixed then
            emit(g, "Q", i, " = ENC(", s, ")")
            fixed[#fixed + 1] = (#fixed == 0 and "'?" or "'&") .. request.urlencode(name) .. "=' .. Q" .. i
            qvars[#qvars + 1] = "Q" .. i
          elseif where == "query" then
            qpiece("'" .. request.urlencode(name) .. "=' .. ENC(" .. s .. ")")
          elseif where == "header" then
            emit(g, "if find(", s, ", '[\\r\\n]') then ", SLOW, " end")
            emit(g, "H[", sformat("%q", name), "] = ", s)
          else
            emit(g, "if ", s, " == '' then ", SLOW, " end")
            emit(g, "local pe = ENC(", s, ")")
            emit(g, "if pe == '.' or pe == '..' then ", SLOW, " end")
            emit(g, "P", i, " = pe")
            pathvars[name] = "P" .. i
          end
          emit(g, "end")
        end
      end
      if not handled then
        -- not a kind compiled here: the slow path whenever it is given, and
        -- always when it must be (request.build names it when it is missing)
        g.out[#g.out] = nil
        if p.required or where == "path" then
          emit(g, "do ", SLOW, " end")
        else
          emit(g, "if ", v, " ~= nil then ", SLOW, " end")
        end
      elseif p.required or where == "path" then
        emit(g, "if ", v, " == nil then ", SLOW, " end")
      end
    end
    emit(g, "end")
  end
  -- the path: literal pieces and the encoded path parameters
  local pieces, pos, tpl = {}, 1, op.path
  while true do
    local a, b, name = sfind(tpl, "{([^}]*)}", pos)
    if not a then break end
    if pathvars[name] then
      if a > pos then pieces[#pieces + 1] = sformat("%q", tpl:sub(pos, a - 1)) end
      pieces[#pieces + 1] = pathvars[name]
    else
      pieces[#pieces + 1] = sformat("%q", tpl:sub(pos, b))
    end
    pos = b + 1
  end
  if pos <= #tpl or #pieces == 0 then pieces[#pieces + 1] = sformat("%q", tpl:sub(pos)) end
  -- the URL in one concatenation
  local path = concat(pieces, " .. ")
  if fixed and #fixed == 0 then fixed = nil end -- no query parameter was compiled
  if fixed then
    emit(g, "return base .. ", path, " .. ", concat(fixed, " .. "), ", H, body")
  else
    emit(g, "if q then return base .. ", path, " .. '?' .. q, H, body end")
    emit(g, "return base .. ", path, ", H, body")
  end
  emit(g, "end")

  -- the path (and fixed query) variables are locals of the whole function
  local decl = qvars
  for _, var in pairs(pathvars) do decl[#decl + 1] = var end
  if #decl > 0 then
    table.sort(decl)
    table.insert(g.out, decl_at, "local " .. concat(decl, ", "))
  end
  local head = { "local U, SLOW = ..." }
  for n = 1, math.min(#g.up, LOCAL_CONSTANTS) do head[#head + 1] = sformat("local K%d = U[%d]", n, n) end
  head[#head + 1] = "local type, next, floor, huge, find = type, next, math.floor, math.huge, string.find"
  head[#head + 1] = "local ENC, FI, JENC, NULL, EMPTY, DATES = U.ENC, U.FI, U.JENC, U.NULL, U.EMPTY, U.DATES"
  return concat(head, "\n") .. "\n" .. concat(g.out, "\n"), g.up
end

local EMPTY = setmetatable({}, { __newindex = function() error("spapi: internal: EMPTY is read-only") end })

local compiled = setmetatable({}, { __mode = "k" })

--- compile(api, op_name) → f(params) → target, headers, body | nil, message
function _M.compile(api, op_name)
  local op = api.operations[op_name]
  local f = op and compiled[op]
  if f then return f end
  if not op then
    return function(params, base) return slow(api, op_name, params, base) end
  end
  local src, up = generate(api, op_name, op)
  up.ENC, up.FI, up.JENC, up.NULL, up.EMPTY, up.DATES = request.urlencode, request.fmt_integer, json.encode,
    json.null, EMPTY, request.body_dates
  local chunk = assert(load(src, "=spapi.builder(" .. tostring(api.api) .. "." .. op_name .. ")"))
  f = chunk(up, function(params, base) return slow(api, op_name, params, base) end)
  compiled[op] = f
  return f
end

--- The generated source of an operation's builder (for reading and debugging).
function _M.source(api, op_name)
  return (generate(api, op_name, api.operations[op_name]))
end

return _M
