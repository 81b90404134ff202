#!/usr/bin/env bash
# Prism (a request-validating mock of Amazon's models) for the conformance specs.
#
#   scripts/prism.sh install        npm-install the pinned @stoplight/prism-cli@5.14.2 into build/prism
#                                   (reaches the npm registry once; offline afterwards)
#   scripts/prism.sh start          merge the models (tools/merge_models.lua), start one Prism
#                                   serving all of them; prints its URL (http://127.0.0.1:PORT)
#                                   as the last line. Installs first if needed.
#   scripts/prism.sh stop [PORT]    stop the Prism started on PORT (default $PRISM_PORT)
#   scripts/prism.sh status [PORT]
#
# Environment: PRISM_PORT (default: a free port), SPAPI_MODELS (the models, see
# scripts/models.sh: SPAPI_MODELS, then ../shared/models), STRICT=1 and REQUIRE_TOKEN=1 by
# default (unknown body fields and a missing x-amz-access-token are violations),
# PRISM_FLAGS (default "-v warn").
# Each start gets its own state dir build/prism/run-PORT (pid, log, merged models), so
# two test runs at once do not trip over each other. Prism is started as `node …/dist/index.js`,
# not through npx, so the recorded PID is Prism's own and stopping it leaves no orphan.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
BASE="$ROOT/build/prism"
PRISM_VERSION=5.14.2
CLI="$BASE/node_modules/@stoplight/prism-cli/dist/index.js"
STRICT=${STRICT:-1}
REQUIRE_TOKEN=${REQUIRE_TOKEN:-1}
PRISM_FLAGS=${PRISM_FLAGS:--v warn}
HOST=127.0.0.1

die() { echo "prism.sh: $*" >&2; exit 1; }

free_port() { env LUA_CPATH="$ROOT/build/5.4/?.so;;" lua5.4 -e 'print(require("spapi.core").free_port())'; }
port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
installed() { [ -f "$CLI" ]; }

cmd_install() {
  if installed && [ "${1:-}" != "--force" ]; then
    echo "prism already installed in $BASE"; return 0
  fi
  command -v npm >/dev/null || die "npm not found (make deps installs it)"
  mkdir -p "$BASE"
  [ -f "$BASE/package.json" ] || echo '{"private":true}' > "$BASE/package.json"
  npm install --prefix "$BASE" --no-audit --no-fund "@stoplight/prism-cli@$PRISM_VERSION" >&2 \
    || die "npm install @stoplight/prism-cli@$PRISM_VERSION failed"
  node "$CLI" --version >/dev/null || die "the installed Prism does not run"
  echo "prism $PRISM_VERSION installed in $BASE"
}

run_dir() { echo "$BASE/run-$1"; }

# start_on PORT DIR: merge the models into DIR, start Prism on PORT, wait (at most 30 s) until it listens
start_on() {
  local port=$1 dir=$2 models pid i merge_flags=()
  models=$(scripts/models.sh) || die "no models: set SPAPI_MODELS (see scripts/models.sh)"
  [ "$STRICT" = 1 ] && merge_flags+=(--strict)
  [ "$REQUIRE_TOKEN" = 1 ] && merge_flags+=(--require-token)
  LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH="$ROOT/build/5.4/?.so;;" \
    lua5.4 tools/merge_models.lua "${merge_flags[@]}" "$dir/merged.json" "$models" >&2 || return 1
  port_open "$port" && { echo "prism.sh: something already listens on $HOST:$port" >&2; return 1; }
  # shellcheck disable=SC2086
  node "$CLI" mock -h "$HOST" -p "$port" $PRISM_FLAGS "$dir/merged.json" >"$dir/prism.log" 2>&1 &
  pid=$!
  echo "$pid" > "$dir/prism.pid"
  for i in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    # readiness by TCP connect: -v warn hides Prism's "listening" line
    port_open "$port" && return 0
    sleep 0.1
  done
  tail -20 "$dir/prism.log" >&2
  kill "$pid" 2>/dev/null
  rm -f "$dir/prism.pid"
  return 1
}

cmd_start() {
  installed || cmd_install >&2 || exit 1
  [ -f "$ROOT/build/5.4/spapi/core.so" ] || make --no-print-directory build >&2 || die "cannot build the C core"
  local port=${PRISM_PORT:-} tries=0 dir
  while :; do
    [ -n "$port" ] || port=$(free_port) || die "no free port"
    dir=$(run_dir "$port")
    mkdir -p "$dir"
    if start_on "$port" "$dir"; then
      echo "http://$HOST:$port"
      return 0
    fi
    tries=$((tries + 1))
    # a chosen free port can be taken in between; retry only when we chose it
    if [ -n "${PRISM_PORT:-}" ] || [ $tries -ge 3 ]; then
      die "Prism did not start (log: $dir/prism.log)"
    fi
    port=""
  done
}

cmd_stop() {
  local port=${1:-${PRISM_PORT:-}} dir pid i
  [ -n "$port" ] || die "stop: which port? (scripts/prism.sh stop PORT)"
  dir=$(run_dir "$port")
  [ -f "$dir/prism.pid" ] || { echo "not running on $port"; rm -rf "$dir"; return 0; }
  pid=$(cat "$dir/prism.pid")
  kill "$pid" 2>/dev/null
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done   # at most 5 s
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  rm -rf "$dir"
  echo "stopped $pid"
}

cmd_status() {
  local port=${1:-${PRISM_PORT:-}} pidfile
  [ -n "$port" ] || die "status: which port?"
  pidfile="$(run_dir "$port")/prism.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "running pid $(cat "$pidfile") on http://$HOST:$port"
  else
    echo "not running on $port"; return 1
  fi
}

case "${1:-}" in
  install) shift; cmd_install "$@" ;;
  start)   cmd_start ;;
  stop)    shift; cmd_stop "$@" ;;
  status)  shift; cmd_status "$@" ;;
  *) sed -n '2,19p' "$0"; exit 2 ;;
esac
