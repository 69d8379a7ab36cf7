"""A real Dask cluster on loopback: one ``dask scheduler`` and N ``dask worker`` processes.

The ``dask`` command is the one the project's install step put beside this interpreter
(``dask`` and ``distributed`` are cohabit dependencies). Each process runs in its own session,
so :meth:`DaskCluster.kill_worker` can SIGKILL a worker with its nanny, as a lost node would.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .procs import ManagedProcess, free_port, wait_until

__all__ = ["DaskCluster", "dask_command", "start_dask_cluster"]


def dask_command() -> str:
    """Path of the ``dask`` command of this environment (beside ``sys.executable``)."""
    beside = Path(sys.executable).with_name("dask")
    if beside.exists():
        return str(beside)
    found = shutil.which("dask")
    if found is None:
        raise FileNotFoundError("no `dask` command: install cohabit (pip install -e .)")
    return found


@dataclass
class DaskCluster:
    """A running loopback Dask cluster.

    Attributes:
        address: the scheduler's ``tcp://127.0.0.1:PORT``.
        scheduler: its process.
        workers: worker name -> its process (``dask worker --nthreads 1``, with a nanny).
        workdir: logs and the workers' local directories.
    """

    address: str
    scheduler: ManagedProcess
    workers: dict[str, ManagedProcess] = field(default_factory=dict)
    workdir: Path = Path(".")

    def start_worker(self, name: str) -> None:
        """Start worker ``name`` (``dask worker --nthreads 1``, with its nanny); returns at
        once (the worker registers a few seconds later)."""
        self.workers[name] = ManagedProcess(
            f"dask-worker-{name}",
            [dask_command(), "worker", self.address, "--name", name, "--nthreads", "1",
             "--no-dashboard", "--host", "127.0.0.1",
             "--local-directory", str(self.workdir / name), "--death-timeout", "120"],
            self.workdir / f"{name}.log")

    def kill_worker(self, name: str) -> None:
        """SIGKILL worker ``name`` and its nanny (the whole process group), no clean exit."""
        proc = self.workers[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.proc.wait(timeout=30)

    def stop(self) -> None:
        """Stop every process (idempotent)."""
        for proc in [*self.workers.values(), self.scheduler]:
            proc.stop(timeout=10)

    def logs(self) -> str:
        """The tails of every process's log, for a failure message."""
        return "\n".join(f"--- {p.name}\n{p.log_tail()}"
                         for p in [self.scheduler, *self.workers.values()])


def start_dask_cluster(workdir: Path, workers: int = 2, timeout: float = 180.0) -> DaskCluster:
    """Start a scheduler on a free loopback port and ``workers`` single-threaded workers;
    return once every worker has registered.

    Raises:
        TimeoutError: the workers did not all register within ``timeout`` seconds.
        RuntimeError: a process died while starting (the message has its log).
    """
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = ManagedProcess(
        "dask-scheduler",
        [dask_command(), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        workdir / "scheduler.log")
    cluster = DaskCluster(address, scheduler, workdir=workdir)
    try:
        for i in range(1, workers + 1):
            cluster.start_worker(f"w{i}")

        def dead() -> str | None:
            for p in [scheduler, *cluster.workers.values()]:
                text = p.exited()
                if text:
                    return text
            return None

        def ready() -> bool | None:
            with Client(address, timeout=5, set_as_default=False) as client:
                info = client.scheduler_info(n_workers=-1)["workers"]
                return True if len(info) >= workers else None

        wait_until(ready, timeout, f"Dask cluster at {address} with {workers} workers",
                   interval=1.0, alive=dead)
    except BaseException:
        cluster.stop()
        raise
    return cluster
