-- Program state: JSON documents by (kind, id) in the lua_shared_dict
-- "spapi_state", so every nginx worker sees the same data.
-- Each kind keeps an insertion-ordered index for list().
local _M = {}

local util = require "spapi.sandbox.util"
local json = util.json
local ngx = ngx
local tostring, tonumber, type, pcall, error = tostring, tonumber, type, pcall, error
local fmt = string.format
local select, unpack = select, table.unpack or unpack
local function pack(...) return { n = select("#", ...), ... } end

local function dict()
  return ngx.shared.spapi_state
end

local function dkey(kind, id) return "d:" .. kind .. ":" .. tostring(id) end

-- The writes of one request, so that a request failing half-way (the store
-- full, a handler error) leaves nothing behind: begin() before the handler,
-- rollback() if it raised, finish() when it returned. Each document key's value
-- before the request's first write to it is kept (false: absent). Counters are
-- not taken back: another request may have counted since, and an id taken
-- twice would be worse than a gap.
local function journal_of() return ngx.ctx.spapi_journal end

local function remember(key)
  local j = journal_of()
  if not j or j.old[key] ~= nil then return end
  local old = dict():get(key)
  if old == nil then old = false end
  j.old[key] = old
  j.keys[#j.keys + 1] = key
end

function _M.begin() ngx.ctx.spapi_journal = { keys = {}, old = {} } end
function _M.finish() ngx.ctx.spapi_journal = nil end

--- Undo the writes since begin(), newest first; returns how many keys.
function _M.rollback()
  local j = journal_of()
  ngx.ctx.spapi_journal = nil
  if not j then return 0 end
  local d = dict()
  for i = #j.keys, 1, -1 do
    local key = j.keys[i]
    local old = j.old[key]
    if old == false then
      d:delete(key)
    elseif not d:safe_set(key, old) then
      d:set(key, old) -- (it was there a moment ago: evict something rather than lose it)
    end
  end
  return #j.keys
end

function _M.get(kind, id)
  local s = dict():get(dkey(kind, id))
  if not s then return nil end
  return json.decode(s)
end

local function store(key, s)
  remember(key)
  local ok, err = dict():safe_set(key, s)
  if not ok then error("sandbox state is full (" .. tostring(err) .. ")", 0) end
end

local function index(kind, id)
  local d = dict()
  if d:get("p:" .. kind .. ":" .. tostring(id)) then return end
  local n = d:incr("n:" .. kind, 1, 0)
  store("i:" .. kind .. ":" .. n, tostring(id))
  store("p:" .. kind .. ":" .. tostring(id), n)
end

function _M.put(kind, id, doc)
  local s = assert(json.encode(doc))
  local key = dkey(kind, id)
  store(key, s)
  index(kind, id)
  return doc
end

--- Create only if absent: true, or nil, "exists" (atomic across workers).
function _M.add(kind, id, doc)
  local s = assert(json.encode(doc))
  remember(dkey(kind, id))
  local ok, err = dict():safe_add(dkey(kind, id), s)
  if not ok then
    if err == "exists" then return nil, "exists" end
    error("sandbox state is full (" .. tostring(err) .. ")", 0)
  end
  index(kind, id)
  return true
end

function _M.delete(kind, id)
  local d = dict()
  remember(dkey(kind, id))
  d:delete(dkey(kind, id))
  local n = d:get("p:" .. kind .. ":" .. tostring(id))
  if n then
    remember("p:" .. kind .. ":" .. tostring(id))
    remember("i:" .. kind .. ":" .. n)
    d:delete("p:" .. kind .. ":" .. tostring(id))
    d:delete("i:" .. kind .. ":" .. n)
  end
end

--- Every document of a kind, in insertion order.
function _M.list(kind)
  local d = dict()
  local n = d:get("n:" .. kind) or 0
  local out, seen = {}, {}
  for i = 1, n do
    local id = d:get("i:" .. kind .. ":" .. i)
    if id and not seen[id] then
      seen[id] = true
      local s = d:get(dkey(kind, id))
      if s then
        local doc = json.decode(s)
        if doc then out[#out + 1] = doc end
      end
    end
  end
  return out
end

--- Ids of a kind in insertion order (cheaper than list()).
function _M.ids(kind)
  local d = dict()
  local n = d:get("n:" .. kind) or 0
  local out, seen = {}, {}
  for i = 1, n do
    local id = d:get("i:" .. kind .. ":" .. i)
    if id and not seen[id] and d:get(dkey(kind, id)) then
      seen[id] = true
      out[#out + 1] = id
    end
  end
  return out
end

function _M.incr(key, by)
  return (dict():incr("c:" .. key, by or 1, 0))
end

function _M.next_id(prefix)
  prefix = prefix or ""
  return prefix .. fmt("%d", _M.incr("id:" .. prefix, 1))
end

--- Run fn() holding a cross-worker lock named key; returns fn's results.
function _M.with_lock(key, fn, ...)
  local d = ngx.shared.spapi_meta
  local lk = "lock:" .. key
  local tries = 0
  while not d:add(lk, true, 5) do
    tries = tries + 1
    if tries > 5000 then error("sandbox lock timeout: " .. key, 0) end
    ngx.sleep(tries < 100 and 0 or 0.001)
  end
  local res = pack(pcall(fn, ...))
  d:delete(lk)
  if not res[1] then error(res[2], 0) end
  return unpack(res, 2, res.n)
end

--- Read-modify-write a document under a lock: fn(doc) returns the new doc (or nil to leave it).
function _M.update(kind, id, fn)
  return _M.with_lock("doc:" .. kind .. ":" .. tostring(id), function()
    local doc = _M.get(kind, id)
    local new = fn(doc)
    if new ~= nil then _M.put(kind, id, new) end
    return new or doc
  end)
end

function _M.flush()
  dict():flush_all()
  dict():flush_expired()
end

_M.tonumber = tonumber
_M.type = type
return _M
