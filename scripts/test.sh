#!/usr/bin/env bash
# Run every spec under Lua 5.4 and LuaJIT; end with one line "N passed, N failed".
# Pending specs count as failed; a run that executes no test fails.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export SPAPI_ROOT=$ROOT
export SPAPI_MODELS=${SPAPI_MODELS:-$ROOT/../shared/models}
passed=0; failed=0; status=0
# this run's servers and temp files live here, so concurrent runs never touch each other's
export SPAPI_TEST_DIR=$ROOT/build/test/run-$$
mkdir -p "$SPAPI_TEST_DIR"

run_suite() { # name lua cpath
  local name=$1 lua=$2 cpath=$3 log
  log=$(mktemp "${TMPDIR:-/tmp}/spapi-test-$1.XXXXXX")
  echo "== busted under $name"
  LUA_CPATH="$cpath;;" "$lua" /usr/bin/busted -o plainTerminal "${@:4}" 2>&1 | tee "$log"
  local line
  line=$(grep -E '^[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors? / [0-9]+ pending' "$log" | tail -1)
  if [ -z "$line" ]; then
    echo "test.sh: busted under $name printed no summary" >&2
    failed=$((failed + 1)); status=1; return
  fi
  local s f e p
  read -r s f e p < <(echo "$line" | sed -E 's#^([0-9]+)[^/]*/ ([0-9]+)[^/]*/ ([0-9]+)[^/]*/ ([0-9]+).*#\1 \2 \3 \4#')
  passed=$((passed + s)); failed=$((failed + f + e + p))
  rm -f "$log"
}

# servers the specs started are stopped by the specs; this catches any left behind
cleanup() {
  for pidfile in "$SPAPI_TEST_DIR"/*/logs/nginx.pid "$SPAPI_TEST_DIR"/*/*/logs/nginx.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
  done
  [ "$status" -eq 0 ] && rm -rf "$SPAPI_TEST_DIR"
  return 0
}
trap cleanup EXIT

run_suite lua5.4 lua5.4 "$ROOT/build/5.4/?.so" "$@"
run_suite luajit luajit "$ROOT/build/5.1/?.so" "$@"

# The C core and the Lua layers over it under valgrind: any memory error or
# definite leak fails the run (skipped when running a subset, or SPAPI_VALGRIND=0).
if [ $# -eq 0 ] && [ "${SPAPI_VALGRIND:-1}" != 0 ]; then
  echo "== busted under valgrind (lua5.4): spec/core spec/client spec/json spec/request"
  vlog=$(mktemp "${TMPDIR:-/tmp}/spapi-test-valgrind.XXXXXX")
  scripts/valgrind.sh spec/core spec/client spec/json spec/request 2>&1 | tee "$vlog"
  vstatus=${PIPESTATUS[0]}
  line=$(grep -E '^[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors? / [0-9]+ pending' "$vlog" | tail -1)
  if [ -z "$line" ]; then
    echo "test.sh: the valgrind run printed no summary" >&2; failed=$((failed + 1)); status=1
  else
    read -r s f e p < <(echo "$line" | sed -E 's#^([0-9]+)[^/]*/ ([0-9]+)[^/]*/ ([0-9]+)[^/]*/ ([0-9]+).*#\1 \2 \3 \4#')
    passed=$((passed + s)); failed=$((failed + f + e + p))
  fi
  if [ "$vstatus" -ne 0 ]; then
    echo "test.sh: valgrind found errors or leaks (status $vstatus)" >&2; failed=$((failed + 1)); status=1
  fi
  rm -f "$vlog"
fi

if [ "$passed" -eq 0 ]; then status=1; echo "test.sh: no test ran" >&2; fi
[ "$failed" -eq 0 ] || status=1
echo "$passed passed, $failed failed"
exit $status
