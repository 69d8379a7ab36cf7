"""Checks around a simulator run: will it measure anything, and what will it leave out?

A run that cannot measure what the summary reports (a ``--tune`` whose arrivals stop below
every reported step, a pod list whose GPU pods fit on no node) used to print a table of
dashes and exit 0. These checks say why before anything runs (:func:`fgd_problem`,
:func:`replay_problem`), name the pods that can never be placed
(:func:`pods_fitting_no_node`), and tell a summary that measured nothing
(:func:`nothing_measured`).

Feasibility is the placement filter itself (:meth:`cohabit.placement.ClusterState.feasible`
on the empty cluster), as ``--mode replay`` counts its unschedulable pods: no second
definition of "fits".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from cohabit.model import Node, Pod
from cohabit.placement import ClusterState, pod_request
from cohabit.simulator.loaders import Trace
from cohabit.simulator.report import SUMMARY_STEPS

__all__ = [
    "MAX_REPLAY_SAMPLES",
    "MIN_TUNE",
    "fgd_problem",
    "nothing_measured",
    "pods_fitting_no_node",
    "replay_problem",
    "unplaceable_note",
    "why_nothing_measured",
]

MIN_TUNE = min(pct for _, _, pct in SUMMARY_STEPS) / 100.0
"""Smallest ``--tune`` whose arrivals reach a step the fgd summary reports (0.9: the
fragmentation ratio at 90% arrived GPU demand)."""

MAX_REPLAY_SAMPLES = 100_000
"""Most series samples one replay run may take (trace span / ``sample_every_s``). Each
sample measures the whole cluster; beyond this a run takes hours, so the CLI refuses it."""

DEFAULT_SAMPLE_EVERY_S = 3600.0
"""The replay loop's default sampling period (``run_replay(sample_every_s=...)``)."""


def pods_fitting_no_node(nodes: Sequence[Node], pods: Sequence[Pod]) -> list[tuple[Pod, str]]:
    """Pods that no node of the *empty* cluster passes the placement filter for.

    Args:
        nodes: the cluster (as loaded: fully free).
        pods: the pod list.

    Returns:
        ``(pod, why)`` in pod-list order, ``why`` naming the request no node can hold,
        e.g. ``"needs 16 GPUs; the largest node has 8"``.
    """
    # On an empty cluster, nodes of the same capacity, GPU model and GPU count are
    # interchangeable: the filter runs on one node of each kind.
    kinds = {(n.cpu_milli, n.memory_mib, n.gpu_model, len(n.gpus)): n for n in nodes}
    empty = ClusterState.from_nodes(list(kinds.values()))
    verdict: dict[tuple, bool] = {}
    out = []
    for pod in pods:
        key = (pod.cpu_milli, pod.memory_mib, pod.num_gpu, pod.gpu_milli, pod.gpu_spec)
        if key not in verdict:
            verdict[key] = empty.feasible(pod_request(pod)).size > 0
        if not verdict[key]:
            out.append((pod, _why_no_node(pod, nodes)))
    return out


def _why_no_node(pod: Pod, nodes: Sequence[Node]) -> str:
    """The first request of ``pod`` that exceeds every (model-acceptable) node."""
    spec = pod.gpu_spec
    of = f" of model {'|'.join(sorted(spec))}" if spec else ""
    cand = list(nodes)
    if pod.num_gpu > 0:
        cand = [n for n in nodes if n.gpus and (not spec or n.gpu_model in spec)]
        if not cand:
            return f"needs GPUs{of}; no node has such GPUs"
        most = max(len(n.gpus) for n in cand)
        if pod.num_gpu > most:
            return f"needs {pod.num_gpu} GPUs{of}; the largest such node has {most}"
        cand = [n for n in cand if len(n.gpus) >= pod.num_gpu]
    if not cand:
        return "no node at all"
    for field, unit, size in (
        ("cpu_milli", "millicores", lambda n: n.cpu_milli),
        ("memory_mib", "MiB", lambda n: n.memory_mib),
    ):
        most = max(size(n) for n in cand)
        if getattr(pod, field) > most:
            where = "such node" if pod.num_gpu else "node"
            return f"needs {getattr(pod, field)} {unit}; the largest {where} has {most}"
    return "needs CPU, memory and GPUs together that no single node has"


def _describe(unplaceable: Sequence[tuple[Pod, str]], limit: int = 3) -> str:
    shown = "; ".join(f"{p.name} {why}" for p, why in unplaceable[:limit])
    more = len(unplaceable) - limit
    return shown + (f"; and {more} more" if more > 0 else "")


