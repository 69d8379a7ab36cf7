"""The operator's actuator in its own process, so a test can SIGKILL it mid-eviction.

Usage: ``python -m tests.integration.eviction_driver KUBECONFIG`` (from the repository
root), then one JSON line on standard input with
``ledger``, ``pods``, ``budget``, ``timeout``, ``grace`` (so a test can start it ahead of
time). Prints ``{"ready": true}`` once the client is built, then one JSON line per outcome
(flushed at once, so outcomes before a kill are not lost).
"""

from __future__ import annotations

import json
import sys

from tests.integration.eviction_support import client_for, run_pass


def main() -> int:
    api = client_for(sys.argv[1])
    print(json.dumps({"ready": True}), flush=True)
    cfg = json.loads(sys.stdin.readline())

    def emit(outcome: dict[str, str]) -> None:
        print(json.dumps(outcome), flush=True)

    run_pass(api, cfg["ledger"], cfg["pods"], cfg["budget"], cfg["timeout"], cfg["grace"],
             emit)
    api.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
