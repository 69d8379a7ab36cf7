"""LoadAwareCurve (monotone quantile model of p99 given CPU, memory and load) and the peak
forecast."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cohabit.predictors.dbonline import LoadAwareCurve, forecast_peak


def _windows(n: int = 120, seed: int = 1):
    rng = np.random.default_rng(seed)
    cpu = rng.choice([300.0, 500.0, 800.0, 1200.0], n)
    mem = rng.choice([512.0, 1024.0], n)
    load = rng.uniform(50, 250, n)
    p99 = 10 / (1 - np.minimum(0.95, load / cpu)) ** 2 * np.exp(rng.normal(0, 0.15, n))
    return np.column_stack([cpu, mem, load]), p99


def test_predictions_are_monotone() -> None:
    X, y = _windows()
    model = LoadAwareCurve(quantile=0.9).fit(X, y)
    cpus = np.array([300.0, 500.0, 800.0, 1200.0])
    at = model.predict(np.column_stack([cpus, np.full(4, 1024.0), np.full(4, 200.0)]))
    assert np.all(np.diff(at) <= 1e-9)  # more CPU, no slower
    loads = np.array([60.0, 120.0, 240.0])
    up = model.predict(np.column_stack([np.full(3, 500.0), np.full(3, 1024.0), loads]))
    assert np.all(np.diff(up) >= -1e-9)  # more load, no faster


def test_quantile_covers_about_its_share_and_confidence_grows() -> None:
    X, y = _windows(300)
    model = LoadAwareCurve(quantile=0.9, min_windows=50).fit(X, y)
    assert 0.8 <= model.coverage_ <= 1.0
    assert model.confidence(150.0) > 0.8 and model.confidence(1000.0) < 0.6
    assert model.confidence(290.0) > 0.8  # a forecast up to 25 % above the loads seen
    few = LoadAwareCurve(min_windows=50).fit(X[:10], y[:10])
    assert few.confidence(150.0) <= 10 / 50


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="3 columns"):
        LoadAwareCurve().fit(np.ones((5, 2)), np.ones(5))
    with pytest.raises(ValueError, match="> 0"):
        LoadAwareCurve().fit(np.ones((5, 3)), np.zeros(5))


def test_forecast_peak_follows_a_rising_trend() -> None:
    t = np.arange(0, 600, 60.0)
    rising = pd.Series(100 + t / 6, index=t)
    flat = pd.Series(np.full(t.size, 100.0), index=t)
    assert forecast_peak(flat, 300, lookback_s=600, headroom=0.0) == pytest.approx(100)
    assert forecast_peak(rising, 300, lookback_s=600, headroom=0.0) == pytest.approx(
        rising.iloc[-1] + 50, rel=1e-6)
    assert math.isnan(forecast_peak(pd.Series(dtype=float), 300, lookback_s=600))
