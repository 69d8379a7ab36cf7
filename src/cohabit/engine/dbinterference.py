"""Interference of databases, measured on real servers, and their fair placement: profiling
(stress-ng stressors and probes, pgbench runs) -> predictors (pressure and sensitivity ->
``InterferenceProfile``) -> placement (the same ``Slowdown`` model and fair/LeastRequested
policies placement uses) -> actuator (a ``Bind`` confines a database to a "node"'s cpuset).

Databases are measured at their just-enough specs (CFS quota and memory limit set through
the actuator) and pinned to the same CPUs as their stressor or neighbour, so they compete
for the same cores. Every latency is pgbench's p99 from the scheduled start
(:mod:`cohabit.profiling.pgbench`).

**Drift-robust protocol.** The host's own load moves a solo p99 by 2-4x within minutes (the
first measurement of issue 11 on a shared host), so every contended run is *bracketed*: a
solo (or probe-alone) run right before it and right after it, and its reference is the
geometric mean of the two (:func:`bracketed`). Solo runs are shared between neighbouring
blocks of contended runs (``S [C C] S [C C] S``), so bracketing costs one run per block,
not one per contended run. Two databases that need solo runs at the same time run them in
parallel, one per "node" (one cpuset each), alternating which node each gets so a
difference between the CPUs cancels (:func:`solo_block`). Repeats are summarised by
medians.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import pandas as pd

from cohabit.actuator import Actuator
from cohabit.cgroup import CgroupTree
from cohabit.engine.execute import execute_plan
from cohabit.model import Bind, InterferenceProfile, OutcomeStatus, Resources
from cohabit.placement.fairness import (
    FairPlacement,
    NodeSlowdown,
    place_fair,
    place_fair_nodes,
    place_least_requested,
    predicted_np,
    unfairness,
)
from cohabit.placement.interference import Slowdown, pressure_sensitivity_slowdown
from cohabit.predictors.dbinterference import (
    SensitivityCurve,
    database_profile,
    node_slowdown,
    normalised_performance,
    pair_error,
    sensitivity_slope,
    slowdown,
)
from cohabit.profiling import DatabaseSession, PgbenchRun, ProfilingError
from cohabit.profiling.stress import STRESS_RESOURCES, Stressor, run_probe

__all__ = [
    "InterferenceSettings",
    "RunUsage",
    "bind_all",
    "bracketed",
    "calibrate_probes",
    "corun",
    "corun_usage",
    "curve_model",
    "geomean",
    "measure_interference",
    "measure_nodes",
    "measure_pairs",
    "measure_placement",
    "measure_pressures",
    "measure_sensitivity",
    "measured_unfairness",
    "place",
    "pair_model_on_nodes",
    "predict_nodes",
    "predict_pairs",
    "solo_block",
    "solo_cpu_demand",
]

Log = Callable[[str], None]
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class InterferenceSettings:
    """How interference is measured.

    Attributes:
        cpus: the CPUs databases, stressors and probes share (a cpuset, e.g. ``"1"``).
        resources: stressed resources (subset of ``cpu``, ``membw``, ``disk``).
        intensities: stressor intensities, cores of CFS quota.
        seconds: one pgbench run (s).
        probe_seconds: one probe run (s).
        probe_repeats: probe runs beside the database per resource, each bracketed by
            probe-alone runs (pressure = from their medians).
        pair_repeats: co-runs per database pair, each bracketed by solo runs.
        latency_limit_ms: pgbench ``-L``.
    """

    cpus: str = "1"
    resources: tuple[str, ...] = STRESS_RESOURCES
    intensities: tuple[float, ...] = (0.3, 0.8)
    seconds: float = 12.0
    probe_seconds: float = 8.0
    probe_repeats: int = 1
    pair_repeats: int = 1
    latency_limit_ms: float = 5000.0


def geomean(a: float, b: float) -> float:
    """Geometric mean of two positive numbers (``inf`` if either is ``inf``).

    Raises:
        ValueError: a value that is not > 0.
    """
    if not (a > 0 and b > 0):
        raise ValueError(f"values must be > 0, got {a}, {b}")
    if math.isinf(a) or math.isinf(b):
        return math.inf
    return math.sqrt(a * b)


def bracketed(solo: Callable[[], T], blocks: Sequence[Sequence[Callable[[], R]]]
              ) -> tuple[list[T], list[list[R]]]:
    """Run ``solo, block 1, solo, block 2, ..., solo``: every contended run sits between
    the solo run just before its block and the one just after.

    Returns:
        ``(solo results (len(blocks) + 1), results of every block)``; block ``i``'s runs are
        bracketed by ``solos[i]`` and ``solos[i + 1]``.
    """
    solos = [solo()]
    results = []
    for block in blocks:
        results.append([run() for run in block])
        solos.append(solo())
    return solos, results


def _run(session: DatabaseSession, settings: InterferenceSettings) -> PgbenchRun:
    return session.start_load(settings.seconds,
                              latency_limit_ms=settings.latency_limit_ms).wait()


def calibrate_probes(tree: CgroupTree, settings: InterferenceSettings,
                     log: Log = print) -> tuple[dict[str, float], pd.DataFrame]:
    """Each probe's sensitivity to its own stressor: the slope of its slowdown against the
    stressor intensity on the shared CPUs. Per resource: probe alone, beside the stressor at
    every intensity, alone again; each beside-run against the geometric mean of the two
    alone runs.

    Returns:
        ``(resource -> slowdown per stressor core, rows resource/intensity/probe_solo/
        probe_co/probe_solo_before/probe_solo_after)``.
    """
    rows = []
    slopes = {}
    for r in settings.resources:
        def alone(r: str = r) -> float:
            return run_probe(tree, r, settings.probe_seconds, cpus=settings.cpus)

        def beside(level: float, r: str = r) -> float:
            with Stressor(tree, r, level, cpus=settings.cpus):
                return run_probe(tree, r, settings.probe_seconds, cpus=settings.cpus)

        solos, (cos,) = bracketed(alone, [[functools.partial(beside, lv)
                                           for lv in settings.intensities]])
        ref = geomean(solos[0], solos[1])
        slows = []
        for level, co in zip(settings.intensities, cos, strict=True):
            rows.append({"resource": r, "intensity": level, "probe_solo": ref,
                         "probe_co": co, "probe_solo_before": solos[0],
                         "probe_solo_after": solos[1]})
            slows.append(max(0.0, 1.0 - float(co) / ref))
        slopes[r] = sensitivity_slope(settings.intensities, slows)
        log(f"probe {r}: alone {solos[0]:.1f}/{solos[1]:.1f}, slowdown "
            f"{[round(s, 3) for s in slows]} at {list(settings.intensities)} cores -> "
            f"{slopes[r]:.3f} per core")
    return slopes, pd.DataFrame(rows)


def _sensitivity_rows(session: DatabaseSession, tree: CgroupTree,
                      settings: InterferenceSettings, log: Log) -> list[dict]:
    """``W S [r1@i1 r1@i2] S [r2@i1 r2@i2] S ...``: one block per resource, after an unused
    warm-up run ``W``."""
    def beside(r: str, level: float) -> PgbenchRun:
        with Stressor(tree, r, level, cpus=settings.cpus):
            return _run(session, settings)

    blocks = [[lambda r=r, lv=lv: beside(r, lv) for lv in settings.intensities]
              for r in settings.resources]
    _run(session, settings)  # warm-up, not used: a database idle for minutes (checkpoint,
    # autovacuum, a cold cache after its move) served its first run up to 13x slower
    solos, results = bracketed(lambda: _run(session, settings), blocks)
    rows = []
    for i, (r, runs) in enumerate(zip(settings.resources, results, strict=True)):
        before, after = solos[i], solos[i + 1]
        for level, co in zip(settings.intensities, runs, strict=True):
            assert isinstance(co, PgbenchRun)
            rows.append({"resource": r, "intensity": level,
                         "p99_solo_ms": geomean(before.p99_ms, after.p99_ms),
                         "p99_ms": co.p99_ms, "p99_solo_before_ms": before.p99_ms,
                         "p99_solo_after_ms": after.p99_ms,
                         "tps_solo": (before.tps + after.tps) / 2, "tps": co.tps,
                         "load1": os.getloadavg()[0]})
            log(f"  {session.load.name} vs {r}@{level}: p99 {before.p99_ms:.1f}/"
                f"{after.p99_ms:.1f} -> {co.p99_ms:.1f} ms")
    return rows


def measure_pressures(sessions: Mapping[str, DatabaseSession], tree: CgroupTree,
                      settings: InterferenceSettings, log: Log = print) -> pd.DataFrame:
    """Pressure rows of every database (each already on ``settings.cpus``): per resource
    ``A [B db1] A [B db2] A ... A`` (``settings.probe_repeats`` rounds over the databases),
    the probe alone (``A``) or beside one database's load (``B``); the probe-alone runs are
    shared between neighbouring databases, since the probe alone does not depend on them.

    Returns:
        Rows ``workload``, ``resource``, ``probe_solo`` (geometric mean of the alone runs
        around), ``probe_co``, ``probe_solo_before``, ``probe_solo_after``, ``load1``.
    """
    rows = []
    for r in settings.resources:
        def beside(name: str, r: str = r) -> tuple[str, float]:
            load = sessions[name].start_load(settings.probe_seconds + 2,
                                             latency_limit_ms=settings.latency_limit_ms)
            try:
                return name, run_probe(tree, r, settings.probe_seconds, cpus=settings.cpus)
            finally:
                load.wait()

        blocks = [[functools.partial(beside, n)] for _ in range(settings.probe_repeats)
                  for n in sessions]
        solos, results = bracketed(
            functools.partial(run_probe, tree, r, settings.probe_seconds, cpus=settings.cpus),
            blocks)
        for i, ((name, co),) in enumerate(results):
            rows.append({"workload": name, "resource": r,
                         "probe_solo": geomean(solos[i], solos[i + 1]), "probe_co": co,
                         "probe_solo_before": solos[i], "probe_solo_after": solos[i + 1],
                         "load1": os.getloadavg()[0]})
            log(f"  probe {r} beside {name}: {solos[i]:.1f}/{solos[i + 1]:.1f} -> {co:.1f}")
    return pd.DataFrame(rows)


def measure_sensitivity(session: DatabaseSession, tree: CgroupTree,
                        settings: InterferenceSettings, log: Log = print) -> pd.DataFrame:
    """Sensitivity rows of one running database (on ``settings.cpus``): per resource a block
    of runs beside the stressor at each intensity, between solo runs shared by neighbouring
    blocks (``S [r1@i1 r1@i2] S [r2@i1 r2@i2] S ...``).

    Returns:
        Rows ``resource``, ``intensity``, ``p99_solo_ms`` (geometric mean of the solo runs
        around), ``p99_ms``, the two solo p99s, TPS and ``load1``.
    """
    return pd.DataFrame(_sensitivity_rows(session, tree, settings, log))


def measure_interference(session: DatabaseSession, tree: CgroupTree,
                         probe_sensitivity: Mapping[str, float],
                         settings: InterferenceSettings, log: Log = print
                         ) -> tuple[InterferenceProfile, pd.DataFrame, pd.DataFrame]:
    """Sensitivity and pressure of one running database (already at its spec, on
    ``settings.cpus``), bracketed as the module docstring says.

    Sensitivity: per resource a block of runs beside the stressor at each intensity,
    between solo runs. Pressure: per resource the probe beside the database's load, between
    probe-alone runs.

    Returns:
        ``(profile, sensitivity rows, pressure rows)``.
    """
    sens = measure_sensitivity(session, tree, settings, log)
    press = measure_pressures({session.load.name: session}, tree, settings, log)
    return database_profile(sens, press, probe_sensitivity), sens, press


@dataclass(frozen=True)
class RunUsage:
    """One pgbench run and the CPU its server used meanwhile.

    Attributes:
        run: the pgbench result.
        cpu_cores: the server cgroup's CPU usage (cpuacct / ``cpu.stat``) over the run's
            wall time, cores (CPU-seconds per second).
    """

    run: PgbenchRun
    cpu_cores: float


def corun_usage(sessions: Sequence[DatabaseSession], seconds: float,
                latency_limit_ms: float) -> list[RunUsage]:
    """Run every session's load at once for ``seconds``; one :class:`RunUsage` per
    session, its CPU usage read from the server's cgroup before and after."""
    start = [(s.server_cgroup.stats().cpu_usage_s, time.monotonic()) for s in sessions]
    procs = [s.start_load(seconds, latency_limit_ms=latency_limit_ms) for s in sessions]
    runs = [p.wait() for p in procs]
    out = []
    for s, run, (cpu0, t0) in zip(sessions, runs, start, strict=True):
        used = s.server_cgroup.stats().cpu_usage_s - cpu0
        out.append(RunUsage(run, max(0.0, used) / max(1e-9, time.monotonic() - t0)))
    return out


