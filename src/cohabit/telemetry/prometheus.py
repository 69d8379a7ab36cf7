"""Usage and QoS from Prometheus.

Metric names are the ones clusters already have:

* cAdvisor (kubelet ``/metrics/cadvisor``): ``container_cpu_usage_seconds_total`` (a counter;
  ``rate()`` x 1000 = millicores) and ``container_memory_working_set_bytes`` (what the
  kubelet's eviction and VPA use), labels ``namespace``, ``pod``, ``container``;
* NVIDIA DCGM exporter: ``DCGM_FI_DEV_GPU_UTIL`` (%, x 10 = milli-GPU) and
  ``DCGM_FI_DEV_FB_USED`` (MiB), with ``namespace``/``pod`` (and ``container``) labels from
  its Kubernetes pod mapping;
* the workload's own QoS PromQL from ``spec.qos.query``, confined to the workload's namespace
  (:func:`cohabit.telemetry.promql.confine`) unless the namespace is opted out.

Every answer is checked (:mod:`cohabit.telemetry.prometheus_api`): a failed query (connection
refused, total deadline passed, HTTP error, bad PromQL), an answer of the wrong shape, or a
sample that is infinite, negative or implausibly large raises
:class:`~cohabit.telemetry.base.TelemetryUnavailable` naming the query, which the engine turns
into ``LowConfidence`` with that reason. ``NaN`` samples are gaps (Prometheus' 0/0, e.g.
``histogram_quantile`` over no requests) and are dropped.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Collection, Sequence

import pandas as pd

from cohabit.model import Workload
from cohabit.telemetry.base import TelemetryUnavailable, empty_qos, empty_usage
from cohabit.telemetry.prometheus_api import Series, parse_matrix, post_form
from cohabit.telemetry.promql import PromqlRefused, confine

__all__ = ["MAX_PLAUSIBLE", "PrometheusUsageSource", "check_samples", "usage_queries"]

log = logging.getLogger(__name__)

MAX_PLAUSIBLE = 1e12
"""Largest sample accepted (millicores, MiB, milli-GPU, ms or per second): 1e12 MiB is an
exbibyte, 1e12 ms three decades. Larger values are hostile or broken telemetry."""


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


def check_samples(series: list[Series], what: str) -> list[Series]:
    """``series`` with NaN samples dropped, after checking every other sample is a finite
    number in ``[0, MAX_PLAUSIBLE]``.

    Raises:
        TelemetryUnavailable: an infinite sample (e.g. ``+Inf`` from ``histogram_quantile``
            when the quantile falls in the ``+Inf`` bucket), a negative one, or one above
            :data:`MAX_PLAUSIBLE`; the message counts them and names ``what``.
    """
    bad: dict[str, int] = {}
    out = []
    for labels, samples in series:
        kept = []
        for t, v in samples:
            if math.isnan(v):
                continue
            if math.isinf(v):
                bad["infinite"] = bad.get("infinite", 0) + 1
            elif v < 0:
                bad["negative"] = bad.get("negative", 0) + 1
            elif v > MAX_PLAUSIBLE:
                bad[f"above {MAX_PLAUSIBLE:g}"] = bad.get(f"above {MAX_PLAUSIBLE:g}", 0) + 1
            kept.append((t, v))
        out.append((labels, kept))
    if bad:
        detail = ", ".join(f"{n} {k}" for k, n in bad.items())
        hint = (" (histogram_quantile gives +Inf when the quantile lies in the +Inf bucket: "
                "add buckets above the SLO)" if "infinite" in bad else "")
        raise TelemetryUnavailable(f"{what} returned unusable samples: {detail}{hint}")
    return out


class PrometheusUsageSource:
    """:class:`~cohabit.telemetry.base.UsageSource` over a Prometheus HTTP API.

    Args:
        url: Prometheus base URL.
        step_s: range-query resolution, seconds.
        timeout_s: total deadline of one query, seconds (the whole answer included).
        rate_window: ``rate()`` window for CPU counters.
        namespace_label: label the QoS query is confined on
            (:func:`~cohabit.telemetry.promql.confine`).
        unconfined: namespaces whose QoS queries run as written (admin opt-in).
    """

    def __init__(self, url: str, *, step_s: float = 60.0, timeout_s: float = 10.0,
                 rate_window: str = "5m", namespace_label: str = "namespace",
                 unconfined: Collection[str] = ()) -> None:
        if not url:
            raise TelemetryUnavailable("Prometheus: no URL configured (COHABIT_PROMETHEUS_URL)")
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise TelemetryUnavailable(f"Prometheus: timeout {timeout_s!r} s is not above 0")
        self.url = url.rstrip("/")
        self.step_s = step_s
        self.timeout_s = timeout_s
        self.rate_window = rate_window
        self.namespace_label = namespace_label
        self.unconfined = frozenset(unconfined)

    def close(self) -> None:
        """Nothing pooled to release (one connection per query); kept for the operator's
        clean-up handler."""

    def __enter__(self) -> PrometheusUsageSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _range(self, query: str, start: float, end: float) -> list[Series]:
        what = f"Prometheus {self.url}: query {query!r}"
        answer = post_form(self.url, "/api/v1/query_range", {
            "query": query, "start": f"{start:.3f}", "end": f"{end:.3f}",
            "step": f"{max(1, int(self.step_s))}s",
            "timeout": f"{max(1, int(self.timeout_s))}s"}, self.timeout_s)
        return check_samples(parse_matrix(answer, what), what)

    def qos_query(self, workload: Workload) -> str:
        """The PromQL actually sent for ``workload``'s QoS: ``spec.qos.query`` confined to its
        namespace, or as written when the namespace is opted out.

        Raises:
            TelemetryUnavailable: the query is empty, invalid or cannot be confined.
        """
        query = workload.qos_target.query
        if not query:
            raise TelemetryUnavailable(f"workload {workload.key}: spec.qos.query is empty")
        if workload.namespace in self.unconfined:
            return query
        try:
            return confine(query, workload.namespace, self.namespace_label)
        except PromqlRefused as exc:
            raise TelemetryUnavailable(f"workload {workload.key}: spec.qos.query: {exc}") from exc

    def usage(self, namespace: str, pods: Sequence[str], start: float, end: float
              ) -> pd.DataFrame:
        """Usage rows (:data:`~cohabit.telemetry.base.USAGE_COLUMNS`) for ``pods``."""
        if not pods:
            return empty_usage()
        frames = []
        for resource, query in usage_queries(namespace, pods, self.rate_window).items():
            for labels, samples in self._range(query, start, end):
                if not samples:
                    continue
                frame = pd.DataFrame(samples, columns=["time", "value"], dtype="float64")
                frame["namespace"] = labels.get("namespace", namespace)
                frame["pod"] = labels.get("pod", "")
                frame["container"] = labels.get("container", "")
                frame["resource"] = resource
                frames.append(frame)
        if not frames:
            return empty_usage()
        out = pd.concat(frames, ignore_index=True)
        return out[["time", "namespace", "pod", "container", "resource", "value"]]

    def qos(self, workload: Workload, start: float, end: float) -> pd.DataFrame:
        """The workload's (confined) QoS query over ``[start, end]``; several series are
        averaged."""
        series = self._range(self.qos_query(workload), start, end)
        frames = [pd.DataFrame(samples, columns=["time", "value"], dtype="float64")
                  for _, samples in series if samples]
        if not frames:
            return empty_qos()
        out = pd.concat(frames, ignore_index=True)
        out = out.groupby("time", as_index=False)["value"].mean()
        return out.sort_values("time").reset_index(drop=True)

    def healthy(self) -> bool:
        """True when Prometheus answers a trivial query within the deadline."""
        try:
            answer = post_form(self.url, "/api/v1/query", {"query": "1"}, self.timeout_s)
        except TelemetryUnavailable:
            return False
        return isinstance(answer, dict) and answer.get("status") == "success"
