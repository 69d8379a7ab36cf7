"""Reports of a simulator matrix: summary tables, tidy CSV, JSON summary, PNG plots.

``--mode fgd`` (the method of Weng et al., "Beware of Fragmentation: Scheduling GPU-Sharing
Workloads with Fragmentation Gradient Descent", USENIX ATC 2023):

* summary (one row per workload and policy, means over seeds): GPU allocation ratio at 100%
  and 130% arrived GPU demand, fragmentation ratio at 90% arrived, failed pods, wall time;
  when the pod list is one of the paper's published workloads, the published means and our
  deviation from them (at those points, and the largest absolute deviation of the
  allocation ratio over the published steps from 50% to 130%);
* plots in the style of the paper's figures 7-9: GPU allocation ratio vs arrived GPU demand,
  one line per policy (with the published means as hollow markers), and fragmentation vs
  arrived GPU demand.

``--mode replay``: pending time (p50/p99) per QoS class, never-placed pods, unschedulable
pods over time.

The published curves ship in ``cohabit/data/fgd-published/`` (hkust-adsl/
kubernetes-scheduler-simulator, ``experiments/analysis/expected_results``, Apache-2.0).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.markup import escape
from rich.table import Table

from cohabit.simulator.matrix import MatrixResult

__all__ = [
    "PAPER_POLICY_NAMES",
    "POLICY_ORDER",
    "comparison",
    "fgd_summary",
    "fgd_tables",
    "fidelity_table",
    "max_deviation",
    "pending_summary",
    "plot_fgd",
    "plot_replay",
    "published_curves",
    "replay_summary",
    "replay_tables",
    "value_at",
    "write_outputs",
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

# Tab10 colours in the paper's policy order, so a policy keeps its colour across figures.
_COLORS = {
    "random": "#7f7f7f",
    "dot-product": "#9467bd",
    "gpu-clustering": "#2ca02c",
    "gpu-packing": "#ff7f0e",
    "best-fit": "#1f77b4",
    "fgd": "#d62728",
}
_MARKERS = {
    "random": "x",
    "dot-product": "v",
    "gpu-clustering": "s",
    "gpu-packing": "D",
    "best-fit": "^",
    "fgd": "o",
}


def _policy_key(policy: str) -> tuple[int, str]:
    return (POLICY_ORDER.index(policy) if policy in POLICY_ORDER else len(POLICY_ORDER), policy)


def _ordered(policies: Sequence[str]) -> list[str]:
    return sorted(set(policies), key=_policy_key)


# ------------------------------------------------------------------------- published


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
        ref = resources.files("cohabit").joinpath(*_PUBLISHED_FILE)
        with resources.as_file(ref) as p:
            df = pd.read_csv(p)
    else:
        df = pd.read_csv(path)
    df = df.rename(columns={"sc_policy": "policy", "std_over_10_seeds": "std"})
    df["policy"] = df["policy"].map(lambda p: PAPER_POLICY_NAMES.get(p, p))
    return df[["workload", "policy", "metric", "arrived_gpu_demand_pct", "mean", "std"]]


# ------------------------------------------------------------------------ fgd summary


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
    merged = merged.sort_values(
        ["workload", "policy", "metric", "arrived_gpu_demand_pct"],
        key=lambda s: s.map(_policy_key) if s.name == "policy" else s,
    )
    return merged[cols].reset_index(drop=True)


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
    out = out.reset_index()
    out = out.sort_values(
        ["workload", "policy"], key=lambda s: s.map(_policy_key) if s.name == "policy" else s
    )
    first = ["workload", "policy", "seeds", "gpu_alloc_pct_at_100", "gpu_alloc_pct_at_130"]
    rest = [c for c in out.columns if c not in first]
    return out[first + rest].reset_index(drop=True)


def _fmt(v: Any, digits: int = 2, signed: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def _dev_style(v: float, tolerance: float) -> str:
    if isinstance(v, float) and math.isnan(v):
        return "–"
    text = _fmt(v, signed=True)
    return text if abs(v) <= tolerance else f"[bold red]{text}[/]"


def fgd_tables(summary: pd.DataFrame, *, tune: float, tolerance: float = 0.3) -> list[Table]:
    """Rich tables of :func:`fgd_summary`, one per workload.

    Deviation columns (ours - published, percentage points) appear only for published
    workloads; deviations beyond ``tolerance`` (the issue's fidelity bar, 0.3 points) are
    shown in red.
    """
    tables = []
    for workload, rows in summary.groupby("workload", sort=False):
        has_pub = (
            rows["published_gpu_alloc_pct_at_130"].notna().any()
            or rows["published_gpu_alloc_pct_at_100"].notna().any()
        )
        seeds = sorted(set(rows["seeds"]))
        seeds_txt = "/".join(str(s) for s in seeds)
        t = Table(
            title=f"{escape(str(workload))}: --mode fgd, tune {tune:g}, "
            f"mean over {seeds_txt} seed(s)",
            title_justify="left",
        )
        t.add_column("policy", style="bold")
        t.add_column("alloc % @100", justify="right")
        t.add_column("alloc % @130", justify="right")
        t.add_column("frag % @90", justify="right")
        t.add_column("failed pods", justify="right")
        t.add_column("wall s", justify="right")
        if has_pub:
            t.add_column("paper @130", justify="right", style="dim")
            t.add_column("Δ @100", justify="right")
            t.add_column("Δ @130", justify="right")
            t.add_column("Δ frag @90", justify="right")
            t.add_column("max |Δ| 50–130", justify="right")
        for r in rows.itertuples(index=False):
            cells = [
                r.policy,
                _fmt(r.gpu_alloc_pct_at_100),
                _fmt(r.gpu_alloc_pct_at_130)
                + (
                    f" ±{r.gpu_alloc_pct_at_130_std:.2f}"
                    if r.seeds > 1 and not math.isnan(r.gpu_alloc_pct_at_130_std)
                    else ""
                ),
                _fmt(r.frag_ratio_pct_at_90),
                _fmt(r.failed_pods, 0 if float(r.failed_pods).is_integer() else 1),
                _fmt(r.wall_s, 2),
            ]
            if has_pub:
                worst = r.max_abs_dev_gpu_alloc_50_130
                worst_txt = _fmt(worst)
                if not math.isnan(worst):
                    worst_txt += f" @{int(r.max_abs_dev_at_pct)}"
                    if worst > tolerance:
                        worst_txt = f"[bold red]{worst_txt}[/]"
                cells += [
                    _fmt(r.published_gpu_alloc_pct_at_130),
                    _dev_style(r.dev_gpu_alloc_pct_at_100, tolerance),
                    _dev_style(r.dev_gpu_alloc_pct_at_130, tolerance),
                    _fmt(r.dev_frag_ratio_pct_at_90, signed=True),
                    worst_txt,
                ]
            t.add_row(*cells)
        if has_pub:
            t.caption = (
                "alloc: GPU allocation ratio (± std over seeds); frag: fragment / idle GPU milli; "
                "Δ: ours - paper, "
                f"points (red: beyond {tolerance:g})"
            )
        tables.append(t)
    return tables


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
    return pivot[_ordered(list(pivot.columns))]


def fidelity_table(summary: pd.DataFrame, *, tolerance: float = 0.3) -> Table | None:
    """Rich table of :func:`max_deviation` (pod lists x policies), values beyond
    ``tolerance`` in red; ``None`` when no published workload was run."""
    piv = max_deviation(summary)
    if piv.empty:
        return None
    t = Table(
        title=f"largest |Δ| GPU allocation vs paper, 50–130% arrived (points; red > {tolerance:g})",
        min_width=72,
        title_justify="left",
    )
    t.add_column("pod list", style="bold")
    for policy in piv.columns:
        t.add_column(str(policy), justify="right")
    for workload, row in piv.iterrows():
        cells = []
        for v in row:
            text = _fmt(v)
            cells.append(f"[bold red]{text}[/]" if not math.isnan(v) and v > tolerance else text)
        t.add_row(escape(str(workload).removeprefix("openb_pod_list_")), *cells)
    return t


# ---------------------------------------------------------------------- replay summary


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
    return out.sort_values(
        ["workload", "policy", "qos"],
        key=lambda s: s.map(_policy_key) if s.name == "policy" else s,
    ).reset_index(drop=True)


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
    return out.sort_values(
        ["workload", "policy"], key=lambda s: s.map(_policy_key) if s.name == "policy" else s
    ).reset_index(drop=True)


def replay_tables(summary: pd.DataFrame, pending: pd.DataFrame) -> list[Table]:
    """Rich tables: per workload, a policy table and a pending-time-per-QoS table."""
    tables = []
    for workload, rows in summary.groupby("workload", sort=False):
        seeds = "/".join(str(s) for s in sorted(set(rows["seeds"])))
        t = Table(
            title=f"{escape(str(workload))}: --mode replay, mean over {seeds} seed(s)",
            title_justify="left",
        )
        for name in (
            "policy",
            "never placed",
            "peak pending",
            "peak unschedulable",
            "mean alloc %",
            "peak alloc %",
            "wall s",
        ):
            t.add_column(name, justify="left" if name == "policy" else "right")
        for r in rows.itertuples(index=False):
            t.add_row(
                r.policy,
                _fmt(r.never_placed, 1),
                _fmt(r.peak_pending_pods, 1),
                _fmt(r.peak_unschedulable_pods, 1),
                _fmt(r.mean_gpu_alloc_pct),
                _fmt(r.peak_gpu_alloc_pct),
                _fmt(r.wall_s),
            )
        tables.append(t)
        pw = pending[pending["workload"] == workload]
        if len(pw):
            short = str(workload).removeprefix("openb_pod_list_")
            q = Table(title=f"{escape(short)}: pending time per QoS class (s)",
                      title_justify="left")
            for name in ("policy", "QoS", "pods", "p50", "p99"):
                q.add_column(name, justify="left" if name in ("policy", "QoS") else "right")
            for r in pw.itertuples(index=False):
                q.add_row(
                    r.policy,
                    str(r.qos),
                    _fmt(r.pods, 0),
                    _fmt(r.p50_pending_s, 1),
                    _fmt(r.p99_pending_s, 1),
                )
            tables.append(q)
    return tables


# ------------------------------------------------------------------------------ plots


def _figure(ncols: int, width: float = 5.2, height: float = 3.8):
    from matplotlib.figure import Figure  # Agg canvas, no pyplot global state

    fig = Figure(figsize=(width * ncols, height), dpi=120, layout="tight")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, axes


def _plain(text: str) -> str:
    """``text`` for a matplotlib title: ``$`` escaped, so a file name is never mathtext."""
    return text.replace("$", r"\$")


def _style(ax, xlabel: str, ylabel: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, linestyle=":", linewidth=0.6, alpha=0.8)
    ax.spines[["top", "right"]].set_visible(False)


def _curve_panel(
    ax,
    curves: pd.DataFrame,
    metric: str,
    pub: pd.DataFrame,
    *,
    xlim: tuple[float, float] | None = None,
    legend: bool = True,
) -> None:
    step = 10
    for policy in _ordered(curves["policy"]):
        c = curves[curves["policy"] == policy]
        g = c.groupby("arrived_gpu_demand_pct")[metric]
        mean, std = g.mean(), g.std(ddof=1).fillna(0.0)
        color = _COLORS.get(policy)
        (line,) = ax.plot(mean.index, mean.values, color=color, linewidth=1.6, label=policy)
        color = line.get_color()
        ax.fill_between(
            mean.index, (mean - std).values, (mean + std).values, color=color, alpha=0.15, lw=0
        )
        marks = mean[mean.index % step == 0]
        ax.plot(
            marks.index,
            marks.values,
            linestyle="none",
            marker=_MARKERS.get(policy, "o"),
            markersize=5,
            color=color,
        )
        p = pub[(pub["policy"] == policy) & (pub["metric"] == metric)]
        if len(p):
            ax.plot(
                p["arrived_gpu_demand_pct"],
                p["mean"],
                linestyle="none",
                marker="o",
                markersize=7,
                markerfacecolor="none",
                markeredgecolor=color,
                markeredgewidth=1.0,
            )
    if xlim is not None:
        ax.set_xlim(*xlim)
        sel = curves[curves["arrived_gpu_demand_pct"].between(*xlim)][metric].dropna()
        if len(sel):
            lo, hi = float(sel.min()), float(sel.max())
            pad = max(0.5, 0.08 * (hi - lo))
            ax.set_ylim(lo - pad, hi + pad)
    if legend:
        handles, labels = ax.get_legend_handles_labels()
        if len(pub):
            from matplotlib.lines import Line2D

            handles.append(
                Line2D(
                    [],
                    [],
                    linestyle="none",
                    marker="o",
                    markerfacecolor="none",
                    markeredgecolor="black",
                )
            )
            labels.append("paper (mean of 10 seeds)")
        ax.legend(handles, labels, fontsize=8, frameon=False)


def plot_fgd(
    curves: pd.DataFrame, out_dir: Path, published: pd.DataFrame | None = None
) -> list[Path]:
    """PNG plots per workload: ``alloc_<workload>.png`` (GPU allocation ratio vs arrived
    GPU demand, full range and a zoom on >= 80%) and ``frag_<workload>.png``
    (fragmentation ratio and fragment amount vs arrived demand). Lines are means over seeds
    with a ±1 std band; hollow circles are the paper's published means where available.

    Returns:
        Paths written.
    """
    pub_all = published_curves() if published is None else published
    written = []
    xlabel = "arrived GPU demand (% of cluster GPU capacity)"
    for workload, c in curves.groupby("workload"):
        pub = pub_all[pub_all["workload"] == workload]
        short = str(workload).removeprefix("openb_pod_list_")
        xmax = float(c["arrived_gpu_demand_pct"].max())

        fig, (ax1, ax2) = _figure(2)
        _curve_panel(ax1, c, ALLOC, pub)
        ax1.plot([0, 100], [0, 100], color="black", linewidth=0.6, linestyle="--", alpha=0.5)
        _style(ax1, xlabel, "GPU allocation ratio (%)")
        lo = min(80.0, xmax)
        _curve_panel(ax2, c, ALLOC, pub, xlim=(lo, xmax + 1), legend=False)
        _style(ax2, xlabel, "GPU allocation ratio (%)")
        ax2.set_title(f"zoom: {lo:g}% to {xmax:g}% arrived", fontsize=9)
        fig.suptitle(f"GPU allocation, {_plain(short)}")
        path = out_dir / f"alloc_{short}.png"
        fig.savefig(path)
        written.append(path)

        fig, (ax1, ax2) = _figure(2)
        _curve_panel(ax1, c, FRAG, pub)
        _style(ax1, xlabel, "fragmentation ratio (% of idle GPU)")
        if FRAG_AMOUNT in c.columns:
            _curve_panel(ax2, c, FRAG_AMOUNT, pub, legend=False)
            _style(ax2, xlabel, "fragmented GPU (% of cluster GPUs)")
        fig.suptitle(f"GPU fragmentation, {_plain(short)}")
        path = out_dir / f"frag_{short}.png"
        fig.savefig(path)
        written.append(path)
    return written


def plot_replay(series: pd.DataFrame, out_dir: Path) -> list[Path]:
    """PNG per workload, ``unschedulable_<workload>.png``: over trace time (days), the GPU
    allocation ratio, pending pods and unschedulable pods, one line per policy, mean over
    seeds.

    Returns:
        Paths written.
    """
    from matplotlib.ticker import MaxNLocator

    written = []
    panels = (
        ("gpu_alloc_ratio_pct", "GPU allocation ratio (%)", False),
        ("pending_pods", "pending pods", True),
        ("unschedulable_pods", "unschedulable pods", True),
    )
    for workload, s in series.groupby("workload"):
        short = str(workload).removeprefix("openb_pod_list_")
        fig, axes = _figure(3, width=4.4)
        for policy in _ordered(s["policy"]):
            p = s[s["policy"] == policy]
            mean = p.groupby("time_s")[[c for c, _, _ in panels]].mean()
            x = mean.index.to_numpy(dtype=float) / 86400.0
            kw = {"color": _COLORS.get(policy), "linewidth": 1.2, "label": policy}
            for ax, (col, _, _) in zip(axes, panels, strict=True):
                ax.step(x, mean[col].to_numpy(), where="post", **kw)
        for ax, (col, label, integer) in zip(axes, panels, strict=True):
            _style(ax, "trace time (days)", label)
            top = float(s[col].max()) if len(s) else 0.0
            ax.set_ylim(bottom=0.0, top=max(1.0, top * 1.08))
            if integer:
                ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes[0].legend(fontsize=8, frameon=False)
        fig.suptitle(f"replay, {_plain(short)} (mean over seeds)")
        path = out_dir / f"unschedulable_{short}.png"
        fig.savefig(path)
        written.append(path)
    return written


# ------------------------------------------------------------------------------ files


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return None if math.isnan(f) or math.isinf(f) else round(f, 4)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [_jsonable(r) for r in df.to_dict(orient="records")]


def write_outputs(
    result: MatrixResult,
    out_dir: str | Path,
    *,
    meta: dict[str, Any] | None = None,
    published: pd.DataFrame | None = None,
    plots: bool = True,
) -> list[Path]:
    """Write a matrix's files into ``out_dir`` (created if needed).

    ``--mode fgd``: ``curves.csv`` (every run's curve, tidy,
    :data:`~cohabit.simulator.results.FGD_CURVE_COLUMNS`), ``runs.csv`` (one row per run),
    ``summary.csv`` (:func:`fgd_summary`), ``comparison.csv`` (:func:`comparison`, when a
    pod list was published), ``max_deviation.csv`` (:func:`max_deviation`), ``summary.json``
    and the PNGs of :func:`plot_fgd`.

    ``--mode replay``: ``series.csv`` (every run's samples,
    :data:`~cohabit.simulator.results.REPLAY_SERIES_COLUMNS`), ``pending.csv``,
    ``runs.csv``, ``summary.csv`` (:func:`replay_summary`), ``pending_summary.csv``,
    ``summary.json`` and the PNGs of :func:`plot_replay`.

    All files are written into a hidden staging folder inside ``out_dir`` first and moved
    into ``out_dir`` only when every one of them was written: a failure (a full disk, a plot
    that cannot be drawn) leaves nothing of this run behind.

    Args:
        meta: extra top-level entries for ``summary.json`` (command, trace summary, ...).

    Returns:
        Paths written (in ``out_dir``), in order.

    Raises:
        OSError: ``out_dir`` cannot be created or written (nothing of this run is left).
    """
    final = Path(out_dir)
    final.mkdir(parents=True, exist_ok=True)
    with staged_dir(final) as out:
        written = _write_all(result, out, meta=meta, published=published, plots=plots)
    return [final / p.name for p in written]


@contextlib.contextmanager
def staged_dir(out_dir: Path) -> Iterator[Path]:
    """A fresh hidden folder inside ``out_dir`` whose files are moved into ``out_dir`` when
    the block ends normally; on any exception the folder and its files are removed.

    Raises:
        OSError: the folder cannot be made, or a file cannot be moved.
    """
    stage = Path(tempfile.mkdtemp(prefix=".cohabit-partial-", dir=out_dir))
    try:
        yield stage
        for path in sorted(stage.iterdir()):
            os.replace(path, out_dir / path.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _write_all(
    result: MatrixResult,
    out: Path,
    *,
    meta: dict[str, Any] | None,
    published: pd.DataFrame | None,
    plots: bool,
) -> list[Path]:
    """Write every file of :func:`write_outputs` into ``out``; return their paths."""
    written: list[Path] = []

    def csv(df: pd.DataFrame, name: str) -> None:
        path = out / name
        df.to_csv(path, index=False)
        written.append(path)

    doc: dict[str, Any] = {"mode": result.mode, "workers": result.workers}
    doc["wall_s"] = result.wall_s
    if meta:
        doc.update(meta)
    if result.mode == "fgd":
        pub = published_curves() if published is None else published
        summary = fgd_summary(result, pub)
        cmp = comparison(result.curves, pub)
        csv(result.curves, "curves.csv")
        csv(result.runs, "runs.csv")
        csv(summary, "summary.csv")
        if len(cmp):
            csv(cmp, "comparison.csv")
        worst = max_deviation(summary)
        if len(worst):
            path = out / "max_deviation.csv"
            worst.to_csv(path)
            written.append(path)
        doc["results"] = _records(summary)
        if len(cmp):
            alloc = cmp[
                (cmp["metric"] == ALLOC) & cmp["arrived_gpu_demand_pct"].between(*FIDELITY_RANGE)
            ]
            doc["published_comparison"] = {
                "source": "cohabit/data/fgd-published/fgd_expected_results_summary.csv",
                "max_abs_deviation_gpu_alloc_pct_50_130": float(alloc["deviation"].abs().max())
                if len(alloc)
                else None,
                "points": _records(cmp),
            }
        if plots:
            written += plot_fgd(result.curves, out, pub)
    else:
        summary = replay_summary(result)
        pend = pending_summary(result)
        csv(result.curves, "series.csv")
        csv(result.pending, "pending.csv")
        csv(result.runs, "runs.csv")
        csv(summary, "summary.csv")
        csv(pend, "pending_summary.csv")
        doc["results"] = _records(summary)
        doc["pending"] = _records(pend)
        if plots:
            written += plot_replay(result.curves, out)
    json_path = out / "summary.json"
    doc["files"] = [p.name for p in written] + [json_path.name]
    json_path.write_text(json.dumps(_jsonable(doc), indent=2) + "\n")
    written.append(json_path)
    return written
