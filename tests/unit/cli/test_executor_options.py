"""The commands that take ``--executor``/``--scheduler`` refuse a bad choice (exit 2, naming
the option) before any data is read. The choice itself: tests/unit/test_execution.py."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cohabit.cli.main import app


@pytest.mark.parametrize(
    "argv",
    [["simulate", "--executor", "dask"], ["recommend", "--executor", "dask"],
     ["evaluate", "rightsizing", "--out", "unused", "--executor", "dask"],
     ["evaluate", "interference", "--out", "unused", "--executor", "dask"],
     ["simulate", "--scheduler", "tcp://127.0.0.1:8786"],
     ["recommend", "--executor", "spark", "--scheduler", "tcp://127.0.0.1:8786"]],
    ids=["simulate", "recommend", "evaluate-rightsizing", "evaluate-interference",
         "scheduler-without-dask",
         "unknown-executor"],
)
def test_the_cli_refuses_a_bad_executor_before_reading_data(argv, tmp_path):
    res = CliRunner().invoke(app, [*argv, "--data" if argv[0] != "simulate" else "--pods",
                                   str(tmp_path / "missing")])
    assert res.exit_code == 2, res.output
    assert "--executor" in res.output or "--scheduler" in res.output
    assert "missing" not in res.output  # refused before the data was looked at
