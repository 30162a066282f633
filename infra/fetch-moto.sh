#!/usr/bin/env bash
# infra/fetch-moto.sh [CACHE_DIR] - find a Python 3 that can run moto's S3 server (`python -m
# moto.server`, needs moto with Flask and Werkzeug) and print its path on stdout; the path is kept in
# CACHE_DIR/moto/python (default CACHE_DIR: <repo>/.cache). Progress goes to stderr.
#
# moto (an in-memory AWS emulator) is the one S3 server found that runs here without Docker and
# keeps object tags, SSE headers and storage classes, which s3rver and Swift's s3api do not. It is
# not in Debian 12 and PyPI is not reachable from this workplace; the machine image ships it in its
# Python (pip: moto 5.x, Flask, Werkzeug). This script only finds it: it installs nothing.
# Env: MOTO_PYTHON to name the interpreter.
set -euo pipefail
ROOT=$(cd "$(dirname "$(realpath "$0")")/.." && pwd)
CACHE=$(realpath -m "${1:-$ROOT/.cache}")
say() { echo "[fetch-moto] $*" >&2; }
works() { [ -n "$1" ] && [ -x "$1" ] && "$1" -c 'import moto, moto.server, flask, werkzeug' >/dev/null 2>&1; }

candidates=("${MOTO_PYTHON:-}")
[ -s "$CACHE/moto/python" ] && candidates+=("$(cat "$CACHE/moto/python")")
for name in python3 python; do
  p=$(command -v "$name" 2>/dev/null || true)
  # A pyenv shim is resolved to the real interpreter, so the path stays valid outside this shell.
  [ -n "$p" ] && candidates+=("$("$p" -c 'import sys; print(sys.executable)' 2>/dev/null || echo "$p")")
done
candidates+=(/root/.pyenv/versions/*/bin/python3 /usr/local/bin/python3 /usr/bin/python3)

for py in "${candidates[@]}"; do
  if works "$py"; then
    mkdir -p "$CACHE/moto"
    echo "$py" > "$CACHE/moto/python"
    say "moto $("$py" -c 'import moto; print(moto.__version__)') with $("$py" --version 2>&1) at $py"
    echo "$py"
    exit 0
  fi
done
say "no Python with moto's server (moto, flask, werkzeug) found; tried: ${candidates[*]}"
say "moto is not packaged in Debian 12 and PyPI is not reachable here: it must come with the machine image"
exit 1
