"""What the kopf handlers do, as plain synchronous functions over a :class:`Runtime`.

* :func:`reconcile_workload` -- one workload: parse, read its target and pods, assess through
  the engine, right-size through the actuator, return the status to write.
* :func:`scheduling_pass` -- one policy: snapshot the cluster, place pending pods and (when
  due) rebind through the engine, carry the plan out through the actuator.
* :func:`accept_policy` -- parse and validate a ``PlacementPolicy``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from kubernetes.client.exceptions import ApiException

from cohabit.actuator.base import EvictionLimits
from cohabit.actuator.kubernetes import CONNECTION_ERRORS
from cohabit.config import (
    PolicyConfig,
    RebindingConfig,
    RightSizingConfig,
    SpecError,
    parse_policy,
    parse_workload,
)
from cohabit.engine.observe import gpu_model_views, pending_views
from cohabit.engine.reconcile import assess, reconcile_once, validate_policy
from cohabit.model import Bind, Evict, Node, Outcome, Resize, Snapshot
from cohabit.operator.runtime import Runtime
from cohabit.operator.status import invalid_status, workload_status
from cohabit.telemetry.kube import (
    TelemetryError,
    list_workload_pods,
    node_from_k8s,
    pod_from_k8s,
    read_target,
    template_requests,
)

__all__ = ["accept_policy", "forget_workload", "read_nodes", "reconcile_workload",
           "scheduling_pass"]

log = logging.getLogger(__name__)


def _count(runtime: Runtime, outcomes: list[Outcome]) -> None:
    for o in outcomes:
        runtime.metrics.actions.labels(type(o.action).__name__, o.status).inc()


def reconcile_workload(
    runtime: Runtime,
    kind: str,
    name: str,
    namespace: str,
    spec: Mapping[str, Any],
    generation: int,
    status: Mapping[str, Any] | None,
    now: float,
) -> dict[str, Any]:
    """Reconcile one ``DatabaseWorkload``/``GpuWorkload``; returns its new ``status``.

    A spec failing validation gives ``Invalid`` (field named) and no action; missing telemetry
    gives ``LowConfidence`` and no action; in ``Apply`` mode a confident recommendation
    outside tolerance is applied to the target through the actuator.
    """
    started = time.perf_counter()
    key = f"{namespace}/{name}"
    try:
        parsed = parse_workload(kind, spec, name=name, namespace=namespace)
    except SpecError as exc:
        runtime.workloads.pop(key, None)
        log.warning("%s %s is invalid: %s", kind, key, exc)
        return invalid_status(exc.field, str(exc), generation, now, status)
    workload = parsed.workload
    runtime.workloads[key] = parsed
    runtime.targets[key] = (namespace, workload.target_kind, workload.target_name)

    current: dict[tuple[str, str], Any] = {}
    containers: tuple[str, ...] = parsed.containers
    timeout = runtime.settings.kube.request_timeout_s
    target = read_target(runtime.api_client, namespace, workload.target_kind,
                         workload.target_name, request_timeout=timeout)
    if target is not None:
        try:
            for container, res in template_requests(target).items():
                current[(key, container)] = res
        except TelemetryError as exc:
            log.warning("%s: %s", key, exc)
        if not containers:
            containers = tuple(c for (_, c) in current)
    pods = []
    problems = []
    for obj in list_workload_pods(runtime.api_client, namespace, name, request_timeout=timeout):
        if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        try:
            pods.append(pod_from_k8s(obj))
        except TelemetryError as exc:
            problems.append(str(exc))
    nodes = read_nodes(runtime.api_client, {p.node for p in pods if p.node}, timeout)
    snapshot = Snapshot(now, tuple(nodes), tuple(pods))
    assessment = assess(parsed, snapshot, runtime.usage, now,
                        window_s=runtime.settings.prometheus.window_s,
                        containers=containers, current=current,
                        recommender=runtime.tuner.recommender if runtime.tuner else None)
    if target is None:
        assessment = replace(
            assessment, low_confidence=True,
            reason=f"{workload.target_kind} {namespace}/{workload.target_name} not found")
    runtime.assessments[key] = assessment
    policy = runtime.policy(parsed.policy_ref)
    outcomes: list[Outcome] = []
    if not assessment.low_confidence and workload.mode == "Apply":
        # Right-sizing only: binds and evictions belong to the policy's scheduling pass.
        only_resize = replace(policy, rebinding=RebindingConfig(enabled=False))
        try:
            plan = reconcile_once(snapshot, [parsed], runtime.usage, only_resize, now,
                                  current=current, assessments={key: assessment}, place=False)
        except SpecError:
            plan = reconcile_once(snapshot, [parsed], runtime.usage,
                                  replace(only_resize, policy="best-fit"), now, current=current,
                                  assessments={key: assessment}, place=False)
        resizes = [a for a in plan.actions if isinstance(a, Resize)]
        if resizes:  # patches of the target only: no lock (placement state is untouched)
            outcomes = runtime.actuator.apply(resizes)
            _count(runtime, outcomes)
    if workload.placement == "managed" and any(p.node is None for p in pods):
        # Its pending pods waited for this spec (see scheduling_pass): wake the policy's
        # scheduler loop rather than run a whole-cluster pass inside this handler.
        runtime.waker(parsed.policy_ref).set()
    pending = sum(1 for p in pods if p.node is None)
    result = workload_status(assessment, outcomes, generation, now, previous=status,
                             pending=pending)
    runtime.metrics.recommendations.labels(
        kind, "low" if assessment.low_confidence else "ok").inc(len(assessment.recommendations))
    runtime.metrics.qos_violations.labels(namespace, name).set(assessment.qos_violations)
    recs = assessment.recommendations
    runtime.metrics.set_workload(
        namespace, name, kind, recs, {c: r for (_, c), r in current.items()},
        min((r.confidence for r in recs), default=None))
    runtime.metrics.reconcile_duration.labels("workload").observe(time.perf_counter() - started)
    return result


def _observe_cluster(runtime: Runtime, snapshot: Snapshot, outcomes: list[Outcome],
                     now: float) -> None:
    """The dashboards' cluster view (:mod:`cohabit.engine.observe`) from the pass's snapshot:
    GPU allocation and fragmentation per GPU model, pending pods by QoS class (the pods this
    pass bound no longer count)."""
    placed = [o.action.pod for o in outcomes if isinstance(o.action, Bind) and o.status == "done"]
    try:
        gpus = gpu_model_views(snapshot)
    except ValueError as exc:  # a node with GPUs of several models: no GPU view this pass
        log.warning("no GPU metrics from this snapshot: %s", exc)
        gpus = []
    runtime.metrics.set_cluster(gpus, pending_views(snapshot.pods, now, placed))


def read_nodes(api_client: Any, names: set[str], request_timeout: float = 10.0) -> list[Node]:
    """The named nodes (their allocatable CPU, memory and GPUs), for the capacity the
    measured interference pressure is relative to. A node that cannot be read (API error,
    no answer within ``request_timeout`` seconds) is left out (its pods' pressure components
    stay absent) and logged."""
    if not names:
        return []
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(api_client)
    out = []
    for name in sorted(names):
        try:
            resp = core.read_node(name, _preload_content=False, _request_timeout=request_timeout)
            out.append(node_from_k8s(json.loads(resp.data)))
        except (ApiException, *CONNECTION_ERRORS, TelemetryError, ValueError) as exc:
            log.info("node %s unreadable, its pods' pressure stays unmeasured: %s", name, exc)
    return out


def forget_workload(runtime: Runtime, name: str, namespace: str) -> None:
    """Drop a deleted workload from the runtime."""
    key = f"{namespace}/{name}"
    for table in (runtime.workloads, runtime.assessments, runtime.targets):
        table.pop(key, None)
    with contextlib.suppress(KeyError):  # never reported
        runtime.metrics.qos_violations.remove(namespace, name)
    for kind in ("DatabaseWorkload", "GpuWorkload"):
        runtime.metrics.forget_workload(namespace, name, kind)


def accept_policy(runtime: Runtime, name: str, spec: Mapping[str, Any], generation: int,
                  status: Mapping[str, Any] | None, now: float) -> dict[str, Any]:
    """Parse a ``PlacementPolicy`` into the runtime; returns its status."""
    from cohabit.operator.status import condition, merge_conditions

    try:
        config = parse_policy(spec, name=name)
        validate_policy(config)
    except SpecError as exc:
        runtime.policies.pop(name, None)
        return invalid_status(exc.field, str(exc), generation, now, status)
    runtime.policies[name] = config
    runtime.wake_all()
    conds = [condition("Invalid", False, "SpecValid", f"placement policy {config.policy}",
                       generation, now)]
    return {"observedGeneration": int(generation),
            "conditions": merge_conditions((status or {}).get("conditions"), conds)}


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
    ``spec.policyRef``) or, without one, the default policy.
    """
    started = time.perf_counter()
    policy: PolicyConfig = runtime.policy(policy_name)
    scheduling = replace(policy, right_sizing=RightSizingConfig(enabled=False))
    if not rebind:
        scheduling = replace(scheduling, rebinding=RebindingConfig(enabled=False))
    # Network I/O (the list here, the binds and evictions below) runs outside the lock; only
    # planning holds it, and binds decided but not yet listed are overlaid (InflightBinds).
    listed_at = runtime.inflight.mark()
    try:
        snapshot = runtime.cluster.snapshot(now)
    except (ApiException, *CONNECTION_ERRORS, TelemetryError) as exc:
        log.warning("policy %s: cluster not listed, no pass: %s", policy_name, exc)
        return []
    with runtime.lock:
        snapshot = runtime.inflight.overlay(snapshot, listed_at)
        specs = [s for s in runtime.workloads.values() if s.policy_ref == policy_name]
        keys = {s.workload.key for s in specs}
        assessments = {k: a for k, a in runtime.assessments.items() if k in keys}

        def mine(pod: Any) -> bool:
            return _policy_of_pod(runtime, pod.namespace, pod.workload) == policy_name

        grace = runtime.settings.scheduler.workload_grace_s

        def ready(pod: Any) -> bool:
            # A new pod of a cohabit workload waits (up to the grace period) until the
            # workload's spec is parsed: its policyRef and declared interference profile
            # decide where it goes, so a pass racing the workload handler must not place it
            # blind. It does not wait for the telemetry assessment (Prometheus queries take
            # seconds; kube-scheduler does not hold pods for metrics either): measured
            # pressure refines later placements and rebinding.
            if not pod.workload or f"{pod.namespace}/{pod.workload}" in runtime.workloads:
                return mine(pod)
            return now - pod.creation_time >= grace and mine(pod)

        plan = reconcile_once(snapshot, specs, None, scheduling, now, assessments=assessments,
                              slowdown=runtime.slowdown, pending_filter=ready,
                              max_pending=runtime.settings.scheduler.max_pods_per_pass)
        actions = [a for a in plan.actions if isinstance(a, Bind | Evict)]
        runtime.inflight.assume([a for a in actions if isinstance(a, Bind)],
                                {p.key: p for p in snapshot.pods})
    outcomes: list[Outcome] = []
    try:
        if actions:
            outcomes = runtime.actuator.apply(
                actions, limits=EvictionLimits.from_config(policy.rebinding))
    finally:  # binds without a "done" outcome (or all, if apply raised) are forgotten
        runtime.inflight.finish(outcomes or [Outcome(a, "failed") for a in actions])
    _count(runtime, outcomes)
    pending = sum(1 for p in snapshot.pods if p.node is None and mine(p))
    placed = sum(1 for o in outcomes if isinstance(o.action, Bind) and o.status == "done")
    runtime.metrics.pending.set(max(0, pending - placed))
    _observe_cluster(runtime, snapshot, outcomes, now)
    if any("more pods pending" in n for n in plan.notes):
        runtime.waker(policy_name).set()  # more to place: the loop goes again at once
    for note in plan.notes:
        if "fit on no node" in note:
            log.info("policy %s: %s", policy_name, note)
    runtime.metrics.reconcile_duration.labels("scheduling").observe(
        time.perf_counter() - started)
    return outcomes
