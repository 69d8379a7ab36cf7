"""Fidelity of ``--mode fgd`` to the FGD paper's published curves.

For every (workload, policy) in ``src/cohabit/data/fgd-published/fgd_expected_results_summary.csv``
this runs the matrix of seeds 42..51 through :func:`cohabit.simulator.matrix.run_matrix` (the
code ``cohabit simulate`` runs; 2 worker processes by default), compares the mean curves with
the published ones by :func:`cohabit.simulator.report.comparison` (the comparison
``cohabit simulate`` reports) and prints, per policy and workload, the largest absolute
deviation from the published mean at every 10% step from 50% to 130% arrived, for the GPU
allocation ratio (the acceptance metric, target <= 0.3 points) and for the two fragmentation
metrics.

Usage::

    .venv/bin/python benchmarks/fidelity.py                       # all 13 workloads
    .venv/bin/python benchmarks/fidelity.py --workloads default --seeds 42-51
    .venv/bin/python benchmarks/fidelity.py --out results/fidelity   # also write CSVs

Prints markdown tables (pasted into docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from cohabit.cli.simulate import parse_seeds
from cohabit.simulator import loaders
from cohabit.simulator.matrix import cells, run_matrix
from cohabit.simulator.report import (
    FIDELITY_RANGE,
    POLICY_ORDER,
    PUBLISHED_METRICS,
    comparison,
    published_curves,
)

STEPS = list(range(FIDELITY_RANGE[0], FIDELITY_RANGE[1] + 1, 10))
METRICS = PUBLISHED_METRICS
TOLERANCE = 0.3
"""Acceptance: |ours - published| GPU allocation ratio, points."""


def markdown(df: pd.DataFrame) -> str:
    """A small markdown table (index as first column), values with 2 decimals."""
    cols = [str(c) for c in df.columns]
    lines = ["| | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for idx, row in df.iterrows():
        cells_ = ["" if pd.isna(v) else f"{v:+.2f}" for v in row.tolist()]
        lines.append(f"| {idx} | " + " | ".join(cells_) + " |")
    return "\n".join(lines)


def _workloads(spec: str, published: pd.DataFrame) -> list[str]:
    """The published pod lists named by ``spec`` (``all`` or a comma list)."""
    workloads = sorted(published["workload"].unique())
    if spec == "all":
        return workloads
    want = [w if w.startswith("openb_pod_list_") else f"openb_pod_list_{w}"
            for w in spec.split(",")]
    return [w for w in workloads if w in want]


def _traces(workloads: list[str]) -> dict[str, tuple]:
    """``run_matrix``'s traces, with the raw ``gpu_spec`` text (the paper groups typical pods
    by it)."""
    traces = {}
    for workload in workloads:
        trace = loaders.load_trace(workload)
        traces[workload] = (trace.nodes, trace.pods, trace.gpu_spec_text)
    return traces


def _worst(deviation: pd.DataFrame, metric: str, policies: list[str]) -> pd.DataFrame:
    """Signed deviation at the step with the largest absolute one, workload x policy."""
    sub = deviation[deviation["metric"] == metric]
    idx = sub.groupby(["workload", "policy"])["absdev"].idxmax()
    worst = sub.loc[idx].set_index(["workload", "policy"])["deviation"].unstack("policy")
    worst = worst[[p for p in policies if p in worst.columns]]
    worst.index = [w.replace("openb_pod_list_", "") for w in worst.index]
    return worst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="all", help="comma list (e.g. default,cpu050) or all")
    ap.add_argument("--policies", default="all")
    ap.add_argument("--seeds", default="42-51")
    ap.add_argument("--tune", type=float, default=1.3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    published = published_curves()
    workloads = _workloads(args.workloads, published)
    policies = list(POLICY_ORDER) if args.policies == "all" else args.policies.split(",")
    seeds = parse_seeds(args.seeds)
    matrix = cells("fgd", workloads, policies, seeds, tune=args.tune)
    result = run_matrix(matrix, _traces(workloads), workers=args.workers)
    deviation = comparison(result.curves, published)
    deviation = deviation[deviation["arrived_gpu_demand_pct"].isin(STEPS)]
    deviation = deviation.assign(absdev=deviation["deviation"].abs())
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        result.curves.to_csv(args.out / "curves.csv", index=False)
        deviation.to_csv(args.out / "deviation.csv", index=False)

    print(
        f"{len(matrix)} runs ({len(workloads)} workloads x {len(policies)} policies x "
        f"{len(seeds)} seeds) in "
        f"{result.wall_s:.1f} s with {result.workers} workers\n"
    )
    for metric in METRICS:
        print(f"### largest deviation, {metric} (points, ours - published, steps "
              f"{STEPS[0]}..{STEPS[-1]})\n")
        print(markdown(_worst(deviation, metric, policies)))
        if metric == METRICS[0]:
            sub = deviation[deviation["metric"] == metric]
            n_bad = int((sub["absdev"] > TOLERANCE).sum())
            print(f"\ncells over {TOLERANCE:g} points: {n_bad} of {len(sub)}")
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
