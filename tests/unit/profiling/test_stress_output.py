"""Parsing stress-ng's --metrics-brief output (lines recorded from stress-ng 0.15.06 on this
project's machine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cohabit.profiling import ProfilingError
from cohabit.profiling.stress import parse_probe

DATA = Path(__file__).parent / "data"


def _text(name: str) -> str:
    return (DATA / f"stress_{name}.txt").read_text()



@pytest.mark.parametrize(
    ("resource", "text", "value"),
    [("cpu", "cpu", 208.85), ("disk", "hdd", 523.38),
     ("membw", "memrate", (2718.49 * 2978.02) ** 0.5)],
)
def test_probe_throughput(resource: str, text: str, value: float) -> None:
    assert parse_probe(resource, _text(text)) == pytest.approx(value)


def test_missing_metrics_line_is_an_error() -> None:
    with pytest.raises(ProfilingError, match="no cpu metrics"):
        parse_probe("cpu", "stress-ng: info: [1] dispatching hogs: 1 cpu\n")
