-- Readable output: JSON text re-indented (the CLI on a terminal), and Lua values
-- shown as indented data (the REPL) with long lists cut and a count of the rest,
-- secrets masked (spapi.redact), objects with a __tostring shown by it.
local _M = {}

local redact = require "spapi.redact"

local type, tostring, pairs, ipairs, next, getmetatable, rawget = type, tostring, pairs, ipairs, next, getmetatable,
  rawget
local fmt, rep, concat, sort = string.format, string.rep, table.concat, table.sort

--- Indent compact JSON text (strings are copied untouched).
function _M.json_indent(s, step)
  step = step or "  "
  local out, depth, i, n = {}, 0, 1, #s
  local function nl() out[#out + 1] = "\n" .. rep(step, depth) end
  while i <= n do
    local c = s:sub(i, i)
    if c == '"' then
      local j = i + 1
      while j <= n do
        local d = s:sub(j, j)
        if d == "\\" then j = j + 2
        elseif d == '"' then break
        else j = j + 1 end
      end
      out[#out + 1] = s:sub(i, j)
      i = j + 1
    elseif c == "{" or c == "[" then
      local close = c == "{" and "}" or "]"
      if s:sub(i + 1, i + 1) == close then
        out[#out + 1] = c .. close
        i = i + 2
      else
        out[#out + 1] = c
        depth = depth + 1
        nl()
        i = i + 1
      end
    elseif c == "}" or c == "]" then
      depth = depth - 1
      nl()
      out[#out + 1] = c
      i = i + 1
    elseif c == "," then
      out[#out + 1] = ","
      nl()
      i = i + 1
    elseif c == ":" then
      out[#out + 1] = ": "
      i = i + 1
    else
      local j = s:find('[",:{}%[%]]', i) or n + 1
      out[#out + 1] = s:sub(i, j - 1)
      i = j
    end
  end
  return concat(out)
end

local function is_ident(k)
  return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil
end

local function quote(s)
  return (fmt("%q", s):gsub("\\\n", "\\n"))
end

-- strings that are secrets whatever their key: LWA tokens (Atza|, Atzr|, RDTs)
-- and client secrets (amzn1.oa2-cs.), plus the values in opts.secrets
local function secret(v, key, secrets)
  if key ~= nil and redact.SECRET_FIELDS[key] then return true end
  if v:match("^Atz[a-z.]*|") or v:match("^amzn1%.oa2%-cs%.") then return true end
  return secrets ~= nil and secrets[v] == true
end

local function scalar(v, key, secrets)
  local tv = type(v)
  if tv == "string" then
    if secret(v, key, secrets) then return quote(redact.mask(v)) end
    return quote(v)
  end
  if tv == "number" then
    if math.type and math.type(v) == "integer" then return tostring(v) end
    if v == math.floor(v) and v > -1e15 and v < 1e15 then return fmt("%.0f", v) end
    return fmt("%.14g", v)
  end
  return tostring(v)
end

-- a list (1..n, nothing else)?
local function list_length(t)
  local n = #t
  local count = 0
  for _ in pairs(t) do
    count = count + 1
    if count > n then return nil end
  end
  if count ~= n then return nil end
  return n
end

local function key_text(k)
  if is_ident(k) then return k end
  return "[" .. scalar(k) .. "]"
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  return keys
end

-- the text of v (a table shown on one line when short), or nil when too long
local function inline(v, width, opts, seen, key)
  if type(v) ~= "table" then return scalar(v, key, opts.secrets) end
  local mt = getmetatable(v)
  if mt and rawget(mt, "__tostring") then return tostring(v) end
  if seen[v] then return "<cycle>" end
  if next(v) == nil then return "{}" end
  local n = list_length(v)
  if n and n > opts.max_items then return nil end
  seen[v] = true
  local parts, len = {}, 2
  if n then
    for i = 1, n do
      local s = inline(v[i], width - len, opts, seen)
      if not s then seen[v] = nil return nil end
      parts[i] = s
      len = len + #s + 2
      if len > width then seen[v] = nil return nil end
    end
  else
    for _, k in ipairs(sorted_keys(v)) do
      local s = inline(v[k], width - len, opts, seen, k)
      if not s then seen[v] = nil return nil end
      s = key_text(k) .. " = " .. s
      parts[#parts + 1] = s
      len = len + #s + 2
      if len > width then seen[v] = nil return nil end
    end
  end
  seen[v] = nil
  return "{ " .. concat(parts, ", ") .. " }"
end

local function block(v, indent, opts, seen, out, prefix, key, last)
  local sep = last and "" or ","
  local one = inline(v, opts.width - #indent - #prefix, opts, seen, key)
  if one then
    out[#out + 1] = indent .. prefix .. one .. sep
    return
  end
  seen[v] = true
  local inner = indent .. opts.step
  local n = list_length(v)
  out[#out + 1] = indent .. prefix .. "{" .. (n and fmt("  -- %d item%s", n, n == 1 and "" or "s") or "")
  if n then
    local shown = n > opts.max_items and opts.max_items or n
    for i = 1, shown do block(v[i], inner, opts, seen, out, "", nil, i == n) end
    if shown < n then
      out[#out + 1] = inner .. fmt("-- ... %d more (%d items in all)", n - shown, n)
    end
  else
    local keys = sorted_keys(v)
    for i, k in ipairs(keys) do block(v[k], inner, opts, seen, out, key_text(k) .. " = ", k, i == #keys) end
  end
  out[#out + 1] = indent .. "}" .. sep
  seen[v] = nil
end

--- Lua value → readable text: indented, lists longer than opts.max_items (10)
--- cut with a count, secrets masked (tokens, client secrets, the values of the
--- set opts.secrets), objects shown by their __tostring.
function _M.show(v, opts)
  opts = opts or {}
  local o = { max_items = opts.max_items or 10, width = opts.width or 100, step = opts.step or "  ",
    secrets = opts.secrets }
  local out = {}
  block(v, "", o, {}, out, "", nil, true)
  return concat(out, "\n")
end

--- An spapi.Error → the lines a person reads: status and code first, then each field.
function _M.error(err)
  local head = "error"
  if err.status then head = head .. " " .. tostring(err.status) end
  if err.code and err.code ~= "" then head = head .. " " .. tostring(err.code) end
  if err.operation then head = head .. " (" .. tostring(err.operation) .. ")" end
  local lines = { head }
  local function field(name, v)
    if v ~= nil and v ~= "" then lines[#lines + 1] = fmt("  %-11s %s", name .. ":", tostring(v)) end
  end
  field("message", err.message)
  field("details", err.details)
  if type(err.errors) == "table" and #err.errors > 1 then
    for i = 2, #err.errors do
      local e = err.errors[i]
      if type(e) == "table" then field("also", tostring(e.code) .. ": " .. tostring(e.message)) end
    end
  end
  field("kind", err.kind)
  field("request id", err.request_id)
  if err.attempts and err.attempts > 1 then field("attempts", err.attempts) end
  if err.retryable then field("retryable", "yes") end
  return concat(lines, "\n")
end

return _M
