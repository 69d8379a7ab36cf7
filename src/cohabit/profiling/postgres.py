"""A throwaway PostgreSQL server: initdb in a temporary directory, started inside a cgroup,
listening on a Unix socket only, stopped and deleted afterwards.

As root the server runs as the ``postgres`` user (``setpriv``, so the server process itself,
not a wrapper, is the child we hold); otherwise as the calling user. Settings are written to
the cluster's ``postgresql.conf`` with the user's own file ``include``-d after them, so the
user's settings override cohabit's (``shared_buffers`` = 25 % of the memory limit, the usual
rule, unless the user's file sets it).
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from cohabit.cgroup import Cgroup
from cohabit.profiling.errors import PrerequisiteError, ProfilingError

__all__ = ["DEFAULT_BINDIR", "PostgresBinaries", "PostgresServer", "shared_buffers_mib"]

DEFAULT_BINDIR = Path("/usr/lib/postgresql/15/bin")
"""Where Debian's ``postgresql-15`` package puts the server binaries."""

_INSTALL = "install PostgreSQL 15 (Debian/Ubuntu: apt-get install postgresql-15)"


def shared_buffers_mib(memory_mib: int) -> int:
    """``shared_buffers`` for a memory limit: 25 % of it (PostgreSQL's documented starting
    point for a dedicated server), at least 16 MiB."""
    return max(16, int(memory_mib) // 4)


@dataclass(frozen=True)
class PostgresBinaries:
    """The server binaries cohabit runs: ``initdb``, ``postgres``, ``pgbench``.

    Attributes:
        bindir: directory holding them.
    """

    bindir: Path

    @classmethod
    def find(cls, bindir: str | Path | None = None) -> PostgresBinaries:
        """``bindir``, else ``$COHABIT_PG_BINDIR``, else :data:`DEFAULT_BINDIR`, else the
        newest ``/usr/lib/postgresql/*/bin``.

        Raises:
            PrerequisiteError: no directory holds all three binaries (says what to install).
        """
        candidates: list[Path] = []
        if bindir is not None:
            candidates.append(Path(bindir))
        elif os.environ.get("COHABIT_PG_BINDIR"):
            candidates.append(Path(os.environ["COHABIT_PG_BINDIR"]))
        else:
            candidates.append(DEFAULT_BINDIR)
            versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
            candidates.extend(v for v in versions if v != DEFAULT_BINDIR)
        for c in candidates:
            if all(os.access(c / b, os.X_OK) for b in ("initdb", "postgres", "pgbench")):
                return cls(c)
        looked = ", ".join(str(c) for c in candidates)
        raise PrerequisiteError(
            f"PostgreSQL server binaries (initdb, postgres, pgbench) not found in {looked}: "
            f"{_INSTALL}, or point COHABIT_PG_BINDIR at their directory")

    def __getitem__(self, name: str) -> str:
        return str(self.bindir / name)


def _run_as(user: str | None) -> list[str]:
    if user is None:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise PrerequisiteError("setpriv (util-linux) is needed to run PostgreSQL as "
                                f"{user!r}; install util-linux")
    return [setpriv, f"--reuid={user}", f"--regid={user}", "--init-groups"]


def _check_reachable(directory: Path, user: str) -> None:
    """Raise :class:`PrerequisiteError` unless ``user`` may traverse every directory down to
    ``directory`` (the server must reach its data directory inside it)."""
    pw = pwd.getpwnam(user)
    groups = {g.gr_gid for g in grp.getgrall() if user in g.gr_mem} | {pw.pw_gid}
    for d in [directory.resolve(), *directory.resolve().parents]:
        st = d.stat()
        if st.st_uid == pw.pw_uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid in groups:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            raise PrerequisiteError(
                f"PostgreSQL runs as {user!r}, which cannot enter {d} (on the way to the "
                f"temporary directory {directory}): set TMPDIR to a directory {user!r} can "
                "traverse, e.g. /tmp")


def _default_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise PrerequisiteError(
            "running as root, PostgreSQL must run as the 'postgres' user, which does not "
            f"exist: {_INSTALL} (it creates the user)") from exc
    return "postgres"


class PostgresServer:
    """One PostgreSQL cluster in a fresh temporary directory, run inside ``cgroup``.

    Use as a context manager: on exit the server is stopped, anything left in the cgroup is
    killed and the directory deleted. Layout: ``<dir>/data`` (the cluster), ``<dir>/sock``
    (the Unix socket), ``<dir>/server.log``, ``<dir>/client`` (for the caller's files).

    Args:
        binaries: where ``initdb``/``postgres`` are.
        cgroup: the group the server runs in (its limits are the caller's business).
        user: OS user of the server; default ``postgres`` when root, else the caller.
        port: port number (it only names the socket file; there is no TCP listener).
        base_dir: parent of the temporary directory (default: the system's).

    Raises (from ``__init__``/``initdb``):
        PrerequisiteError: no ``postgres`` user as root, no ``setpriv``.
        ProfilingError: ``initdb`` failed (its output's tail in the message).
    """

    def __init__(self, binaries: PostgresBinaries, cgroup: Cgroup, *, user: str | None = "",
                 port: int = 5432, base_dir: str | Path | None = None) -> None:
        self.binaries = binaries
        self.cgroup = cgroup
        self.user = _default_user() if user == "" else user
        self.port = port
        if self.user is not None:
            _check_reachable(Path(base_dir or tempfile.gettempdir()), self.user)
        self.dir = Path(tempfile.mkdtemp(prefix="cohabit-pg-", dir=base_dir))
        self.data = self.dir / "data"
        self.socket_dir = self.dir / "sock"
        self.client_dir = self.dir / "client"
        self.log_path = self.dir / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.settings: dict[str, str] = {}
        try:
            self.socket_dir.mkdir()
            self.client_dir.mkdir()
            if self.user is not None:
                pw = pwd.getpwnam(self.user)
                os.chown(self.dir, pw.pw_uid, pw.pw_gid)
                os.chown(self.socket_dir, pw.pw_uid, pw.pw_gid)
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    # ------------------------------------------------------------------ lifecycle

    def initdb(self, timeout_s: float = 180.0) -> None:
        """Create the cluster (trust authentication on the socket, UTF-8).

        Raises:
            ProfilingError: initdb failed or timed out.
        """
        argv = [*_run_as(self.user), self.binaries["initdb"], "-D", str(self.data),
                "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]
        try:
            out = subprocess.run(argv, capture_output=True, timeout=timeout_s, check=False,
                                 env=_env())
        except subprocess.TimeoutExpired as exc:
            raise ProfilingError(f"initdb did not finish within {timeout_s:.0f} s") from exc
        if out.returncode != 0:
            tail = (out.stderr or out.stdout).decode(errors="replace").strip()[-800:]
            raise ProfilingError(f"initdb failed (exit {out.returncode}): {tail}")

    def start(self, settings: Mapping[str, str], user_config: Path | None = None,
              timeout_s: float = 90.0) -> None:
        """Start the server with ``settings`` (then ``user_config``'s, which win) and wait
        until it accepts connections.

        Raises:
            ProfilingError: the server exited or did not accept connections in time (the
                message holds the server log's tail); the user's config is unreadable.
        """
        if self.running():
            raise ProfilingError("PostgreSQL is already running")
        self._write_config(settings, user_config)
        self.settings = dict(settings)
        argv = self.cgroup.wrap([*_run_as(self.user), self.binaries["postgres"],
                                 "-D", str(self.data)])
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop())
        self._proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=_env(),
                                      start_new_session=True)
        self._wait_ready(timeout_s)

    def _write_config(self, settings: Mapping[str, str], user_config: Path | None) -> None:
        base = {
            "listen_addresses": "''",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "port": str(self.port),
            "logging_collector": "off",
            "log_min_messages": "warning",
        }
        lines = [f"{k} = {v}" for k, v in {**base, **settings}.items()]
        conf = self.data / "postgresql.conf"
        marker = "# --- cohabit settings below (rewritten at each start) ---"
        text = conf.read_text().split(marker)[0]
        if user_config is not None:
            copy = self.data / "cohabit-user.conf"
            try:
                shutil.copyfile(user_config, copy)
            except OSError as exc:
                raise ProfilingError(f"cannot read --config {user_config}: {exc}") from exc
            self._chown(copy)
            lines.append(f"include '{copy}'")
        conf.write_text(text + marker + "\n" + "\n".join(lines) + "\n")

    def _chown(self, path: Path) -> None:
        if self.user is not None:
            pw = pwd.getpwnam(self.user)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _wait_ready(self, timeout_s: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                self._close_log()
                raise ProfilingError(
                    f"PostgreSQL exited with status {self._proc.returncode} at start: "
                    f"{self.log_tail()}")
            try:
                with psycopg.connect(**self.conninfo(), connect_timeout=3):
                    return
            except psycopg.OperationalError as exc:
                last = str(exc).strip()
            time.sleep(0.2)
        self.stop()
        raise ProfilingError(f"PostgreSQL did not accept connections within {timeout_s:.0f} s "
                             f"({last}); server log: {self.log_tail()}")

    def running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout_s: float = 60.0) -> None:
        """Fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL of everything in
        the cgroup; idempotent."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            for sig, wait in ((signal.SIGINT, timeout_s), (signal.SIGQUIT, 10.0)):
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        self._proc = None
        self._close_log()
        # Backends that outlived the postmaster (a crash) must not linger.
        self.cgroup.kill()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        """Stop the server and delete the temporary directory (idempotent)."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ access

    def conninfo(self) -> dict[str, Any]:
        """Keyword arguments for ``psycopg.connect`` (socket directory, port, user)."""
        return {"host": str(self.socket_dir), "port": self.port, "user": "postgres",
                "dbname": "postgres"}

    def client_args(self) -> list[str]:
        """Connection options for ``pgbench``/``psql``."""
        return ["-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres"]

    def query(self, sql: str, params: tuple[object, ...] = (),
              timeout_s: float = 30.0) -> list[tuple[Any, ...]]:
        """Rows of one statement (autocommit; ``statement_timeout`` = ``timeout_s``).

        Raises:
            ProfilingError: the connection or the statement failed.
        """
        import psycopg

        try:
            with psycopg.connect(**self.conninfo(), connect_timeout=5, autocommit=True,
                                 options=f"-c statement_timeout={int(timeout_s * 1000)}") as c:
                cur = c.execute(sql, params)
                return list(cur.fetchall()) if cur.description else []
        except psycopg.Error as exc:
            raise ProfilingError(f"query failed: {str(exc).strip()}") from exc

    def db_stats(self) -> dict[str, int]:
        """Cumulative ``pg_stat_database`` counters of the ``postgres`` database:
        ``blks_hit``, ``blks_read``, ``xact_commit``, ``xact_rollback``, ``temp_bytes``."""
        cols = ("blks_hit", "blks_read", "xact_commit", "xact_rollback", "temp_bytes")
        rows = self.query(f"SELECT {', '.join(cols)} FROM pg_stat_database "
                          "WHERE datname = current_database()")
        return {c: int(v or 0) for c, v in zip(cols, rows[0], strict=True)}

    def log_tail(self, chars: int = 800) -> str:
        """The last ``chars`` characters of the server log ('' when there is none)."""
        try:
            text = self.log_path.read_bytes().decode(errors="replace")
        except OSError:
            return ""
        return text.strip()[-chars:]


def _env() -> dict[str, str]:
    """A small environment for child processes: C locale, no PG* variables leaking in."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "TZ", "HOME")}
    return {**keep, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
