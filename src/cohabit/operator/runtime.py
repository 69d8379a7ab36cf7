"""The operator's runtime objects (kept in kopf's ``memo``, never in module globals) and its
Prometheus metrics.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from cohabit.config import OperatorSettings, PolicyConfig, WorkloadSpec
from cohabit.engine.reconcile import Assessment
from cohabit.operator.inflight import InflightBinds

__all__ = ["Metrics", "Runtime"]


class Metrics:
    """The operator's own metrics, on their own registry (served on ``/metrics``).

    * ``cohabit_reconcile_duration_seconds{loop}`` -- one workload pass or scheduling pass;
    * ``cohabit_actions_total{action,status}`` -- actuator outcomes;
    * ``cohabit_recommendations_total{kind,confidence}`` -- recommendations written;
    * ``cohabit_qos_violations{namespace,workload}`` -- violations in the QoS window;
    * ``cohabit_pending_pods`` -- pods waiting for cohabit after the last pass.
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
