"""Pressure and sensitivity of databases from stressor/probe numbers (predictors.dbinterference)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from cohabit.model import InterferenceProfile
from cohabit.placement.interference import pressure_sensitivity_slowdown
from cohabit.predictors.dbinterference import (
    curve_slowdown,
    database_profile,
    dominant_slowdown,
    node_slowdown,
    normalised_performance,
    pair_error,
    pressure_score,
    sensitivity_curve,
    sensitivity_curves,
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


# Node-level model: a measured sensitivity curve at the co-runners' summed CPU demand.
THRESHOLD = ((0.0, 0.0), (0.3, 0.1), (0.8, 0.9))


@pytest.mark.parametrize(
    ("intensity", "slowdowns", "expected"),
    [
        ([0.3, 0.8], [0.1, 0.9], THRESHOLD),
        ([0.8, 0.3], [0.9, 0.1], THRESHOLD),  # order of measurement does not matter
        ([0.3, 0.8], [0.5, 0.2], ((0.0, 0.0), (0.3, 0.5), (0.8, 0.5))),  # noise dip: monotone
        ([0.3, 0.8], [-0.2, 1.4], ((0.0, 0.0), (0.3, 0.0), (0.8, 1.0))),  # clipped to [0, 1]
        ([0.3, 0.3, 0.3, 0.8], [0.1, 0.7, 0.2, 0.9],  # repeats: median per intensity
         ((0.0, 0.0), (0.3, 0.2), (0.8, 0.9))),
    ],
    ids=["plain", "unsorted", "monotone", "clipped", "median-of-repeats"],
)
def test_sensitivity_curve(intensity, slowdowns, expected) -> None:
    got = sensitivity_curve(intensity, slowdowns)
    assert [x for x, _ in got] == pytest.approx([x for x, _ in expected])
    assert [y for _, y in got] == pytest.approx([y for _, y in expected])


@pytest.mark.parametrize(("intensity", "slowdowns"),
                         [([], []), ([0.3], [0.1, 0.2]), ([0.0], [0.1]), ([0.3], [math.nan])])
def test_sensitivity_curve_rejects_bad_points(intensity, slowdowns) -> None:
    with pytest.raises(ValueError):
        sensitivity_curve(intensity, slowdowns)


@pytest.mark.parametrize(
    ("demand", "expected"),
    [(0.0, 0.0), (0.15, 0.05), (0.3, 0.1), (0.55, 0.5), (0.8, 0.9), (1.5, 0.9)],
    ids=["none", "half-first", "first", "between", "last", "saturates"],
)
def test_curve_slowdown_interpolates_and_saturates(demand, expected) -> None:
    assert curve_slowdown(THRESHOLD, demand) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("co_runners", "expected"),
    [([], 0.0), ([0.3], 0.1), ([0.25, 0.3], 0.5), ([0.2, 0.2, 0.15], 0.5), ([0.5, 0.5], 0.9)],
    ids=["alone", "one", "two-sum", "three-sum", "beyond-measured"],
)
def test_node_slowdown_is_the_curve_at_summed_demand(co_runners, expected) -> None:
    assert node_slowdown(THRESHOLD, co_runners) == pytest.approx(expected)


def test_node_slowdown_is_monotone_in_demand() -> None:
    curve = sensitivity_curve([0.3, 0.8], [0.6, 0.4])
    values = [node_slowdown(curve, [d / 10]) for d in range(15)]
    assert values == sorted(values)


@pytest.mark.parametrize("demand", [[-0.1], [math.nan]])
def test_node_slowdown_rejects_bad_demand(demand) -> None:
    with pytest.raises(ValueError, match="cores"):
        node_slowdown(THRESHOLD, demand)


def test_sensitivity_curves_from_rows() -> None:
    rows = pd.DataFrame({
        "workload": ["db", "db", "db", "db"], "resource": ["cpu", "cpu", "membw", "membw"],
        "intensity": [0.3, 0.8, 0.3, 0.8], "p99_solo_ms": [10.0, 10.0, 10.0, 10.0],
        "p99_ms": [12.5, 100.0, 50.0, 50.0]})
    # cpu: 1 - 10/12.5 = 0.2 at 0.3 cores, 1 - 10/100 = 0.9 at 0.8 cores.
    got = sensitivity_curves(rows)["db"]
    assert [y for _, y in got] == pytest.approx([0.0, 0.2, 0.9])
    with pytest.raises(ValueError, match="disk"):
        sensitivity_curves(rows, "disk")
    with pytest.raises(ValueError, match="workload"):
        sensitivity_curves(rows.drop(columns="workload"))
