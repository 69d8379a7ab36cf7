"""The simulator's matrix on this host's process pool and on a loopback Dask cluster.

Runs the same cells (``cohabit simulate --pods published --policy all --seeds ...``: every pod
list the FGD paper published x every policy of ``--policy all`` x the seeds) twice through
:func:`cohabit.simulator.matrix.run_matrix`, the function ``cohabit simulate`` runs:

1. ``local``: the default process pool with ``--workers`` processes;
2. ``dask``: a ``dask scheduler`` and ``--workers`` ``dask worker --nthreads 1`` processes
   started here on 127.0.0.1 (started before the clock starts; their start-up is reported
   apart), through ``--executor dask``.

For each: wall time, the runs' own compute time (the sum of every cell's ``wall_s``, measured
inside the experiment loop), the overhead per task
``(workers x wall - sum of cell times) / cells`` (start-up, shipping traces and results,
scheduling and idle slots, spread over the cells), and the projected wall time of the *full*
matrix on N workers, ``cells_full x (mean cell time + overhead per task) / N``. It checks that
the two ``curves.csv`` texts are identical and prints the load average before and after each
run (the machine is shared; compare the two executors as ratios of the same run).

Usage::

    .venv/bin/python benchmarks/dask_sweep.py             # 13 lists x 10 policies x 10 seeds
    .venv/bin/python benchmarks/dask_sweep.py --seeds 42  # one seed: 130 cells

Prints a markdown table (pasted into docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cohabit.execution import Execution
from cohabit.placement import POLICIES
from cohabit.simulator import loaders, matrix, report

FULL_SEEDS = 10
"""The issue's matrix: ``--seeds 42-51``."""


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LoopbackDask:
    """``dask scheduler`` + ``workers`` single-threaded ``dask worker`` processes on 127.0.0.1."""

    def __init__(self, workers: int, workdir: Path):
        dask = str(Path(sys.executable).with_name("dask"))
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        port = self.address.rsplit(":", 1)[1]
        self.procs = [self._start([dask, "scheduler", "--host", "127.0.0.1", "--port", port,
                                   "--no-dashboard"], workdir / "scheduler.log")]
        for i in range(workers):
            self.procs.append(self._start(
                [dask, "worker", self.address, "--nthreads", "1", "--no-dashboard",
                 "--host", "127.0.0.1", "--local-directory", str(workdir / f"w{i}")],
                workdir / f"w{i}.log"))
        from distributed import Client

        t0 = time.perf_counter()
        with Client(self.address, timeout=120, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=300)
        self.startup_s = time.perf_counter() - t0

    @staticmethod
    def _start(argv: list[str], log: Path) -> subprocess.Popen:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


class _Progress:
    """``on_result`` callback: one stderr line per 5 % of the cells (count, elapsed, load), so a
    run stopped early still tells how far it got."""

    def __init__(self, name: str, total: int):
        self.name, self.total, self.done = name, total, 0
        self.step = max(1, total // 20)
        self.t0 = time.perf_counter()

    def __call__(self, _cell: object, _result: object) -> None:
        self.done += 1
        if self.done % self.step == 0 or self.done == self.total:
            print(f"{self.name}: {self.done}/{self.total} cells, "
                  f"{time.perf_counter() - self.t0:.0f} s, load {_load()}",
                  file=sys.stderr, flush=True)


def _row(name: str, result: matrix.MatrixResult, cells_full: int, load: str) -> dict:
    n = len(result.runs)
    compute = float(result.runs["wall_s"].sum())
    overhead = (result.workers * result.wall_s - compute) / n
    per_task = compute / n + overhead
    return {"executor": name, "workers": result.workers, "cells": n, "wall_s": result.wall_s,
            "compute_s": compute, "mean_cell_s": compute / n, "overhead_per_task_s": overhead,
            "per_task_s": per_task, "cells_full": cells_full, "load": load}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="42-51")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--project", default="2,4,8,16,32,64",
                    help="worker counts to project the full matrix's wall time on")
    args = ap.parse_args()
    from cohabit.cli.simulate import parse_seeds

    seeds = parse_seeds(args.seeds)
    lists = sorted(report.published_curves()["workload"].unique())
    policies = report.policy_order(POLICIES)
    t0 = time.perf_counter()
    traces = {}
    for spec in lists:
        t = loaders.load_trace(spec, None)
        traces[t.workload] = (t.nodes, t.pods, t.gpu_spec_text)
    print(f"loaded {len(traces)} pod lists in {time.perf_counter() - t0:.1f} s", flush=True)
    cells = matrix.cells("fgd", list(traces), policies, seeds)
    cells_full = len(lists) * len(policies) * FULL_SEEDS
    rows, curves = [], {}
    with tempfile.TemporaryDirectory(prefix="cohabit-dask-bench-") as tmp:
        before = _load()
        local = matrix.run_matrix(cells, traces, workers=args.workers, progress=False,
                                  on_result=_Progress("local", len(cells)))
        rows.append(_row("local process pool", local, cells_full, f"{before} -> {_load()}"))
        curves["local"] = local.curves.to_csv(index=False)
        print(rows[-1], flush=True)
        cluster = LoopbackDask(args.workers, Path(tmp))
        try:
            before = _load()
            remote = matrix.run_matrix(cells, traces, progress=False,
                                       on_result=_Progress("dask", len(cells)),
                                       execution=Execution("dask", cluster.address))
            rows.append(_row("dask (loopback)", remote, cells_full, f"{before} -> {_load()}"))
            curves["dask"] = remote.curves.to_csv(index=False)
            print(rows[-1], f"cluster start-up {cluster.startup_s:.1f} s", flush=True)
        finally:
            cluster.stop()
    print(f"\ncells: {len(cells)} ({len(lists)} pod lists x {len(policies)} policies x "
          f"{len(seeds)} seeds); full matrix: {cells_full} cells")
    print(f"curves.csv identical: {curves['local'] == curves['dask']} "
          f"({len(curves['local'].splitlines())} lines)")
    counts = [int(x) for x in args.project.split(",")]
    print("\n| executor | workers | cells | wall s | sum of cell times s | mean cell s "
          "| overhead per task s | load avg 1/5/15 min (before -> after) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['executor']} | {r['workers']} | {r['cells']} | {r['wall_s']:.1f} | "
              f"{r['compute_s']:.1f} | {r['mean_cell_s']:.2f} | {r['overhead_per_task_s']:.3f} | "
              f"{r['load']} |")
    print(f"\nProjected wall time of the full matrix ({cells_full} cells), "
          "cells x (mean cell + overhead per task) / N, minutes:\n")
    print("| executor | " + " | ".join(f"N={n}" for n in counts) + " |")
    print("|---|" + "---:|" * len(counts))
    for r in rows:
        proj = [r["cells_full"] * r["per_task_s"] / n / 60 for n in counts]
        print(f"| {r['executor']} | " + " | ".join(f"{p:.1f}" for p in proj) + " |")


if __name__ == "__main__":
    main()
