"""Usage and QoS from Prometheus through prometheus-api-client.

Metric names are the ones clusters already have:

* cAdvisor (kubelet ``/metrics/cadvisor``): ``container_cpu_usage_seconds_total`` (a counter;
  ``rate()`` x 1000 = millicores) and ``container_memory_working_set_bytes`` (what the
  kubelet's eviction and VPA use), labels ``namespace``, ``pod``, ``container``;
* NVIDIA DCGM exporter: ``DCGM_FI_DEV_GPU_UTIL`` (%, x 10 = milli-GPU) and
  ``DCGM_FI_DEV_FB_USED`` (MiB), with ``namespace``/``pod`` (and ``container``) labels from
  its Kubernetes pod mapping;
* the workload's own QoS PromQL from ``spec.qos.query``.

A failed query (connection refused, timeout, HTTP error, bad PromQL) raises
:class:`~cohabit.telemetry.base.TelemetryUnavailable`, naming the query.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import pandas as pd
import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from cohabit.model import Workload
from cohabit.telemetry.base import TelemetryUnavailable, empty_qos, empty_usage

__all__ = ["PrometheusUsageSource", "usage_queries"]

log = logging.getLogger(__name__)


def _regex(pods: Sequence[str]) -> str:
    """An RE2 alternation of ``pods``, escaped for a PromQL double-quoted string."""
    return "|".join(re.escape(p).replace("\\", "\\\\") for p in pods)


def usage_queries(namespace: str, pods: Sequence[str], rate_window: str = "5m"
                  ) -> dict[str, str]:
    """PromQL per usage resource for ``pods`` of ``namespace`` (values in cohabit units).

    Example: ``usage_queries("db", ["pg-0"])["memory_mib"]`` is
    ``container_memory_working_set_bytes{namespace="db",pod=~"pg\\\\-0",container!="",
    container!="POD"} / 1048576``.
    """
    sel = f'namespace="{namespace}",pod=~"{_regex(pods)}"'
    csel = sel + ',container!="",container!="POD"'
    return {
        "cpu_milli": f"rate(container_cpu_usage_seconds_total{{{csel}}}[{rate_window}]) * 1000",
        "memory_mib": f"container_memory_working_set_bytes{{{csel}}} / 1048576",
        "gpu_milli": f"DCGM_FI_DEV_GPU_UTIL{{{sel}}} * 10",
        "gpu_memory_mib": f"DCGM_FI_DEV_FB_USED{{{sel}}}",
    }


class PrometheusUsageSource:
    """:class:`~cohabit.telemetry.base.UsageSource` over a Prometheus HTTP API.

    Args:
        url: Prometheus base URL.
        step_s: range-query resolution, seconds.
        timeout_s: per-request timeout, seconds.
        rate_window: ``rate()`` window for CPU counters.
    """

    def __init__(self, url: str, *, step_s: float = 60.0, timeout_s: float = 10.0,
                 rate_window: str = "5m") -> None:
        if not url:
            raise TelemetryUnavailable("Prometheus: no URL configured (COHABIT_PROMETHEUS_URL)")
        self.url = url
        self.step_s = step_s
        self.timeout_s = timeout_s
        self.rate_window = rate_window
        # No retries: a down Prometheus must answer "unavailable" within one timeout. The
        # HTTP session is ours, so close() releases its pooled connections.
        self._session = requests.Session()
        self._prom = PrometheusConnect(url=url, disable_ssl=True, timeout=int(max(1, timeout_s)),
                                       retry=Retry(total=0, raise_on_status=False),
                                       session=self._session)

    def close(self) -> None:
        """Close the pooled HTTP connections (the source stays usable: it reconnects)."""
        self._session.close()

    def __enter__(self) -> PrometheusUsageSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _range(self, query: str, start: float, end: float) -> list[dict[str, Any]]:
        try:
            return self._prom.custom_query_range(
                query,
                start_time=datetime.fromtimestamp(start, timezone.utc),
                end_time=datetime.fromtimestamp(end, timezone.utc),
                step=f"{max(1, int(self.step_s))}s",
            )
        except (PrometheusApiClientException, requests.RequestException, ValueError) as exc:
            raise TelemetryUnavailable(f"Prometheus {self.url}: query {query!r} failed: "
                                       f"{type(exc).__name__}: {exc}") from exc

    def usage(self, namespace: str, pods: Sequence[str], start: float, end: float
              ) -> pd.DataFrame:
        """Usage rows (:data:`~cohabit.telemetry.base.USAGE_COLUMNS`) for ``pods``."""
        if not pods:
            return empty_usage()
        frames = []
        for resource, query in usage_queries(namespace, pods, self.rate_window).items():
            for series in self._range(query, start, end):
                labels = series.get("metric", {})
                values = series.get("values", [])
                if not values:
                    continue
                frame = pd.DataFrame(values, columns=["time", "value"])
                frame["time"] = frame["time"].astype("float64")
                frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
                frame["namespace"] = labels.get("namespace", namespace)
                frame["pod"] = labels.get("pod", "")
                frame["container"] = labels.get("container", "")
                frame["resource"] = resource
                frames.append(frame)
        if not frames:
            return empty_usage()
        out = pd.concat(frames, ignore_index=True).dropna(subset=["value"])
        return out[["time", "namespace", "pod", "container", "resource", "value"]]

    def qos(self, workload: Workload, start: float, end: float) -> pd.DataFrame:
        """The workload's QoS query over ``[start, end]``; several series are averaged."""
        query = workload.qos_target.query
        if not query:
            raise TelemetryUnavailable(f"workload {workload.key}: spec.qos.query is empty")
        series = self._range(query, start, end)
        frames = [pd.DataFrame(s.get("values", []), columns=["time", "value"]) for s in series]
        frames = [f for f in frames if not f.empty]
        if not frames:
            return empty_qos()
        out = pd.concat(frames, ignore_index=True)
        out["time"] = out["time"].astype("float64")
        out["value"] = pd.to_numeric(out["value"], errors="coerce")
        out = out.dropna().groupby("time", as_index=False)["value"].mean()
        return out.sort_values("time").reset_index(drop=True)

    def healthy(self) -> bool:
        """True when Prometheus answers its API."""
        try:
            return bool(self._prom.check_prometheus_connection())
        except (PrometheusApiClientException, requests.RequestException):
            return False
