"""pgbench per-transaction logs (recorded from real runs of this project's PostgreSQL 15) and
their summary: latency from the scheduled start, skipped/unstarted transactions as
infinitely late, and the bad-input errors of LoadSpec."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from cohabit.profiling import LoadSpec, ProfilingError, parse_logs, summarize

DATA = Path(__file__).parent / "data"


def _logs(stem: str) -> list[Path]:
    return sorted(DATA.glob(stem + ".*"))


def test_parse_real_log_of_a_run_within_capacity() -> None:
    lat, lag, end, skipped, failed = parse_logs(_logs("pgbench_log_R60_L1000"))
    assert (skipped, failed) == (0, 0)
    assert lat.size == 190  # the run's own report: 190 transactions processed
    assert np.all(lat >= lag)  # latency is measured from the scheduled start
    assert np.all(np.diff(np.sort(end)) >= 0) and end.max() - end.min() < 4


def test_parse_real_overloaded_log_counts_skipped_lines() -> None:
    lat, lag, _, skipped, failed = parse_logs(_logs("pgbench_log_R400_L40"))
    assert skipped == 834 and failed == 0 and lat.size == 324


def test_summary_of_a_run_within_capacity_is_the_plain_p99() -> None:
    lat, lag, _, skipped, failed = parse_logs(_logs("pgbench_log_R60_L1000"))
    run = summarize(lat, lag, skipped, failed, seconds=3, rate_tps=60,
                    latency_limit_ms=1000)
    assert run.unstarted == 0 and run.late == 0
    assert run.p99_ms == pytest.approx(np.quantile(lat / 1000, 0.99, method="inverted_cdf"))
    assert run.p50_ms < run.p99_ms
    assert run.tps == pytest.approx(190 / 3)


def test_summary_of_an_overloaded_run_is_infinitely_late() -> None:
    lat, lag, _, skipped, failed = parse_logs(_logs("pgbench_log_R400_L40"))
    run = summarize(lat, lag, skipped, failed, seconds=3, rate_tps=400, latency_limit_ms=40)
    assert math.isinf(run.p99_ms) and math.isinf(run.p50_ms)  # 72 % were skipped
    assert run.late == int((lat / 1000 > 40).sum()) > 0


def test_transactions_that_never_started_count_as_late() -> None:
    lat, lag, _, skipped, failed = parse_logs(_logs("pgbench_log_R60_L1000"))
    # The same 190 transactions judged against an offered 120 TPS: half never started.
    run = summarize(lat, lag, skipped, failed, seconds=3, rate_tps=120, latency_limit_ms=None)
    in_flight = 120 * np.quantile(lat, 0.99) / 1e6
    assert run.unstarted == int(math.floor(360 - 3 * math.sqrt(360) - in_flight)) - 190
    assert math.isinf(run.p99_ms)


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "log.1"
    bad.write_text("0 1 1200 0 1795954147 465146 73\n0 2 x 0 1795954147 465188 0\n")
    with pytest.raises(ProfilingError, match=r"log\.1:2"):
        parse_logs([bad])


def test_latency_below_schedule_lag_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "log.1"
    bad.write_text("0 1 50 0 1795954147 465146 73\n")
    with pytest.raises(ProfilingError, match="scheduled start"):
        parse_logs([bad])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"builtin": "tpcc"}, "unknown pgbench builtin"),
        ({"script": Path("/nonexistent/x.sql")}, "cannot read script"),
        ({"builtin": "tpcb-like", "scale": 0}, "scale must be"),
        ({"builtin": "tpcb-like", "rate_tps": 0.0}, "rate must be"),
        ({"builtin": "tpcb-like", "clients": 0}, "clients must be"),
    ],
    ids=["unknown-builtin", "unreadable-script", "scale", "rate", "clients"],
)
def test_load_spec_rejects_bad_input(kwargs: dict, message: str) -> None:
    with pytest.raises(ProfilingError, match=message):
        LoadSpec.of(**kwargs)


def test_empty_script_is_refused(tmp_path: Path) -> None:
    script = tmp_path / "empty.sql"
    script.write_text("\n")
    with pytest.raises(ProfilingError, match="empty"):
        LoadSpec.of(script=script)