def corun(sessions: Sequence[DatabaseSession], seconds: float,
          latency_limit_ms: float) -> list[PgbenchRun]:
    """Run every session's load at once for ``seconds``; one result per session."""
    procs = [s.start_load(seconds, latency_limit_ms=latency_limit_ms) for s in sessions]
    return [p.wait() for p in procs]


def solo_block(sessions: Mapping[str, DatabaseSession], actuator: Actuator,
               nodes: Sequence[str], seconds: float, latency_limit_ms: float, *,
               flip: bool = False) -> dict[str, PgbenchRun]:
    """Every session's solo run: ``len(nodes)`` at a time, each alone on its own node
    (cpuset), the others idle; ``flip`` reverses which node each of a slot gets.

    Raises:
        ProfilingError: a bind failed.
    """
    block = _solo_usage(sessions, actuator, nodes, seconds, latency_limit_ms, flip=flip)
    return {n: u.run for n, u in block.items()}


def _solo_usage(sessions: Mapping[str, DatabaseSession], actuator: Actuator,
                nodes: Sequence[str], seconds: float, latency_limit_ms: float, *,
                flip: bool = False) -> dict[str, RunUsage]:
    """:func:`solo_block` with each run's CPU usage."""
    names = list(sessions)
    order = list(reversed(nodes)) if flip else list(nodes)
    out: dict[str, RunUsage] = {}
    for i in range(0, len(names), len(order)):
        slot = names[i:i + len(order)]
        bind_all(actuator, dict(zip(slot, order, strict=False)))
        runs = corun_usage([sessions[n] for n in slot], seconds, latency_limit_ms)
        out.update(zip(slot, runs, strict=True))
    return out


