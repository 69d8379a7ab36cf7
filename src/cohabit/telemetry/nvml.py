"""Per-GPU and per-process GPU readings through NVML (pynvml from nvidia-ml-py), and the
Prometheus collector the ``cohabit agent`` serves.

NVML calls used (NVIDIA Management Library API): ``nvmlInit``, ``nvmlDeviceGetCount``,
``nvmlDeviceGetHandleByIndex``, ``nvmlDeviceGetName``, ``nvmlDeviceGetUUID``,
``nvmlDeviceGetUtilizationRates`` (``.gpu``/``.memory`` %, over the driver's sample period),
``nvmlDeviceGetMemoryInfo`` (bytes), ``nvmlDeviceGetComputeRunningProcesses`` (``.pid``,
``.usedGpuMemory`` bytes) and ``nvmlDeviceGetProcessUtilization`` (per-process ``.smUtil``).

Without a driver (``nvmlInit`` raising ``NVMLError_LibraryNotFound``/``DriverNotLoaded``) the
reader logs one clear line, reports ``available = False`` and returns no readings; the agent
keeps serving ``cohabit_nvml_up 0``. Processes are mapped to pods through
``/proc/<pid>/cgroup`` (the kubepods cgroup path carries the pod UID).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = [
    "GpuReading",
    "NvmlCollector",
    "NvmlReader",
    "ProcessReading",
    "pod_uid_for_pid",
]

log = logging.getLogger(__name__)
MIB = 2**20
_POD_UID = re.compile(
    r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})"
)


@dataclass(frozen=True, slots=True)
class ProcessReading:
    """One process on one GPU: pid, GPU memory (MiB), SM utilisation (%, -1 unknown), pod UID."""

    pid: int
    memory_used_mib: float
    sm_util_pct: float = -1.0
    pod_uid: str = ""


@dataclass(frozen=True, slots=True)
class GpuReading:
    """One GPU: index, model name, UUID, utilisation (%), memory (MiB) and its processes."""

    index: int
    name: str
    uuid: str
    gpu_util_pct: float
    memory_util_pct: float
    memory_total_mib: float
    memory_used_mib: float
    processes: tuple[ProcessReading, ...] = ()


def pod_uid_for_pid(pid: int, proc_root: Path | str = "/proc") -> str:
    """The Kubernetes pod UID owning ``pid`` from its cgroup path ('' when not in a pod).

    Handles cgroupfs (``/kubepods/burstable/pod<uid>/...``) and systemd
    (``kubepods-burstable-pod<uid_with_underscores>.slice``) layouts.
    """
    try:
        text = (Path(proc_root) / str(pid) / "cgroup").read_text()
    except OSError:
        return ""
    match = _POD_UID.search(text)
    return match.group(1).replace("_", "-") if match else ""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class NvmlReader:
    """Reads every GPU through NVML.

    Args:
        nvml: the ``pynvml`` module, or an object with the same functions (tests pass a
            replay of recorded readings).
        proc_root: where ``/proc`` is (the DaemonSet mounts the host's).
    """

    def __init__(self, nvml: ModuleType | Any | None = None,
                 proc_root: Path | str = "/proc") -> None:
        if nvml is None:
            import pynvml  # nvidia-ml-py

            nvml = pynvml
        self.nvml: ModuleType | Any = nvml
        self.proc_root = proc_root
        self.available = False
        self.reason = ""
        self._last_seen: dict[int, int] = {}
        try:
            nvml.nvmlInit()
            self.available = True
        except nvml.NVMLError as exc:
            self.reason = f"{type(exc).__name__}: {exc}"
            log.warning("NVML unavailable (%s): no NVIDIA driver on this node? Serving "
                        "cohabit_nvml_up 0 and no GPU readings.", self.reason)

    def read(self) -> list[GpuReading]:
        """One reading per GPU (empty when NVML is unavailable).

        A device whose calls fail is logged and skipped; per-process utilisation is optional
        (``-1`` when the driver does not support it).
        """
        if not self.available:
            return []
        nv = self.nvml
        out = []
        for index in range(nv.nvmlDeviceGetCount()):
            try:
                handle = nv.nvmlDeviceGetHandleByIndex(index)
                util = nv.nvmlDeviceGetUtilizationRates(handle)
                mem = nv.nvmlDeviceGetMemoryInfo(handle)
                procs = nv.nvmlDeviceGetComputeRunningProcesses(handle)
                name = _text(nv.nvmlDeviceGetName(handle))
                uuid = _text(nv.nvmlDeviceGetUUID(handle))
            except nv.NVMLError as exc:
                log.warning("GPU %d: NVML read failed: %s", index, exc)
                continue
            sm: dict[int, float] = {}
            try:
                samples = nv.nvmlDeviceGetProcessUtilization(handle, self._last_seen.get(index, 0))
                for s in samples:
                    sm[int(s.pid)] = float(s.smUtil)
                    self._last_seen[index] = max(self._last_seen.get(index, 0), int(s.timeStamp))
            except nv.NVMLError:
                pass  # not supported on every GPU/driver, or no samples yet
            processes = tuple(
                ProcessReading(
                    int(p.pid),
                    (p.usedGpuMemory or 0) / MIB,
                    sm.get(int(p.pid), -1.0),
                    pod_uid_for_pid(int(p.pid), self.proc_root),
                )
                for p in procs
            )
            out.append(GpuReading(index, name, uuid, float(util.gpu), float(util.memory),
                                  mem.total / MIB, mem.used / MIB, processes))
        return out

    def close(self) -> None:
        """Shut NVML down (if it was started)."""
        if self.available:
            self.nvml.nvmlShutdown()
            self.available = False


MIB = 2**20
"""Bytes per MiB (NVML reports MiB; the agent exports bytes)."""


class NvmlCollector(Collector):
    """prometheus-client collector: reads NVML at every scrape.

    Series (all gauges, label ``node`` plus), in Prometheus' base units (bytes; ratios 0..1
    instead of percent): ``cohabit_nvml_up``; ``cohabit_gpu_utilization_ratio``,
    ``cohabit_gpu_memory_utilization_ratio``, ``cohabit_gpu_memory_used_bytes``,
    ``cohabit_gpu_memory_total_bytes`` (``gpu``, ``uuid``, ``model``);
    ``cohabit_gpu_process_memory_used_bytes`` and ``cohabit_gpu_process_sm_utilization_ratio``
    (``gpu``, ``pid``, ``pod_uid``).
    """

    def __init__(self, reader: NvmlReader, node: str = "") -> None:
        self.reader = reader
        self.node = node

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("cohabit_nvml_up", "1 when NVML answered", labels=["node"])
        up.add_metric([self.node], 1.0 if self.reader.available else 0.0)
        yield up
        readings = self.reader.read()
        labels = ["node", "gpu", "uuid", "model"]
        fams = {
            "util": GaugeMetricFamily("cohabit_gpu_utilization_ratio",
                                      "GPU utilisation over the driver sample period, 0..1",
                                      labels=labels),
            "memutil": GaugeMetricFamily("cohabit_gpu_memory_utilization_ratio",
                                         "GPU memory bandwidth utilisation, 0..1", labels=labels),
            "used": GaugeMetricFamily("cohabit_gpu_memory_used_bytes", "GPU memory used, bytes",
                                      labels=labels),
            "total": GaugeMetricFamily("cohabit_gpu_memory_total_bytes", "GPU memory, bytes",
                                       labels=labels),
        }
        plabels = ["node", "gpu", "pid", "pod_uid"]
        pmem = GaugeMetricFamily("cohabit_gpu_process_memory_used_bytes",
                                 "GPU memory used by a process, bytes", labels=plabels)
        psm = GaugeMetricFamily("cohabit_gpu_process_sm_utilization_ratio",
                                "SM utilisation of a process, 0..1", labels=plabels)
        for r in readings:
            lv = [self.node, str(r.index), r.uuid, r.name]
            fams["util"].add_metric(lv, r.gpu_util_pct / 100)
            fams["memutil"].add_metric(lv, r.memory_util_pct / 100)
            fams["used"].add_metric(lv, r.memory_used_mib * MIB)
            fams["total"].add_metric(lv, r.memory_total_mib * MIB)
            for p in r.processes:
                pl = [self.node, str(r.index), str(p.pid), p.pod_uid]
                pmem.add_metric(pl, p.memory_used_mib * MIB)
                if p.sm_util_pct >= 0:
                    psm.add_metric(pl, p.sm_util_pct / 100)
        yield from fams.values()
        yield pmem
        yield psm
