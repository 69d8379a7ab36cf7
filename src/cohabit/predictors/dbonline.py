"""The online performance model of a database: p99 latency as a function of its CPU quota,
memory limit and offered load, learned from the windows its telemetry reports, and a peak
forecast of the offered load.

URSA's online capacity planner learns how a running database's performance depends on its
allocation and load and searches the allocation online. Here the model is a **monotone
quantile regressor** (scikit-learn ``HistGradientBoostingRegressor`` with ``loss="quantile"``
and ``monotonic_cst``): ``log p99`` is non-increasing in CPU and memory and non-decreasing in
load, and the predicted value is the ``quantile``-th quantile of a window's p99 given those
three, so "meets the target at the forecast peak load with confidence" is "the predicted
quantile is below the target". Trees do not extrapolate: outside the allocations it has
seen, the model repeats the nearest seen value, which is why the planner
(:mod:`cohabit.planner.dbonline`) only moves in bounded steps beyond them.

**Confidence** (0..1) of a fitted model: ``min(1, windows / min_windows)`` x the share of
training windows whose p99 is at or below the predicted quantile, relative to ``quantile``
(a calibration check, capped at 1) x 1 if the forecast load lies within the loads seen or
at most 25 % above the largest (a forecast peak carries headroom), 0.5 beyond.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

__all__ = ["LoadAwareCurve", "forecast_peak"]


class LoadAwareCurve(RegressorMixin, BaseEstimator):
    """Monotone quantile model of a window's p99 (ms) given ``[cpu_milli, memory_mib,
    load_tps]``.

    Args:
        quantile: the quantile of p99 predicted (0.9 = a window's p99 stays below the
            prediction in 9 windows out of 10).
        min_windows: windows needed for full confidence.
        max_iter, learning_rate, min_samples_leaf: of the gradient-boosted trees.
        ceiling_ms: infinite p99 values are clipped here.

    Learned attributes: ``model_`` (the regressor, fitted on ``log p99``), ``n_windows_``,
    ``load_range_``, ``coverage_`` (share of training windows at or below the prediction).
    """

    def __init__(self, quantile: float = 0.9, min_windows: int = 20, max_iter: int = 50,
                 learning_rate: float = 0.1, min_samples_leaf: int = 3,
                 ceiling_ms: float = 10_000.0):
        self.quantile = quantile
        self.min_windows = min_windows
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.min_samples_leaf = min_samples_leaf
        self.ceiling_ms = ceiling_ms

    def fit(self, X, y):
        """Fit on windows ``X = [[cpu_milli, memory_mib, load_tps], ...]``, ``y = p99_ms``.

        Raises:
            ValueError: bad shapes, NaN, non-positive latency, quantile outside (0, 1).
        """
        if not 0 < self.quantile < 1:
            raise ValueError(f"quantile must be in (0, 1), got {self.quantile}")
        y = np.asarray(y, dtype=float)
        y = np.where(np.isinf(y), self.ceiling_ms, y)
        X, y = validate_data(self, X, y, dtype=np.float64)
        if X.shape[1] != 3:
            raise ValueError(f"X must have 3 columns [cpu_milli, memory_mib, load_tps], got "
                             f"{X.shape[1]}")
        if np.any(y <= 0):
            raise ValueError("p99 latencies must be > 0")
        logy = np.log(np.minimum(y, self.ceiling_ms))
        with threadpool_limits(1):  # tens of rows: OpenMP threads only spin on a busy host
            self.model_ = HistGradientBoostingRegressor(
                loss="quantile", quantile=self.quantile, monotonic_cst=[-1, -1, 1],
                max_iter=self.max_iter, learning_rate=self.learning_rate,
                min_samples_leaf=self.min_samples_leaf, early_stopping=False, random_state=0,
            ).fit(X, logy)
            fitted = self.model_.predict(X)
        self.n_windows_ = int(X.shape[0])
        self.load_range_ = (float(X[:, 2].min()), float(X[:, 2].max()))
        self.coverage_ = float(np.mean(logy <= fitted + 1e-9))
        return self

    def predict(self, X) -> np.ndarray:
        """The ``quantile``-th quantile of p99 (ms) per row, shape (n,)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        with threadpool_limits(1):
            return np.exp(self.model_.predict(X))

    def confidence(self, load_tps: float) -> float:
        """Confidence (module docstring) of predictions at offered load ``load_tps``."""
        check_is_fitted(self)
        amount = min(1.0, self.n_windows_ / max(1, self.min_windows))
        calibration = min(1.0, self.coverage_ / self.quantile)
        lo, hi = self.load_range_
        inside = 1.0 if lo * 0.75 <= load_tps <= hi * 1.25 else 0.5
        return float(amount * calibration * inside)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        tags.regressor_tags.poor_score = True
        return tags


def forecast_peak(load: pd.Series, horizon_s: float, *, lookback_s: float,
                  headroom: float = 0.1) -> float:
    """Peak offered load expected over the next ``horizon_s``: the largest load of the last
    ``lookback_s``, plus the recent linear trend over the horizon when it rises, times
    ``1 + headroom``.

    Args:
        load: offered TPS indexed by epoch seconds (NaN ignored).

    Returns:
        TPS; NaN when no load was observed in the look-back.
    """
    s = load.dropna()
    if s.empty:
        return math.nan
    recent = s[s.index >= s.index.max() - lookback_s]
    peak = float(recent.max())
    if len(recent) >= 3:
        t = recent.index.to_numpy(float)
        slope = float(np.polyfit(t - t[0], recent.to_numpy(float), 1)[0])
        if slope > 0:
            peak = max(peak, float(recent.iloc[-1]) + slope * horizon_s)
    return peak * (1.0 + headroom)
