"""``reconcile_once``: the one place the chain telemetry -> predictors -> planner -> placement
is written out. The operator calls it on a live cluster, the simulator on its in-memory one.

Time is passed in (``now``, epoch or trace seconds); nothing here reads a clock or does I/O
other than through the ``UsageSource`` it is given.

One pass:

1. **Assess** each workload (:func:`assess`): usage of its pods over
   ``[now - window, now]`` -> one :class:`~cohabit.model.Recommendation` per container from
   the predictors; QoS samples -> violations counted over the workload's window; interference
   profile when an interference predictor is given. A missing or failing source gives
   low-confidence recommendations and no action (never a guess).
2. **Plan**: the planner policies the ``PlacementPolicy`` enables (right-sizing, rebinding)
   propose ``Resize``/``Evict`` actions.
3. **Place**: pending pods (cohabit's scheduler name) are placed one at a time through
   :func:`cohabit.engine.scheduling.schedule_pod` on a :class:`~cohabit.placement.ClusterState`
   built from the snapshot, so later pods see earlier binds; each becomes a ``Bind``.

The returned :class:`~cohabit.model.Plan` is carried out by an actuator, which owns dry-run
and budgets.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from cohabit.config import PolicyConfig, SpecError, WorkloadSpec
from cohabit.config.placement import ScoreWeights
from cohabit.engine.rebind import rebinding_evictions
from cohabit.engine.scheduling import schedule_pod
from cohabit.model import (
    RESOURCE_FIELDS,
    Action,
    Evict,
    InterferenceProfile,
    PlacementMode,
    Plan,
    Pod,
    QosMetric,
    Recommendation,
    Resources,
    Snapshot,
    Workload,
    WorkloadKind,
    probe_keys,
)
from cohabit.placement import POLICIES as PLACEMENT_POLICIES
from cohabit.placement import (
    ClusterState,
    Slowdown,
    pod_request,
    pressure_sensitivity_slowdown,
    select_req,
    typical_pods,
)
from cohabit.placement.explain import unschedulable_message
from cohabit.planner import PlanContext, build_policies
from cohabit.planner.rightsizing import clamp_measured
from cohabit.telemetry import TelemetryUnavailable, UsageSource

__all__ = [
    "Assessment",
    "Recommender",
    "assess",
    "pod_capacities",
    "predictors_recommender",
    "recommend_wide",
    "wide_usage",
    "place_pending",
    "place_pending_explained",
    "pod_profiles",
    "slowdown_model",
    "predictor_slowdown",
    "pressure_sensitivity",
    "reconcile_once",
    "validate_policy",
]

log = logging.getLogger(__name__)

Recommender = Callable[[Workload, str, pd.DataFrame, pd.DataFrame], Recommendation]
"""``(workload, container, usage rows of that container, QoS frame) -> Recommendation``.

Usage rows have the :data:`~cohabit.telemetry.USAGE_COLUMNS`; the QoS frame
:data:`~cohabit.telemetry.QOS_COLUMNS` (may be empty).
"""

InterferencePredictor = Callable[[Workload, pd.DataFrame], InterferenceProfile]
"""``(workload, its usage rows) -> InterferenceProfile``."""

PressureFn = Callable[..., Any]
"""``(usage rows, pod name -> PodCapacity, *, expect_gpu: bool) -> PressureEstimate`` (default
:func:`cohabit.predictors.measured_pressure`)."""

GPU_PRESSURE = ("gpu_sm", "gpu_mem")


def pod_capacities(snapshot: Snapshot, pods: Sequence[Pod]) -> dict[str, Any]:
    """Pod name -> :class:`cohabit.predictors.PodCapacity` from the snapshot's nodes: the
    node's allocatable CPU/memory and the memory of the pod's first GPU (0 = unknown). Pods
    that are pending or on a node missing from the snapshot are left out."""
    from cohabit.predictors import PodCapacity

    nodes = {n.name: n for n in snapshot.nodes}
    out = {}
    for p in pods:
        node = nodes.get(p.node) if p.node else None
        if node is None:
            continue
        gpus = len(p.gpu_indices) or p.num_gpu
        gmem = None
        if node.gpus:
            idx = p.gpu_indices[0] if p.gpu_indices else 0
            dev = next((g for g in node.gpus if g.index == idx), node.gpus[0])
            gmem = dev.memory_mib or None
        out[p.name] = PodCapacity(node.cpu_milli, node.memory_mib, gpus, gmem)
    return out


def _merge_profile(declared: InterferenceProfile | None, predicted: InterferenceProfile | None,
                   measured: tuple[tuple[str, float], ...]) -> InterferenceProfile | None:
    """Pressure: measured components over declared (and predicted) ones; sensitivity: the
    predictor's when it ran, else the declared one."""
    if declared is None and predicted is None and not measured:
        return None
    pressure: dict[str, float] = {}
    for src in (declared, predicted):
        if src is not None:
            pressure.update(src.pressure)
    pressure.update(measured)
    sens = (predicted or declared or InterferenceProfile()).sensitivity
    return InterferenceProfile(tuple(pressure.items()), tuple(sens))


