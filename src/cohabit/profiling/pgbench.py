"""pgbench, the load generator: load the data set, check a script, run a rate-limited load
and read its per-transaction log.

**Latency as a client sees it.** Under ``--rate`` (``-R``) pgbench schedules transactions on
a Poisson clock and logs, per transaction, ``client_id transaction_no time script_no
time_epoch time_us schedule_lag``. ``time`` is measured from the transaction's *scheduled*
start, not from when a free connection picked it up (pgbench.c, ``processXactStats``:
``latency = now - txn_scheduled``, ``lag = txn_begin - txn_scheduled``), so it already holds
the schedule lag: the time spent waiting behind a slow server. p99 here is the 99th
percentile of ``time`` over every scheduled transaction, the lag included once (adding
``schedule_lag`` to ``time`` again would count it twice; :func:`parse_logs` checks
``time >= schedule_lag`` on every line). Transactions pgbench skipped because they were
already later than ``--latency-limit`` (``time`` = ``skipped``), failed ones, and scheduled
transactions missing from the log beyond Poisson noise (3 sigma) and those legitimately in
flight at the end (offered rate x the completed transactions' p99) count as infinitely
late: a starved server cannot look fast by serving fewer requests.

pgbench runs as the calling process's child, outside the server's cgroup, so the client's
own CPU does not count against the server's quota.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cohabit.profiling.errors import ProfilingError
from cohabit.profiling.postgres import PostgresBinaries, PostgresServer, _env

__all__ = [
    "BUILTINS",
    "LoadSpec",
    "PgbenchProcess",
    "PgbenchRun",
    "check_script",
    "init_data",
    "parse_logs",
    "start_pgbench",
    "summarize",
]

BUILTINS = ("tpcb-like", "simple-update", "select-only")
"""pgbench's built-in scripts."""


@dataclass(frozen=True)
class LoadSpec:
    """What pgbench runs and how hard.

    Attributes:
        name: workload name (the builtin's name or the script's file stem).
        builtin: one of :data:`BUILTINS`, or None with ``script``.
        script: a pgbench script file (SQL plus ``\\set`` meta-commands), or None.
        scale: pgbench scale factor of the data set (1 = 100,000 accounts, about 15 MiB).
        clients: concurrent connections (``-c``).
        rate_tps: offered rate, transactions per second (``-R``).

    Raises (from ``__post_init__``):
        ProfilingError: neither or both of ``builtin``/``script``, unknown builtin, a script
            that cannot be read or is empty, non-positive scale/clients/rate.
    """

    name: str
    builtin: str | None = None
    script: Path | None = None
    scale: int = 1
    clients: int = 8
    rate_tps: float = 100.0

    def __post_init__(self) -> None:
        if (self.builtin is None) == (self.script is None):
            raise ProfilingError("give exactly one of a builtin script or a script file")
        if self.builtin is not None and self.builtin not in BUILTINS:
            raise ProfilingError(
                f"unknown pgbench builtin {self.builtin!r}; known: {', '.join(BUILTINS)}")
        if self.script is not None:
            try:
                text = Path(self.script).read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise ProfilingError(f"cannot read script {self.script}: {exc}") from exc
            if not text.strip():
                raise ProfilingError(f"script {self.script} is empty")
        if self.scale < 1:
            raise ProfilingError(f"scale must be >= 1, got {self.scale}")
        if self.clients < 1:
            raise ProfilingError(f"clients must be >= 1, got {self.clients}")
        if not (self.rate_tps > 0 and math.isfinite(self.rate_tps)):
            raise ProfilingError(f"rate must be a positive number of TPS, got {self.rate_tps}")

    @classmethod
    def of(cls, *, builtin: str | None = None, script: Path | None = None, scale: int = 1,
           clients: int = 8, rate_tps: float = 100.0) -> LoadSpec:
        """A load named after its builtin or its script's stem."""
        name = builtin if builtin is not None else Path(script or "").stem
        return cls(name, builtin, Path(script) if script is not None else None, scale,
                   clients, rate_tps)

    def script_args(self) -> list[str]:
        """``-b NAME`` or ``-f FILE``."""
        if self.builtin is not None:
            return ["-b", self.builtin]
        if self.script is None:
            raise ValueError(f"load {self.name!r} has neither a builtin nor a script")
        return ["-f", str(Path(self.script).resolve())]


