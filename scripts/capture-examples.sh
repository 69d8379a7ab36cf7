#!/usr/bin/env bash
# Regenerate examples/output.md: what `kubectl get` / `kubectl describe` show for the
# examples of examples/README.md, captured from a real kube-apiserver 1.20 (the integration
# tier's; see tests/integration/README.md) by tests/integration/test_walkthrough.py, which
# also fails when the committed capture no longer has the shape of the live output.
# Needs the integration binaries (sudo bash scripts/ci-system-deps.sh) and .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
COHABIT_CAPTURE_EXAMPLES="$PWD/examples/output.md" COHABIT_LOCAL_CLUSTER=1 \
  .venv/bin/python -m pytest -q -p no:cacheprovider \
  "tests/integration/test_walkthrough.py::test_examples_helm_path_standalone" "$@"
echo "wrote examples/output.md"
