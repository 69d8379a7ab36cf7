"""Pressure and sensitivity of databases from stressor/probe numbers (predictors.dbinterference)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from cohabit.model import InterferenceProfile
from cohabit.placement.interference import pressure_sensitivity_slowdown
from cohabit.predictors.dbinterference import (
    database_profile,
    dominant_slowdown,
    normalised_performance,
    pair_error,
    pressure_score,
    sensitivity_slope,
    slowdown,
)


@pytest.mark.parametrize(
    ("solo", "co", "np_"),
    [(10.0, 10.0, 1.0), (10.0, 20.0, 0.5), (10.0, 8.0, 1.0), (10.0, math.inf, 0.0)],
    ids=["same", "twice-slower", "faster-clipped", "stopped"],
)
def test_normalised_performance(solo: float, co: float, np_: float) -> None:
    assert normalised_performance(solo, co) == pytest.approx(np_)
    assert slowdown(solo, co) == pytest.approx(1 - np_)


def test_sensitivity_is_the_slope_through_the_origin() -> None:
    assert sensitivity_slope([0.3, 0.6, 0.9], [0.06, 0.12, 0.18]) == pytest.approx(0.2)
    assert sensitivity_slope([0.3, 0.6], [-0.05, -0.01]) == 0.0  # noise below zero: none
    with pytest.raises(ValueError, match="intensity must be > 0"):
        sensitivity_slope([0.0], [0.1])


def test_pressure_is_the_equivalent_stressor_size() -> None:
    # The probe loses 10 % beside the workload and 40 % per stressor core: 0.25 cores.
    assert pressure_score(100.0, 90.0, 0.4) == pytest.approx(0.25)
    assert pressure_score(100.0, 90.0, 0.0) == 0.0
    assert pressure_score(100.0, 120.0, 0.4) == 0.0


def test_profile_times_profile_is_a_slowdown() -> None:
    sens = pd.DataFrame({"resource": ["cpu"] * 3 + ["disk"] * 3,
                         "intensity": [0.3, 0.6, 0.9] * 2,
                         "p99_solo_ms": [10.0] * 6,
                         "p99_ms": [12.5, 16.7, 25.0, 10.0, 10.2, 9.9]})
    press = pd.DataFrame({"resource": ["cpu", "cpu", "disk"], "probe_solo": [100.0] * 3,
                          "probe_co": [80.0, 82.0, 99.0]})
    prof = database_profile(sens, press, {"cpu": 0.5, "disk": 0.2})
    sens_d, press_d = dict(prof.sensitivity), dict(prof.pressure)
    assert sens_d["cpu"] > 0.5 and sens_d["disk"] < 0.05
    assert press_d["cpu"] == pytest.approx((1 - 81 / 100) / 0.5)
    assert press_d["disk"] == pytest.approx(0.05)
    s = pressure_sensitivity_slowdown(prof, prof)
    assert s == pytest.approx(min(1.0, sum(press_d[r] * sens_d[r] for r in press_d)), abs=1e-6)


def test_profile_needs_its_columns() -> None:
    with pytest.raises(ValueError, match="lacks column"):
        database_profile(pd.DataFrame({"resource": []}), pd.DataFrame(), {})


def test_pair_error() -> None:
    err = pair_error([0.1, 0.2, 0.4], [0.15, 0.1, 0.5])
    assert err["n"] == 3 and err["mae"] == pytest.approx((0.05 + 0.1 + 0.1) / 3)
    assert err["spearman"] == pytest.approx(0.5)
    assert math.isnan(pair_error([0.1, 0.1], [0.2, 0.3])["spearman"])


def test_dominant_slowdown_counts_the_worst_resource_once() -> None:
    victim = InterferenceProfile(sensitivity=(("cpu", 1.0), ("membw", 1.0), ("disk", 0.5)))
    aggressor = InterferenceProfile(pressure=(("cpu", 0.3), ("membw", 0.25), ("disk", 0.1)))
    assert dominant_slowdown(victim, aggressor) == pytest.approx(0.3)
    assert pressure_sensitivity_slowdown(victim, aggressor) == pytest.approx(0.6)
    assert dominant_slowdown(victim, InterferenceProfile()) == 0.0
    nan = InterferenceProfile(pressure=(("cpu", float("nan")), ("disk", 4.0)))
    assert dominant_slowdown(victim, nan) == 1.0  # clipped; the NaN entry skipped
