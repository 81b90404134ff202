#!/usr/bin/env bash
# Prism (a request-validating mock of Amazon's models) for the conformance specs.
#
#   scripts/prism.sh install        npm-install the pinned @stoplight/prism-cli@5.14.2 into build/prism
#                                   (reaches the npm registry once; offline afterwards)
#   scripts/prism.sh start          start one Prism serving every model; prints its URL
#                                   (http://127.0.0.1:PORT) as the last line. Installs first if needed.
#   scripts/prism.sh stop [PORT]    stop the Prism started on PORT (default $PRISM_PORT)
#   scripts/prism.sh status [PORT]
#
# Environment: PRISM_PORT (default: a free port), SPAPI_MODELS (models dir, default
# ../shared/models), SPAPI_CONFORMANCE (prism_ctl.sh's dir, default ../shared/conformance),
# STRICT=1 and REQUIRE_TOKEN=1 by default (unknown body fields and a missing
# x-amz-access-token are violations), PRISM_FLAGS (default "-v warn").
# Each start gets its own state dir build/prism/run-PORT (pid, log, merged models),
# so two test runs at once do not trip over each other.
# Wraps ../shared/conformance/prism_ctl.sh, which does the merging, the start and
# the PID-based stop.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
SPAPI_ROOT=${SPAPI_ROOT:-$ROOT}
CONF=${SPAPI_CONFORMANCE:-$SPAPI_ROOT/../shared/conformance}
CTL="$CONF/prism_ctl.sh"
BASE="$ROOT/build/prism"
export MODELS_DIR=${SPAPI_MODELS:-$SPAPI_ROOT/../shared/models}
export STRICT=${STRICT:-1}
export REQUIRE_TOKEN=${REQUIRE_TOKEN:-1}
export PRISM_FLAGS=${PRISM_FLAGS:--v warn}
export PRISM_HOST=127.0.0.1
export PRISM_VERSION=5.14.2

die() { echo "prism.sh: $*" >&2; exit 1; }
[ -f "$CTL" ] || die "cannot find $CTL (set SPAPI_CONFORMANCE)"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

installed() { [ -f "$BASE/node_modules/@stoplight/prism-cli/dist/index.js" ]; }

cmd_install() {
  if installed && [ "${1:-}" != "--force" ]; then
    echo "prism already installed in $BASE"; return 0
  fi
  PRISM_DIR="$BASE" bash "$CTL" install || die "install failed"
}

run_dir() { echo "$BASE/run-$1"; }

cmd_start() {
  installed || cmd_install >&2 || exit 1
  local port=${PRISM_PORT:-}
  local tries=0
  while :; do
    [ -n "$port" ] || port=$(free_port) || die "no free port"
    local dir; dir=$(run_dir "$port")
    mkdir -p "$dir"
    ln -sfn "$BASE/node_modules" "$dir/node_modules"
    if PRISM_DIR="$dir" PRISM_PORT="$port" bash "$CTL" start >&2; then
      echo "http://127.0.0.1:$port"
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
  local port=${1:-${PRISM_PORT:-}}
  [ -n "$port" ] || die "stop: which port? (scripts/prism.sh stop PORT)"
  local dir; dir=$(run_dir "$port")
  [ -d "$dir" ] || { echo "not running on $port"; return 0; }
  PRISM_DIR="$dir" PRISM_PORT="$port" bash "$CTL" stop
  rm -rf "$dir"
}

cmd_status() {
  local port=${1:-${PRISM_PORT:-}}
  [ -n "$port" ] || die "status: which port?"
  PRISM_DIR="$(run_dir "$port")" PRISM_PORT="$port" bash "$CTL" status
}

case "${1:-}" in
  install) shift; cmd_install "$@" ;;
  start)   cmd_start ;;
  stop)    shift; cmd_stop "$@" ;;
  status)  shift; cmd_status "$@" ;;
  *) sed -n '2,19p' "$0"; exit 2 ;;
esac
