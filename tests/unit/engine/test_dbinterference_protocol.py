"""The drift-robust measurement protocol of ``engine.dbinterference``: bracketing order,
references from the runs around each contended run, medians over repeats, the residuals the
fair placement is given. No database here (the protocol is plain callables and frames);
real runs are in ``tests/integration/test_db_interference.py``."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from cohabit.engine.dbinterference import (
    bracketed,
    curve_model,
    geomean,
    pair_model_on_nodes,
    predict_nodes,
    predict_pairs,
    solo_cpu_demand,
)
from cohabit.model import InterferenceProfile


def test_bracketed_runs_solo_around_every_block_in_order() -> None:
    seen: list[str] = []
    count = iter(range(100))

    def solo() -> int:
        seen.append("S")
        return next(count)

    def co(tag: str):
        return lambda: seen.append(tag) or tag

    solos, results = bracketed(solo, [[co("a1"), co("a2")], [co("b1")]])
    assert seen == ["S", "a1", "a2", "S", "b1", "S"]
    assert solos == [0, 1, 2] and results == [["a1", "a2"], ["b1"]]


def test_bracketed_with_no_blocks_is_one_solo() -> None:
    solos, results = bracketed(lambda: 7, [])
    assert solos == [7] and results == []


def test_a_linear_drift_cancels_in_the_bracketed_reference() -> None:
    # The host slows by 10 % per run: a solo-before reference would report a slowdown for a
    # run that suffered only drift; the geometric mean of before and after does not (to
    # second order).
    clock = iter(range(100))

    def drifting() -> float:
        return 10.0 * 1.1 ** next(clock)

    solos, results = bracketed(drifting, [[drifting]])
    ref = geomean(solos[0], solos[1])
    assert results[0][0] == pytest.approx(ref)
    assert results[0][0] / solos[0] == pytest.approx(1.1)


@pytest.mark.parametrize(("a", "b", "expected"), [(4.0, 9.0, 6.0), (2.0, math.inf, math.inf)])
def test_geomean(a, b, expected) -> None:
    assert geomean(a, b) == expected


def test_geomean_refuses_non_positive() -> None:
    with pytest.raises(ValueError, match="> 0"):
        geomean(0.0, 3.0)


def _prof(p: float, s: float) -> InterferenceProfile:
    return InterferenceProfile(pressure=(("cpu", p),), sensitivity=(("cpu", s),))


def test_predict_pairs_takes_the_median_of_repeats_and_gives_residuals() -> None:
    profiles = {"x": _prof(0.5, 0.4), "y": _prof(0.2, 1.0), "z": _prof(0.1, 0.1)}
    measured = pd.DataFrame({
        "victim": ["x", "x", "x", "y", "z"],
        "aggressor": ["y", "y", "y", "x", "x"],
        "slowdown": [0.0, 0.5, 0.1, 0.45, 0.3],
    })
    out, err = predict_pairs(profiles, measured)
    row = out.set_index(["victim", "aggressor"])
    assert row.loc[("x", "y"), "slowdown"] == pytest.approx(0.1)  # median of 0, 0.5, 0.1
    assert row.loc[("x", "y"), "repeats"] == 3
    assert row.loc[("x", "y"), "predicted"] == pytest.approx(0.2 * 0.4)
    assert row.loc[("y", "x"), "predicted"] == pytest.approx(0.5)
    assert (out["residual"] == out["slowdown"] - out["predicted"]).all()
    assert err["n"] == 3
    assert err["mae"] == pytest.approx((abs(0.1 - 0.08) + abs(0.45 - 0.5) + abs(0.3 - 0.05))
                                       / 3)


NODE_ROWS = pd.DataFrame({
    "partition": [0, 0, 0, 1, 1, 1],
    "workload": ["x", "y", "z", "x", "y", "z"],
    "co_runners": ["y", "x", "", "y+z", "x+z", "x+y"],
    "slowdown": [0.3, 0.0, 0.0, 0.8, 0.6, 0.2],
    "cpu_cores_solo": [0.2, 0.1, 0.4, 0.3, 0.1, 0.2],
})
CURVE = ((0.0, 0.0), (0.3, 0.1), (0.8, 0.9))


def test_solo_cpu_demand_is_the_median_of_solo_usage() -> None:
    assert solo_cpu_demand(NODE_ROWS) == pytest.approx({"x": 0.25, "y": 0.1, "z": 0.3})
    with pytest.raises(ValueError, match="cpu_cores_solo"):
        solo_cpu_demand(NODE_ROWS.drop(columns="cpu_cores_solo"))


def test_curve_model_and_node_predictions() -> None:
    demand = solo_cpu_demand(NODE_ROWS)
    model = curve_model(dict.fromkeys("xyz", CURVE), demand)
    out, err = predict_nodes(model, NODE_ROWS)
    row = out.set_index(["workload", "co_runners"])
    # x beside y (0.1 cores): 0.1 * 0.1 / 0.3; x beside y+z (0.4): 0.1 + 0.8 * 0.1 / 0.5.
    assert row.loc[("x", "y"), "predicted"] == pytest.approx(0.1 / 3)
    assert row.loc[("x", "y+z"), "predicted"] == pytest.approx(0.26)
    assert row.loc[("z", ""), "predicted"] == 0.0
    assert (out["residual"] == out["slowdown"] - out["predicted"]).all()
    assert err["n"] == 6 and err["spearman"] > 0.5


def test_pair_model_on_nodes_composes_multiplicatively() -> None:
    profiles = {"x": _prof(0.5, 0.4), "y": _prof(0.2, 1.0), "z": _prof(0.1, 0.1)}

    def pair(v: InterferenceProfile, a: InterferenceProfile) -> float:
        return dict(a.pressure)["cpu"] * dict(v.sensitivity)["cpu"]

    model = pair_model_on_nodes(profiles, pair)
    # y beside x and z: 1 - (1 - 0.5)(1 - 0.1) = 0.55.
    assert model("y", frozenset({"x", "z"})) == pytest.approx(0.55)
    assert model("y", frozenset()) == 0.0
