#!/usr/bin/env bash
# Run every spec under Lua 5.4 and LuaJIT; end with one line "N passed, N failed, K skipped".
# Pending specs count as failed; a run that executes no test fails.
# Tests that need Amazon's raw models (SPAPI_MODELS, else ../shared/models) are not run
# without them: spec/helpers.lua records each in $SPAPI_TEST_DIR/skipped, counted here.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export SPAPI_ROOT=$ROOT
# Amazon's models as one flat folder (a checkout of selling-partner-api-models works too), or none
SPAPI_MODELS=$(scripts/models.sh) || SPAPI_MODELS=
export SPAPI_MODELS
passed=0; failed=0; status=0
# this run's servers and temp files live here, so concurrent runs never touch each other's
export SPAPI_TEST_DIR=$ROOT/build/test/run-$$
mkdir -p "$SPAPI_TEST_DIR"
SKIPPED=$SPAPI_TEST_DIR/skipped
: > "$SKIPPED"

# run_suite NAME COMMAND...: run one busted run, add its counts; returns the command's status
run_suite() {
  local name=$1 log rc line s f e p
  shift
  log=$(mktemp "${TMPDIR:-/tmp}/spapi-test.XXXXXX")
  echo "== busted under $name"
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  line=$(grep -E '^[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors? / [0-9]+ pending' "$log" | tail -1)
  rm -f "$log"
  if [ -z "$line" ]; then
    echo "test.sh: busted under $name printed no summary" >&2
    failed=$((failed + 1)); status=1; return "$rc"
  fi
  read -r s f e p < <(echo "$line" | sed -E 's#^([0-9]+)[^/]*/ ([0-9]+)[^/]*/ ([0-9]+)[^/]*/ ([0-9]+).*#\1 \2 \3 \4#')
  passed=$((passed + s)); failed=$((failed + f + e + p))
  return "$rc"
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

# busted's own exit status is not needed here: its failures are in the counts
run_suite lua5.4 env LUA_CPATH="$ROOT/build/5.4/?.so;;" lua5.4 /usr/bin/busted -o plainTerminal "$@"
run_suite luajit env LUA_CPATH="$ROOT/build/5.1/?.so;;" luajit /usr/bin/busted -o plainTerminal "$@"

# The C core and the Lua layers over it under valgrind: any memory error or
# definite leak fails the run (skipped when running a subset, or SPAPI_VALGRIND=0).
if [ $# -eq 0 ] && [ "${SPAPI_VALGRIND:-1}" != 0 ]; then
  if ! run_suite "valgrind (lua5.4): spec/core spec/client spec/json spec/request" \
      scripts/valgrind.sh spec/core spec/client spec/json spec/request; then
    echo "test.sh: valgrind found errors or leaks" >&2; failed=$((failed + 1)); status=1
  fi
fi

skipped=$(wc -l < "$SKIPPED")
if [ "$skipped" -gt 0 ]; then
  # one line per reason: what is missing and how to get it
  cut -f1 "$SKIPPED" | sort | uniq -c | sed -E 's/^ *([0-9]+) (.*)$/\1 skipped: \2/'
fi
if [ "$passed" -eq 0 ]; then status=1; echo "test.sh: no test ran" >&2; fi
[ "$failed" -eq 0 ] || status=1
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
