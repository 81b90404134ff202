-- spapi run [client options] script.lua [args...]   (script "-": read it from stdin)
-- Runs a Lua script with the module path set (bin/spapi sets it for a checkout
-- and for an install), `spapi` loaded and `sp` ready: a client built from the
-- environment, the profile file or the client options when the script first
-- uses it. The script gets its arguments as `...` and in `arg` (arg[0] = the
-- script). An error it raises is reported in one line, without a traceback;
-- the exit code is the error's (an spapi.Error by its kind, a programmer error
-- raised by spapi 2, any other 1), or what the script passes to os.exit.
local _M = {}

local common = require "spapi.cli.common"

local function usage(out)
  out:write([[
usage: spapi run [client options] script.lua [args...]
       spapi run [client options] - [args...]      (the script from stdin)

The script runs with `spapi` loaded and `sp` ready (a client from the environment,
the profile file or the client options), its arguments in `...` and `arg`.

]])
  out:write(common.CLIENT_FLAGS_HELP)
end

--- Run the chunk `text` (named `name`) with args in env → exit code.
function _M.exec(text, name, env, args)
  text = text:gsub("^#![^\n]*", "") -- a shebang line
  local f, err = common.load(text, "@" .. name, env)
  if not f then
    io.stderr:write("spapi run: ", tostring(err), "\n")
    return common.USAGE
  end
  local a = { [0] = name }
  for i, v in ipairs(args) do a[i] = v end
  rawset(env, "arg", a)
  local unpack = table.unpack or unpack
  local ok, e = xpcall(function() return f(unpack(args)) end, function(x) return x end)
  io.stdout:flush()
  if ok then return common.OK end
  local msg, code = common.failure(e)
  io.stderr:write(msg, "\n")
  return code
end

function _M.run(args)
  local opts, i = {}, 1
  while args[i] do
    local a = args[i]
    if a == "-h" or a == "--help" then usage(io.stdout) return 0 end
    if a:sub(1, 2) ~= "--" then break end
    local n, err = common.client_flag(args, i, opts)
    if not n then io.stderr:write("spapi run: ", err, "\n") return common.USAGE end
    if n == 0 then io.stderr:write("spapi run: unknown option ", a, "\n") return common.USAGE end
    i = i + n
  end
  local script = args[i]
  if not script then usage(io.stderr) return common.USAGE end
  local text, err = common.read_file(script)
  if not text then
    io.stderr:write("spapi run: cannot read ", script, ": ", tostring(err), "\n")
    return common.USAGE
  end
  local rest = {}
  for j = i + 1, #args do rest[#rest + 1] = args[j] end
  return _M.exec(text, script == "-" and "stdin" or script, common.env(opts), rest)
end

return _M
