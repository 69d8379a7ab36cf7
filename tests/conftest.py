"""Shared pytest configuration: paths to the real data the tests use, and real slices of it."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
PACKAGE_DATA = REPO / "src" / "cohabit" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout (real public traces); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is not beside the checkout")
    return SHARED_DATA


@pytest.fixture(scope="session")
def package_data() -> Path:
    """The data shipped inside the package (openb trace, FGD published curves)."""
    return PACKAGE_DATA


@pytest.fixture(scope="session")
def genai_slice(tmp_path_factory) -> Callable[[int], Path]:
    """``pods -> directory``: a new directory holding the first ``pods`` pods (sorted by
    ``container_ip``) of the GenAI telemetry shipped in the package, every file in the same
    schema (a real slice for the CLI and back-test tests)."""
    from cohabit.predictors.telemetry_data import PACKAGED_GENAI

    def write(pods: int) -> Path:
        data = tmp_path_factory.mktemp("genai") / "data"
        data.mkdir()
        keep = None
        for f in sorted(PACKAGED_GENAI.glob("*.csv.gz")):
            df = pd.read_csv(f)
            if keep is None:
                keep = sorted(df["container_ip"].dropna().unique())[:pods]
            with gzip.open(data / f.name, "wt") as fh:
                df[df["container_ip"].isin(keep)].to_csv(fh, index=False)
        return data

    return write
