"""What a user is told: Kubernetes Events and log lines for what a pass found and did.

Events (see :mod:`cohabit.operator.events`, aggregated with counts):

=====================  =======  ==========  ==============================================
reason                 type     object      when
=====================  =======  ==========  ==============================================
Scheduled              Normal   Pod         cohabit bound it (``Successfully assigned``)
FailedScheduling       Warning  Pod         it fits on no node (kube-scheduler's wording),
                                            its binding was refused, or it follows a
                                            ``PlacementPolicy`` that does not exist
EvictedByCohabit       Normal   Pod         rebinding evicted it (it is placed again)
EvictionDryRun         Normal   Pod         rebinding would evict it (``dryRun: true``)
EvictionRefused        Warning  Pod         the Eviction API refused (a PDB: HTTP 429)
EvictionSkipped        Normal   Pod         the eviction budget or a guard held it back
EvictionFailed         Warning  Pod         the eviction failed
Resized                Normal   workload    Apply mode patched the target's requests
ResizeRefused/Failed   Warning  workload    the patch was refused or failed
InvalidSpec            Warning  workload,   the spec failed validation (field named)
                                policy
TargetNotFound         Warning  workload    ``spec.targetRef`` names nothing
PolicyNotFound         Warning  workload    ``spec.policyRef`` names no PlacementPolicy
LowConfidence          Normal/  workload    confidence fell below what may act (Warning
                       Warning              when telemetry is unavailable)
RecommendationProvided Normal   workload    confidence is back: recommendations act again
=====================  =======  ==========  ==============================================

Problem Events repeat each pass (their count grows); the confidence ones fire on the
transition only. Log lines about a state (invalid spec, missing target or policy) are
written when the state changes, not every pass.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from cohabit.engine.execute import Execution
from cohabit.model import Bind, Evict, Outcome, OutcomeStatus, Resize
from cohabit.operator.logs import obj
from cohabit.operator.runtime import Runtime
from cohabit.telemetry import ClusterSource

__all__ = [
    "AssumeBinds",
    "OutcomeReport",
    "report_invalid",
    "report_outcomes",
    "report_transitions",
    "report_unschedulable",
]

log = logging.getLogger("cohabit.operator")

_EVICTION = {"done": ("Normal", "EvictedByCohabit", "Evicted by cohabit to be placed again"),
             "dry-run": ("Normal", "EvictionDryRun",
                         "Would evict (PlacementPolicy rebinding.dryRun is true)"),
             "refused": ("Warning", "EvictionRefused", "Eviction refused"),
             "skipped": ("Normal", "EvictionSkipped", "Eviction held back"),
             "failed": ("Warning", "EvictionFailed", "Eviction failed")}
_RESIZE = {"done": ("Normal", "Resized"), "dry-run": ("Normal", "ResizeDryRun"),
           "refused": ("Warning", "ResizeRefused"), "skipped": ("Normal", "ResizeSkipped"),
           "failed": ("Warning", "ResizeFailed")}
_QUIET = ("pod is gone", "already bound", "requests already at the target",
          "pod is terminating", "pod is already terminating")


def _quiet(o: Outcome) -> bool:
    """Outcomes that change nothing a user needs to hear about (a race already settled)."""
    return o.status in (OutcomeStatus.DONE, OutcomeStatus.SKIPPED) and o.message.startswith(_QUIET)


class OutcomeReport:
    """The operator's :class:`~cohabit.engine.execute.OutcomeRecorder`: every execution of a
    plan counts in ``cohabit_actions_total{action,status}`` and gets its Events
    (:func:`report_outcomes`).

    Args:
        runtime: the operator runtime (metrics, Event recorder).
        workload_kind: the workload's kind, for the Events of its resizes.
    """

    def __init__(self, runtime: Runtime, workload_kind: str = "") -> None:
        self.runtime = runtime
        self.workload_kind = workload_kind

    def record(self, execution: Execution) -> None:
        for (action, status), n in execution.tally().items():
            self.runtime.metrics.actions.labels(action, status).inc(n)
        report_outcomes(self.runtime, execution.outcomes, workload_kind=self.workload_kind)


class AssumeBinds:
    """An :class:`~cohabit.engine.execute.OutcomeRecorder` telling the cluster source (the
    watch cache) about the binds just made: the next pass must not see that capacity as
    free before the watch delivers them (:meth:`ClusterSource.assume`)."""

    def __init__(self, cluster: ClusterSource) -> None:
        self.cluster = cluster

    def record(self, execution: Execution) -> None:
        for bind in execution.bound:
            self.cluster.assume(bind.pod, bind.node, bind.gpu_indices)


def report_outcomes(runtime: Runtime, outcomes: Sequence[Outcome], *,
                    workload_kind: str = "") -> None:
    """Events for the actuator's outcomes (binds and evictions on the pod, resizes on the
    workload; ``workload_kind`` names the workload's kind for the latter)."""
    for o in outcomes:
        if _quiet(o):
            continue
        action = o.action
        if isinstance(action, Bind):
            _report_bind(runtime, action, o)
        elif isinstance(action, Evict):
            type_, reason, lead = _EVICTION.get(o.status, _EVICTION["failed"])
            why = action.reason or "rebinding"
            detail = f": {o.message}" if o.message and o.status != OutcomeStatus.DRY_RUN else ""
            runtime.events.record(runtime.pod_ref(action.pod), type_, reason,
                                  f"{lead}{detail} ({why})")
        elif isinstance(action, Resize):
            type_, reason = _RESIZE.get(o.status, _RESIZE["failed"])
            runtime.events.record(runtime.workload_ref(action.workload, workload_kind), type_,
                                  reason, f"container {action.container}: {o.message}")


