"""cgroup v1 / v2 detection and one :class:`Cgroup` type over both (see the package docstring).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shlex
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DEFAULT_CFS_PERIOD_US",
    "PARENT_SHARES",
    "Cgroup",
    "CgroupError",
    "CgroupStats",
    "CgroupTree",
    "detect",
    "milli_to_shares",
    "shares_to_weight",
]

DEFAULT_CFS_PERIOD_US = 100_000
"""The kubelet's default CFS period (``--cpu-cfs-quota-period``, 100 ms)."""

MIB = 1 << 20
PARENT_SHARES = 1024 * 4 * (os.cpu_count() or 1)
"""CPU weight (v1 shares) of the ``cohabit`` parent group: like the kubelet's ``kubepods``
group, which weighs the node's allocatable CPU against system processes, but 4x, because on
a host shared with other users' processes those are the majority. Each child is capped by
its CFS quota, so the weight only makes a group *get* its allocation under contention, as a
Kubernetes CPU request does; it cannot take more."""
_V1_CONTROLLERS = ("cpu", "cpuacct", "memory", "cpuset")
_UNLIMITED_V1 = 2**63 - 4096  # what v1 reports as "no memory limit" (rounded to a page)
_HINT = ("run cohabit as root on a host whose cgroup file system is writable (cgroup v1 "
         "cpu+memory or cgroup v2 with the cpu and memory controllers), or delegate a "
         "writable cgroup subtree to its user")


class CgroupError(RuntimeError):
    """A cgroup could not be found, created, written or removed; the message names the file
    and says what to enable or install."""


@dataclass(frozen=True, slots=True)
class CgroupStats:
    """Counters of one cgroup at one moment (cumulative ones since it was created).

    Attributes:
        cpu_usage_s: CPU time used by its processes, seconds (cumulative).
        nr_periods: CFS periods with runnable tasks (cumulative).
        nr_throttled: periods in which the group was throttled (cumulative).
        throttled_s: time throttled, seconds (cumulative).
        memory_usage_mib: current memory charged (anonymous + page cache), MiB.
        memory_peak_mib: peak since the last :meth:`Cgroup.reset_peak`, MiB (None when the
            kernel does not keep it).
        memory_cache_mib: page cache charged, MiB (None when unknown).
        memory_working_set_mib: usage minus inactive file pages, MiB (cAdvisor's
            ``container_memory_working_set_bytes``, what the VPA and the kubelet read).
        oom_kills: processes killed by the OOM killer inside the group (cumulative).
    """

    cpu_usage_s: float
    nr_periods: int
    nr_throttled: int
    throttled_s: float
    memory_usage_mib: float
    memory_peak_mib: float | None
    memory_cache_mib: float | None
    memory_working_set_mib: float
    oom_kills: int


@dataclass(frozen=True)
class CgroupTree:
    """Where this host's cgroups are and which version they are.

    Attributes:
        version: 1 or 2.
        mounts: v1: controller (``cpu``, ``cpuacct``, ``memory``, ``cpuset``) -> mount
            directory; v2: ``{"unified": mount directory}``.
        parent: directory (relative to each mount) under which cohabit's groups are made.
    """

    version: int
    mounts: Mapping[str, Path]
    parent: str = "cohabit"

    def create(self, name: str, *, cpuset: str | None = None, unique: bool = True) -> Cgroup:
        """Make a new group ``<parent>/<name>[-<pid>-<random>]`` in every hierarchy.

        Args:
            name: base name (letters, digits, ``-``, ``_``, ``.``).
            cpuset: CPUs the group may run on (``"0"``, ``"0-1"``), or None for all.
            unique: append the process id and a random suffix, so concurrent runs (and
                several engineers on one machine) never share a group.

        Raises:
            CgroupError: no write access (the message says what to enable), or a bad name.
        """
        if not name or any(not (c.isalnum() or c in "-_.") for c in name):
            raise CgroupError(f"bad cgroup name {name!r}: use letters, digits, '-', '_', '.'")
        full = f"{name}-{os.getpid()}-{secrets.token_hex(3)}" if unique else name
        group = Cgroup(self, full, cpuset is not None)
        group._make(cpuset)
        return group

    def dirs(self, name: str, with_cpuset: bool) -> dict[str, Path]:
        """Controller -> directory of group ``name`` (v2: one ``unified`` entry)."""
        if self.version == 2:
            return {"unified": self.mounts["unified"] / self.parent / name}
        keys = ["cpu", "cpuacct", "memory"] + (["cpuset"] if with_cpuset else [])
        return {k: self.mounts[k] / self.parent / name for k in keys}


