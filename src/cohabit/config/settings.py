"""Typed settings of the operator and the node agent: nested dataclasses, injected, no globals.

Modelled on kopf's ``OperatorSettings``: one dataclass per concern, fields documented by
attribute docstrings. :meth:`OperatorSettings.from_env` reads ``COHABIT_*`` environment
variables (what the Helm chart sets); unknown or malformed values raise :class:`SettingsError`
naming the variable.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

__all__ = [
    "AgentSettings",
    "KubeSettings",
    "MetricsSettings",
    "OperatorSettings",
    "PrometheusSettings",
    "ReconcileSettings",
    "SchedulerSettings",
    "SettingsError",
]


class SettingsError(ValueError):
    """A setting (environment variable or argument) with a bad value; names the setting."""


@dataclass(frozen=True)
class PrometheusSettings:
    """Where usage and QoS telemetry come from."""

    url: str = ""
    """Base URL of Prometheus (``http://prometheus:9090``); empty = no usage source."""

    timeout_s: float = 10.0
    """Total deadline of one query in seconds (connect, send and the whole answer: a server
    trickling its answer is cut off at this deadline too)."""

    window_s: float = 86400.0
    """History a recommendation is computed from, seconds back from ``now``. Default one day,
    as the chart's ``operator.historySeconds``: the just-enough estimator reaches full
    confidence only with a day of history (``full_history_s``), so a shorter window keeps
    every recommendation low-confidence (no action)."""

    step_s: float = 60.0
    """Range-query resolution in seconds."""

    rate_window: str = "5m"
    """Window of ``rate()`` over cAdvisor CPU counters (PromQL duration)."""

    namespace_label: str = "namespace"
    """Label holding a series' Kubernetes namespace. Every vector selector of a workload's
    ``spec.qos.query`` gets the matcher ``<label>="<workload's namespace>"`` injected (as
    prom-label-proxy does), so a workload reads only its own namespace's series."""

    unconfined_namespaces: str = ""
    """Comma-separated namespaces whose workloads' QoS queries run as written, without the
    namespace matcher (an explicit per-namespace opt-in by the operator's admin, e.g. for a
    platform team whose SLO series carry no namespace label). Empty = none."""

    def unconfined(self) -> frozenset[str]:
        """:attr:`unconfined_namespaces` as a set."""
        return frozenset(n.strip() for n in self.unconfined_namespaces.split(",") if n.strip())


@dataclass(frozen=True)
class KubeSettings:
    """Calls to the Kubernetes API (cohabit's own; kopf's watches have kopf's settings)."""

    request_timeout_s: float = 10.0
    """Connect and read timeout of every Kubernetes API call cohabit makes, seconds."""

    ledger_grace_s: float = 300.0
    """Seconds after which an eviction whose outcome was not known (answer lost, operator
    killed) is settled by checking its pod. Until then its budget slot counts as spent."""


@dataclass(frozen=True)
class SchedulerSettings:
    """The secondary scheduler."""

    name: str = "cohabit"
    """Pods whose ``spec.schedulerName`` equals this are bound by cohabit."""

    interval_s: float = 2.0
    """Seconds between scheduling passes over pending pods."""

    default_policy: str = "default"
    """Name of the ``PlacementPolicy`` used when a workload names none."""

    max_pods_per_pass: int = 100
    """Pending pods placed per pass (oldest first); the next pass follows at once."""

    workload_grace_s: float = 30.0
    """Seconds a new pod of a cohabit workload waits for the workload's spec to be parsed (its
    ``policyRef`` and declared interference profile) before the default policy places it
    anyway. Pods never wait for the telemetry assessment."""

    interference_model: str = "pressure-sensitivity"
    """Slowdown model of the ``cohabit`` placement policy: ``pressure-sensitivity`` (linear
    pressure x sensitivity of the workloads' profiles) or ``gavel`` (the interference model
    trained at startup on the packaged Gavel co-runs, for probe profiles; others fall back
    to pressure x sensitivity)."""


@dataclass(frozen=True)
class ReconcileSettings:
    """Workload reconciliation."""

    interval_s: float = 60.0
    """Seconds between timer re-plans of each workload."""

    idle_s: float = 0.0
    """Seconds a workload must be unchanged before the timer fires (kopf ``idle``)."""

    qos_window_s: float = 3600.0
    """Window over which QoS violations are counted, seconds."""

    tune_interval_s: float = 0.0
    """Re-choose the just-enough estimator's per-workload operating points for the whole fleet
    at most this often, seconds (:class:`cohabit.engine.tuning.FleetTuner`); 0 = off (the
    estimator's a-priori defaults)."""


@dataclass(frozen=True)
class MetricsSettings:
    """The operator's own Prometheus metrics and liveness endpoints."""

    port: int = 8080
    """Port of ``/metrics`` (prometheus-client)."""

    liveness_port: int = 8081
    """Port of kopf's liveness endpoint ``/healthz``."""


@dataclass(frozen=True)
class AgentSettings:
    """The NVML node agent."""

    port: int = 9400
    """Port of the agent's ``/metrics``."""

    node_name: str = ""
    """Node the agent runs on (the chart sets it from ``spec.nodeName``)."""


@dataclass(frozen=True)
class OperatorSettings:
    """All operator settings."""

    prometheus: PrometheusSettings = field(default_factory=PrometheusSettings)
    """Telemetry source."""

    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    """Secondary scheduler."""

    reconcile: ReconcileSettings = field(default_factory=ReconcileSettings)
    """Workload reconciliation."""

    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    """Own metrics and liveness."""

    kube: KubeSettings = field(default_factory=KubeSettings)
    """Kubernetes API calls."""

    namespace: str = ""
    """Namespace to watch; empty = cluster-wide."""

    peering: str = "cohabit"
    """kopf peering object name: one active operator per peering (leader election)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OperatorSettings:
        """Settings with every ``COHABIT_<SECTION>_<FIELD>`` variable applied.

        Example: ``COHABIT_PROMETHEUS_URL``, ``COHABIT_RECONCILE_INTERVAL_S``,
        ``COHABIT_NAMESPACE``.

        Raises:
            SettingsError: a variable names no setting or has a value of the wrong type.
        """
        env = os.environ if environ is None else environ
        settings = cls()
        sections = {f.name: getattr(settings, f.name) for f in fields(settings)}
        updates: dict[str, Any] = {}  # field name -> value of that field's type
        section_updates: dict[str, dict[str, Any]] = {}
        for key, raw in env.items():
            if not key.startswith("COHABIT_") or key in _NOT_SETTINGS:
                continue
            rest = key[len("COHABIT_") :].lower()
            if rest in sections and not hasattr(sections[rest], "__dataclass_fields__"):
                updates[rest] = _coerce(key, raw, type(sections[rest]))
                continue
            for name, section in sections.items():
                if hasattr(section, "__dataclass_fields__") and rest.startswith(name + "_"):
                    attr = rest[len(name) + 1 :]
                    if attr not in section.__dataclass_fields__:
                        raise SettingsError(f"{key}: {name} has no setting {attr!r}")
                    current = getattr(section, attr)
                    section_updates.setdefault(name, {})[attr] = _coerce(key, raw, type(current))
                    break
        for name, values in section_updates.items():
            updates[name] = replace(sections[name], **values)
        return replace(settings, **updates)


_NOT_SETTINGS = frozenset({"COHABIT_LEDGER_NAMESPACE", "COHABIT_SKIP_INTEGRATION"})
"""``COHABIT_*`` variables that are read elsewhere, not settings."""


def _coerce(key: str, raw: str, kind: type) -> object:
    try:
        if kind is bool:
            if raw.lower() in ("1", "true", "yes"):
                return True
            if raw.lower() in ("0", "false", "no", ""):
                return False
            raise ValueError(raw)
        value = kind(raw)
    except ValueError as exc:
        raise SettingsError(f"{key}={raw!r} is not a valid {kind.__name__}") from exc
    if kind is float and not (math.isfinite(value) and value >= 0):
        raise SettingsError(f"{key}={raw!r} must be a finite number >= 0")
    if key.endswith("TIMEOUT_S") and value <= 0:
        raise SettingsError(f"{key}={raw!r} must be above 0 (a timeout of 0 would never "
                            "wait, or never end)")
    return value
