"""Sweeps on a real Dask cluster: a ``dask scheduler`` and two ``dask worker`` processes on
loopback, started by the fixture (no in-process cluster).

* ``cohabit simulate --executor dask`` writes the same ``curves.csv`` byte for byte as the
  local process pool;
* a worker killed (SIGKILL, with its nanny) while it runs a cell: the scheduler re-runs the
  cell on the other worker and the matrix equals the local one;
* ``cohabit recommend``, ``cohabit evaluate rightsizing`` and ``cohabit evaluate interference``
  with ``--executor dask`` write the same files as in-process;
* no scheduler at the address, or a scheduler without workers: a one-line error, exit 1,
  within the timeout (no hang).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dask.config
import pandas as pd
import pytest
from dask.utils import funcname, key_split
from typer.testing import CliRunner

from cohabit.cli.main import app
from cohabit.execution import TIMEOUT_CONFIG, Execution, ExecutionError, dask_client
from cohabit.predictors.telemetry_data import PACKAGED_GAVEL
from cohabit.simulator import loaders, matrix
from tests.integration.harness.dask import DaskCluster, start_dask_cluster
from tests.integration.harness.procs import ManagedProcess, free_port

OPENB = "alibaba-gpu-2023"
runner = CliRunner()
CELL_PREFIX = key_split(f"{funcname(matrix._run_cell_dask)}-0")
"""The scheduler's task prefix of a matrix cell (``run_cell_dask``)."""


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCluster]:
    cluster = start_dask_cluster(tmp_path_factory.mktemp("dask"), workers=2)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def slice_files(package_data: Path, tmp_path_factory) -> tuple[Path, Path]:
    """The first 40 GPU nodes and 250 pods of the real openb default list."""
    d = tmp_path_factory.mktemp("slice")
    for src, dst, n in (("openb_node_list_gpu_node.csv", "nodes.csv", 40),
                        ("openb_pod_list_default.csv", "pods.csv", 250)):
        lines = (package_data / OPENB / src).read_text().splitlines(keepends=True)
        (d / dst).write_text("".join(lines[: n + 1]))
    return d / "nodes.csv", d / "pods.csv"


