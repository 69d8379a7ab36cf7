"""Summaries of a simulator matrix (pandas): the published FGD curves, means over seeds, our
deviation from the paper, pending time per QoS class.

The published curves ship in ``cohabit/data/fgd-published/`` (hkust-adsl/
kubernetes-scheduler-simulator, ``experiments/analysis/expected_results``, Apache-2.0); the
method is Weng et al., "Beware of Fragmentation: Scheduling GPU-Sharing Workloads with
Fragmentation Gradient Descent", USENIX ATC 2023.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from cohabit.simulator.matrix import MatrixResult

__all__ = [
    "ALLOC",
    "FIDELITY_RANGE",
    "FRAG",
    "FRAG_AMOUNT",
    "PAPER_POLICY_NAMES",
    "POLICY_ORDER",
    "PUBLISHED_METRICS",
    "SUMMARY_STEPS",
    "comparison",
    "fgd_summary",
    "max_deviation",
    "pending_summary",
    "policy_order",
    "published_curves",
    "replay_summary",
    "sort_by_policy",
    "value_at",
]

PAPER_POLICY_NAMES = {
    "01-Random": "random",
    "02-DotProd": "dot-product",
    "03-GpuClustering": "gpu-clustering",
    "04-GpuPacking": "gpu-packing",
    "05-BestFit": "best-fit",
    "06-FGD": "fgd",
}
"""Policy names of the published artifact -> our registry names."""

POLICY_ORDER = tuple(PAPER_POLICY_NAMES.values())
"""Display order of the paper's policies (others follow, alphabetically)."""

ALLOC = "gpu_alloc_ratio_pct"
FRAG = "frag_ratio_pct"
FRAG_AMOUNT = "frag_amount_pct_of_cluster_gpus"
PUBLISHED_METRICS = (ALLOC, FRAG, FRAG_AMOUNT)
FIDELITY_RANGE = (50, 130)
"""Arrived-demand range (percent) over which fidelity to the published curves is judged."""
SUMMARY_STEPS = (
    ("gpu_alloc_pct_at_100", ALLOC, 100),
    ("gpu_alloc_pct_at_130", ALLOC, 130),
    ("frag_ratio_pct_at_90", FRAG, 90),
)
"""``(summary column, metric, arrived GPU demand %)`` the fgd summary and its table report."""

_PUBLISHED_FILE = ("data", "fgd-published", "fgd_expected_results_summary.csv")


def policy_order(policies: Iterable[str]) -> list[str]:
    """The distinct names of ``policies`` in display order: the paper's policies in
    :data:`POLICY_ORDER`, then any others alphabetically."""
    names = set(policies)
    paper = [p for p in POLICY_ORDER if p in names]
    return paper + sorted(names - set(POLICY_ORDER))


def sort_by_policy(df: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """``df`` sorted by the columns ``by``, where ``policy`` (one of them) sorts as an ordered
    categorical in :func:`policy_order` rather than alphabetically. The ``policy`` column
    itself keeps its values and dtype; the index is reset.
    """
    order = pd.Categorical(df["policy"], categories=policy_order(df["policy"]), ordered=True)
    keyed = df.assign(_policy_rank=order.codes)
    cols = ["_policy_rank" if c == "policy" else c for c in by]
    return keyed.sort_values(cols).drop(columns="_policy_rank").reset_index(drop=True)


def published_curves(path: str | Path | None = None) -> pd.DataFrame:
    """The paper's published means over its 10 seeds, with our policy names.

    Args:
        path: the CSV (default: the shipped
            ``cohabit/data/fgd-published/fgd_expected_results_summary.csv``).

    Returns:
        Frame ``workload, policy, metric, arrived_gpu_demand_pct, mean, std`` where
        ``policy`` is a registry name (rows of unknown policies are kept with their
        published name) and ``metric`` is one of ``gpu_alloc_ratio_pct``,
        ``frag_ratio_pct``, ``frag_amount_pct_of_cluster_gpus`` (all percent).
    """
    if path is None:
        ref = resources.files("cohabit")
        for part in _PUBLISHED_FILE:
            ref = ref.joinpath(part)
        with resources.as_file(ref) as p:
            df = pd.read_csv(p)
    else:
        df = pd.read_csv(path)
    df = df.rename(columns={"sc_policy": "policy", "std_over_10_seeds": "std"})
    df["policy"] = df["policy"].map(lambda p: PAPER_POLICY_NAMES.get(p, p))
    return df[["workload", "policy", "metric", "arrived_gpu_demand_pct", "mean", "std"]]




def value_at(curves: pd.DataFrame, metric: str, pct: int) -> pd.DataFrame:
    """Mean and std over seeds of ``metric`` at ``pct`` % arrived GPU demand.

    Args:
        curves: rows of :data:`~cohabit.simulator.results.FGD_CURVE_COLUMNS`.

    Returns:
        Frame indexed by ``(workload, policy)`` with ``mean``, ``std`` (0 for one seed) and
        ``seeds`` (how many seeds reached ``pct``). Missing when no seed reached ``pct``.
    """
    at = curves[curves["arrived_gpu_demand_pct"] == pct]
    g = at.groupby(["workload", "policy"])[metric]
    return pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1).fillna(0.0), "seeds": g.count()})


