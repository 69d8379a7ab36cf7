"""Property tests of the CLI options: any value ends in a result or exit 2 with a clear error.

Each example runs the real ``cohabit`` app in-process (``typer.testing.CliRunner``) on small
real inputs: ``simulate`` on 40 nodes and 120 pods of the shipped openb lists (one worker, so
runs take milliseconds), ``evaluate``/``recommend`` on a two-pod GenAI-schema directory whose
GPU samples are all 0, so that options that pass their checks run through the data checks
(horizon count, idle fleet) and stop there instead of fitting estimators for seconds. The
property: exit code 0 (simulate only: a table was printed) or 2 with ``error:`` or Typer's
usage error naming the option, never another code, a traceback or a hang.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cohabit.cli.main import app
from cohabit.cli.simulate import UsageError, parse_seeds

runner = CliRunner()
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def tiny_trace(openb_head) -> tuple[Path, Path]:
    return (openb_head("openb_node_list_gpu_node.csv", 40, "nodes.csv"),
            openb_head("openb_pod_list_default.csv", 120, "pods.csv"))


@pytest.fixture(scope="module")
def idle_telemetry(tmp_path_factory) -> Path:
    """Two pods, 130 samples 57 s apart (about 2 h), every GPU sample 0."""
    d = tmp_path_factory.mktemp("idle")
    rows = [(1000 + 57 * i, 0.0, f"pod{p}") for p in range(2) for i in range(130)]
    for stem in ("pod_gpu_duty_cycle_anon", "pod_gpu_memory_used_bytes_anon"):
        pd.DataFrame(rows, columns=["timestamp_anon", "value", "container_ip"]).to_csv(
            d / f"{stem}.csv", index=False)
    return d


FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["0", "-1", "0.0001", "0.5", "1", "1.5", "2", "1e400", "nan", "inf", "x"]),
)


def _assert_clean(result, *, ok_codes=(0, 2)) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.output, result.exception)
    assert "Traceback" not in result.output
    assert result.exit_code in ok_codes, result.output
    if result.exit_code == 2:
        text = result.output
        assert "error:" in text or "Invalid value" in text or "No such option" in text, text
        event("exit 2")
    else:
        event(f"exit {result.exit_code}")


def _small_seeds(text: str) -> bool:
    try:
        return len(parse_seeds(text)) <= 3
    except UsageError:
        return True


def _option(draw, good, bad):
    """A well-formed value, or (one time in four) anything."""
    return draw(bad if draw(st.integers(0, 3)) == 0 else good)


@st.composite
def simulate_options(draw) -> list[str]:
    args = [
        "--tune", _option(draw, st.sampled_from(["0.9", "1.3", "2", "10"]), FLOATS),
        "--seeds", _option(draw, st.sampled_from(["42", "42-43", "1,2,1"]),
                           st.one_of(st.sampled_from(["43-42", "-1", "x", "", "99999999999"]),
                                     st.text(max_size=8))),
        "--policy", _option(draw, st.sampled_from(["fgd", "best-fit,fgd", "random", "cohabit"]),
                            st.one_of(st.sampled_from(["nope", "", ",", "paper,all"]),
                                      st.text(max_size=8))),
        "--mode", _option(draw, st.sampled_from(["fgd", "replay"]), st.text(max_size=6)),
        "--workers", _option(draw, st.just("1"), st.sampled_from(["0", "-3", "x", "1.5"])),
    ]
    if draw(st.booleans()):
        args += ["--sample-every",
                 _option(draw, st.sampled_from(["3600", "86400"]), FLOATS)]
    return args


@settings(SETTINGS, max_examples=20)
@given(options=simulate_options(), out=st.integers(0, 5))
def test_simulate_options(tiny_trace, tmp_path, options, out):
    seeds = options[options.index("--seeds") + 1]
    assume(_small_seeds(seeds))
    nodes, pods = tiny_trace
    args = ["simulate", "--pods", str(pods), "--nodes", str(nodes), "--no-progress", *options]
    out_dir = Path(tempfile.mkdtemp(dir=tmp_path)) / "out"
    if out == 0:  # plots take a second: one example in six writes files
        args += ["--out", str(out_dir)]
    result = runner.invoke(app, args)
    _assert_clean(result)
    if result.exit_code == 0:
        assert "run(s) in" in result.output
        if out == 0:
            assert (out_dir / "summary.json").is_file()
    elif out_dir.exists():
        assert not any(out_dir.iterdir())  # a failed run leaves no file


@SETTINGS
@given(horizon=FLOATS, start=FLOATS, half_life=FLOATS)
def test_evaluate_rightsizing_options(idle_telemetry, tmp_path, horizon, start, half_life):
    result = runner.invoke(app, [
        "evaluate", "rightsizing", "--data", str(idle_telemetry), "--out", str(tmp_path / "o"),
        "--horizon-h", horizon, "--start", start, "--evidence-half-life-h", half_life])
    _assert_clean(result, ok_codes=(2,))
    valid = _finite(horizon, lambda h: h > 0) and _finite(start, lambda s: 0 < s < 1)
    valid = valid and _finite(half_life, lambda h: h >= 0)
    if valid and float(horizon) > 0.01:
        assert "idle" in result.output  # options passed; the data check stopped it


@SETTINGS
@given(fit_fraction=FLOATS, peak_target=FLOATS)
def test_evaluate_peaks_options(tmp_path, fit_fraction, peak_target):
    result = runner.invoke(app, [
        "evaluate", "peaks", "--data", str(tmp_path / "absent"), "--out", str(tmp_path / "o"),
        "--fit-fraction", fit_fraction, "--peak-target", peak_target])
    _assert_clean(result, ok_codes=(2,))
    valid = _finite(fit_fraction, lambda f: 0 < f < 1)
    valid = valid and _finite(peak_target, lambda p: 0 <= p <= 1)
    assert ("telemetry directory does not exist" in result.output) == valid, result.output


@SETTINGS
@given(horizon=FLOATS, half_life=FLOATS)
def test_recommend_options(idle_telemetry, horizon, half_life):
    result = runner.invoke(app, [
        "recommend", "--data", str(idle_telemetry), "--horizon-h", horizon,
        "--evidence-half-life-h", half_life])
    _assert_clean(result, ok_codes=(2,))


@SETTINGS
@given(probes=st.one_of(st.integers(-2, 5).map(str), st.text(max_size=3)),
       gpu=st.one_of(st.sampled_from(["v100", "k80"]), st.text(max_size=5)))
def test_evaluate_interference_options(tmp_path, probes, gpu):
    bad = tmp_path / "gavel.json"
    bad.write_text('{"v100": []}')
    result = runner.invoke(app, [
        "evaluate", "interference", "--data", str(bad), "--out", str(tmp_path / "o"),
        "--probes", probes, "--gpu", gpu])
    _assert_clean(result, ok_codes=(2,))


def _finite(text: str, ok) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value) and ok(value)
