-- A tiny, safe XML reader for the sandbox (POST_ORDER_FULFILLMENT_DATA feeds and
-- the like). It reads the subset feeds use: an optional XML declaration,
-- elements with attributes, text, CDATA, comments and processing instructions.
-- It never expands anything but the five predefined entities and numeric
-- character references, and it refuses DOCTYPE declarations outright, so no
-- external entity or "billion laughs" input can do harm. Input size and
-- nesting depth are bounded.
--
--   local xml = require "spapi.sandbox.xml"
--   local root, err = xml.parse(s)       -- root node or nil, "line N: message"
--   node = { name = "ns:Tag", local_name = "Tag", attrs = { k = v }, children = { node... }, text = "..." }
--   xml.child(node, "Tag")               -- first child element with that (local) name
--   xml.children(node, "Tag")            -- array of such children
--   xml.text(node, "Tag")                -- trimmed text of that child, or nil
--   xml.escape(s)                        -- for writing XML
local _M = {}

local char, find, sub, gsub, match = string.char, string.find, string.sub, string.gsub, string.match
local concat, tonumber, type = table.concat, tonumber, type
local floor = math.floor

_M.MAX_SIZE = 16 * 1024 * 1024
_M.MAX_DEPTH = 100

-- UTF-8 encoding of a code point (no utf8 library on LuaJIT)
local function utf8_char(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then
    return char(0xC0 + floor(cp / 0x40), 0x80 + cp % 0x40)
  end
  if cp < 0x10000 then
    return char(0xE0 + floor(cp / 0x1000), 0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end
  return char(0xF0 + floor(cp / 0x40000), 0x80 + floor(cp / 0x1000) % 0x40,
    0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

local ENTITIES = { lt = "<", gt = ">", amp = "&", quot = '"', apos = "'" }

-- decode entity references in s; returns decoded string or nil, err
local function unescape(s)
  if not find(s, "&", 1, true) then return s end
  local bad
  local out = gsub(s, "&([^;&<]*);?", function(name)
    if bad then return "" end
    local cp
    if sub(name, 1, 2) == "#x" or sub(name, 1, 2) == "#X" then
      cp = tonumber(sub(name, 3), 16)
    elseif sub(name, 1, 1) == "#" then
      cp = match(name, "^#(%d+)$") and tonumber(sub(name, 2))
    else
      local e = ENTITIES[name]
      if e then return e end
      bad = "unknown entity '&" .. name .. ";'"
      return ""
    end
    if not cp or cp == 0 or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then
      bad = "invalid character reference '&" .. name .. ";'"
      return ""
    end
    return utf8_char(cp)
  end)
  -- every '&' must have been part of a terminated reference
  if not bad then
    local i = 1
    while true do
      local a = find(s, "&", i, true)
      if not a then break end
      local semi = find(s, ";", a, true)
      local lt = find(s, "[&<]", a + 1)
      if not semi or (lt and lt < semi) then bad = "unterminated entity reference" break end
      i = semi + 1
    end
  end
  if bad then return nil, bad end
  return out
end

local function line_of(s, pos)
  local _, n = gsub(sub(s, 1, pos), "\n", "")
  return n + 1
end

-- bytes >= 0x80 are allowed in names (UTF-8 names)
local NAME_U = "^[%a_:\128-\255][%w_:%.%-\128-\255]*"

local function local_name(name)
  return match(name, ":([^:]*)$") or name
end

--- Parse an XML document. Returns the root element or nil, "line N: message".
function _M.parse(s)
  if type(s) ~= "string" then return nil, "line 0: input is not a string" end
  if #s > _M.MAX_SIZE then return nil, "line 0: document too large" end
  local pos = 1
  -- BOM
  if sub(s, 1, 3) == "\239\187\191" then pos = 4 end
  local root
  local stack = {}
  local function fail(msg, at)
    return nil, "line " .. line_of(s, at or pos) .. ": " .. msg
  end
  local len = #s
  while pos <= len do
    local lt = find(s, "<", pos, true)
    local text = sub(s, pos, (lt or len + 1) - 1)
    if #stack == 0 then
      if match(text, "%S") then return fail(root and "content after the root element" or "content before the root element") end
    else
      local t, err = unescape(text)
      if not t then return fail(err) end
      local top = stack[#stack]
      top._text[#top._text + 1] = t
    end
    if not lt then break end
    pos = lt
    if sub(s, pos, pos + 3) == "<!--" then
      local e = find(s, "-->", pos + 4, true)
      if not e then return fail("unterminated comment") end
      pos = e + 3
    elseif sub(s, pos, pos + 8) == "<![CDATA[" then
      if #stack == 0 then return fail("CDATA outside the root element") end
      local e = find(s, "]]>", pos + 9, true)
      if not e then return fail("unterminated CDATA section") end
      local top = stack[#stack]
      top._text[#top._text + 1] = sub(s, pos + 9, e - 1)
      pos = e + 3
    elseif sub(s, pos, pos + 1) == "<?" then
      local e = find(s, "?>", pos + 2, true)
      if not e then return fail("unterminated processing instruction") end
      pos = e + 2
    elseif sub(s, pos, pos + 1) == "<!" then
      return fail("DOCTYPE and other declarations are not accepted")
    elseif sub(s, pos, pos + 1) == "</" then
      local name = match(s, NAME_U, pos + 2)
      if not name then return fail("bad closing tag") end
      local after = pos + 2 + #name
      local e = find(s, "^%s*>", after)
      if not e then return fail("bad closing tag </" .. name .. ">") end
      local top = stack[#stack]
      if not top then return fail("unexpected closing tag </" .. name .. ">") end
      if top.name ~= name then
        return fail("mismatched closing tag </" .. name .. "> for <" .. top.name .. ">")
      end
      top.text = concat(top._text)
      top._text = nil
      stack[#stack] = nil
      pos = select(2, find(s, "^%s*>", after)) + 1
    else
      local name = match(s, NAME_U, pos + 1)
      if not name then return fail("bad start tag") end
      if #stack == 0 and root then return fail("more than one root element") end
      if #stack >= _M.MAX_DEPTH then return fail("elements nested too deeply") end
      local node = { name = name, local_name = local_name(name), attrs = {}, children = {}, _text = {} }
      local p = pos + 1 + #name
      local closed
      while true do
        local _, we = find(s, "^%s*", p)
        local spaced = we >= p
        p = we + 1
        local c = sub(s, p, p)
        if c == ">" then p = p + 1 break end
        if sub(s, p, p + 1) == "/>" then p = p + 2 closed = true break end
        if c == "" then return fail("unterminated start tag <" .. name .. ">") end
        local aname = match(s, NAME_U, p)
        if not aname or not spaced then return fail("bad attribute in <" .. name .. ">", p) end
        p = p + #aname
        local q1, q2, quote = find(s, "^%s*=%s*([\"'])", p)
        if not q1 then return fail("attribute " .. aname .. " has no quoted value", p) end
        local ve = find(s, quote, q2 + 1, true)
        if not ve then return fail("unterminated attribute value", p) end
        local raw = sub(s, q2 + 1, ve - 1)
        if find(raw, "<", 1, true) then return fail("'<' in attribute value", p) end
        local v, err = unescape(raw)
        if not v then return fail(err, p) end
        if node.attrs[aname] ~= nil then return fail("duplicate attribute " .. aname, p) end
        node.attrs[aname] = v
        p = ve + 1
      end
      local parent = stack[#stack]
      if parent then parent.children[#parent.children + 1] = node else root = node end
      if closed then
        node.text = ""
        node._text = nil
      else
        stack[#stack + 1] = node
      end
      pos = p
    end
  end
  if #stack > 0 then return fail("unclosed element <" .. stack[#stack].name .. ">", len) end
  if not root then return fail("no root element", len) end
  return root
end

-- the name comparisons accept either the qualified name or the local name
local function named(node, name)
  return node.name == name or node.local_name == name
end

function _M.child(node, name)
  if not node then return nil end
  for _, c in ipairs(node.children) do
    if named(c, name) then return c end
  end
  return nil
end

function _M.children(node, name)
  local out = {}
  if not node then return out end
  for _, c in ipairs(node.children) do
    if name == nil or named(c, name) then out[#out + 1] = c end
  end
  return out
end

local function trim(s)
  return (gsub(gsub(s, "^%s+", ""), "%s+$", ""))
end
_M.trim = trim

--- Trimmed text of the first child called name (or of node itself when name is nil).
function _M.text(node, name)
  if name ~= nil then node = _M.child(node, name) end
  if not node then return nil end
  return trim(node.text or "")
end

local ESC = { ["<"] = "&lt;", [">"] = "&gt;", ["&"] = "&amp;", ['"'] = "&quot;", ["'"] = "&apos;" }
function _M.escape(s)
  return (gsub(tostring(s), "[<>&\"']", ESC))
end

_M._unescape = unescape

return _M
