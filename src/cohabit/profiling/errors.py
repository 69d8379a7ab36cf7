"""Errors of the profiling adapter: each message says what failed and what to do."""

from __future__ import annotations

__all__ = ["PrerequisiteError", "ProfilingError"]


class ProfilingError(RuntimeError):
    """A measurement could not be made: bad script, server failure, timeout. The message
    names the file, the command or the server log's tail."""


class PrerequisiteError(ProfilingError):
    """Something the host must provide is missing (PostgreSQL binaries, the ``postgres``
    user, a writable cgroup); the message says what to install or enable."""
