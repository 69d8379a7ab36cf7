"""Rolling-origin splits of one workload's history, shaped like a scikit-learn CV splitter.

Split by time, never by random rows: the history from its first sample up to an origin is the
fitting window; the next ``horizon_s`` seconds are judged; then the origin moves forward by
``horizon_s`` (Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, "evaluation on
a rolling forecasting origin"). The judged origins start at ``start_fraction`` of the history.
With ``validation``, the same origin grid is continued backwards into the fitting windows
(``origin - k * horizon_s``, as long as ``min_fit_samples`` precede it): these *inner*
horizons are the validation split of a nested selection.

:class:`RollingOrigin` has scikit-learn's splitter interface (``split(X, y, groups)`` yielding
``(train, test)`` index arrays, ``get_n_splits``; ``X[:, 0]`` is the sample time, as for
:class:`~cohabit.predictors.rightsizing.JustEnoughEstimator`), so it can be passed as ``cv`` to
:func:`sklearn.model_selection.cross_validate`; :meth:`RollingOrigin.folds` gives the same
splits with their origin and whether they are inner (validation) or judged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["Fold", "RollingOrigin"]


@dataclass(frozen=True)
class Fold:
    """One split of one history.

    Attributes:
        k: position on the origin grid: ``k < 0`` an inner (validation) horizon, ``k >= 0``
            a judged one (``0`` = the first judged origin).
        origin: the origin (s): fitting samples are before it.
        train: indices of the fitting window (every sample before ``origin``), increasing.
        test: indices of the judged horizon ``[origin, origin + horizon_s)``, non-empty.
    """

    k: int
    origin: float
    train: np.ndarray
    test: np.ndarray

    @property
    def validation(self) -> bool:
        """An inner horizon (``k < 0``), used to choose, never to judge."""
        return self.k < 0


class RollingOrigin:
    """Rolling-origin splitter (see the module docstring).

    Args:
        start_fraction: first judged origin as a fraction of the history's time span, in
            [0, 1].
        horizon_s: length of each horizon (s, > 0); origins step by it.
        min_fit_samples: origins (inner or judged) need this many fitting samples (>= 1); a
            history with fewer before the first judged origin has no splits.
        validation: also yield the inner horizons (``k < 0``).

    Raises:
        ValueError: a parameter out of its range.
    """

    def __init__(
        self,
        start_fraction: float = 0.5,
        horizon_s: float = 3600.0,
        min_fit_samples: int = 60,
        validation: bool = True,
    ):
        if not 0.0 <= start_fraction <= 1.0:
            raise ValueError(f"start_fraction must be in [0, 1], got {start_fraction}")
        if not (np.isfinite(horizon_s) and horizon_s > 0):
            raise ValueError(f"horizon_s must be > 0, got {horizon_s}")
        if min_fit_samples < 1:
            raise ValueError(f"min_fit_samples must be >= 1, got {min_fit_samples}")
        self.start_fraction = start_fraction
        self.horizon_s = horizon_s
        self.min_fit_samples = min_fit_samples
        self.validation = validation

    def __repr__(self) -> str:
        return (f"RollingOrigin(start_fraction={self.start_fraction!r}, "
                f"horizon_s={self.horizon_s!r}, min_fit_samples={self.min_fit_samples!r}, "
                f"validation={self.validation!r})")

    def _inner_count(self, t: np.ndarray, first: float) -> int:
        """How many inner origins ``first - k * horizon_s`` keep ``min_fit_samples`` before."""
        k = 0
        while np.sum(t < first - (k + 1) * self.horizon_s) >= self.min_fit_samples:
            k += 1
        return k

    def folds(self, t: np.ndarray) -> list[Fold]:
        """Every split of one history, inner ones first, in time order.

        Args:
            t: sample times (s), 1-D, increasing.

        Returns:
            The folds (empty when fewer than two samples, or fewer than ``min_fit_samples``
            before the first judged origin). Horizons holding no sample are left out.
        """
        t = np.asarray(t, float)
        if len(t) < 2:
            return []
        t0, t1 = t[0], t[-1]
        first = t0 + self.start_fraction * (t1 - t0)
        if np.sum(t < first) < self.min_fit_samples:
            return []
        inner = self._inner_count(t, first) if self.validation else 0
        out = []
        for k in range(-inner, 10**9):
            origin = first + k * self.horizon_s
            if origin > t1:
                break
            test = np.flatnonzero((t >= origin) & (t < origin + self.horizon_s))
            if len(test):
                out.append(Fold(k, origin, np.flatnonzero(t < origin), test))
        return out

    def split(self, X, y=None, groups=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """scikit-learn's splitter interface: ``(train, test)`` indices into ``X``.

        Args:
            X: array-like of shape (n, >= 1); ``X[:, 0]`` the sample time (s).
            y: ignored.
            groups: workload key per row (e.g. the pod); each group is split on its own
                times and its folds are yielded in turn. ``None``: one history, increasing
                in time.

        Raises:
            ValueError: ``X`` not 2-D, or ``groups`` of another length.
        """
        t = _times(X)
        if groups is None:
            for fold in self.folds(t):
                yield fold.train, fold.test
            return
        groups = np.asarray(groups)
        if len(groups) != len(t):
            raise ValueError(f"groups has {len(groups)} rows, X has {len(t)}")
        for g in np.unique(groups):
            rows = np.flatnonzero(groups == g)
            rows = rows[np.argsort(t[rows], kind="stable")]
            for fold in self.folds(t[rows]):
                yield rows[fold.train], rows[fold.test]

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """Number of splits :meth:`split` yields for ``X`` (and ``groups``).

        Raises:
            ValueError: ``X`` not given (the splits depend on the times).
        """
        if X is None:
            raise ValueError("RollingOrigin needs X (the sample times) to count its splits")
        return sum(1 for _ in self.split(X, y, groups))


def _times(X) -> np.ndarray:
    X = np.asarray(X, float)
    if X.ndim != 2 or X.shape[1] < 1:
        raise ValueError(f"X must be 2-D with the time in column 0, got shape {X.shape}")
    return X[:, 0]
