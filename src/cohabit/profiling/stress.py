"""stress-ng stressors and probes in cgroups of their own, for interference measurements.

A **stressor** loads one shared resource continuously, in a sibling cgroup of the database
(same cpuset, so it competes for the same cores), at an *intensity*: the CFS quota of its
cgroup in cores (0.3 = 300 m), so intensities of different resources are on one scale.
A **probe** is the same stress-ng worker run unthrottled for a fixed time; its throughput
(bogo operations per second, or MB/s for memory) drops when a neighbour loads the resource
it needs.

=========  ==============================================  =================================
resource   stress-ng worker                                probe throughput
=========  ==============================================  =================================
``cpu``    ``--cpu 1 --cpu-method matrixprod``             bogo ops/s (real time)
``membw``  ``--memrate 1 --memrate-bytes 64M`` (> LLC)     geometric mean of its MB/s rates
``disk``   ``--hdd 1 --hdd-bytes 16M --hdd-opts fsync``     bogo ops/s (real time)
=========  ==============================================  =================================

stress-ng comes from Debian's ``stress-ng`` package.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from cohabit.cgroup import Cgroup, CgroupTree
from cohabit.profiling.errors import PrerequisiteError, ProfilingError

__all__ = ["STRESS_RESOURCES", "Stressor", "find_stress_ng", "parse_probe", "run_probe"]

STRESS_RESOURCES = ("cpu", "membw", "disk")
"""Shared resources with a stressor and a probe (keys of an ``InterferenceProfile``)."""

_WORKER = {
    "cpu": ["--cpu", "1", "--cpu-method", "matrixprod"],
    "membw": ["--memrate", "1", "--memrate-bytes", "64M"],
    "disk": ["--hdd", "1", "--hdd-bytes", "16M", "--hdd-opts", "fsync"],
}
_STRESSOR_NAME = {"cpu": "cpu", "membw": "memrate", "disk": "hdd"}


def find_stress_ng() -> str:
    """Path of ``stress-ng``.

    Raises:
        PrerequisiteError: not installed (says how to install it).
    """
    path = shutil.which("stress-ng")
    if path is None:
        raise PrerequisiteError("stress-ng not found: install it (apt-get install stress-ng)")
    return path


def _argv(resource: str, workdir: Path, timeout_s: float | None) -> list[str]:
    if resource not in _WORKER:
        raise ValueError(f"unknown resource {resource!r}; known: {', '.join(_WORKER)}")
    argv = [find_stress_ng(), *_WORKER[resource], "--temp-path", str(workdir)]
    if timeout_s is not None:
        argv += ["--timeout", f"{int(math.ceil(timeout_s))}s", "--metrics-brief"]
    else:
        argv += ["--timeout", "0", "--quiet"]
    return argv


def parse_probe(resource: str, output: str) -> float:
    """Throughput of a finished probe from stress-ng's ``--metrics-brief`` output (see the
    module docstring for the unit per resource).

    Raises:
        ProfilingError: the metrics line is missing.
    """
    name = _STRESSOR_NAME[resource]
    if resource == "membw":
        rates = [float(m) for m in re.findall(rf"{name}\s+([0-9.]+) \S+ MB per sec", output)]
        if rates:
            return float(math.exp(sum(math.log(r) for r in rates if r > 0) / len(rates)))
    for line in output.splitlines():
        parts = line.split()
        if "metrc:" in parts and name in parts:
            nums = parts[parts.index(name) + 1:]
            if len(nums) >= 5:
                try:
                    return float(nums[4])  # bogo ops/s (real time)
                except ValueError:
                    continue
    raise ProfilingError(f"no {name} metrics in stress-ng output: {output.strip()[-300:]}")


def run_probe(tree: CgroupTree, resource: str, seconds: float, *, cpus: str | None = None,
              name: str = "probe") -> float:
    """Run the ``resource`` probe for ``seconds`` in a cgroup of its own (on ``cpus``) and
    return its throughput.

    Raises:
        PrerequisiteError: stress-ng missing. ProfilingError: it failed or said nothing.
    """
    with tree.create(f"{name}-{resource}", cpuset=cpus) as group, \
            tempfile.TemporaryDirectory(prefix="cohabit-stress-") as tmp:
        argv = group.wrap(_argv(resource, Path(tmp), seconds))
        try:
            out = subprocess.run(argv, capture_output=True, timeout=seconds + 60, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ProfilingError(f"stress-ng {resource} probe did not finish") from exc
        text = (out.stdout + out.stderr).decode(errors="replace")
        if out.returncode != 0:
            raise ProfilingError(f"stress-ng {resource} probe failed (exit {out.returncode}): "
                                 f"{text.strip()[-300:]}")
        return parse_probe(resource, text)


class Stressor:
    """A continuous stress-ng worker on ``resource`` at ``intensity`` cores of CFS quota, in
    a cgroup of its own on ``cpus``; a context manager (the worker and its cgroup are gone
    on exit).

    Raises (from ``__enter__``):
        PrerequisiteError: stress-ng missing. ValueError: bad resource or intensity.
    """

    def __init__(self, tree: CgroupTree, resource: str, intensity: float, *,
                 cpus: str | None = None, name: str = "stressor") -> None:
        if not 0.01 <= intensity <= 64:
            raise ValueError(f"intensity must be 0.01..64 cores, got {intensity}")
        if resource not in _WORKER:
            raise ValueError(f"unknown resource {resource!r}; known: {', '.join(_WORKER)}")
        self.tree = tree
        self.resource = resource
        self.intensity = intensity
        self.cpus = cpus
        self.name = name
        self.group: Cgroup | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Stressor:
        self.group = self.tree.create(f"{self.name}-{self.resource}", cpuset=self.cpus)
        try:
            self.group.set_cpu(int(round(self.intensity * 1000)))
            self._tmp = tempfile.TemporaryDirectory(prefix="cohabit-stress-")
            argv = self.group.wrap(_argv(self.resource, Path(self._tmp.name), None))
            self._proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.group is not None:
            self.group.destroy()
        if self._proc is not None:
            self._proc.wait(timeout=10)
        if self._tmp is not None:
            self._tmp.cleanup()