def _pair_row(victim: str, aggressor: str, before: PgbenchRun, after: PgbenchRun,
              co: PgbenchRun, repeat: int) -> dict:
    solo_p99 = geomean(before.p99_ms, after.p99_ms)
    return {"victim": victim, "aggressor": aggressor, "repeat": repeat,
            "p99_solo_ms": solo_p99, "p99_co_ms": co.p99_ms,
            "p99_solo_before_ms": before.p99_ms, "p99_solo_after_ms": after.p99_ms,
            "tps_solo": (before.tps + after.tps) / 2, "tps_co": co.tps,
            "slowdown": slowdown(solo_p99, co.p99_ms), "load1": os.getloadavg()[0]}


def measure_pairs(sessions: Mapping[str, DatabaseSession], actuator: Actuator,
                  pairs: Sequence[tuple[str, str]], settings: InterferenceSettings, *,
                  solo_nodes: Sequence[str], shared: str, log: Log = print) -> pd.DataFrame:
    """Measured slowdown of each database of each pair when the two share node ``shared``:
    ``S C S C ... S`` per pair (``settings.pair_repeats`` co-runs), the two solo runs of an
    ``S`` in parallel on ``solo_nodes`` (alternating nodes), each co-run against the
    geometric mean of the solo runs around it.

    Returns:
        One row per (victim, aggressor, repeat): p99 solo (reference, before, after) and
        co-run, TPS, ``slowdown = 1 - p99_solo / p99_co`` and the load average.
    """
    rows = []
    for a, b in pairs:
        flips = itertools.cycle((False, True))
        two = {a: sessions[a], b: sessions[b]}

        def solo(two: dict = two, flips=flips) -> dict[str, PgbenchRun]:
            return solo_block(two, actuator, solo_nodes, settings.seconds,
                              settings.latency_limit_ms, flip=next(flips))

        def co(a: str = a, b: str = b) -> list[PgbenchRun]:
            bind_all(actuator, {a: shared, b: shared})
            return corun([sessions[a], sessions[b]], settings.seconds,
                         settings.latency_limit_ms)

        solos, results = bracketed(solo, [[co]] * settings.pair_repeats)
        for k, (runs,) in enumerate(results):
            co_of = dict(zip((a, b), runs, strict=True))
            for v, g in ((a, b), (b, a)):
                rows.append(_pair_row(v, g, solos[k][v], solos[k + 1][v], co_of[v], k))
            log(f"pair {a}+{b} #{k}: {a} {rows[-2]['p99_solo_ms']:.1f}->"
                f"{co_of[a].p99_ms:.1f}, {b} {rows[-1]['p99_solo_ms']:.1f}->"
                f"{co_of[b].p99_ms:.1f}")
    return pd.DataFrame(rows)