@dataclass(frozen=True)
class Assessment:
    """What one pass learned about one workload (the operator writes it to status).

    Attributes:
        workload: the workload.
        recommendations: one per container (low-confidence when telemetry is missing).
        low_confidence: True when nothing may act on the recommendations.
        reason: why confidence is low (``""`` otherwise), naming the source.
        qos_observed: latest QoS sample (NaN when none).
        qos_violations: samples missing the target within the QoS window.
        qos_samples: samples within the window.
        interference: the workload's profile (measured pressure over declared pressure;
            the predictor's or the declared sensitivity), or None when there is none.
        pods: keys of the workload's pods in the snapshot.
        nodes: nodes those pods are bound to (sorted, unique).
        interference_confidence: confidence of the measured pressure, 0..1 (0 when nothing
            was measured).
        pressure_measured: keys of the pressure components measured from telemetry.
        pressure_missing: ``(key, reason)`` of expected components left absent.
    """

    workload: Workload
    recommendations: tuple[Recommendation, ...] = ()
    low_confidence: bool = True
    reason: str = ""
    qos_observed: float = math.nan
    qos_violations: int = 0
    qos_samples: int = 0
    interference: InterferenceProfile | None = None
    pods: tuple[str, ...] = ()
    nodes: tuple[str, ...] = field(default=())
    interference_confidence: float = 0.0
    pressure_measured: tuple[str, ...] = ()
    pressure_missing: tuple[tuple[str, str], ...] = ()


def wide_usage(usage: pd.DataFrame) -> pd.DataFrame:
    """Long usage rows -> one row per ``(time, pod)`` with a column per resource, by time.

    Samples of all replicas pool into one history, as VPA aggregates a container over its
    pods. Empty input gives an empty frame with ``time`` and ``pod`` columns.
    """
    if usage.empty:
        return pd.DataFrame({"time": [], "pod": []})
    wide = usage.pivot_table(index=["time", "pod"], columns="resource", values="value",
                             aggfunc="mean").reset_index().sort_values("time")
    wide.columns.name = None
    return wide


def predictors_recommender(workload: Workload, container: str, usage: pd.DataFrame,
                           qos: pd.DataFrame, selection: Any = None,
                           selection_key: str | None = None) -> Recommendation:
    """:data:`Recommender` over :func:`cohabit.predictors.recommend`.

    The long usage rows are pivoted by :func:`wide_usage`; for a latency target the QoS
    series is joined as ``latency_ms`` by the nearest earlier timestamp. The sized resources
    are clamped into the workload's ``[min, max]``; unsized ones stay 0. Without samples the
    recommendation has confidence 0 and is low-confidence.

    Args:
        selection, selection_key: a :class:`cohabit.predictors.FleetSelection` and this
            container's key in it (:class:`~cohabit.engine.tuning.FleetTuner`); ``None`` =
            the estimator's a-priori defaults.
    """
    if usage.empty:
        return Recommendation(container, Resources(), Resources(), Resources(), 0.0, True)
    return recommend_wide(workload, container, wide_usage(usage), qos, selection,
                          selection_key)


