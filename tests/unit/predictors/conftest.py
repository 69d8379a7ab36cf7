"""Fixtures of the predictor tests."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from cohabit.predictors.telemetry_data import PACKAGED_GENAI


@pytest.fixture
def genai_slice(tmp_path) -> Callable[[int], Path]:
    """``pods -> directory``: the first ``pods`` pods of the shipped GenAI subset, every file
    in the same schema (a real slice for the CLI tests)."""

    def write(pods: int) -> Path:
        data = tmp_path / "genai"
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
