#!/usr/bin/env bash
# Build kube-apiserver 1.20.2 from Debian bookworm's source package `kubernetes` with Debian's
# golang-go, and cache the binary so later runs skip the ~7 minute build.
#
#   bash scripts/build-kube-apiserver.sh [--force] [--fetch-only] [--check]
#
# Result: ${COHABIT_CACHE:-$HOME/.cache/cohabit}/bin/kube-apiserver (prints its path last).
# --check: exit 0 when the cached binary is there and current, 1 otherwise; builds nothing.
#
# How (facts verified on a Debian bookworm machine, see tests/integration/README.md):
#   1. A deb-src entry is derived at run time from this machine's own apt sources into a
#      PRIVATE sources list + lists dir under the cache; /etc/apt is never edited and no host
#      is named here.
#   2. `apt-get source --download-only kubernetes` then `dpkg-source -x` (Debian patches on).
#   3. Our patch scripts/patches/reflect2-go118-mapiterinit.patch is applied to the vendored
#      github.com/modern-go/reflect2 v1.0.1, which otherwise crashes under Go >= 1.18
#      (SIGSEGV in runtime.mapiterinit on the first custom-resource request).
#   4. `make WHAT=cmd/kube-apiserver` (a plain `go build` lacks the generated code).
# Needs: golang-go (1.18 to 1.23), dpkg-dev, make, patch, rsync; installed via apt when run as root.
# Disk: ~1.3 GB during the build; the tree is removed afterwards unless KEEP_BUILD=1.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
CACHE=${COHABIT_CACHE:-$HOME/.cache/cohabit}
BIN=$CACHE/bin/kube-apiserver
WORK=$CACHE/kube-build
APTDIR=$CACHE/apt
PATCH=$here/patches/reflect2-go118-mapiterinit.patch
WANT_VERSION=v1.20
force=0 fetch_only=0 check=0
for arg in "$@"; do
  case $arg in
    --force) force=1 ;;
    --fetch-only) fetch_only=1 ;;  # stop after unpacking (used to write the patch)
    --check) check=1 ;;
    *) echo "usage: $0 [--force] [--fetch-only] [--check]" >&2; exit 2 ;;
  esac
done

log() { printf '[build-kube-apiserver %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The cache stamp records the patch checksum: a changed patch forces a rebuild.
patch_sum=$(sha256sum "$PATCH" | cut -c1-16)
stamp=$CACHE/bin/.kube-apiserver.stamp
cached() {
  [ -x "$BIN" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$patch_sum" ] \
    && "$BIN" --version 2>/dev/null | grep -q "Kubernetes $WANT_VERSION"
}
if [ "$check" = 1 ]; then
  if cached; then echo "$BIN"; exit 0; fi
  log "kube-apiserver $WANT_VERSION is not built in $CACHE/bin"
  exit 1
fi

# One run at a time per cache (two test sessions may both try to build/fetch).
mkdir -p "$CACHE"
exec 9>"$CACHE/.kube-apiserver.lock"
if command -v flock >/dev/null && ! flock -n 9; then
  log "another run holds $CACHE/.kube-apiserver.lock: waiting for it"
  flock 9
fi

if [ "$force" = 0 ] && cached; then
  log "cached: $("$BIN" --version) at $BIN (use --force to rebuild)"
  echo "$BIN"
  exit 0
fi

# --- build tools --------------------------------------------------------------------------
need=()
command -v go >/dev/null || need+=(golang-go)
command -v dpkg-source >/dev/null || need+=(dpkg-dev)
command -v make >/dev/null || need+=(make)
command -v patch >/dev/null || need+=(patch)
command -v rsync >/dev/null || need+=(rsync)  # hack/lib copies generator binaries with rsync
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    log "installing build tools: ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >&2
  else
    die "missing build tools (${need[*]}); install them: sudo apt-get install ${need[*]}"
  fi
fi
gov=$(go env GOVERSION)
log "using $gov"
case $gov in
  go1.1[89]*|go1.2[0-3]*) ;;
  *) die "$gov: the reflect2 patch matches the map iterator layout of Go 1.18 to 1.23" ;;
esac

# --- private deb-src list derived from this machine's apt sources -------------------------
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$codename" ] || die "cannot read VERSION_CODENAME from /etc/os-release"
mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$APTDIR/etc"
srclist=$APTDIR/etc/sources.list
python3 - "$codename" "$srclist" <<'PY'
"""Turn this machine's enabled `deb` entries for the distribution codename into deb-src."""
import glob
import re
import sys

