#!/usr/bin/env bash
# Run examples/nginx (nginx.conf + handlers.lua) against the local sandbox:
#   examples/nginx/run.sh         start the sandbox and this nginx, print curl commands
#   examples/nginx/run.sh stop    stop both
# PORT (8088), SANDBOX_PORT (8787) and PREFIX (build/nginx-example) say where;
# LWA_CLIENT_ID, LWA_CLIENT_SECRET and LWA_REFRESH_TOKEN default to made-up
# values (the sandbox takes any well-formed ones).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PORT=${PORT:-8088}
SANDBOX_PORT=${SANDBOX_PORT:-8787}
PREFIX=${PREFIX:-$ROOT/build/nginx-example}
NGINX=${SPAPI_NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

stop() {
  if [ -f "$PREFIX/logs/nginx.pid" ]; then
    kill "$(cat "$PREFIX/logs/nginx.pid")" 2>/dev/null || true
    for _ in $(seq 50); do [ -f "$PREFIX/logs/nginx.pid" ] || break; sleep 0.1; done
  fi
  "$ROOT/bin/spapi" sandbox stop --dir "$PREFIX/sandbox" >/dev/null 2>&1 || true
}

if [ "${1:-}" = stop ]; then stop; echo "stopped"; exit 0; fi
stop

# the C core for nginx's LuaJIT (5.1) and for bin/spapi (5.4)
[ -f "$ROOT/build/5.1/spapi/core.so" ] && [ -f "$ROOT/build/5.4/spapi/core.so" ] || make -C "$ROOT" >/dev/null
mkdir -p "$PREFIX/conf" "$PREFIX/logs" "$PREFIX/tmp"
ln -sfn "$ROOT/lua" "$PREFIX/lua"
ln -sfn "$ROOT/build/5.1" "$PREFIX/lib"
ln -sfn "$HERE" "$PREFIX/handlers"
: > "$PREFIX/conf/modules.conf"
# as root, nginx's workers would run as nobody, who may not read a checkout in a
# private directory (mktemp -d is 0700): keep them as the user who runs this
[ "$(id -u)" -ne 0 ] || echo "user root root;" >> "$PREFIX/conf/modules.conf"
for d in /usr/lib/nginx/modules /usr/share/nginx/modules; do
  if [ -f "$d/ngx_http_lua_module.so" ]; then
    [ -f "$d/ndk_http_module.so" ] && echo "load_module $d/ndk_http_module.so;" >> "$PREFIX/conf/modules.conf"
    echo "load_module $d/ngx_http_lua_module.so;" >> "$PREFIX/conf/modules.conf"
    break
  fi
done
sed "s/127\.0\.0\.1:8088/127.0.0.1:$PORT/" "$HERE/nginx.conf" > "$PREFIX/conf/nginx.conf"

"$ROOT/bin/spapi" sandbox start --port "$SANDBOX_PORT" --dir "$PREFIX/sandbox" >/dev/null

export SPAPI_ENDPOINT="http://127.0.0.1:$SANDBOX_PORT"
export SPAPI_LWA_ENDPOINT="http://127.0.0.1:$SANDBOX_PORT/auth/o2/token"
export LWA_CLIENT_ID=${LWA_CLIENT_ID:-amzn1.application-oa2-client.nginx-example}
export LWA_CLIENT_SECRET=${LWA_CLIENT_SECRET:-nginx-example-secret}
export LWA_REFRESH_TOKEN=${LWA_REFRESH_TOKEN:-Atzr|nginx-example-refresh-token}
# (the caller's Lua paths are for its own Lua, not nginx's LuaJIT)
if ! env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_1 -u LUA_CPATH_5_1 -u LUA_INIT \
  "$NGINX" -p "$PREFIX/" -c conf/nginx.conf -e logs/error.log; then
  echo "nginx did not start (see $PREFIX/logs/error.log)" >&2
  stop
  exit 1
fi

URL="http://127.0.0.1:$PORT"
cat <<MSG
spapi example: nginx at $URL (prefix $PREFIX), sandbox at $SPAPI_ENDPOINT

  curl -s $URL/vdf/orders/new
  curl -s -X POST $URL/mcf/preview -d '{"id":"WEB-1001","items":[{"sku":"SKU-RED-MUG","quantity":1}],
    "address":{"name":"Jane Doe","addressLine1":"410 Terry Ave N","city":"Seattle","stateOrRegion":"WA",
    "postalCode":"98109","countryCode":"US"}}'
  curl -s -X POST $URL/mcf/orders -d '{"id":"WEB-1001","speed":"cheapest","items":[{"sku":"SKU-RED-MUG","quantity":1}],
    "address":{"name":"Jane Doe","addressLine1":"410 Terry Ave N","city":"Seattle","stateOrRegion":"WA",
    "postalCode":"98109","countryCode":"US"}}'

logs: $PREFIX/logs/error.log    stop: $0 stop
MSG
