"""Fleet tuning of the just-enough estimator: per-workload operating points, re-chosen hourly.

The operator recommends for one workload at a time. The operating point that makes the
just-enough estimator meet a fleet-wide shortfall budget at the least reservation is chosen
for all workloads together (:func:`cohabit.predictors.select_operating_points`: back-test on
each history's hourly horizons, per-workload choice under one budget; what
``cohabit evaluate rightsizing`` judges as ``just-enough``). :class:`FleetTuner` keeps the
history each container's recommendation was last computed from, re-runs that selection at
most every ``interval_s`` in a background thread, and hands its recommender the latest
selection. Until the first selection exists (and for containers it has no point for) the
estimator's a-priori defaults apply.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from cohabit.model import RESOURCE_FIELDS, Recommendation, Workload

from .reconcile import predictors_recommender, recommend_wide, wide_usage

__all__ = ["FleetTuner"]

log = logging.getLogger(__name__)


class FleetTuner:
    """Per-container operating points of the just-enough estimator for the whole fleet.

    Args:
        interval_s: least seconds between two selections (> 0).
        clock: seconds now (default ``time.time``).
        background: run selections in a daemon thread (``False``: inline, for tests).
        select: the selection function, ``(frame, resources) -> FleetSelection`` (default
            :func:`cohabit.predictors.select_operating_points`); ``frame`` has ``pod`` (the
            container key ``namespace/workload/container``), ``time`` and resource columns.

    Raises:
        ValueError: ``interval_s <= 0``.
    """

    def __init__(self, interval_s: float = 3600.0, clock: Callable[[], float] = time.time,
                 background: bool = True, select: Callable[..., Any] | None = None):
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        self.interval_s = float(interval_s)
        self.clock = clock
        self.background = background
        self._select = select
        self._lock = threading.Lock()
        self._histories: dict[str, pd.DataFrame] = {}
        self._selection: Any = None
        self._last: float | None = None
        self._running = False
        self.selections = 0
        """Selections completed (for metrics and tests)."""

    @staticmethod
    def key(workload: Workload, container: str) -> str:
        """The container's key in a selection: ``namespace/name/container``."""
        return f"{workload.key}/{container}"

    def observe(self, key: str, wide: pd.DataFrame) -> None:
        """Keep ``wide`` (``time`` and resource columns, :func:`wide_usage`) as ``key``'s
        latest history."""
        cols = ["time", *[c for c in RESOURCE_FIELDS if c in wide.columns]]
        with self._lock:
            self._histories[key] = wide[cols]

    def current(self) -> Any:
        """The latest :class:`cohabit.predictors.FleetSelection`, or ``None`` before the first."""
        with self._lock:
            return self._selection

    def maybe_retune(self) -> bool:
        """Start a selection if ``interval_s`` has passed since the last one began and none
        is running; returns whether one started."""
        now = self.clock()
        with self._lock:
            due = self._last is None or now - self._last >= self.interval_s
            if not due or self._running or not self._histories:
                return False
            self._running = True
            self._last = now
            histories = dict(self._histories)
        if self.background:
            threading.Thread(target=self._run, args=(histories,), name="cohabit-fleet-tuner",
                             daemon=True).start()
        else:
            self._run(histories)
        return True

    def _run(self, histories: dict[str, pd.DataFrame]) -> None:
        try:
            frame = pd.concat([h.assign(pod=k) for k, h in histories.items()],
                              ignore_index=True)
            resources = tuple(c for c in RESOURCE_FIELDS if c in frame.columns
                              and frame[c].notna().any())
            select = self._select
            if select is None:
                from cohabit.predictors import select_operating_points

                select = select_operating_points
            selection = select(frame, resources) if resources else None
            with self._lock:
                self._selection = selection
                self.selections += 1
            log.info("fleet tuning: operating points for %d containers",
                     len(selection.points) if selection is not None else 0)
        except Exception:  # a failed selection keeps the previous one; logged, not fatal
            log.exception("fleet tuning failed; keeping the previous operating points")
        finally:
            with self._lock:
                self._running = False

    def recommender(self, workload: Workload, container: str, usage: pd.DataFrame,
                    qos: pd.DataFrame) -> Recommendation:
        """A :data:`~cohabit.engine.reconcile.Recommender`: records the history, starts a
        selection when due, and recommends with the latest selection."""
        if usage.empty:
            return predictors_recommender(workload, container, usage, qos)
        key = self.key(workload, container)
        wide = wide_usage(usage)
        self.observe(key, wide)
        self.maybe_retune()
        return recommend_wide(workload, container, wide, qos, selection=self.current(),
                              selection_key=key)