def comparison(curves: pd.DataFrame, published: pd.DataFrame | None = None) -> pd.DataFrame:
    """Our means next to the published ones at every published step.

    Args:
        curves: fgd curves of any number of workloads, policies and seeds.
        published: :func:`published_curves` (default: the shipped file).

    Returns:
        Tidy frame ``workload, policy, metric, arrived_gpu_demand_pct, seeds, mean, std,
        published_mean, published_std, deviation`` (``deviation = mean - published_mean``,
        percentage points) for every (workload, policy) present in both. Empty when none is.
    """
    pub = published_curves() if published is None else published
    cols = [
        "workload",
        "policy",
        "metric",
        "arrived_gpu_demand_pct",
        "seeds",
        "mean",
        "std",
        "published_mean",
        "published_std",
        "deviation",
    ]
    if curves.empty:
        return pd.DataFrame(columns=cols)
    long = curves.melt(
        id_vars=["workload", "policy", "seed", "arrived_gpu_demand_pct"],
        value_vars=[m for m in PUBLISHED_METRICS if m in curves.columns],
        var_name="metric",
    )
    ours = (
        long.groupby(["workload", "policy", "metric", "arrived_gpu_demand_pct"])["value"]
        .agg(seeds="count", mean="mean", std="std")
        .reset_index()
    )
    ours["std"] = ours["std"].fillna(0.0)
    merged = ours.merge(
        pub.rename(columns={"mean": "published_mean", "std": "published_std"}),
        on=["workload", "policy", "metric", "arrived_gpu_demand_pct"],
        how="inner",
    )
    merged["deviation"] = merged["mean"] - merged["published_mean"]
    merged = sort_by_policy(merged, ["workload", "policy", "metric", "arrived_gpu_demand_pct"])
    return merged[cols]


