"""Typed settings and custom-resource spec parsing, shared by the operator and the simulator.

* :mod:`cohabit.config.settings`: nested settings dataclasses (``OperatorSettings``).
* :mod:`cohabit.config.spec`: ``DatabaseWorkload``/``GpuWorkload``/``PlacementPolicy`` specs
  parsed into :mod:`cohabit.model` values, errors naming the field.
* :mod:`cohabit.config.quantity`: Kubernetes quantities in cohabit units.

No kubernetes import here (import-linter enforces it).
"""

from cohabit.config.quantity import QuantityError, cpu_milli, memory_mib, parse_quantity
from cohabit.config.settings import (
    AgentSettings,
    KubeSettings,
    MetricsSettings,
    OperatorSettings,
    PrometheusSettings,
    ReconcileSettings,
    SchedulerSettings,
    SettingsError,
)
from cohabit.config.spec import (
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

__all__ = [
    "GROUP",
    "VERSION",
    "AgentSettings",
    "KubeSettings",
    "MetricsSettings",
    "OperatorSettings",
    "PolicyConfig",
    "PrometheusSettings",
    "QuantityError",
    "RebindingConfig",
    "ReconcileSettings",
    "RightSizingConfig",
    "SchedulerSettings",
    "SettingsError",
    "SpecError",
    "WorkloadSpec",
    "cpu_milli",
    "memory_mib",
    "parse_policy",
    "parse_quantity",
    "parse_workload",
]
