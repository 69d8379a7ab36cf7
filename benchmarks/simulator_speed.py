"""Speed of ``--mode fgd`` on the openb default list, measured as whole processes.

1. For each policy: a fresh ``python -c`` process imports cohabit, loads the embedded
   default trace with the simulator's loaders, and runs
   :func:`cohabit.simulator.fgd.run_fgd` once (seed 42, tune 1.3). The wall time of the whole
   process (interpreter start, imports, loading, run) is reported, with the child's CPU time
   and the run alone. Target on 2 cores: < 3 s per policy.
2. The matrix: ``cohabit simulate --policy all --seeds 42-51 --workers 2`` (6 policies x 10
   seeds) as one process. Target: < 2 minutes.

Usage::

    .venv/bin/python benchmarks/simulator_speed.py              # both, 3 repeats
    .venv/bin/python benchmarks/simulator_speed.py --repeat 1 --no-matrix

Prints a markdown table (pasted into docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

POLICIES = ["random", "dot-product", "gpu-clustering", "gpu-packing", "best-fit", "fgd"]
REPO = Path(__file__).resolve().parents[1]

CHILD = """
import time
t0 = time.perf_counter()
from cohabit.simulator import loaders
from cohabit.simulator.fgd import run_fgd
nodes = loaders.load_nodes({nodes!r})
pods = loaders.load_pods({pods!r}, nodes)
t1 = time.perf_counter()
res = run_fgd(nodes, pods, policy={policy!r}, seed=42, tune=1.3, workload="default")
t2 = time.perf_counter()
alloc = res.curve.set_index("arrived_gpu_demand_pct").loc[130, "gpu_alloc_ratio_pct"]
print(f"{{t1 - t0:.3f}} {{t2 - t1:.3f}} {{res.arrivals}} {{res.failed_pods}} {{alloc:.2f}}")
"""


def _child_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def time_policy(policy: str) -> dict[str, float]:
    """One whole-process run of ``policy``: wall, CPU, load and run seconds."""
    data = REPO / "src" / "cohabit" / "data" / "alibaba-gpu-2023"
    code = CHILD.format(nodes=str(data / "openb_node_list_gpu_node.csv"),
                        pods=str(data / "openb_pod_list_default.csv"), policy=policy)
    cpu0 = _child_cpu()
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, cwd=REPO)
    wall = time.perf_counter() - t0
    cpu = _child_cpu() - cpu0
    load_s, run_s, arrivals, failed, alloc = out.stdout.split()
    return {"wall": wall, "cpu": cpu, "load": float(load_s), "run": float(run_s),
            "arrivals": int(arrivals), "failed": int(failed), "alloc130": float(alloc)}


def time_matrix(workers: int) -> tuple[float, float, list[str]]:
    """Wall and CPU seconds of the 6 x 10 matrix through the CLI."""
    exe = shutil.which("cohabit", path=str(Path(sys.executable).parent)) or "cohabit"
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [exe, "simulate", "--policy", "all", "--seeds", "42-51", "--workers",
               str(workers), "--no-progress", "--out", tmp]
        cpu0 = _child_cpu()
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO,
                       env={**os.environ, "COLUMNS": "200"})
        return time.perf_counter() - t0, _child_cpu() - cpu0, cmd


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--policies", default=",".join(POLICIES))
    ap.add_argument("--matrix", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)

    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}\n")
    print("| policy | whole process wall, s (median of "
          f"{args.repeat}) | child CPU, s | import+load, s | run_fgd, s | arrivals | failed "
          "| alloc @130%, % |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for policy in args.policies.split(","):
        runs = [time_policy(policy) for _ in range(args.repeat)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"| {policy} | {med['wall']:.2f} | {med['cpu']:.2f} | {med['load']:.2f} | "
              f"{med['run']:.2f} | {int(med['arrivals'])} | {int(med['failed'])} | "
              f"{med['alloc130']:.2f} |")
    if args.matrix:
        wall, cpu, cmd = time_matrix(args.workers)
        print(f"\nmatrix `{' '.join(Path(c).name if i == 0 else c for i, c in enumerate(cmd))}`"
              f": wall {wall:.1f} s, CPU {cpu:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
