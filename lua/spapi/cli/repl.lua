-- spapi [client options]   /   spapi repl [client options]
-- On a terminal: the interactive shell (spapi.repl). With stdin not a terminal:
-- reads a script from stdin and runs it like `spapi run -`.
local _M = {}

local common = require "spapi.cli.common"

local function usage(out)
  out:write([[
usage: spapi [client options]          the REPL (a script from stdin when stdin is not a terminal)
       spapi repl [client options]

In the REPL `sp` is the client and `spapi` the module; :help lists the commands.
Line editing, Tab completion and history ($XDG_STATE_HOME/spapi/history) come from
lua-readline when it is installed (Debian: lua-readline); SPAPI_NO_READLINE=1 turns it off.

]])
  out:write(common.CLIENT_FLAGS_HELP)
end

function _M.run(args)
  local opts, i = {}, 1
  while args[i] do
    local a = args[i]
    if a == "-h" or a == "--help" then usage(io.stdout) return 0 end
    local n, err = common.client_flag(args, i, opts)
    if not n then io.stderr:write("spapi: ", err, "\n") return common.USAGE end
    if n == 0 then
      io.stderr:write("spapi: unknown option or command '", a, "'\n")
      usage(io.stderr)
      return common.USAGE
    end
    i = i + n
  end
  local env = common.env(opts)
  if not common.isatty(0) then
    return require("spapi.cli.run").exec(io.stdin:read("*a") or "", "stdin", env, {})
  end
  local spapi = require "spapi"
  local repl = require("spapi.repl").new(env, { client = opts })
  local sp, err = common.client(opts)
  local jit = rawget(_G, "jit")
  io.stdout:write("spapi ", spapi.VERSION, " (", jit and jit.version or _VERSION, ") — :help for help, Ctrl-D to leave\n")
  if sp then
    rawset(env, "sp", sp)
    io.stdout:write("sp = ", tostring(sp), "\n")
  else
    io.stdout:write("sp is not ready: ", tostring(err and err.message or err),
      "\n(set LWA_CLIENT_ID, LWA_CLIENT_SECRET, LWA_REFRESH_TOKEN, or :profile NAME)\n")
  end
  return repl:loop()
end

return _M