def predict_pairs(profiles: Mapping[str, InterferenceProfile], measured: pd.DataFrame,
                  slowdown: Slowdown = pressure_sensitivity_slowdown) -> tuple[pd.DataFrame,
                                                                               dict]:
    """Predicted slowdown of each measured (victim, aggressor) pair next to the measured one
    (the median over the pair's repeats when there are several).

    Args:
        measured: rows ``victim``, ``aggressor``, ``slowdown`` (measured).

    Returns:
        ``(one row per ordered pair: victim, aggressor, slowdown (median), repeats,
        predicted, residual = slowdown - predicted; pair_error summary: n, mae, spearman,
        means)``.
    """
    out = (measured.groupby(["victim", "aggressor"], sort=False)["slowdown"]
           .agg(["median", "size"]).reset_index()
           .rename(columns={"median": "slowdown", "size": "repeats"}))
    out["predicted"] = [slowdown(profiles[v], profiles[a])
                        for v, a in zip(out["victim"], out["aggressor"], strict=True)]
    out["residual"] = out["slowdown"] - out["predicted"]
    return out, pair_error(out["predicted"], out["slowdown"])


def place(policy: str, order: Sequence[str], requests: Mapping[str, Resources],
          nodes: Mapping[str, Resources], profiles: Mapping[str, InterferenceProfile],
          slowdown: Slowdown = pressure_sensitivity_slowdown, *,
          residuals: Sequence[float] | None = None,
          node_model: NodeSlowdown | None = None) -> FairPlacement:
    """Workload -> node by ``"fair"`` (URSA-style, evidence-aware: ``residuals`` are the
    model's measured errors, see :func:`cohabit.placement.fairness.place_fair`) or
    ``"least-requested"``. With ``node_model`` (a node-level model, e.g.
    :func:`curve_model`), ``"fair"`` uses it and ``residuals`` are its errors on node
    co-runs (:func:`cohabit.placement.fairness.place_fair_nodes`); else the pair model
    ``slowdown`` over ``profiles``.

    Raises:
        ValueError: unknown policy, or a workload fits nowhere.
    """
    if policy == "fair" and node_model is not None:
        return place_fair_nodes(order, requests, nodes, node_model, residuals=residuals)
    if policy == "fair":
        return place_fair(order, requests, nodes, profiles, slowdown, residuals=residuals)
    if policy == "least-requested":
        lr = place_least_requested(order, requests, nodes)
        return FairPlacement(lr, lr, (), "LeastRequestedPriority")
    raise ValueError(f"unknown placement policy {policy!r}")


