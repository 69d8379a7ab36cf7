"""Profiling: measure a real database under real cgroup limits (an edge, like telemetry).

It starts PostgreSQL (the server binaries of Debian's ``postgresql-15``) in a temporary
directory, on a Unix socket only, inside a cgroup of its own, loads a pgbench data set once,
and measures a rate-limited pgbench load (the client outside the server's cgroup), returning
plain rows (:data:`POINT_COLUMNS`). It never decides and never changes limits: the planner
chooses the next allocation, an actuator applies it, :mod:`cohabit.engine` wires them.

* :mod:`cohabit.profiling.postgres`: the throwaway server.
* :mod:`cohabit.profiling.pgbench`: data load, script check, runs and their logs.
* :mod:`cohabit.profiling.session`: one database under test (:class:`DatabaseSession`).
* :mod:`cohabit.profiling.sampler`: cAdvisor-like usage samples of a cgroup.
* :mod:`cohabit.profiling.stress`: stress-ng stressors in a sibling cgroup.
"""

from cohabit.profiling.errors import PrerequisiteError, ProfilingError
from cohabit.profiling.pgbench import (
    BUILTINS,
    LoadSpec,
    PgbenchProcess,
    PgbenchRun,
    parse_logs,
    summarize,
)
from cohabit.profiling.postgres import PostgresBinaries, PostgresServer, shared_buffers_mib
from cohabit.profiling.sampler import SAMPLE_COLUMNS, UsageSampler
from cohabit.profiling.session import POINT_COLUMNS, DatabaseSession

__all__ = [
    "BUILTINS",
    "POINT_COLUMNS",
    "SAMPLE_COLUMNS",
    "DatabaseSession",
    "LoadSpec",
    "PgbenchProcess",
    "PgbenchRun",
    "PostgresBinaries",
    "PostgresServer",
    "PrerequisiteError",
    "ProfilingError",
    "UsageSampler",
    "parse_logs",
    "shared_buffers_mib",
    "summarize",
]
