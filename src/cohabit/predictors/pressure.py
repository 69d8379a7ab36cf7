"""Measured interference *pressure*: how hard a workload loads each shared resource, from the
usage telemetry the operator already reads, relative to the capacity it shares.

Bubble-Up (Mars et al., "Bubble-Up: Increasing Utilization in Modern Warehouse Scale
Computers via Sensible Co-locations", MICRO 2011) characterises an application's *pressure*
on a shared resource by a score on a common scale (the size of the "bubble" that would cause
the same pressure), separately from its *sensitivity* to pressure; Paragon (Delimitrou &
Kozyrakis, ASPLOS 2013) likewise scores the interference a workload *causes* on each source
of interference as a fraction of that resource's capacity, and URSA keeps the same
pressure/sensitivity split. Where no probe run exists, the directly measurable proxy of that
score is the share of the shared capacity the workload occupies:

=============  ==========================================  ===================================
key            usage column (telemetry)                     capacity (per sample)
=============  ==========================================  ===================================
``cpu``        ``cpu_milli`` (cAdvisor CPU rate x 1000)     the node's allocatable CPU milli
``memory``     ``memory_mib`` (working set)                 the node's allocatable memory MiB
``gpu_sm``     ``gpu_milli`` (``DCGM_FI_DEV_GPU_UTIL`` x    1000 per GPU (the utilisation is
               10)                                          per device, already a share)
``gpu_mem``    ``gpu_memory_mib`` (``DCGM_FI_DEV_FB_USED``)  the GPU's memory MiB
=============  ==========================================  ===================================

Per pod and timestamp, CPU and memory are summed over the pod's containers and the GPU
series are averaged over its devices; each sample is divided by its pod's capacity, and the
pressure is the mean over all samples of all pods (a sustained load, as a bubble is), clipped
to ``[0, 1]``. A component without samples or without a known capacity is *absent* (not 0)
and lowers the confidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cohabit.model import MILLI_PER_GPU

__all__ = ["PRESSURE_RESOURCES", "PodCapacity", "PressureEstimate", "measured_pressure"]

PRESSURE_RESOURCES = ("cpu", "memory", "gpu_sm", "gpu_mem")
"""Profile keys of the measured pressure, in report order."""

_COLUMN = {"cpu": "cpu_milli", "memory": "memory_mib", "gpu_sm": "gpu_milli",
           "gpu_mem": "gpu_memory_mib"}
_GPU = frozenset({"gpu_sm", "gpu_mem"})


@dataclass(frozen=True, slots=True)
class PodCapacity:
    """What one pod shares: its node's allocatable CPU and memory, its GPUs.

    Attributes:
        cpu_milli: node allocatable CPU, millicores (None or <= 0 = unknown).
        memory_mib: node allocatable memory, MiB (None or <= 0 = unknown).
        gpus: GPUs the pod holds (0 = none; GPU components are then not expected unless
            GPU samples exist).
        gpu_memory_mib: memory of one of its GPUs, MiB (None or <= 0 = unknown).
    """

    cpu_milli: float | None = None
    memory_mib: float | None = None
    gpus: int = 0
    gpu_memory_mib: float | None = None

    def of(self, key: str) -> float | None:
        """Capacity one sample of ``key`` is divided by, or None when unknown."""
        if key == "gpu_sm":
            return float(MILLI_PER_GPU)
        value = {"cpu": self.cpu_milli, "memory": self.memory_mib,
                 "gpu_mem": self.gpu_memory_mib}[key]
        return float(value) if value is not None and value > 0 else None


@dataclass(frozen=True, slots=True)
class PressureEstimate:
    """A workload's measured pressure.

    Attributes:
        pressure: ``(key, value)`` for the measured components only, values in ``[0, 1]``
            (share of the shared capacity), in :data:`PRESSURE_RESOURCES` order.
        confidence: in ``[0, 1]``: share of the expected components measured, times
            ``min(1, samples / min_samples)`` of the thinnest measured component.
        missing: ``(key, reason)`` for expected components left absent.
        samples: per measured key, the number of pod-samples behind it.
    """

    pressure: tuple[tuple[str, float], ...] = ()
    confidence: float = 0.0
    missing: tuple[tuple[str, str], ...] = ()
    samples: tuple[tuple[str, int], ...] = ()


def measured_pressure(
    usage: pd.DataFrame,
    capacity: Mapping[str, PodCapacity],
    *,
    min_samples: int = 10,
    expect_gpu: bool | None = None,
) -> PressureEstimate:
    """Pressure per shared resource from usage rows (see the module docstring).

    Args:
        usage: rows with columns ``time``, ``pod``, ``container``, ``resource``, ``value``
            (``cohabit.telemetry.USAGE_COLUMNS``; ``resource`` in ``cpu_milli``,
            ``memory_mib``, ``gpu_milli``, ``gpu_memory_mib``); may be empty.
        capacity: pod name -> :class:`PodCapacity`; rows of pods not in it are not used
            (their capacity is unknown).
        min_samples: pod-samples a component needs for full confidence (>= 1).
        expect_gpu: whether ``gpu_sm``/``gpu_mem`` are expected (e.g. a GPU workload);
            None = when a pod holds a GPU or GPU samples exist.

    Returns:
        :class:`PressureEstimate`. CPU and memory are always expected; the GPU components
        as ``expect_gpu`` says.

    Raises:
        ValueError: a required column is missing or ``min_samples < 1``.

    Example: a pod on a 4,000-milli / 8,192-MiB node using 1,000 milli and 2,048 MiB has
    pressure ``cpu 0.25, memory 0.25``; without DCGM samples on a GPU pod, ``gpu_sm`` and
    ``gpu_mem`` are missing and the confidence is 0.5 (with enough samples).
    """
    if min_samples < 1:
        raise ValueError(f"min_samples must be >= 1, got {min_samples}")
    need = {"time", "pod", "resource", "value"}
    lacking = need - set(usage.columns)
    if lacking:
        raise ValueError(f"usage frame lacks column(s) {sorted(lacking)}")
    expected = ["cpu", "memory"]
    has_gpu_rows = bool(usage["resource"].isin(["gpu_milli", "gpu_memory_mib"]).any())
    if expect_gpu is None:
        expect_gpu = has_gpu_rows or any(c.gpus > 0 for c in capacity.values())
    if expect_gpu:
        expected += ["gpu_sm", "gpu_mem"]
    pressure: list[tuple[str, float]] = []
    missing: list[tuple[str, str]] = []
    samples: list[tuple[str, int]] = []
    for key in expected:
        rows = usage[(usage["resource"] == _COLUMN[key]) & usage["value"].notna()]
        if rows.empty:
            missing.append((key, f"no {_COLUMN[key]} samples"))
            continue
        agg = "mean" if key in _GPU else "sum"  # devices averaged, containers summed
        per = rows.groupby(["pod", "time"], sort=False)["value"].agg(agg).reset_index()
        caps = per["pod"].map(lambda p, k=key: (capacity[p].of(k) if p in capacity else None))
        known = caps.notna()
        if not known.any():
            missing.append((key, f"capacity unknown for {_COLUMN[key]}"))
            continue
        ratio = per.loc[known, "value"].to_numpy(float) / caps[known].to_numpy(float)
        value = float(np.clip(np.mean(ratio), 0.0, 1.0))
        pressure.append((key, round(value, 6)))
        samples.append((key, int(ratio.size)))
    confidence = 0.0
    if pressure:
        thinnest = min(n for _, n in samples)
        confidence = len(pressure) / len(expected) * min(1.0, thinnest / min_samples)
    return PressureEstimate(tuple(pressure), round(confidence, 4), tuple(missing),
                            tuple(samples))
