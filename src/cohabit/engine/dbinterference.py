"""Interference of databases, measured on real servers, and their fair placement: profiling
(stress-ng stressors and probes, pgbench runs) -> predictors (pressure and sensitivity ->
``InterferenceProfile``) -> placement (the same ``Slowdown`` model and fair/LeastRequested
policies placement uses) -> actuator (a ``Bind`` confines a database to a "node"'s cpuset).

Databases are measured at their just-enough specs (CFS quota and memory limit set through
the actuator) and pinned to the same CPUs as their stressor or neighbour, so they compete
for the same cores. Every latency is pgbench's p99 from the scheduled start
(:mod:`cohabit.profiling.pgbench`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from cohabit.actuator import Actuator
from cohabit.cgroup import CgroupTree
from cohabit.model import Bind, InterferenceProfile, OutcomeStatus, Resources
from cohabit.placement.fairness import place_fair, place_least_requested, unfairness
from cohabit.placement.interference import Slowdown, pressure_sensitivity_slowdown
from cohabit.predictors.dbinterference import (
    database_profile,
    normalised_performance,
    pair_error,
    sensitivity_slope,
)
from cohabit.profiling import DatabaseSession, PgbenchRun, ProfilingError
from cohabit.profiling.stress import STRESS_RESOURCES, Stressor, run_probe

__all__ = [
    "InterferenceSettings",
    "bind_all",
    "calibrate_probes",
    "corun",
    "measure_interference",
    "measured_unfairness",
    "place",
    "predict_pairs",
]

Log = Callable[[str], None]


@dataclass(frozen=True)
class InterferenceSettings:
    """How interference is measured.

    Attributes:
        cpus: the CPUs databases, stressors and probes share (a cpuset, e.g. ``"1"``).
        resources: stressed resources (subset of ``cpu``, ``membw``, ``disk``).
        intensities: stressor intensities, cores of CFS quota.
        seconds: one pgbench run (s).
        probe_seconds: one probe run (s).
        probe_repeats: alternated (alone, beside) probe pairs per resource for pressure
            (their medians are used).
        latency_limit_ms: pgbench ``-L``.
    """

    cpus: str = "1"
    resources: tuple[str, ...] = STRESS_RESOURCES
    intensities: tuple[float, ...] = (0.3, 0.6, 0.9)
    seconds: float = 15.0
    probe_seconds: float = 8.0
    probe_repeats: int = 2
    latency_limit_ms: float = 5000.0


def _run(session: DatabaseSession, settings: InterferenceSettings) -> PgbenchRun:
    return session.start_load(settings.seconds,
                              latency_limit_ms=settings.latency_limit_ms).wait()


def calibrate_probes(tree: CgroupTree, settings: InterferenceSettings,
                     log: Log = print) -> tuple[dict[str, float], pd.DataFrame]:
    """Each probe's sensitivity to its own stressor: the slope of its slowdown against the
    stressor intensity on the shared CPUs.

    Returns:
        ``(resource -> slowdown per stressor core, rows resource/intensity/probe_solo/
        probe_co)``.
    """
    rows = []
    slopes = {}
    for r in settings.resources:
        slows = []
        for level in settings.intensities:
            solo = run_probe(tree, r, settings.probe_seconds, cpus=settings.cpus)
            with Stressor(tree, r, level, cpus=settings.cpus):
                co = run_probe(tree, r, settings.probe_seconds, cpus=settings.cpus)
            rows.append({"resource": r, "intensity": level, "probe_solo": solo,
                         "probe_co": co})
            slows.append(max(0.0, 1.0 - co / solo))
        slopes[r] = sensitivity_slope(settings.intensities, slows)
        log(f"probe {r}: slowdown {[round(s, 3) for s in slows]} at "
            f"{list(settings.intensities)} cores -> {slopes[r]:.3f} per core")
    return slopes, pd.DataFrame(rows)


def measure_interference(session: DatabaseSession, tree: CgroupTree,
                         probe_sensitivity: Mapping[str, float],
                         settings: InterferenceSettings, log: Log = print
                         ) -> tuple[InterferenceProfile, pd.DataFrame, pd.DataFrame]:
    """Sensitivity and pressure of one running database (already at its spec, on
    ``settings.cpus``).

    Sensitivity: for each resource and intensity, a solo run then a run beside the stressor
    (solo re-measured each time, so slow drift of the host's load cancels). Pressure: the
    probe alone, then the probe while the database serves its load.

    Returns:
        ``(profile, sensitivity rows, pressure rows)``.
    """
    sens_rows = []
    for r in settings.resources:
        for level in settings.intensities:
            solo = _run(session, settings)
            with Stressor(tree, r, level, cpus=settings.cpus):
                co = _run(session, settings)
            sens_rows.append({"resource": r, "intensity": level, "p99_solo_ms": solo.p99_ms,
                              "p99_ms": co.p99_ms, "tps_solo": solo.tps, "tps": co.tps})
            log(f"  {session.load.name} vs {r}@{level}: p99 {solo.p99_ms:.1f} -> "
                f"{co.p99_ms:.1f} ms")
    press_rows = []
    for r in settings.resources:
        for _ in range(settings.probe_repeats):  # alternated, so drift hits both sides
            alone = run_probe(tree, r, settings.probe_seconds, cpus=settings.cpus)
            load = session.start_load(settings.probe_seconds + 4,
                                      latency_limit_ms=settings.latency_limit_ms)
            try:
                beside = run_probe(tree, r, settings.probe_seconds, cpus=settings.cpus)
            finally:
                load.wait()
            press_rows.append({"resource": r, "probe_solo": alone, "probe_co": beside})
            log(f"  probe {r} beside {session.load.name}: {alone:.1f} -> {beside:.1f}")
    sens = pd.DataFrame(sens_rows)
    press = pd.DataFrame(press_rows)
    return database_profile(sens, press, probe_sensitivity), sens, press


def corun(sessions: Sequence[DatabaseSession], seconds: float,
          latency_limit_ms: float) -> list[PgbenchRun]:
    """Run every session's load at once for ``seconds``; one result per session."""
    procs = [s.start_load(seconds, latency_limit_ms=latency_limit_ms) for s in sessions]
    return [p.wait() for p in procs]


def predict_pairs(profiles: Mapping[str, InterferenceProfile], measured: pd.DataFrame,
                  slowdown: Slowdown = pressure_sensitivity_slowdown) -> tuple[pd.DataFrame,
                                                                               dict]:
    """Predicted slowdown of each measured (victim, aggressor) pair next to the measured one.

    Args:
        measured: rows ``victim``, ``aggressor``, ``slowdown`` (measured).

    Returns:
        ``(measured + predicted column, pair_error summary: n, mae, spearman, means)``.
    """
    out = measured.copy()
    out["predicted"] = [slowdown(profiles[v], profiles[a])
                        for v, a in zip(out["victim"], out["aggressor"], strict=True)]
    return out, pair_error(out["predicted"], out["slowdown"])


def place(policy: str, order: Sequence[str], requests: Mapping[str, Resources],
          nodes: Mapping[str, Resources], profiles: Mapping[str, InterferenceProfile],
          slowdown: Slowdown = pressure_sensitivity_slowdown) -> dict[str, str]:
    """Workload -> node by ``"fair"`` (URSA-style) or ``"least-requested"``.

    Raises:
        ValueError: unknown policy, or a workload fits nowhere.
    """
    if policy == "fair":
        return place_fair(order, requests, nodes, profiles, slowdown)
    if policy == "least-requested":
        return place_least_requested(order, requests, nodes)
    raise ValueError(f"unknown placement policy {policy!r}")


def bind_all(actuator: Actuator, assignment: Mapping[str, str]) -> None:
    """Carry out an assignment through the actuator (each database's cpuset).

    Raises:
        ProfilingError: a bind was not done.
    """
    actions = [Bind(pod, node, reason="fair placement") for pod, node in assignment.items()]
    for outcome in actuator.apply(actions):
        if outcome.status not in (OutcomeStatus.DONE, OutcomeStatus.DRY_RUN):
            raise ProfilingError(f"bind failed: {outcome.message}")


def measured_unfairness(p99_solo: Mapping[str, float], p99_co: Mapping[str, float]) -> float:
    """Unfairness (coefficient of variation of ``p99_solo / p99_co``) of measured runs."""
    values = [normalised_performance(p99_solo[k], p99_co[k]) for k in p99_co]
    if any(v == 0 for v in values) and statistics.fmean(values) == 0:
        return math.inf
    return unfairness(values)
