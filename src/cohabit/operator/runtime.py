"""The operator's runtime objects (kept in kopf's ``memo``, never in module globals) and its
Prometheus metrics.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from cohabit.actuator import Actuator
from cohabit.config import OperatorSettings, PolicyConfig, WorkloadSpec
from cohabit.engine.observe import GpuModelView, PendingView
from cohabit.engine.reconcile import Assessment
from cohabit.model import Recommendation, Resources
from cohabit.operator.events import EventRecorder, MemoryEventSink, ObjectRef
from cohabit.operator.inflight import InflightBinds
from cohabit.operator.logs import PauseMonitor
from cohabit.placement import Slowdown
from cohabit.telemetry import ClusterSource, UsageSource
from cohabit.telemetry.dbsignals import DatabaseSignalSource

if TYPE_CHECKING:  # the types only: importing them loads the kubernetes client / predictors
    from kubernetes.client import ApiClient

    from cohabit.engine.dbonline import OnlineDatabasePlanner
    from cohabit.engine.tuning import FleetTuner

__all__ = ["Metrics", "Runtime"]

WORKLOAD_API_VERSION = "cohabit.io/v1alpha1"


class Metrics:
    """The operator's own metrics, on their own registry (served on ``/metrics``).

    * ``cohabit_reconcile_duration_seconds{loop}`` -- one workload pass or scheduling pass;
    * ``cohabit_actions_total{action,status}`` -- actuator outcomes;
    * ``cohabit_recommendations_total{kind,confidence}`` -- recommendations written;
    * ``cohabit_recommendation_cpu_cores{namespace,workload,kind,container}``,
      ``cohabit_recommendation_memory_bytes``, ``cohabit_recommendation_gpus`` (share of
      GPUs, 0.5 = half of one), ``cohabit_recommendation_gpu_memory_bytes`` -- the target of
      each sized container (absent while nothing was measured);
    * ``cohabit_recommendation_confidence_ratio{namespace,workload,kind}`` -- 0..1;
    * ``cohabit_qos_violations{namespace,workload,kind}`` -- violations in the QoS window
      (absent without QoS samples);
    * ``cohabit_pending_pods`` -- cohabit's pods waiting for a node, including those whose
      workload names no ``PlacementPolicy`` (read from the watch cache at scrape time);
    * ``cohabit_workloads{state}`` -- workloads by Ready state (``ready``, ``not_ready``,
      ``invalid``);
    * ``cohabit_events_total{type,reason}`` -- Kubernetes Events recorded;
    * ``cohabit_request_cpu_cores{namespace,workload,kind,container}``,
      ``cohabit_request_memory_bytes``, ``cohabit_request_gpus``,
      ``cohabit_request_gpu_memory_bytes`` -- each container's current request (the
      target's pod template), beside the recommendation;
    * ``cohabit_recommendation_low_confidence{namespace,workload,kind}`` -- 1 while nothing
      may act on the workload's recommendations (missing or short telemetry), else 0;
    * ``cohabit_cluster_gpus{gpu_model}``, ``cohabit_cluster_gpu_allocation_ratio``,
      ``cohabit_cluster_gpu_fragmentation_ratio`` (fragment / idle milli-GPU) and
      ``cohabit_cluster_gpu_fragmented_gpus`` -- the FGD paper's cluster view per GPU model
      (:mod:`cohabit.engine.observe`), after each scheduling pass;
    * ``cohabit_scheduler_pending_pods{qos_class}`` and
      ``cohabit_scheduler_oldest_pending_pod_age_seconds{qos_class}`` -- pods waiting for
      cohabit after the last scheduling pass, by QoS class.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.reconcile_duration = Histogram(
            "cohabit_reconcile_duration_seconds", "Duration of one reconcile pass",
            ["loop"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.actions = Counter("cohabit_actions_total", "Actions carried out, by outcome",
                               ["action", "status"], registry=r)
        self.recommendations = Counter(
            "cohabit_recommendations_total", "Recommendations written to status",
            ["kind", "confidence"], registry=r)
        labels = ["namespace", "workload", "kind", "container"]
        self.rec_cpu = Gauge("cohabit_recommendation_cpu_cores",
                             "Recommended CPU request (target), cores", labels, registry=r)
        self.rec_memory = Gauge("cohabit_recommendation_memory_bytes",
                                "Recommended memory request (target), bytes", labels,
                                registry=r)
        self.rec_gpu = Gauge("cohabit_recommendation_gpus",
                             "Recommended GPU share (target), GPUs (0.5 = half of one)",
                             labels, registry=r)
        self.rec_gpu_memory = Gauge("cohabit_recommendation_gpu_memory_bytes",
                                    "Recommended GPU memory (target), bytes", labels,
                                    registry=r)
        self.confidence = Gauge("cohabit_recommendation_confidence_ratio",
                                "Lowest confidence of a workload's recommendations, 0..1",
                                ["namespace", "workload", "kind"], registry=r)
        self.qos_violations = Gauge(
            "cohabit_qos_violations", "QoS samples missing the target within the window",
            ["namespace", "workload", "kind"], registry=r)
        self.pending = Gauge("cohabit_pending_pods", "Pods waiting for cohabit to bind them",
                             registry=r)
        self.workloads = Gauge("cohabit_workloads", "Workloads by state",
                               ["state"], registry=r)
        self.events = Counter("cohabit_events_total", "Kubernetes Events recorded",
                              ["type", "reason"], registry=r)
        self._containers: dict[tuple[str, str, str], set[str]] = {}
        self._observe_metrics()

    # ------------------------------------------------------------ dashboards (issue 14)

    _REQUESTS = (("cpu_cores", "cpu_milli", 1e-3, "CPU, cores"),
                 ("memory_bytes", "memory_mib", 2**20, "memory, bytes"),
                 ("gpus", "gpu_milli", 1e-3, "GPU share, GPUs (0.5 = half of one)"),
                 ("gpu_memory_bytes", "gpu_memory_mib", 2**20, "GPU memory, bytes"))
    """(metric suffix, :class:`~cohabit.model.Resources` field, scale, help)."""

    def _observe_metrics(self) -> None:
        r = self.registry
        labels = ["namespace", "workload", "kind", "container"]
        self.requested = {field_: Gauge(f"cohabit_request_{suffix}",
                                        f"Current request of the target, {text}", labels,
                                        registry=r)
                          for suffix, field_, _, text in self._REQUESTS}
        self.low_confidence = Gauge(
            "cohabit_recommendation_low_confidence",
            "1 while nothing may act on a workload's recommendations, else 0",
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
        self._requested: dict[tuple[str, str, str], set[str]] = {}

    def set_requests(self, namespace: str, workload: str, kind: str,
                     current: Mapping[str, Resources], low_confidence: bool) -> None:
        """A workload's current requests (container -> requests; resources > 0 only) and its
        low-confidence flag after a pass; containers no longer there are removed."""
        self.forget_requests(namespace, workload, kind)
        key = (namespace, workload, kind)
        for container, res in current.items():
            for field_, gauge in self.requested.items():
                value = getattr(res, field_)
                if value > 0:
                    scale = next(s for _, f, s, _ in self._REQUESTS if f == field_)
                    gauge.labels(namespace, workload, kind, container).set(value * scale)
            self._requested.setdefault(key, set()).add(container)
        self.low_confidence.labels(namespace, workload, kind).set(int(low_confidence))

    def forget_requests(self, namespace: str, workload: str, kind: str) -> None:
        """Remove a workload's request and low-confidence series."""
        for container in self._requested.pop((namespace, workload, kind), set()):
            for gauge in self.requested.values():
                with contextlib.suppress(KeyError):
                    gauge.remove(namespace, workload, kind, container)
        with contextlib.suppress(KeyError):
            self.low_confidence.remove(namespace, workload, kind)

    def set_cluster(self, gpus: Sequence[GpuModelView], pending: Sequence[PendingView]) -> None:
        """The cluster view of the last scheduling pass; series of GPU models and QoS
        classes no longer present are removed (never all cleared first: a scrape in between
        would see none)."""
        frag = [v for v in gpus if v.frag_milli is not None]
        for gauge, values in (
                (self.cluster_gpus, {v.model: v.gpus for v in gpus}),
                (self.gpu_allocation, {v.model: v.allocation_ratio for v in gpus}),
                (self.gpu_fragmentation, {v.model: v.fragmentation_ratio for v in frag
                                          if v.fragmentation_ratio is not None}),
                (self.gpu_fragmented, {v.model: v.fragmented_gpus for v in frag
                                       if v.fragmented_gpus is not None}),
                (self.pending_by_qos, {p.qos_class: p.pods for p in pending}),
                (self.pending_age, {p.qos_class: p.oldest_age_s for p in pending})):
            _replace(gauge, values)

    def set_recommendations(self, namespace: str, workload: str, kind: str,
                            recs: list[Recommendation], confidence: float | None) -> None:
        """Per-workload gauges after a pass: one series per sized container and resource;
        series of containers (or resources) no longer sized are removed."""
        key = (namespace, workload, kind)
        self.forget_recommendations(namespace, workload, kind)
        gauges = ((self.rec_cpu, "cpu_milli", 1e-3), (self.rec_memory, "memory_mib", 2**20),
                  (self.rec_gpu, "gpu_milli", 1e-3),
                  (self.rec_gpu_memory, "gpu_memory_mib", 2**20))
        for r in recs:
            for gauge, attr, scale in gauges:
                value = getattr(r.target, attr)
                if value > 0:
                    gauge.labels(namespace, workload, kind, r.container).set(value * scale)
            self._containers.setdefault(key, set()).add(r.container)
        if confidence is not None:
            self.confidence.labels(namespace, workload, kind).set(confidence)

    def forget_recommendations(self, namespace: str, workload: str, kind: str) -> None:
        """Remove a workload's recommendation and confidence series."""
        key = (namespace, workload, kind)
        for container in self._containers.pop(key, set()):
            for gauge in (self.rec_cpu, self.rec_memory, self.rec_gpu, self.rec_gpu_memory):
                with contextlib.suppress(KeyError):
                    gauge.remove(namespace, workload, kind, container)
        with contextlib.suppress(KeyError):
            self.confidence.remove(namespace, workload, kind)

    def forget_qos(self, namespace: str, workload: str, kind: str) -> None:
        """Remove a workload's QoS-violation series."""
        with contextlib.suppress(KeyError):
            self.qos_violations.remove(namespace, workload, kind)


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
        api_client: kubernetes ``ApiClient`` (None: no API server, e.g. unit tests).
        cluster: a :class:`~cohabit.telemetry.ClusterSource`: the watch-fed
            :class:`~cohabit.operator.cache.ClusterCache` in the operator (a
            :class:`~cohabit.telemetry.kube.KubeClusterSource` reads the API every time);
            the scheduling passes read its :meth:`~ClusterSource.snapshot`, the workload
            passes its :meth:`~ClusterSource.workload_snapshot`.
        usage: a :class:`~cohabit.telemetry.UsageSource` or None when no Prometheus is
            configured.
        actuator: an :class:`~cohabit.actuator.Actuator` (the ``KubernetesActuator``).
        metrics: :class:`Metrics`.
        events: the :class:`~cohabit.operator.events.EventRecorder` (in memory by default).
        workloads: workload key -> parsed spec (valid ones only).
        invalid: workload key -> why its spec is invalid.
        ready: workload key -> its Ready condition status (for ``cohabit_workloads``).
        policies: policy name -> parsed ``PlacementPolicy``.
        invalid_policies: policy name -> why its spec is invalid.
        assessments: workload key -> last assessment (rebinding reads interference here).
        targets: workload key -> ``(namespace, kind, name)`` for resizes.
        uids: workload key -> ``(kind, uid)`` of the custom resource (for Events).
        lock: serialises the planning of scheduling passes (never held across network
            I/O: lists, binds and evictions run outside it).
        inflight: binds planned and not yet seen in a listed snapshot, overlaid on the next
            plans (:class:`~cohabit.operator.inflight.InflightBinds`).
        wakers: policy name -> event set by pod events to run that scheduler at once.
        slowdown: the ``cohabit`` placement policy's slowdown callable (None = the engine's
            pressure x sensitivity default).
        tuner: the :class:`~cohabit.engine.tuning.FleetTuner` whose recommender sizes the
            workloads (None = the estimator's a-priori defaults).
        standalone: no peering (a single instance).
        pauses: the :class:`~cohabit.operator.logs.PauseMonitor` (None = not watched).
        said: ``(key, topic)`` -> the last state logged about it (log on change only).
        started: epoch seconds the runtime was built (a pod's grace for its workload's spec
            counts from here at the latest: at startup every pod is old).
        db_planners: workload key -> its online capacity planner
            (:class:`cohabit.engine.dbonline.OnlineDatabasePlanner`), for ``DatabaseWorkload``
            objects with ``spec.qos.offeredLoadQuery``.
        db_signals: the source of database signals (None = a Prometheus source from the
            settings); tests and other deployments may inject their own.
    """

    settings: OperatorSettings
    api_client: ApiClient | None
    cluster: ClusterSource
    usage: UsageSource | None
    actuator: Actuator
    metrics: Metrics = field(default_factory=Metrics)
    events: EventRecorder = field(
        default_factory=lambda: EventRecorder(MemoryEventSink(), background=False))
    workloads: dict[str, WorkloadSpec] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)
    ready: dict[str, bool] = field(default_factory=dict)
    policies: dict[str, PolicyConfig] = field(default_factory=dict)
    invalid_policies: dict[str, str] = field(default_factory=dict)
    assessments: dict[str, Assessment] = field(default_factory=dict)
    targets: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    uids: dict[str, tuple[str, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    inflight: InflightBinds = field(default_factory=InflightBinds)
    wakers: dict[str, threading.Event] = field(default_factory=dict)
    slowdown: Slowdown | None = None
    tuner: FleetTuner | None = None
    standalone: bool = False
    pauses: PauseMonitor | None = None
    said: dict[tuple[str, str], str] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    db_planners: dict[str, OnlineDatabasePlanner] = field(default_factory=dict)
    db_signals: DatabaseSignalSource | None = None

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

    def pod_ref(self, key: str) -> ObjectRef:
        """The Event reference of pod ``namespace/name`` (UID from the watch cache)."""
        namespace, _, name = key.partition("/")
        return ObjectRef("Pod", name, namespace, self.cluster.pod_uid(key))

    def workload_ref(self, key: str, kind: str = "") -> ObjectRef:
        """The Event reference of workload ``namespace/name``."""
        namespace, _, name = key.partition("/")
        known_kind, uid = self.uids.get(key, (kind, ""))
        return ObjectRef(kind or known_kind, name, namespace, uid, WORKLOAD_API_VERSION)

    def changed(self, key: str, topic: str, state: str) -> bool:
        """True when ``state`` differs from the last one noted for ``(key, topic)`` (and
        notes it): log lines and transition Events fire on change only."""
        if self.said.get((key, topic)) == state:
            return False
        self.said[(key, topic)] = state
        return True

    def forget(self, key: str) -> None:
        """Drop everything noted about workload ``key``."""
        for table in (self.workloads, self.assessments, self.targets, self.invalid,
                      self.ready, self.uids, self.db_planners):
            table.pop(key, None)
        for said in [k for k in self.said if k[0] == key]:
            del self.said[said]

    def refresh_counts(self) -> None:
        """``cohabit_workloads{state}`` from :attr:`ready` and :attr:`invalid`."""
        ready = sum(1 for k, v in self.ready.items() if v and k not in self.invalid)
        self.metrics.workloads.labels("ready").set(ready)
        self.metrics.workloads.labels("not_ready").set(len(self.workloads) - ready)
        self.metrics.workloads.labels("invalid").set(len(self.invalid))