def _report_bind(runtime: Runtime, bind: Bind, o: Outcome) -> None:
    ref = runtime.pod_ref(bind.pod)
    if o.status == OutcomeStatus.DONE:
        gpus = f" (GPU {','.join(str(i) for i in bind.gpu_indices)})" if bind.gpu_indices else ""
        by = f", {bind.reason}" if bind.reason else ""
        runtime.events.normal(ref, "Scheduled",
                              f"Successfully assigned {bind.pod} to {bind.node}{gpus}{by}")
    elif o.status != OutcomeStatus.DRY_RUN:
        runtime.events.warning(ref, "FailedScheduling",
                               f"Binding to {bind.node} rejected: {o.message}")


def report_unschedulable(runtime: Runtime, unplaced: Sequence[tuple[str, str]],
                         policy: str) -> None:
    """``FailedScheduling`` for each ``(pod key, why)`` (log at INFO when the reason of a
    pod changes)."""
    for key, why in unplaced:
        runtime.events.warning(runtime.pod_ref(key), "FailedScheduling", why)
        if runtime.changed(key, "unschedulable", why):
            namespace, _, name = key.partition("/")
            log.info("fits on no node (policy %s): %s", policy, why, extra=obj(namespace, name))


def report_invalid(runtime: Runtime, key: str, kind: str, message: str) -> None:
    """An invalid workload or policy spec: Warning Event each pass, a log line on change."""
    namespace, _, name = key.partition("/")
    if kind == "PlacementPolicy":
        from cohabit.operator.events import ObjectRef

        ref = ObjectRef(kind, key, "", runtime.uids.get(key, ("", ""))[1],
                        "cohabit.io/v1alpha1")
        namespace, name = "", key
    else:
        ref = runtime.workload_ref(key, kind)
    runtime.events.warning(ref, "InvalidSpec", message)
    if runtime.changed(key, "invalid", message):
        log.warning("%s is invalid: %s", kind, message, extra=obj(namespace, name))


def _condition(status: Mapping[str, Any] | None, kind: str) -> dict[str, Any]:
    for c in (status or {}).get("conditions") or ():
        if c.get("type") == kind:
            return dict(c)
    return {}


def report_transitions(runtime: Runtime, key: str, kind: str,
                       previous: Mapping[str, Any] | None, new: Mapping[str, Any]) -> None:
    """Events and log lines for a workload's condition changes between ``previous`` and
    ``new`` status: a missing target or policy (each pass), low confidence entered or left
    (on the change only; the previous status is the stored one, so a restart does not
    repeat them)."""
    namespace, _, name = key.partition("/")
    ref = runtime.workload_ref(key, kind)
    ready = _condition(new, "Ready")
    for reason in ("TargetNotFound", "PolicyNotFound"):
        if ready.get("reason") == reason:
            runtime.events.warning(ref, reason, ready.get("message", ""))
    if runtime.changed(key, "ready", f"{ready.get('status')}:{ready.get('reason')}") and \
            ready.get("reason") in ("TargetNotFound", "PolicyNotFound", "NoPods"):
        log.warning("not ready (%s): %s", ready.get("reason"), ready.get("message", ""),
                    extra=obj(namespace, name))
    before, after = _condition(previous, "LowConfidence"), _condition(new, "LowConfidence")
    if after.get("reason") == "TargetNotFound":
        return  # said above
    was_low = before.get("status") == "True"
    now_low = after.get("status") == "True"
    if now_low and (not was_low or before.get("reason") != after.get("reason")):
        type_ = "Warning" if after.get("reason") == "TelemetryUnavailable" else "Normal"
        runtime.events.record(ref, type_, "LowConfidence",
                              f"{after.get('reason')}: {after.get('message', '')}; "
                              "recommendations do not act")
    elif was_low and not now_low and after:
        provided = _condition(new, "RecommendationProvided")
        runtime.events.normal(ref, "RecommendationProvided",
                              f"{provided.get('message', 'recommendation provided')}, "
                              f"{after.get('message', '')}")
