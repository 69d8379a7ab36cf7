"""Cost of fleet tuning: one per-workload operating-point selection for a whole fleet.

The operator's opt-in :class:`cohabit.engine.tuning.FleetTuner` re-runs
:func:`cohabit.predictors.select_operating_points` (315 candidates judged on every hourly
horizon of every workload's history, then one Lagrangian allocation under the fleet's
shortfall budget) at most every ``rightsizingTuneIntervalSeconds``, in one background
thread of the operator process. This measures one such run through the tuner itself
(``FleetTuner(background=False)``: the histories it keeps, concatenated, then selected) for
fleets of real GenAI pods tiled to the operator's default Prometheus window (one day at the
trace's ~1-minute steps), for GPU share and GPU memory, and the process's peak resident
memory after each run (the chart's operator limit is 1 GiB).

    .venv/bin/python benchmarks/fleet_tuning.py --data ../shared/data/alibaba-genai-2026
    .venv/bin/python benchmarks/fleet_tuning.py --data ../shared/data/alibaba-genai-2026 \\
        --workloads 100 300 1000
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np
import pandas as pd

from cohabit.engine.tuning import FleetTuner
from predictors_speed import build

STEP = 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="GenAI-schema telemetry directory")
    parser.add_argument("--workloads", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--hours", type=float, default=24.0,
                        help="history per workload (the operator's Prometheus window)")
    args = parser.parse_args()
    t = np.arange(0.0, args.hours * 3600.0, STEP)
    print(f"history per workload: {args.hours:g} h at {STEP:g} s ({len(t)} samples), "
          "GPU share + GPU memory, one thread")
    for n in args.workloads:
        tuner = FleetTuner(interval_s=3600.0, clock=lambda: 0.0, background=False)
        for i, (gpu, mem) in enumerate(build(args.data, n, days=args.hours / 24.0, step=STEP)):
            tuner.observe(f"ns/w{i}/main", pd.DataFrame(
                {"time": t, "gpu_milli": gpu, "gpu_memory_mib": mem}))
        start = time.perf_counter()
        cpu0 = time.process_time()
        if not tuner.maybe_retune() or tuner.current() is None:
            print(f"{n} workloads: the selection did not run", file=sys.stderr)
            return 1
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
        chosen = sum(1 for p in tuner.current().points.values() if p)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{n:5d} workloads: {wall:7.1f} s wall, {cpu:7.1f} s CPU "
              f"({cpu / n:.2f} s per workload), {chosen} with operating points, "
              f"peak RSS {rss:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
