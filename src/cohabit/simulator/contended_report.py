"""Summaries, console tables and files of contended replays (``--contention``).

One row per (pod list, policy): the mean and standard deviation over seeds (each seed is
also a workload-mapping seed) of the metrics :func:`cohabit.simulator.contended.
run_contended` puts in a run's ``extra``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.table import Table

from cohabit.simulator.matrix import MatrixResult

__all__ = ["CONTENDED_METRICS", "contended_summary", "contended_tables", "write_contended"]

CONTENDED_METRICS = (
    ("gpu_alloc_pct", "alloc %", 1),
    ("gpu_demand_served_pct", "served %", 1),
    ("ls_violation_intervals", "LS viol", 0),
    ("be_violation_intervals", "BE viol", 0),
    ("jct_mean_s", "JCT mean s", 0),
    ("jct_p99_s", "JCT p99 s", 0),
    ("unfairness", "unfair", 3),
    ("migrations", "migr", 0),
    ("never_placed", "never", 1),
    ("wall_s", "wall s", 1),
)
"""``(runs column, table heading, decimals)`` of the summary, in table order."""


def contended_summary(result: MatrixResult) -> pd.DataFrame:
    """Per (workload, policy): ``seeds`` and ``<metric>_mean``/``<metric>_std`` of every
    :data:`CONTENDED_METRICS` column present in ``result.runs``."""
    runs = result.runs
    cols = [c for c, _, _ in CONTENDED_METRICS if c in runs.columns]
    g = runs.groupby(["workload", "policy"], sort=False)
    out = g["seed"].nunique().rename("seeds").to_frame()
    for c in cols:
        out[f"{c}_mean"] = g[c].mean()
        out[f"{c}_std"] = g[c].std(ddof=0)
    return out.reset_index()


def contended_tables(summary: pd.DataFrame) -> list[Table]:
    """One rich table per workload: mean (+- std over seeds) of each metric per policy."""
    tables = []
    for workload, rows in summary.groupby("workload", sort=False):
        seeds = "/".join(str(s) for s in sorted(set(rows["seeds"])))
        t = Table(title=f"{workload}: contended replay, mean over {seeds} seed(s)",
                  title_justify="left")
        t.add_column("policy", justify="left")
        present = [(c, h, d) for c, h, d in CONTENDED_METRICS if f"{c}_mean" in rows]
        for _, h, _ in present:
            t.add_column(h, justify="right")
        for r in rows.to_dict("records"):
            cells = [str(r["policy"])]
            for c, _, d in present:
                m, sd = r[f"{c}_mean"], r[f"{c}_std"]
                cells.append(f"{m:,.{d}f}" + (f" ±{sd:,.{d}f}" if sd == sd and sd > 0 else ""))
            t.add_row(*cells)
        tables.append(t)
    return tables


def write_contended(result: MatrixResult, out_dir: str | Path) -> list[Path]:
    """``contended_runs.csv`` (one row per run), ``contended_summary.csv`` and
    ``contended_series.csv`` (hourly samples) in ``out_dir``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "contended_runs.csv", out / "contended_summary.csv",
             out / "contended_series.csv"]
    result.runs.to_csv(paths[0], index=False)
    contended_summary(result).to_csv(paths[1], index=False)
    result.curves.to_csv(paths[2], index=False)
    return paths
