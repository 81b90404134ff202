-- Start and stop a private nginx (Debian's nginx + lua-nginx-module) on loopback.
-- Used by the local sandbox (`spapi sandbox start`) and by the spec helpers.
-- Everything lives under one directory: config, pid file, logs, temp paths.
-- No system configuration is read or touched.
local _M = {}

local io_open, os_execute, os_getenv = io.open, os.execute, os.getenv
local fmt = string.format

local MODULE_DIRS = { "/usr/lib/nginx/modules", "/usr/share/nginx/modules" }
local BINARIES = { "/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx" }

local function exists(path)
  local f = io_open(path, "rb")
  if f then f:close() return true end
  return false
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function run(cmd)
  local ok, how, code = os_execute(cmd)
  -- Lua 5.1/LuaJIT returns a number, 5.2+ returns true/nil, "exit", code
  if type(ok) == "number" then return ok == 0, ok end
  return ok == true, code
end

local function read_file(path)
  local f = io_open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function write_file(path, data)
  local f, err = io_open(path, "wb")
  if not f then return nil, err end
  f:write(data)
  f:close()
  return true
end

-- The repository (or install prefix) root: two levels above this file's lua/ dir.
local function source_root()
  local src = debug.getinfo(1, "S").source
  local path = src:sub(1, 1) == "@" and src:sub(2) or "."
  local dir = path:match("^(.*)/spapi/nginx%.lua$") or "."
  return dir
end

function _M.binary()
  local env = os_getenv("SPAPI_NGINX")
  if env and env ~= "" then return env end
  for _, b in ipairs(BINARIES) do
    if exists(b) then return b end
  end
  return nil, "nginx not found (install Debian's nginx and libnginx-mod-http-lua)"
end

local function module_lines()
  for _, d in ipairs(MODULE_DIRS) do
    if exists(d .. "/ngx_http_lua_module.so") then
      local lines = {}
      if exists(d .. "/ndk_http_module.so") then
        lines[#lines + 1] = fmt("load_module %s/ndk_http_module.so;", d)
      end
      lines[#lines + 1] = fmt("load_module %s/ngx_http_lua_module.so;", d)
      return table.concat(lines, "\n")
    end
  end
  return nil, "ngx_http_lua_module.so not found (install libnginx-mod-http-lua)"
end

local function is_root()
  local p = io.popen("id -u 2>/dev/null")
  if not p then return false end
  local out = p:read("*l")
  p:close()
  return out == "0"
end

--- Lua search paths for code running inside nginx (LuaJIT): the directory holding
--- spapi's Lua files (root), then LuaJIT's own defaults (";;"). The C core for LuaJIT
--- is looked for beside it: build/5.1 in the source tree, lib/lua/5.1 of an install
--- prefix or rocks tree (<prefix>/share/lua/<version> holds the Lua files).
function _M.lua_paths(root, extra)
  root = root or source_root()
  local lpath = fmt("%s%s/?.lua;%s/?/init.lua;;", extra and (extra .. ";") or "", root, root)
  local prefix = root:match("^(.*)/share/lua/[%d%.]+$")
  local cdir = prefix and (prefix .. "/lib/lua/5.1") or ((root:match("^(.*)/lua$") or (root .. "/..")) .. "/build/5.1")
  return lpath, cdir .. "/?.so;;"
end

-- The variables through which the Lua of the caller would leak into nginx's LuaJIT:
-- nginx starts with them unset, so ";;" means LuaJIT's defaults (not, say, the 5.4
-- paths `luarocks path` exported, whose cjson.so LuaJIT cannot load).
local LUA_ENV = { "LUA_PATH", "LUA_CPATH", "LUA_PATH_5_1", "LUA_CPATH_5_1", "LUA_INIT", "LUA_INIT_5_1" }

--- Write the config and start nginx.
-- opts.dir     private directory (created)
-- opts.port    TCP port on 127.0.0.1 (required)
-- opts.http    extra directives for the http{} block
-- opts.server  directives for the server{} block
-- opts.workers worker_processes (default 1)
-- opts.lua_path extra lua_package_path entries (prepended)
-- Returns a handle { dir, port, url, stop = fn } or nil, err.
function _M.start(opts)
  assert(type(opts) == "table", "spapi.nginx.start: options table expected")
  local dir = assert(opts.dir, "spapi.nginx.start: 'dir' is required")
  if dir:sub(1, 1) ~= "/" then dir = (os_getenv("PWD") or ".") .. "/" .. dir end
  local port = assert(tonumber(opts.port), "spapi.nginx.start: 'port' is required")
  local bin, err = _M.binary()
  if not bin then return nil, err end
  local mods, merr = module_lines()
  if not mods then return nil, merr end

  for _, sub in ipairs({ "", "/logs", "/tmp", "/conf" }) do
    run("mkdir -p " .. shell_quote(dir .. sub))
  end
  local lpath, cpath = _M.lua_paths(opts.lua_root, opts.lua_path)
  local conf = table.concat({
    mods,
    is_root() and "user root root;" or "",
    fmt("worker_processes %d;", opts.workers or 1),
    "daemon on;",
    "master_process on;",
    fmt("pid %s/logs/nginx.pid;", dir),
    fmt("error_log %s/logs/error.log %s;", dir, opts.log_level or "warn"),
    "events { worker_connections 4096; }",
    "http {",
    opts.access_log and fmt("  access_log %s/logs/access.log;", dir) or "  access_log off;",
    fmt("  client_body_temp_path %s/tmp/body;", dir),
    fmt("  proxy_temp_path %s/tmp/proxy;", dir),
    fmt("  fastcgi_temp_path %s/tmp/fastcgi;", dir),
    fmt("  uwsgi_temp_path %s/tmp/uwsgi;", dir),
    fmt("  scgi_temp_path %s/tmp/scgi;", dir),
    fmt("  lua_package_path %q;", lpath),
    fmt("  lua_package_cpath %q;", cpath),
    "  keepalive_requests 1000000;",
    opts.http or "",
    "  server {",
    fmt("    listen 127.0.0.1:%d;", port),
    opts.server or "",
    "  }",
    "}",
    "",
  }, "\n")
  local conf_path = dir .. "/conf/nginx.conf"
  local ok, werr = write_file(conf_path, conf)
  if not ok then return nil, werr end

  -- stop a previous instance in the same dir
  if exists(dir .. "/logs/nginx.pid") then
    _M.stop_dir(dir)
  end

  local cmd = fmt("env -u %s %s -p %s -c %s -e %s 2>>%s", table.concat(LUA_ENV, " -u "), shell_quote(bin), shell_quote(dir),
    shell_quote(conf_path), shell_quote(dir .. "/logs/error.log"),
    shell_quote(dir .. "/logs/startup.log"))
  local started = run(cmd)
  if not started then
    local log = read_file(dir .. "/logs/startup.log") or ""
    return nil, "nginx failed to start: " .. log:gsub("%s+$", "")
  end
  local h = {
    dir = dir, port = port, conf = conf_path,
    url = fmt("http://127.0.0.1:%d", port),
  }
  function h.stop() return _M.stop_dir(dir) end
  function h.pid() return _M.pid(dir) end
  return h
end

function _M.pid(dir)
  local s = read_file(dir .. "/logs/nginx.pid")
  return s and tonumber(s:match("%d+")) or nil
end

--- Stop the nginx whose pid file is under dir; waits (bounded) until it exits.
function _M.stop_dir(dir)
  local pid = _M.pid(dir)
  if not pid then return nil, "not running" end
  run(fmt("kill -TERM %d 2>/dev/null", pid))
  for _ = 1, 100 do
    if not run(fmt("kill -0 %d 2>/dev/null", pid)) then
      os.remove(dir .. "/logs/nginx.pid")
      return true
    end
    run("sleep 0.05")
  end
  run(fmt("kill -KILL %d 2>/dev/null", pid))
  os.remove(dir .. "/logs/nginx.pid")
  return true
end

_M.read_file = read_file
_M.write_file = write_file
_M.shell_quote = shell_quote

return _M
