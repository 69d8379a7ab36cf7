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
    """Where the cluster's nodes and pods come from.

    :meth:`snapshot` and :meth:`workload_snapshot` are what every source answers. The other
    members matter to a source that keeps state (the operator's watch cache,
    :class:`cohabit.operator.cache.ClusterCache`); a source that reads the API every time
    (:class:`cohabit.telemetry.kube.KubeClusterSource`) subclasses this protocol and keeps
    their defaults: always synced, no pod UIDs known, binds not assumed, pending pods not
    counted live, nothing to start or stop.
    """

    def snapshot(self, now: float) -> Snapshot:
        """The cluster at ``now`` (epoch seconds, passed in): schedulable nodes with their
        free shares, bound pods and the pending pods cohabit schedules."""
        ...

    def workload_snapshot(self, namespace: str, workload: str, now: float) -> Snapshot:
        """One workload's view at ``now``: its unfinished pods (label
        ``cohabit.io/workload=<workload>`` in ``namespace``, bound or pending, whatever
        their scheduler) and the nodes they are bound to (allocatable capacity, every share
        free: the capacity measured pressure is relative to). Pods and nodes that cannot be
        read are left out and logged, never raised.

        Raises:
            kubernetes.client.exceptions.ApiException, urllib3.exceptions.HTTPError: an API
                source could not list the pods (refused, or no answer within its timeout).
        """
        ...

    @property
    def synced(self) -> bool:
        """True once the source can answer (a watch cache has listed both kinds)."""
        return True

    def pod_uid(self, key: str) -> str:
        """The UID of pod ``namespace/name`` when known without an API call, else ``""``."""
        return ""

    def assume(self, pod_key: str, node: str, gpu_indices: tuple[int, ...]) -> None:
        """Treat ``pod_key`` as bound to ``node`` (holding ``gpu_indices``) until the source
        sees it bound; a source that reads the API every time has nothing to assume."""
        return None

    def pending_count(self) -> int | None:
        """How many of cohabit's pods wait for a node, counted live by the source; None when
        the source does not count them (the scheduling pass counts from its snapshot)."""
        return None

    def start(self) -> None:
        """Begin keeping up to date (a watch cache starts its watch threads; returns at
        once, see :attr:`synced`)."""
        return None

    def stop(self) -> None:
        """Release what the source holds (watch threads, connections)."""
        return None


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
