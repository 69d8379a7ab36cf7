"""Workload and policy status: an :class:`~cohabit.engine.reconcile.Assessment` and the
actuator's outcomes rendered as the CRD's ``status`` (plain dicts; no kopf, no I/O).

Conditions follow the Kubernetes API conventions: ``type``, ``status`` (``True``/``False``/
``Unknown``), ``reason`` (CamelCase), ``message``, ``lastTransitionTime`` (kept while the
status does not change) and ``observedGeneration``. Types: ``Ready`` (the summary a user
reads first), ``RecommendationProvided`` (as VPA's), ``LowConfidence``, ``Placed``,
``Invalid``.

As VPA does, what was not measured stays absent: a container without usage samples gets no
recommendation, a resource without samples no amount, a window without QoS samples no
violation count, and ``confidence`` is absent until something was recommended. Amounts are
written twice: integers (``cpuMilli``, ``memoryMiB``, ``gpuMilli``, ``gpuMemoryMiB``) for
programs, and Kubernetes quantities under ``target`` (``250m``, ``16640Mi``) for
``kubectl get``'s printer columns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cohabit.engine.reconcile import Assessment
from cohabit.model import (
    Outcome,
    PlacementMode,
    QosMetric,
    QosTarget,
    Recommendation,
    Resize,
    Resources,
    WorkloadMode,
)

__all__ = [
    "CONDITION_TYPES",
    "Problems",
    "condition",
    "format_cpu",
    "format_gpu",
    "format_memory",
    "interference_status",
    "invalid_status",
    "iso",
    "low_confidence_reason",
    "merge_conditions",
    "policy_status",
    "qos_summary",
    "workload_status",
]

CONDITION_TYPES = ("Ready", "RecommendationProvided", "LowConfidence", "Placed", "Invalid")


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
    out: dict[str, dict[str, Any]] = {}
    for c in new:
        before = old.get(c["type"])
        if before and before.get("status") == c["status"] and before.get("lastTransitionTime"):
            c = {**c, "lastTransitionTime": before["lastTransitionTime"]}
        out[c["type"]] = c
    for kind, kept in old.items():
        if kind not in out and kind is not None:
            out[kind] = dict(kept)
    return [out[k] for k in sorted(out)]


# -- quantities ---------------------------------------------------------------------------


def format_cpu(milli: int) -> str:
    """Millicores as the quantity ``kubectl`` shows (``250`` -> ``250m``, ``2000`` -> ``2``)."""
    milli = int(milli)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def format_memory(mib: int) -> str:
    """MiB as a quantity (``16640`` -> ``16640Mi``, ``16384`` -> ``16Gi``)."""
    mib = int(mib)
    return f"{mib // 1024}Gi" if mib and mib % 1024 == 0 else f"{mib}Mi"


def format_gpu(milli: int) -> str:
    """Milli-GPU as a quantity of ``nvidia.com/gpu`` (``500`` -> ``500m``, half a GPU;
    ``1000`` -> ``1``)."""
    return format_cpu(milli)


def _amount(r: Resources) -> dict[str, int]:
    """The sized amounts of ``r`` (a 0 means "not sized": left out)."""
    out = {"cpuMilli": r.cpu_milli, "memoryMiB": r.memory_mib, "gpuMilli": r.gpu_milli,
           "gpuMemoryMiB": r.gpu_memory_mib}
    return {k: int(v) for k, v in out.items() if v > 0}


def _quantities(r: Resources) -> dict[str, str]:
    out = {}
    if r.cpu_milli > 0:
        out["cpu"] = format_cpu(r.cpu_milli)
    if r.memory_mib > 0:
        out["memory"] = format_memory(r.memory_mib)
    if r.gpu_milli > 0:
        out["gpu"] = format_gpu(r.gpu_milli)
    if r.gpu_memory_mib > 0:
        out["gpuMemory"] = format_memory(r.gpu_memory_mib)
    return out


def _recommendation(r: Recommendation) -> dict[str, Any]:
    out: dict[str, Any] = {"container": r.container, **_amount(r.target),
                           "target": _quantities(r.target)}
    lower, upper = _amount(r.lower), _amount(r.upper)
    if lower:
        out["lower"] = lower
    if upper:
        out["upper"] = upper
    out["confidence"] = round(float(r.confidence), 4)
    out["lowConfidence"] = bool(r.low_confidence)
    return out


def _measured(r: Recommendation) -> bool:
    """A recommendation that rests on samples (confidence 0 = none: the current requests
    echoed back, or nothing at all)."""
    return r.confidence > 0 and bool(_amount(r.target))


# -- QoS ----------------------------------------------------------------------------------


def _number(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def qos_summary(target: QosTarget, observed: float) -> str:
    """The QoS column: observed against target with the comparison that holds, e.g.
    ``18.2ms <= 20ms`` (met) or ``25.1ms > 20ms`` (violated); throughput in ``/s``."""
    unit = "/s" if target.metric == QosMetric.THROUGHPUT else "ms"
    ops = {(True, True): "<", (True, False): ">=", (False, True): ">", (False, False): "<="}
    op = ops[(target.metric == QosMetric.THROUGHPUT, target.violated(observed))]
    return f"{_number(observed)}{unit} {op} {_number(target.value)}{unit}"


def _qos(a: Assessment) -> dict[str, Any]:
    qos: dict[str, Any] = {"samples": int(a.qos_samples),
                           "target": float(a.workload.qos_target.value)}
    if a.qos_samples > 0:
        qos["violations"] = int(a.qos_violations)
    if not math.isnan(a.qos_observed):
        qos["observed"] = round(float(a.qos_observed), 4)
        qos["summary"] = qos_summary(a.workload.qos_target, a.qos_observed)
    return qos


# -- conditions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Problems:
    """What keeps a valid workload from being served, found outside the assessment.

    Attributes:
        target_missing: message when ``spec.targetRef`` names nothing (``""`` = found).
        policy_missing: message when ``spec.policyRef`` names no ``PlacementPolicy``.
    """

    target_missing: str = ""
    policy_missing: str = ""


def low_confidence_reason(a: Assessment, problems: Problems = Problems()) -> str:
    """The CamelCase reason of a low-confidence assessment: ``TargetNotFound``, ``NoPods``,
    ``TelemetryUnavailable`` (no or a failing Prometheus) or ``InsufficientHistory``."""
    if problems.target_missing:
        return "TargetNotFound"
    text = a.reason or ""
    if text.startswith("no pods"):
        return "NoPods"
    if "Prometheus" in text or "usage source" in text:
        return "TelemetryUnavailable"
    return "InsufficientHistory"


def _ready(a: Assessment, problems: Problems, pending: int, recommended: bool,
           low_reason: str) -> tuple[bool, str, str]:
    """The summary: the first thing that keeps the workload from being served."""
    if problems.target_missing:
        return False, "TargetNotFound", problems.target_missing
    if problems.policy_missing:
        return False, "PolicyNotFound", problems.policy_missing
    if not a.pods:
        return False, "NoPods", ("no pods carry the label "
                                 f"cohabit.io/workload={a.workload.name}")
    if not recommended:
        return False, low_reason, a.reason or "low confidence"
    if pending and a.workload.placement == PlacementMode.MANAGED:
        return False, "PodsPending", f"{pending} of {len(a.pods)} pod(s) wait for a node"
    verb = "Applying" if a.workload.mode == WorkloadMode.APPLY else "Recommending"
    return True, verb, (f"{verb.lower()} requests for {len(a.pods)} pod(s); QoS "
                        + ("not measured yet" if a.qos_samples == 0 else
                           f"{a.qos_violations} violation(s) in {a.qos_samples} sample(s)"))


def _conditions(a: Assessment, problems: Problems, pending: int, generation: int,
                now: float) -> list[dict[str, Any]]:
    measured = [r for r in a.recommendations if _measured(r)]
    recommended = bool(measured) and not a.low_confidence and not problems.target_missing
    low_reason = low_confidence_reason(a, problems)
    conds = [condition("Invalid", False, "SpecValid", "spec passed validation", generation,
                       now)]
    if recommended:
        conds.append(condition("RecommendationProvided", True, "Recommended",
                               f"{len(measured)} container(s) sized", generation, now))
        conds.append(condition("LowConfidence", False, "Confident",
                               f"confidence {min(r.confidence for r in measured):.2f}",
                               generation, now))
    else:
        message = problems.target_missing or a.reason or "low confidence"
        conds.append(condition("RecommendationProvided", False, low_reason,
                               "no action taken: " + message, generation, now))
        conds.append(condition("LowConfidence", True, low_reason, message, generation, now))
    managed = a.workload.placement == PlacementMode.MANAGED
    if not a.pods:
        conds.append(condition("Placed", False, "NoPods", "no pods carry the label "
                               f"cohabit.io/workload={a.workload.name}", generation, now))
    elif pending and problems.policy_missing and managed:
        conds.append(condition("Placed", False, "PolicyNotFound",
                               f"{pending} of {len(a.pods)} pod(s) wait: "
                               + problems.policy_missing, generation, now))
    elif pending:
        conds.append(condition("Placed", False, "PodsPending",
                               f"{pending} of {len(a.pods)} pod(s) wait for a node", generation,
                               now))
    else:
        reason = "BoundByCohabit" if managed else "BoundByOtherScheduler"
        conds.append(condition("Placed", True, reason,
                               f"{len(a.pods)} pod(s) on {', '.join(a.nodes) or 'no node'}",
                               generation, now))
    ready, reason, message = _ready(a, problems, pending, recommended, low_reason)
    conds.append(condition("Ready", ready, reason, message, generation, now))
    return conds


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
    problems: Problems = Problems(),
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
        problems: a missing target or policy (reasons ``TargetNotFound``,
            ``PolicyNotFound``).
    """
    measured = ([r for r in a.recommendations if _measured(r)]
                if not problems.target_missing else [])
    status: dict[str, Any] = {
        "observedGeneration": int(generation),
        "recommendations": [_recommendation(r) for r in measured],
        "nodes": list(a.nodes),
        "qos": _qos(a),
        "lastActions": ([_outcome(o, now) for o in outcomes][-20:] if outcomes
                        else list((previous or {}).get("lastActions") or [])),
        "lastPlanTime": iso(now),
        "conditions": merge_conditions(
            (previous or {}).get("conditions"),
            _conditions(a, problems, pending, generation, now)),
    }
    if measured:
        status["confidence"] = round(min(r.confidence for r in measured), 4)
    if a.nodes:  # (an empty string here came back as null through kopf's status patch)
        status["node"] = a.nodes[0]
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
                   previous: Mapping[str, Any] | None = None, *,
                   workload: bool = True) -> dict[str, Any]:
    """Status of a workload (or, ``workload=False``, a policy) whose spec failed validation
    (``Invalid`` True, ``Ready`` False with reason ``InvalidSpec``)."""
    text = f"{field}: {message}" if field not in message else message
    conds = [condition("Invalid", True, "InvalidSpec", text, generation, now),
             condition("Ready", False, "InvalidSpec", text, generation, now)]
    if workload:
        conds.append(condition("RecommendationProvided", False, "InvalidSpec",
                               "spec is invalid", generation, now))
    return {"observedGeneration": int(generation),
            "conditions": merge_conditions((previous or {}).get("conditions"), conds)}


def policy_status(policy: str, generation: int, now: float,
                  previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Status of an accepted ``PlacementPolicy`` (``Invalid`` False, ``Ready`` True)."""
    conds = [condition("Invalid", False, "SpecValid", f"placement policy {policy}",
                       generation, now),
             condition("Ready", True, "Accepted",
                       f"scheduling pods that follow it with placement policy {policy}",
                       generation, now)]
    previous_conds = [c for c in (previous or {}).get("conditions") or ()
                      if c.get("type") != "RecommendationProvided"]
    return {"observedGeneration": int(generation),
            "conditions": merge_conditions(previous_conds, conds)}
