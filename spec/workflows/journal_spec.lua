-- spapi.journal: the exactly-once record of submissions, in a real file.
local H = require "helpers"
local journal = require "spapi.journal"
local fs = require "spapi.fs"
local json = require "spapi.json"

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function spit(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

describe("spapi.journal", function()
  local dir, path
  before_each(function()
    dir = H.tmpdir("journal")
    path = dir .. "/vdf.journal"
  end)

  it("starts empty when the file does not exist, and writes nothing until told", function()
    local j = assert(journal.open(path))
    assert.is_nil(j:get("PO1", "ack"))
    assert.same({}, j:list())
    assert.is_nil(slurp(path))
  end)

  it("keeps intent, transaction, outcome and data across re-opens", function()
    local j = assert(journal.open(path))
    assert(j:intent({ "PO1", "PO2" }, "invoice", function(po) return { invoiceNumber = "INV-" .. po } end))
    local e = journal.open(path):get("PO2", "invoice")
    assert.equal("intent", e.state)
    assert.equal(1, e.attempts)
    assert.equal("INV-PO2", e.data.invoiceNumber)
    assert.is_number(e.intent_at)

    assert(j:sent("PO1", "invoice", "20260101-TXN1"))
    assert(j:done("PO1", "invoice", { status = "Success" }))
    assert(j:failed("PO2", "invoice", { { code = "InvalidInput", message = "bad" } }))

    local k = assert(journal.open(path))
    local e1, e2 = k:get("PO1", "invoice"), k:get("PO2", "invoice")
    assert.equal("done", e1.state)
    assert.equal("20260101-TXN1", e1.txn)
    assert.equal("INV-PO1", e1.data.invoiceNumber)
    assert.same({ status = "Success" }, e1.result)
    assert.equal("failed", e2.state)
    assert.equal("InvalidInput", e2.errors[1].code)
    assert.same({ "PO1", "PO2" }, k:orders())
  end)

  it("lists what is unsettled: answers lost (intent) and transactions not yet known (sent)", function()
    local j = assert(journal.open(path))
    assert(j:intent({ "A", "B", "C" }, "ack"))
    assert(j:sent("B", "ack", "T-B"))
    assert(j:done("C", "ack"))
    local k = assert(journal.open(path))
    local u = k:unsettled("ack")
    assert.equal(2, #u)
    assert.equal("A", u[1].order)
    assert.equal("intent", u[1].state)
    assert.is_nil(u[1].txn)
    assert.equal("B", u[2].order)
    assert.equal("T-B", u[2].txn)
    assert.same({}, k:unsettled("invoice"))
  end)

  it("counts attempts, and a new intent after a refusal clears the old transaction and errors", function()
    local j = assert(journal.open(path))
    assert(j:intent("PO1", "confirm"))
    assert(j:sent("PO1", "confirm", "T1"))
    assert(j:failed("PO1", "confirm", { { code = "InvalidInput", message = "not acknowledged" } }))
    assert(j:intent("PO1", "confirm"))
    local e = assert(journal.open(path)):get("PO1", "confirm")
    assert.equal(2, e.attempts)
    assert.equal("intent", e.state)
    assert.is_nil(e.txn)
    assert.is_nil(e.errors)
  end)

  it("writes atomically: the file is whole JSON, no temp file is left, a stale temp is ignored", function()
    local j = assert(journal.open(path))
    assert(j:record{ { order = "PO1", step = "ack", state = "intent" }, { order = "PO2", step = "ack", state = "intent" } })
    assert.is_nil(slurp(path .. ".tmp"))
    local doc = json.decode(slurp(path))
    assert.equal("spapi-journal", doc.format)
    assert.equal(2, #doc.entries)
    -- a crash in the middle of the next write leaves a partial temp file: the journal is the old one
    spit(path .. ".tmp", '{"format":"spapi-jour')
    local k = assert(journal.open(path))
    assert.equal(2, #k:list())
    assert(k:done("PO1", "ack"))
    assert.is_nil(slurp(path .. ".tmp"))
  end)

  it("refuses a corrupt journal instead of starting afresh (which could submit twice)", function()
    spit(path, '{"format":"spapi-journal","version":1,"entries":[{"order":')
    local j, err = journal.open(path)
    assert.is_nil(j)
    assert.equal("JournalCorrupt", err.code)
    assert.matches("move it away", tostring(err))
    spit(path, '{"something":"else"}')
    j, err = journal.open(path)
    assert.is_nil(j)
    assert.equal("JournalCorrupt", err.code)
    assert.equal('{"something":"else"}', slurp(path))
  end)

  it("reports a failed write and leaves the journal in memory as it was", function()
    local j = assert(journal.open(dir .. "/no/such/dir/j.journal"))
    local ok, err = j:intent("PO1", "ack")
    assert.is_nil(ok)
    assert.equal("JournalWriteFailed", err.code)
    assert.is_nil(j:get("PO1", "ack"))
  end)

  it("raises on bad arguments, naming them", function()
    assert.error_matches(function() journal.open(nil) end, "'path' must be a non%-empty string")
    local j = assert(journal.open(path))
    assert.error_matches(function() j:intent(nil, "ack") end, "intent: 'order' must be")
    assert.error_matches(function() j:intent("PO1", 7) end, "intent: 'step' must be")
    assert.error_matches(function() j:record{ { order = "A", step = "ack", state = "maybe" } } end,
      "'state' must be intent, sent, done or failed")
  end)

  it("lets one process at a time hold it, and takes over the lock of a process that is gone", function()
    local j = assert(journal.open(path, { lock = true }))
    -- another process (a shell) tries while this one holds it
    local lua = (_VERSION == "Lua 5.1") and "luajit" or "lua5.4"
    local cpath = H.root .. "/build/" .. ((_VERSION == "Lua 5.1") and "5.1" or "5.4") .. "/?.so"
    local probe = string.format("%s -e \"package.path='%s/lua/?.lua;'..package.path; package.cpath='%s;'..package.cpath; "
      .. "local j, err = require('spapi.journal').open('%s', { lock = true }); "
      .. "io.write(j and 'locked' or tostring(err.code) .. ' ' .. err.message)\"", lua, H.root, cpath, path)
    local rc, out = H.run(probe)
    assert.equal(0, rc, out)
    assert.matches("^JournalLocked journal .* is in use by process " .. require("spapi.fs").pid(), out)
    assert(j:unlock())
    rc, out = H.run(probe)
    assert.equal("locked", out)
    -- that process has exited without unlocking (as if killed): its lock is taken over
    assert.matches("^%d+", slurp(path .. ".lock/pid"))
    local k = assert(journal.open(path, { lock = true }))
    assert.equal(tostring(require("spapi.fs").pid()), slurp(path .. ".lock/pid"):match("%d+"))
    assert(k:unlock())
    assert.is_nil(slurp(path .. ".lock/pid"))
  end)

  it("fsyncs files and directories, and says when it cannot", function()
    spit(dir .. "/f", "x")
    assert.is_true(fs.fsync(dir .. "/f"))
    assert.is_true(fs.fsync(dir))
    local ok, msg = fs.fsync(dir .. "/missing")
    assert.is_nil(ok)
    assert.matches("missing", msg)
  end)
end)
