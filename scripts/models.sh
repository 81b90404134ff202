#!/usr/bin/env bash
# Print the directory holding Amazon's SP-API models as one flat folder of .json files,
# or exit 1 (printing nothing) when there are none.
#
#   scripts/models.sh [DIR]     DIR (else $SPAPI_MODELS), then ../shared/models
#
# DIR may be that flat folder, or a checkout of https://github.com/amzn/selling-partner-api-models
# (models/<api>-model/<file>.json): its model files are then linked into build/models.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
# flat DIR → DIR; a checkout → build/models linking its model files; else fail
flat() {
  local dir=$1 sub f out
  [ -n "$dir" ] && [ -d "$dir" ] || return 1
  dir=$(cd "$dir" && pwd)
  if compgen -G "$dir/*.json" >/dev/null; then echo "$dir"; return 0; fi
  for sub in "$dir/models" "$dir"; do
    if compgen -G "$sub/*/*.json" >/dev/null; then
      out=$ROOT/build/models
      rm -rf "$out" && mkdir -p "$out" || return 1
      for f in "$sub"/*/*.json; do ln -sf "$f" "$out/$(basename "$f")"; done
      echo "$out"; return 0
    fi
  done
  return 1
}
flat "${1:-${SPAPI_MODELS:-}}" || flat "$ROOT/../shared/models"
