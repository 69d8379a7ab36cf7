#!/usr/bin/env bash
# The whole test suite on a fresh machine: install, lint (ruff), import contracts
# (import-linter), then pytest. Integration tests start their own servers on loopback
# (see tests/integration/README.md); set COHABIT_SKIP_INTEGRATION=1 to leave them out.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check src tests benchmarks
.venv/bin/lint-imports
args=()
if [ "${COHABIT_SKIP_INTEGRATION:-0}" = 1 ]; then args+=(-m "not integration"); fi
set +e
.venv/bin/python -m pytest "${args[@]}" "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi
exit "$rc"
