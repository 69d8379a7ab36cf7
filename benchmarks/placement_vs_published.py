"""Per pod list: a policy's GPU allocation at 130 % arrived (mean over seeds) beside FGD's
published one, from the ``curves.csv`` that ``cohabit simulate --out DIR`` writes.

Usage::

    .venv/bin/cohabit simulate --pods published --policy cohabit --seeds 42-51 \\
        --out results/h12/fgd_published
    .venv/bin/python benchmarks/placement_vs_published.py results/h12/fgd_published

Prints a markdown table: pod list, seeds, the policy's mean +- std, FGD published mean +- std,
the difference (points) and whether it is at or above the published mean.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

STEP = 130


def table(curves: pd.DataFrame, published: pd.DataFrame, policy: str) -> list[str]:
    """Markdown rows comparing ``policy`` at :data:`STEP` % with published fgd."""
    ours = curves[(curves["policy"] == policy) & (curves["arrived_gpu_demand_pct"] == STEP)]
    pub = published[(published["metric"] == "gpu_alloc_ratio_pct")
                     & (published["arrived_gpu_demand_pct"] == STEP)
                     & (published["policy"] == "fgd")].set_index("workload")
    out = [f"| pod list | seeds | {policy} @{STEP} % | FGD published @{STEP} % | Δ points "
           "| at or above |", "|---|---:|---:|---:|---:|---|"]
    for workload, g in ours.groupby("workload"):
        m, s = g["gpu_alloc_ratio_pct"].mean(), g["gpu_alloc_ratio_pct"].std(ddof=0)
        p = pub.loc[workload]
        short = str(workload).removeprefix("openb_pod_list_")
        out.append(f"| {short} | {g['seed'].nunique()} | {m:.2f} ± {s:.2f} | "
                   f"{p['mean']:.2f} ± {p['std']:.2f} | {m - p['mean']:+.2f} | "
                   f"{'yes' if m >= p['mean'] else 'no'} |")
    return out


def main() -> int:
    from cohabit.simulator import report

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--policy", default="cohabit")
    a = ap.parse_args()
    curves = pd.read_csv(a.out_dir / "curves.csv")
    print("\n".join(table(curves, report.published_curves(), a.policy)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
