"""The online capacity planner's decision for a running database (URSA's online search).

URSA (Zheng, Chen et al., ICPP 2020, arXiv 1912.11963) adjusts a running database's spec
online: it lowers the allocation step by step while the performance target holds and rolls
back as soon as it is violated. :func:`decide` is that rule, pure (no I/O, no clock), one call
per decision window:

1. **No data** (p99 or offered load missing): hold, low confidence.
2. **Violation** (the window's p99 above the target):

   * *starved* (CPU: throttled in more than ``throttle_starved`` of its CFS periods or using
     at least ``cpu_busy`` of its quota; memory: working set at ``mem_full`` of its limit):
     **back off at once** to the last allocation known to meet the target (or by
     ``backoff`` x when there is none), capped at the bounds;
   * *not starved*: hold -- more CPU or memory would not help (slow because busy, or a
     neighbour, or the disk): said in the reason.

3. **Target met**: with a confident model (``confidence >= min_confidence``), the
   *recommendation* is the cheapest allocation on the grid whose predicted p99 quantile at the
   forecast peak load meets the target. Above the current allocation: step up to it at once
   (the load is rising). Below: step down toward it by at most ``step_down`` per resource
   and decision, and only ``settle_windows`` decisions after the last change (so the model
   sees the new point before going further). Without a confident model: hold.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cohabit.planner.dbspec import CostWeights

__all__ = ["Observation", "OnlineDecision", "OnlineSettings", "decide", "recommend"]

Predict = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""``predict(cpu_milli, memory_mib, load_tps) -> p99 quantile (ms)``, elementwise over
equal-length arrays."""


@dataclass(frozen=True)
class OnlineSettings:
    """Bounds and step rules of the online search (see the module docstring).

    Raises (from ``__post_init__``):
        ValueError: inverted bounds, a step outside (0, 1), a back-off <= 1.
    """

    target_p99_ms: float
    cpu_lo: int = 100
    cpu_hi: int = 4000
    mem_lo: int = 128
    mem_hi: int = 8192
    step_down: float = 0.15
    backoff: float = 1.5
    settle_windows: int = 2
    min_confidence: float = 0.6
    throttle_starved: float = 0.05
    cpu_busy: float = 0.9
    mem_full: float = 0.95
    grid_step: float = 0.05
    cost: CostWeights = CostWeights()

    def __post_init__(self) -> None:
        if not (self.target_p99_ms > 0 and math.isfinite(self.target_p99_ms)):
            raise ValueError(f"target must be a positive number of ms, got {self.target_p99_ms}")
        if not (0 < self.cpu_lo <= self.cpu_hi and 0 < self.mem_lo <= self.mem_hi):
            raise ValueError("bounds must satisfy 0 < lo <= hi")
        if not 0 < self.step_down < 1 or not 0 < self.grid_step < 1:
            raise ValueError("step_down and grid_step must be in (0, 1)")
        if self.backoff <= 1:
            raise ValueError(f"backoff must be > 1, got {self.backoff}")

    def clamp(self, cpu: float, mem: float) -> tuple[int, int]:
        """``(cpu, mem)`` rounded (10 m, 1 MiB) and limited to the bounds."""
        c = int(round(min(self.cpu_hi, max(self.cpu_lo, cpu)) / 10.0) * 10)
        m = int(round(min(self.mem_hi, max(self.mem_lo, mem))))
        return max(self.cpu_lo, min(self.cpu_hi, c)), m


@dataclass(frozen=True)
class Observation:
    """One decision window of telemetry (NaN = missing): p99 (ms), offered and served load
    (TPS), CPU used (millicores), throttled share of CFS periods, memory working set (MiB),
    buffer hit ratio."""

    p99_ms: float
    offered_tps: float
    tps: float = math.nan
    cpu_milli: float = math.nan
    throttled_ratio: float = math.nan
    memory_mib: float = math.nan
    hit_ratio: float = math.nan


@dataclass(frozen=True)
class OnlineDecision:
    """What to do now.

    Attributes:
        cpu_milli, memory_mib: the allocation to be in force after this decision.
        kind: ``"hold"``, ``"step-down"``, ``"step-up"``, ``"back-off"`` or ``"no-data"``.
        reason: one sentence for status and logs.
        confidence: the model's confidence at the forecast peak (0 without a model).
        recommended: the model's cheapest meeting allocation, or None.
        peak_tps: forecast peak offered load used.
    """

    cpu_milli: int
    memory_mib: int
    kind: str
    reason: str
    confidence: float = 0.0
    recommended: tuple[int, int] | None = None
    peak_tps: float = math.nan

    @property
    def changed(self) -> bool:
        """True for decisions that change the allocation."""
        return self.kind in ("step-down", "step-up", "back-off")


def recommend(predict: Predict, load_tps: float, settings: OnlineSettings,
              memory_levels: tuple[int, ...]) -> tuple[int, int] | None:
    """The cheapest ``(cpu, mem)`` on the grid (CPU geometric ``grid_step`` apart, memory at
    ``memory_levels``) whose predicted p99 at ``load_tps`` meets the target; None when none
    does."""
    k = max(1, math.ceil(math.log(settings.cpu_hi / settings.cpu_lo)
                         / math.log1p(settings.grid_step)))
    cpus = np.unique(np.round(np.geomspace(settings.cpu_lo, settings.cpu_hi, k + 1) / 10) * 10)
    best: tuple[float, int, int] | None = None
    for mem in sorted(set(memory_levels)):
        p99 = np.asarray(predict(cpus, np.full(cpus.size, float(mem)),
                                 np.full(cpus.size, float(load_tps))), dtype=float)
        meets = np.flatnonzero(p99 <= settings.target_p99_ms)
        if meets.size:  # ascending CPU: the first that meets is this level's cheapest
            cpu = int(cpus[meets[0]])
            cost = settings.cost.cost(cpu, mem)
            if best is None or cost < best[0]:
                best = (cost, cpu, int(mem))
    return None if best is None else settings.clamp(best[1], best[2])


