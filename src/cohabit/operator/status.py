"""Workload status: an :class:`~cohabit.engine.reconcile.Assessment` and the actuator's
outcomes rendered as the CRD's ``status`` (plain dicts; no kopf, no I/O).

Conditions follow the Kubernetes API conventions: ``type``, ``status`` (``True``/``False``/
``Unknown``), ``reason`` (CamelCase), ``message``, ``lastTransitionTime`` (kept while the
status does not change) and ``observedGeneration``. Types: ``RecommendationProvided``,
``LowConfidence``, ``Placed``, ``Invalid``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from cohabit.engine.reconcile import Assessment
from cohabit.model import Outcome, Recommendation, Resize, Resources

__all__ = [
    "CONDITION_TYPES",
    "condition",
    "invalid_status",
    "interference_status",
    "iso",
    "merge_conditions",
    "workload_status",
]

CONDITION_TYPES = ("RecommendationProvided", "LowConfidence", "Placed", "Invalid")


def iso(epoch: float) -> str:
    """Epoch seconds as RFC 3339 UTC (``2026-11-22T02:30:00Z``)."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(kind: str, status: bool | None, reason: str, message: str, generation: int,
              now: float) -> dict[str, Any]:
    """One condition dict (``status`` None = ``Unknown``)."""
    value = "Unknown" if status is None else ("True" if status else "False")
    return {"type": kind, "status": value, "reason": reason, "message": message[:1000],
            "lastTransitionTime": iso(now), "observedGeneration": int(generation)}


def merge_conditions(previous: Sequence[Mapping[str, Any]] | None,
                     new: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``new`` conditions, keeping a previous ``lastTransitionTime`` where the status is the
    same; previous conditions of other types are kept (sorted by type)."""
    old = {c.get("type"): c for c in previous or ()}
    out = {}
    for c in new:
        before = old.get(c["type"])
        if before and before.get("status") == c["status"] and before.get("lastTransitionTime"):
            c = {**c, "lastTransitionTime": before["lastTransitionTime"]}
        out[c["type"]] = c
    for kind, c in old.items():
        if kind not in out and kind is not None:
            out[kind] = dict(c)
    return [out[k] for k in sorted(out)]


def _amount(r: Resources) -> dict[str, int]:
    return {"cpuMilli": r.cpu_milli, "memoryMiB": r.memory_mib, "gpuMilli": r.gpu_milli,
            "gpuMemoryMiB": r.gpu_memory_mib}


def _recommendation(r: Recommendation) -> dict[str, Any]:
    return {"container": r.container, **_amount(r.target), "lower": _amount(r.lower),
            "upper": _amount(r.upper), "confidence": round(float(r.confidence), 4),
            "lowConfidence": bool(r.low_confidence)}


def _outcome(o: Outcome, now: float) -> dict[str, str]:
    action = o.action
    target = (f"{action.workload}/{action.container}" if isinstance(action, Resize)
              else action.pod)
    return {"action": type(action).__name__, "target": target, "status": o.status,
            "message": o.message[:500], "time": iso(now)}


def workload_status(
    a: Assessment,
    outcomes: Sequence[Outcome],
    generation: int,
    now: float,
    *,
    previous: Mapping[str, Any] | None = None,
    pending: int = 0,
) -> dict[str, Any]:
    """The ``status`` of a workload after one pass.

    Args:
        a: the assessment.
        outcomes: what the actuator did for this workload this pass; ``lastActions`` lists
            them (at most 20, each with its ``time``), or, after a pass without any, keeps
            the previous pass's list, so the last resize or eviction stays visible.
        generation: ``metadata.generation`` the pass saw.
        now: epoch seconds.
        previous: the current status (for condition transition times and the kept
            ``lastActions``).
        pending: the workload's pods still waiting for a node.
    """
    conds = [condition("Invalid", False, "SpecValid", "spec passed validation", generation,
                       now)]
    if a.recommendations and not a.low_confidence:
        conds.append(condition("RecommendationProvided", True, "Recommended",
                               f"{len(a.recommendations)} container(s) sized", generation, now))
        conds.append(condition("LowConfidence", False, "Confident",
                               f"confidence {min(r.confidence for r in a.recommendations):.2f}",
                               generation, now))
    else:
        conds.append(condition("RecommendationProvided", False, "LowConfidence",
                               "no action taken: " + (a.reason or "low confidence"),
                               generation, now))
        source = "TelemetryUnavailable" if ("Prometheus" in a.reason or "source" in a.reason) \
            else "InsufficientHistory"
        conds.append(condition("LowConfidence", True, source, a.reason or "low confidence",
                               generation, now))
    managed = a.workload.placement == "managed"
    if not a.pods:
        conds.append(condition("Placed", False, "NoPods", "no pods carry the label "
                               f"cohabit.io/workload={a.workload.name}", generation, now))
    elif pending:
        conds.append(condition("Placed", False, "PodsPending",
                               f"{pending} of {len(a.pods)} pod(s) wait for a node", generation,
                               now))
    else:
        reason = "BoundByCohabit" if managed else "BoundByOtherScheduler"
        conds.append(condition("Placed", True, reason,
                               f"{len(a.pods)} pod(s) on {', '.join(a.nodes) or 'no node'}",
                               generation, now))
    status: dict[str, Any] = {
        "observedGeneration": int(generation),
        "recommendations": [_recommendation(r) for r in a.recommendations],
        "confidence": round(min((r.confidence for r in a.recommendations), default=0.0), 4),
        "nodes": list(a.nodes),
        "qos": {"violations": int(a.qos_violations), "samples": int(a.qos_samples)},
        "lastActions": ([_outcome(o, now) for o in outcomes][-20:] if outcomes
                        else list((previous or {}).get("lastActions") or [])),
        "lastPlanTime": iso(now),
        "conditions": merge_conditions((previous or {}).get("conditions"), conds),
    }
    if a.nodes:  # (an empty string here came back as null through kopf's status patch)
        status["node"] = a.nodes[0]
    if not math.isnan(a.qos_observed):
        status["qos"]["observed"] = round(float(a.qos_observed), 4)
    interference = interference_status(a)
    if interference:
        status["interference"] = interference
    return status


def _vector(pairs: Sequence[tuple[str, float]]) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in pairs if not math.isnan(v)}


def interference_status(a: Assessment) -> dict[str, Any]:
    """``status.interference``: pressure and sensitivity per shared resource, which pressure
    components were measured from telemetry (the rest are declared), which expected ones
    are absent and why, and the measurement's confidence. Empty when there is nothing."""
    if a.interference is None and not a.pressure_missing:
        return {}
    profile = a.interference
    out: dict[str, Any] = {
        "pressure": _vector(profile.pressure) if profile else {},
        "sensitivity": _vector(profile.sensitivity) if profile else {},
        "measured": list(a.pressure_measured),
        "confidence": round(float(a.interference_confidence), 4),
    }
    if a.pressure_missing:
        out["missing"] = [{"resource": k, "reason": r} for k, r in a.pressure_missing]
    return out


def invalid_status(field: str, message: str, generation: int, now: float,
                   previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Status of a workload or policy whose spec failed validation (``Invalid`` True)."""
    conds = [
        condition("Invalid", True, "InvalidSpec", f"{field}: {message}" if field not in message
                  else message, generation, now),
        condition("RecommendationProvided", False, "InvalidSpec", "spec is invalid",
                  generation, now),
    ]
    return {"observedGeneration": int(generation),
            "conditions": merge_conditions((previous or {}).get("conditions"), conds)}