def bind_all(actuator: Actuator, assignment: Mapping[str, str]) -> None:
    """Carry out an assignment through the actuator (each database's cpuset).

    Raises:
        ProfilingError: a bind was not done.
    """
    actions = [Bind(pod, node, reason="fair placement") for pod, node in assignment.items()]
    for outcome in execute_plan(actions, actuator).outcomes:
        if outcome.status not in (OutcomeStatus.DONE, OutcomeStatus.DRY_RUN):
            raise ProfilingError(f"bind failed: {outcome.message}")


def measured_unfairness(p99_solo: Mapping[str, float], p99_co: Mapping[str, float]) -> float:
    """Unfairness (coefficient of variation of ``p99_solo / p99_co``) of measured runs."""
    values = [normalised_performance(p99_solo[k], p99_co[k]) for k in p99_co]
    if any(v == 0 for v in values) and statistics.fmean(values) == 0:
        return math.inf
    return unfairness(values)


def measure_placement(sessions: Mapping[str, DatabaseSession], actuator: Actuator,
                      placements: Mapping[str, Mapping[str, str]], *, solo_nodes:
                      Sequence[str], seconds: float, rounds: int, latency_limit_ms: float,
                      log: Log = print) -> pd.DataFrame:
    """Every database under each placement, all loads together, bracketed by solo blocks:
    ``S [p1 p2] S [p2 p1] S ...`` (the policies' order alternates per round), each
    database's solo reference for a round = geometric mean of the solo runs around it.

    Returns:
        One row per (round, policy, workload): node, p99 solo (reference) and co-run, TPS,
        ``np = p99_solo / p99_co``, the round's ``unfairness`` and the load average.
    """
    names = list(sessions)
    policies = list(placements)
    flips = itertools.cycle((False, True))

    def solo() -> dict[str, PgbenchRun]:
        block = solo_block(sessions, actuator, solo_nodes, seconds, latency_limit_ms,
                           flip=next(flips))
        log("solo " + ", ".join(f"{n} {r.p99_ms:.1f}" for n, r in block.items()))
        return block

    loads: list[float] = []  # the load average at the end of each co-run, in run order

    def together(policy: str) -> dict[str, PgbenchRun]:
        bind_all(actuator, placements[policy])
        runs = corun([sessions[n] for n in names], seconds, latency_limit_ms)
        loads.append(os.getloadavg()[0])
        return dict(zip(names, runs, strict=True))

    blocks = [[lambda p=p: together(p) for p in (policies if r % 2 == 0 else policies[::-1])]
              for r in range(rounds)]
    solos, results = bracketed(solo, blocks)
    rows = []
    ran = iter(loads)
    for r, block in enumerate(results):
        order = policies if r % 2 == 0 else policies[::-1]
        for policy, runs in zip(order, block, strict=True):
            load1 = next(ran)
            ref = {n: geomean(solos[r][n].p99_ms, solos[r + 1][n].p99_ms) for n in names}
            co = {n: runs[n].p99_ms for n in names}
            u = measured_unfairness(ref, co)
            log(f"round {r} {policy}: unfairness {u:.3f} "
                f"{ {n: round(v, 1) for n, v in co.items()} }")
            for n in names:
                run = runs[n]
                rows.append({"round": r, "policy": policy, "workload": n,
                             "node": placements[policy][n], "p99_solo_ms": ref[n],
                             "p99_ms": run.p99_ms,
                             "tps_solo": (solos[r][n].tps + solos[r + 1][n].tps) / 2,
                             "tps": run.tps, "np": normalised_performance(ref[n], run.p99_ms),
                             "unfairness": u, "load1": load1})
    return pd.DataFrame(rows)