def recommend_wide(workload: Workload, container: str, wide: pd.DataFrame, qos: pd.DataFrame,
                   selection: Any = None, selection_key: str | None = None) -> Recommendation:
    """:func:`predictors_recommender` on usage already pivoted by :func:`wide_usage`
    (non-empty; a ``latency_ms`` column is added to ``wide`` for a latency target)."""
    from cohabit.predictors import recommend

    if workload.qos_target.metric == QosMetric.P99_LATENCY_MS and not qos.empty:
        joined = pd.merge_asof(wide[["time"]], qos.sort_values("time"), on="time",
                               direction="backward")
        wide["latency_ms"] = joined["value"].to_numpy(dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter of the QoS regression
        rec = recommend(wide, workload.qos_target, None, container, selection=selection,
                        workload=selection_key if selection is not None else None)
    # Bounds apply to the resources that had samples (a measured 0 becomes the minimum);
    # resources without samples stay 0 ("no opinion": the planner keeps the current request).
    measured = frozenset(c for c in RESOURCE_FIELDS
                         if c in wide.columns and wide[c].notna().any())
    lo, hi = workload.min_resources, workload.max_resources
    return replace(rec, target=clamp_measured(rec.target, Resources(), lo, hi, measured),
                   lower=clamp_measured(rec.lower, Resources(), lo, hi, measured),
                   upper=clamp_measured(rec.upper, Resources(), lo, hi, measured))


def _low(workload: Workload, containers: Sequence[str], current: Mapping[tuple[str, str],
         Resources]) -> tuple[Recommendation, ...]:
    out = []
    for c in containers:
        cur = current.get((workload.key, c), Resources())
        out.append(Recommendation(c, cur, cur, cur, 0.0, True))
    return tuple(out)


def _pods_of(snapshot: Snapshot, workload: Workload) -> list[Pod]:
    return [p for p in snapshot.pods
            if p.workload == workload.name and p.namespace == workload.namespace]


def assess(
    spec: WorkloadSpec | Workload,
    snapshot: Snapshot,
    usage: UsageSource | None,
    now: float,
    *,
    window_s: float = 3600.0,
    containers: Sequence[str] = (),
    current: Mapping[tuple[str, str], Resources] | None = None,
    recommender: Recommender | None = None,
    interference: InterferencePredictor | None = None,
    pressure: PressureFn | None = None,
) -> Assessment:
    """Recommendations, QoS violations and interference of one workload at ``now``.

    Args:
        spec: the parsed workload (its ``qos_window_s`` and ``containers`` are used).
        snapshot: the cluster (for the workload's pods and nodes).
        usage: the usage source; None means "no source" -> low confidence.
        now: seconds; history is ``[now - window_s, now]``.
        window_s: usage history length, seconds.
        containers: containers to recommend for when the spec names none (e.g. the
            target's containers).
        current: ``(workload key, container)`` -> current requests (reported back as the
            low-confidence target when telemetry is missing).
        recommender: the predictor callable (default :func:`predictors_recommender`).
        interference: an interference predictor (optional): its sensitivity (e.g. from a
            probe profile) replaces the declared one, its pressure fills components not
            measured.
        pressure: the measured-pressure callable (default
            :func:`cohabit.predictors.measured_pressure`, Bubble-Up-style usage relative to the
            node's/GPU's capacity); it needs the pods' nodes in ``snapshot``.

    The profile's pressure is measured from the same usage rows per shared resource (CPU,
    memory, GPU SM, GPU memory); a component without telemetry or capacity stays absent
    (declared value if the spec has one) and lowers ``interference_confidence``.

    Never raises for telemetry problems: they become ``low_confidence`` with ``reason``.
    """
    if isinstance(spec, Workload):
        spec = WorkloadSpec(spec)
    workload = spec.workload
    current = current or {}
    pods = _pods_of(snapshot, workload)
    gpu = workload.kind != WorkloadKind.DATABASE or any(p.num_gpu for p in pods)
    base = _unmeasured(spec, pods, gpu)
    names = (list(spec.containers or containers)
             or sorted({c for (k, c) in current if k == workload.key}) or ["main"])
    try:
        rows, qos = _telemetry(spec, pods, usage, now, window_s)
    except TelemetryUnavailable as exc:
        return replace(base, recommendations=_low(workload, names, current), reason=str(exc))
    qos_in = qos[qos["time"] > now - spec.qos_window_s]
    recs = _recommend_containers(workload, names, rows, qos,
                                 recommender or predictors_recommender)
    predicted = interference(workload, rows) if interference is not None else None
    if pressure is None:
        from cohabit.predictors import measured_pressure

        pressure = measured_pressure
    est = pressure(rows, pod_capacities(snapshot, pods), expect_gpu=gpu)
    low, reason = _confidence(recs)
    return replace(
        base, recommendations=tuple(recs), low_confidence=low, reason=reason,
        qos_observed=float(qos_in["value"].iloc[-1]) if not qos_in.empty else math.nan,
        qos_violations=int(sum(workload.qos_target.violated(float(v))
                               for v in qos_in["value"])),
        qos_samples=len(qos_in),
        interference=_merge_profile(spec.interference, predicted, est.pressure),
        interference_confidence=float(est.confidence),
        pressure_measured=tuple(k for k, _ in est.pressure), pressure_missing=tuple(est.missing))


def _unmeasured(spec: WorkloadSpec, pods: Sequence[Pod], gpu: bool) -> Assessment:
    """The assessment before telemetry: pods, nodes, the declared profile, every expected
    pressure component missing, low confidence."""
    expected = ["cpu", "memory"] + (list(GPU_PRESSURE) if gpu else [])
    return Assessment(spec.workload, pods=tuple(p.key for p in pods),
                      nodes=tuple(sorted({p.node for p in pods if p.node})),
                      interference=spec.interference,
                      pressure_missing=tuple((k, "no usage telemetry") for k in expected))


def _telemetry(spec: WorkloadSpec, pods: Sequence[Pod], usage: UsageSource | None,
               now: float, window_s: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Usage rows of ``pods`` over ``[now - window_s, now]`` and the QoS samples over the
    workload's QoS window.

    Raises:
        TelemetryUnavailable: no usage source, no pods, or the source failed (the message
            says which).
    """
    workload = spec.workload
    if usage is None:
        raise TelemetryUnavailable("no usage source configured (Prometheus URL unset)")
    if not pods:
        raise TelemetryUnavailable(f"no pods of {workload.target_kind} {workload.target_name} "
                                   "found (label cohabit.io/workload)")
    rows = usage.usage(workload.namespace, [p.name for p in pods], now - window_s, now)
    return rows, usage.qos(workload, now - spec.qos_window_s, now)


def _recommend_containers(workload: Workload, names: Sequence[str], rows: pd.DataFrame,
                          qos: pd.DataFrame, recommender: Recommender
                          ) -> list[Recommendation]:
    """One recommendation per container from its usage rows; the first container also gets
    the pod-level series (``container == ""``, e.g. DCGM without a container label)."""
    recs = []
    for container in names:
        mask = rows["container"] == container
        if container == names[0]:
            mask |= rows["container"] == ""
        recs.append(recommender(workload, container, rows[mask], qos))
    return recs


def _confidence(recs: Sequence[Recommendation]) -> tuple[bool, str]:
    """``(low confidence, why)`` of a workload from its containers' recommendations."""
    if not any(r.low_confidence for r in recs):
        return False, ""
    weak = [r.container for r in recs if r.low_confidence]
    empty = [r.container for r in recs if r.confidence == 0.0]
    return True, ("no usage samples for " + ", ".join(empty) if empty else
                  "history too short or too noisy for " + ", ".join(weak))


def validate_policy(config: PolicyConfig) -> None:
    """Raise :class:`~cohabit.config.SpecError` (``spec.policy``) for an unknown placement
    policy name."""
    if config.policy not in PLACEMENT_POLICIES:
        raise SpecError("spec.policy", f"{config.policy!r} is not a placement policy; known: "
                                       f"{', '.join(PLACEMENT_POLICIES)}")


def pressure_sensitivity(victim: InterferenceProfile, aggressor: InterferenceProfile) -> float:
    """The default :data:`~cohabit.placement.Slowdown` the engine gives the ``cohabit``
    policy: :func:`cohabit.placement.pressure_sensitivity_slowdown` (Bubble-Up's linear
    pressure x sensitivity)."""
    return pressure_sensitivity_slowdown(victim, aggressor)


def predictor_slowdown(predictor: Callable[[InterferenceProfile, InterferenceProfile], float],
                       probes: Sequence[str]) -> Slowdown:
    """A :data:`~cohabit.placement.Slowdown` over a trained interference predictor.

    Args:
        predictor: ``f(a | b)``, the throughput fraction of ``a`` next to ``b`` (e.g.
            ``cohabit.predictors.interference_predictor()``, Paragon/Bubble-Up probe
            profiles trained on Gavel co-runs).
        probes: the predictor's probe names; profiles keyed by exactly these probes
            (:func:`~cohabit.model.probe_keys`) go to the predictor (slowdown ``1 - f``),
            every other pair to :func:`pressure_sensitivity` (declared or measured resource
            profiles).
    """
    keys = probe_keys(probes)

    def slowdown(victim: InterferenceProfile, aggressor: InterferenceProfile) -> float:
        if victim.keyed_by(keys) and aggressor.keyed_by(keys):
            return min(1.0, max(0.0, 1.0 - float(predictor(victim, aggressor))))
        return pressure_sensitivity_slowdown(victim, aggressor)

    return slowdown


REBIND_TRIES = 8
"""Pods that fit nowhere for which one pass looks for a rebinding move (the actuator's
eviction budget and PDBs limit what is carried out)."""

INTERFERENCE_MODELS = ("pressure-sensitivity", "gavel")
"""Names :func:`slowdown_model` accepts."""


def slowdown_model(name: str) -> Slowdown:
    """The ``cohabit`` policy's slowdown callable by name (operator setting
    ``scheduler.interference_model``).

    ``pressure-sensitivity``: :func:`pressure_sensitivity`. ``gavel``:
    :func:`predictor_slowdown` over ``cohabit.predictors.interference_predictor()`` (trained
    on the packaged Gavel co-runs, a few seconds).

    Raises:
        ValueError: an unknown name (lists the known ones).
    """
    if name == "pressure-sensitivity":
        return pressure_sensitivity
    if name == "gavel":
        from cohabit.predictors import interference_predictor

        model = interference_predictor()
        return predictor_slowdown(model, model.probes)
    raise ValueError(f"unknown interference model {name!r}; known: "
                     f"{', '.join(INTERFERENCE_MODELS)}")


def pod_profiles(pods: Iterable[Pod], profiles: Mapping[str, InterferenceProfile]
                 ) -> dict[str, InterferenceProfile]:
    """Pod key -> the interference profile of its workload (``profiles`` by workload key
    ``namespace/name``, pods by their ``workload`` label); pods of no profiled workload
    are left out."""
    out = {}
    for p in pods:
        if p.workload:
            prof = profiles.get(f"{p.namespace}/{p.workload}")
            if prof is not None:
                out[p.key] = prof
    return out


def place_pending(snapshot: Snapshot, pending: Iterable[Pod], policy: str,
                  seed: int = 0, *, profiles: Mapping[str, InterferenceProfile] | None = None,
                  slowdown: Slowdown | None = None,
                  interference_weight: float = 1.0,
                  weights: ScoreWeights | None = None,
                  rebind: int = 0) -> tuple[list[Action], list[str]]:
    """Binds for ``pending`` pods under placement ``policy``, each seeing the earlier ones.

    Pods are placed in creation order (then name). Returns the binds and the keys of pods
    that fit nowhere (:func:`place_pending_explained` also says why).

    Args:
        snapshot: nodes and pods (bound pods shape the free space; all pods give FGD's
            typical-pod distribution).
        pending: pods to place.
        policy: a placement policy name.
        seed: seed of the ``random`` policy's generator.
        profiles: pod key -> interference profile (bound and pending pods), read by the
            ``cohabit`` policy; without any, ``cohabit`` places exactly as ``fgd``.
        slowdown: the slowdown callable for ``cohabit`` (default
            :func:`pressure_sensitivity`).
        interference_weight: score points per percent of predicted slowdown.
        weights: the ``cohabit`` score's other weights (default :class:`ScoreWeights`).
        rebind: for up to this many pods that fit nowhere, simulate-then-rebind
            (:func:`cohabit.engine.rebind.make_room`): the ``Evict`` actions of a move that
            was replayed on the placement state and pays (the evicted pods are re-created by
            their owners and placed by a later pass; the pending pod waits for the room);
            with ``rebind`` > 0 the pass also proposes the simulator's defragmentation
            move (:func:`cohabit.engine.rebind.rebinding_evictions`, under ``fgd`` and
            ``cohabit``).

    Returns:
        ``(actions, unplaced)``: ``Bind`` per placed pod (and ``Evict`` per rebinding victim);
        keys of the pods that fit nowhere.

    Raises:
        SpecError: unknown ``policy``.
    """
    binds, unplaced = place_pending_explained(
        snapshot, pending, policy, seed, profiles=profiles, slowdown=slowdown,
        interference_weight=interference_weight, weights=weights, rebind=rebind)
    return binds, [key for key, _ in unplaced]


def place_pending_explained(
        snapshot: Snapshot, pending: Iterable[Pod], policy: str, seed: int = 0, *,
        profiles: Mapping[str, InterferenceProfile] | None = None,
        slowdown: Slowdown | None = None,
        interference_weight: float = 1.0,
        weights: ScoreWeights | None = None,
        rebind: int = 0,
        others: Sequence[Pod] = (),
        movable: Callable[[Pod], bool] | None = None,
) -> tuple[list[Action], list[tuple[str, str]]]:
    """:func:`place_pending`, with ``(pod key, why)`` for each pod that fits nowhere: the
    filter failures on the cluster as that pod saw it (after the earlier binds of the pass),
    in kube-scheduler's ``FailedScheduling`` words
    (:func:`cohabit.placement.explain.unschedulable_message`).

    ``others`` are pending pods this pass does not place (they follow another policy) but
    may make room for when rebinding: those that fit nowhere after this pass's binds come
    after this pass's own unplaced pods, ``rebind`` in all. ``movable`` says which bound
    pods a move may evict (default :func:`cohabit.engine.rebind.make_room`'s).

    Raises:
        SpecError: unknown ``policy``.
    """
    if policy not in PLACEMENT_POLICIES:
        raise SpecError("spec.policy", f"{policy!r} is not a placement policy")
    pending = list(pending)
    bound = [p for p in snapshot.pods if p.node is not None]
    state = ClusterState.from_nodes(list(snapshot.nodes), bound)
    if policy in ("fgd", "cohabit"):
        shapes = list(snapshot.pods) or pending
        if shapes:
            state.set_typical(typical_pods(shapes), typical_pods(shapes, coverage_pct=100))
    state.set_weights(weights)
    if policy == "cohabit" and profiles:
        state.set_interference(profiles, slowdown or pressure_sensitivity, interference_weight,
                               ls_weight=(weights or ScoreWeights()).ls_protection)
    rng = np.random.default_rng(seed)
    binds: list[Action] = []
    unplaced: list[tuple[str, str]] = []
    for pod in sorted(pending, key=lambda p: (p.creation_time, p.key)):
        result = schedule_pod(state, pod, policy=policy, rng=rng)
        if result.bind is None:
            unplaced.append((pod.key, unschedulable_message(state, pod)))
        else:
            binds.append(result.bind)
    if rebind:
        by_key = {p.key: p for p in pending}
        wanting = [by_key[key] for key, _ in unplaced[:rebind]]
        wanting += _fitting_nowhere(state, others, policy, rebind - len(wanting))
        binds.extend(rebinding_evictions(state, policy, wanting, rng=rng) if movable is None
                     else rebinding_evictions(state, policy, wanting, rng=rng,
                                              movable=movable))
    return binds, unplaced


def _fitting_nowhere(state: ClusterState, pods: Sequence[Pod], policy: str,
                     limit: int) -> list[Pod]:
    """The first ``limit`` pods of ``pods`` (creation order) that no node of ``state`` takes
    under ``policy``; a pod whose request is malformed is left out (its own policy reports
    it). Stops checking once ``limit`` are found."""
    out: list[Pod] = []
    for pod in sorted(pods, key=lambda p: (p.creation_time, p.key)):
        if len(out) >= limit:
            break
        try:
            if select_req(state, pod_request(pod), policy, np.random.default_rng(0)) is None:
                out.append(pod)
        except ValueError:
            continue
    return out


def _managed_movable(ctx: PlanContext) -> Callable[[Pod], bool]:
    """Pods a policy's rebinding may move: bound, not terminating, evictable pods of the
    ``managed`` cohabit workloads that follow the policy (as the planner's
    :class:`~cohabit.planner.rebinding.Rebinding` requires); a pod of another policy, or of
    no cohabit workload, is never evicted by this policy's rebinding."""
    def movable(pod: Pod) -> bool:
        workload = ctx.workload_of(pod)
        return (workload is not None and workload.placement == PlacementMode.MANAGED
                and pod.evictable and pod.deletion_time is None and pod.node is not None)
    return movable


def reconcile_once(
    snapshot: Snapshot,
    workloads: Sequence[WorkloadSpec | Workload],
    usage: UsageSource | None,
    policy_config: PolicyConfig,
    now: float,
    *,
    current: Mapping[tuple[str, str], Resources] | None = None,
    containers: Mapping[str, Sequence[str]] | None = None,
    assessments: Mapping[str, Assessment] | None = None,
    recommender: Recommender | None = None,
    interference: InterferencePredictor | None = None,
    slowdown: Slowdown | None = None,
    window_s: float = 3600.0,
    place: bool = True,
    pending_filter: Callable[[Pod], bool] | None = None,
    max_pending: int | None = None,
) -> Plan:
    """One pass of the chain (see the module doc) at ``now``.

    Args:
        snapshot: nodes and pods; pending pods (``node is None``) are placed.
        workloads: parsed workloads.
        usage: usage/QoS source (None = none configured -> low confidence, no resize).
        policy_config: the parsed ``PlacementPolicy``.
        now: seconds, passed in.
        current: ``(workload key, container)`` -> current requests (needed to resize).
        containers: workload key -> containers of its target (when the spec names none).
        assessments: already computed assessments by workload key (not recomputed).
        recommender, interference: predictor callables (see :func:`assess`).
        slowdown: the ``cohabit`` placement policy's slowdown callable (default
            :func:`pressure_sensitivity`; :func:`predictor_slowdown` wraps a trained
            ``cohabit.predictors.interference_predictor()``). It sees the assessments'
            interference profiles, given to each pod of the workload.
        window_s: usage history length, seconds.
        place: place pending pods (False: plan resizes/evictions only).
        pending_filter: which pending pods this pass places (default: all).
        max_pending: place at most this many (the oldest first); the rest wait for the next
            pass, so a burst does not hold the first pods back.

    Returns:
        a :class:`~cohabit.model.Plan`: ``Resize``/``Evict`` from the planner, then ``Bind``
        for pending pods; recommendations as ``(workload key, Recommendation)``; notes say
        why a workload got no action and which pods fit nowhere; ``unschedulable`` and
        ``deferred`` carry the pods left unplaced as data.

    Raises:
        SpecError: the policy names an unknown placement policy (``spec.policy``).
    """
    validate_policy(config=policy_config)
    specs = [w if isinstance(w, WorkloadSpec) else WorkloadSpec(w) for w in workloads]
    done = _assess_all(specs, snapshot, usage, now, dict(assessments or {}),
                       window_s=window_s, containers=containers or {}, current=current or {},
                       recommender=recommender, interference=interference)
    notes, recs, profiles = _planner_inputs(done)
    ctx = PlanContext(snapshot, tuple(s.workload for s in specs), recs, current or {},
                      profiles, now)
    actions = _planned_actions(ctx, policy_config)
    rebind = REBIND_TRIES if policy_config.rebinding.enabled else 0
    batch = (_pending_batch(snapshot, pending_filter, max_pending, rebind) if place
             else _PendingBatch())
    notes.extend(batch.notes)
    unschedulable: list[tuple[str, str]] = []
    if batch.pending or batch.others or (place and rebind):  # rebind: defragment too
        binds, unschedulable = place_pending_explained(
            snapshot, batch.pending, policy_config.policy,
            profiles=pod_profiles(snapshot.pods, profiles), slowdown=slowdown,
            interference_weight=policy_config.interference_weight,
            weights=policy_config.weights, rebind=rebind, others=batch.others,
            movable=_managed_movable(ctx))
        actions.extend(binds)
        if unschedulable:
            notes.append(f"{len(unschedulable)} pod(s) fit on no node: "
                         + ", ".join(k for k, _ in unschedulable[:10]))
    recommendations = tuple((key, r) for key, a in done.items() for r in a.recommendations)
    return Plan(now, tuple(actions), recommendations, tuple(notes), tuple(unschedulable),
                tuple(batch.deferred))


def _assess_all(specs: Sequence[WorkloadSpec], snapshot: Snapshot, usage: UsageSource | None,
                now: float, done: dict[str, Assessment], *, window_s: float,
                containers: Mapping[str, Sequence[str]],
                current: Mapping[tuple[str, str], Resources],
                recommender: Recommender | None,
                interference: InterferencePredictor | None) -> dict[str, Assessment]:
    """``done`` (assessments by workload key) completed with :func:`assess` of every spec
    not in it yet."""
    for spec in specs:
        key = spec.workload.key
        if key not in done:
            done[key] = assess(spec, snapshot, usage, now, window_s=window_s,
                               containers=containers.get(key, ()), current=current,
                               recommender=recommender, interference=interference)
    return done


def _planner_inputs(done: Mapping[str, Assessment]
                    ) -> tuple[list[str], dict[str, tuple[Recommendation, ...]],
                               dict[str, InterferenceProfile]]:
    """Notes on low-confidence workloads, the confident recommendations (only they reach
    the planner) and the interference profiles, by workload key."""
    notes: list[str] = []
    recs: dict[str, tuple[Recommendation, ...]] = {}
    profiles: dict[str, InterferenceProfile] = {}
    for key, a in done.items():
        if a.low_confidence:
            notes.append(f"{key}: low confidence, no action: {a.reason}")
        else:
            recs[key] = a.recommendations
        if a.interference is not None:
            profiles[key] = a.interference
    return notes, recs, profiles


def _planned_actions(ctx: PlanContext, policy_config: PolicyConfig) -> list[Action]:
    """What the policy's planner policies propose. Rebinding's make-room step runs in
    placement, where the state can replay each move first (simulate-then-rebind); the
    planner's unchecked ``defragment`` evictions are dropped."""
    actions: list[Action] = []
    for policy in build_policies(policy_config):
        actions.extend(policy.plan(ctx))
    return [a for a in actions
            if not (isinstance(a, Evict) and a.reason.startswith("defragment"))]


@dataclass(frozen=True)
class _PendingBatch:
    """The pending pods of one pass: those it places (``pending``), those of other policies
    it may make room for (``others``), those left for the next pass (``deferred`` keys)."""

    pending: list[Pod] = field(default_factory=list)
    others: list[Pod] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _pending_batch(snapshot: Snapshot, pending_filter: Callable[[Pod], bool] | None,
                   max_pending: int | None, rebind: int) -> _PendingBatch:
    """Pending, not terminating pods split by ``pending_filter``; at most ``max_pending``
    of them (the oldest first) are placed, the rest deferred."""
    pending = [p for p in snapshot.pods if p.node is None and p.deletion_time is None]
    others: list[Pod] = []
    if pending_filter is not None:
        others = [p for p in pending if not pending_filter(p)] if rebind else []
        pending = [p for p in pending if pending_filter(p)]
    if max_pending is None or len(pending) <= max_pending:
        return _PendingBatch(pending, others)
    ordered = sorted(pending, key=lambda p: (p.creation_time, p.key))
    return _PendingBatch(ordered[:max_pending], others,
                         [p.key for p in ordered[max_pending:]],
                         [f"more pods pending than one pass places ({max_pending})"])
