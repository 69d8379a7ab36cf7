"""Start the operator: build the runtime, serve ``/metrics``, hand over to ``kopf.run``."""

from __future__ import annotations

import logging
import os
from typing import Any

import kopf
from kubernetes import client, config
from prometheus_client import start_http_server

from cohabit.actuator.base import MemoryLedger
from cohabit.actuator.kubernetes import ConfigMapLedger, KubernetesActuator
from cohabit.config import OperatorSettings
from cohabit.engine.reconcile import slowdown_model
from cohabit.engine.tuning import FleetTuner
from cohabit.operator.cache import ClusterCache
from cohabit.operator.events import ApiEventSink, EventRecorder
from cohabit.operator.handlers import build_registry
from cohabit.operator.inflight import InflightBinds
from cohabit.operator.logs import pause_monitor
from cohabit.operator.runtime import Runtime
from cohabit.telemetry.base import TelemetryUnavailable

__all__ = ["OperatorStartError", "api_client_from_environment", "build_runtime", "run"]

log = logging.getLogger(__name__)


class OperatorStartError(RuntimeError):
    """The operator cannot start (a port in use, ...); the message says what to change."""


def api_client_from_environment(kubeconfig: str | None = None) -> client.ApiClient:
    """An ``ApiClient`` from the in-cluster service account, else ``kubeconfig``/``KUBECONFIG``.

    urllib3's own retries are off (``retries=0``): a call takes at most its
    ``_request_timeout``, and a write whose answer was lost is never re-sent behind the
    caller's back (the eviction ledger decides what a lost answer means).

    Raises:
        kubernetes.config.ConfigException: neither is usable.
    """
    cfg = client.Configuration()
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=cfg)
    else:
        config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    cfg.retries = 0
    return client.ApiClient(cfg)


def build_runtime(settings: OperatorSettings, api_client: Any,
                  ledger_namespace: str = "", *, standalone: bool = False) -> Runtime:
    """The runtime: the watch-fed cluster cache (not started), Prometheus usage source (None
    when unset), actuator, Event recorder (not started).

    Args:
        ledger_namespace: where the eviction ledger ConfigMap lives (``""`` = in memory; the
            chart passes the operator's namespace so budgets survive restarts).
        standalone: no peering.
    """
    usage = None
    if settings.prometheus.url:
        from cohabit.telemetry.prometheus import PrometheusUsageSource

        try:
            usage = PrometheusUsageSource(settings.prometheus.url,
                                          step_s=settings.prometheus.step_s,
                                          timeout_s=settings.prometheus.timeout_s,
                                          rate_window=settings.prometheus.rate_window,
                                          namespace_label=settings.prometheus.namespace_label,
                                          unconfined=settings.prometheus.unconfined())
        except TelemetryUnavailable as exc:
            log.warning("%s", exc)
    else:
        log.warning("no Prometheus URL (COHABIT_PROMETHEUS_URL): every recommendation will "
                    "be low-confidence and nothing will be resized")
    timeout = settings.kube.request_timeout_s
    ledger = (ConfigMapLedger(api_client, ledger_namespace, request_timeout=timeout)
              if ledger_namespace else MemoryLedger())
    cache = ClusterCache(api_client, settings.scheduler.name, settings.namespace,
                         request_timeout_s=timeout)
    targets: dict[str, tuple[str, str, str]] = {}  # Runtime.targets: resizes resolve here
    actuator = KubernetesActuator(api_client, ledger=ledger, resolve_target=targets.get,
                                  verify_binds=False, bind_concurrency=8,
                                  request_timeout=timeout,
                                  ledger_grace_s=settings.kube.ledger_grace_s)
    runtime = Runtime(
        settings=settings,
        api_client=api_client,
        cluster=cache,
        usage=usage,
        actuator=actuator,
        targets=targets,
        inflight=InflightBinds(keep_s=max(120.0, 4 * timeout)),
        standalone=standalone,
    )
    cache.on_change = runtime.wake_all  # pod and node changes wake the scheduler loops
    runtime.metrics.pending.set_function(cache.pending_count)
    runtime.events = EventRecorder(
        ApiEventSink(api_client, timeout_s=timeout), on_record=lambda type_, reason:
        runtime.metrics.events.labels(type_, reason).inc())
    if settings.reconcile.tune_interval_s > 0:
        runtime.tuner = FleetTuner(interval_s=settings.reconcile.tune_interval_s)
    runtime.slowdown = slowdown_model(settings.scheduler.interference_model)
    return runtime


def run(settings: OperatorSettings, *, kubeconfig: str | None = None,
        standalone: bool = False, priority: int = 0, ledger_namespace: str = "",
        stop_flag: Any = None, ready_flag: Any = None) -> None:
    """Run the operator until stopped (blocks).

    Args:
        settings: operator settings.
        kubeconfig: kubeconfig file (default: in-cluster, then ``KUBECONFIG``).
        standalone: no peering (a single instance, e.g. local development): no peering
            resource is needed and nothing pauses.
        priority: kopf peering priority (the highest-priority live peer is active).
        ledger_namespace: namespace of the eviction ledger ConfigMap.
        stop_flag, ready_flag: kopf's flags (tests stop the operator with them).

    Raises:
        OperatorStartError: the metrics port is taken.
    """
    api_client = api_client_from_environment(kubeconfig)
    runtime = build_runtime(settings, api_client, ledger_namespace, standalone=standalone)
    runtime.pauses = pause_monitor(settings.peering)
    try:
        start_http_server(settings.metrics.port, registry=runtime.metrics.registry)
    except OSError as exc:
        raise OperatorStartError(
            f"cannot serve /metrics on port {settings.metrics.port}: {exc.strerror} "
            "(--metrics-port or COHABIT_METRICS_PORT)") from exc
    namespaces = [settings.namespace] if settings.namespace else []
    log.info("cohabit operator starting: %s, %s, Prometheus %s, /metrics on :%d, /healthz on "
             ":%d", "standalone (no peering)" if standalone else
             f"peering {settings.peering!r} priority {priority}",
             f"namespace {settings.namespace}" if settings.namespace else "cluster-wide",
             settings.prometheus.url or "none", settings.metrics.port,
             settings.metrics.liveness_port)
    runtime.cluster.start()
    runtime.events.start()
    try:
        kopf.run(
            registry=build_registry(settings),
            memo=kopf.Memo(runtime=runtime),
            clusterwide=not namespaces,
            namespaces=namespaces,
            standalone=standalone,
            priority=priority,
            peering_name=None if standalone else settings.peering,
            liveness_endpoint=f"http://0.0.0.0:{settings.metrics.liveness_port}/healthz",
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
    finally:
        runtime.cluster.stop()
        runtime.events.stop()
