-- The README's first command (make demo → scripts/demo.sh) runs the example
-- workflows against a fresh local sandbox; they must finish and say so.
local H = require "helpers"

local run = H.run

describe("examples", function()
  it("vdf_daily acknowledges, labels, confirms and invoices every NEW purchase order, saving the labels", function()
    local rc, out = run(string.format("cd %q && scripts/demo.sh examples/vdf_daily.lua", H.root))
    assert.equal(0, rc, out)
    local n = tonumber(out:match("done: (%d+) purchase orders acknowledged, labelled, shipped and invoiced"))
    assert.is_true(n and n >= 2, out)
    local rows = 0
    for po, file in out:gmatch("\n(%w+)%s+SHIPPED%s+ack=done label=done confirm=done invoice=done (%S+)") do
      rows = rows + 1
      assert.matches("/labels/" .. po .. "%.png$", file)
      local f = assert(io.open(file, "rb"), file)
      assert.equal("\137PNG", f:read(4))
      f:close()
    end
    assert.equal(n, rows, out)
  end)
end)

describe("examples", function()
  it("mcf_order previews, creates, follows and tracks an MCF order", function()
    local rc, out = run(string.format("cd %q && scripts/demo.sh examples/mcf_order.lua", H.root))
    assert.equal(0, rc, out)
    assert.matches("SKU%-RED%-MUG: %d+ fulfillable", out)
    assert.matches("Standard%s+fulfillable=true", out)
    assert.matches("status Received", out)
    assert.matches("status Complete", out)
    assert.matches("package %d+: %S+ %S+, %u", out)
    assert.matches("done: MCF%-%d+ shipped", out)
  end)
end)
