-- spapi.progress: a callback hears every update; a terminal sees one redrawn line
-- on stderr; anything else sees nothing.
local H = require "helpers"
local progress = require "spapi.progress"

local function capture()
  local s = { parts = {} }
  function s:write(...) for _, p in ipairs({ ... }) do self.parts[#self.parts + 1] = p end end
  function s:flush() end
  function s:text() return table.concat(self.parts) end
  return s
end

describe("spapi.progress", function()
  it("tells the callback every update and the finish, with elapsed time from the given clock", function()
    local t, events = 100, {}
    local p = progress.new{ label = "invoices", total = 3, clock = function() return t end, tty = false,
      callback = function(ev) events[#events + 1] = ev end }
    t = 101.5
    p:update(1, "2 Processing")
    t = 103
    p:update(3)
    p:finish("3 Success")
    p:finish("again") -- once only
    assert.equal(3, #events)
    assert.same({ label = "invoices", done = 1, total = 3, elapsed = 1.5, note = "2 Processing", finished = false },
      events[1])
    assert.is_nil(events[2].note)
    assert.same({ label = "invoices", done = 3, total = 3, elapsed = 3, note = "3 Success", finished = true }, events[3])
  end)

  it("on a terminal redraws one line (at most every interval) and ends it with a newline", function()
    local t, out = 0, capture()
    local p = progress.new{ label = "acknowledgements", total = 10, clock = function() return t end,
      tty = true, stream = out, interval = 1 }
    p:update(1, "Processing")
    t = 0.5
    p:update(2, "Processing") -- within the interval: not drawn
    t = 2
    p:update(5)
    t = 2.1
    p:finish("done")
    assert.equal("\racknowledgements 1/10 0.0s Processing\racknowledgements 5/10 2.0s"
      .. (" "):rep(11) -- (blanks over the rest of the longer line before)
      .. "\racknowledgements 5/10 2.1s done\n", out:text())
  end)

  it("prints nothing when told it is not a terminal, and counts without a total", function()
    local out, seen = capture(), nil
    local p = progress.new{ label = "pages", tty = false, stream = out, callback = function(ev) seen = ev end }
    p:update(4)
    p:finish()
    assert.equal("", out:text())
    assert.is_nil(seen.total)
    assert.equal(4, seen.done)
  end)

  it("finds out itself whether stderr is a terminal (quiet into a pipe, a line on a pty)", function()
    local lua = (_VERSION == "Lua 5.1") and "luajit" or "lua5.4"
    local cpath = H.root .. "/build/" .. ((_VERSION == "Lua 5.1") and "5.1" or "5.4") .. "/?.so"
    local prog = "package.path='" .. H.root .. "/lua/?.lua;'..package.path; package.cpath='" .. cpath
      .. ";'..package.cpath; local p = require('spapi.progress').new{ label = 'waiting', total = 2 }; "
      .. "p:update(1); p:update(2); p:finish('ok'); io.stdout:write('END')"
    local rc, out = H.run(lua .. " -e \"" .. prog .. "\" 2>&1 | cat")
    assert.equal(0, rc, out)
    assert.equal("END", out)
    local has_script = H.run("command -v script >/dev/null")
    if has_script ~= 0 then return end -- (util-linux's script gives the child a pty)
    rc, out = H.run("script -qec \"" .. lua .. " -e \\\"" .. prog .. "\\\"\" /dev/null </dev/null")
    assert.equal(0, rc, out)
    assert.matches("waiting 2/2 [%d.]+s ok", out)
  end)

  it("raises on bad arguments, naming them", function()
    assert.error_matches(function() progress.new{ callback = 5 } end, "'callback' must be a function")
    assert.error_matches(function() progress.new{ total = "x" } end, "'total' must be a number")
    assert.error_matches(function() progress.new{ tty = false }:update("x") end, "'done' must be a number")
  end)
end)