def _simulate(*args: str) -> str:
    res = runner.invoke(app, ["simulate", *args, "--no-progress"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def test_simulate_on_dask_writes_the_local_curves_byte_for_byte(
        dask_cluster, slice_files, tmp_path):
    nodes, pods = slice_files
    common = ["--pods", str(pods), "--nodes", str(nodes), "--policy", "fgd,best-fit,random",
              "--seeds", "42-43"]
    _simulate(*common, "--workers", "2", "--out", str(tmp_path / "local"))
    out = _simulate(*common, "--executor", "dask", "--scheduler", dask_cluster.address,
                    "--out", str(tmp_path / "dask"))
    assert f"on dask {dask_cluster.address}" in out
    local = (tmp_path / "local" / "curves.csv").read_bytes()
    assert len(local.splitlines()) > 6 * 50  # six runs, a row per 1 % step of demand
    assert (tmp_path / "dask" / "curves.csv").read_bytes() == local
    cols = ["workload", "policy", "seed", "arrivals", "failed_pods"]
    runs = [pd.read_csv(tmp_path / d / "runs.csv")[cols] for d in ("local", "dask")]
    pd.testing.assert_frame_equal(*runs)


def _suspicious(address: str) -> int:
    """Times the scheduler saw a matrix cell's worker die while it ran the cell."""
    from distributed import Client

    def count(dask_scheduler) -> int:
        prefix = dask_scheduler.task_prefixes.get(CELL_PREFIX)
        return 0 if prefix is None else prefix.suspicious

    with Client(address, timeout=10, set_as_default=False) as client:
        return int(client.run_on_scheduler(count))


def _kill_a_busy_worker(cluster: DaskCluster, killed: list[str], stop: threading.Event) -> None:
    """Watch the scheduler; SIGKILL the first worker seen running a matrix cell."""
    from distributed import Client

    def busy(dask_scheduler) -> list[str]:
        return [ws.name for ws in dask_scheduler.workers.values()
                if any(ts.prefix.name == CELL_PREFIX for ts in ws.processing)]

    with Client(cluster.address, timeout=10, set_as_default=False) as client:
        while not stop.is_set():
            names = client.run_on_scheduler(busy)
            if names:
                cluster.kill_worker(str(names[0]))
                killed.append(str(names[0]))
                return
            time.sleep(0.05)


@pytest.fixture(scope="module")
def larger_trace(package_data: Path, tmp_path_factory) -> dict:
    """The first 120 GPU nodes and 1,000 pods (a cell takes about a second: long enough to
    be caught running)."""
    d = tmp_path_factory.mktemp("larger")
    for src, dst, n in (("openb_node_list_gpu_node.csv", "nodes.csv", 120),
                        ("openb_pod_list_default.csv", "pods.csv", 1000)):
        lines = (package_data / OPENB / src).read_text().splitlines(keepends=True)
        (d / dst).write_text("".join(lines[: n + 1]))
    trace = loaders.load_trace(d / "pods.csv", d / "nodes.csv")
    return {trace.workload: (trace.nodes, trace.pods, trace.gpu_spec_text)}


def test_a_worker_killed_mid_run_is_retried_and_the_matrix_equals_local(
        dask_cluster, larger_trace):
    (name,) = larger_trace
    cells = matrix.cells("fgd", [name], ["fgd", "best-fit", "dot-product"], [42, 43, 44, 45])
    local = matrix.run_matrix(cells, larger_trace, workers=1, progress=False)
    before = _suspicious(dask_cluster.address)
    killed: list[str] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_a_busy_worker, args=(dask_cluster, killed, stop))
    killer.start()
    try:
        remote = matrix.run_matrix(cells, larger_trace, progress=False,
                                   execution=Execution("dask", dask_cluster.address))
        stop.set()
        killer.join(timeout=30)
        assert killed, "the matrix finished before a worker could be killed"
        assert dask_cluster.workers[killed[0]].proc.poll() is not None
        assert _suspicious(dask_cluster.address) > before  # a running cell was lost, re-run
        assert remote.executor == f"dask {dask_cluster.address}" and remote.workers == 2
        pd.testing.assert_frame_equal(remote.curves, local.curves)
        cols = ["workload", "policy", "seed", "arrivals", "failed_pods"]
        pd.testing.assert_frame_equal(remote.runs[cols], local.runs[cols])
    finally:
        stop.set()
        killer.join(timeout=30)
        for worker in killed:  # the next tests want two workers again
            dask_cluster.start_worker(worker)
        _wait_workers(dask_cluster.address, 2)


def _wait_workers(address: str, n: int) -> None:
    from distributed import Client

    with Client(address, timeout=10, set_as_default=False) as client:
        client.wait_for_workers(n, timeout=180)


@pytest.fixture(scope="module")
def genai_dir(genai_slice) -> Path:
    return genai_slice(4)


@pytest.fixture(scope="module")
def gavel_file(tmp_path_factory) -> Path:
    """The real V100 throughputs of the first 5 Gavel job names: 5 small leave-one-job-out
    folds (each fits forests of 200 trees, so more would cost minutes on a shared CI host)."""
    import ast
    import json

    raw = json.loads((PACKAGED_GAVEL / "physical_cluster_throughputs.json").read_text())
    out = {}
    for gpu in ("v100",):
        names = sorted({ast.literal_eval(k)[0] for k in raw[gpu]})[:5]
        keep = {k: v for k, v in raw[gpu].items() if ast.literal_eval(k)[0] in names}
        out[gpu] = {k: {o: t for o, t in v.items()
                        if o == "null" or ast.literal_eval(o)[0] in names}
                    for k, v in keep.items()}
    path = tmp_path_factory.mktemp("gavel") / "throughputs.json"
    path.write_text(json.dumps(out))
    return path


@pytest.mark.parametrize(
    ("command", "files"),
    [(["recommend"], ["recommendations.csv"]),
     (["evaluate", "rightsizing"], ["rightsizing_summary.csv", "rightsizing_per_pod.csv",
                                    "rightsizing_selection.csv",
                                    "rightsizing_candidates.csv"]),
     (["evaluate", "interference", "--probes", "2"], ["interference_summary.csv",
                                     "interference_predictions.csv"])],
    ids=["recommend", "evaluate-rightsizing", "evaluate-interference"],
)
def test_fleet_back_tests_on_dask_write_the_local_files(
        dask_cluster, genai_dir, gavel_file, tmp_path, command, files):
    data = gavel_file if "interference" in command else genai_dir
    outs = {}
    for name, extra in (("local", []),
                        ("dask", ["--executor", "dask", "--scheduler", dask_cluster.address])):
        outs[name] = tmp_path / name
        res = runner.invoke(app, [*command, "--data", str(data), "--out", str(outs[name]),
                                  *extra], catch_exceptions=False)
        assert res.exit_code == 0, res.output
    for f in files:
        local = (outs["local"] / f).read_bytes()
        assert len(local.splitlines()) > 2, f
        assert (outs["dask"] / f).read_bytes() == local, f


def test_no_scheduler_at_the_address_is_one_line_and_no_hang(slice_files):
    nodes, pods = slice_files
    address = f"tcp://127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    with pytest.raises(ExecutionError, match=f"--scheduler {address}: no Dask scheduler"), \
            dask_client(Execution("dask", address, timeout_s=3)):
        pass
    assert time.monotonic() - t0 < 60
    with dask.config.set({TIMEOUT_CONFIG: "3s"}):  # DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT
        res = runner.invoke(app, ["simulate", "--pods", str(pods), "--nodes", str(nodes),
                                  "--policy", "fgd", "--no-progress", "--executor", "dask",
                                  "--scheduler", address])
    assert res.exit_code == 1
    assert f"error: --scheduler {address}: no Dask scheduler answered within 3 s" in res.output


def test_a_scheduler_without_workers_is_an_error_not_a_hang(tmp_path):
    from tests.integration.harness.dask import dask_command

    port = free_port()
    scheduler = ManagedProcess(
        "lonely-scheduler",
        [dask_command(), "scheduler", "--host", "127.0.0.1", "--port", str(port),
         "--no-dashboard"], tmp_path / "scheduler.log")
    try:
        address = f"tcp://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:  # until the scheduler answers
            try:
                with dask_client(Execution("dask", address, timeout_s=2)):
                    pytest.fail("a scheduler without workers was accepted")
            except ExecutionError as exc:
                if "no Dask worker joined" in str(exc):
                    assert "dask worker" in str(exc)
                    break
                assert time.monotonic() < deadline, str(exc)
    finally:
        scheduler.stop()
