"""A closed loop on one real database: a time-varying pgbench load, telemetry through a real
Prometheus, the online planner's decisions (:func:`cohabit.engine.dbonline.control_once`,
the code the operator runs), and an actuator changing the server's limits.

``control_once`` is one decision as the operator takes it: read the last window from
Prometheus, decide, carry the ``Resize`` out through the actuator (a refused or failed resize
leaves the allocation as it was). :func:`run_closed_loop` drives a load shape through the
database in segments (each segment one ``pgbench -R`` run at the shape's rate, its latencies
fed to the load generator's Prometheus histogram) while calling ``control_once`` every
``decision_s``, and returns what happened: per segment (latencies for SLO accounting), per
decision, and the cgroup's usage samples.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cohabit.actuator import Actuator
from cohabit.engine.dbonline import OnlineDatabasePlanner, control_once
from cohabit.profiling import DatabaseSession, UsageSampler
from cohabit.profiling.metrics import LoadMetrics
from cohabit.telemetry.dbsignals import DatabaseQueries, PrometheusDatabaseSignals

__all__ = ["ClosedLoopResult", "LoadShape", "run_closed_loop", "slo_minutes"]


@dataclass(frozen=True)
class LoadShape:
    """Offered load over time: ``rates[i]`` TPS from ``i * step_s`` seconds after the start.

    Raises (from ``__post_init__``):
        ValueError: empty, non-positive rates or step.
    """

    rates: tuple[float, ...]
    step_s: float

    def __post_init__(self) -> None:
        if not self.rates or self.step_s <= 0 or min(self.rates) <= 0:
            raise ValueError("a load shape needs positive rates and a positive step")

    @property
    def duration_s(self) -> float:
        """Length of the shape (s)."""
        return len(self.rates) * self.step_s


@dataclass
class ClosedLoopResult:
    """What a closed loop did.

    Attributes:
        segments: one row per pgbench segment: ``start``, ``end`` (s since start),
            ``rate_tps``, ``p99_ms``, ``tps``, ``cpu_milli``, ``memory_mib`` (limits in
            force at the segment's start); ``latencies`` holds each segment's completed
            latencies (ms) and ``late`` its infinitely late count, for SLO accounting.
        decisions: one row per decision (time, in-force and new allocation, kind, reason,
            confidence, outcome).
        usage: the cgroup's 1-s samples (:data:`cohabit.profiling.SAMPLE_COLUMNS`).
    """

    segments: pd.DataFrame
    decisions: pd.DataFrame
    usage: pd.DataFrame
    latencies: list[np.ndarray] = field(default_factory=list)


def run_closed_loop(session: DatabaseSession, actuator: Actuator,
                    planner: OnlineDatabasePlanner, source: PrometheusDatabaseSignals,
                    queries: DatabaseQueries, metrics: LoadMetrics, shape: LoadShape, *,
                    decision_s: float, latency_limit_ms: float, segment_s: float | None = None,
                    clock: Callable[[], float] = time.time,
                    log: Callable[[str], None] = print) -> ClosedLoopResult:
    """Drive ``shape`` through ``session``'s database for its whole duration while the
    planner decides every ``decision_s`` (the first decision after one window).

    Args:
        segment_s: length of one pgbench run (default: the shape's step).
        latency_limit_ms: pgbench ``-L``.
    """
    segment_s = segment_s or shape.step_s
    t0 = clock()
    segments: list[dict] = []
    latencies: list[np.ndarray] = []
    decisions: list[dict] = []
    stop = threading.Event()
    error: list[BaseException] = []

    def drive() -> None:
        try:
            while not stop.is_set():
                elapsed = clock() - t0
                if elapsed >= shape.duration_s:
                    return
                rate = shape.rates[min(len(shape.rates) - 1, int(elapsed // shape.step_s))]
                length = max(1.0, min(segment_s, shape.duration_s - elapsed))
                cpu, _, mem = session.server_cgroup.limits()
                metrics.offered.set(rate)
                run, lat = session.run_logged(length, rate_tps=rate,
                                              latency_limit_ms=latency_limit_ms)
                late = run.skipped + run.failed + run.unstarted
                metrics.observe(lat, late)
                latencies.append(np.concatenate([lat, np.full(late, np.inf)]))
                segments.append({"start": elapsed, "end": clock() - t0, "rate_tps": rate,
                                 "p99_ms": run.p99_ms, "tps": run.tps, "cpu_milli": cpu,
                                 "memory_mib": mem, "late": late})
        except BaseException as exc:  # reported by the main thread
            error.append(exc)

    with UsageSampler(session.server_cgroup, 1.0) as sampler:
        driver = threading.Thread(target=drive, name="load-driver", daemon=True)
        driver.start()
        try:
            next_decision = t0 + decision_s
            while driver.is_alive():
                time.sleep(max(0.0, min(1.0, next_decision - clock())))
                if error:
                    break
                now = clock()
                if now < next_decision:
                    continue
                next_decision += decision_s
                before = planner.current
                decision, result = control_once(planner, source, queries, actuator, now=now,
                                                window_s=decision_s)
                outcome = result.status if result is not None else "none"
                decisions.append({"time": now - t0, "cpu_before": before[0],
                                  "memory_before": before[1], "cpu_milli": planner.current[0],
                                  "memory_mib": planner.current[1], "kind": decision.kind,
                                  "confidence": decision.confidence,
                                  "peak_tps": decision.peak_tps, "outcome": outcome,
                                  "reason": decision.reason})
                if decision.changed:
                    log(f"[{now - t0:6.0f} s] {decision.kind} -> {planner.current[0]}m/"
                        f"{planner.current[1]}MiB ({outcome}): {decision.reason}")
        finally:
            stop.set()
            driver.join(timeout=segment_s + 120)
    if error:
        raise error[0]
    return ClosedLoopResult(pd.DataFrame(segments), pd.DataFrame(decisions), sampler.frame(),
                            latencies)


def slo_minutes(result: ClosedLoopResult, target_ms: float, minute_s: float = 60.0
                ) -> pd.DataFrame:
    """Per interval of ``minute_s`` (by segment start): the p99 of every transaction that
    started in it (completed latencies plus infinitely late ones) and whether it meets
    ``target_ms``.

    Returns:
        Columns ``minute``, ``transactions``, ``p99_ms``, ``met``.
    """
    rows = []
    seg = result.segments
    for minute, idx in seg.groupby((seg["start"] // minute_s).astype(int)).groups.items():
        pooled: Sequence[np.ndarray] = [result.latencies[i] for i in idx]
        values = np.concatenate(list(pooled)) if pooled else np.array([])
        p99 = float(np.quantile(values, 0.99, method="inverted_cdf")) if values.size else \
            float("nan")
        rows.append({"minute": int(minute), "transactions": int(values.size), "p99_ms": p99,
                     "met": bool(p99 <= target_ms)})
    return pd.DataFrame(rows)
