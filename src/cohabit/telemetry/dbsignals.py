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

A query that fails raises :class:`~cohabit.telemetry.base.TelemetryUnavailable`; a query
with no data gives a NaN column (the planner then has low confidence and does not act).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timezone

import pandas as pd
import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from cohabit.telemetry.base import TelemetryUnavailable

__all__ = ["DB_SIGNAL_COLUMNS", "DatabaseQueries", "PrometheusDatabaseSignals"]

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


class PrometheusDatabaseSignals:
    """Reads :class:`DatabaseQueries` over a time range from a Prometheus HTTP API.

    Args:
        url: Prometheus base URL.
        timeout_s: per-request timeout (no retries: a down Prometheus answers "unavailable"
            within one timeout).
    """

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        if not url:
            raise TelemetryUnavailable("Prometheus: no URL configured")
        self.url = url
        self._session = requests.Session()
        self._prom = PrometheusConnect(url=url, disable_ssl=True, timeout=int(max(1, timeout_s)),
                                       retry=Retry(total=0, raise_on_status=False),
                                       session=self._session)

    def close(self) -> None:
        """Close pooled HTTP connections."""
        self._session.close()

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
        try:
            result = self._prom.custom_query_range(
                query, start_time=datetime.fromtimestamp(start, timezone.utc),
                end_time=datetime.fromtimestamp(end, timezone.utc),
                step=f"{max(1, int(step_s))}s")
        except (PrometheusApiClientException, requests.RequestException, ValueError) as exc:
            raise TelemetryUnavailable(f"Prometheus {self.url}: query {query!r} failed: "
                                       f"{type(exc).__name__}: {exc}") from exc
        frames = [pd.DataFrame(r.get("values", []), columns=["time", "value"]) for r in result]
        frames = [f for f in frames if not f.empty]
        if not frames:
            return None
        frame = pd.concat(frames, ignore_index=True)
        frame["time"] = frame["time"].astype(float)
        frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
        return frame.groupby("time")["value"].mean()
