"""Speed of cohabit's placement: per-decision latency, a whole ``--mode fgd`` run as one
process, and one contended replay of a slice.

1. Decision latency: the default list in ``--mode fgd`` (seed 42, tune 1.3, 1,213 nodes),
   every ``schedule_pod`` call timed with ``time.perf_counter`` (wall, which includes time
   the process waits for a core on a loaded machine) and ``time.thread_time`` (CPU spent in
   the decision); p50/p99/max per policy. Target: cohabit p99 <= 2 ms.
2. Whole process: ``cohabit simulate --policy cohabit --seeds 42 --workers 1 --no-progress``
   (interpreter start, imports, loading, run, report). Target: < 10 s on 2 cores.
3. Contended replay of one slice: ``cohabit simulate --mode replay --contention gavel
   --slice 21 --compress 16 --policy cohabit --seeds 42 --workers 1 --no-progress``.
   Target: < 60 s.

The machine is shared: every figure is printed with the load average read just before it.

Usage::

    .venv/bin/python benchmarks/placement_speed.py [--skip-contended] [--latency-only]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
COHABIT = str(Path(sys.executable).with_name("cohabit"))


def load() -> str:
    """The 1-minute load average, as text."""
    return f"{os.getloadavg()[0]:.1f}"


def decision_latency(policy: str) -> dict[str, float]:
    """p50/p99/max milliseconds per ``schedule_pod`` call of one default-list run."""
    from cohabit.engine import scheduling
    from cohabit.placement import typical_pods
    from cohabit.simulator import loaders
    from cohabit.simulator.fgd import run_fgd

    trace = loaders.load_trace(None, None)
    typical = typical_pods(trace.pods, spec_text=list(trace.gpu_spec_text))
    times: list[float] = []
    cpu_times: list[float] = []
    original = scheduling.schedule_pod

    def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        c0, t0 = time.thread_time(), time.perf_counter()
        out = original(*args, **kwargs)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.thread_time() - c0)
        return out

    import cohabit.simulator.fgd as fgd_module

    fgd_module.schedule_pod = timed
    try:
        cpu0 = time.process_time()
        res = run_fgd(trace.nodes, trace.pods, policy=policy, seed=42, typical=typical)
        cpu = time.process_time() - cpu0
    finally:
        fgd_module.schedule_pod = original
    ms = np.array(times) * 1000.0
    cpu_ms = np.array(cpu_times) * 1000.0
    return {"decisions": float(ms.size), "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()),
            "cpu_p50_ms": float(np.percentile(cpu_ms, 50)),
            "cpu_p99_ms": float(np.percentile(cpu_ms, 99)), "cpu_max_ms": float(cpu_ms.max()),
            "run_cpu_s": cpu, "run_wall_s": res.wall_s}


def whole_process(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one ``cohabit`` process."""
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([COHABIT, *args], check=True, stdout=subprocess.DEVNULL, cwd=REPO)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return wall, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-contended", action="store_true")
    ap.add_argument("--policies", default="fgd,cohabit")
    ap.add_argument("--latency-only", action="store_true",
                    help="only the per-decision latency (no whole-process runs)")
    a = ap.parse_args()
    print("| measurement | policy | value | load avg (1 min) before |")
    print("|---|---|---|---|")
    for policy in a.policies.split(","):
        la = load()
        d = decision_latency(policy)
        print(f"| decision latency, default list, 1,213 nodes ({d['decisions']:.0f} pods) "
              f"| {policy} | wall: p50 {d['p50_ms']:.2f} ms, p99 {d['p99_ms']:.2f} ms, "
              f"max {d['max_ms']:.1f} ms; thread CPU: p50 {d['cpu_p50_ms']:.2f} ms, "
              f"p99 {d['cpu_p99_ms']:.2f} ms, max {d['cpu_max_ms']:.1f} ms "
              f"(run CPU {d['run_cpu_s']:.1f} s) | {la} |")
    if a.latency_only:
        return 0
    for policy in a.policies.split(","):
        la = load()
        wall, cpu = whole_process(["simulate", "--policy", policy, "--seeds", "42",
                                   "--workers", "1", "--no-progress"])
        print(f"| whole process `cohabit simulate --policy {policy} --seeds 42 --workers 1` "
              f"| {policy} | {wall:.1f} s wall, {cpu:.1f} s CPU | {la} |")
    if not a.skip_contended:
        la = load()
        wall, cpu = whole_process(["simulate", "--mode", "replay", "--contention", "gavel",
                                   "--slice", "21", "--compress", "16", "--policy", "cohabit",
                                   "--seeds", "42", "--workers", "1", "--no-progress"])
        print(f"| contended replay of one slice (every 21st node, compress 16), whole process "
              f"| cohabit | {wall:.1f} s wall, {cpu:.1f} s CPU | {la} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
