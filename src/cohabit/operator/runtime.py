"""The operator's runtime objects (kept in kopf's ``memo``, never in module globals) and its
Prometheus metrics.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from cohabit.config import OperatorSettings, PolicyConfig, WorkloadSpec
from cohabit.engine.observe import GpuModelView, PendingView
from cohabit.engine.reconcile import Assessment
from cohabit.model import Recommendation, Resources
from cohabit.operator.inflight import InflightBinds

__all__ = ["Metrics", "Runtime"]


class Metrics:
    """The operator's own metrics, on their own registry (served on ``/metrics``).

    * ``cohabit_reconcile_duration_seconds{loop}`` -- one workload pass or scheduling pass;
    * ``cohabit_actions_total{action,status}`` -- actuator outcomes;
    * ``cohabit_recommendations_total{kind,confidence}`` -- recommendations written;
    * ``cohabit_qos_violations{namespace,workload}`` -- violations in the QoS window;
    * ``cohabit_pending_pods`` -- pods waiting for cohabit after the last pass;
    * ``cohabit_recommendation_cpu_cores{namespace,workload,kind,container}``,
      ``cohabit_recommendation_memory_bytes``, ``cohabit_recommendation_gpus`` (share of
      GPUs, 0.5 = half of one), ``cohabit_recommendation_gpu_memory_bytes`` -- the target of
      each sized container, and ``cohabit_request_cpu_cores``, ``cohabit_request_memory_bytes``,
      ``cohabit_request_gpus``, ``cohabit_request_gpu_memory_bytes`` -- its current request
      (the target's pod template), same labels;
    * ``cohabit_recommendation_confidence_ratio{namespace,workload,kind}`` -- the lowest
      confidence of a workload's recommendations, 0..1;
    * ``cohabit_cluster_gpus{gpu_model}``, ``cohabit_cluster_gpu_allocation_ratio``,
      ``cohabit_cluster_gpu_fragmentation_ratio`` (fragment / idle milli-GPU) and
      ``cohabit_cluster_gpu_fragmented_gpus`` -- the FGD paper's cluster view per GPU model
      (:mod:`cohabit.engine.observe`), after each scheduling pass;
    * ``cohabit_scheduler_pending_pods{qos_class}`` and
      ``cohabit_scheduler_oldest_pending_pod_age_seconds{qos_class}`` -- pods waiting for
      cohabit after the last pass, by QoS class.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconcile_duration = Histogram(
            "cohabit_reconcile_duration_seconds", "Duration of one reconcile pass",
            ["loop"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.actions = Counter("cohabit_actions_total", "Actions carried out, by outcome",
                               ["action", "status"], registry=self.registry)
        self.recommendations = Counter(
            "cohabit_recommendations_total", "Recommendations written to status",
            ["kind", "confidence"], registry=self.registry)
        self.qos_violations = Gauge(
            "cohabit_qos_violations", "QoS samples missing the target within the window",
            ["namespace", "workload"], registry=self.registry)
        self.pending = Gauge("cohabit_pending_pods", "Pods waiting for cohabit to bind them",
                             registry=self.registry)
        self._observe_metrics()

    # -------------------------------------------------------- dashboards (issue 14)

    _RESOURCES = (("cpu", "cpu_milli", 1e-3, "cores", "CPU, cores"),
                  ("memory", "memory_mib", 2**20, "bytes", "memory, bytes"),
                  ("gpu", "gpu_milli", 1e-3, "", "GPU share, GPUs (0.5 = half of one)"),
                  ("gpu_memory", "gpu_memory_mib", 2**20, "bytes", "GPU memory, bytes"))
    """(name, Resources field, scale to the exported unit, unit suffix, help)."""

    def _observe_metrics(self) -> None:
        r = self.registry
        labels = ["namespace", "workload", "kind", "container"]
        self.recommended: dict[str, Gauge] = {}
        self.requested: dict[str, Gauge] = {}
        for name, field_, _, unit, text in self._RESOURCES:
            suffix = f"_{unit}" if unit else "s"
            self.recommended[field_] = Gauge(
                f"cohabit_recommendation_{name}{suffix}", f"Recommended request (target), {text}",
                labels, registry=r)
            self.requested[field_] = Gauge(
                f"cohabit_request_{name}{suffix}", f"Current request of the target, {text}",
                labels, registry=r)
        self.confidence = Gauge("cohabit_recommendation_confidence_ratio",
                                "Lowest confidence of a workload's recommendations, 0..1",
                                ["namespace", "workload", "kind"], registry=r)
        model = ["gpu_model"]
        self.cluster_gpus = Gauge("cohabit_cluster_gpus", "GPUs of schedulable nodes", model,
                                  registry=r)
        self.gpu_allocation = Gauge(
            "cohabit_cluster_gpu_allocation_ratio",
            "Allocated / capacity milli-GPU (FGD's GPU allocation ratio), 0..1", model,
            registry=r)
        self.gpu_fragmentation = Gauge(
            "cohabit_cluster_gpu_fragmentation_ratio",
            "Fragment / idle milli-GPU (FGD's fragmentation ratio), 0..1", model, registry=r)
        self.gpu_fragmented = Gauge(
            "cohabit_cluster_gpu_fragmented_gpus",
            "Fragment milli-GPU in GPUs (FGD's fragmentation amount)", model, registry=r)
        self.pending_by_qos = Gauge("cohabit_scheduler_pending_pods",
                                    "Pods waiting for cohabit to bind them, by QoS class",
                                    ["qos_class"], registry=r)
        self.pending_age = Gauge("cohabit_scheduler_oldest_pending_pod_age_seconds",
                                 "Age of the oldest pod waiting for cohabit, seconds",
                                 ["qos_class"], registry=r)
        self._containers: dict[tuple[str, str, str], set[str]] = {}

    def set_workload(self, namespace: str, workload: str, kind: str,
                     recs: Sequence[Recommendation], current: Mapping[str, Resources],
                     confidence: float | None) -> None:
        """A workload's gauges after a pass: per container, its recommendation and current
        request of every resource it has (> 0); series of containers no longer sized are
        removed.

        Args:
            recs: the assessment's recommendations.
            current: container -> its current requests (from the target's template).
            confidence: the lowest confidence of ``recs`` (``None``: none).
        """
        self.forget_workload(namespace, workload, kind)
        key = (namespace, workload, kind)
        for container, res, gauges in (
                [(r.container, r.target, self.recommended) for r in recs]
                + [(c, res, self.requested) for c, res in current.items()]):
            for field_, _scale in ((f, s) for _, f, s, _, _ in self._RESOURCES):
                value = getattr(res, field_)
                if value > 0:
                    gauges[field_].labels(namespace, workload, kind, container).set(
                        value * _scale)
            self._containers.setdefault(key, set()).add(container)
        if confidence is not None:
            self.confidence.labels(namespace, workload, kind).set(confidence)

    def forget_workload(self, namespace: str, workload: str, kind: str) -> None:
        """Remove a workload's recommendation, request and confidence series."""
        for container in self._containers.pop((namespace, workload, kind), set()):
            for gauge in (*self.recommended.values(), *self.requested.values()):
                with contextlib.suppress(KeyError):
                    gauge.remove(namespace, workload, kind, container)
        with contextlib.suppress(KeyError):
            self.confidence.remove(namespace, workload, kind)

    def set_cluster(self, gpus: Sequence[GpuModelView], pending: Sequence[PendingView]) -> None:
        """The cluster view of the last scheduling pass; series of GPU models and QoS
        classes no longer present are removed (never all cleared first: a scrape in between
        would see none)."""
        frag = [v for v in gpus if v.frag_milli is not None]
        for gauge, values in (
                (self.cluster_gpus, {v.model: v.gpus for v in gpus}),
                (self.gpu_allocation, {v.model: v.allocation_ratio for v in gpus}),
                (self.gpu_fragmentation, {v.model: v.fragmentation_ratio for v in frag}),
                (self.gpu_fragmented, {v.model: v.fragmented_gpus for v in frag}),
                (self.pending_by_qos, {p.qos_class: p.pods for p in pending}),
                (self.pending_age, {p.qos_class: p.oldest_age_s for p in pending})):
            _replace(gauge, values)


def _replace(gauge: Gauge, values: Mapping[str, float]) -> None:
    """Set the one-label ``gauge`` to ``values`` (label value -> value); remove the label
    values not given."""
    for label, value in values.items():
        gauge.labels(label).set(value)
    shown = {v for family in gauge.collect() for sample in family.samples
             for v in sample.labels.values()}
    for label in shown - set(values):
        gauge.remove(label)


@dataclass
class Runtime:
    """Everything the handlers share; built once at startup and put in ``memo.runtime``.

    Attributes:
        settings: operator settings.
        api_client: kubernetes ``ApiClient``.
        cluster: a ``ClusterSource`` (``KubeClusterSource``).
        usage: a ``UsageSource`` or None when no Prometheus is configured.
        actuator: the ``KubernetesActuator``.
        metrics: :class:`Metrics`.
        workloads: workload key -> parsed spec (valid ones only).
        policies: policy name -> parsed ``PlacementPolicy``.
        assessments: workload key -> last assessment (rebinding reads interference here).
        targets: workload key -> ``(namespace, kind, name)`` for resizes.
        lock: serialises the planning of scheduling passes (never held across network
            I/O: lists, binds and evictions run outside it).
        inflight: binds planned and not yet seen in a listed snapshot, overlaid on the next
            plans (:class:`~cohabit.operator.inflight.InflightBinds`).
        wakers: policy name -> event set by pod events to run that scheduler at once.
        slowdown: the ``cohabit`` placement policy's slowdown callable (None = the engine's
            pressure x sensitivity default).
        tuner: the :class:`~cohabit.engine.tuning.FleetTuner` whose recommender sizes the
            workloads (None = the estimator's a-priori defaults).
    """

    settings: OperatorSettings
    api_client: Any
    cluster: Any
    usage: Any
    actuator: Any
    metrics: Metrics = field(default_factory=Metrics)
    workloads: dict[str, WorkloadSpec] = field(default_factory=dict)
    policies: dict[str, PolicyConfig] = field(default_factory=dict)
    assessments: dict[str, Assessment] = field(default_factory=dict)
    targets: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    inflight: InflightBinds = field(default_factory=InflightBinds)
    wakers: dict[str, threading.Event] = field(default_factory=dict)
    slowdown: Any = None
    tuner: Any = None

    def waker(self, policy: str) -> threading.Event:
        """The wake-up event of ``policy``'s scheduler loop."""
        return self.wakers.setdefault(policy, threading.Event())

    def wake_all(self) -> None:
        """Wake every scheduler loop (a pod or a workload changed)."""
        for event in list(self.wakers.values()):
            event.set()

    def resolve_target(self, key: str) -> tuple[str, str, str] | None:
        """Workload key -> its target, for the actuator's resizes."""
        return self.targets.get(key)

    def policy(self, name: str) -> PolicyConfig:
        """The named policy, or the defaults when it does not exist (yet)."""
        return self.policies.get(name) or PolicyConfig(name=name)
