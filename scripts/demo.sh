#!/usr/bin/env bash
# make demo: start the local SP-API sandbox, run the example workflows against it, stop it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH="$ROOT/build/5.4/?.so;;"
DIR=$ROOT/build/demo-sandbox
PORT=$(lua5.4 -e 'print(require("spapi.core").free_port())')
# the sandbox clock runs 1800x: DF transactions settle and MCF orders ship within seconds
out=$(bin/spapi sandbox start --port "$PORT" --dir "$DIR" --speed 1800)
trap 'bin/spapi sandbox stop --dir "$DIR" >/dev/null' EXIT
echo "$out" | grep -E '^(endpoint|lwa_endpoint)='
eval "$(echo "$out" | grep -E '^export ')"
# any well-formed credentials work against the sandbox
export LWA_CLIENT_ID=amzn1.application-oa2-client.demo LWA_CLIENT_SECRET=demo-secret LWA_REFRESH_TOKEN='Atzr|demo'
export SPAPI_DEMO_GENERATE=1
[ $# -gt 0 ] || set -- examples/vdf_workflow.lua examples/mcf_order.lua \
  examples/mcf_ship_order.lua \
  examples/mli_sync_inventory.lua
for ex in "$@"; do
  echo "== $ex"
  lua5.4 "$ex"
done
