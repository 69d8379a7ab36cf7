"""The online capacity planner of one database: telemetry window -> model -> decision ->
``Resize``. The operator (per ``DatabaseWorkload``) and the closed-loop benchmark call the
same :meth:`OnlineDatabasePlanner.step`; only their telemetry source and actuator differ.

Each step takes the signal frame of the last decision window
(:data:`cohabit.telemetry.dbsignals.DB_SIGNAL_COLUMNS`), reduces it to one
:class:`~cohabit.planner.dbonline.Observation` (the window's last p99 sample -- the p99 over
the window as the PromQL computes it --, the mean offered load, the mean throttled share,
...), appends ``(allocation in force, offered load, p99)`` to the history, refits the
monotone quantile model (:class:`cohabit.predictors.dbonline.LoadAwareCurve`) once enough
windows exist, forecasts the peak load (:func:`cohabit.predictors.dbonline.forecast_peak`)
and asks the planner (:func:`cohabit.planner.dbonline.decide`). Time is passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cohabit.actuator import Actuator
from cohabit.engine.execute import execute_plan
from cohabit.model import Outcome, OutcomeStatus, Resize, Resources
from cohabit.planner.dbonline import Observation, OnlineDecision, OnlineSettings, decide
from cohabit.predictors.dbonline import LoadAwareCurve, forecast_peak
from cohabit.telemetry.base import TelemetryUnavailable
from cohabit.telemetry.dbsignals import DatabaseQueries, PrometheusDatabaseSignals

__all__ = ["HISTORY_COLUMNS", "OnlineDatabasePlanner", "control_once", "observe"]

HISTORY_COLUMNS = ("time", "cpu_milli", "memory_mib", "offered_tps", "p99_ms",
                   "throttled_ratio", "decision", "reason")
"""One row per decision: the allocation in force during the window, the window's offered
load and p99, its throttled share, and the decision taken after it."""


def observe(signals: pd.DataFrame) -> Observation:
    """One :class:`Observation` from a window of signal rows (NaN where a signal is missing;
    an empty frame gives an all-NaN observation)."""
    def last(col: str) -> float:
        s = signals[col].dropna() if col in signals else pd.Series(dtype=float)
        return float(s.iloc[-1]) if len(s) else math.nan

    def mean(col: str) -> float:
        s = signals[col].dropna() if col in signals else pd.Series(dtype=float)
        return float(s.mean()) if len(s) else math.nan

    return Observation(p99_ms=last("p99_ms"), offered_tps=mean("offered_tps"),
                       tps=mean("tps"), cpu_milli=mean("cpu_milli"),
                       throttled_ratio=mean("throttled_ratio"), memory_mib=last("memory_mib"),
                       hit_ratio=mean("hit_ratio"))


@dataclass
class OnlineDatabasePlanner:
    """State and steps of the online planner for one database.

    Args:
        workload: the workload's name (the ``Resize`` target).
        settings: target, bounds and step rules.
        current: ``(cpu_milli, memory_mib)`` in force at the start.
        horizon_s: how far ahead the peak load is forecast (s).
        lookback_s: load history the forecast looks at (s).
        min_windows_to_fit: windows before a model is fitted.
        full_confidence_windows: windows for the model's full confidence.
        quantile: the p99 quantile the model predicts.
        container: container name in ``Resize`` actions.
    """

    workload: str
    settings: OnlineSettings
    current: tuple[int, int]
    horizon_s: float = 300.0
    lookback_s: float = 600.0
    min_windows_to_fit: int = 6
    full_confidence_windows: int = 20
    quantile: float = 0.9
    container: str = "postgres"
    history: list[dict] = field(default_factory=list)
    last_good: tuple[int, int] | None = None
    windows_since_change: int = 10**6
    model: LoadAwareCurve | None = None

    def step(self, signals: pd.DataFrame, now: float) -> OnlineDecision:
        """Decide after one window; updates the state as if the decision were carried out
        (call :meth:`rejected` if the actuator refused it)."""
        obs = observe(signals)
        in_force = self._in_force(signals)
        self.model, confidence, peak = self._fit(obs, now)
        predict = None
        if self.model is not None:
            model = self.model

            def predict(cpu: np.ndarray, mem: np.ndarray, load: np.ndarray) -> np.ndarray:
                return model.predict(np.column_stack([cpu, mem, load]))

        decision = decide(in_force, obs, self.settings, predict=predict,
                          confidence=confidence, peak_tps=peak, last_good=self.last_good,
                          windows_since_change=self.windows_since_change,
                          memory_levels=self._memory_levels(in_force[1]))
        self.history.append({"time": now, "cpu_milli": in_force[0], "memory_mib": in_force[1],
                             "offered_tps": obs.offered_tps, "p99_ms": obs.p99_ms,
                             "throttled_ratio": obs.throttled_ratio,
                             "decision": decision.kind, "reason": decision.reason})
        self._advance(in_force, obs, decision)
        return decision

    def _in_force(self, signals: pd.DataFrame) -> tuple[int, int]:
        """The limits the telemetry reports (the truth), else what we last set."""
        return (_last_limit(signals, "cpu_limit_milli", self.current[0]),
                _last_limit(signals, "memory_limit_mib", self.current[1]))

    def _fit(self, obs: Observation, now: float) -> tuple[LoadAwareCurve | None, float, float]:
        frame = pd.DataFrame(self.history, columns=list(HISTORY_COLUMNS))
        loads = pd.concat([frame.set_index("time")["offered_tps"],
                           pd.Series([obs.offered_tps], index=[now])])
        peak = forecast_peak(loads, self.horizon_s, lookback_s=self.lookback_s)
        rows = frame.dropna(subset=["p99_ms", "offered_tps"])
        rows = rows[rows["p99_ms"] > 0]
        if len(rows) < self.min_windows_to_fit or math.isnan(peak):
            return None, 0.0, peak
        model = LoadAwareCurve(quantile=self.quantile,
                               min_windows=self.full_confidence_windows).fit(
            rows[["cpu_milli", "memory_mib", "offered_tps"]].to_numpy(float),
            rows["p99_ms"].to_numpy(float))
        return model, model.confidence(peak), peak

    def _memory_levels(self, mem: int) -> tuple[int, ...]:
        seen = {int(r["memory_mib"]) for r in self.history}
        down = int(mem * (1 - self.settings.step_down))
        return tuple(sorted(seen | {mem, max(self.settings.mem_lo, down)}))

    def _advance(self, in_force: tuple[int, int], obs: Observation,
                 decision: OnlineDecision) -> None:
        new = (decision.cpu_milli, decision.memory_mib)
        if decision.kind == "step-down" and not (obs.p99_ms > self.settings.target_p99_ms):
            self.last_good = in_force
        if new != in_force:
            self.windows_since_change = 0
        else:
            self.windows_since_change += 1
        self.current = new

    def rejected(self, previous: tuple[int, int]) -> None:
        """The actuator did not carry out the last decision: the previous allocation stays."""
        self.current = previous

    def action(self, decision: OnlineDecision) -> Resize | None:
        """The ``Resize`` carrying out ``decision`` (None when it changes nothing)."""
        if not decision.changed:
            return None
        return Resize(self.workload, self.container,
                      Resources(decision.cpu_milli, decision.memory_mib),
                      reason=f"{decision.kind}: {decision.reason}")

    def history_frame(self) -> pd.DataFrame:
        """The decisions so far (:data:`HISTORY_COLUMNS`)."""
        return pd.DataFrame(self.history, columns=list(HISTORY_COLUMNS))


def _last_limit(signals: pd.DataFrame, column: str, default: int) -> int:
    """The last reported value of limit ``column`` (rounded), else ``default``."""
    values = signals[column].dropna() if column in signals else None
    if values is None or not len(values):
        return default
    return int(round(float(values.iloc[-1])))


def control_once(planner: OnlineDatabasePlanner, source: PrometheusDatabaseSignals | None,
                 queries: DatabaseQueries, actuator: Actuator | None, *, now: float,
                 window_s: float, step_s: float = 5.0) -> tuple[OnlineDecision, Outcome | None]:
    """One decision of the online planner on live telemetry, carried out: what the operator
    does for a ``DatabaseWorkload`` with an offered-load query, and the closed-loop benchmark
    every decision window.

    Args:
        source: the Prometheus signals (None = no Prometheus configured: no data).
        actuator: carries the ``Resize`` out; None = recommend only (the decision is made and
            reported, nothing changes, and the planner keeps the allocation in force).
        window_s, step_s: the window read back from ``now`` and its resolution (s).

    Returns:
        ``(decision, outcome)``: the actuator's outcome, or None when nothing was sent.
        Telemetry that cannot be read gives a ``no-data`` decision and no action; a refused
        or failed resize leaves the allocation as it was.
    """
    before = planner.current
    signals = pd.DataFrame()
    if source is not None:
        try:
            signals = source.window(queries, now - window_s, now, step_s)
        except TelemetryUnavailable:
            signals = pd.DataFrame()
    decision = planner.step(signals, now)
    action = planner.action(decision)
    if action is None:
        return decision, None
    if actuator is None:
        planner.rejected(before)
        return decision, None
    outcome = execute_plan([action], actuator).outcomes[0]
    if outcome.status not in (OutcomeStatus.DONE, OutcomeStatus.DRY_RUN):
        planner.rejected(before)
    return decision, outcome