codename, out = sys.argv[1], sys.argv[2]
lines = []
one_line = ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]
for path in one_line:
    try:
        text = open(path, encoding="utf-8").read()
    except FileNotFoundError:
        continue
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        m = re.match(r"^deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.+)$", line)
        if m and m.group(3).split("-")[0] == codename:
            lines.append(f"deb-src {m.group(1) or ''}{m.group(2)} {m.group(3)} {m.group(4)}")
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    text = open(path, encoding="utf-8").read()
    for stanza in re.split(r"\n\s*\n", text):
        fields = {}
        for raw in stanza.splitlines():
            if raw.startswith("#") or ":" not in raw:
                continue
            key, _, value = raw.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        suites = [s for s in fields.get("suites", "").split() if s.split("-")[0] == codename]
        opts = f"[signed-by={fields['signed-by']}] " if "signed-by" in fields else ""
        for uri in fields.get("uris", "").split():
            for suite in suites:
                lines.append(f"deb-src {opts}{uri} {suite} {fields.get('components', 'main')}")
if not lines:
    sys.exit(f"no enabled apt source for '{codename}' in /etc/apt: cannot derive a deb-src entry")
with open(out, "w", encoding="utf-8") as fh:
    fh.write("\n".join(lines) + "\n")
PY
log "private deb-src list: $(wc -l <"$srclist") entr(y/ies) derived from /etc/apt (written to $srclist)"
apt_opts=(
  -o "Dir::Etc::sourcelist=$srclist" -o "Dir::Etc::sourceparts=-"
  -o "Dir::State::Lists=$APTDIR/lists" -o "Dir::Cache=$APTDIR/cache"
  -o "APT::Sandbox::User=root" -o "Debug::NoLocking=1"
)

# --- fetch and unpack the source package ---------------------------------------------------
mkdir -p "$WORK"
srcdir=$(find "$WORK" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -1)
if [ -z "$srcdir" ] || [ ! -f "$srcdir/.cohabit-unpacked" ]; then
  [ -n "$srcdir" ] && rm -rf "$srcdir"
  log "apt-get update (private lists only)"
  apt-get "${apt_opts[@]}" update -q >&2
  log "downloading source package kubernetes"
  (cd "$WORK" && apt-get "${apt_opts[@]}" source --download-only -q kubernetes >&2)
  dsc=$(ls -t "$WORK"/kubernetes_*.dsc | head -1)
  log "unpacking $(basename "$dsc")"
  (cd "$WORK" && dpkg-source --no-check -x "$dsc" >&2)
  srcdir=$(find "$WORK" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -1)
  [ -d "$srcdir/vendor/github.com/modern-go/reflect2" ] || die "no vendored reflect2 in $srcdir"
  touch "$srcdir/.cohabit-unpacked"
fi
log "source tree: $srcdir"
if [ "$fetch_only" = 1 ]; then echo "$srcdir"; exit 0; fi

# --- our reflect2 patch --------------------------------------------------------------------
cd "$srcdir"
if [ ! -f .cohabit-reflect2-patched ]; then
  log "applying $(basename "$PATCH")"
  patch -p1 --forward <"$PATCH" >&2
  echo "$patch_sum" >.cohabit-reflect2-patched
elif [ "$(cat .cohabit-reflect2-patched)" != "$patch_sum" ]; then
  die "source tree was patched with an older patch; remove $srcdir and rerun"
fi

# --- build ---------------------------------------------------------------------------------
log "make WHAT=cmd/kube-apiserver (about 7 minutes on 2 cores)"
t0=$(date +%s)
# Debian's tree has no .git: give the version to the build explicitly.
ver=$(dpkg-parsechangelog -S Version 2>/dev/null | sed -E 's/^[0-9]+://; s/.*really//; s/-[^-]*$//; s/\+.*//')
export KUBE_GIT_VERSION=v${ver:-1.20.2} KUBE_GIT_TREE_STATE=clean
export GOFLAGS=${GOFLAGS:-} GO111MODULE=${GO111MODULE:-}
rm -rf _output  # a failed earlier run can leave empty generator binaries behind
make WHAT=cmd/kube-apiserver >&2
out=$(find _output -type f -name kube-apiserver -perm -u+x | head -1)
[ -n "$out" ] || die "make finished but no kube-apiserver under $srcdir/_output"
mkdir -p "$CACHE/bin"
install -m 0755 "$out" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
echo "$patch_sum" >"$stamp"
log "built in $(( $(date +%s) - t0 )) s: $("$BIN" --version)"
if [ "${KEEP_BUILD:-0}" != 1 ]; then
  cd "$CACHE" && rm -rf "$WORK"
  log "removed build tree (KEEP_BUILD=1 keeps it)"
fi
echo "$BIN"
