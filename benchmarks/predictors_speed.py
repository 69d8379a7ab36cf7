"""Speed: fit + predict right-sizing for 1,000 workloads x 8 days of 1-minute samples.

Workloads are built from the real GenAI pods (GPU duty cycle and GPU memory), each pod's
22.8 h series tiled to 8 days and resampled to 1-minute steps, cycling through the pods with
a per-workload phase shift. Each workload gets a JustEnoughEstimator and a VpaRecommender
fit + predict for both GPU share and GPU memory (4 fits per workload). The target is 60 s on
the project's 2-core machine; the run uses ``--jobs`` worker processes (default 2).

    .venv/bin/python benchmarks/predictors_speed.py --data ../shared/data/alibaba-genai-2026
    .venv/bin/python benchmarks/predictors_speed.py --data ../shared/data/alibaba-genai-2026 \
        --growth-h 1   # GPU memory with the peak-growth term
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from cohabit.predictors import JustEnoughEstimator, VpaRecommender, load_genai

DAYS = 8
STEP = 60.0


def build(data: str, n: int, days: float = DAYS,
          step: float = STEP) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` workloads of ``days`` at ``step`` seconds from the real GenAI pods: each pod's
    series tiled and resampled, cycling through the pods with a per-workload phase shift.

    Returns:
        ``(gpu_milli, gpu_memory_mib)`` arrays per workload, each of shape ``(days * 86400 /
        step,)``, on the time grid ``np.arange(0, days * 86400, step)``.
    """
    frame = load_genai(data)
    bases = []
    for _, g in frame.groupby("pod"):
        g = g.dropna(subset=["gpu_milli", "gpu_memory_mib"])
        if len(g) >= 1000:
            bases.append(g[["time", "gpu_milli", "gpu_memory_mib"]].to_numpy(float))
    t = np.arange(0.0, days * 86400.0, step)
    out = []
    for i in range(n):
        base = bases[i % len(bases)]
        span = base[-1, 0] - base[0, 0]
        pos = ((t + i * 977.0) % span) + base[0, 0]
        gpu = np.interp(pos, base[:, 0], base[:, 1])
        mem = np.interp(pos, base[:, 0], base[:, 2])
        out.append((gpu, mem))
    return out


def work(args: tuple[list[tuple[np.ndarray, np.ndarray]], float | None]) -> int:
    chunk, growth = args
    t = np.arange(0.0, DAYS * 86400.0, STEP)[:, None]
    done = 0
    for gpu, mem in chunk:
        for resource, y in (("gpu_milli", gpu), ("gpu_memory_mib", mem)):
            g = growth if resource == "gpu_memory_mib" else None
            JustEnoughEstimator(resource=resource, growth_horizon_s=g).fit(t, y).predict(t[-1:])
            VpaRecommender(resource=resource).fit(t, y).predict(t[-1:])
            done += 2
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="GenAI-schema telemetry directory")
    parser.add_argument("--workloads", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--growth-h", type=float, default=None,
                        help="GPU memory with JustEnough's peak-growth term of this horizon (h)")
    args = parser.parse_args()
    workloads = build(args.data, args.workloads)
    samples = len(workloads[0][0])
    start = time.perf_counter()
    growth = args.growth_h * 3600.0 if args.growth_h else None
    chunks = [(workloads[i :: args.jobs], growth) for i in range(args.jobs)]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        fits = sum(pool.map(work, chunks))
    elapsed = time.perf_counter() - start
    print(
        f"{args.workloads} workloads x {samples} samples (8 days, 1 min): {fits} fit+predict "
        f"(JustEnough + VPA, GPU share + GPU memory{' with growth' if growth else ''}) in "
        f"{elapsed:.1f} s with {args.jobs} "
        f"processes -> {'PASS' if elapsed <= 60 else 'FAIL'} (target 60 s)"
    )
    return 0 if elapsed <= 60 else 1


if __name__ == "__main__":
    sys.exit(main())