def decide(current: tuple[int, int], obs: Observation, settings: OnlineSettings, *,
           predict: Predict | None = None, confidence: float = 0.0,
           peak_tps: float = math.nan, last_good: tuple[int, int] | None = None,
           windows_since_change: int = 10**6,
           memory_levels: tuple[int, ...] = ()) -> OnlineDecision:
    """One decision of the online search (module docstring).

    Args:
        current: ``(cpu_milli, memory_mib)`` in force.
        obs: the last window.
        predict: the fitted model's p99 quantile, or None when there is none.
        confidence: the model's confidence at ``peak_tps``.
        peak_tps: forecast peak offered load over the next horizon.
        last_good: the last allocation that met the target before a step down.
        windows_since_change: decisions since the allocation last changed.
        memory_levels: memory values the recommendation may choose (default: current).
    """
    cpu, mem = current
    target = settings.target_p99_ms
    if math.isnan(obs.p99_ms) or math.isnan(obs.offered_tps):
        return OnlineDecision(cpu, mem, "no-data", "no p99 or offered-load sample in the "
                              "window: holding", 0.0, None, peak_tps)
    if obs.p99_ms > target:
        return _violation(current, obs, settings, last_good, confidence, peak_tps)
    if predict is None or confidence < settings.min_confidence or math.isnan(peak_tps):
        return OnlineDecision(cpu, mem, "hold", f"p99 {obs.p99_ms:.1f} ms meets {target:g} ms;"
                              f" model confidence {confidence:.2f} < "
                              f"{settings.min_confidence:.2f}: holding", confidence, None,
                              peak_tps)
    levels = memory_levels or (mem,)
    rec = recommend(predict, peak_tps, settings, levels)
    if rec is None:
        return OnlineDecision(cpu, mem, "hold", f"no allocation is predicted to meet "
                              f"{target:g} ms at {peak_tps:.0f} TPS: holding", confidence, None,
                              peak_tps)
    if rec[0] > cpu or rec[1] > mem:
        new = settings.clamp(max(rec[0], cpu), max(rec[1], mem))
        return OnlineDecision(*new, "step-up", f"forecast peak {peak_tps:.0f} TPS needs "
                              f"{rec[0]}m/{rec[1]}MiB (predicted p99 <= {target:g} ms)",
                              confidence, rec, peak_tps)
    if rec == (cpu, mem):
        return OnlineDecision(cpu, mem, "hold", f"at the recommendation {cpu}m/{mem}MiB for "
                              f"{peak_tps:.0f} TPS", confidence, rec, peak_tps)
    if windows_since_change < settings.settle_windows:
        return OnlineDecision(cpu, mem, "hold", f"settling after the last change "
                              f"({windows_since_change}/{settings.settle_windows} windows) "
                              f"before stepping toward {rec[0]}m/{rec[1]}MiB", confidence, rec,
                              peak_tps)
    floor = 1.0 - settings.step_down
    new = settings.clamp(max(rec[0], cpu * floor), max(rec[1], mem * floor))
    if new == (cpu, mem):
        return OnlineDecision(cpu, mem, "hold", f"at the recommendation {cpu}m/{mem}MiB",
                              confidence, rec, peak_tps)
    return OnlineDecision(*new, "step-down", f"p99 {obs.p99_ms:.1f} ms meets {target:g} ms "
                          f"and {rec[0]}m/{rec[1]}MiB is predicted to meet it at "
                          f"{peak_tps:.0f} TPS: one bounded step down", confidence, rec,
                          peak_tps)


def _violation(current: tuple[int, int], obs: Observation, settings: OnlineSettings,
               last_good: tuple[int, int] | None, confidence: float,
               peak_tps: float) -> OnlineDecision:
    cpu, mem = current
    throttled = obs.throttled_ratio if not math.isnan(obs.throttled_ratio) else 0.0
    busy = obs.cpu_milli / cpu if not math.isnan(obs.cpu_milli) and cpu > 0 else 0.0
    full = obs.memory_mib / mem if not math.isnan(obs.memory_mib) and mem > 0 else 0.0
    cpu_starved = throttled > settings.throttle_starved or busy >= settings.cpu_busy
    mem_starved = full >= settings.mem_full
    what = (f"p99 {obs.p99_ms:.1f} ms > {settings.target_p99_ms:g} ms with {throttled:.0%} of "
            f"periods throttled, CPU at {busy:.0%} of its quota, memory at {full:.0%} of its "
            f"limit")
    if not (cpu_starved or mem_starved):
        return OnlineDecision(cpu, mem, "hold", f"{what}: not starved (slow because busy or "
                              "disturbed), a resize would not help", confidence, None, peak_tps)
    new_cpu: float = cpu
    new_mem: float = mem
    if cpu_starved:
        new_cpu = max(cpu * settings.backoff, last_good[0] if last_good else 0)
    if mem_starved:
        new_mem = max(mem * settings.backoff, last_good[1] if last_good else 0)
    new = settings.clamp(new_cpu, new_mem)
    if new == (cpu, mem):
        return OnlineDecision(cpu, mem, "hold", f"{what}: starved but already at the bounds",
                              confidence, None, peak_tps)
    return OnlineDecision(*new, "back-off", f"{what}: back off at once to {new[0]}m/"
                          f"{new[1]}MiB", confidence, None, peak_tps)