def unplaceable_note(trace: Trace, mode: str) -> str | None:
    """A note naming the pods of ``trace`` that fit on no node even when the cluster is empty
    (they count as failed in ``--mode fgd``, never placed in ``--mode replay``), or None."""
    unplaceable = pods_fitting_no_node(trace.nodes, trace.pods)
    if not unplaceable:
        return None
    outcome = "failed" if mode == "fgd" else "never placed"
    return (
        f"note: {trace.workload}: {len(unplaceable)} pod(s) fit on no node even when the "
        f"cluster is empty and will count as {outcome}: {_describe(unplaceable)}"
    )


def fgd_problem(trace: Trace, tune: float) -> str | None:
    """Why ``--mode fgd`` with ``tune`` cannot measure the steps the summary reports.

    Returns:
        ``None`` when the run can measure something; otherwise one sentence naming the
        cause: a cluster without GPUs, a pod list without GPU requests, ``tune`` below
        :data:`MIN_TUNE` (arrivals stop before the first reported step) or not finite, or
        every GPU-requesting pod fitting on no node.
    """
    if not math.isfinite(tune) or tune <= 0:
        return f"--tune {tune:g} is not a positive number"
    if not any(n.gpus for n in trace.nodes):
        return f"the cluster ({trace.nodes_source}) has no GPUs; --mode fgd measures GPU demand"
    gpu_pods = [p for p in trace.pods if p.num_gpu]
    if not gpu_pods:
        return "no pod requests a GPU; --mode fgd measures GPU demand"
    if tune < MIN_TUNE:
        steps = ", ".join(f"{pct}%" for pct in sorted({pct for _, _, pct in SUMMARY_STEPS}))
        return (
            f"--tune {tune:g} stops arrivals at {100 * tune:g}% of the cluster's GPU capacity, "
            f"below every step the summary reports ({steps} arrived GPU demand); "
            f"use --tune {MIN_TUNE:g} or more (the FGD paper uses 1.3)"
        )
    unplaceable = pods_fitting_no_node(trace.nodes, gpu_pods)
    if len(unplaceable) == len(gpu_pods):
        return (
            f"no pod requesting a GPU fits on any node, even on the empty cluster: "
            f"{_describe(unplaceable)}"
        )
    return None


def replay_problem(trace: Trace, sample_every_s: float | None) -> str | None:
    """Why ``--mode replay`` with ``sample_every_s`` would not finish in reasonable time.

    Returns:
        ``None``, or a sentence when one run would take more than
        :data:`MAX_REPLAY_SAMPLES` samples (the trace's time span / the period).
    """
    period = DEFAULT_SAMPLE_EVERY_S if sample_every_s is None else float(sample_every_s)
    if not math.isfinite(period) or period <= 0:
        return f"--sample-every {period:g} is not a positive number of seconds"
    times = [p.creation_time for p in trace.pods]
    times += [p.deletion_time for p in trace.pods if p.deletion_time is not None]
    span = max(times) - min(times)
    samples = span / period
    if samples > MAX_REPLAY_SAMPLES:
        return (
            f"the pod list spans {span:,.0f} s of trace time: sampling every {period:g} s is "
            f"{samples:,.0f} samples per run (at most {MAX_REPLAY_SAMPLES:,}); "
            f"raise --sample-every to {math.ceil(span / MAX_REPLAY_SAMPLES):,} s or more"
        )
    return None


def nothing_measured(summary: pd.DataFrame) -> bool:
    """True when an fgd summary (:func:`cohabit.simulator.report.fgd_summary`) has no
    value at any reported step (its table would be all dashes)."""
    cols = [name for name, _, _ in SUMMARY_STEPS]
    return bool(summary.empty or summary[cols].isna().all().all())


def why_nothing_measured(summary: pd.DataFrame, curves: pd.DataFrame, tune: float) -> str:
    """A sentence explaining an all-NaN summary (see :func:`nothing_measured`).

    Args:
        summary: the fgd summary.
        curves: the runs' curves (:data:`~cohabit.simulator.results.FGD_CURVE_COLUMNS`).
        tune: the runs' ``--tune``.
    """
    steps = ", ".join(f"{pct}%" for pct in sorted({pct for _, _, pct in SUMMARY_STEPS}))
    if (summary["arrivals"] == 0).all():
        return (
            f"no pod arrived: thinning the pod list to --tune {tune:g} x the cluster's GPU "
            "capacity removed every pod"
        )
    reached = curves.loc[curves["gpu_alloc_ratio_pct"].notna(), "arrived_gpu_demand_pct"]
    last = f"{reached.max():g}%" if len(reached) else "0%"
    return (
        f"arrivals stopped at {last} of the cluster's GPU capacity, before every step the "
        f"summary reports ({steps} arrived GPU demand): the pod list's GPU requests are "
        f"coarse for this cluster; raise --tune above {tune:g}"
    )
