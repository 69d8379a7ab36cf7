"""PNG plots (matplotlib, Agg canvas, imported only when a plot is drawn) of a simulator
matrix: in the style of the FGD paper's figures 7-9 (GPU allocation ratio and fragmentation vs
arrived GPU demand, the published means as hollow markers) and, for ``--mode replay``, the
allocation ratio, pending and unschedulable pods over trace time."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cohabit.simulator.report.summaries import (
    ALLOC,
    FRAG,
    FRAG_AMOUNT,
    policy_order,
    published_curves,
)

__all__ = ["plot_fgd", "plot_replay"]


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
    for policy in policy_order(curves["policy"]):
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
        for policy in policy_order(s["policy"]):
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


