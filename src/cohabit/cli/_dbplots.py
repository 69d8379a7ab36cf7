"""Plots of database profiles (matplotlib, Agg): the p99-vs-CPU curve per memory level."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["curve_png"]


def curve_png(points: pd.DataFrame, curve, target_ms: float, path: Path, *,
              chosen: tuple[int, int] | None = None, title: str = "",
              ceiling_ms: float | None = None) -> Path:
    """Write ``path``: p99 (log) against CPU quota (log) for each memory level: every run
    as a dot (infinite p99 drawn at the ceiling as a triangle), the fitted monotone curve
    as a line, the target as a dashed line, the chosen spec as a star.

    Args:
        points: runs with ``cpu_milli``, ``memory_mib``, ``p99_ms``.
        curve: the fitted :class:`~cohabit.predictors.dbcurve.AllocationCurve` (or None).
        target_ms: the p99 target.
        chosen: ``(cpu_milli, memory_mib)`` to mark, if any.
        ceiling_ms: where infinite values are drawn (default: 2x the largest finite p99).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    finite = points["p99_ms"].replace(np.inf, np.nan).dropna()
    top = ceiling_ms or (2 * float(finite.max()) if not finite.empty else 10 * target_ms)
    levels = sorted(points["memory_mib"].unique())
    colours = plt.cm.viridis(np.linspace(0, 0.9, max(len(levels), 1)))
    for colour, mem in zip(colours, levels, strict=True):
        sub = points[points["memory_mib"] == mem]
        inf = ~np.isfinite(sub["p99_ms"].to_numpy(float))
        ax.scatter(sub["cpu_milli"][~inf], sub["p99_ms"][~inf], s=14, color=colour,
                   alpha=0.7, label=f"{mem} MiB")
        if inf.any():
            ax.scatter(sub["cpu_milli"][inf], np.full(inf.sum(), top), marker="^", s=24,
                       color=colour, alpha=0.9)
        if curve is not None:
            cpus = np.unique(sub["cpu_milli"].to_numpy(float))
            if cpus.size > 1:
                xs = np.geomspace(cpus.min(), cpus.max(), 60)
                ys = curve.predict(np.column_stack([xs, np.full_like(xs, mem)]))
                ax.plot(xs, np.minimum(ys, top), color=colour, lw=1.5)
    ax.axhline(target_ms, ls="--", color="crimson", lw=1, label=f"target {target_ms:g} ms")
    if chosen is not None:
        sel = points[(points["cpu_milli"] == chosen[0]) & (points["memory_mib"] == chosen[1])]
        y = float(np.exp(np.log(sel["p99_ms"].clip(upper=top)).mean())) if len(sel) else \
            target_ms
        ax.scatter([chosen[0]], [y], marker="*", s=260, color="crimson", zorder=5,
                   edgecolor="black", label=f"chosen {chosen[0]}m / {chosen[1]} MiB")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("CPU quota (millicores, CFS period 100 ms)")
    ax.set_ylabel("p99 latency from scheduled start (ms)")
    if not math.isfinite(top):
        top = 10 * target_ms
    ax.set_title(title or "p99 vs CPU per memory limit")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
