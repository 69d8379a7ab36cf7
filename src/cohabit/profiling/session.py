"""One database under test: a PostgreSQL server in its own cgroup, loaded once with a pgbench
data set, measured at whatever limits its cgroup holds.

The session never decides anything and never changes limits: the caller's actuator sets the
cgroup's CPU quota and memory limit (:mod:`cohabit.actuator.cgroup`), the session measures
and returns one plain row per run (:data:`POINT_COLUMNS`).
"""

from __future__ import annotations

import math
import os
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from cohabit.cgroup import Cgroup, CgroupError, CgroupTree, detect
from cohabit.profiling.errors import PrerequisiteError, ProfilingError
from cohabit.profiling.pgbench import (
    LoadSpec,
    PgbenchProcess,
    PgbenchRun,
    check_script,
    init_data,
    start_pgbench,
)
from cohabit.profiling.postgres import PostgresBinaries, PostgresServer, shared_buffers_mib

__all__ = ["POINT_COLUMNS", "DatabaseSession"]

POINT_COLUMNS = (
    "time", "workload", "cpu_milli", "memory_mib", "cfs_period_us", "shared_buffers_mib",
    "repeat", "seconds", "rate_tps", "clients", "scale", "p99_ms", "p50_ms", "mean_ms",
    "lag_p99_ms", "tps", "completed", "skipped", "failed", "unstarted", "late",
    "nr_periods", "nr_throttled", "throttled_s", "cpu_used_milli", "memory_peak_mib",
    "memory_usage_mib", "memory_cache_mib", "oom_kills", "blks_hit", "blks_read",
    "hit_ratio", "load1", "pgbench_exit", "error",
)
"""Columns of one measured run: allocation (``cpu_milli`` = CFS quota per ``cfs_period_us``,
``memory_mib`` = cgroup limit, ``-1`` = unlimited), load (``rate_tps``, ``clients``,
``scale``), client-side latency in ms from the scheduled start (``p99_ms`` may be ``inf``),
achieved ``tps`` and transaction counts, CFS throttling over the run (``nr_periods``,
``nr_throttled``, ``throttled_s``), mean CPU used (``cpu_used_milli``), memory (MiB), OOM
kills, buffer hits/reads and their ratio (``pg_stat_database``), the host's 1-minute load
average (``load1``) and pgbench's exit status/error."""


