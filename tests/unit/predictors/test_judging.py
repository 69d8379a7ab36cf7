"""Judging one horizon: the shortfall reaction, the outcome counts, and candidates judged
exactly as the estimator they stand for."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cohabit.predictors.judging import (
    Allocator,
    CandidateJudge,
    FleetHeadroom,
    PodSeries,
    Window,
    horizon_outcome,
    judge_horizon,
    judge_methods,
)
from cohabit.predictors.rightsizing import OperatingPoint, gpu_share_cap
from cohabit.predictors.rolling_origin import Fold, RollingOrigin


@pytest.mark.parametrize(
    ("usage", "bump_to", "expected"),
    [
        ([1, 2, 1, 1], None, [1.5, 1.5, 1.5, 1.5]),
        ([1, 2, 1, 1], 3.0, [1.5, 1.5, 3.0, 3.0]),
        ([2, 1, 4, 1], 3.0, [1.5, 3.0, 3.0, 3.0]),
        ([1, 1, 1, 1], 3.0, [1.5, 1.5, 1.5, 1.5]),
    ],
    ids=["no-reaction", "bump-from-next-interval", "second-shortfall-keeps-bump", "never-short"],
)
def test_judge_horizon_bumps_only_after_the_shortfall(usage, bump_to, expected):
    bump = None if bump_to is None else (lambda _t, _u: bump_to)
    got = judge_horizon(1.5, np.asarray(usage, float), bump)
    assert got.tolist() == expected



def _window(used, lat, slo) -> Window:
    n = len(used)
    return Window("p", 0, 0.0, np.arange(3.0), np.ones(3), None, np.arange(n, dtype=float),
                  np.asarray(used, float), None if lat is None else np.asarray(lat, float),
                  1.0, None, slo)


def test_outcome_counts_shortfalls_and_stretched_latency():
    # Allocation 2: usage 4 stretches latency x2 (10 -> 20 > SLO 15); usage 1 does not; NaN
    # latency is not an interval with a latency sample.
    w = _window([1.0, 4.0, 2.0, 3.0], [10.0, 10.0, np.nan, 5.0], 15.0)
    got = horizon_outcome(np.full(4, 2.0), w)
    assert got == (8.0, 2, 1, 3)
    assert horizon_outcome(np.full(4, 2.0), _window([1.0, 4.0, 2.0, 3.0], None, None)) == (
        8.0, 2, 0, 0)


@pytest.mark.parametrize("resource", ["gpu_milli", "gpu_memory_mib"])
def test_candidates_are_judged_exactly_as_their_estimator(resource):
    # A pod whose usage steps up: candidates hit shortfalls and bump. Each candidate's
    # outcome per horizon equals fitting point.estimator(...) on the window and reacting
    # with its bump (the shipped code), to the last bit.
    rng = np.random.default_rng(11)
    t = np.arange(900) * 60.0
    y = rng.gamma(3.0, 60.0, len(t)) * np.where(t > 8 * 3600, 1.6, 1.0)
    if resource == "gpu_memory_mib":
        y = 8000.0 + 20 * y
    series = PodSeries("p", t, y, None)
    folds = RollingOrigin(0.5, 1800.0, 60).folds(t)
    grid = [OperatingPoint(0.9, 0.5, 1800.0), OperatingPoint(0.99, 0.8, 7200.0, growth=True)]
    frame = pd.DataFrame({"pod": "p", "time": t, resource: y})
    judge = CandidateJudge(resource, grid, 1800.0, FleetHeadroom(frame, resource, 1800.0, grid))
    horizons = judge.judge(series, folds)
    assert len(horizons) == len(folds) and any(h.validation for h in horizons)
    assert sum(int(h.under.sum()) for h in horizons) > 0  # the bump is exercised
    for i, point in enumerate(grid):
        def shipped(r, tf, yf, lat, slo, point=point):
            m = point.estimator(r, 1800.0, max_value=gpu_share_cap(r, yf)).fit(tf[:, None], yf)
            return Allocator(m.target_, lambda _t, used: m.bump(used))

        for fold, h in zip(folds, horizons, strict=True):
            judged = Fold(max(fold.k, 0), fold.origin, fold.train, fold.test)
            totals = judge_methods(series, [judged], {"shipped": shipped}, resource)["shipped"]
            assert (h.reserved[i], h.under[i]) == (totals.reserved, totals.under), (i, fold.k)
