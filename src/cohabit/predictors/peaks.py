"""Peak and correlation prediction for GPU utilisation and memory (Kube-Knots and ours).

* :func:`pp_forecast`: Kube-Knots *Peak Prediction* (Thinakaran et al., "Kube-Knots:
  Resource Harvesting through Dynamic Container Orchestration in GPU-based Datacenters",
  IEEE CLUSTER 2019): if the series' lag-1 autocorrelation on the fitting window reaches
  ``acf_threshold`` it is deemed predictable and an AR(1) model (statsmodels ``AutoReg``)
  forecasts one step ahead; otherwise the forecast is the window's peak (the safe default).
* :class:`QuantileForecaster`: cohabit's forecaster: one gradient-boosted quantile model
  (scikit-learn ``HistGradientBoostingRegressor``, pinball loss) pooled over a fleet of
  series, on lag, rolling-max/mean and time-of-day features; a median forecast for the error
  and an upper-quantile forecast that should not under-predict peaks.
* :func:`correlation_matrix`, :func:`colocation_score`: Kube-Knots *Correlation-Based
  Prediction*: pairwise Pearson correlation of utilisation; co-locate only below 0.5 and
  prefer anti-correlated neighbours.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.utils.validation import check_is_fitted, validate_data
from statsmodels.tools.sm_exceptions import ValueWarning
from statsmodels.tsa.ar_model import AutoReg
from statsmodels.tsa.stattools import acf

__all__ = [
    "QuantileForecaster",
    "colocation_score",
    "correlation_matrix",
    "evaluate_correlation",
    "evaluate_peaks",
    "lag_features",
    "pp_forecast",
    "select_peak_quantile",
]

CBP_THRESHOLD = 0.5
"""Kube-Knots co-locates two workloads only when their utilisation correlation is below it."""


def pp_forecast(history: np.ndarray, future: np.ndarray, acf_threshold: float = 0.5) -> np.ndarray:
    """Kube-Knots PP one-step forecasts over ``future``, with parameters fit on ``history``.

    Args:
        history: the fitting window (1-D, >= 10 samples).
        future: the judged values; forecast ``i`` uses the value before ``future[i]``.
        acf_threshold: lag-1 autocorrelation at or above which AR(1) is used.

    Returns:
        Forecasts, same length as ``future``.
    """
    history = np.asarray(history, float)
    future = np.asarray(future, float)
    prev = np.concatenate([history[-1:], future[:-1]])
    if len(history) < 10 or np.ptp(history) == 0:
        return np.full(len(future), float(history.max()))
    rho = float(acf(history, nlags=1, fft=True)[1])
    if not np.isfinite(rho) or rho < acf_threshold:
        return np.full(len(future), float(history.max()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ValueWarning)
        res = AutoReg(history, lags=1, trend="c").fit()
    c, phi = (float(v) for v in res.params)
    return c + phi * prev


def lag_features(y: np.ndarray, t: np.ndarray, lags: int = 3) -> np.ndarray:
    """Features to forecast ``y[i]`` from what was known at ``i - 1``.

    Columns: ``y[i-1..i-lags]``, max and mean of the last 5 and 30 samples, max of the last
    120, and time of day (sin, cos of ``t[i]``). Rows before enough history use the first
    value. Shape ``(len(y), lags + 7)``.
    """
    y = np.asarray(y, float)
    s = pd.Series(y).shift(1).bfill().fillna(0.0)
    cols = [s.shift(k).bfill().to_numpy() for k in range(lags)]
    for w in (5, 30):
        cols.append(s.rolling(w, min_periods=1).max().to_numpy())
        cols.append(s.rolling(w, min_periods=1).mean().to_numpy())
    cols.append(s.rolling(120, min_periods=1).max().to_numpy())
    day = 2 * np.pi * (np.asarray(t, float) % 86400.0) / 86400.0
    cols += [np.sin(day), np.cos(day)]
    return np.column_stack(cols)


class QuantileForecaster(RegressorMixin, BaseEstimator):
    """One-step quantile forecaster over :func:`lag_features` (gradient boosting, pinball loss).

    ``fit(X, y)`` with ``X`` from :func:`lag_features` (pooled over many series) and ``y`` the
    values; ``predict(X)`` the ``quantile`` forecast, shape (n,).

    Args:
        quantile: 0.5 for a point forecast, e.g. 0.95 for a peak-safe one.
        max_iter, learning_rate, random_state: of ``HistGradientBoostingRegressor``.
    """

    def __init__(self, quantile: float = 0.5, max_iter: int = 60, learning_rate: float = 0.15,
                 random_state: int = 0):
        self.quantile = quantile
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.random_state = random_state

    def fit(self, X, y):
        """Fit the quantile model on ``X`` (n, d), ``y`` (n,)."""
        X, y = validate_data(self, X, y, y_numeric=True)
        if not 0.0 < self.quantile < 1.0:
            raise ValueError(f"quantile must be in (0, 1), got {self.quantile}")
        self.model_ = HistGradientBoostingRegressor(
            loss="quantile", quantile=self.quantile, max_iter=self.max_iter,
            learning_rate=self.learning_rate, random_state=self.random_state,
            max_leaf_nodes=15, early_stopping=False,
        ).fit(X, y)
        self.n_iter_ = self.model_.n_iter_
        return self

    def predict(self, X):
        """The ``quantile`` forecast for each row, shape (n,)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return self.model_.predict(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = self.quantile != 0.5
        return tags


MIN_SERIES_SAMPLES = 100
"""Samples a pod's series needs to be judged by :func:`evaluate_peaks`."""

MIN_FIT_SAMPLES = 20
"""Samples the fitting part (``fit_fraction`` of the series) needs; a smaller part left
the pooled forecaster nothing to fit (a traceback with ``--fit-fraction 0.01``)."""


def _split(frame: pd.DataFrame, column: str, fraction: float):
    for pod, g in frame.groupby("pod", sort=True):
        g = g[g[column].notna()]
        if len(g) < MIN_SERIES_SAMPLES:
            continue
        t, y = g["time"].to_numpy(float), g[column].to_numpy(float)
        cut = int(len(y) * fraction)
        if cut < MIN_FIT_SAMPLES or cut >= len(y):
            continue
        yield str(pod), t, y, cut


PEAK_QUANTILES = (0.9, 0.95, 0.99, 0.995, 0.999)
"""Candidate quantile levels of the peak-oriented forecaster (``ours-peak``)."""


def _pooled_training(series, lo: float, hi: float, max_rows: int):
    """Lag features and targets from the share ``[lo, hi)`` of every series' samples."""
    Xs, ys = [], []
    for _, t, y, _cut in series:
        a, b = max(1, int(len(y) * lo)), int(len(y) * hi)
        X = lag_features(y, t)
        Xs.append(X[a:b])
        ys.append(y[a:b])
    Xtr, ytr = np.vstack(Xs), np.concatenate(ys)
    if len(ytr) > max_rows:  # an even thinning keeps every pod and time of day
        keep = np.linspace(0, len(ytr) - 1, max_rows).astype(int)
        Xtr, ytr = Xtr[keep], ytr[keep]
    return Xtr, ytr


def select_peak_quantile(
    series,
    peak_target: float,
    peak_quantile: float = 0.95,
    quantiles: Sequence[float] = PEAK_QUANTILES,
    max_train_rows: int = 20000,
) -> tuple[float, dict[float, float]]:
    """Choose the peak forecaster's quantile on an inner split of the fitting parts only.

    Every series' fitting part (its first ``cut`` samples) is halved: forecasters at each
    level in ``quantiles`` are fit on the first halves (pooled) and judged one step ahead on
    the second halves, where a *peak* is a value at or above the first half's
    ``peak_quantile``. The smallest level whose pooled peak under-prediction rate is at most
    ``peak_target`` is chosen (the largest level if none reaches it).

    Args:
        series: ``(pod, t, y, cut)`` tuples as the evaluation builds them.
        peak_target: allowed share of peaks under-predicted (e.g. 0.1).

    Returns:
        ``(chosen level, {level: validation under-prediction rate})``.
    """
    inner = [(pod, t[:cut], y[:cut], cut // 2) for pod, t, y, cut in series if cut >= 40]
    if not inner:
        return float(max(quantiles)), {}
    Xtr, ytr = _pooled_training(inner, 0.0, 0.5, max_train_rows)
    rates: dict[float, float] = {}
    feats = [lag_features(y, t)[c:] for _, t, y, c in inner]
    Xva = np.vstack(feats)
    for q in sorted(quantiles):
        pred = QuantileForecaster(q).fit(Xtr, ytr).predict(Xva)
        peaks = under = 0
        pos = 0
        for (_, _t, y, c), f in zip(inner, feats, strict=True):
            thr = max(float(np.quantile(y[:c], peak_quantile)), 1e-9)
            fut = y[c:]
            p = pred[pos:pos + len(f)]
            pos += len(f)
            peaks += int(np.sum(fut >= thr))
            under += int(np.sum((fut >= thr) & (p < fut)))
        rates[q] = under / peaks if peaks else 0.0
        if rates[q] <= peak_target:
            return float(q), rates
    return float(max(quantiles)), rates


def evaluate_peaks(
    frame: pd.DataFrame,
    columns: Sequence[str] = ("gpu_milli", "gpu_memory_mib"),
    fit_fraction: float = 0.5,
    peak_quantile: float = 0.95,
    upper_quantile: float = 0.99,
    max_train_rows: int = 20000,
    peak_target: float = 0.1,
    selected: dict[str, tuple[float, dict[float, float]]] | None = None,
) -> pd.DataFrame:
    """One-step forecast error and peak under-prediction, PP vs ours, per series and pod.

    Each pod's series is split at ``fit_fraction`` of its samples; PP fits per pod on the
    first part; ours pools the first parts of all pods (evenly thinned to
    ``max_train_rows``). A *peak* is a judged value at or above the pod's ``peak_quantile``
    of its fitting window (and above 0); a forecast *under-predicts* it when it is below
    the value.

    Methods: ``kube-knots-pp``; ``ours-median`` (point forecast, for the error);
    ``ours-q<upper>`` (fixed upper quantile); ``ours-peak``, the peak-oriented variant whose
    quantile level is chosen by :func:`select_peak_quantile` on the fitting parts only so that
    at most ``peak_target`` of peaks are under-predicted there (the level is reported in
    ``selected`` if a dict is given, per column).

    Returns:
        One row per (column, pod, method): ``mae``, ``reserved_mean`` (mean forecast),
        ``peaks``, ``peaks_under``, ``n``. Series with fewer than
        :data:`MIN_SERIES_SAMPLES` samples, or a fitting part under
        :data:`MIN_FIT_SAMPLES`, are left out (an empty frame when none is left).

    Raises:
        ValueError: ``fit_fraction`` not strictly between 0 and 1, or ``peak_target``
            outside 0..1.
    """
    if not 0 < fit_fraction < 1:
        raise ValueError(f"fit_fraction must be between 0 and 1, got {fit_fraction}")
    if not 0 <= peak_target <= 1:
        raise ValueError(f"peak_target must be within 0..1, got {peak_target}")
    rows = []
    for column in columns:
        series = list(_split(frame, column, fit_fraction))
        if not series:
            continue
        Xtr, ytr = _pooled_fit_rows(series, max_train_rows)
        q_peak, rates = select_peak_quantile(series, peak_target, peak_quantile,
                                             max_train_rows=max_train_rows)
        if selected is not None:
            selected[column] = (q_peak, rates)
        forecasters = {
            "ours-median": QuantileForecaster(0.5).fit(Xtr, ytr),
            f"ours-q{int(upper_quantile * 100)}": QuantileForecaster(upper_quantile).fit(Xtr, ytr),
            "ours-peak": QuantileForecaster(q_peak).fit(Xtr, ytr),
        }
        rows += _judged_rows(column, series, forecasters, peak_quantile)
    return pd.DataFrame(rows)


def _pooled_fit_rows(series: list, max_train_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Lag features and targets of every pod's fitting part, stacked, evenly thinned to at
    most ``max_train_rows`` rows."""
    Xs, ys = [], []
    for _, t, y, cut in series:
        X = lag_features(y, t)
        Xs.append(X[1:cut])
        ys.append(y[1:cut])
    Xtr, ytr = np.vstack(Xs), np.concatenate(ys)
    if len(ytr) > max_train_rows:
        keep = np.linspace(0, len(ytr) - 1, max_train_rows).astype(int)
        Xtr, ytr = Xtr[keep], ytr[keep]
    return Xtr, ytr


def _judged_rows(
    column: str, series: list, forecasters: dict[str, QuantileForecaster], peak_quantile: float
) -> list[dict]:
    """Per pod of ``series`` and per method (``kube-knots-pp``, then ``forecasters`` in
    order), the judged part's ``mae``, ``reserved_mean``, ``peaks``, ``peaks_under``, ``n``."""
    Xte = [lag_features(y, t)[cut:] for _, t, y, cut in series]
    bounds = np.cumsum([0] + [len(x) for x in Xte])
    stacked = np.vstack(Xte)
    predicted = {name: f.predict(stacked) for name, f in forecasters.items()}
    rows = []
    for i, (pod, _t, y, cut) in enumerate(series):
        hist, fut = y[:cut], y[cut:]
        thr = max(float(np.quantile(hist, peak_quantile)), 1e-9)
        peaks = fut >= thr
        sl = slice(bounds[i], bounds[i + 1])
        methods = [("kube-knots-pp", pp_forecast(hist, fut))]
        methods += [(name, pred[sl]) for name, pred in predicted.items()]
        for method, pred in methods:
            rows.append({
                "series": column, "pod": pod, "method": method,
                "mae": float(np.mean(np.abs(pred - fut))),
                "reserved_mean": float(np.mean(pred)),
                "peaks": int(peaks.sum()),
                "peaks_under": int(np.sum(peaks & (pred < fut))),
                "n": int(len(fut)),
            })
    return rows


def correlation_matrix(frame: pd.DataFrame, column: str = "gpu_milli") -> pd.DataFrame:
    """Pearson correlation of ``column`` between pods over their common timestamps.

    Returns a pods x pods frame; pairs with fewer than 30 common samples or a constant
    series are NaN.
    """
    wide = frame.pivot_table(index="time", columns="pod", values=column)
    return wide.corr(method="pearson", min_periods=30)


def colocation_score(correlation: float, threshold: float = CBP_THRESHOLD) -> float:
    """Kube-Knots CBP score of co-locating two workloads: ``(1 - corr) / 2`` in [0, 1], higher
    is better (anti-correlated = 1), and 0 when ``corr >= threshold`` (do not co-locate) or
    unknown (NaN)."""
    if not np.isfinite(correlation) or correlation >= threshold:
        return 0.0
    return float((1.0 - correlation) / 2.0)


def evaluate_correlation(
    frame: pd.DataFrame, column: str = "gpu_milli", fit_fraction: float = 0.5
) -> pd.DataFrame:
    """Does fitting-window correlation predict how well two pods share capacity later?

    For every pod pair: ``corr_fit`` on the first ``fit_fraction`` of the common timeline, and
    on the rest ``peak_ratio = peak(a + b) / (peak(a) + peak(b))`` (1 = peaks coincide; lower =
    sharing saves capacity), ``corr_eval`` and the CBP decision ``colocate``.

    Returns:
        One row per pair with ``a``, ``b``, ``corr_fit``, ``corr_eval``, ``peak_ratio``,
        ``score``, ``colocate`` (no rows when ``column`` has no sample).

    Raises:
        ValueError: ``fit_fraction`` not strictly between 0 and 1.
    """
    if not 0 < fit_fraction < 1:
        raise ValueError(f"fit_fraction must be between 0 and 1, got {fit_fraction}")
    columns = ["a", "b", "corr_fit", "corr_eval", "peak_ratio", "score", "colocate"]
    wide = frame.pivot_table(index="time", columns="pod", values=column).sort_index()
    if wide.empty:
        return pd.DataFrame(columns=columns)
    cut = wide.index[int(len(wide) * fit_fraction)]
    fit, ev = wide[wide.index < cut], wide[wide.index >= cut]
    cf = fit.corr(min_periods=30)
    ce = ev.corr(min_periods=30)
    pods = list(wide.columns)
    rows = []
    for i, a in enumerate(pods):
        for b in pods[i + 1:]:
            both = ev[[a, b]].dropna()
            if len(both) < 30:
                continue
            pa, pb = both[a].max(), both[b].max()
            if pa + pb <= 0:
                continue
            c = float(cf.loc[a, b])
            rows.append({
                "a": a, "b": b, "corr_fit": c, "corr_eval": float(ce.loc[a, b]),
                "peak_ratio": float((both[a] + both[b]).max() / (pa + pb)),
                "score": colocation_score(c),
                "colocate": bool(np.isfinite(c) and c < CBP_THRESHOLD),
            })
    return pd.DataFrame(rows, columns=columns)
