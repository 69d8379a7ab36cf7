"""Reports of a simulator matrix: summary tables, tidy CSV, JSON summary, PNG plots.

One module per concern: :mod:`.summaries` (pandas: means over seeds, the published curves
and our deviation from them), :mod:`.tables` (rich console tables), :mod:`.plots`
(matplotlib, imported only when a plot is drawn) and :mod:`.files` (CSV/JSON/PNG written all
or nothing). Everything is re-exported here, so ``cohabit.simulator.report.fgd_summary`` etc.
keep working.

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

from typing import Any

from cohabit.simulator.report.files import staged_dir, write_outputs
from cohabit.simulator.report.summaries import (
    ALLOC,
    FIDELITY_RANGE,
    FRAG,
    FRAG_AMOUNT,
    PAPER_POLICY_NAMES,
    POLICY_ORDER,
    PUBLISHED_METRICS,
    SUMMARY_STEPS,
    comparison,
    fgd_summary,
    max_deviation,
    pending_summary,
    policy_order,
    published_curves,
    replay_summary,
    sort_by_policy,
    value_at,
)
from cohabit.simulator.report.tables import fgd_tables, fidelity_table, replay_tables

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
    "fgd_tables",
    "fidelity_table",
    "max_deviation",
    "pending_summary",
    "plot_fgd",
    "plot_replay",
    "policy_order",
    "published_curves",
    "replay_summary",
    "replay_tables",
    "sort_by_policy",
    "staged_dir",
    "value_at",
    "write_outputs",
]


def __getattr__(name: str) -> Any:
    """``plot_fgd``/``plot_replay`` load :mod:`.plots` (and so matplotlib) on first use."""
    if name in ("plot_fgd", "plot_replay"):
        from cohabit.simulator.report import plots

        return getattr(plots, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
