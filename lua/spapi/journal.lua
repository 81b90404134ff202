-- spapi.journal — what a workflow submitted, per (order, step), in one small file,
-- so that a re-run after a crash submits nothing twice.
--
--   local journal = require "spapi.journal"
--   local j = assert(journal.open("vdf.journal"))   -- a missing file is an empty journal
--   local e = j:get("2JK3S9VC", "invoice")           -- nil: never attempted
--   assert(j:intent("2JK3S9VC", "invoice", { invoiceNumber = "INV-2JK3S9VC" }))  -- BEFORE sending
--   local body, err = sp.vendor_df_payments.submitInvoice{ ... }
--   if body then assert(j:sent("2JK3S9VC", "invoice", body.payload.transactionId)) end
--   ... later: assert(j:done("2JK3S9VC", "invoice", { ... })) or j:failed(order, step, amazon_errors)
--
-- An entry is { order, step, state, attempts, intent_at, at, txn, data, result, errors, note }:
--   state "intent"  recorded before the request went out, no answer yet. Found on
--                   load, it means the answer was lost (or the process died while
--                   sending): the submission may or may not have reached Amazon. The
--                   caller reconciles it — its transaction, the order's state — before
--                   anything is sent again (j:unsettled() lists these).
--   state "sent"    the answer came back (txn = the transaction id of an asynchronous
--                   operation); the outcome is not known yet: ask the transaction.
--   state "done"    it took effect (Amazon said so, or the order's state showed it).
--   state "failed"  Amazon refused it (errors = Amazon's errors): nothing was applied,
--                   so sending it again is safe.
--   attempts        how many intents were recorded; intent_at (wall-clock seconds) the
--                   latest; data the caller's record of what was sent (an invoice
--                   number, acknowledged quantities, ...); result what came back.
--
-- A re-run derives what remains from the journal plus the API's state: "done" steps
-- are skipped, "sent" ones are settled through their transaction, "intent" ones are
-- reconciled, missing and "failed" ones may be sent.
--
-- Every change is one atomic write (spapi.fs.write_atomic: temp file, fsync, rename,
-- fsync of the directory); j:record{...} changes many entries in one write. The file
-- is JSON, readable by people. One process at a time per journal file.
--
-- Runtime failures (unreadable or corrupt file, failed write) return nil, err with
-- err an spapi error (kind "journal"); a corrupt file is never silently replaced.
local _M = {}

local errors = require "spapi.errors"
local json = require "spapi.json"
local fs = require "spapi.fs"
local clock = require "spapi.clock"

local type, pairs, ipairs, tostring, setmetatable, error = type, pairs, ipairs, tostring, setmetatable, error
local sort, fmt = table.sort, string.format

local STATES = { intent = true, sent = true, done = true, failed = true }
_M.STATES = STATES
local FORMAT, VERSION = "spapi-journal", 1

local Journal = {}
Journal.__index = Journal
Journal.__name = "spapi.Journal"
function Journal.__tostring(j) return "spapi.Journal(" .. j.path .. ")" end

local function fail(code, msg)
  return nil, errors.new{ kind = "journal", code = code, message = msg }
end

local function key(order, step) return tostring(order) .. "\0" .. tostring(step) end

local function check_name(fn, what, v, level)
  if type(v) ~= "string" or v == "" then
    error(fmt("spapi.journal: %s: '%s' must be a non-empty string (got %s)", fn, what, type(v)), level + 1)
  end
end

--- journal.open(path) → journal | nil, err
function _M.open(path)
  if type(path) ~= "string" or path == "" then
    error("spapi.journal.open: 'path' must be a non-empty string (got " .. type(path) .. ")", 2)
  end
  local j = setmetatable({ path = path, entries = {} }, Journal)
  local data, err, missing = fs.read(path)
  if not data then
    if missing then return j end
    return fail("JournalUnreadable", "cannot read journal " .. path .. ": " .. tostring(err))
  end
  local doc, derr = json.decode(data)
  if type(doc) ~= "table" or doc.format ~= FORMAT or type(doc.entries) ~= "table" then
    return fail("JournalCorrupt", "journal " .. path .. " is not an spapi journal"
      .. (derr and (": " .. tostring(derr)) or "") .. " (move it away to start afresh)")
  end
  if doc.version ~= VERSION then
    return fail("JournalCorrupt", fmt("journal %s has version %s; this spapi reads version %d",
      path, tostring(doc.version), VERSION))
  end
  for i, e in ipairs(doc.entries) do
    if type(e) ~= "table" or type(e.order) ~= "string" or type(e.step) ~= "string" or not STATES[e.state] then
      return fail("JournalCorrupt", fmt("journal %s: entry %d is malformed", path, i))
    end
    for k, v in pairs(e) do if v == json.null then e[k] = nil end end
    j.entries[key(e.order, e.step)] = e
  end
  return j
end

--- j:get(order, step) → the entry (read-only; change it through the methods) or nil
function Journal:get(order, step)
  return self.entries[key(order, step)]
end

--- j:state(order, step) → "intent" | "sent" | "done" | "failed" | nil
function Journal:state(order, step)
  local e = self.entries[key(order, step)]
  return e and e.state
end

--- j:list([filter]) → entries sorted by order then step; filter = { order=, step=, state= }
function Journal:list(filter)
  filter = filter or {}
  local out = {}
  for _, e in pairs(self.entries) do
    if (filter.order == nil or e.order == filter.order) and (filter.step == nil or e.step == filter.step)
      and (filter.state == nil or e.state == filter.state) then
      out[#out + 1] = e
    end
  end
  sort(out, function(a, b)
    if a.order ~= b.order then return a.order < b.order end
    return a.step < b.step
  end)
  return out
end

--- j:unsettled([step]) → entries whose outcome is not known: "intent" (answer lost:
--- reconcile before re-sending) and "sent" (ask the transaction)
function Journal:unsettled(step)
  local out = {}
  for _, e in ipairs(self:list{ step = step }) do
    if e.state == "intent" or e.state == "sent" then out[#out + 1] = e end
  end
  return out
end

--- j:orders() → the orders with any entry, sorted
function Journal:orders()
  local seen, out = {}, {}
  for _, e in pairs(self.entries) do
    if not seen[e.order] then seen[e.order] = true; out[#out + 1] = e.order end
  end
  sort(out)
  return out
end

local function encode(self)
  local list = self:list()
  return json.encode({ format = FORMAT, version = VERSION, entries = json.array(list) })
end

function Journal:_write()
  local s, err = encode(self)
  if not s then return fail("JournalWriteFailed", "cannot encode journal " .. self.path .. ": " .. tostring(err)) end
  local ok, werr = fs.write_atomic(self.path, s .. "\n")
  if not ok then return fail("JournalWriteFailed", "cannot write journal " .. self.path .. ": " .. tostring(werr)) end
  return true
end

--- j:record(changes) → true | nil, err: apply every change, then one atomic write.
--- A change is { order=, step=, state=, txn=, data=, result=, errors=, note= }; fields
--- left nil keep their value, except that a new "intent" clears txn, result and errors
--- and counts an attempt. If the write fails the journal in memory is left unchanged.
function Journal:record(changes)
  if type(changes) ~= "table" then error("spapi.journal: record: 'changes' must be a list of changes", 2) end
  local now = clock.now()
  local old = {}
  for i, c in ipairs(changes) do
    if type(c) ~= "table" then error(fmt("spapi.journal: record: change %d must be a table", i), 2) end
    check_name("record", "order", c.order, 2)
    check_name("record", "step", c.step, 2)
    if not STATES[c.state] then
      error(fmt("spapi.journal: record: change %d: 'state' must be intent, sent, done or failed (got %s)",
        i, tostring(c.state)), 2)
    end
    local k = key(c.order, c.step)
    if old[k] == nil then old[k] = self.entries[k] or false end
    local prev = self.entries[k]
    local e = {}
    if prev then for f, v in pairs(prev) do e[f] = v end end
    e.order, e.step, e.state, e.at = c.order, c.step, c.state, now
    if c.state == "intent" then
      e.attempts = (e.attempts or 0) + 1
      e.intent_at = now
      e.txn, e.result, e.errors = nil, nil, nil
    end
    for _, f in ipairs({ "txn", "data", "result", "errors", "note" }) do
      if c[f] ~= nil then e[f] = c[f] end
    end
    self.entries[k] = e
  end
  local ok, err = self:_write()
  if not ok then
    for k, e in pairs(old) do self.entries[k] = e or nil end
    return nil, err
  end
  return true
end

-- orders: one order id or a list of them (one write for all)
local function each_order(self, fn, orders, step, fields, level)
  check_name(fn, "step", step, level + 1)
  if type(orders) ~= "table" then
    check_name(fn, "order", orders, level + 1)
    orders = { orders }
  end
  local changes = {}
  for i, order in ipairs(orders) do
    check_name(fn, "order", order, level + 1)
    local c = { order = order, step = step, state = fn }
    for k, v in pairs(fields) do
      if type(v) == "function" then c[k] = v(order) else c[k] = v end
    end
    changes[i] = c
  end
  return self:record(changes)
end

--- j:intent(orders, step[, data]) — record BEFORE sending. orders: an id or a list
--- (one write for all); data: what is being sent (kept with the entry), or a
--- function(order) → that order's data.
function Journal:intent(orders, step, data)
  return each_order(self, "intent", orders, step, { data = data }, 2)
end

--- j:sent(orders, step[, txn]) — the answer came: its transaction id (if any)
function Journal:sent(order, step, txn)
  return each_order(self, "sent", order, step, { txn = txn }, 2)
end

--- j:done(order, step[, result[, note]]) — it took effect
function Journal:done(order, step, result, note)
  return each_order(self, "done", order, step, { result = result, note = note }, 2)
end

--- j:failed(order, step, errs[, note]) — Amazon refused it (errs: Amazon's error list)
function Journal:failed(order, step, errs, note)
  return each_order(self, "failed", order, step, { errors = errs, note = note }, 2)
end

_M.Journal = Journal
return _M
