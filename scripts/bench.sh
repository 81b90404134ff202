#!/usr/bin/env bash
# make bench: pipeline vs raw libcurl, batch vs curl --parallel, RSS over 10,000 calls,
# and requests/s through an nginx handler via the ngx and the curl transports next to
# wrk straight at the server, and the memory store vs the Redis store, all against one
# local nginx (and a redis-server) started here. Prints ratios; never fails on absolute times.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
mkdir -p build/bench
# the raw libcurl baseline, a Lua C module loaded into the bench's own process
for v in "5.4 lua5.4" "5.1 luajit"; do
  set -- $v
  mkdir -p "build/bench/$1"
  cc -O2 -Wall -Wextra -shared -fPIC $(pkg-config --cflags "$2") -Isrc -o "build/bench/$1/rawloop.so" \
    bench/rawloop.c $(pkg-config --cflags --libs libcurl)
done
PORT=$(LUA_CPATH="$ROOT/build/5.4/?.so;;" lua5.4 -e 'print(require("spapi.core").free_port())')
export LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH="$ROOT/build/5.4/?.so;;"
lua5.4 - "$ROOT/build/bench/nginx" "$PORT" <<'LUA'
local ng = require "spapi.nginx"
assert(ng.start{ dir = arg[1], port = tonumber(arg[2]), workers = 1, server = [[
  default_type application/json;
  location = /auth/o2/token { return 200 '{"access_token":"Atza|bench","token_type":"bearer","expires_in":3600}'; }
  location / { add_header x-amzn-RequestId bench-1; add_header x-amzn-RateLimit-Limit 1000000;
               return 200 '{"payload":{"features":[{"featureName":"BLANK_BOX","featureDescription":"Blank box"}]}}'; }
]] })
LUA
# the Redis store's bench: a private redis-server (Debian's), nothing persisted
RDIR=$ROOT/build/bench/redis
mkdir -p "$RDIR"
RPORT=$(LUA_CPATH="$ROOT/build/5.4/?.so;;" lua5.4 -e 'print(require("spapi.core").free_port())')
redis-server --bind 127.0.0.1 --port "$RPORT" --dir "$RDIR" --save '' --appendonly no --daemonize yes \
  --pidfile "$RDIR/redis.pid" --logfile "$RDIR/redis.log"
stop_all() {
  lua5.4 -e "require(\"spapi.nginx\").stop_dir(\"$ROOT/build/bench/nginx\")"
  [ -f "$RDIR/redis.pid" ] && kill "$(cat "$RDIR/redis.pid")" 2>/dev/null
  return 0
}
trap stop_all EXIT
for _ in $(seq 100); do
  LUA_CPATH="$ROOT/build/5.4/?.so;;" lua5.4 -e "os.exit(require('spapi.core').tcp_probe('127.0.0.1', $RPORT, 0.1) and 0 or 1)" && break
  sleep 0.05
done
N=${BENCH_N:-5000}
echo "== Lua 5.4"
LUA_CPATH="$ROOT/build/5.4/?.so;$ROOT/build/bench/5.4/?.so;;" lua5.4 bench/pipeline.lua "http://127.0.0.1:$PORT" "$N"
echo "== LuaJIT"
LUA_CPATH="$ROOT/build/5.1/?.so;$ROOT/build/bench/5.1/?.so;;" luajit bench/pipeline.lua "http://127.0.0.1:$PORT" "$N"
echo "== OpenResty: an nginx handler calling the server (LuaJIT inside nginx)"
lua5.4 bench/ngx.lua "http://127.0.0.1:$PORT" "$ROOT/build/bench/nginx-front" "${BENCH_SECONDS:-3}" 16
echo "== the Redis store (Lua 5.4)"
LUA_CPATH="$ROOT/build/5.4/?.so;;" lua5.4 bench/redis_store.lua "http://127.0.0.1:$PORT" "redis://127.0.0.1:$RPORT" "$N"
echo "== the Redis store (LuaJIT)"
LUA_CPATH="$ROOT/build/5.1/?.so;;" luajit bench/redis_store.lua "http://127.0.0.1:$PORT" "redis://127.0.0.1:$RPORT" "$N"
