-- The interactive shell behind `spapi` (bin/spapi with no command):
--   sp        a client from the environment, the profile file or the flags
--   spapi     the module
-- Lines are Lua: an expression prints its value as indented data (long lists
-- cut, with a count); a call that fails prints its structured error (status,
-- code, message, details, request id); an unfinished expression continues on the
-- next line. Commands: :help, :ops [filter], :describe api.op, :profile NAME, :quit.
-- Line editing, Tab completion and history through lua-readline when it is
-- installed (Debian's lua-readline), plain lines otherwise.
local _M = {}
local R = {}
R.__index = R

local common = require "spapi.cli.common"
local pretty = require "spapi.cli.pretty"
local errors = require "spapi.errors"

local type, tostring, tonumber, pairs, ipairs, select, getmetatable, rawget, pcall, xpcall =
  type, tostring, tonumber, pairs, ipairs, select, getmetatable, rawget, pcall, xpcall
local fmt, concat, sort = string.format, table.concat, table.sort
local pack = table.pack or function(...) return { n = select("#", ...), ... } end

local HELP = [[
Lua with spapi: `sp` is the client, `spapi` the module.
  sp.fulfillment_outbound.getFeatures{ marketplaceId = "ATVPDKIKX0DER" }
  sp:call("vendor_df_orders.getOrders", { createdAfter = os.time() - 86400, createdBefore = os.time() })
  for item in sp:each("fba_inventory.getInventorySummaries", { ... }) do print(item.sellerSku) end
  _            the last result
Tab completes API keys after sp., operations after sp.<api>., parameter names inside { },
and the body's property names (from the model) inside body = { }.
An unfinished expression continues on the next line (an empty line there discards it).
Commands:
  :help                this text
  :ops [filter]        the operations (filter: API keys and operation ids, any case)
  :describe api.op     an operation's parameters and an example body
  :profile NAME        a new `sp` from profile NAME of the profile file
  :quit                leave (or Ctrl-D)
]]

local KEYWORDS = { "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
  "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while" }
local COMMANDS = { ":help", ":ops", ":describe", ":profile", ":quit" }
local CLIENT_METHODS = { "call", "each", "pages", "batch", "operation", "upload_document", "download_document",
  "close" }

--- A REPL over env (from spapi.cli.common.env), writing to out (io.stdout).
--- opts: client options (for :profile), max_items
function _M.new(env, opts)
  opts = opts or {}
  return setmetatable({ env = env, opts = opts.client or {}, out = opts.out or io.stdout, buffer = nil,
    max_items = opts.max_items or 10 }, R)
end

function R:write(...)
  local out = self.out
  out:write(...)
  out:flush()
end

---------------------------------------------------------------------------
-- showing results
---------------------------------------------------------------------------
local function is_response(v)
  return type(v) == "table" and rawget(v, "status") ~= nil and rawget(v, "operation") ~= nil
end

-- the secrets of the environment, masked wherever they would be printed
local SECRET_VARS = { "LWA_CLIENT_SECRET", "LWA_REFRESH_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN" }
local function env_secrets()
  local set = {}
  for _, name in ipairs(SECRET_VARS) do
    local v = os.getenv(name)
    if v and v ~= "" then set[v] = true end
  end
  return set
end

function R:show(v)
  if errors.is(v) then return pretty.error(v) end
  self.secrets = self.secrets or env_secrets()
  return pretty.show(v, { max_items = self.max_items, secrets = self.secrets })
end

-- the values an evaluation returned (r: packed, r[1] = true)
function R:print_results(r)
  local n = r.n
  if n < 2 then return end
  local a, b = r[2], r[3]
  if n <= 3 and a == nil and errors.is(b) then -- a call's nil, err
    self:write(pretty.error(b), "\n")
    return
  end
  self.env._ = a
  if n <= 3 and is_response(b) then -- a call's body, response
    self:write(self:show(a), "\n")
    local meta = { "-- " .. tostring(b.status) }
    if b.request_id then meta[#meta + 1] = "request id " .. tostring(b.request_id) end
    local rate = tonumber(b.rate_limit)
    if rate then meta[#meta + 1] = "rate " .. (rate == math.floor(rate) and fmt("%d", rate) or fmt("%g", rate)) .. "/s" end
    if b.attempts and b.attempts > 1 then meta[#meta + 1] = tostring(b.attempts) .. " attempts" end
    self:write(concat(meta, " · "), "\n")
    return
  end
  for i = 2, n do self:write(self:show(r[i]), "\n") end
end

function R:print_error(e)
  if errors.is(e) then
    self:write(pretty.error(e), "\n")
  else
    local s = tostring(e)
    if type(e) == "table" and not (getmetatable(e) and getmetatable(e).__tostring) then s = pretty.show(e) end
    self:write("error: ", s, "\n")
  end
end

---------------------------------------------------------------------------
-- evaluating
---------------------------------------------------------------------------
local function incomplete(err)
  return type(err) == "string" and (err:find("<eof>[\"']?$") ~= nil)
end

-- run a compiled chunk, print what it returned or the error it raised
function R:run(f)
  local r = pack(xpcall(f, function(e) return e end))
  if r[1] then
    self:print_results(r)
  else
    self:print_error(r[2])
  end
end

--- Feed one line → "more" when the input is unfinished, else nil (evaluated,
--- or a command run; "quit" to leave).
function R:feed(line)
  if not self.buffer then
    local cmd = line:match("^%s*(:.*)$")
    if cmd then return self:command(cmd) end
    if line:match("^%s*$") then return nil end
    self.buffer = line
  else
    if line:match("^%s*$") then -- an empty line ends an unfinished input
      self.buffer = nil
      self:write("(discarded)\n")
      return nil
    end
    self.buffer = self.buffer .. "\n" .. line
  end
  local src = self.buffer
  -- an expression first (its value is printed), else a statement; unfinished
  -- when either form is only missing its end
  local f, rerr = common.load("return " .. src, "=repl", self.env)
  local err
  if not f then f, err = common.load(src, "=repl", self.env) end
  if not f then
    if incomplete(err) or incomplete(rerr) then return "more" end
    self.buffer = nil
    self:write("syntax error: ", tostring(err), "\n")
    return nil
  end
  self.buffer = nil
  self:run(f)
  return nil
end

---------------------------------------------------------------------------
-- commands
---------------------------------------------------------------------------
function R:command(text)
  local name, rest = text:match("^:(%S*)%s*(.-)%s*$")
  if name == "help" or name == "h" or name == "?" then
    self:write(HELP)
  elseif name == "quit" or name == "q" or name == "exit" then
    return "quit"
  elseif name == "ops" then
    local ops = require "spapi.cli.ops"
    local list = ops.list(rest ~= "" and rest or nil)
    if #list == 0 then
      self:write("no operation matches '", rest, "'\n")
    else
      self:write(concat(ops.lines(list), "\n"), "\n")
    end
  elseif name == "describe" then
    if rest == "" then
      self:write("usage: :describe api.operation\n")
    else
      local text, err = require("spapi.cli.describe").text(rest)
      self:write(text or ("error: " .. tostring(err)), "\n")
    end
  elseif name == "profile" then
    if rest == "" then
      self:write("usage: :profile NAME\n")
    else
      local o = {}
      for k, v in pairs(self.opts) do o[k] = v end
      o.profile = rest
      local sp, err = common.client(o)
      if not sp then
        self:print_error(err)
      else
        self.opts = o
        rawset(self.env, "sp", sp)
        self:write("sp = ", tostring(sp), "\n")
      end
    end
  else
    self:write("unknown command :", tostring(name), " (:help lists them)\n")
  end
  return nil
end

---------------------------------------------------------------------------
-- completion
---------------------------------------------------------------------------
local function operations_index() return require "spapi.operations" end

local function api_ops(api)
  local mod = operations_index().apis[api]
  if not mod then return nil end
  local ok, t = pcall(require, mod)
  return ok and t or nil
end

local function sorted(list)
  sort(list)
  local out, last = {}, nil
  for _, v in ipairs(list) do
    if v ~= last then out[#out + 1] = v end
    last = v
  end
  return out
end

local function starting(list, prefix, decorate)
  local out = {}
  for _, v in ipairs(list) do
    if v:sub(1, #prefix) == prefix then out[#out + 1] = decorate and decorate(v) or v end
  end
  return sorted(out)
end

local function is_client(v)
  local ok, client = pcall(require, "spapi.client")
  return ok and type(v) == "table" and getmetatable(v) == client.Client
end

local function keys_of(t)
  local out = {}
  local seen = {}
  local guard = 0
  while type(t) == "table" and guard < 4 do
    for k in pairs(t) do
      if type(k) == "string" and k:match("^[%a_][%w_]*$") and not seen[k] then
        seen[k] = true
        out[#out + 1] = k
      end
    end
    local mt = getmetatable(t)
    t = mt and type(mt) == "table" and rawget(mt, "__index")
    guard = guard + 1
  end
  return out
end

local function all_operations()
  local out = {}
  for api in pairs(operations_index().apis) do
    local t = api_ops(api)
    if t then for id in pairs(t.operations) do out[#out + 1] = api .. "." .. id end end
  end
  return out
end

-- The braces open at the end of `before` (quoted strings skipped), outermost
-- first: the position of each '{'.
local function open_braces(before)
  local stack, i, n = {}, 1, #before
  while i <= n do
    local c = before:sub(i, i)
    if c == '"' or c == "'" then
      local j = i + 1
      while j <= n and before:sub(j, j) ~= c do
        if before:sub(j, j) == "\\" then j = j + 1 end
        j = j + 1
      end
      i = j
    elseif c == "{" then
      stack[#stack + 1] = i
    elseif c == "}" then
      stack[#stack] = nil
    end
    i = i + 1
  end
  return stack
end

-- a schema with its ref followed and its allOf parts merged
local function schema_of(s, defs, depth)
  depth = depth or 0
  if type(s) ~= "table" or depth > 20 then return nil end
  if s.ref then return schema_of(defs[s.ref], defs, depth + 1) end
  if s.allOf then
    local props = {}
    for _, part in ipairs(s.allOf) do
      local r = schema_of(part, defs, depth + 1)
      for k, v in pairs(r and r.properties or {}) do props[k] = v end
    end
    return { type = "object", properties = props }
  end
  return s
end

-- The names that fit at the cursor inside an operation's braces: its parameter
-- names, or the property names of the body object the cursor is in (from the
-- model's schema). nil when the cursor is not at a key's place in such braces.
local function params_context(before)
  if not before:match("[{,]%s*$") then return nil end
  local braces = open_braces(before)
  for level = #braces, 1, -1 do
    local head = before:sub(1, braces[level] - 1)
    local api, op = head:match("([%a_][%w_]*)%.([%a_][%w_]*)%s*%(?%s*$")
    if not api then api, op = head:match("call%s*%(%s*[\"']([%w_]+)%.([%w_]+)[\"']%s*,%s*$") end
    local t = api and api_ops(api)
    local o = t and t.operations[op]
    if o then
      local names = {}
      if level == #braces then
        for _, p in ipairs(o.params or {}) do names[#names + 1] = p.name end
        return names
      end
      -- inside the body: follow the keys from the call's braces inwards
      local ok, schemas = pcall(require, "spapi.schemas." .. api)
      if not ok or type(schemas) ~= "table" then return nil end
      local defs = schemas.definitions or {}
      local cur
      for l = level + 1, #braces do
        local key = before:sub(braces[l - 1] + 1, braces[l] - 1):match("([%a_][%w_]*)%s*=%s*$")
        if l == level + 1 then
          local body
          for _, p in ipairs(o.params or {}) do if p["in"] == "body" then body = p end end
          if not body or (key ~= body.name and key ~= "body") then return nil end
          cur = schema_of((schemas.operations and schemas.operations[op] and schemas.operations[op].body)
            or { ref = body.schema }, defs)
        elseif key then
          cur = cur and cur.properties and schema_of(cur.properties[key], defs)
        else -- an item of a list
          cur = cur and cur.type == "array" and schema_of(cur.items, defs)
        end
        if not cur then return nil end
      end
      if not cur.properties then return nil end
      for k in pairs(cur.properties) do names[#names + 1] = k end
      return names
    end
  end
  return nil
end

--- Completions of the word line:sub(from, to) in env → list of replacements.
function _M.complete(env, line, from, to)
  local word = line:sub(from, to)
  local before = line:sub(1, from - 1)
  -- commands and their arguments
  if before:match("^%s*$") and word:sub(1, 1) == ":" then return starting(COMMANDS, word) end
  if before:match("^%s*:describe%s+$") then return starting(all_operations(), word) end
  if before:match("^%s*:ops%s+$") then
    local apis = {}
    for api in pairs(operations_index().apis) do apis[#apis + 1] = api end
    return starting(apis, word)
  end
  -- "api.op" in sp:call("...
  if before:match("[%w_%]%)]%s*[:.]%s*[%a_]+%s*%(%s*[\"']$") then return starting(all_operations(), word) end
  -- parameter names inside an operation's braces
  local names = params_context(before)
  if names then return starting(names, word) end
  -- a.b.c / a:b paths
  local base, sep, partial = word:match("^(.*[%w_%]])([.:])([%w_]*)$")
  if not base then
    local list = keys_of(env)
    for k in pairs(_G) do if type(k) == "string" then list[#list + 1] = k end end
    for _, k in ipairs(KEYWORDS) do list[#list + 1] = k end
    return starting(list, word)
  end
  if not base:match("^[%a_][%w_]*[%w_.]*$") then return {} end
  local parent, value = nil, env
  for name in base:gmatch("[^.]+") do
    if type(value) ~= "table" then return {} end
    local ok, v = pcall(function() return value[name] end)
    if not ok then return {} end
    parent, value = value, v
  end
  local list
  if is_client(value) then
    if sep == ":" then
      list = CLIENT_METHODS
    else
      list = {}
      for api in pairs(operations_index().apis) do list[#list + 1] = api end
    end
  elseif is_client(parent) and sep == "." and api_ops(base:match("([%w_]+)$")) then
    list = {}
    for id in pairs(api_ops(base:match("([%w_]+)$")).operations) do list[#list + 1] = id end
  elseif type(value) == "table" then
    list = keys_of(value)
  elseif type(value) == "string" and sep == ":" then
    list = keys_of(string)
  else
    return {}
  end
  return starting(list, partial, function(v) return base .. sep .. v end)
end

---------------------------------------------------------------------------
-- input
---------------------------------------------------------------------------
--- The history file: $XDG_STATE_HOME/spapi/history (~/.local/state/spapi/history).
function _M.history_path(getenv)
  getenv = getenv or os.getenv
  local state = getenv("XDG_STATE_HOME")
  if not state or state == "" then
    local home = getenv("HOME")
    if not home or home == "" then return nil end
    state = home .. "/.local/state"
  end
  return state .. "/spapi/history"
end

-- the history file's directory, and the file itself readable by its owner only
-- (a line typed may hold a credential)
local function mkdir_for(path)
  local q = function(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
  local dir = path:match("^(.*)/[^/]*$")
  if dir then
    os.execute("umask 077; mkdir -p " .. q(dir) .. " && touch " .. q(path) .. " && chmod 600 " .. q(path)
      .. " 2>/dev/null")
  end
end

-- a line reader → read(prompt) → line | nil at the end; close()
local function readline_input(repl)
  if os.getenv("SPAPI_NO_READLINE") == "1" then return nil end
  local ok, RL = pcall(require, "readline")
  if not ok or type(RL) ~= "table" or not RL.readline then return nil end
  local hist = _M.history_path()
  if hist then mkdir_for(hist) end
  pcall(RL.set_options, { histfile = hist or "", keeplines = 1000, completion = true, minlength = 1 })
  pcall(RL.set_readline_name, "spapi")
  RL.set_complete_function(function(text, from, to)
    RL.set_completion_append_character("")
    local ok2, list = pcall(_M.complete, repl.env, text, from, to)
    return ok2 and list or {}
  end)
  return {
    kind = "readline",
    read = function(prompt) return RL.readline(prompt) end,
    close = function() if hist then pcall(RL.save_history) end end,
  }
end

local function plain_input()
  local hist = _M.history_path()
  local f
  if hist then
    mkdir_for(hist)
    f = io.open(hist, "a")
  end
  return {
    kind = "plain",
    read = function(prompt)
      io.stdout:write(prompt)
      io.stdout:flush()
      local line = io.stdin:read("*l")
      if line and f and line:match("%S") then
        f:write(line, "\n")
        f:flush()
      end
      return line
    end,
    close = function() if f then f:close() end end,
  }
end

--- The interactive loop on a terminal → exit code.
function R:loop()
  local input = readline_input(self) or plain_input()
  self.input_kind = input.kind
  while true do
    local ok, res = pcall(function()
      local line = input.read(self.buffer and "   ...> " or "spapi> ")
      if line == nil then return "eof" end
      return self:feed(line)
    end)
    if not ok then
      -- Ctrl-C while reading: lua.c's handler raises "interrupted!" once readline
      -- returns the line (readline keeps reading until Enter); the line is dropped
      self.buffer = nil
      local msg = tostring(common.raised_message(res))
      if msg:find("interrupted!", 1, true) then msg = "(Ctrl-C: input dropped)" end
      self:write(msg, "\n")
    elseif res == "eof" then
      self:write("\n")
      break
    elseif res == "quit" then
      break
    end
  end
  input.close()
  return 0
end

_M.REPL = R
return _M