def curve_model(curves: Mapping[str, SensitivityCurve], demand_cores: Mapping[str, float]
                ) -> NodeSlowdown:
    """The node-level model as a placement callable: ``(workload, co-runners) ->``
    :func:`cohabit.predictors.dbinterference.node_slowdown` of the workload's curve at the
    co-runners' summed demand (``demand_cores``: workload -> cores).

    Raises:
        KeyError: (when called) a workload without a curve or a co-runner without a demand.
    """
    def model(workload: str, co_runners: frozenset[str]) -> float:
        return node_slowdown(curves[workload], [demand_cores[c] for c in sorted(co_runners)])

    return model


def measure_nodes(sessions: Mapping[str, DatabaseSession], actuator: Actuator,
                  partitions: Sequence[Mapping[str, str]], settings: InterferenceSettings, *,
                  solo_nodes: Sequence[str], repeats: int, log: Log = print) -> pd.DataFrame:
    """Measured slowdown of every database in node co-runs: per partition (workload ->
    node, several databases per node, every node loaded at once) ``S C S C ... S``
    (``repeats`` co-runs), each co-run against the geometric mean of the solo runs around
    it (:func:`solo_block`: each database alone on a node, alternating nodes). The CPU
    usage of every run is read from the server's cgroup.

    Returns:
        One row per (partition, repeat, workload): ``partition``, ``repeat``, ``workload``,
        ``node``, ``co_runners`` (sorted, ``+``-joined), p99 solo (reference, before,
        after) and co-run, TPS, ``cpu_cores_solo`` (mean of the two solo runs),
        ``cpu_cores_co``, ``slowdown`` and the load average.

    Raises:
        ProfilingError: a bind failed.
    """
    rows = []
    flips = itertools.cycle((False, True))
    names = list(sessions)
    for k, partition in enumerate(partitions):
        def solo() -> dict[str, RunUsage]:
            return _solo_usage(sessions, actuator, solo_nodes, settings.seconds,
                               settings.latency_limit_ms, flip=next(flips))

        def co(partition: Mapping[str, str] = partition) -> dict[str, RunUsage]:
            bind_all(actuator, partition)
            runs = corun_usage([sessions[n] for n in names], settings.seconds,
                               settings.latency_limit_ms)
            return dict(zip(names, runs, strict=True))

        solos, results = bracketed(solo, [[co]] * repeats)
        for r, (runs,) in enumerate(results):
            for n in names:
                before, after, got = solos[r][n], solos[r + 1][n], runs[n]
                ref = geomean(before.run.p99_ms, after.run.p99_ms)
                co_runners = sorted(o for o in names if o != n
                                    and partition[o] == partition[n])
                rows.append({"partition": k, "repeat": r, "workload": n,
                             "node": partition[n], "co_runners": "+".join(co_runners),
                             "p99_solo_ms": ref, "p99_co_ms": got.run.p99_ms,
                             "p99_solo_before_ms": before.run.p99_ms,
                             "p99_solo_after_ms": after.run.p99_ms,
                             "tps_solo": (before.run.tps + after.run.tps) / 2,
                             "tps_co": got.run.tps,
                             "cpu_cores_solo": (before.cpu_cores + after.cpu_cores) / 2,
                             "cpu_cores_co": got.cpu_cores,
                             "slowdown": slowdown(ref, got.run.p99_ms),
                             "load1": os.getloadavg()[0]})
            log(f"partition {k} #{r}: " + ", ".join(
                f"{row['workload']}@{row['node']} {row['p99_solo_ms']:.1f}->"
                f"{row['p99_co_ms']:.1f}" for row in rows[-len(names):]))
    return pd.DataFrame(rows)


