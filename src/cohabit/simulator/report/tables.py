"""Console tables (rich) of the simulator's summaries: per workload for ``--mode fgd`` and
``--mode replay``, and the fidelity table of several published pod lists."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from rich.markup import escape
from rich.table import Table

from cohabit.simulator.report.summaries import max_deviation

__all__ = ["fgd_tables", "fidelity_table", "replay_tables"]


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
        seeds_txt = "/".join(str(s) for s in sorted(set(rows["seeds"])))
        t = Table(
            title=f"{escape(str(workload))}: --mode fgd, tune {tune:g}, "
            f"mean over {seeds_txt} seed(s)",
            title_justify="left",
        )
        for name, style in _FGD_COLUMNS + (_PUBLISHED_COLUMNS if has_pub else ()):
            t.add_column(name, **style)
        for r in rows.itertuples(index=False):
            cells = _fgd_cells(r)
            if has_pub:
                cells += _published_cells(r, tolerance)
            t.add_row(*cells)
        if has_pub:
            t.caption = (
                "alloc: GPU allocation ratio (± std over seeds); frag: fragment / idle GPU milli; "
                "Δ: ours - paper, "
                f"points (red: beyond {tolerance:g})"
            )
        tables.append(t)
    return tables


_RIGHT = {"justify": "right"}
_FGD_COLUMNS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("policy", {"style": "bold"}),
    ("alloc % @100", _RIGHT),
    ("alloc % @130", _RIGHT),
    ("frag % @90", _RIGHT),
    ("failed pods", _RIGHT),
    ("wall s", _RIGHT),
)
_PUBLISHED_COLUMNS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("paper @130", {"justify": "right", "style": "dim"}),
    ("Δ @100", _RIGHT),
    ("Δ @130", _RIGHT),
    ("Δ frag @90", _RIGHT),
    ("max |Δ| 50–130", _RIGHT),
)


def _fgd_cells(r: Any) -> list[str]:
    """Our columns of one :func:`fgd_summary` row (a namedtuple)."""
    std = r.gpu_alloc_pct_at_130_std
    return [
        r.policy,
        _fmt(r.gpu_alloc_pct_at_100),
        _fmt(r.gpu_alloc_pct_at_130)
        + (f" ±{std:.2f}" if r.seeds > 1 and not math.isnan(std) else ""),
        _fmt(r.frag_ratio_pct_at_90),
        _fmt(r.failed_pods, 0 if float(r.failed_pods).is_integer() else 1),
        _fmt(r.wall_s, 2),
    ]


def _published_cells(r: Any, tolerance: float) -> list[str]:
    """The paper's column and our deviations for one :func:`fgd_summary` row."""
    worst = r.max_abs_dev_gpu_alloc_50_130
    worst_txt = _fmt(worst)
    if not math.isnan(worst):
        worst_txt += f" @{int(r.max_abs_dev_at_pct)}"
        if worst > tolerance:
            worst_txt = f"[bold red]{worst_txt}[/]"
    return [
        _fmt(r.published_gpu_alloc_pct_at_130),
        _dev_style(r.dev_gpu_alloc_pct_at_100, tolerance),
        _dev_style(r.dev_gpu_alloc_pct_at_130, tolerance),
        _fmt(r.dev_frag_ratio_pct_at_90, signed=True),
        worst_txt,
    ]



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


