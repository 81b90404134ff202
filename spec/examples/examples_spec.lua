-- The README's first command (make demo → scripts/demo.sh) runs the example
-- workflows against a fresh local sandbox; they must finish and say so.
local H = require "helpers"

local run = H.run

describe("examples", function()
  it("vdf_workflow acknowledges, labels, confirms and invoices every NEW purchase order", function()
    local rc, out = run(string.format("cd %q && scripts/demo.sh examples/vdf_workflow.lua", H.root))
    assert.equal(0, rc, out)
    local n = tonumber(out:match("(%d+) NEW purchase orders"))
    assert.is_true(n and n >= 1, out)
    assert.matches("acknowledgements%s+Success", out)
    assert.matches("shipment confirmations%s+Success", out)
    assert.matches("invoices%s+Success", out)
    local _, shipped = out:gsub("%s+SHIPPED", "")
    assert.equal(n, shipped, out)
    assert.matches("done: " .. n .. " purchase orders acknowledged, labelled, shipped and invoiced", out, 1, true)
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