def solo_cpu_demand(measured: pd.DataFrame) -> dict[str, float]:
    """Each workload's CPU demand at its offered rate: the median ``cpu_cores_solo`` of its
    rows (from :func:`measure_nodes`), cores.

    Raises:
        ValueError: no ``workload`` / ``cpu_cores_solo`` column.
    """
    missing = {"workload", "cpu_cores_solo"} - set(measured.columns)
    if missing:
        raise ValueError(f"node co-run rows lack column(s) {sorted(missing)}")
    return {str(w): float(g.median())
            for w, g in measured.groupby("workload", sort=False)["cpu_cores_solo"]}


def predict_nodes(model: NodeSlowdown, measured: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """A node-level model's predicted slowdown of each measured (workload, co-runner set)
    beside the measured one (the median over repeats).

    Args:
        model: ``(workload, co-runners) -> slowdown``.
        measured: rows ``workload``, ``co_runners`` (``+``-joined), ``slowdown``.

    Returns:
        ``(one row per (workload, co_runners): slowdown (median), repeats, predicted,
        residual = slowdown - predicted; pair_error summary: n, mae, spearman, means)``.
    """
    out = (measured.groupby(["workload", "co_runners"], sort=False)["slowdown"]
           .agg(["median", "size"]).reset_index()
           .rename(columns={"median": "slowdown", "size": "repeats"}))
    out["predicted"] = [model(w, frozenset(c.split("+")) if c else frozenset())
                        for w, c in zip(out["workload"], out["co_runners"], strict=True)]
    out["residual"] = out["slowdown"] - out["predicted"]
    return out, pair_error(out["predicted"], out["slowdown"])


def pair_model_on_nodes(profiles: Mapping[str, InterferenceProfile],
                        slowdown: Slowdown) -> NodeSlowdown:
    """A pair model as a node-level model, composed as placement composes it
    (:func:`cohabit.placement.fairness.predicted_np`): ``1 - prod(1 - pair slowdown)``
    over the co-runners."""
    def model(workload: str, co_runners: frozenset[str]) -> float:
        node = {w: "node" for w in (workload, *sorted(co_runners))}
        return 1.0 - predicted_np(node, profiles, slowdown)[workload]

    return model
