"""Fidelity of ``--mode fgd`` to the FGD paper's published curves.

For every (workload, policy) in ``src/cohabit/data/fgd-published/fgd_expected_results_summary.csv``
this runs :func:`cohabit.simulator.fgd.run_fgd` for seeds 42..51 (2 worker processes by
default), averages the curves over seeds and reports, per policy and workload, the largest
absolute deviation from the published mean at every 10% step from 50% to 130% arrived, for
the GPU allocation ratio (the acceptance metric, target <= 0.3 points) and for the two
fragmentation metrics.

Usage::

    .venv/bin/python benchmarks/fidelity.py                       # all 13 workloads
    .venv/bin/python benchmarks/fidelity.py --workloads default --seeds 42-51
    .venv/bin/python benchmarks/fidelity.py --out results/fidelity   # also write CSVs

Prints markdown tables (pasted into docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from pathlib import Path

import pandas as pd

from cohabit.cli.simulate import parse_seeds
from cohabit.simulator.report import POLICY_ORDER, published_curves

STEPS = list(range(50, 131, 10))
METRICS = ("gpu_alloc_ratio_pct", "frag_ratio_pct", "frag_amount_pct_of_cluster_gpus")

_CACHE: dict[str, tuple] = {}


def _job(args: tuple[str, str, int, float]) -> pd.DataFrame:
    workload, policy, seed, tune = args
    from cohabit.placement import typical_pods
    from cohabit.simulator import loaders
    from cohabit.simulator.fgd import run_fgd

    if workload not in _CACHE:
        trace = loaders.load_trace(workload)
        # the paper's simulator groups typical pods by the raw gpu_spec text
        typical = typical_pods(trace.pods, spec_text=list(trace.gpu_spec_text))
        _CACHE.clear()
        _CACHE[workload] = (list(trace.nodes), list(trace.pods), typical)
    nodes, pods, typical = _CACHE[workload]
    return run_fgd(
        nodes, pods, policy=policy, seed=seed, tune=tune, workload=workload, typical=typical
    ).curve


def markdown(df: pd.DataFrame) -> str:
    """A small markdown table (index as first column), values with 2 decimals."""
    cols = [str(c) for c in df.columns]
    lines = ["| | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for idx, row in df.iterrows():
        cells = ["" if pd.isna(v) else f"{v:+.2f}" for v in row.tolist()]
        lines.append(f"| {idx} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="all", help="comma list (e.g. default,cpu050) or all")
    ap.add_argument("--policies", default="all")
    ap.add_argument("--seeds", default="42-51")
    ap.add_argument("--tune", type=float, default=1.3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    pub = published_curves()
    workloads = sorted(pub["workload"].unique())
    if args.workloads != "all":
        want = [
            w if w.startswith("openb_pod_list_") else f"openb_pod_list_{w}"
            for w in args.workloads.split(",")
        ]
        workloads = [w for w in workloads if w in want]
    policies = list(POLICY_ORDER) if args.policies == "all" else args.policies.split(",")
    seeds = parse_seeds(args.seeds)
    # workload-major order so each worker reuses its loaded trace
    jobs = [(w, p, s, args.tune) for w in workloads for p in policies for s in seeds]
    t0 = time.perf_counter()
    ctx = mp.get_context("fork")
    with ctx.Pool(args.workers) as pool:
        curves = pool.map(_job, jobs, chunksize=len(seeds))
    wall = time.perf_counter() - t0
    allc = pd.concat(curves, ignore_index=True)
    mean = (
        allc.groupby(["workload", "policy", "arrived_gpu_demand_pct"])[list(METRICS)]
        .mean()
        .reset_index()
    )
    long = mean.melt(
        id_vars=["workload", "policy", "arrived_gpu_demand_pct"],
        var_name="metric",
        value_name="ours",
    )
    joined = long.merge(
        pub.rename(columns={"mean": "published"})[
            ["workload", "policy", "metric", "arrived_gpu_demand_pct", "published"]
        ],
        on=["workload", "policy", "metric", "arrived_gpu_demand_pct"],
    )
    joined = joined[joined["arrived_gpu_demand_pct"].isin(STEPS)]
    joined["dev"] = joined["ours"] - joined["published"]
    joined["absdev"] = joined["dev"].abs()
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        allc.to_csv(args.out / "curves.csv", index=False)
        joined.to_csv(args.out / "deviation.csv", index=False)

    print(
        f"{len(jobs)} runs ({len(workloads)} workloads x {len(policies)} policies x "
        f"{len(seeds)} seeds) in {wall:.1f} s with {args.workers} workers\n"
    )
    for metric in METRICS:
        sub = joined[joined["metric"] == metric]
        # signed deviation at the step with the largest absolute deviation
        idx = sub.groupby(["workload", "policy"])["absdev"].idxmax()
        worst = sub.loc[idx].set_index(["workload", "policy"])["dev"].unstack("policy")
        worst = worst[[p for p in policies if p in worst.columns]]
        worst.index = [w.replace("openb_pod_list_", "") for w in worst.index]
        print(f"### largest deviation, {metric} (points, ours - published, steps 50..130)\n")
        print(markdown(worst))
        if metric == METRICS[0]:
            n_bad = int((sub["absdev"] > 0.3).sum())
            print(f"\ncells over 0.3 points: {n_bad} of {len(sub)}")
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