def _tail(path: Path, chars: int = 600) -> str:
    try:
        return path.read_bytes().decode(errors="replace").strip()[-chars:]
    except OSError:
        return ""


def init_data(binaries: PostgresBinaries, server: PostgresServer, scale: int,
              timeout_s: float = 3600.0) -> float:
    """``pgbench -i -s scale`` (tables, data, vacuum, primary keys), then a checkpoint.

    Returns:
        Seconds it took.

    Raises:
        ProfilingError: pgbench failed or timed out (its output's tail in the message).
    """
    t0 = time.monotonic()
    argv = [binaries["pgbench"], *server.client_args(), "-i", "-q", "-s", str(scale),
            "postgres"]
    log = server.client_dir / "init.log"
    with open(log, "wb") as out:
        try:
            rc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=_env(),
                                timeout=timeout_s, check=False).returncode
        except subprocess.TimeoutExpired as exc:
            raise ProfilingError(
                f"pgbench -i -s {scale} did not finish within {timeout_s:.0f} s") from exc
    if rc != 0:
        raise ProfilingError(f"pgbench -i -s {scale} failed (exit {rc}): {_tail(log)}")
    server.query("CHECKPOINT", timeout_s=timeout_s)
    return time.monotonic() - t0


def check_script(binaries: PostgresBinaries, server: PostgresServer, load: LoadSpec,
                 timeout_s: float = 120.0) -> None:
    """Run the workload's script a few times on one connection (no rate limit) so a script
    that fails in PostgreSQL is reported before any measurement.

    Raises:
        ProfilingError: pgbench rejected the script or a transaction failed (pgbench's own
            message, e.g. ``ERROR: relation "x" does not exist``).
    """
    what = load.builtin or str(load.script)
    argv = [binaries["pgbench"], *server.client_args(), "-n", "-c", "1", "-t", "3",
            "-s", str(load.scale), *load.script_args(), "postgres"]
    try:
        out = subprocess.run(argv, capture_output=True, env=_env(), timeout=timeout_s,
                             check=False)
    except subprocess.TimeoutExpired as exc:
        raise ProfilingError(f"script {what}: 3 transactions did not finish within "
                             f"{timeout_s:.0f} s") from exc
    text = (out.stderr + out.stdout).decode(errors="replace")
    failed = "failed transactions: 0 " not in text and "failed transactions" in text
    if out.returncode != 0 or "aborted" in text or failed:
        lines = [ln for ln in text.splitlines() if "error" in ln.lower() or "abort" in ln]
        detail = "; ".join(lines[:3]) or text.strip()[-600:]
        raise ProfilingError(f"script {what} fails in PostgreSQL (pgbench exit "
                             f"{out.returncode}): {detail}")


@dataclass(frozen=True)
class PgbenchRun:
    """One rate-limited pgbench run, summarised (latencies in ms from the scheduled start).

    Attributes:
        seconds: requested duration.
        rate_tps: offered rate.
        completed: transactions that finished.
        skipped: transactions skipped for being later than the latency limit.
        failed: transactions that failed (errors).
        unstarted: scheduled transactions missing from the log beyond Poisson noise.
        late: completed transactions slower than the latency limit.
        p50_ms, p99_ms, mean_ms: of every scheduled transaction (skipped, failed and
            unstarted ones as +inf; ``mean_ms`` over completed ones only).
        lag_p99_ms: p99 of the schedule lag of completed transactions.
        tps: completed transactions per second.
        exit_code: pgbench's exit status (0 = fine; 2 = a client aborted).
        error: pgbench's error lines ('' when none).
    """

    seconds: float
    rate_tps: float
    completed: int
    skipped: int
    failed: int
    unstarted: int
    late: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    lag_p99_ms: float
    tps: float
    exit_code: int = 0
    error: str = ""


