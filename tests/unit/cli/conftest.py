"""Fixtures of the CLI tests: small real slices of the openb trace shipped in the package."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

OPENB = "alibaba-gpu-2023"


@pytest.fixture(scope="session")
def openb_head(package_data: Path, tmp_path_factory) -> Callable[[str, int, str], Path]:
    """``openb_head(name, rows, file_name)``: a CSV file ``file_name`` (its stem is the pod
    list's workload name in ``cohabit simulate``) holding the header and the first ``rows``
    rows of the shipped openb list ``name`` (e.g. ``"openb_pod_list_default.csv"``), bytes
    as shipped; made once per session for each ``(name, rows, file_name)``."""
    made: dict[tuple[str, int, str], Path] = {}

    def head(name: str, rows: int, file_name: str) -> Path:
        key = (name, rows, file_name)
        if key not in made:
            dst = tmp_path_factory.mktemp("openb_head") / file_name
            with open(package_data / OPENB / name, newline="") as fin, \
                    open(dst, "w", newline="") as fout:
                for i, line in enumerate(fin):
                    if i > rows:
                        break
                    fout.write(line)
            made[key] = dst
        return made[key]

    return head
