"""The drift-robust measurement protocol of ``engine.dbinterference``: bracketing order,
references from the runs around each contended run, medians over repeats, the residuals the
fair placement is given. No database here (the protocol is plain callables and frames);
real runs are in ``tests/integration/test_db_interference.py``."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from cohabit.engine.dbinterference import bracketed, geomean, predict_pairs
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
