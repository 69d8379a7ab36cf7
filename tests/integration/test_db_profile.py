"""The database path on a real PostgreSQL 15 under real cgroup limits: the cgroup primitives on
a real process, a measured session, ``cohabit profile database`` end to end with short
points, and its bad inputs (exit 2, nothing left behind: no server process, no cgroup, no
temporary directory). No mock of PostgreSQL or of the kernel anywhere.

Needs root (cgroup writes, the ``postgres`` user) and Debian's ``postgresql-15``; skips with
the reason otherwise, fails under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cohabit.cgroup import detect
from cohabit.profiling import DatabaseSession, LoadSpec

COHABIT = [sys.executable, "-m", "cohabit.cli.main"]


@pytest.fixture
def private_tmp() -> Iterator[Path]:
    """A TMPDIR for the command under test (one the ``postgres`` user can traverse, unlike
    pytest's 0700 tmp_path), so its temporary directories can be counted."""
    d = Path(tempfile.mkdtemp(prefix="cohabit-itest-", dir="/tmp"))
    d.chmod(0o711)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _leftovers(pid: int, tmpdir: Path) -> list[str]:
    """cgroups named after ``pid``, processes whose command line mentions ``tmpdir``, and
    cohabit temporary directories in ``tmpdir``."""
    found = [str(p) for p in Path("/sys/fs/cgroup").glob("*/cohabit/*") if f"-{pid}-" in p.name]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(tmpdir) in cmd:
            found.append(f"process {proc.name}: {cmd[:120]}")
    found += [str(p) for p in tmpdir.glob("cohabit-pg-*")]
    return found


def _profile(args: list[str], tmpdir: Path, timeout: float = 300,
             user: str | None = None) -> tuple[subprocess.CompletedProcess, int]:
    env = {**os.environ, "TMPDIR": str(tmpdir), "COLUMNS": "160"}
    argv = [*COHABIT, "profile", "database", *args]
    if user is not None:
        uid = pwd.getpwnam(user)
        argv = ["setpriv", f"--reuid={uid.pw_uid}", f"--regid={uid.pw_gid}", "--clear-groups",
                *argv]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(argv, proc.returncode, out.decode(), err.decode()), \
        proc.pid


def test_cgroup_limits_throttle_a_real_process(prerequisites: None) -> None:
    with detect().create("itest") as group:
        group.set_cpu(200)
        group.set_memory(64)
        assert group.limits() == (200, 100_000, 64)
        spin = subprocess.Popen(group.wrap(["/bin/sh", "-c", "while :; do :; done"]))
        try:
            time.sleep(0.3)
            before = group.stats()
            time.sleep(1.5)
            after = group.stats()
            assert spin.pid in group.pids()
        finally:
            group.kill()
            spin.wait(timeout=10)
        used = (after.cpu_usage_s - before.cpu_usage_s) / 1.5
        assert used < 0.3  # 200m quota: at most ~0.2 cores
        assert after.nr_throttled > before.nr_throttled
        dirs = list(group.dirs.values())
    assert not any(d.exists() for d in dirs)


def _uid_of(pid: int) -> str | None:
    """The real uid of process ``pid``, None when it exited meanwhile (a server's short-lived
    child listed in the cgroup a moment before)."""
    try:
        return Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def test_session_measures_postgres_under_limits(prerequisites: None) -> None:
    load = LoadSpec.of(builtin="select-only", scale=1, clients=2, rate_tps=80)
    with DatabaseSession(load, name="itest-session") as session:
        session.prepare()
        assert session.data_mib > 10
        session.cgroup.set_memory(256)
        session.cgroup.set_cpu(1000)
        session.start(256)
        assert session.shared_buffers_mib == 64  # 25 % of the memory limit
        owners = {uid for uid in map(_uid_of, session.cgroup.pids()) if uid is not None}
        expected = str(pwd.getpwnam("postgres").pw_uid) if os.geteuid() == 0 else \
            str(os.geteuid())
        assert owners == {expected}  # the server itself, not a wrapper, runs as postgres
        wide = session.measure(3, latency_limit_ms=2000)
        session.cgroup.set_cpu(100)
        narrow = session.measure(3, latency_limit_ms=2000)
        dirs = list(session.cgroup.dirs.values())
        workdir = session.server.dir
    assert wide["cpu_milli"] == 1000 and narrow["cpu_milli"] == 100
    assert wide["memory_mib"] == 256 and wide["memory_peak_mib"] <= 256
    assert wide["completed"] > 100 and wide["hit_ratio"] > 0.5
    assert narrow["nr_throttled"] >= wide["nr_throttled"]
    assert narrow["cpu_used_milli"] < 200
    assert not workdir.exists() and not any(d.exists() for d in dirs)


def test_profile_database_end_to_end(prerequisites: None, tmp_path: Path,
                                     private_tmp: Path) -> None:
    out = tmp_path / "out"
    result, pid = _profile(
        ["--builtin", "select-only", "--scale", "1", "--rate", "60", "--clients", "2",
         "--p99-ms", "300", "--cpu-milli", "100:400", "--memory-mib", "128:256",
         "--repeats", "2", "--point-seconds", "2", "--warmup-seconds", "1",
         "--out", str(out)], private_tmp)
    assert result.returncode == 0, result.stderr[-2000:] + result.stdout[-2000:]
    rec = json.loads((out / "recommendation.json").read_text())
    for key in ("cpu_milli", "memory_mib", "cfs_period_us", "p99_ms_expected", "confidence"):
        assert key in rec
    assert 100 <= rec["cpu_milli"] <= 400 and rec["memory_mib"] in (128, 256)
    assert rec["cfs_period_us"] == 100_000 and rec["confidence"] >= 0.9
    points = (out / "points.csv").read_text().splitlines()
    assert len(points) - 1 == rec["search"]["runs"] >= 4
    assert (out / "curve.png").stat().st_size > 10_000
    assert "recommended:" in result.stdout
    assert _leftovers(pid, private_tmp) == []


def test_script_failing_in_postgres_exits_2_and_leaves_nothing(
        prerequisites: None, tmp_path: Path, private_tmp: Path) -> None:
    script = tmp_path / "broken.sql"
    script.write_text("\\set aid random(1, 1000)\nSELECT * FROM no_such_table WHERE id = :aid;\n")
    result, pid = _profile(
        ["--script", str(script), "--scale", "1", "--rate", "50", "--clients", "2",
         "--p99-ms", "50", "--out", str(tmp_path / "out")], private_tmp)
    assert result.returncode == 2, result.stderr
    assert "fails in PostgreSQL" in result.stderr and "no_such_table" in result.stderr
    assert _leftovers(pid, private_tmp) == []


def test_unreachable_target_exits_2_with_the_best_point(
        prerequisites: None, tmp_path: Path, private_tmp: Path) -> None:
    out = tmp_path / "out"
    result, pid = _profile(
        ["--builtin", "select-only", "--scale", "1", "--rate", "50", "--clients", "2",
         "--p99-ms", "0.001", "--cpu-milli", "100:200", "--memory-mib", "128:128",
         "--repeats", "2", "--point-seconds", "1", "--warmup-seconds", "0",
         "--out", str(out)], private_tmp)
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert "no allowed spec meets" in message and "best point found, 200m/128MiB" in message
    assert (out / "points.csv").exists() and not (out / "recommendation.json").exists()
    assert _leftovers(pid, private_tmp) == []


@pytest.fixture
def world_writable() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="cohabit-nobody-", dir="/tmp"))
    d.chmod(0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_no_cgroup_write_access_exits_2(prerequisites: None,
                                        world_writable: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to run the command as another user")
    result, pid = _profile(
        ["--builtin", "select-only", "--scale", "1", "--rate", "50", "--clients", "2",
         "--p99-ms", "50", "--out", str(world_writable / "out")], world_writable,
        user="nobody")
    assert result.returncode == 2, result.stderr
    assert "cgroup" in result.stderr and "root" in result.stderr
    assert _leftovers(pid, world_writable) == []