def fgd_summary(result: MatrixResult, published: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (workload, policy) of an fgd matrix: means over seeds.

    Returns:
        Frame with ``workload, policy, seeds, gpu_alloc_pct_at_100, gpu_alloc_pct_at_130,
        gpu_alloc_pct_at_130_std, frag_ratio_pct_at_90, failed_pods, arrivals, wall_s`` and,
        for workloads the paper published, ``published_gpu_alloc_pct_at_100``,
        ``published_gpu_alloc_pct_at_130``, ``published_frag_ratio_pct_at_90``,
        ``dev_gpu_alloc_pct_at_100``, ``dev_gpu_alloc_pct_at_130``,
        ``dev_frag_ratio_pct_at_90`` (ours - published, points) and
        ``max_abs_dev_gpu_alloc_50_130`` with ``max_abs_dev_at_pct`` (NaN elsewhere).
        A value is NaN when no seed reached that arrived demand (e.g. ``tune < 1.3``).
    """
    curves, runs = result.curves, result.runs
    pub = published_curves() if published is None else published
    g = runs.groupby(["workload", "policy"])
    out = pd.DataFrame(
        {
            "seeds": g["seed"].nunique(),
            "failed_pods": g["failed_pods"].mean(),
            "arrivals": g["arrivals"].mean(),
            "wall_s": g["wall_s"].mean(),
        }
    )
    a100 = value_at(curves, ALLOC, 100)
    a130 = value_at(curves, ALLOC, 130)
    f90 = value_at(curves, FRAG, 90)
    out["gpu_alloc_pct_at_100"] = a100["mean"]
    out["gpu_alloc_pct_at_130"] = a130["mean"]
    out["gpu_alloc_pct_at_130_std"] = a130["std"]
    out["frag_ratio_pct_at_90"] = f90["mean"]

    cmp = comparison(curves, pub)
    for name, metric, pct in SUMMARY_STEPS:
        sel = cmp[(cmp["metric"] == metric) & (cmp["arrived_gpu_demand_pct"] == pct)]
        pub_val = sel.set_index(["workload", "policy"])["published_mean"]
        out[f"published_{name}"] = pub_val
        out[f"dev_{name}"] = out[name] - out[f"published_{name}"]
    lo, hi = FIDELITY_RANGE
    rng = cmp[
        (cmp["metric"] == ALLOC)
        & cmp["arrived_gpu_demand_pct"].between(lo, hi)
        & cmp["deviation"].notna()
    ]
    if len(rng):
        idx = rng.assign(absdev=rng["deviation"].abs()).groupby(["workload", "policy"])["absdev"]
        worst = rng.loc[idx.idxmax()].set_index(["workload", "policy"])
        out["max_abs_dev_gpu_alloc_50_130"] = worst["deviation"].abs()
        out["max_abs_dev_at_pct"] = worst["arrived_gpu_demand_pct"]
    else:
        out["max_abs_dev_gpu_alloc_50_130"] = np.nan
        out["max_abs_dev_at_pct"] = np.nan
    out = sort_by_policy(out.reset_index(), ["workload", "policy"])
    first = ["workload", "policy", "seeds", "gpu_alloc_pct_at_100", "gpu_alloc_pct_at_130"]
    rest = [c for c in out.columns if c not in first]
    return out[first + rest].reset_index(drop=True)


def max_deviation(summary: pd.DataFrame) -> pd.DataFrame:
    """Largest |ours - published| GPU allocation ratio over 50..130% arrived, in points.

    Args:
        summary: :func:`fgd_summary`.

    Returns:
        Pivot: one row per published workload, one column per policy (paper order);
        empty when no workload was published.
    """
    s = summary[summary["max_abs_dev_gpu_alloc_50_130"].notna()]
    if s.empty:
        return pd.DataFrame()
    pivot = s.pivot(index="workload", columns="policy", values="max_abs_dev_gpu_alloc_50_130")
    return pivot[policy_order(pivot.columns)]




def pending_summary(result: MatrixResult) -> pd.DataFrame:
    """Pending time per (workload, policy, QoS class), means over seeds.

    Returns:
        Frame ``workload, policy, qos, seeds, pods, p50_pending_s, p99_pending_s``.
    """
    p = result.pending
    if p.empty:
        return pd.DataFrame(
            columns=["workload", "policy", "qos", "seeds", "pods", "p50_pending_s", "p99_pending_s"]
        )
    g = p.groupby(["workload", "policy", "qos"])
    out = pd.DataFrame(
        {
            "seeds": g["seed"].nunique(),
            "pods": g["pods"].mean(),
            "p50_pending_s": g["p50_pending_s"].mean(),
            "p99_pending_s": g["p99_pending_s"].mean(),
        }
    ).reset_index()
    return sort_by_policy(out, ["workload", "policy", "qos"])


def replay_summary(result: MatrixResult) -> pd.DataFrame:
    """One row per (workload, policy) of a replay matrix: means over seeds.

    Returns:
        Frame ``workload, policy, seeds, never_placed, peak_pending_pods,
        peak_unschedulable_pods, mean_gpu_alloc_pct, peak_gpu_alloc_pct, wall_s``
        (peaks are per-run maxima over time, then averaged over seeds).
    """
    s, runs = result.curves, result.runs
    per_run = s.groupby(["workload", "policy", "seed"]).agg(
        peak_pending_pods=("pending_pods", "max"),
        peak_unschedulable_pods=("unschedulable_pods", "max"),
        mean_gpu_alloc_pct=("gpu_alloc_ratio_pct", "mean"),
        peak_gpu_alloc_pct=("gpu_alloc_ratio_pct", "max"),
    )
    r = runs.set_index(["workload", "policy", "seed"])[["never_placed", "wall_s"]]
    per_run = per_run.join(r, how="outer").reset_index()
    g = per_run.groupby(["workload", "policy"])
    out = g.agg(
        seeds=("seed", "nunique"),
        never_placed=("never_placed", "mean"),
        peak_pending_pods=("peak_pending_pods", "mean"),
        peak_unschedulable_pods=("peak_unschedulable_pods", "mean"),
        mean_gpu_alloc_pct=("mean_gpu_alloc_pct", "mean"),
        peak_gpu_alloc_pct=("peak_gpu_alloc_pct", "mean"),
        wall_s=("wall_s", "mean"),
    ).reset_index()
    return sort_by_policy(out, ["workload", "policy"])