def milli_to_shares(cpu_milli: int | None) -> int:
    """The kubelet's ``MilliCPUToShares``: ``cpu_milli * 1024 / 1000``, at least 2 (1024 for
    None, an unlimited group)."""
    if cpu_milli is None:
        return 1024
    return max(2, int(cpu_milli) * 1024 // 1000)


def shares_to_weight(shares: int) -> int:
    """cgroup v2 ``cpu.weight`` for v1 shares (the kubelet/runc conversion
    ``1 + (shares - 2) * 9999 / 262142``)."""
    return int(1 + (max(2, min(262144, shares)) - 2) * 9999 // 262142)


def _parse_mounts(text: str) -> tuple[dict[str, Path], list[Path]]:
    """v1 controller -> mount point, and the v2 mount points, from ``/proc/mounts`` text."""
    v1: dict[str, Path] = {}
    v2: list[Path] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        mount, fstype, options = parts[1], parts[2], parts[3].split(",")
        if fstype == "cgroup2":
            v2.append(Path(mount))
        elif fstype == "cgroup":
            for c in _V1_CONTROLLERS:
                if c in options and c not in v1:
                    v1[c] = Path(mount)
    return v1, v2


def detect(mounts_file: str | Path = "/proc/mounts", parent: str = "cohabit") -> CgroupTree:
    """The host's cgroup tree: v1 when its ``cpu``, ``cpuacct`` and ``memory`` controllers are
    mounted, else v2 when a unified mount offers ``cpu`` and ``memory``.

    Raises:
        CgroupError: neither is available (names what to mount or enable).
    """
    try:
        text = Path(mounts_file).read_text()
    except OSError as exc:
        raise CgroupError(f"cannot read {mounts_file}: {exc}") from exc
    v1, v2 = _parse_mounts(text)
    if all(c in v1 for c in ("cpu", "cpuacct", "memory")):
        return CgroupTree(1, v1, parent)
    for mount in v2:
        try:
            offered = set((mount / "cgroup.controllers").read_text().split())
        except OSError:
            continue
        if {"cpu", "memory"} <= offered:
            return CgroupTree(2, {"unified": mount}, parent)
    raise CgroupError(
        "no cgroup hierarchy with the cpu and memory controllers is mounted (looked at "
        f"{mounts_file}): mount cgroup v1 cpu,cpuacct and memory, or cgroup v2 with the cpu "
        "and memory controllers enabled")


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except PermissionError as exc:
        raise CgroupError(f"no write access to {path}: {_HINT}") from exc
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES):
            raise CgroupError(f"no write access to {path}: {_HINT}") from exc
        if exc.errno == errno.EBUSY and "memory" in path.name:
            raise CgroupError(
                f"cannot lower {path} to {value.strip()}: the group uses more memory than "
                "that and the kernel could not reclaim it (EBUSY)") from exc
        raise CgroupError(f"cannot write {value.strip()!r} to {path}: {exc}") from exc


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise CgroupError(f"cannot read {path}: {exc}") from exc


def _keyed(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


@dataclass
class Cgroup:
    """One cohabit-made group in every hierarchy of a :class:`CgroupTree`.

    Make it with :meth:`CgroupTree.create`; use it as a context manager (or call
    :meth:`destroy`) so its processes are killed and its directories removed.
    """

    tree: CgroupTree
    name: str
    with_cpuset: bool = False
    dirs: dict[str, Path] = field(init=False)

    def __post_init__(self) -> None:
        self.dirs = self.tree.dirs(self.name, self.with_cpuset)

    @property
    def version(self) -> int:
        """The cgroup version (1 or 2)."""
        return self.tree.version

    # ------------------------------------------------------------------ creation

    def _make(self, cpuset: str | None) -> None:
        for key, path in self.dirs.items():
            self._make_parent(key, path.parent)
            try:
                path.mkdir()
            except FileExistsError:
                pass
            except OSError as exc:
                raise CgroupError(f"cannot create cgroup {path}: {exc}; {_HINT}") from exc
        if cpuset is not None:
            self.set_cpuset(cpuset)

    def _make_parent(self, key: str, parent: Path) -> None:
        try:
            parent.mkdir(exist_ok=True)
        except OSError as exc:
            raise CgroupError(f"cannot create cgroup {parent}: {exc}; {_HINT}") from exc
        if self.version == 2:
            root = parent.parent
            wanted = ["cpu", "memory"] + (["cpuset"] if self.with_cpuset else [])
            for where in (root, parent):
                have = set(_read(where / "cgroup.subtree_control").split())
                missing = [c for c in wanted if c not in have]
                if missing:
                    _write(where / "cgroup.subtree_control",
                           " ".join(f"+{c}" for c in missing))
            if "cpu" in wanted:
                _write(parent / "cpu.weight", str(shares_to_weight(PARENT_SHARES)))
        elif key == "cpuset":
            for f in ("cpuset.cpus", "cpuset.mems"):
                if not _read(parent / f).strip():
                    _write(parent / f, _read(parent.parent / f).strip())
        elif key == "cpu":
            _write(parent / "cpu.shares", str(PARENT_SHARES))

    # ------------------------------------------------------------------ limits

    def set_cpu(self, cpu_milli: int | None, period_us: int = DEFAULT_CFS_PERIOD_US) -> None:
        """CFS quota of ``cpu_milli`` millicores per ``period_us`` (None = no limit), and the
        CPU weight the kubelet gives a container requesting ``cpu_milli``
        (:func:`milli_to_shares`; 1024 when None): requests = limits, a Guaranteed pod.

        Raises:
            CgroupError: write refused; ValueError: quota below the kernel's 1 ms minimum.
        """
        if not 1_000 <= period_us <= 1_000_000:
            raise ValueError(f"CFS period must be 1000..1000000 us, got {period_us}")
        quota = None if cpu_milli is None else int(round(cpu_milli * period_us / 1000))
        if quota is not None and quota < 1_000:
            raise ValueError(f"CFS quota {quota} us (cpu_milli={cpu_milli}) is below 1000 us")
        shares = milli_to_shares(cpu_milli)
        if self.version == 2:
            _write(self.dirs["unified"] / "cpu.max",
                   f"{'max' if quota is None else quota} {period_us}")
            _write(self.dirs["unified"] / "cpu.weight", str(shares_to_weight(shares)))
            return
        d = self.dirs["cpu"]
        _write(d / "cpu.cfs_quota_us", "-1")
        _write(d / "cpu.cfs_period_us", str(period_us))
        if quota is not None:
            _write(d / "cpu.cfs_quota_us", str(quota))
        _write(d / "cpu.shares", str(shares))

    def set_memory(self, memory_mib: int | None) -> None:
        """Memory limit of ``memory_mib`` MiB (None = no limit); page cache counts.

        Raises:
            CgroupError: write refused, or the group cannot shrink that far (EBUSY).
        """
        value = None if memory_mib is None else int(memory_mib) * MIB
        if self.version == 2:
            _write(self.dirs["unified"] / "memory.max", "max" if value is None else str(value))
            return
        _write(self.dirs["memory"] / "memory.limit_in_bytes",
               "-1" if value is None else str(value))

    def set_cpuset(self, cpus: str) -> None:
        """Restrict the group to CPUs ``cpus`` (e.g. ``"0"``, ``"0-1"``).

        Raises:
            CgroupError: the group was made without a cpuset, or the write was refused.
        """
        if not self.with_cpuset:
            raise CgroupError(f"cgroup {self.name} was created without a cpuset")
        d = self.dirs["unified" if self.version == 2 else "cpuset"]
        if self.version == 1 and not _read(d / "cpuset.mems").strip():
            _write(d / "cpuset.mems", _read(d.parent / "cpuset.mems").strip())
        _write(d / "cpuset.cpus", cpus)

    def limits(self) -> tuple[int | None, int, int | None]:
        """``(cpu_milli or None, period_us, memory_mib or None)`` as the kernel holds them."""
        if self.version == 2:
            quota_text, period_text = _read(self.dirs["unified"] / "cpu.max").split()
            mem_text = _read(self.dirs["unified"] / "memory.max").strip()
            cpu = (None if quota_text == "max" else
                   round(int(quota_text) * 1000 / int(period_text)))
            return cpu, int(period_text), None if mem_text == "max" else int(mem_text) // MIB
        d = self.dirs["cpu"]
        quota = int(_read(d / "cpu.cfs_quota_us"))
        period = int(_read(d / "cpu.cfs_period_us"))
        mem = int(_read(self.dirs["memory"] / "memory.limit_in_bytes"))
        return (None if quota < 0 else round(quota * 1000 / period), period,
                None if mem >= _UNLIMITED_V1 else mem // MIB)

    # ------------------------------------------------------------------ processes

    def _procs_files(self) -> list[Path]:
        return [d / "cgroup.procs" for d in self.dirs.values()]

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """``argv`` prefixed by a shell that moves itself into this group and then ``exec``s
        the command, so the command and all its children start inside the group (exit
        status 97 if joining failed)."""
        joins = " && ".join(f"echo $$ > {shlex.quote(str(p))}" for p in self._procs_files())
        return ["/bin/sh", "-c", f'{{ {joins}; }} || exit 97; exec "$@"', "sh", *argv]

    def add(self, pid: int) -> None:
        """Move process ``pid`` (and, in v2, its threads) into this group."""
        for p in self._procs_files():
            _write(p, str(pid))

    def pids(self) -> list[int]:
        """Processes in the group (union over hierarchies; [] when already removed)."""
        out: set[int] = set()
        for p in self._procs_files():
            try:
                out.update(int(x) for x in p.read_text().split())
            except OSError:
                continue
        return sorted(out)

    def kill(self, timeout_s: float = 10.0) -> None:
        """SIGKILL every process in the group and wait until it is empty.

        Raises:
            CgroupError: processes remain after ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                except PermissionError as exc:
                    raise CgroupError(f"cannot kill process {pid} in {self.name}: {exc}") from exc
            if time.monotonic() > deadline:
                raise CgroupError(f"processes {pids} remain in cgroup {self.name}")
            time.sleep(0.05)

    def destroy(self, timeout_s: float = 10.0) -> None:
        """Kill what is left in the group and remove its directories (idempotent)."""
        self.kill(timeout_s)
        deadline = time.monotonic() + timeout_s
        for path in self.dirs.values():
            while path.exists():
                try:
                    path.rmdir()
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if time.monotonic() > deadline:
                        raise CgroupError(f"cannot remove cgroup {path}: {exc}") from exc
                    time.sleep(0.05)

    def exists(self) -> bool:
        """True while any of the group's directories exists."""
        return any(p.exists() for p in self.dirs.values())

    def __enter__(self) -> Cgroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    # ------------------------------------------------------------------ counters

    def reset_peak(self) -> None:
        """Start a new memory-peak window (v1 ``max_usage_in_bytes``; v2 ``memory.peak``
        where the kernel allows writing it, else the peak stays since creation)."""
        if self.version == 1:
            _write(self.dirs["memory"] / "memory.max_usage_in_bytes", "0")
            return
        peak = self.dirs["unified"] / "memory.peak"
        if peak.exists():
            with contextlib.suppress(OSError):
                peak.write_text("0")

    def stats(self) -> CgroupStats:
        """The group's counters now (see :class:`CgroupStats`)."""
        if self.version == 2:
            return self._stats_v2()
        cpu = _keyed(_read(self.dirs["cpu"] / "cpu.stat"))
        mem = self.dirs["memory"]
        mstat = _keyed(_read(mem / "memory.stat"))
        oom = _keyed(_read(mem / "memory.oom_control"))
        usage = int(_read(mem / "memory.usage_in_bytes"))
        inactive = mstat.get("total_inactive_file", mstat.get("inactive_file", 0))
        return CgroupStats(
            cpu_usage_s=int(_read(self.dirs["cpuacct"] / "cpuacct.usage")) / 1e9,
            nr_periods=cpu.get("nr_periods", 0),
            nr_throttled=cpu.get("nr_throttled", 0),
            throttled_s=cpu.get("throttled_time", 0) / 1e9,
            memory_usage_mib=usage / MIB,
            memory_peak_mib=int(_read(mem / "memory.max_usage_in_bytes")) / MIB,
            memory_cache_mib=mstat.get("cache", 0) / MIB if "cache" in mstat else None,
            memory_working_set_mib=max(0, usage - inactive) / MIB,
            oom_kills=oom.get("oom_kill", 0),
        )

    def _stats_v2(self) -> CgroupStats:
        d = self.dirs["unified"]
        cpu = _keyed(_read(d / "cpu.stat"))
        mstat = _keyed(_read(d / "memory.stat"))
        events = _keyed(_read(d / "memory.events"))
        peak = d / "memory.peak"
        usage = int(_read(d / "memory.current"))
        return CgroupStats(
            cpu_usage_s=cpu.get("usage_usec", 0) / 1e6,
            nr_periods=cpu.get("nr_periods", 0),
            nr_throttled=cpu.get("nr_throttled", 0),
            throttled_s=cpu.get("throttled_usec", 0) / 1e6,
            memory_usage_mib=usage / MIB,
            memory_peak_mib=int(_read(peak)) / MIB if peak.exists() else None,
            memory_cache_mib=mstat["file"] / MIB if "file" in mstat else None,
            memory_working_set_mib=max(0, usage - mstat.get("inactive_file", 0)) / MIB,
            oom_kills=events.get("oom_kill", 0),
        )
