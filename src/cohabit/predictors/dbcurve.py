"""The performance-vs-allocation curve of a database: p99 latency as a monotone function of
its CPU quota and memory limit, with a noise model derived from repeated runs.

URSA (Zheng, Chen et al., "URSA: Precise Capacity Planning and Contention-aware Scheduling
for Public Clouds", arXiv 1912.11963, ICPP 2020) plans a database's capacity from its
measured performance at a few allocations, relying on performance improving monotonically
with resources. This module holds that model:

* **Shape.** ``log p99`` is fitted as a non-increasing function of CPU *and* memory:
  isotonic regression on the partial order of allocations (``a <= b`` when ``b`` has at
  least as much of both), i.e. the weighted least-squares projection of the per-allocation
  mean ``log p99`` (weights = runs) onto the monotone cone, solved as a small quadratic
  programme (scipy SLSQP; with one resource it is exactly scikit-learn's pool-adjacent-
  violators ``IsotonicRegression``, which the tests check). A noisy repeat at a larger
  allocation cannot claim to be slower than a smaller one: violators are pooled. An
  unmeasured memory level is predicted from the nearest measured level *below* it (never
  from a larger one), which is conservative.
* **Noise.** Runs of the same allocation differ (this machine's p99 moved 4.5x between a
  busy and a quiet hour). The spread is the standard deviation of ``log p99`` between
  repeats of one allocation, shrunk toward the pooled spread of all allocations (a
  conjugate normal prior worth ``prior_weight`` observations): ``s^2 = ((n-1) s_i^2 +
  k s_pool^2) / (n - 1 + k)`` with ``n - 1 + k`` degrees of freedom. The probability that a
  *fresh* run meets a target is the Student-t predictive probability
  ``T_dof((log target - mu) / (s sqrt(1 + 1/n)))``; the planner's margin is therefore the
  measured spread, not a fixed percentage.
* **Censoring.** A run whose p99 is infinite (transactions skipped, failed or never started)
  is clipped to ``ceiling_ms`` (e.g. pgbench's latency limit) before the logarithm.

Shapes: ``X`` is ``(n, 2)``: ``cpu_milli`` (millicores, > 0), ``memory_mib`` (MiB, > 0);
``y`` is p99 in ms (> 0, ``inf`` allowed).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.stats import t as student_t
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

__all__ = ["AllocationCurve", "SUMMARY_COLUMNS"]

SUMMARY_COLUMNS = ("cpu_milli", "memory_mib", "n", "p99_ms", "p99_measured_ms", "p99_upper_ms",
                   "spread", "dof", "p_meet")
"""Columns of :meth:`AllocationCurve.summary`: the allocation, its number of runs, the
geometric mean of the measured p99s (``p99_measured_ms``), the model's p99 (``p99_ms``, the
isotonic fit), the predictive upper bound at the summary's confidence (``p99_upper_ms``),
the log spread and its degrees of freedom, and ``p_meet`` = P(a fresh run's p99 <= target)."""


def _as_arrays(X, y=None):
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] < 2:
        raise ValueError(f"X must have shape (n, 2) [cpu_milli, memory_mib], got {X.shape}")
    if not np.all(np.isfinite(X[:, :2])) or np.any(X[:, :2] <= 0):
        raise ValueError("cpu_milli and memory_mib must be finite and > 0")
    if y is None:
        return X, None
    y = np.asarray(y, dtype=float).ravel()
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}")
    if np.any(np.isnan(y)) or np.any(y <= 0):
        raise ValueError("p99 latencies must be > 0 (inf allowed, NaN not)")
    return X, y


