"""A database's signals from Prometheus, per window: p99, offered and served load, CPU usage
and CFS throttling, memory working set, buffer hits, and the limits in force.

The online capacity planner (:mod:`cohabit.engine.dbonline`) needs to tell "slow because
starved" (throttled, cache misses) from "slow because busy" (offered load up) and from "slow
for reasons no resize fixes"; these are the series it reads. Each is one PromQL expression
(:class:`DatabaseQueries`); the defaults use the metric names clusters already have:

* cAdvisor: ``container_cpu_usage_seconds_total``, ``container_cpu_cfs_throttled_periods_total``
  / ``container_cpu_cfs_periods_total``, ``container_memory_working_set_bytes``,
  ``container_spec_cpu_quota`` / ``container_spec_cpu_period``,
  ``container_spec_memory_limit_bytes``;
* prometheus-postgres-exporter: ``pg_stat_database_blks_hit`` / ``pg_stat_database_blks_read``;
* the workload's own p99 (``spec.qos.query``) and offered load (``spec.qos.offeredLoadQuery``).

Every answer goes through the same checks as the usage source's
(:mod:`cohabit.telemetry.prometheus_api`: a total deadline per query, the answer's shape,
:func:`cohabit.telemetry.prometheus.check_samples`: infinite, negative or implausible
samples): a query that fails raises :class:`~cohabit.telemetry.base.TelemetryUnavailable`; a
query with no data gives a NaN column (the planner then has low confidence and does not act).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Protocol

import pandas as pd

from cohabit.telemetry.base import TelemetryUnavailable
from cohabit.telemetry.prometheus import check_samples
from cohabit.telemetry.prometheus_api import parse_matrix, post_form
from cohabit.telemetry.promql import PromqlRefused, confine

__all__ = ["DB_SIGNAL_COLUMNS", "DatabaseQueries", "DatabaseSignalSource",
           "PrometheusDatabaseSignals", "workload_queries"]

DB_SIGNAL_COLUMNS = ("time", "p99_ms", "offered_tps", "tps", "cpu_milli", "throttled_ratio",
                     "memory_mib", "hit_ratio", "cpu_limit_milli", "memory_limit_mib")
"""Columns of a signal frame: epoch seconds, then per window: p99 latency (ms), offered and
served load (TPS), CPU used (millicores), share of CFS periods throttled (0..1), memory
working set (MiB), buffer hit ratio (0..1), CPU quota (millicores) and memory limit (MiB)."""


@dataclass(frozen=True)
class DatabaseQueries:
    """One PromQL expression per signal (empty = not available). :meth:`cadvisor` builds the
    standard ones for a pod."""

    p99_ms: str = ""
    offered_tps: str = ""
    tps: str = ""
    cpu_milli: str = ""
    throttled_ratio: str = ""
    memory_mib: str = ""
    hit_ratio: str = ""
    cpu_limit_milli: str = ""
    memory_limit_mib: str = ""

    @classmethod
    def cadvisor(cls, selector: str, *, p99_ms: str, offered_tps: str, tps: str = "",
                 datname: str = "postgres", window: str = "1m") -> DatabaseQueries:
        """The cAdvisor/postgres_exporter queries for the container(s) ``selector`` picks
        (e.g. ``'namespace="db",pod="pg-0",container="postgres"'``), plus the workload's own
        p99 and offered-load PromQL."""
        s = "{" + selector + "}"
        db = '{datname="' + datname + '"}'
        return cls(
            p99_ms=p99_ms, offered_tps=offered_tps, tps=tps,
            cpu_milli=f"sum(rate(container_cpu_usage_seconds_total{s}[{window}])) * 1000",
            throttled_ratio=(f"sum(rate(container_cpu_cfs_throttled_periods_total{s}[{window}]))"
                             f" / sum(rate(container_cpu_cfs_periods_total{s}[{window}]))"),
            memory_mib=f"sum(container_memory_working_set_bytes{s}) / 1048576",
            hit_ratio=(f"sum(rate(pg_stat_database_blks_hit{db}[{window}])) / "
                       f"(sum(rate(pg_stat_database_blks_hit{db}[{window}])) + "
                       f"sum(rate(pg_stat_database_blks_read{db}[{window}])))"),
            cpu_limit_milli=(f"sum(container_spec_cpu_quota{s}) / "
                             f"sum(container_spec_cpu_period{s}) * 1000"),
            memory_limit_mib=f"sum(container_spec_memory_limit_bytes{s}) / 1048576",
        )


def workload_queries(namespace: str, pods: Sequence[str], container: str, *, p99_query: str,
                     offered_query: str, window: str = "2m",
                     namespace_label: str = "namespace", confined: bool = True
                     ) -> DatabaseQueries:
    """The signals of a ``DatabaseWorkload``'s container on a cluster: cAdvisor's series of
    its pods (selected by name) and the workload's own p99 (``spec.qos.query``) and offered-
    load (``spec.qos.offeredLoadQuery``) PromQL, confined to its namespace like every QoS
    query (:func:`cohabit.telemetry.promql.confine`) unless ``confined`` is False.

    Raises:
        TelemetryUnavailable: no pods, or a user query that cannot be confined.
    """
    if not pods:
        raise TelemetryUnavailable(f"{namespace}: the workload has no pods to read")
    # Pod names are DNS names: only "." needs escaping in the regex (RE2), and its backslash
    # once more inside the PromQL string.
    regex = "|".join(re.escape(p).replace("\\-", "-").replace("\\", "\\\\")
                     for p in pods)
    selector = f'{namespace_label}="{namespace}",pod=~"{regex}",container="{container}"'
    user = {"p99_ms": p99_query, "offered_tps": offered_query}
    base = DatabaseQueries.cadvisor(selector, p99_ms=p99_query, offered_tps=offered_query,
                                    window=window)
    if not confined:
        return base
    # postgres_exporter's buffer counters too: the exporter beside the database, in its
    # namespace.
    user["hit_ratio"] = base.hit_ratio
    try:
        user = {k: confine(q, namespace, namespace_label) for k, q in user.items()}
    except PromqlRefused as exc:
        raise TelemetryUnavailable(f"{namespace}: spec.qos: {exc}") from exc
    return replace(base, **user)


class DatabaseSignalSource(Protocol):
    """Where a database's signals come from (:class:`PrometheusDatabaseSignals`; tests and
    other deployments inject their own)."""

    def window(self, queries: DatabaseQueries, start: float, end: float,
               step_s: float = 15.0) -> pd.DataFrame:
        """Every signal at ``step_s`` seconds over ``[start, end]`` (epoch seconds), columns
        :data:`DB_SIGNAL_COLUMNS`.

        Raises:
            TelemetryUnavailable: the source could not answer.
        """
        ...


class PrometheusDatabaseSignals:
    """Reads :class:`DatabaseQueries` over a time range from a Prometheus HTTP API.

    Args:
        url: Prometheus base URL.
        timeout_s: total deadline of one query (no retries: a down Prometheus answers
            "unavailable" within one deadline).
    """

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        if not url:
            raise TelemetryUnavailable("Prometheus: no URL configured")
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise TelemetryUnavailable(f"Prometheus: timeout {timeout_s!r} s is not above 0")
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def close(self) -> None:
        """Nothing pooled to release (one connection per query)."""

    def __enter__(self) -> PrometheusDatabaseSignals:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def window(self, queries: DatabaseQueries, start: float, end: float,
               step_s: float = 15.0) -> pd.DataFrame:
        """Every signal at ``step_s`` over ``[start, end]`` (:data:`DB_SIGNAL_COLUMNS`; several
        series of one query are averaged; a query without data is a NaN column).

        Raises:
            TelemetryUnavailable: a query failed (names it).
        """
        out: pd.DataFrame | None = None
        for f in fields(queries):
            query = getattr(queries, f.name)
            col = self._series(query, start, end, step_s) if query else None
            frame = (col.rename(f.name).to_frame() if col is not None
                     else pd.DataFrame(columns=[f.name], dtype=float))
            out = frame if out is None else out.join(frame, how="outer")
        assert out is not None
        out.index.name = "time"
        out = out.reset_index().sort_values("time").reset_index(drop=True)
        return out[list(DB_SIGNAL_COLUMNS)].astype(float)

    def _series(self, query: str, start: float, end: float, step_s: float) -> pd.Series | None:
        what = f"Prometheus {self.url}: query {query!r}"
        answer = post_form(self.url, "/api/v1/query_range", {
            "query": query, "start": f"{start:.3f}", "end": f"{end:.3f}",
            "step": f"{max(1, int(step_s))}s",
            "timeout": f"{max(1, int(self.timeout_s))}s"}, self.timeout_s)
        series = check_samples(parse_matrix(answer, what), what)
        frames = [pd.DataFrame(samples, columns=["time", "value"]) for _, samples in series]
        frames = [f for f in frames if not f.empty]
        if not frames:
            return None
        frame = pd.concat(frames, ignore_index=True)
        return frame.groupby("time")["value"].mean()
