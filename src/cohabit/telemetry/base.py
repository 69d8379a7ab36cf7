"""Telemetry input interfaces and the usage frame's schema.

* :class:`ClusterSource` -- ``snapshot(now) -> Snapshot``: nodes and pods.
* :class:`UsageSource` -- per-container resource usage and a workload's QoS series over a
  time range, as tidy pandas frames.

A source that cannot answer raises :class:`TelemetryUnavailable`; the engine turns that into a
low-confidence recommendation and takes no action.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import pandas as pd

from cohabit.model import RESOURCE_FIELDS, Snapshot, Workload

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

RESOURCES = RESOURCE_FIELDS
"""Values of the usage frame's ``resource`` column (units as in :mod:`cohabit.model`)."""

USAGE_COLUMNS = ("time", "namespace", "pod", "container", "resource", "value")
"""Columns of a usage frame, one row per sample:

* ``time``: epoch seconds (float),
* ``namespace``, ``pod``, ``container``: identity (``container`` is ``""`` when the source
  only knows the pod, e.g. DCGM without container mapping),
* ``resource``: one of :data:`RESOURCES`,
* ``value``: usage in that resource's unit (``gpu_milli`` = GPU utilisation % x 10).
"""

QOS_COLUMNS = ("time", "value")
"""Columns of a QoS frame: epoch seconds and the workload's QoS metric (ms or per second)."""


class TelemetryUnavailable(RuntimeError):
    """A telemetry source is missing or did not answer; names the source and the reason."""


def empty_usage() -> pd.DataFrame:
    """A usage frame with no rows and the documented columns and dtypes."""
    return pd.DataFrame({
        "time": pd.Series(dtype="float64"),
        "namespace": pd.Series(dtype="object"),
        "pod": pd.Series(dtype="object"),
        "container": pd.Series(dtype="object"),
        "resource": pd.Series(dtype="object"),
        "value": pd.Series(dtype="float64"),
    })


def empty_qos() -> pd.DataFrame:
    """A QoS frame with no rows."""
    return pd.DataFrame({"time": pd.Series(dtype="float64"), "value": pd.Series(dtype="float64")})


@runtime_checkable
class ClusterSource(Protocol):
    """Where the cluster's nodes and pods come from."""

    def snapshot(self, now: float) -> Snapshot:
        """The cluster at ``now`` (epoch seconds, passed in)."""
        ...


@runtime_checkable
class UsageSource(Protocol):
    """Where resource usage and QoS measurements come from."""

    def usage(self, namespace: str, pods: Sequence[str], start: float, end: float
              ) -> pd.DataFrame:
        """Usage of ``pods`` in ``[start, end]`` (epoch seconds) with :data:`USAGE_COLUMNS`.

        Raises:
            TelemetryUnavailable: the source is down or misconfigured.
        """
        ...

    def qos(self, workload: Workload, start: float, end: float) -> pd.DataFrame:
        """The workload's QoS query over ``[start, end]`` with :data:`QOS_COLUMNS`.

        Raises:
            TelemetryUnavailable: the source is down or the query failed.
        """
        ...