def _isotonic_2d(alloc: np.ndarray, means: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted least-squares fit of ``means`` non-increasing on the dominance order of
    ``alloc`` (rows ``(cpu, mem)``); ``means`` itself when it already is."""
    k = len(means)
    pairs = [(a, b) for a in range(k) for b in range(k) if a != b
             and alloc[b, 0] >= alloc[a, 0] and alloc[b, 1] >= alloc[a, 1]]
    if all(means[a] >= means[b] - 1e-12 for a, b in pairs):
        return means.astype(float)
    A = np.zeros((len(pairs), k))
    for row, (a, b) in enumerate(pairs):
        A[row, a], A[row, b] = 1.0, -1.0  # mu_a - mu_b >= 0: the larger b is no slower
    res = minimize(
        lambda mu: float(np.sum(weights * (mu - means) ** 2)), means.astype(float),
        jac=lambda mu: 2.0 * weights * (mu - means), method="SLSQP",
        constraints=[{"type": "ineq", "fun": lambda mu: A @ mu, "jac": lambda mu: A}],
        options={"maxiter": 500, "ftol": 1e-12},
    )
    return np.asarray(res.x, dtype=float)


class AllocationCurve(RegressorMixin, BaseEstimator):
    """Monotone p99-vs-allocation model with repeat-derived noise (module docstring).

    Args:
        ceiling_ms: where infinite or larger p99 values are clipped (None: 10x the largest
            finite value seen, at least 1 s).
        prior_weight: pseudo-observations the pooled spread is worth at each allocation.

    Learned attributes:
        levels_: sorted memory levels (MiB) seen.
        fitted_: ``(cpu_milli, memory_mib) -> fitted log p99`` per measured allocation.
        pooled_sd_, pooled_dof_: the pooled spread of ``log p99`` between repeats and its
            degrees of freedom (0 when no allocation was repeated).
        groups_: per allocation ``(cpu_milli, memory_mib) -> (n, mean log, sd log)``.
        ceiling_ms_: the clipping value used.
    """

    def __init__(self, ceiling_ms: float | None = None, prior_weight: float = 4.0):
        self.ceiling_ms = ceiling_ms
        self.prior_weight = prior_weight

    def fit(self, X, y):
        """Fit on runs ``X = [[cpu_milli, memory_mib], ...]``, ``y = p99_ms``.

        Raises:
            ValueError: wrong shape, non-positive allocation or latency, NaN latency, empty.
        """
        X, y = _as_arrays(X, y)
        if X.shape[0] == 0:
            raise ValueError("no runs to fit")
        finite = y[np.isfinite(y)]
        ceiling = self.ceiling_ms
        if ceiling is None:
            ceiling = max(1000.0, 10.0 * float(finite.max())) if finite.size else 1000.0
        self.ceiling_ms_ = float(ceiling)
        logy = np.log(np.minimum(y, self.ceiling_ms_))
        frame = pd.DataFrame({"cpu": X[:, 0], "mem": X[:, 1], "logy": logy})
        self.groups_ = {}
        ss = 0.0
        dof = 0
        for (cpu, mem), g in frame.groupby(["cpu", "mem"], sort=True):
            n = len(g)
            sd = float(g["logy"].std(ddof=1)) if n > 1 else math.nan
            self.groups_[(float(cpu), float(mem))] = (n, float(g["logy"].mean()), sd)
            if n > 1:
                ss += (n - 1) * sd**2
                dof += n - 1
        self.pooled_dof_ = dof
        self.pooled_sd_ = math.sqrt(ss / dof) if dof else math.nan
        keys = list(self.groups_)
        fitted = _isotonic_2d(np.array(keys), np.array([self.groups_[k][1] for k in keys]),
                              np.array([self.groups_[k][0] for k in keys], dtype=float))
        self.fitted_ = dict(zip(keys, fitted, strict=True))
        self.levels_ = np.array(sorted({k[1] for k in keys}))
        self.n_features_in_ = X.shape[1]
        return self

    def _level(self, mem: float) -> float:
        below = self.levels_[self.levels_ <= mem]
        return float(below.max()) if below.size else float(self.levels_.min())

    def predict_log(self, X) -> np.ndarray:
        """Fitted ``log p99`` (ms) at each row, shape (n,): the monotone fit at a measured
        allocation; between two measured CPUs of the same memory level, linear in
        ``log cpu``; beyond the level's measured CPUs, the nearest one's value; at an
        unmeasured memory level, the nearest measured level below it (conservative)."""
        check_is_fitted(self)
        X, _ = _as_arrays(X)
        out = np.empty(X.shape[0])
        for i, (cpu, mem) in enumerate(X[:, :2]):
            level = self._level(mem)
            pts = sorted((c, v) for (c, m), v in self.fitted_.items() if m == level)
            xs = np.log([c for c, _ in pts])
            out[i] = float(np.interp(math.log(cpu), xs, [v for _, v in pts]))
        return out

    def predict(self, X) -> np.ndarray:
        """Fitted (median) p99 in ms at each row, shape (n,)."""
        return np.exp(self.predict_log(X))

    def spread(self, cpu_milli: float, memory_mib: float) -> tuple[float, float, int]:
        """``(sd of log p99, degrees of freedom, runs)`` at an allocation: its own repeats
        shrunk toward the pooled spread; an unmeasured allocation gets the pooled spread
        (``(nan, 0, 0)`` when nothing was repeated)."""
        check_is_fitted(self)
        n, _, sd = self.groups_.get((float(cpu_milli), float(memory_mib)), (0, 0.0, math.nan))
        k = min(self.prior_weight, float(self.pooled_dof_))
        own = n - 1 if n > 1 else 0
        if own + k <= 0:
            return math.nan, 0, n
        pooled = self.pooled_sd_ if self.pooled_dof_ else 0.0
        var = ((own * sd**2 if own else 0.0) + k * pooled**2) / (own + k)
        return math.sqrt(var), int(round(own + k)), n

    def prob_meets(self, X, target_ms: float) -> np.ndarray:
        """P(a fresh run's p99 <= ``target_ms``) at each row (Student-t predictive), shape
        (n,); 0.5 where the spread is unknown and the fit sits exactly on the target."""
        X, _ = _as_arrays(X)
        mu = self.predict_log(X)
        out = np.empty(X.shape[0])
        for i, (cpu, mem) in enumerate(X[:, :2]):
            sd, dof, n = self.spread(cpu, mem)
            gap = math.log(target_ms) - mu[i]
            if not dof or not math.isfinite(sd):
                out[i] = 1.0 if gap > 0 else 0.0 if gap < 0 else 0.5
                continue
            scale = sd * math.sqrt(1.0 + 1.0 / max(n, 1))
            if scale <= 0:
                out[i] = 1.0 if gap >= 0 else 0.0
            else:
                out[i] = float(student_t.cdf(gap / scale, dof))
        return out

    def upper(self, X, confidence: float) -> np.ndarray:
        """The p99 (ms) a fresh run stays under with probability ``confidence``, per row."""
        X, _ = _as_arrays(X)
        mu = self.predict_log(X)
        out = np.empty(X.shape[0])
        for i, (cpu, mem) in enumerate(X[:, :2]):
            sd, dof, n = self.spread(cpu, mem)
            if not dof or not math.isfinite(sd):
                out[i] = math.inf
                continue
            q = float(student_t.ppf(confidence, dof))
            out[i] = math.exp(mu[i] + q * sd * math.sqrt(1.0 + 1.0 / max(n, 1)))
        return out

    def summary(self, target_ms: float, confidence: float) -> pd.DataFrame:
        """One row per measured allocation (:data:`SUMMARY_COLUMNS`), cheapest CPU first."""
        check_is_fitted(self)
        keys = sorted(self.groups_, key=lambda k: (k[1], k[0]))
        if not keys:
            return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
        X = np.array(keys, dtype=float)
        rows = []
        p_meet = self.prob_meets(X, target_ms)
        upper = self.upper(X, confidence)
        fit = self.predict(X)
        for i, (cpu, mem) in enumerate(keys):
            n, mean_log, _ = self.groups_[(cpu, mem)]
            sd, dof, _ = self.spread(cpu, mem)
            rows.append({
                "cpu_milli": int(cpu), "memory_mib": int(mem), "n": n,
                "p99_ms": float(fit[i]), "p99_measured_ms": math.exp(mean_log),
                "p99_upper_ms": float(upper[i]), "spread": sd, "dof": dof,
                "p_meet": float(p_meet[i]),
            })
        return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        tags.input_tags.positive_only = True
        tags.regressor_tags.poor_score = True
        return tags
