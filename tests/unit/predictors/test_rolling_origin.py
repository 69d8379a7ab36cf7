"""The rolling-origin splitter: folds on known times, its checks, and scikit-learn's CV API."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import cross_validate

from cohabit.predictors.rightsizing import JustEnoughEstimator
from cohabit.predictors.rolling_origin import RollingOrigin

H = 600.0


def test_folds_on_a_regular_series():
    t = np.arange(100) * 60.0  # 0 .. 5940 s, one sample a minute
    folds = RollingOrigin(start_fraction=0.5, horizon_s=H, min_fit_samples=20).folds(t)
    first = 0.5 * t[-1]
    # Inner origins go back while 20 samples precede them: first - 3H = 1170 s has exactly
    # 20, first - 4H = 570 s only 10.
    assert [f.k for f in folds] == [-3, -2, -1, 0, 1, 2, 3, 4]
    assert [f.origin for f in folds] == [first + k * H for k in range(-3, 5)]
    assert len(folds[0].train) == 20
    for f in folds:
        assert np.array_equal(f.train, np.flatnonzero(t < f.origin))
        assert np.array_equal(f.test, np.flatnonzero((t >= f.origin) & (t < f.origin + H)))
        assert f.validation == (f.k < 0)
    # The judged horizons cover the second half exactly once.
    judged = np.concatenate([f.test for f in folds if not f.validation])
    assert np.array_equal(judged, np.flatnonzero(t >= first))


def test_a_gap_leaves_out_empty_horizons_and_without_validation_there_are_no_inner_folds():
    t = np.concatenate([np.arange(60) * 60.0, 3600.0 * 3 + np.arange(60) * 60.0])
    # The first judged origin (7170 s) falls in the gap (3540 .. 10800 s): horizons 0..5 hold
    # no sample and are left out; with validation off nothing is before them either.
    folds = RollingOrigin(0.5, H, 10, validation=False).folds(t)
    assert [f.k for f in folds] == list(range(6, 12))
    assert all(len(f.test) == 10 for f in folds) and folds[-1].origin <= t[-1]
    with_inner = [f.k for f in RollingOrigin(0.5, H, 10).folds(t)]
    assert with_inner == list(range(-11, -6)) + list(range(6, 12))


@pytest.mark.parametrize(
    ("t", "min_fit"),
    [(np.array([5.0]), 1), (np.arange(50) * 60.0, 30)],
    ids=["one-sample", "too-short-before-the-first-origin"],
)
def test_too_little_history_has_no_folds(t, min_fit):
    assert RollingOrigin(0.5, H, min_fit).folds(t) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"start_fraction": 1.5}, "start_fraction"), ({"horizon_s": 0.0}, "horizon_s"),
     ({"horizon_s": float("nan")}, "horizon_s"), ({"min_fit_samples": 0}, "min_fit_samples")],
    ids=["start", "horizon-zero", "horizon-nan", "min-fit"],
)
def test_parameters_out_of_range_are_refused(kwargs, message):
    # horizon_s <= 0 or min_fit_samples < 1 would never end the origin loop.
    with pytest.raises(ValueError, match=message):
        RollingOrigin(**kwargs)


def test_split_follows_the_sklearn_splitter_interface():
    rng = np.random.default_rng(0)
    t = np.arange(400) * 60.0
    X, y = t[:, None], rng.gamma(2.0, 100.0, len(t))
    cv = RollingOrigin(0.5, 1800.0, 60, validation=False)
    splits = list(cv.split(X, y))
    assert cv.get_n_splits(X) == len(splits) == len(cv.folds(t))
    scores = cross_validate(JustEnoughEstimator(), X, y, cv=cv, scoring="neg_mean_absolute_error")
    assert len(scores["test_score"]) == len(splits) and np.all(np.isfinite(scores["test_score"]))
    for train, test in splits:  # never a future sample in the fitting window
        assert t[train].max() < t[test].min()
    with pytest.raises(ValueError, match="needs X"):
        cv.get_n_splits()


def test_split_by_groups_splits_each_workload_on_its_own_times():
    t = np.arange(200) * 60.0
    X = np.concatenate([t, t + 30.0])[:, None]  # two pods, interleaved in time
    groups = np.repeat(["a", "b"], len(t))
    order = np.argsort(X[:, 0], kind="stable")
    X, groups = X[order], groups[order]
    cv = RollingOrigin(0.5, H, 30)
    splits = list(cv.split(X, groups=groups))
    assert len(splits) == 2 * len(cv.folds(t))
    for train, test in splits:
        assert len(set(groups[train]) | set(groups[test])) == 1
        assert X[train, 0].max() < X[test, 0].min()
    with pytest.raises(ValueError, match="groups"):
        next(cv.split(X, groups=groups[:-1]))
