"""What the kopf handlers do, as plain synchronous functions over a :class:`Runtime`.

* :func:`reconcile_workload` -- one workload: parse, read its target and pods, assess through
  the engine, right-size through the actuator, return the status to write.
* :func:`scheduling_pass` -- one policy: snapshot the cluster, place pending pods and (when
  due) rebind through the engine, carry the plan out through the actuator.
* :func:`accept_policy` -- parse and validate a ``PlacementPolicy``.

Each tells the user what it found and did through :mod:`cohabit.operator.report` (Events,
log lines on change) and ends with one INFO line per workload pass.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from cohabit.actuator.base import EvictionLimits
from cohabit.actuator.kubernetes import API_ERRORS, CONNECTION_ERRORS
from cohabit.config import (
    GROUP,
    VERSION,
    PolicyConfig,
    RebindingConfig,
    RightSizingConfig,
    SpecError,
    WorkloadSpec,
    parse_policy,
    parse_workload,
)
from cohabit.engine.execute import Execution, OutcomeRecorder, execute_plan
from cohabit.engine.observe import gpu_model_views, pending_views
from cohabit.engine.reconcile import Assessment, assess, reconcile_once, validate_policy
from cohabit.model import (
    Action,
    Bind,
    Evict,
    Outcome,
    OutcomeStatus,
    PlacementMode,
    Plan,
    Pod,
    Resize,
    Snapshot,
    WorkloadMode,
)
from cohabit.operator.dbplanner import capacity_planner
from cohabit.operator.logs import obj
from cohabit.operator.report import (
    AssumeBinds,
    OutcomeReport,
    report_invalid,
    report_transitions,
    report_unschedulable,
)
from cohabit.operator.runtime import Runtime
from cohabit.operator.status import (
    Problems,
    invalid_status,
    policy_status,
    workload_status,
)
from cohabit.telemetry.kube import TelemetryError, read_target, template_requests

__all__ = ["accept_policy", "forget_policy", "forget_workload", "reconcile_workload",
           "scheduling_pass"]

log = logging.getLogger(__name__)

_LIST_ERRORS: tuple[type[BaseException], ...] = (*API_ERRORS, TelemetryError)
"""What listing the cluster may raise: the scheduling pass then skips its turn."""


def reconcile_workload(
    runtime: Runtime,
    kind: str,
    name: str,
    namespace: str,
    spec: Mapping[str, Any],
    generation: int,
    status: Mapping[str, Any] | None,
    now: float,
    uid: str = "",
) -> dict[str, Any]:
    """Reconcile one ``DatabaseWorkload``/``GpuWorkload``; returns its new ``status``.

    A spec failing validation gives ``Invalid`` (field named) and no action; a missing target
    ``TargetNotFound``, a ``policyRef`` naming no policy ``PolicyNotFound`` (its pods stay
    pending and count as such); missing telemetry gives ``LowConfidence`` and no action; in
    ``Apply`` mode a confident recommendation outside tolerance is applied to the target
    through the actuator. ``uid`` (the custom resource's) makes its Events findable by
    ``kubectl describe``.
    """
    started = time.perf_counter()
    key = f"{namespace}/{name}"
    if uid:
        runtime.uids[key] = (kind, uid)
    try:
        parsed = parse_workload(kind, spec, name=name, namespace=namespace)
    except SpecError as exc:
        return _invalid_workload(runtime, key, kind, exc, generation, status, now)
    runtime.invalid.pop(key, None)
    workload = parsed.workload
    runtime.workloads[key] = parsed
    runtime.targets[key] = (namespace, workload.target_kind, workload.target_name)

    target, current, containers = _read_target(runtime, key, parsed)
    snapshot = runtime.cluster.workload_snapshot(namespace, name, now)
    pods = list(snapshot.pods)
    assessment = assess(parsed, snapshot, runtime.usage, now,
                        window_s=runtime.settings.prometheus.window_s,
                        containers=containers, current=current,
                        recommender=runtime.tuner.recommender if runtime.tuner else None)
    problems = Problems(
        target_missing=("" if target is not None else
                        f"{workload.target_kind} {namespace}/{workload.target_name} not found "
                        "(spec.targetRef)"),
        policy_missing=_policy_problem(runtime, parsed.policy_ref))
    if target is None:
        assessment = replace(assessment, low_confidence=True, reason=problems.target_missing)
    runtime.assessments[key] = assessment
    planner_status = None
    recorder = OutcomeReport(runtime, workload_kind=kind)
    if parsed.offered_load_query:  # the online capacity planner owns the resizes
        planner_status, outcomes = capacity_planner(runtime, parsed, pods, current,
                                                    containers, now)
        recorder.record(Execution(tuple(outcomes)))
    else:
        outcomes = ([] if problems.policy_missing else  # its thresholds are the policy's
                    _right_size(runtime, parsed, snapshot, current, assessment, now, recorder))
        if parsed.policy_ref in runtime.invalid_policies:  # _right_size found it invalid
            problems = replace(problems, policy_missing=_policy_problem(runtime,
                                                                        parsed.policy_ref))
    if workload.placement == PlacementMode.MANAGED and any(p.node is None for p in pods):
        # Its pending pods waited for this spec (see scheduling_pass): wake the policy's
        # scheduler loop rather than run a whole-cluster pass inside this handler.
        runtime.waker(parsed.policy_ref).set()
    pending = sum(1 for p in pods if p.node is None)
    result = workload_status(assessment, outcomes, generation, now, previous=status,
                             pending=pending, problems=problems)
    if planner_status is not None:
        result["capacityPlanner"] = planner_status
    report_transitions(runtime, key, kind, status, result)
    _workload_metrics(runtime, kind, key, assessment, result)
    runtime.metrics.set_requests(namespace, name, kind, {c: r for (_, c), r in current.items()},
                                 assessment.low_confidence)
    _log_pass(runtime, kind, key, result, outcomes, time.perf_counter() - started)
    runtime.metrics.reconcile_duration.labels("workload").observe(time.perf_counter() - started)
    return result


def _invalid_workload(runtime: Runtime, key: str, kind: str, exc: SpecError, generation: int,
                      status: Mapping[str, Any] | None, now: float) -> dict[str, Any]:
    namespace, _, name = key.partition("/")
    for table in (runtime.workloads, runtime.assessments, runtime.targets):
        table.pop(key, None)
    result = invalid_status(exc.field, str(exc), generation, now, status)
    message = next(c["message"] for c in result["conditions"] if c["type"] == "Invalid")
    runtime.invalid[key] = message
    runtime.ready[key] = False
    report_invalid(runtime, key, kind, message)
    runtime.metrics.forget_recommendations(namespace, name, kind)
    runtime.metrics.forget_requests(namespace, name, kind)
    runtime.metrics.forget_qos(namespace, name, kind)
    runtime.refresh_counts()
    return result


def _read_target(runtime: Runtime, key: str, parsed: WorkloadSpec
                 ) -> tuple[dict[str, Any] | None, dict[tuple[str, str], Any], tuple[str, ...]]:
    """The target object (None when missing), its containers' current requests and the
    containers to size."""
    workload = parsed.workload
    current: dict[tuple[str, str], Any] = {}
    containers: tuple[str, ...] = parsed.containers
    target = read_target(runtime.api_client, workload.namespace, workload.target_kind,
                         workload.target_name,
                         request_timeout=runtime.settings.kube.request_timeout_s)
    if target is not None:
        try:
            for container, res in template_requests(target).items():
                current[(key, container)] = res
        except TelemetryError as exc:
            log.warning("%s", exc, extra=obj(workload.namespace, workload.name))
        if not containers:
            containers = tuple(c for (_, c) in current)
    return target, current, containers


def _policy_problem(runtime: Runtime, name: str) -> str:
    """``""`` when PlacementPolicy ``name`` is accepted, else what is wrong with it. One GET
    (with a timeout) tells "does not exist" from "not read yet" (at startup the policies'
    handlers may not have run)."""
    if name in runtime.policies:
        return ""
    if name in runtime.invalid_policies:
        return f"PlacementPolicy {name!r} is invalid: {runtime.invalid_policies[name]}"
    if runtime.api_client is None:
        return f"PlacementPolicy {name!r} does not exist (spec.policyRef)"
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        client.CustomObjectsApi(runtime.api_client).get_cluster_custom_object(
            GROUP, VERSION, "placementpolicies", name, _preload_content=False,
            _request_timeout=runtime.settings.kube.request_timeout_s)
    except ApiException as exc:
        if exc.status == 404:
            return f"PlacementPolicy {name!r} does not exist (spec.policyRef)"
        log.info("cannot read PlacementPolicy %s: HTTP %s", name, exc.status)
    except CONNECTION_ERRORS as exc:  # a timeout: decide on the next pass
        log.info("cannot read PlacementPolicy %s: %s", name, exc)
    return ""  # exists (its handler has not accepted it yet) or unknown for now


def _right_size(runtime: Runtime, parsed: WorkloadSpec, snapshot: Snapshot,
                current: dict[tuple[str, str], Any], assessment: Assessment,
                now: float, recorder: OutcomeRecorder) -> list[Outcome]:
    """Apply mode: the planner's resizes carried out by the actuator through the engine
    step, recorded by ``recorder`` (none otherwise)."""
    key = parsed.workload.key
    if assessment.low_confidence or parsed.workload.mode != WorkloadMode.APPLY:
        return []
    policy = runtime.policy(parsed.policy_ref)
    # Right-sizing only: binds and evictions belong to the policy's scheduling pass.
    only_resize = replace(policy, rebinding=RebindingConfig(enabled=False))
    try:
        plan = reconcile_once(snapshot, [parsed], runtime.usage, only_resize, now,
                              current=current, assessments={key: assessment}, place=False)
    except SpecError as exc:  # no fallback policy: the policy is reported invalid, no action
        _reject_policy(runtime, parsed.policy_ref, str(exc))
        return []
    resizes = [a for a in plan.actions if isinstance(a, Resize)]
    # patches of the target only: no lock (placement state is untouched)
    return list(execute_plan(resizes, runtime.actuator, recorders=(recorder,)).outcomes)


def _workload_metrics(runtime: Runtime, kind: str, key: str, a: Assessment,
                      status: Mapping[str, Any]) -> None:
    namespace, _, name = key.partition("/")
    m = runtime.metrics
    m.recommendations.labels(kind, "low" if a.low_confidence else "ok").inc(
        len(status.get("recommendations") or ()))
    sized = {r["container"] for r in status.get("recommendations") or ()}
    m.set_recommendations(namespace, name, kind,
                          [r for r in a.recommendations if r.container in sized],
                          status.get("confidence"))
    if a.qos_samples > 0:
        m.qos_violations.labels(namespace, name, kind).set(a.qos_violations)
    else:
        m.forget_qos(namespace, name, kind)
    ready: Mapping[str, Any] = next(
        (c for c in status["conditions"] if c["type"] == "Ready"), {})
    runtime.ready[key] = ready.get("status") == "True"
    runtime.refresh_counts()


def _log_pass(runtime: Runtime, kind: str, key: str, status: Mapping[str, Any],
              outcomes: list[Outcome], seconds: float) -> None:
    """The INFO line of one workload pass: Ready, what is recommended, QoS, pods, actions."""
    namespace, _, name = key.partition("/")
    ready: Mapping[str, Any] = next(
        (c for c in status["conditions"] if c["type"] == "Ready"), {})
    sized = []
    for r in status.get("recommendations") or ():
        parts = [f"{k} {v}" for k, v in (r.get("target") or {}).items()]
        sized.append(f"{r['container']}: {', '.join(parts)}")
    what = "; ".join(sized) or "no recommendation"
    if "confidence" in status:
        what += f" at confidence {status['confidence']:.2f}"
    qos = status.get("qos") or {}
    qos_text = (f"QoS {qos['summary']} ({qos.get('violations', 0)}/{qos['samples']} samples "
                "violated)" if "summary" in qos else "QoS not measured")
    nodes = status.get("nodes") or []
    log.info("reconciled %s: Ready=%s (%s); %s; %s; %s; %d action(s); %.2f s", kind,
             ready.get("status"), ready.get("reason"), what, qos_text,
             f"pods on {', '.join(nodes)}" if nodes else "no pods placed", len(outcomes),
             seconds, extra=obj(namespace, name))


def forget_workload(runtime: Runtime, name: str, namespace: str, kind: str = "") -> None:
    """Drop a deleted workload from the runtime and its metric series."""
    key = f"{namespace}/{name}"
    kinds = [kind] if kind else ["DatabaseWorkload", "GpuWorkload"]
    known = runtime.uids.get(key, ("", ""))[0]
    if known and not kind:
        kinds = [known]
    runtime.forget(key)
    for k in kinds:
        runtime.metrics.forget_recommendations(namespace, name, k)
        runtime.metrics.forget_requests(namespace, name, k)
        runtime.metrics.forget_qos(namespace, name, k)
    runtime.refresh_counts()
    log.info("forgotten (deleted)", extra=obj(namespace, name))


def accept_policy(runtime: Runtime, name: str, spec: Mapping[str, Any], generation: int,
                  status: Mapping[str, Any] | None, now: float, uid: str = "") -> dict[str, Any]:
    """Parse a ``PlacementPolicy`` into the runtime; returns its status."""
    if uid:
        runtime.uids[name] = ("PlacementPolicy", uid)
    try:
        config = parse_policy(spec, name=name)
        validate_policy(config)
    except SpecError as exc:
        result = invalid_status(exc.field, str(exc), generation, now, status, workload=False)
        _reject_policy(runtime, name, next(c["message"] for c in result["conditions"]
                                           if c["type"] == "Invalid"))
        return result
    runtime.invalid_policies.pop(name, None)
    runtime.policies[name] = config
    runtime.wake_all()
    summary = (f"placement {config.policy}, rebinding "
               + ("off" if not config.rebinding.enabled else
                  f"{'dry-run' if config.rebinding.dry_run else 'on'}, "
                  f"{config.rebinding.evictions_per_hour}/h"))
    if runtime.changed(name, "policy", summary):
        log.info("PlacementPolicy accepted: %s", summary, extra=obj("", name))
    return policy_status(config.policy, generation, now, status)


def _reject_policy(runtime: Runtime, name: str, message: str) -> None:
    """PlacementPolicy ``name`` is invalid (``message`` names the field): it no longer
    places or sizes anything (its pods wait, its workloads report it), and it gets the
    ``InvalidSpec`` Warning Event until its spec changes."""
    runtime.policies.pop(name, None)
    runtime.invalid_policies[name] = message
    report_invalid(runtime, name, "PlacementPolicy", message)


def forget_policy(runtime: Runtime, name: str) -> None:
    """Drop a deleted ``PlacementPolicy``: workloads naming it report ``PolicyNotFound``."""
    runtime.policies.pop(name, None)
    runtime.invalid_policies.pop(name, None)
    for said in [k for k in runtime.said if k[0] == name]:
        del runtime.said[said]
    log.info("PlacementPolicy deleted", extra=obj("", name))


def _policy_of_pod(runtime: Runtime, namespace: str, workload: str | None) -> str:
    if workload:
        spec = runtime.workloads.get(f"{namespace}/{workload}")
        if spec is not None:
            return spec.policy_ref
    return runtime.settings.scheduler.default_policy


def scheduling_pass(runtime: Runtime, policy_name: str, now: float, *,
                    rebind: bool = False) -> list[Outcome]:
    """Place the pending pods that follow ``policy_name`` and, when ``rebind``, let the
    rebinding policy propose evictions; the actuator carries both out.

    Pods follow the policy of their workload (``cohabit.io/workload`` label ->
    ``spec.policyRef``) or, without one, the default policy. Nothing happens before the
    watch cache has synced, or while the policy's spec is invalid (its pods get
    ``FailedScheduling`` saying so). Every bind, eviction and pod that fits nowhere gets its
    Event (:mod:`cohabit.operator.report`); pods following a policy that does not exist get
    theirs from the pass of the first accepted policy.
    """
    started = time.perf_counter()
    if not runtime.cluster.synced:
        return []
    if policy_name in runtime.invalid_policies:
        _report_waiting(runtime, now, {policy_name})
        return []
    policy: PolicyConfig = runtime.policy(policy_name)
    # Network I/O (the list here, the binds and evictions below) runs outside the lock; only
    # planning holds it, and binds decided but not yet listed are overlaid (InflightBinds).
    listed_at = runtime.inflight.mark()
    try:
        snapshot = runtime.cluster.snapshot(now)
    except _LIST_ERRORS as exc:
        log.warning("policy %s: cluster not listed, no pass: %s", policy_name, exc)
        return []
    with runtime.lock:
        snapshot = runtime.inflight.overlay(snapshot, listed_at)
        plan = _plan_scheduling(runtime, policy_name, _scheduling_config(policy, rebind),
                                snapshot, now)
        actions = [a for a in plan.actions if isinstance(a, Bind | Evict)]
        runtime.inflight.assume([a for a in actions if isinstance(a, Bind)],
                                {p.key: p for p in snapshot.pods})
    outcomes = _carry_out(runtime, actions, policy)
    _after_scheduling(runtime, policy_name, snapshot, plan, outcomes, now)
    runtime.metrics.reconcile_duration.labels("scheduling").observe(
        time.perf_counter() - started)
    return outcomes


def _scheduling_config(policy: PolicyConfig, rebind: bool) -> PolicyConfig:
    """``policy`` for a scheduling pass: no right-sizing; rebinding only when ``rebind``."""
    scheduling = replace(policy, right_sizing=RightSizingConfig(enabled=False))
    if rebind:
        return scheduling
    return replace(scheduling, rebinding=RebindingConfig(enabled=False))


def _plan_scheduling(runtime: Runtime, policy_name: str, scheduling: PolicyConfig,
                     snapshot: Snapshot, now: float) -> Plan:
    """The engine's plan for the pending pods that follow ``policy_name`` (and its
    rebinding moves); called under :attr:`Runtime.lock`."""
    specs = [s for s in runtime.workloads.values() if s.policy_ref == policy_name]
    keys = {s.workload.key for s in specs}
    assessments = {k: a for k, a in runtime.assessments.items() if k in keys}
    grace = runtime.settings.scheduler.workload_grace_s

    def mine(pod: Pod) -> bool:
        return _policy_of_pod(runtime, pod.namespace, pod.workload) == policy_name

    def ready(pod: Pod) -> bool:
        # A new pod of a cohabit workload waits (up to the grace period) until the
        # workload's spec is parsed: its policyRef and declared interference profile
        # decide where it goes, so a pass racing the workload handler must not place it
        # blind. It does not wait for the telemetry assessment (Prometheus queries take
        # seconds; kube-scheduler does not hold pods for metrics either): measured
        # pressure refines later placements and rebinding.
        # The grace counts from the operator's start at the latest: right after a
        # restart every pod is old, and the workload handlers have not run yet.
        if not pod.workload or f"{pod.namespace}/{pod.workload}" in runtime.workloads:
            return mine(pod)
        return now - max(pod.creation_time, runtime.started) >= grace and mine(pod)

    return reconcile_once(snapshot, specs, None, scheduling, now, assessments=assessments,
                          slowdown=runtime.slowdown, pending_filter=ready,
                          max_pending=runtime.settings.scheduler.max_pods_per_pass)


def _carry_out(runtime: Runtime, actions: Sequence[Action], policy: PolicyConfig
               ) -> list[Outcome]:
    """The pass's binds and evictions through the engine step, under the policy's eviction
    limits; the watch cache assumes the binds done, metrics and Events record every
    outcome. The in-flight binds are settled whatever happens (all forgotten as failed if
    the actuator raised)."""
    outcomes: list[Outcome] = []
    try:
        outcomes = list(execute_plan(actions, runtime.actuator,
                                     limits=EvictionLimits.from_config(policy.rebinding),
                                     recorders=(AssumeBinds(runtime.cluster),
                                                OutcomeReport(runtime))).outcomes)
    finally:  # binds without a "done" outcome (or all, if apply raised) are forgotten
        runtime.inflight.finish(outcomes or [Outcome(a, OutcomeStatus.FAILED) for a in actions])
    return outcomes


def _after_scheduling(runtime: Runtime, policy_name: str, snapshot: Snapshot, plan: Plan,
                      outcomes: list[Outcome], now: float) -> None:
    """What a pass tells after carrying its plan out: pods that fit nowhere, pods of
    missing policies (the first policy's pass), the pending and cluster gauges; a pass that
    deferred pods wakes its loop again at once."""
    report_unschedulable(runtime, plan.unschedulable, policy_name)
    if runtime.policies and policy_name == min(runtime.policies):
        _report_orphans(runtime, snapshot, now)
    if runtime.cluster.pending_count() is None:  # else the cache's gauge reads it live
        pending = sum(1 for p in snapshot.pods if p.node is None and p.deletion_time is None)
        placed = sum(1 for o in outcomes
                     if isinstance(o.action, Bind) and o.status == OutcomeStatus.DONE)
        runtime.metrics.pending.set(max(0, pending - placed))
    _observe_cluster(runtime, snapshot, outcomes, now)
    if plan.deferred:
        runtime.waker(policy_name).set()  # more to place: the loop goes again at once


def _observe_cluster(runtime: Runtime, snapshot: Snapshot, outcomes: list[Outcome],
                     now: float) -> None:
    """The dashboards' cluster view (:mod:`cohabit.engine.observe`) from the pass's snapshot:
    GPU allocation and fragmentation per GPU model, pending pods by QoS class (the pods this
    pass bound no longer count)."""
    placed = [o.action.pod for o in outcomes
              if isinstance(o.action, Bind) and o.status == OutcomeStatus.DONE]
    try:
        gpus = gpu_model_views(snapshot)
    except ValueError as exc:  # a node with GPUs of several models: no GPU view this pass
        if runtime.changed("cluster", "gpu-view", str(exc)):
            log.warning("no GPU metrics from this snapshot: %s", exc)
        gpus = []
    runtime.metrics.set_cluster(gpus, pending_views(snapshot.pods, now, placed))


def _report_waiting(runtime: Runtime, now: float, policies: set[str]) -> None:
    """``FailedScheduling`` for pending pods following an invalid policy in ``policies``."""
    snapshot = runtime.cluster.snapshot(now)
    for pod in snapshot.pods:
        if pod.node is not None or pod.deletion_time is not None:
            continue
        name = _policy_of_pod(runtime, pod.namespace, pod.workload)
        if name in policies:
            runtime.events.warning(runtime.pod_ref(pod.key), "FailedScheduling",
                                   f"PlacementPolicy {name!r} is invalid: "
                                   f"{runtime.invalid_policies.get(name, '')}")


def _report_orphans(runtime: Runtime, snapshot: Snapshot, now: float) -> None:
    """``FailedScheduling`` for pending pods whose policy does not exist (no scheduler loop
    runs for them)."""
    grace = runtime.settings.scheduler.workload_grace_s
    for pod in snapshot.pods:
        if pod.node is not None or pod.deletion_time is not None:
            continue
        name = _policy_of_pod(runtime, pod.namespace, pod.workload)
        if name in runtime.policies or name in runtime.invalid_policies:
            continue
        known = pod.workload and f"{pod.namespace}/{pod.workload}" in runtime.workloads
        if pod.workload and not known and \
                now - max(pod.creation_time, runtime.started) < grace:
            continue  # its workload's spec is not read yet
        whose = (f"spec.policyRef of workload {pod.namespace}/{pod.workload}" if known else
                 "the policy of pods without a cohabit workload")
        runtime.events.warning(runtime.pod_ref(pod.key), "FailedScheduling",
                               f"no PlacementPolicy named {name!r} ({whose}); the pod waits "
                               "until it exists")
