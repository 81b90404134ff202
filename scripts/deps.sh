#!/usr/bin/env bash
# Install what spapi needs to build, test and run its sandbox, from Debian's packages.
# `scripts/deps.sh --check` only reports (exit 1 when something is missing).
# Run by `make deps` (which `make test` and `make demo` run first); needs root (or sudo) to install.
set -euo pipefail
PKGS=(
  build-essential pkg-config
  lua5.4 liblua5.4-dev
  luajit2 libluajit2-5.1-dev
  lua-cjson lua-busted lua-readline tmux
  libcurl4-openssl-dev libssl-dev zlib1g-dev libhiredis-dev
  nginx libnginx-mod-http-lua lua-resty-core redis-server
  curl valgrind wrk luarocks nodejs npm openssl
)
missing=()
for p in "${PKGS[@]}"; do
  st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$st" = installed ] || missing+=("$p")
done
# nodejs/npm may come from outside Debian (e.g. a preinstalled toolchain); they run
# Prism (scripts/prism.sh) for the conformance specs
filtered=()
for p in "${missing[@]}"; do
  case "$p" in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
  esac
  filtered+=("$p")
done
missing=("${filtered[@]+"${filtered[@]}"}")
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "${1:-}" = "--check" ]; then
  echo "missing packages: ${missing[*]}" >&2; exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# the Debian nginx package starts a system nginx on :80; keep it from starting
if [ ! -e /usr/sbin/policy-rc.d ] && [ -n "${CI:-}${SPAPI_NO_SERVICES:-1}" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
