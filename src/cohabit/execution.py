"""Where fan-out work runs: on this host, or on a Dask cluster through ``dask.distributed``.

cohabit's sweeps (the simulator's policy x pod list x seed matrix, the per-workload back-tests
of ``cohabit recommend`` and ``cohabit evaluate rightsizing``) are independent tasks. By
default they run on this host (the simulator: a process pool, one process per core; the
predictors: in this process). With ``--executor dask --scheduler tcp://HOST:8786`` they are
submitted to a running Dask scheduler instead, which places them on its workers, moves the
shared inputs to them and re-runs a task whose worker died (the scheduler's
``distributed.scheduler.allowed-failures``, 3 by default). cohabit runs no scheduler, queue or
RPC of its own.

This module only opens and checks the connection: :class:`Execution` is the parsed choice,
:func:`dask_client` connects (with a timeout, and waits for a first worker, so a cluster
without workers is an error instead of a hang), and :func:`executor` hands the predictors a
standard :class:`concurrent.futures.Executor` (Dask's ``Client.get_executor()``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "EXECUTORS",
    "TIMEOUT_CONFIG",
    "Execution",
    "ExecutionError",
    "dask_client",
    "dask_workers",
    "executor",
]

EXECUTORS = ("local", "dask")
"""``local``: this host (the default); ``dask``: a Dask cluster named by ``--scheduler``."""

TIMEOUT_CONFIG = "distributed.comm.timeouts.connect"
"""The Dask setting whose value (``30s`` by default; environment variable
``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT``) is cohabit's default wait for the scheduler to
answer and for a first worker to join it."""


class ExecutionError(RuntimeError):
    """The Dask cluster cannot be used (unreachable, no workers, lost every worker); the
    message names the scheduler address."""


@dataclass(frozen=True)
class Execution:
    """Where to run a sweep: the parsed ``--executor`` / ``--scheduler`` options.

    Attributes:
        kind: ``"local"`` or ``"dask"`` (:data:`EXECUTORS`).
        scheduler: the Dask scheduler's address, e.g. ``tcp://10.0.0.5:8786``; required for
            ``dask``, refused for ``local``.
        timeout_s: seconds to wait for the scheduler and for a first worker (> 0); also how
            long a running sweep waits for a worker when the cluster has none left. ``None``:
            Dask's connect timeout (:data:`TIMEOUT_CONFIG`).

    Raises:
        ValueError: an unknown ``kind``, a missing or superfluous ``scheduler``, a
            non-positive ``timeout_s``; the message names the option.
    """

    kind: str = "local"
    scheduler: str | None = None
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise ValueError(
                f"--executor: {self.kind!r} is not one of {', '.join(EXECUTORS)}")
        if self.kind == "dask" and not self.scheduler:
            raise ValueError(
                "--executor dask needs --scheduler ADDRESS (e.g. tcp://127.0.0.1:8786)")
        if self.kind == "local" and self.scheduler:
            raise ValueError("--scheduler is only used with --executor dask")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ValueError(f"timeout must be > 0 s, not {self.timeout_s}")

    @property
    def timeout(self) -> float:
        """:attr:`timeout_s`, or Dask's connect timeout (seconds) when it is ``None``."""
        if self.timeout_s is not None:
            return float(self.timeout_s)
        import dask.config
        from dask.utils import parse_timedelta

        return float(parse_timedelta(dask.config.get(TIMEOUT_CONFIG), default="s"))

    @property
    def distributed(self) -> bool:
        """True for a Dask cluster."""
        return self.kind == "dask"

    @property
    def label(self) -> str:
        """``local`` or ``dask tcp://HOST:PORT``, for log lines and summaries."""
        return f"dask {self.scheduler}" if self.distributed else "local"


@contextlib.contextmanager
def dask_client(execution: Execution) -> Iterator[Any]:
    """A ``distributed.Client`` connected to ``execution.scheduler``, closed on exit (the
    cluster itself is left running).

    Yields:
        the connected client; at least one worker has joined.

    Raises:
        ExecutionError: the scheduler does not answer within :attr:`Execution.timeout`, or
            no worker joins it within that time.
    """
    from distributed import Client

    address, timeout = execution.scheduler, execution.timeout
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ExecutionError(
            f"--scheduler {address}: no Dask scheduler answered within {timeout:g} s "
            f"({type(exc).__name__}: {exc})") from None
    try:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except TimeoutError:
            raise ExecutionError(
                f"--scheduler {address}: no Dask worker joined within {timeout:g} s "
                f"(start some with `dask worker {address}`)") from None
        yield client
    finally:
        client.close()


def dask_workers(client: Any) -> int:
    """Worker threads the Dask cluster behind ``client`` has now (its task slots)."""
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    return sum(int(w.get("nthreads", 1)) for w in workers.values())


@contextlib.contextmanager
def executor(execution: Execution) -> Iterator[concurrent.futures.Executor | None]:
    """The :class:`concurrent.futures.Executor` the predictors fan out on.

    Yields:
        ``None`` for ``local`` (run in this process, as without the option), or Dask's
        ``Client.get_executor(pure=False)`` for ``dask``.

    Raises:
        ExecutionError: as :func:`dask_client`.
    """
    if not execution.distributed:
        yield None
        return
    with dask_client(execution) as client:
        yield client.get_executor(pure=False)
