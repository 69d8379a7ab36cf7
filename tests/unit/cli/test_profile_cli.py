"""``cohabit profile database`` input checks that refuse before anything starts (exit 2, a
message naming the option, nothing created). The runs against a real PostgreSQL are in
tests/integration/test_db_profile.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cohabit.cli.main import app

runner = CliRunner()
BASE = ["profile", "database", "--scale", "1", "--rate", "50", "--clients", "2",
        "--p99-ms", "50"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--builtin", "tpcc"], "unknown --builtin 'tpcc'"),
        ([], "exactly one of --builtin or --script"),
        (["--builtin", "tpcb-like", "--script", "x.sql"], "exactly one of"),
        (["--script", "/nonexistent/w.sql"], "cannot read script /nonexistent/w.sql"),
        (["--builtin", "tpcb-like", "--cpu-milli", "400:100"], "--cpu-milli must satisfy"),
        (["--builtin", "tpcb-like", "--memory-mib", "lots"], "--memory-mib must be LO:HI"),
        (["--builtin", "tpcb-like", "--cpu-milli", "5:100"], "CPU range"),
        (["--builtin", "tpcb-like", "--repeats", "1"], "repeats"),
        (["--builtin", "tpcb-like", "--point-seconds", "0.5"], "--point-seconds"),
        (["--builtin", "tpcb-like", "--config", "/nonexistent/pg.conf"], "cannot read --config"),
    ],
    ids=["unknown-builtin", "no-workload", "both", "unreadable-script", "inverted-cpu",
         "bad-memory", "tiny-cpu", "one-repeat", "short-point", "unreadable-config"],
)
def test_bad_input_exits_2_before_starting_anything(tmp_path: Path, extra: list[str],
                                                    message: str) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, [*BASE, *extra, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert not out.exists()
