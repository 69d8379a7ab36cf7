"""Contended replay: how the slice is sized, and what cohabit's placement does without its
QoS guard.

1. ``peak``: for every shipped pod list, the peak GPU demand of the pods alive at once
   (arrivals at ``creation_time / compress``, solo lifetimes ``deletion_time -
   creation_time``) as a share of the slice's GPUs (``nodes[offset::N]``). The issue asks
   for slices where it is 90-110 %; one ``N`` serves every list (nothing per list).
2. ``ablation``: ``run_contended`` of cohabit *without* its guard (placement only) and of
   fgd *with* cohabit's guard (``--variants``), to set beside the CLI's plain runs, so
   what placement buys is told apart from what the runtime throttling buys.

Usage::

    .venv/bin/python benchmarks/placement_contended.py peak --slice 21 --compress 16
    .venv/bin/python benchmarks/placement_contended.py ablation --slice 21 --compress 16 \\
        --seeds 42

3. ``weights``: cohabit (guard on, as the CLI runs it) under ``ScoreWeights`` overrides
   (``--variants`` is a JSON list of override dicts, ``{}`` = the defaults), e.g. the
   interference weight lowered, to show what GPU allocation a weaker QoS preference buys
   and what it costs in LS violations::

    .venv/bin/python benchmarks/placement_contended.py weights --seeds 42 \
        --variants '[{}, {"interference": 0.1}, {"interference": 0}]'

4. ``solo``: the time-mean GPU allocation the pod list gives when every pod runs at solo
   speed and never queues (demand alive at each step, capped at the slice's GPUs, sampled
   as the contended loop samples: steps of 60 s from the first to the last arrival, steps
   with nothing alive skipped). A policy that slows no pod and leaves none waiting
   allocates about this much; above it, allocation comes only from pods held longer for
   the same work (slowed) -- what the ``gpu_alloc_pct`` gap between policies is made of::

    .venv/bin/python benchmarks/placement_contended.py solo --slice 21 --compress 16

5. ``table``: one markdown table (pod list x policy) from the ``contended_runs.csv`` of
   several ``cohabit simulate --contention ... --out DIR`` runs::

    .venv/bin/python benchmarks/placement_contended.py table results/h12/contended_*

Every figure is printed with the 1-minute load average read just before it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

METRICS = ("gpu_alloc_pct", "gpu_alloc_busy_pct", "gpu_demand_served_pct",
           "ls_violation_intervals", "be_violation_intervals", "jct_mean_s", "jct_p99_s",
           "unfairness")


def peak_share(pods: list, nodes: list, n: int, offset: int, compress: float) -> float:
    """Peak concurrent GPU demand (milli) of ``pods`` over the GPU milli of
    ``nodes[offset::n]``, percent; pods without times are skipped."""
    start, end, demand = [], [], []
    for p in pods:
        if p.num_gpu == 0 or p.deletion_time is None:
            continue
        t0 = p.creation_time / compress
        start.append(t0)
        end.append(t0 + (p.deletion_time - p.creation_time))
        demand.append(p.num_gpu * p.gpu_milli)
    times = np.concatenate([start, end])
    delta = np.concatenate([demand, -np.asarray(demand)])
    order = np.lexsort((delta, times))  # departures first at equal times
    peak = float(np.cumsum(delta[order]).max())
    cap = sum(len(nd.gpus) for nd in nodes[offset::n]) * 1000
    return 100.0 * peak / cap


def _lists() -> list[str]:
    from cohabit.simulator import report

    return sorted(set(report.published_curves()["workload"]))


def cmd_peak(a: argparse.Namespace) -> None:
    """Print the peak-demand share of every shipped list for the slice."""
    from cohabit.simulator import loaders

    print(f"| pod list | peak GPU demand, % of slice 1/{a.slice} (compress {a.compress:g}) |")
    print("|---|---:|")
    for name in _lists():
        short = name.removeprefix("openb_pod_list_")
        try:
            trace = loaders.load_trace(short, None, require_times=True)
        except loaders.TraceError as exc:
            print(f"| {short} | no arrival times: {str(exc).splitlines()[0].split(': ', 1)[1]} |")
            continue
        share = peak_share(trace.pods, trace.nodes, a.slice, a.offset, a.compress)
        print(f"| {short} | {share:.0f} |")


def cmd_ablation(a: argparse.Namespace) -> None:
    """cohabit without guard and fgd with guard beside the plain runs."""
    from cohabit.simulator import loaders
    from cohabit.simulator.contended import build_setup, run_contended

    trace = loaders.load_trace(a.pods, None, require_times=True)
    nodes = trace.nodes[a.offset::a.slice]
    variants = [(v.split(":")[0], v.split(":")[1] == "on") for v in a.variants.split(",")]
    rows: dict[tuple[str, bool], list[dict[str, float]]] = {v: [] for v in variants}
    for seed in [int(s) for s in a.seeds.split(",")]:
        setup = build_setup(trace.pods, seed=seed, compress=a.compress)
        for policy, guard in variants:
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            r = run_contended(nodes, trace.pods, setup, policy=policy, seed=seed, guard=guard)
            wall = time.perf_counter() - t0
            rows[(policy, guard)].append({**r.extra, "wall_s": wall})
            print(f"seed {seed} {policy} guard={guard}: {wall:.1f} s (load {load:.1f})",
                  file=sys.stderr)
    print("| policy | guard | " + " | ".join(METRICS) + " |")
    print("|---|---|" + "---:|" * len(METRICS))
    for (policy, guard), rs in rows.items():
        cells = [f"{np.nanmean([r[m] for r in rs]):,.3f}" if m == "unfairness"
                 else f"{np.nanmean([r[m] for r in rs]):,.1f}" for m in METRICS]
        print(f"| {policy} | {'on' if guard else 'off'} | " + " | ".join(cells) + " |")


def cmd_weights(a: argparse.Namespace) -> None:
    """cohabit under ``ScoreWeights`` overrides, one row per override (means over seeds)."""
    import json
    from dataclasses import replace

    from cohabit.config.placement import ScoreWeights
    from cohabit.simulator import loaders
    from cohabit.simulator.contended import build_setup, run_contended

    trace = loaders.load_trace(a.pods, None, require_times=True)
    nodes = trace.nodes[a.offset::a.slice]
    variants = json.loads(a.variants)
    rows: list[list[dict[str, float]]] = [[] for _ in variants]
    for seed in [int(s) for s in a.seeds.split(",")]:
        for k, over in enumerate(variants):
            setup = build_setup(trace.pods, seed=seed, compress=a.compress,
                                weights=replace(ScoreWeights(), **over))
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            r = run_contended(nodes, trace.pods, setup, policy=a.policy, seed=seed)
            wall = time.perf_counter() - t0
            rows[k].append({**r.extra, "wall_s": wall})
            print(f"seed {seed} {a.policy} {json.dumps(over)}: {wall:.1f} s (load {load:.1f})",
                  file=sys.stderr)
    cols = (*METRICS, "never_placed", "migrations")
    print("| weights | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for over, rs in zip(variants, rows, strict=True):
        cells = [f"{np.nanmean([r.get(m, np.nan) for r in rs]):,.3f}" if m == "unfairness"
                 else f"{np.nanmean([r.get(m, np.nan) for r in rs]):,.1f}" for m in cols]
        print(f"| {json.dumps(over) if over else 'defaults'} | " + " | ".join(cells) + " |")


def solo_alloc_pct(pods: list, nodes: list, compress: float, step: float = 60.0) -> float:
    """Time-mean allocation (% of the GPUs of ``nodes``) with solo lifetimes and no queue
    (see ``solo`` in the module docstring)."""
    gpu = [p for p in pods if p.num_gpu and p.deletion_time is not None]
    t0 = np.array([p.creation_time / compress for p in gpu])
    t1 = t0 + np.array([p.deletion_time - p.creation_time for p in gpu])
    demand = np.array([p.num_gpu * p.gpu_milli for p in gpu], float)
    every = np.array([p.creation_time / compress for p in pods if p.deletion_time is not None])
    grid = np.arange(np.floor(every.min() / step) * step, every.max() + step / 2, step)
    # alive at grid time t: t0 <= t < t1, as the loop places at the step and departs at it
    start = np.searchsorted(grid, t0, side="left")
    stop = np.searchsorted(grid, t1, side="left")
    delta = np.zeros(grid.size + 1)
    np.add.at(delta, start, demand)
    np.add.at(delta, stop, -demand)
    alive = np.cumsum(delta[:-1])
    cap = sum(len(nd.gpus) for nd in nodes) * 1000.0
    busy = alive > 0
    return float(100.0 * np.minimum(alive[busy], cap).mean() / cap)


def cmd_solo(a: argparse.Namespace) -> None:
    """Print :func:`solo_alloc_pct` for the pod list on the slice."""
    from cohabit.simulator import loaders

    trace = loaders.load_trace(a.pods, None, require_times=True)
    nodes = trace.nodes[a.offset::a.slice]
    share = solo_alloc_pct(trace.pods, nodes, a.compress)
    print(f"{a.pods}: solo, never-queued time-mean GPU allocation {share:.2f} % of slice "
          f"1/{a.slice} (compress {a.compress:g})")


def cmd_table(a: argparse.Namespace) -> None:
    """One markdown table over the ``contended_runs.csv`` files of several ``--out`` dirs:
    per pod list and policy, the mean over seeds of the headline metrics."""
    import pandas as pd

    runs = pd.concat([pd.read_csv(d / "contended_runs.csv") for d in a.dirs
                      if (d / "contended_runs.csv").exists()])
    heads = ("LS viol.", "GPU alloc %", "busy alloc %", "served %", "never placed",
             "JCT mean s", "JCT p99 s", "unfairness")
    cols = ("ls_violation_intervals", "gpu_alloc_pct", "gpu_alloc_busy_pct",
            "gpu_demand_served_pct", "never_placed", "jct_mean_s", "jct_p99_s", "unfairness")
    print("| pod list | seeds | policy | " + " | ".join(heads) + " |")
    print("|---|---:|---|" + "---:|" * len(heads))
    for (w, pol), g in runs.groupby(["workload", "policy"], sort=True):
        cells = [f"{g[c].mean():.3f}" if c == "unfairness" else
                 f"{g[c].mean():,.1f}" if c.endswith("pct") else f"{g[c].mean():,.0f}"
                 for c in cols]
        print(f"| {str(w).removeprefix('openb_pod_list_')} | {g['seed'].nunique()} | {pol} | "
              + " | ".join(cells) + " |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("peak", "ablation", "weights", "solo"):
        p = sub.add_parser(name)
        p.add_argument("--slice", type=int, default=21)
        p.add_argument("--offset", type=int, default=0)
        p.add_argument("--compress", type=float, default=16.0)
        if name in ("ablation", "weights", "solo"):
            p.add_argument("--pods", default="default")
        if name in ("ablation", "weights"):
            p.add_argument("--seeds", default="42,43")
        if name == "weights":
            p.add_argument("--policy", default="cohabit")
            p.add_argument("--variants", default='[{}, {"interference": 0}]',
                           help="JSON list of ScoreWeights overrides")
        if name == "ablation":
            p.add_argument("--variants", default="cohabit:off,fgd:on",
                           help="policy:guard pairs (guard on/off); the plain runs "
                           "(cohabit:on, fgd:off) are the CLI's")
    t = sub.add_parser("table")
    t.add_argument("dirs", nargs="+", type=Path)
    a = ap.parse_args()
    {"peak": cmd_peak, "ablation": cmd_ablation, "weights": cmd_weights, "solo": cmd_solo,
     "table": cmd_table}[a.cmd](a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