class DatabaseSession:
    """A PostgreSQL server for one workload, in a cgroup of its own.

    Use as a context manager; on exit the server is stopped, the cgroup emptied and removed
    and the temporary directory deleted, whatever happened.

    Args:
        load: what pgbench runs (builtin or script, scale, clients, offered rate).
        name: base name of the cgroup.
        binaries: PostgreSQL binaries (default: :meth:`PostgresBinaries.find`).
        tree: cgroup tree (default: :func:`cohabit.cgroup.detect`).
        user_config: a ``postgresql.conf``-style file of the user's settings, included after
            cohabit's, so it overrides them (``shared_buffers`` included).
        cpuset: CPUs the server may use (e.g. ``"0"``), or None for all.
        port: socket port number (several sessions may use the same one: each has its own
            socket directory).

    Raises (from ``__enter__``):
        PrerequisiteError: PostgreSQL binaries, the ``postgres`` user or a writable cgroup
            missing (the message says what to install or enable).
    """

    def __init__(self, load: LoadSpec, *, name: str = "db", binaries: PostgresBinaries | None
                 = None, tree: CgroupTree | None = None, user_config: Path | None = None,
                 cpuset: str | None = None, port: int = 5432) -> None:
        self.load = load
        self.name = name
        self.binaries = binaries
        self.tree = tree
        self.user_config = user_config
        self.cpuset = cpuset
        self.port = port
        self.cgroup: Cgroup | None = None
        self.client_group: Cgroup | None = None
        self.server: PostgresServer | None = None
        self.data_mib: float = math.nan
        self.load_seconds: float = math.nan
        self.memory_mib: int | None = None
        self.shared_buffers_mib: int = -1
        self._stack = ExitStack()

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> DatabaseSession:
        try:
            self.binaries = self.binaries or PostgresBinaries.find()
            if self.user_config is not None and not os.access(self.user_config, os.R_OK):
                raise ProfilingError(f"cannot read --config {self.user_config}")
            tree = self.tree or detect()
            self.cgroup = self._stack.enter_context(
                tree.create(self.name, cpuset=self.cpuset))
            # pgbench runs outside the server's group, in one of its own (no quota, the
            # default weight), so the client is neither limited nor starved.
            self.client_group = self._stack.enter_context(tree.create(f"{self.name}-client"))
            self.client_group.set_cpu(None)
            self.server = self._stack.enter_context(
                PostgresServer(self.binaries, self.cgroup, port=self.port))
            self.server.initdb()
        except CgroupError as exc:
            self._stack.close()
            raise PrerequisiteError(str(exc)) from exc
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def close(self) -> None:
        """Stop and delete everything (same as leaving the context)."""
        self._stack.close()

    @property
    def _srv(self) -> PostgresServer:
        if self.server is None:
            raise ProfilingError("the session is not open")
        return self.server

    @property
    def _bins(self) -> PostgresBinaries:
        if self.binaries is None:
            raise ProfilingError("the session is not open")
        return self.binaries

    @property
    def server_cgroup(self) -> Cgroup:
        """The server's cgroup (:attr:`cgroup`) of an open session.

        Raises:
            ProfilingError: the session is not open.
        """
        if self.cgroup is None:
            raise ProfilingError("the session is not open")
        return self.cgroup

    def prepare(self, timeout_s: float = 3600.0) -> float:
        """Load the data set (``pgbench -i`` at the load's scale, with the cgroup's limits as
        the caller left them: normally none), check the workload's script runs, install
        ``pg_prewarm``, and stop the server.

        Returns:
            Seconds the data load took; :attr:`data_mib` holds the database size.

        Raises:
            ProfilingError: loading failed or the script fails in PostgreSQL.
        """
        srv = self._srv
        srv.start({"shared_buffers": "128MB", "max_wal_size": "4GB"}, self.user_config)
        try:
            self.load_seconds = init_data(self._bins, srv, self.load.scale, timeout_s)
            check_script(self._bins, srv, self.load)
            srv.query("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
            size = srv.query("SELECT pg_database_size(current_database())")[0][0]
            self.data_mib = int(size) / (1 << 20)
        finally:
            srv.stop()
        return self.load_seconds

    def start(self, memory_mib: int | None, *, prewarm: bool = True) -> None:
        """Start the server sized for a memory limit of ``memory_mib`` (``shared_buffers`` =
        25 % of it unless the user's config says otherwise; None = PostgreSQL's default)
        and read the data into the cache up to that size.

        Raises:
            ProfilingError: the server did not start (its log's tail in the message).
        """
        settings = {"max_wal_size": "4GB"}
        if memory_mib is not None:
            settings["shared_buffers"] = f"{shared_buffers_mib(memory_mib)}MB"
        self._srv.start(settings, self.user_config)
        self.memory_mib = memory_mib
        rows = self._srv.query("SELECT setting::bigint * 8192 / 1048576 FROM pg_settings "
                               "WHERE name = 'shared_buffers'")
        self.shared_buffers_mib = int(rows[0][0])
        if prewarm:
            self._prewarm(memory_mib)

    def _prewarm(self, memory_mib: int | None) -> None:
        """Read relations (smallest first) into the OS cache up to 3/4 of the memory limit:
        after a restart the measurement should see the steady state, not a cold cache."""
        budget = (0.75 * memory_mib * (1 << 20)) if memory_mib else float("inf")
        rows = self._srv.query(
            "SELECT c.oid::regclass::text, pg_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'i') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
            "ORDER BY 2")
        used = 0.0
        for rel, size in rows:
            if used + float(size) > budget:
                break
            self._srv.query("SELECT pg_prewarm(%s::regclass, 'read')", (rel,), timeout_s=600)
            used += float(size)

    def stop(self) -> None:
        """Stop the server (the data stays)."""
        self._srv.stop()

    def ensure_running(self) -> bool:
        """Restart the server if it died (e.g. the OOM killer took the postmaster); True when
        a restart was needed."""
        if self._srv.running():
            return False
        self._srv.stop()
        self.start(self.memory_mib, prewarm=False)
        return True

    # ------------------------------------------------------------------ measuring

    def warm_up(self, seconds: float, latency_limit_ms: float | None = None) -> None:
        """Run the load for ``seconds`` and discard the result."""
        if seconds >= 1:
            self.start_load(seconds, latency_limit_ms=latency_limit_ms).wait()

    def start_load(self, seconds: float, *, rate_tps: float | None = None,
                   latency_limit_ms: float | None = None) -> PgbenchProcess:
        """Start the workload's pgbench (outside the server's cgroup) without waiting."""
        return start_pgbench(self._bins, self._srv, self.load, seconds,
                             rate_tps=rate_tps, latency_limit_ms=latency_limit_ms,
                             wrap=self.client_group.wrap if self.client_group else None)

    def run_logged(self, seconds: float, *, rate_tps: float | None = None,
                   latency_limit_ms: float | None = None) -> tuple[PgbenchRun, np.ndarray]:
        """One run of the load; its summary and every completed transaction's latency (ms,
        from the scheduled start)."""
        proc = self.start_load(seconds, rate_tps=rate_tps, latency_limit_ms=latency_limit_ms)
        run = proc.wait()
        return run, proc.latencies_ms

    def counters(self) -> dict[str, float]:
        """The cgroup's and the database's cumulative counters and the wall clock, to
        difference around a run (:meth:`row`)."""
        assert self.cgroup is not None
        s = self.cgroup.stats()
        out: dict[str, float] = {
            "wall": time.monotonic(), "cpu_usage_s": s.cpu_usage_s,
            "nr_periods": s.nr_periods, "nr_throttled": s.nr_throttled,
            "throttled_s": s.throttled_s, "oom_kills": s.oom_kills,
        }
        try:
            out.update(self._srv.db_stats())
        except ProfilingError:  # the server died during the run
            out.update({"blks_hit": math.nan, "blks_read": math.nan})
        return out

    def measure(self, seconds: float, *, latency_limit_ms: float | None = None,
                rate_tps: float | None = None, repeat: int = 0) -> dict[str, object]:
        """One run of the load at the cgroup's current limits: a :data:`POINT_COLUMNS` row.

        A server that died during the run (OOM) is restarted afterwards; the row then shows
        the failed transactions and ``oom_kills``.
        """
        assert self.cgroup is not None
        self.cgroup.reset_peak()
        before = self.counters()
        run = self.start_load(seconds, rate_tps=rate_tps,
                              latency_limit_ms=latency_limit_ms).wait()
        after = self.counters()
        row = self.row(before, after, run, repeat=repeat)
        self.ensure_running()
        return row

    def row(self, before: dict[str, float], after: dict[str, float], run: PgbenchRun, *,
            repeat: int = 0) -> dict[str, object]:
        """A :data:`POINT_COLUMNS` row from counters around ``run``."""
        assert self.cgroup is not None
        cpu, period, mem = self.cgroup.limits()
        stats = self.cgroup.stats()
        wall = max(after["wall"] - before["wall"], 1e-9)
        hit = after["blks_hit"] - before["blks_hit"]
        read = after["blks_read"] - before["blks_read"]
        sb = self.shared_buffers_mib
        return {
            "time": time.time() - wall, "workload": self.load.name,
            "cpu_milli": -1 if cpu is None else cpu, "memory_mib": -1 if mem is None else mem,
            "cfs_period_us": period, "shared_buffers_mib": sb, "repeat": repeat,
            "seconds": run.seconds, "rate_tps": run.rate_tps, "clients": self.load.clients,
            "scale": self.load.scale, "p99_ms": run.p99_ms, "p50_ms": run.p50_ms,
            "mean_ms": run.mean_ms, "lag_p99_ms": run.lag_p99_ms, "tps": run.tps,
            "completed": run.completed, "skipped": run.skipped, "failed": run.failed,
            "unstarted": run.unstarted, "late": run.late,
            "nr_periods": int(after["nr_periods"] - before["nr_periods"]),
            "nr_throttled": int(after["nr_throttled"] - before["nr_throttled"]),
            "throttled_s": after["throttled_s"] - before["throttled_s"],
            "cpu_used_milli": 1000.0 * (after["cpu_usage_s"] - before["cpu_usage_s"]) / wall,
            "memory_peak_mib": stats.memory_peak_mib, "memory_usage_mib":
                stats.memory_usage_mib, "memory_cache_mib": stats.memory_cache_mib,
            "oom_kills": int(after["oom_kills"] - before["oom_kills"]),
            "blks_hit": hit, "blks_read": read,
            "hit_ratio": hit / (hit + read) if hit + read > 0 else math.nan,
            "load1": os.getloadavg()[0], "pgbench_exit": run.exit_code, "error": run.error,
        }
