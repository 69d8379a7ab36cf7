"""Prometheus metrics of a database under test, for a real Prometheus to scrape: its cgroup
under cAdvisor's names, the load generator's latency and load, and a
prometheus-postgres-exporter for the server itself.

* :class:`CgroupCollector`: ``container_cpu_usage_seconds_total``,
  ``container_cpu_cfs_periods_total``, ``container_cpu_cfs_throttled_periods_total``,
  ``container_memory_working_set_bytes``, ``container_spec_cpu_quota``,
  ``container_spec_cpu_period``, ``container_spec_memory_limit_bytes`` -- read from the
  cgroup at scrape time, labelled ``namespace``/``pod``/``container`` as the kubelet's
  cAdvisor endpoint labels them, so the operator's queries work unchanged.
* :class:`LoadMetrics`: ``pgbench_latency_seconds`` (histogram of every transaction's latency
  from its scheduled start; skipped or never-started ones in the ``+Inf`` bucket),
  ``pgbench_transactions_total`` and ``pgbench_offered_tps``.
* :class:`PostgresExporter`: Debian's ``prometheus-postgres-exporter`` on a loopback port,
  connected to the server's Unix socket (``pg_stat_database_blks_hit``/``_read``, ...).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from cohabit.cgroup import Cgroup, CgroupError
from cohabit.profiling.errors import PrerequisiteError, ProfilingError
from cohabit.profiling.postgres import PostgresServer

__all__ = ["LATENCY_BUCKETS_S", "CgroupCollector", "LoadMetrics", "PostgresExporter"]

LATENCY_BUCKETS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2,
                     0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0)
"""Histogram buckets of transaction latency (seconds)."""


class CgroupCollector(Collector):
    """cAdvisor-named metrics of one cgroup, read when scraped (see the module docstring).

    Args:
        group: the container's cgroup.
        namespace, pod, container: the labels.
    """

    def __init__(self, group: Cgroup, *, namespace: str, pod: str, container: str) -> None:
        self.group = group
        self.labels = {"namespace": namespace, "pod": pod, "container": container}

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        names = list(self.labels)
        values = list(self.labels.values())
        try:
            stats = self.group.stats()
            cpu, period, mem = self.group.limits()
        except CgroupError:
            return  # the group is gone: no samples rather than wrong ones
        for name, kind, value in (
            ("container_cpu_usage_seconds_total", CounterMetricFamily, stats.cpu_usage_s),
            ("container_cpu_cfs_periods_total", CounterMetricFamily, stats.nr_periods),
            ("container_cpu_cfs_throttled_periods_total", CounterMetricFamily,
             stats.nr_throttled),
            ("container_memory_working_set_bytes", GaugeMetricFamily,
             stats.memory_working_set_mib * (1 << 20)),
            ("container_spec_cpu_period", GaugeMetricFamily, period),
        ):
            family = kind(name, name.replace("_", " "), labels=names)
            family.add_metric(values, float(value))
            yield family
        if cpu is not None:
            family = GaugeMetricFamily("container_spec_cpu_quota", "CFS quota (us)",
                                       labels=names)
            family.add_metric(values, cpu * period / 1000.0)
            yield family
        if mem is not None:
            family = GaugeMetricFamily("container_spec_memory_limit_bytes", "memory limit",
                                       labels=names)
            family.add_metric(values, float(mem) * (1 << 20))
            yield family


class LoadMetrics:
    """The load generator's metrics in ``registry`` (labels: ``workload``)."""

    def __init__(self, registry: CollectorRegistry, workload: str) -> None:
        self.latency = Histogram("pgbench_latency_seconds",
                                 "transaction latency from its scheduled start",
                                 ["workload"], buckets=LATENCY_BUCKETS_S,
                                 registry=registry).labels(workload)
        self.transactions = Counter("pgbench_transactions", "completed transactions",
                                    ["workload"], registry=registry).labels(workload)
        self.offered = Gauge("pgbench_offered_tps", "offered load (TPS)", ["workload"],
                             registry=registry).labels(workload)

    def observe(self, latency_ms: np.ndarray, late: int) -> None:
        """Record completed transactions' latencies (ms) and ``late`` infinitely late ones
        (skipped or never started)."""
        for v in np.asarray(latency_ms, dtype=float) / 1000.0:
            self.latency.observe(float(v))
        for _ in range(int(late)):
            self.latency.observe(float("inf"))
        self.transactions.inc(len(latency_ms))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresExporter:
    """``prometheus-postgres-exporter`` for ``server`` on ``127.0.0.1:<free port>``; a
    context manager (stopped on exit).

    Raises (from ``__enter__``):
        PrerequisiteError: the exporter is not installed. ProfilingError: it did not serve
            ``/metrics`` within ``timeout_s``.
    """

    BINARY = "prometheus-postgres-exporter"

    def __init__(self, server: PostgresServer, *, timeout_s: float = 30.0) -> None:
        self.server = server
        self.timeout_s = timeout_s
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None

    @property
    def target(self) -> str:
        """``127.0.0.1:PORT`` for a scrape config."""
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> PostgresExporter:
        binary = shutil.which(self.BINARY)
        if binary is None:
            raise PrerequisiteError(f"{self.BINARY} not found: install it (apt-get install "
                                    "prometheus-postgres-exporter)")
        self.port = _free_port()
        info = self.server.conninfo()
        dsn = (f"host={info['host']} port={info['port']} user={info['user']} "
               f"dbname={info['dbname']} sslmode=disable")
        env = {"PATH": os.environ.get("PATH", ""), "DATA_SOURCE_NAME": dsn}
        fd, log = tempfile.mkstemp(prefix="cohabit-pgexporter-", suffix=".log")
        self._log = Path(log)
        with os.fdopen(fd, "wb") as out:
            self._proc = subprocess.Popen(
                [binary, f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = self._log.read_text(errors="replace")[-400:]
                self.__exit__()
                raise ProfilingError(f"{self.BINARY} exited: {tail}")
            with contextlib.suppress(OSError):
                url = f"http://{self.target}/metrics"
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if b"pg_up 1" in resp.read():
                        return self
            time.sleep(0.3)
        self.__exit__()
        raise ProfilingError(f"{self.BINARY} did not report pg_up 1 within {self.timeout_s} s")

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        self._proc = None
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.unlink()
            self._log = None
