#!/usr/bin/env bash
# Create .venv (if missing) and install cohabit with its dev extras into it.
# Needs only python3 (>= 3.10) with venv; safe to run again. On Debian, where `venv` is the
# separate package python3-venv, it is installed when this runs as root (else: named).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -e .venv ]; then
  if ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv \
        >/dev/null || { apt-get update -q >/dev/null &&
          DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            python3-venv >/dev/null; }
    else
      echo "bootstrap: $PY has no venv module; install it (Debian: sudo apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
  "$PY" -m venv .venv || { rm -rf .venv; exit 1; }  # only a .venv made just now is removed
elif [ ! -x .venv/bin/python ]; then
  echo "bootstrap: .venv exists but .venv/bin/python cannot be run by $(id -un);" \
       "run as the user who made it, or remove .venv" >&2
  exit 1
fi
stamp=.venv/.cohabit-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
fi
