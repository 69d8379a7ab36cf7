"""Profiling a database's performance-vs-allocation curve and choosing its just-enough spec:
the chain profiling (measure) -> predictors (monotone curve, noise) -> planner (next point,
cheapest spec) -> actuator (cgroup limits), written out once.

``cohabit profile database`` and the benchmarks call :func:`profile_database`; nothing here
starts processes or reads a clock except through the session, actuator and ``clock`` it is
given.

Memory is changed with the server stopped: ``shared_buffers`` follows the memory limit
(25 %), which PostgreSQL only reads at start, and a limit cannot shrink below the shared
memory a running server holds. CPU quota changes are applied to the running server. After a
restart the cache is pre-read and the load runs ``warmup_seconds`` before measuring.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from cohabit.actuator import Actuator
from cohabit.engine.execute import execute_plan
from cohabit.model import OutcomeStatus, Resize, Resources
from cohabit.planner.dbspec import Choice, SpecSearch, Step
from cohabit.predictors.dbcurve import SUMMARY_COLUMNS, AllocationCurve
from cohabit.profiling import POINT_COLUMNS, DatabaseSession, ProfilingError

__all__ = [
    "ProfileResult", "ProfileSettings", "fit_curve", "measure_spec", "profile_database",
    "summarize",
]

Progress = Callable[[str, dict], None]
"""``progress(event, info)``: ``"load"`` (data loaded), ``"step"`` (a step starts: its
``Step``), ``"run"`` (a run finished: its row), ``"done"``."""


@dataclass(frozen=True)
class ProfileSettings:
    """How points are measured.

    Attributes:
        point_seconds: length of one run (s).
        warmup_seconds: load run (discarded) after each server restart (s).
        latency_limit_ms: pgbench ``-L``: later transactions are skipped and count as
            infinitely late; None = 10x the target (at least 1 s).
        period_us: CFS period (the kubelet's default 100,000 us).
        max_runs: hard bound on runs (the search normally ends far earlier).
        max_seconds: time budget of the whole profile, data load included: a step that
            would end past it is not started, and the choice is made from what was measured
            (``ProfileResult.stopped`` says so). None = no budget.
    """

    point_seconds: float = 10.0
    warmup_seconds: float = 5.0
    latency_limit_ms: float | None = None
    period_us: int = 100_000
    max_runs: int = 90
    max_seconds: float | None = 600.0

    def limit_ms(self, target_ms: float) -> float:
        """The latency limit used for a target."""
        if self.latency_limit_ms is not None:
            return self.latency_limit_ms
        return max(1000.0, 10.0 * target_ms)


@dataclass
class ProfileResult:
    """What a profile measured and chose.

    Attributes:
        points: every run (:data:`cohabit.profiling.POINT_COLUMNS` plus ``step``, ``phase``).
        summary: per allocation (:data:`cohabit.predictors.dbcurve.SUMMARY_COLUMNS`).
        choice: the planner's choice (``feasible`` False when no spec meets the target).
        steps: the search's steps, in order.
        curve: the fitted model (None when nothing was measured).
        load_seconds, data_mib: data load time (s) and database size (MiB).
        elapsed_s: wall time of the whole profile (s).
        stopped: why the loop ended (``"search complete"``, ``"max runs"``,
            ``"time budget"``).
    """

    points: pd.DataFrame
    summary: pd.DataFrame
    choice: Choice | None
    steps: list[Step] = field(default_factory=list)
    curve: AllocationCurve | None = None
    load_seconds: float = math.nan
    data_mib: float = math.nan
    elapsed_s: float = math.nan
    stopped: str = ""


def fit_curve(points: pd.DataFrame, ceiling_ms: float) -> AllocationCurve:
    """The :class:`AllocationCurve` of measured runs (``cpu_milli``, ``memory_mib``,
    ``p99_ms``).

    Raises:
        ValueError: no runs.
    """
    X = points[["cpu_milli", "memory_mib"]].to_numpy(float)
    return AllocationCurve(ceiling_ms=ceiling_ms).fit(X, points["p99_ms"].to_numpy(float))


def summarize(points: pd.DataFrame, search: SpecSearch,
              ceiling_ms: float) -> tuple[pd.DataFrame, AllocationCurve | None]:
    """Per-allocation summary of ``points`` for ``search`` (empty when nothing measured)."""
    if points.empty:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS)), None
    curve = fit_curve(points, ceiling_ms)
    return curve.summary(search.target_p99_ms, search.confidence), curve


def profile_database(session: DatabaseSession, actuator: Actuator, search: SpecSearch,
                     settings: ProfileSettings = ProfileSettings(), *,
                     progress: Progress | None = None,
                     clock: Callable[[], float] = time.monotonic) -> ProfileResult:
    """Measure ``session``'s database at the allocations ``search`` asks for until it is
    done, and choose the spec.

    Args:
        session: an open :class:`~cohabit.profiling.DatabaseSession` (not yet prepared).
        actuator: sets the session's cgroup limits for ``Resize(workload=session.name)``.
        search: the planner's search (target, space, confidence, repeats, cost).
        settings: run lengths and limits.
        progress: optional callback (see :data:`Progress`).

    Returns:
        :class:`ProfileResult`; ``choice.feasible`` is False when no allowed spec meets the
        target (the best point found is in ``choice``).

    Raises:
        ProfilingError: the data load, the script or the server failed, or the actuator
            could not set a limit.
    """
    notify = progress or (lambda event, info: None)
    t0 = clock()
    limit_ms = settings.limit_ms(search.target_p99_ms)
    load_s = session.prepare()
    notify("load", {"seconds": load_s, "data_mib": session.data_mib})
    rows: list[dict[str, object]] = []
    steps: list[Step] = []
    current: tuple[int, int] | None = None
    stopped = "search complete"
    while True:
        points = pd.DataFrame(rows, columns=[*POINT_COLUMNS, "step", "phase"])
        summary, _ = summarize(points, search, limit_ms)
        step = search.next_step(summary)
        if step is None:
            break
        if len(rows) + step.runs > settings.max_runs:
            stopped = "max runs"
            break
        if settings.max_seconds is not None and _step_end(
                clock() - t0, step, current, settings) > settings.max_seconds:
            stopped = "time budget"
            break
        steps.append(step)
        notify("step", {"step": step, "index": len(steps)})
        current = _apply(session, actuator, step, current, settings, limit_ms)
        done = int((points["cpu_milli"].eq(step.cpu_milli)
                    & points["memory_mib"].eq(step.memory_mib)).sum()) if rows else 0
        for k in range(step.runs):
            row = session.measure(settings.point_seconds, latency_limit_ms=limit_ms,
                                  repeat=done + k)
            row.update(step=len(steps), phase=step.phase)
            rows.append(row)
            notify("run", row)
    points = pd.DataFrame(rows, columns=[*POINT_COLUMNS, "step", "phase"])
    summary, curve = summarize(points, search, limit_ms)
    choice = search.choose(summary) if not summary.empty else None
    result = ProfileResult(points, summary, choice, steps, curve, load_s, session.data_mib,
                           clock() - t0, stopped)
    notify("done", {"result": result})
    return result


def _step_end(elapsed: float, step: Step, current: tuple[int, int] | None,
              settings: ProfileSettings) -> float:
    """When ``step`` would end (s since the start): its runs, plus a restart and warm-up
    (about 10 s beyond the warm-up) when it changes memory."""
    restart = (current is None or current[1] != step.memory_mib)
    per_run = settings.point_seconds + 0.7  # pgbench start-up and log parsing
    return elapsed + step.runs * per_run + (settings.warmup_seconds + 10 if restart else 0)


def _apply(session: DatabaseSession, actuator: Actuator, step: Step,
           current: tuple[int, int] | None, settings: ProfileSettings,
           limit_ms: float) -> tuple[int, int]:
    """Bring the session to the step's allocation: memory changes restart the server (and
    warm it up), CPU changes are applied live."""
    target = (step.cpu_milli, step.memory_mib)
    if current == target:
        return target
    memory_changes = current is None or current[1] != step.memory_mib
    if memory_changes and session.server is not None and session.server.running():
        session.stop()
    resize = Resize(session.name, "postgres", Resources(step.cpu_milli, step.memory_mib),
                    reason=f"{step.phase}: {step.why}")
    outcome = execute_plan([resize], actuator).outcomes[0]
    if outcome.status not in (OutcomeStatus.DONE, OutcomeStatus.DRY_RUN):
        raise ProfilingError(f"could not set {step.cpu_milli}m/{step.memory_mib} MiB: "
                             f"{outcome.message}")
    if memory_changes:
        session.start(step.memory_mib)
        session.warm_up(settings.warmup_seconds, latency_limit_ms=limit_ms)
    return target


def measure_spec(session: DatabaseSession, actuator: Actuator, cpu_milli: int, memory_mib: int,
                 *, runs: int, seconds: float, latency_limit_ms: float,
                 warmup_seconds: float = 5.0, sample_interval_s: float | None = None,
                 label: str = "") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fresh runs at one spec, as a validation measures it: stop the server, set the limits
    through ``actuator``, start it sized for them, warm up, then ``runs`` runs of
    ``seconds``. The session must have been prepared (:meth:`DatabaseSession.prepare`).

    Args:
        sample_interval_s: also sample the cgroup's CPU rate and memory working set every
            this many seconds during the runs (cAdvisor-like), e.g. to feed a VPA.
        label: put in a ``label`` column of the rows.

    Returns:
        ``(runs frame with POINT_COLUMNS + label, usage samples (SAMPLE_COLUMNS; empty when
        not sampled))``.

    Raises:
        ProfilingError: the actuator could not set the limits or the server failed.
    """
    from cohabit.profiling import SAMPLE_COLUMNS, UsageSampler

    if session.server is not None and session.server.running():
        session.stop()
    resize = Resize(session.name, "postgres", Resources(cpu_milli, memory_mib),
                    reason=label or "validation")
    outcome = execute_plan([resize], actuator).outcomes[0]
    if outcome.status not in (OutcomeStatus.DONE, OutcomeStatus.DRY_RUN):
        raise ProfilingError(f"could not set {cpu_milli}m/{memory_mib} MiB: {outcome.message}")
    session.start(memory_mib)
    session.warm_up(warmup_seconds, latency_limit_ms=latency_limit_ms)
    rows = []
    samples = pd.DataFrame(columns=list(SAMPLE_COLUMNS))
    if sample_interval_s:
        with UsageSampler(session.server_cgroup, sample_interval_s) as sampler:
            for k in range(runs):
                rows.append(session.measure(seconds, latency_limit_ms=latency_limit_ms,
                                            repeat=k))
        samples = sampler.frame()
    else:
        for k in range(runs):
            rows.append(session.measure(seconds, latency_limit_ms=latency_limit_ms, repeat=k))
    frame = pd.DataFrame(rows, columns=list(POINT_COLUMNS))
    frame["label"] = label
    return frame, samples
