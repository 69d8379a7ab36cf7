"""AllocationCurve: the monotone p99-vs-allocation model and its repeat-derived noise, on
recorded real profile points and on constructed cases."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.isotonic import IsotonicRegression

from cohabit.predictors.dbcurve import AllocationCurve

RECORDED = Path(__file__).parents[1] / "planner" / "data" / "tpcb_scale5_rate100_points.csv"


def _fit(points: pd.DataFrame) -> AllocationCurve:
    X = points[["cpu_milli", "memory_mib"]].to_numpy(float)
    return AllocationCurve(ceiling_ms=1000).fit(X, points["p99_ms"].to_numpy(float))


def test_one_memory_level_equals_sklearn_isotonic_regression() -> None:
    rng = np.random.default_rng(3)
    cpu = np.repeat([100, 200, 400, 800, 1600], 3).astype(float)
    y = np.exp(5 - 0.5 * np.log(cpu) + rng.normal(0, 0.4, cpu.size))
    curve = AllocationCurve().fit(np.column_stack([cpu, np.full_like(cpu, 512)]), y)
    means = pd.Series(np.log(y)).groupby(cpu).mean()
    ref = IsotonicRegression(increasing=False).fit(np.log(means.index), means.to_numpy(),
                                                   sample_weight=np.full(5, 3.0))
    got = curve.predict_log(np.column_stack([means.index, np.full(5, 512.0)]))
    np.testing.assert_allclose(got, ref.predict(np.log(means.index)), atol=1e-6)


def test_fit_is_monotone_in_both_resources_on_recorded_points() -> None:
    points = pd.read_csv(RECORDED)
    curve = _fit(points)
    fitted = curve.fitted_
    for (c1, m1), v1 in fitted.items():
        for (c2, m2), v2 in fitted.items():
            if c2 >= c1 and m2 >= m1:
                assert v2 <= v1 + 1e-6, ((c1, m1), (c2, m2))
    # The recorded 8192 MiB runs were slower than the 2048 MiB ones at 4000m: pooled.
    assert fitted[(4000.0, 8192.0)] == pytest.approx(fitted[(4000.0, 2048.0)], abs=1e-6)


def test_infinite_p99_is_clipped_to_the_ceiling() -> None:
    X = np.array([[100, 256], [100, 256], [400, 256], [400, 256]], dtype=float)
    curve = AllocationCurve(ceiling_ms=500).fit(X, [math.inf, math.inf, 20.0, 22.0])
    assert curve.predict([[100, 256]])[0] == pytest.approx(500)
    assert curve.prob_meets(np.array([[100.0, 256.0]]), 100)[0] < 0.01


def test_probability_rises_with_the_target_and_upper_bound_matches_it() -> None:
    curve = _fit(pd.read_csv(RECORDED))
    x = np.array([[380.0, 2048.0]])
    probs = [curve.prob_meets(x, t)[0] for t in (30, 45, 60, 100, 300)]
    assert probs == sorted(probs) and probs[0] < 0.5 < probs[-1]
    upper = curve.upper(x, 0.9)[0]
    assert curve.prob_meets(x, upper)[0] == pytest.approx(0.9, abs=1e-6)


def test_an_unrepeated_allocation_borrows_the_pooled_spread() -> None:
    X = np.array([[100, 256]] * 4 + [[200, 256]], dtype=float)
    curve = AllocationCurve(prior_weight=4).fit(X, [10, 12, 9, 11, 8])
    sd, dof, n = curve.spread(200, 256)
    assert n == 1 and dof == 3 and sd == pytest.approx(curve.pooled_sd_)
    own_sd, own_dof, _ = curve.spread(100, 256)
    assert own_dof == 6 and own_sd == pytest.approx(curve.pooled_sd_)


def test_unmeasured_memory_level_is_read_from_the_level_below() -> None:
    X = np.array([[500, 256], [500, 256], [500, 1024], [500, 1024]], dtype=float)
    curve = AllocationCurve().fit(X, [80, 90, 20, 25])
    assert curve.predict([[500, 512]])[0] == pytest.approx(curve.predict([[500, 256]])[0])


@pytest.mark.parametrize(
    ("X", "y", "message"),
    [
        ([[100, 256]], [0.0], "must be > 0"),
        ([[100, 256]], [math.nan], "NaN"),
        ([[0, 256]], [5.0], "finite and > 0"),
        ([[100]], [5.0], "shape"),
        (np.empty((0, 2)), [], "no runs"),
    ],
    ids=["zero-latency", "nan-latency", "zero-cpu", "one-column", "empty"],
)
def test_bad_input_is_refused(X, y, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AllocationCurve().fit(X, y)
