"""The online capacity planner of a ``DatabaseWorkload`` (``spec.qos.offeredLoadQuery`` set):
one decision per workload pass, through :func:`cohabit.engine.dbonline.control_once` -- the
same code the closed-loop benchmark judges -- and what ``status.capacityPlanner`` shows.

The planner's state (history of windows, last good allocation) lives in the runtime
(``runtime.db_planners``), one per workload; a changed target or bounds starts a new one. In
``Apply`` mode its resizes go through the Kubernetes actuator (in place through
``pods/resize`` where the API server serves it, else the owner's template: status says which);
in ``Recommend`` mode nothing changes. While the capacity planner owns a workload, the
usage-percentile right-sizing does not resize it (two controllers would fight).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from cohabit.config import WorkloadSpec
from cohabit.engine.dbonline import OnlineDatabasePlanner, control_once
from cohabit.model import Outcome, Pod, Resources, WorkloadMode
from cohabit.planner.dbonline import OnlineSettings
from cohabit.telemetry.base import TelemetryUnavailable
from cohabit.telemetry.dbsignals import (
    DatabaseQueries,
    PrometheusDatabaseSignals,
    workload_queries,
)

__all__ = ["capacity_planner", "planner_settings"]

log = logging.getLogger(__name__)

DEFAULT_BOUNDS = (100, 4000, 128, 8192)
"""CPU (millicores) and memory (MiB) bounds where ``spec.bounds`` says nothing."""


def planner_settings(parsed: WorkloadSpec, current: Resources) -> OnlineSettings:
    """The planner's target and bounds from the spec (``spec.bounds``; the defaults widened
    to include the current requests)."""
    w = parsed.workload
    lo_c, hi_c, lo_m, hi_m = DEFAULT_BOUNDS
    cpu_lo = w.min_resources.cpu_milli or min(lo_c, current.cpu_milli or lo_c)
    cpu_hi = w.max_resources.cpu_milli or max(hi_c, current.cpu_milli)
    mem_lo = w.min_resources.memory_mib or min(lo_m, current.memory_mib or lo_m)
    mem_hi = w.max_resources.memory_mib or max(hi_m, current.memory_mib)
    return OnlineSettings(target_p99_ms=w.qos_target.value, cpu_lo=cpu_lo, cpu_hi=cpu_hi,
                          mem_lo=mem_lo, mem_hi=mem_hi)


def _quantity(cpu: int, mem: int) -> dict[str, str]:
    return {"cpu": f"{cpu}m", "memory": f"{mem}Mi"}


def capacity_planner(runtime: Any, parsed: WorkloadSpec, pods: Sequence[Pod],
                     current: Mapping[tuple[str, str], Resources],
                     containers: Sequence[str], now: float
                     ) -> tuple[dict[str, Any], list[Outcome]]:
    """One decision for ``parsed``'s database container (its first sized container).

    Returns:
        ``(status.capacityPlanner, outcomes)``; no telemetry, no container requests or a
        query that cannot be confined give a ``no-data`` decision and no action, with why.
    """
    workload = parsed.workload
    key = workload.key
    container = containers[0] if containers else ""
    res = current.get((key, container))
    if not container or res is None or not (res.cpu_milli and res.memory_mib):
        return {"decision": "no-data", "why": f"container {container or '?'} of "
                f"{workload.target_kind} {workload.target_name} has no CPU and memory "
                "requests to start from"}, []
    settings = planner_settings(parsed, res)
    planner = runtime.db_planners.get(key)
    if planner is None or planner.settings != settings or planner.container != container:
        interval = max(60.0, runtime.settings.reconcile.interval_s)
        planner = OnlineDatabasePlanner(key, settings, (res.cpu_milli, res.memory_mib),
                                        horizon_s=5 * interval, lookback_s=15 * interval,
                                        container=container)
        runtime.db_planners[key] = planner
    window_s = max(60.0, runtime.settings.reconcile.interval_s)
    prom = runtime.settings.prometheus
    queries, source, why_no_data = _source(runtime, parsed, pods, container, window_s)
    actuator = runtime.actuator if workload.mode == WorkloadMode.APPLY else None
    decision, outcome = control_once(planner, source, queries, actuator, now=now,
                                     window_s=window_s, step_s=min(15.0, prom.step_s))
    status: dict[str, Any] = {
        "decision": decision.kind,
        "why": why_no_data if (decision.kind == "no-data" and why_no_data) else decision.reason,
        "confidence": round(decision.confidence, 3),
        "chosen": _quantity(*planner.current),
        "windows": len(planner.history),
        "resize": _resize_method(runtime, workload.target_kind),
    }
    if decision.recommended is not None:
        status["recommended"] = _quantity(*decision.recommended)
    if not math.isnan(decision.peak_tps):
        status["peakTps"] = round(decision.peak_tps, 2)
    if outcome is not None:
        status["lastOutcome"] = f"{outcome.status}: {outcome.message}"[:500]
    return status, [outcome] if outcome is not None else []


def _source(runtime: Any, parsed: WorkloadSpec, pods: Sequence[Pod], container: str,
            window_s: float) -> tuple[DatabaseQueries, Any, str]:
    """The queries, the signal source (None without one) and why there is no data."""
    workload = parsed.workload
    prom = runtime.settings.prometheus
    try:
        queries = workload_queries(
            workload.namespace, [p.name for p in pods], container,
            p99_query=workload.qos_target.query, offered_query=parsed.offered_load_query,
            window=f"{int(window_s)}s", namespace_label=prom.namespace_label,
            confined=workload.namespace not in prom.unconfined())
    except TelemetryUnavailable as exc:
        return DatabaseQueries(), None, str(exc)
    source = getattr(runtime, "db_signals", None)
    if source is not None:
        return queries, source, ""
    if not prom.url:
        return queries, None, "no Prometheus configured (COHABIT_PROMETHEUS_URL)"
    try:
        return queries, PrometheusDatabaseSignals(prom.url, timeout_s=prom.timeout_s), ""
    except TelemetryUnavailable as exc:
        return queries, None, str(exc)


def _resize_method(runtime: Any, kind: str) -> str:
    method = getattr(runtime.actuator, "resize_method", None)
    if method is None:
        return "through the actuator"
    try:
        return str(method(kind))
    except Exception as exc:  # noqa: BLE001 - status must be written whatever discovery says
        log.info("resize method unknown: %s", exc)
        return "unknown (API discovery failed)"
