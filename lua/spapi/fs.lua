-- spapi.fs — the few file-system operations the journal, labels and progress
-- modules need and plain Lua lacks. Runtime failures return nil, message.
--
--   fs.write_atomic(path, data) → true | nil, msg
--       writes path.tmp, fsyncs it, renames it over path, fsyncs the directory:
--       a reader (or a crash) sees the old contents or the new, never a mix.
--   fs.fsync(path)   → true | nil, msg   (a file or a directory)
--   fs.isatty(fd)    → boolean           (is fd — 2 for stderr, or a Lua file — a terminal?)
--   fs.read(path)    → data | nil, msg, "missing" (when the file does not exist)
--   fs.dirname(path) → the directory part ("." when none)
--   fs.mkdir(path)   → true | nil, msg   (mkdir -p)
--   fs.mkdir_excl(path) → true | false   (mkdir: false when it exists — atomic, a lock)
--   fs.pid()         → this process's id
--   fs.alive(pid)    → whether a process with that id exists (kill -0)
--
-- fsync and isatty are the C core's (core.fsync, core.isatty): one system call, no child
-- process, on Lua 5.4 and LuaJIT alike. mkdir, mkdir_excl and alive still run a child
-- process (rare: a journal's lock, once per run).
local _M = {}

local core = require "spapi.core"

local io, os, type, tostring, tonumber = io, os, type, tostring, tonumber

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- os.execute's success across 5.1 (a number) and 5.2+ (true, "exit", 0)
local function ran(a, _, c)
  if type(a) == "number" then return a == 0 end
  return a == true and (c == nil or c == 0)
end

function _M.dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

function _M.fsync(path)
  return core.fsync(path)
end

function _M.read(path)
  local f, err = io.open(path, "rb")
  if not f then
    -- (io.open of a missing file says "No such file or directory", ENOENT's text)
    return nil, tostring(err), tostring(err):find("No such file", 1, true) and "missing" or nil
  end
  local data = f:read("*a")
  f:close()
  return data
end

function _M.write_atomic(path, data)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then return nil, "cannot write " .. tmp .. ": " .. tostring(err) end
  local ok, werr = f:write(data)
  if ok then ok, werr = f:flush() end
  f:close()
  if not ok then
    os.remove(tmp)
    return nil, "cannot write " .. tmp .. ": " .. tostring(werr)
  end
  local synced, serr = _M.fsync(tmp)
  if not synced then os.remove(tmp) return nil, serr end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then
    os.remove(tmp)
    return nil, "cannot rename " .. tmp .. " to " .. path .. ": " .. tostring(rerr)
  end
  return _M.fsync(_M.dirname(path))
end

function _M.mkdir(path)
  if ran(os.execute("mkdir -p -- " .. quote(path) .. " 2>/dev/null")) then return true end
  return nil, "cannot create directory " .. path
end

function _M.mkdir_excl(path)
  return ran(os.execute("mkdir -- " .. quote(path) .. " 2>/dev/null"))
end

local pid
function _M.pid()
  if not pid then
    -- /proc/self is whoever opens it: this process (Linux); elsewhere the shell's parent
    local f = io.open("/proc/self/stat", "rb")
    if f then
      pid = tonumber((f:read("*l") or ""):match("^%d+"))
      f:close()
    end
    if not pid then
      local p = io.popen("echo $PPID")
      pid = p and tonumber(p:read("*l"))
      if p then p:close() end
    end
  end
  return pid
end

function _M.alive(n)
  return ran(os.execute("kill -0 " .. math.floor(tonumber(n) or 0) .. " 2>/dev/null"))
end

function _M.isatty(fd)
  return core.isatty(fd or 2)
end

return _M
