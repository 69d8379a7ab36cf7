"""Process and port helpers for the loopback servers of the integration harness."""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (bind to port 0, then release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until(
    probe: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.1,
    alive: Callable[[], str | None] | None = None,
) -> T:
    """Call ``probe`` until it returns a non-``None`` value; return that value.

    ``alive`` (optional) returns an error text when the thing waited on has died, which ends
    the wait early. Raises ``TimeoutError`` naming ``what`` after ``timeout`` seconds, or
    ``RuntimeError`` with ``alive``'s text.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        if alive is not None:
            dead = alive()
            if dead:
                raise RuntimeError(f"{what}: {dead}")
        try:
            value = probe()
            if value is not None:
                return value
        except Exception as exc:  # noqa: BLE001 - the probe's failure is retried, then reported
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise TimeoutError(f"{what}: not ready after {timeout:.0f} s{detail}")
        time.sleep(interval)


_live: set[ManagedProcess] = set()


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_live):
        proc.stop(timeout=2)


class ManagedProcess:
    """A server process started in its own session with output to ``log_path``.

    ``stop()`` sends SIGTERM, waits ``timeout`` seconds, then SIGKILLs the process group.
    Processes still running when the interpreter exits are stopped too.
    """

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, env: dict | None = None):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        _live.add(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def exited(self) -> str | None:
        """``None`` while running, else a text with the exit code and the log's tail."""
        code = self.proc.poll()
        if code is None:
            return None
        return f"{self.name} exited with code {code}; log {self.log_path}:\n{self.log_tail()}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process (idempotent)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=timeout)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:  # pragma: no cover - defensive
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        _live.discard(self)
