#!/usr/bin/env bash
# Run the C core's specs under valgrind (Lua 5.4). Fails (non-zero) on any
# memory error or definite leak. Possible/reachable blocks held by libcurl,
# OpenSSL and Lua's globals are not counted (--errors-for-leak-kinds=definite).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
[ -f build/5.4/spapi/core.so ] || make --no-print-directory build LUA_VERSION=5.4 || exit 1
export SPAPI_ROOT=$ROOT
export LUA_CPATH="$ROOT/build/5.4/?.so;;"
SUPP=()
[ -f scripts/valgrind.supp ] && SUPP=(--suppressions=scripts/valgrind.supp)
mkdir -p build/test
LOG=build/test/valgrind.log
valgrind --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite \
  --show-leak-kinds=definite --track-fds=no --num-callers=30 "${SUPP[@]}" \
  --log-file="$LOG" \
  lua5.4 /usr/bin/busted -o plainTerminal "${@:-spec/core}"
status=$?
grep -E "ERROR SUMMARY|definitely lost" "$LOG" | tail -3
if [ $status -ne 0 ]; then
  echo "valgrind.sh: failed (status $status); see $LOG" >&2
  exit $status
fi
echo "valgrind.sh: clean"
