#!/usr/bin/env bash
# The main job on a fresh machine: install cohabit into .venv and run the simulator on the
# embedded default trace (openb GPU nodes + default pod list, FGD method). Extra arguments
# go to `cohabit simulate`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/cohabit simulate "$@"