def parse_logs(paths: list[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Read pgbench per-transaction logs (one per thread).

    Returns:
        ``(latency_us, lag_us, end_epoch_s, skipped, failed)``: arrays over completed
        transactions (``lag_us`` zeros when the run had no ``--rate``), counts of skipped and
        failed ones.

    Raises:
        ProfilingError: a line that does not follow the format (file and line named), or a
            latency smaller than its schedule lag (the format is not what this parser
            assumes).
    """
    lat: list[int] = []
    lag: list[int] = []
    end: list[float] = []
    skipped = failed = 0
    for path in paths:
        with open(path) as fh:
            for lineno, line in enumerate(fh, 1):
                f = line.split()
                if len(f) < 6:
                    raise ProfilingError(f"{path}:{lineno}: not a pgbench log line: {line!r}")
                if f[2] == "skipped":
                    skipped += 1
                    continue
                if f[2] == "failed":
                    failed += 1
                    continue
                try:
                    t = int(f[2])
                    sched = int(f[6]) if len(f) > 6 else 0
                    when = int(f[4]) + int(f[5]) / 1e6
                except ValueError as exc:
                    raise ProfilingError(f"{path}:{lineno}: bad number in {line!r}") from exc
                if t < sched:
                    raise ProfilingError(
                        f"{path}:{lineno}: latency {t} us < schedule lag {sched} us; this "
                        "pgbench does not log latency from the scheduled start")
                lat.append(t)
                lag.append(sched)
                end.append(when)
    return (np.asarray(lat, dtype=float), np.asarray(lag, dtype=float),
            np.asarray(end, dtype=float), skipped, failed)


def summarize(latency_us: np.ndarray, lag_us: np.ndarray, skipped: int, failed: int, *,
              seconds: float, rate_tps: float, latency_limit_ms: float | None,
              exit_code: int = 0, error: str = "") -> PgbenchRun:
    """A :class:`PgbenchRun` from parsed log arrays (see the module docstring for how
    skipped, failed and unstarted transactions enter the percentiles).

    Example: 1,000 completed transactions of 5 ms at 100 TPS for 10 s and 20 skipped ->
    ``p99_ms = inf`` (2 % are infinitely late); with none skipped, ``p99_ms = 5.0``.
    """
    completed = int(latency_us.size)
    expected = rate_tps * seconds
    started = completed + skipped + failed
    # Transactions scheduled in the last ~p99 seconds are legitimately still in flight
    # when the run ends (pgbench logs only finished ones); beyond that and Poisson noise
    # (3 sigma), missing transactions never started.
    in_flight = rate_tps * min(seconds, float(np.quantile(latency_us, 0.99)) / 1e6) \
        if completed else 0.0
    unstarted = max(0, int(math.floor(expected - 3.0 * math.sqrt(expected) - in_flight))
                    - started)
    infinite = skipped + failed + unstarted
    ms = latency_us / 1000.0
    every = np.concatenate([ms, np.full(infinite, np.inf)])
    if every.size == 0:
        p50 = p99 = math.inf
    else:
        p50, p99 = (float(np.quantile(every, q, method="inverted_cdf")) for q in (0.5, 0.99))
    late = int((ms > latency_limit_ms).sum()) if latency_limit_ms else 0
    return PgbenchRun(
        seconds=seconds, rate_tps=rate_tps, completed=completed, skipped=skipped,
        failed=failed, unstarted=unstarted, late=late, p50_ms=p50, p99_ms=p99,
        mean_ms=float(ms.mean()) if completed else math.inf,
        lag_p99_ms=float(np.quantile(lag_us / 1000.0, 0.99)) if completed else math.inf,
        tps=completed / seconds, exit_code=exit_code, error=error,
    )


class PgbenchProcess:
    """A running ``pgbench -R`` (see :func:`start_pgbench`); :meth:`wait` summarises it."""

    def __init__(self, proc: subprocess.Popen[bytes], prefix: Path, stderr: Path,
                 seconds: float, rate_tps: float, latency_limit_ms: float | None) -> None:
        self.proc = proc
        self.prefix = prefix
        self.stderr = stderr
        self.seconds = seconds
        self.rate_tps = rate_tps
        self.latency_limit_ms = latency_limit_ms
        self.started = time.monotonic()
        self.latencies_ms: np.ndarray = np.array([])
        """Completed transactions' latencies (ms), set by :meth:`wait`."""

    def wait(self, grace_s: float = 60.0) -> PgbenchRun:
        """Wait for the run (``seconds`` plus ``grace_s``), parse and delete its logs.

        Raises:
            ProfilingError: pgbench did not stop in time (it is killed), or a log line is
                malformed.
        """
        try:
            rc = self.proc.wait(timeout=self.seconds + grace_s)
        except subprocess.TimeoutExpired as exc:
            self.kill()
            raise ProfilingError(f"pgbench did not finish {self.seconds:.0f} s run within "
                                 f"{grace_s:.0f} s more; killed") from exc
        try:
            paths = sorted(self.prefix.parent.glob(self.prefix.name + ".*"))
            lat, lag, _, skipped, failed = parse_logs(paths)
        finally:
            self._cleanup()
        self.latencies_ms = lat / 1000.0
        error = ""
        if rc != 0:
            text = _tail(self.stderr, 2000)
            error = "; ".join(ln for ln in text.splitlines() if "error" in ln.lower())[:600]
            error = error or text[-600:]
        with contextlib.suppress(OSError):
            self.stderr.unlink()
        return summarize(lat, lag, skipped, failed, seconds=self.seconds,
                         rate_tps=self.rate_tps, latency_limit_ms=self.latency_limit_ms,
                         exit_code=rc, error=error)

    def kill(self) -> None:
        """Stop pgbench at once (idempotent) and delete its files."""
        if self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        self._cleanup()

    def _cleanup(self) -> None:
        for p in self.prefix.parent.glob(self.prefix.name + ".*"):
            with contextlib.suppress(OSError):
                p.unlink()


_COUNTER = [0]


def start_pgbench(binaries: PostgresBinaries, server: PostgresServer, load: LoadSpec,
                  seconds: float, *, rate_tps: float | None = None,
                  latency_limit_ms: float | None = None,
                  wrap: Callable[[list[str]], list[str]] | None = None) -> PgbenchProcess:
    """Start ``pgbench -n -R rate -T seconds -c clients --log`` against ``server``.

    Args:
        seconds: duration (>= 1).
        rate_tps: offered rate (default ``load.rate_tps``).
        latency_limit_ms: ``-L``: transactions later than this at their scheduled start are
            skipped (counted as infinitely late), completed ones slower are ``late``.
        wrap: prefixes the command (e.g. :meth:`cohabit.cgroup.Cgroup.wrap`, to run the
            client in a cgroup of its own).

    Raises:
        ProfilingError: ``seconds`` < 1.
    """
    if seconds < 1:
        raise ProfilingError(f"a pgbench run needs at least 1 s, got {seconds}")
    rate = load.rate_tps if rate_tps is None else rate_tps
    _COUNTER[0] += 1
    prefix = server.client_dir / f"tx{os.getpid()}-{_COUNTER[0]}"
    stderr = server.client_dir / f"err-{prefix.name}"
    threads = max(1, min(load.clients, os.cpu_count() or 1))
    argv = [binaries["pgbench"], *server.client_args(), "-n", "-c", str(load.clients),
            "-j", str(threads), "-R", f"{rate:.3f}", "-T", str(int(round(seconds))),
            "-s", str(load.scale), "--log", f"--log-prefix={prefix}", *load.script_args()]
    if latency_limit_ms:
        argv += ["-L", f"{latency_limit_ms:.3f}"]
    argv.append("postgres")
    if wrap is not None:
        argv = wrap(argv)
    with open(stderr, "wb") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err,
                                stdin=subprocess.DEVNULL, env=_env())
    return PgbenchProcess(proc, prefix, stderr, float(int(round(seconds))), rate,
                          latency_limit_ms)
