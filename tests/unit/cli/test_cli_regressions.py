"""One regression test per CLI/loader item of issue 9 ("silent wrong numbers and crashes in
the CLIs"); docs/reliability.md lists each input with its behaviour before and now.

Every input is real where a real file exists (the shipped openb lists and their rows);
the GenAI-schema directories are small files written here with the schema's columns.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cohabit.cli.main import app
from cohabit.cli.simulate import UsageError, parse_seeds
from cohabit.placement import typical_pods
from cohabit.predictors.evaluation import evaluate_rightsizing
from cohabit.predictors.peaks import evaluate_correlation, evaluate_peaks
from cohabit.simulator import loaders
from cohabit.simulator.loaders import TraceError
from cohabit.simulator.report import staged_dir

OPENB = "alibaba-gpu-2023"
runner = CliRunner()
pytestmark = pytest.mark.timeout(120)  # the items that looped forever must stop


def _run(*args: str):
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def _lines(path: Path, n: int) -> list[str]:
    return path.read_text().splitlines()[: n + 1]


@pytest.fixture(scope="module")
def gpuspec25(package_data: Path) -> Path:
    return package_data / OPENB / "openb_pod_list_gpuspec25.csv"


@pytest.fixture(scope="module")
def small_cluster(tmp_path_factory) -> Path:
    """Two real-shaped nodes of 8 V100M32 GPUs."""
    path = tmp_path_factory.mktemp("nodes") / "nodes.csv"
    path.write_text("sn,cpu_milli,memory_mib,gpu,model\n"
                    "n1,64000,262144,8,V100M32\nn2,64000,262144,8,V100M32\n")
    return path


def _telemetry(d: Path, duty, memory, pods: int = 2, n: int = 130) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for stem, fn in (("pod_gpu_duty_cycle_anon", duty),
                     ("pod_gpu_memory_used_bytes_anon", memory)):
        rows = [(1000 + 57 * i, fn(p, i), f"pod{p}") for p in range(pods) for i in range(n)]
        pd.DataFrame(rows, columns=["timestamp_anon", "value", "container_ip"]).to_csv(
            d / f"{stem}.csv", index=False)
    return d


def _busy(p: int, i: int) -> float:
    return 20.0 + (7 * i + 13 * p) % 40


def _busy_memory(p: int, i: int) -> float:
    return 1e9 + 1e7 * ((11 * i + p) % 50)


# ------------------------------------------------------------- simulator: gpu_spec re-read


@pytest.mark.parametrize("damage", ["spaced header", "trailing row of commas"])
def test_gpu_spec_groups_come_from_the_validated_rows(gpuspec25, tmp_path, damage):
    """Before: the raw re-read kept ' gpu_spec' (spaces) or an extra empty row (commas), so
    the typical pods fell back to sets: fgd 95.12 % / 93.98 % instead of 93.82 %."""
    lines = gpuspec25.read_text().splitlines()
    if damage == "spaced header":
        lines[0] = ", ".join(lines[0].split(","))
    else:
        lines.append("," * lines[0].count(","))
    path = tmp_path / "gpuspec25.csv"
    path.write_text("\n".join(lines) + "\n")
    clean = loaders.load_trace(gpuspec25)
    damaged = loaders.load_trace(path)
    assert damaged.pods == clean.pods
    assert damaged.gpu_spec_text == clean.gpu_spec_text  # what run_matrix receives
    assert len(typical_pods(list(damaged.pods), spec_text=list(damaged.gpu_spec_text))) == 113


# ------------------------------------------------------------------- loaders: pod rows


@pytest.mark.parametrize(("num_gpu", "gpu_milli", "field", "fragment"), [
    ("0.0", "500", "num_gpu", "0 but gpu_milli is 500"),  # before: a CPU-only pod
    ("1", "0.0", "gpu_milli", "0 but num_gpu is 1"),  # before: failed later, no file/line
])
def test_gpu_zero_checks_compare_numbers(small_cluster, tmp_path, num_gpu, gpu_milli, field,
                                         fragment):
    pods = tmp_path / "pods.csv"
    pods.write_text("name,cpu_milli,memory_mib,num_gpu,gpu_milli\n"
                    f"p1,1000,1024,1,500\np2,1000,1024,{num_gpu},{gpu_milli}\n")
    result = _run("simulate", "--pods", str(pods), "--nodes", str(small_cluster))
    assert result.exit_code == 2
    assert f"{pods}: line 3, field {field}: {fragment}" in result.output


def test_pod_phase_is_validated(package_data, tmp_path):
    rows = _lines(package_data / OPENB / "openb_pod_list_default.csv", 4)
    rows[2] = rows[2].replace(",Running,", ",Runing,").replace(",Failed,", ",Runing,")
    path = tmp_path / "pods.csv"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(TraceError, match="line 3, field pod_phase: 'Runing' is not one of"):
        loaders.load_trace(path)


def test_trailing_comma_on_every_row_loads_the_same_pods(package_data, tmp_path):
    """Before: pandas took the first column for an index and named shifted fields."""
    rows = _lines(package_data / OPENB / "openb_pod_list_default.csv", 5)
    plain, trailing = tmp_path / "plain.csv", tmp_path / "trailing.csv"
    plain.write_text("\n".join(rows) + "\n")
    trailing.write_text("\n".join([rows[0]] + [r + "," for r in rows[1:]]) + "\n")
    assert loaders.load_trace(trailing).pods == loaders.load_trace(plain).pods
    trailing.write_text("\n".join([rows[0]] + [r + ",x" for r in rows[1:]]) + "\n")
    with pytest.raises(TraceError, match="line 2: 12 fields where the header has 11"):
        loaders.load_trace(trailing)


# ------------------------------------------------ simulate: runs that measure nothing


def test_pod_needing_more_gpus_than_any_node(small_cluster, tmp_path):
    """Before: a table of dashes and exit 0; with --out a matplotlib traceback after three
    CSV files were written."""
    pods = tmp_path / "big.csv"
    pods.write_text("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np1,1000,1024,16,1000\n")
    out = tmp_path / "out"
    result = _run("simulate", "--pods", str(pods), "--nodes", str(small_cluster),
                  "--out", str(out))
    assert result.exit_code == 2
    assert "p1 needs 16 GPUs; the largest such node has 8" in result.output
    assert not any(out.iterdir())


def test_tune_below_the_reported_steps(tmp_path):
    result = _run("simulate", "--tune", "0.01", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "--tune 0.01 stops arrivals at 1% of the cluster's GPU capacity" in result.output
    assert not any((tmp_path / "out").iterdir())


def test_run_reaching_no_reported_step_writes_nothing(small_cluster, tmp_path):
    pods = tmp_path / "coarse.csv"
    pods.write_text("name,cpu_milli,memory_mib,num_gpu,gpu_milli\n"
                    "p1,1000,1024,1,500\np2,1000,1024,1,300\np3,1000,1024,2,1000\n")
    out = tmp_path / "out"
    result = _run("simulate", "--pods", str(pods), "--nodes", str(small_cluster),
                  "--tune", "0.9", "--policy", "fgd", "--out", str(out), "--no-progress")
    assert result.exit_code == 2
    assert "nothing measured: arrivals stopped at" in result.output
    assert not any(out.iterdir())


def test_staged_output_leaves_nothing_when_writing_fails(tmp_path):
    with pytest.raises(RuntimeError), staged_dir(tmp_path) as stage:
        (stage / "curves.csv").write_text("a\n")
        raise RuntimeError("plot failed")
    assert list(tmp_path.iterdir()) == []
    with staged_dir(tmp_path) as stage:
        (stage / "curves.csv").write_text("a\n")
    assert [p.name for p in tmp_path.iterdir()] == ["curves.csv"]


def test_replay_sampling_that_would_not_end(tmp_path):
    result = _run("simulate", "--mode", "replay", "--sample-every", "1")
    assert result.exit_code == 2
    assert "samples per run (at most 100,000); raise --sample-every" in result.output


# ------------------------------------------------------------------ evaluate / recommend


@pytest.mark.parametrize("horizon", ["0", "-1", "nan"])
def test_rightsizing_horizon_must_be_positive(tmp_path, horizon):
    """Before: --horizon-h 0 or negative looped forever."""
    started = time.monotonic()
    result = _run("evaluate", "rightsizing", "--out", str(tmp_path), "--horizon-h", horizon)
    assert result.exit_code == 2
    assert f"--horizon-h must be > 0 (a finite number), got {horizon}" in result.output
    assert time.monotonic() - started < 30
    frame = pd.DataFrame({"pod": ["a"] * 3, "time": [0.0, 1.0, 2.0], "gpu_milli": [1.0] * 3})
    with pytest.raises(ValueError, match="horizon_s must be > 0"):
        evaluate_rightsizing(frame, ["gpu_milli"], horizon_s=float(horizon) * 3600)


def test_rightsizing_start_is_a_fraction(tmp_path):
    """Before: --start 2 ended in an IndexError traceback after about a minute."""
    result = _run("evaluate", "rightsizing", "--out", str(tmp_path), "--start", "2")
    assert result.exit_code == 2
    assert "--start must be > 0 and < 1 (a finite number), got 2" in result.output


def test_rightsizing_horizon_count_is_bounded(tmp_path):
    data = _telemetry(tmp_path / "busy", _busy, _busy_memory)
    result = _run("evaluate", "rightsizing", "--data", str(data), "--out", str(tmp_path / "o"),
                  "--horizon-h", "0.0001")
    assert result.exit_code == 2
    assert "horizons (at most 10,000" in result.output


@pytest.mark.parametrize("fraction", ["0", "1.5"])
def test_peaks_fit_fraction_is_a_fraction(tmp_path, fraction):
    """Before: 0 ended in a scikit-learn traceback, 1.5 in an IndexError."""
    result = _run("evaluate", "peaks", "--out", str(tmp_path), "--fit-fraction", fraction)
    assert result.exit_code == 2
    assert f"--fit-fraction must be > 0 and < 1 (a finite number), got {fraction}" in result.output
    frame = pd.DataFrame({"pod": ["a"], "time": [0.0], "gpu_milli": [1.0]})
    with pytest.raises(ValueError, match="fit_fraction must be between 0 and 1"):
        evaluate_peaks(frame, fit_fraction=float(fraction))
    with pytest.raises(ValueError, match="fit_fraction must be between 0 and 1"):
        evaluate_correlation(frame, fit_fraction=float(fraction))


@pytest.mark.parametrize("command", [("evaluate", "rightsizing"), ("evaluate", "peaks"),
                                     ("recommend",)])
def test_telemetry_with_an_infinite_value(tmp_path, command):
    data = _telemetry(tmp_path / "inf", lambda p, i: float("inf") if i == 50 else _busy(p, i),
                      _busy_memory)
    result = _run(*command, "--data", str(data), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2
    duty = data / "pod_gpu_duty_cycle_anon.csv"
    assert f"{duty}: line 52, column 'value': not a finite number: inf" in result.output


@pytest.mark.parametrize("command", [("evaluate", "rightsizing"), ("recommend",)])
def test_idle_telemetry_is_said_not_crashed_on(tmp_path, command):
    """Before: ZeroDivisionError in the nested selection."""
    data = _telemetry(tmp_path / "idle", lambda p, i: 0.0, lambda p, i: 0.0)
    result = _run(*command, "--data", str(data), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert "is 0 or missing (an idle fleet): nothing to size" in result.output
    assert not any((tmp_path / "o").iterdir())


@pytest.mark.parametrize(("value", "shown"), [(-50.0, "-50"), (1e300, "1e+300")])
def test_recommend_rejects_impossible_usage(tmp_path, value, shown):
    """Before: a negative peak, or a 2e301 request, printed and written."""
    data = _telemetry(tmp_path / "bad", lambda p, i: value if i == 7 else _busy(p, i),
                      _busy_memory)
    result = _run("recommend", "--data", str(data), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2
    duty = data / "pod_gpu_duty_cycle_anon.csv"
    assert f"{duty}: line 9, column 'value': outside 0..100: {shown}" in result.output
    assert not (tmp_path / "o" / "recommendations.csv").exists()


# ---------------------------------------------------------------- nodes beyond reason


@pytest.mark.parametrize(("cells", "field", "fragment"), [
    ("64000,262144,100000000,V100M32", "gpu", "100000000 is outside 0..128"),
    ("1e30,262144,4,V100M32", "cpu_milli", "1e30 is outside 0..1000000000"),
])
def test_huge_nodes_are_refused_with_line_and_field(small_cluster, tmp_path, cells, field,
                                                    fragment):
    """Before: 100,000,000 GPUs exhausted memory, cpu 1e30 overflowed, neither named."""
    nodes = tmp_path / "nodes.csv"
    nodes.write_text(f"sn,cpu_milli,memory_mib,gpu,model\nn1,64000,262144,8,V100M32\n"
                     f"n2,{cells}\n")
    result = _run("simulate", "--nodes", str(nodes))
    assert result.exit_code == 2
    assert f"{nodes}: line 3, field {field}: {fragment}" in result.output


# ----------------------------------------------------------------- markup and seeds


def test_paths_with_brackets_are_printed_as_given(package_data, small_cluster, tmp_path):
    """Before: '[red]' was swallowed as markup and '[/red]' raised rich's MarkupError."""
    for name in ("a[red]b", "c[/red]d"):
        folder = tmp_path / name
        folder.mkdir(parents=True)
        pods = folder / "pods[bold].csv"
        pods.write_text("\n".join(_lines(package_data / OPENB / "openb_pod_list_default.csv",
                                         30)) + "\n")
        result = _run("simulate", "--pods", str(pods), "--nodes", str(small_cluster),
                      "--policy", "fgd", "--no-progress")
        assert result.exit_code == 0, result.output
        assert f"({pods}; nodes {small_cluster})" in result.output.replace("\n", "")
        result = _run("evaluate", "peaks", "--data", str(folder), "--out", str(tmp_path / "o"))
        assert result.exit_code == 2
        assert f"error: {folder}: required metric file" in result.output


def test_parse_seeds_is_linear():
    """Before: each seed was looked up in a list (20,000 comma seeds: 12 s)."""
    def best_of_three(n: int) -> float:
        text = ",".join(str(i) for i in range(n))
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            assert parse_seeds(text) == list(range(n))
            times.append(time.perf_counter() - t0)
        return min(times)

    small, large = best_of_three(2500), best_of_three(10_000)
    assert large / small < 8  # linear: about 4; quadratic: about 16
    with pytest.raises(UsageError, match="more than 10,000 seeds"):
        parse_seeds("0-5000,6000-12000")


@pytest.mark.parametrize("args", [("operator", "--metrics-port", "0"),
                                  ("run", "--liveness-port", "-1"),
                                  ("agent", "--port", "70000")])
def test_ports_out_of_range_exit_2(args):
    """Before: agent --port 70000 ended in OverflowError: bind(): port must be 0-65535."""
    result = _run(*args)
    assert result.exit_code == 2
    assert f"error: {args[1]} must be a TCP port within 1..65535, got {args[2]}" in result.output
