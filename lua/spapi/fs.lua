-- spapi.fs — the few file-system operations the journal, labels and progress
-- modules need and plain Lua lacks. Runtime failures return nil, message.
--
--   fs.write_atomic(path, data) → true | nil, msg
--       writes path.tmp, fsyncs it, renames it over path, fsyncs the directory:
--       a reader (or a crash) sees the old contents or the new, never a mix.
--   fs.fsync(path)   → true | nil, msg   (a file or a directory)
--   fs.isatty(fd)    → boolean           (is fd — 2 for stderr — a terminal?)
--   fs.read(path)    → data | nil, msg, "missing" (when the file does not exist)
--   fs.dirname(path) → the directory part ("." when none)
--
-- How (the C core has neither fsync nor isatty, and this module does not add C):
-- on LuaJIT through the FFI (open/fsync/isatty, no process); on PUC Lua through a
-- child process: `sync -- FILE` (GNU coreutils >= 8.24 fsyncs the named files) and
-- `test -t FD` (the child inherits our descriptors, so this is isatty(), not a guess).
-- isatty() is asked once per descriptor and remembered.
local _M = {}

local io, os, type, tostring, pcall = io, os, type, tostring, pcall

local ffi
do
  local ok, m = pcall(require, "ffi")
  if ok and type(m) == "table" and pcall(m.cdef, [[
      int open(const char *pathname, int flags, ...);
      int fsync(int fd);
      int close(int fd);
      int isatty(int fd);
    ]]) then
    ffi = m
  end
end

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
  if ffi then
    local fd = ffi.C.open(path, 0) -- O_RDONLY works for files and directories
    if fd < 0 then return nil, "cannot open " .. path .. " to fsync it" end
    local rc = ffi.C.fsync(fd)
    ffi.C.close(fd)
    if rc ~= 0 then return nil, "fsync of " .. path .. " failed" end
    return true
  end
  if ran(os.execute("sync -- " .. quote(path) .. " 2>/dev/null")) then return true end
  return nil, "fsync of " .. path .. " failed (needs `sync FILE` from GNU coreutils >= 8.24)"
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

local tty = {}
function _M.isatty(fd)
  fd = fd or 2
  if tty[fd] == nil then
    if ffi then
      tty[fd] = ffi.C.isatty(fd) == 1
    else
      tty[fd] = ran(os.execute("test -t " .. math.floor(fd)))
    end
  end
  return tty[fd]
end

return _M
