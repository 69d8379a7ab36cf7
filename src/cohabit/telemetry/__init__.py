"""Telemetry: where the engine's inputs come from.

* :mod:`cohabit.telemetry.base`: the ``ClusterSource``/``UsageSource`` interfaces, the usage
  frame's columns, :class:`TelemetryUnavailable`.
* :mod:`cohabit.telemetry.kube`: nodes and pods from the Kubernetes API.
* :mod:`cohabit.telemetry.prometheus`: cAdvisor, DCGM and QoS series from Prometheus.
* :mod:`cohabit.telemetry.nvml`: per-GPU/per-process NVML readings for the node agent.

Adapters are imported from their modules, so importing this package loads neither the
kubernetes client nor prometheus-api-client.
"""

from cohabit.telemetry.base import (
    QOS_COLUMNS,
    RESOURCES,
    USAGE_COLUMNS,
    ClusterSource,
    TelemetryUnavailable,
    UsageSource,
    empty_qos,
    empty_usage,
)

__all__ = [
    "QOS_COLUMNS",
    "RESOURCES",
    "USAGE_COLUMNS",
    "ClusterSource",
    "TelemetryUnavailable",
    "UsageSource",
    "empty_qos",
    "empty_usage",
]
