"""Co-location interference: pressure and sensitivity profiles from a few probe co-runs.

The model follows Bubble-Up (Mars et al., MICRO 2011) and Paragon (Delimitrou & Kozyrakis,
ASPLOS 2013), in the pressure/sensitivity vocabulary of URSA: a new workload is not run
against every other workload; it is co-run briefly with at most three fixed *probe*
workloads. From each probe co-run come two numbers:

* **sensitivity** to probe ``p``: ``1 - f(w | p)``, the throughput the workload loses
  next to the probe (``f`` = co-located throughput / solo throughput), and
* **pressure** on probe ``p``: ``1 - f(p | w)``, the throughput it takes from the probe.

Each probe stresses a different mix of the GPU's shared resources (SM time, GPU memory
capacity and bandwidth, PCIe), so the probe vector stands for the resource vector. A
regressor (extra trees, scikit-learn) learns ``f(a | b)`` from ``(sensitivity_a, pressure_a,
sensitivity_b, pressure_b)`` on measured pairs, and then predicts any pair of profiled
workloads in both directions: what ``a`` suffers next to ``b``, and what it inflicts.

Data: Gavel (Narayanan et al., OSDI 2020), stanford-futuredata/gavel
``scheduler/physical_cluster_throughputs.json`` (MIT): measured throughput of DL training
jobs alone and when two share one GPU, per GPU type. A fraction of 0 means the pair could
not run together (e.g. GPU memory).
"""

from __future__ import annotations

import ast
import functools
import json
import math
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor
from sklearn.utils.validation import check_is_fitted, validate_data

from cohabit.model import InterferenceProfile, probe_key

from ._common import fan_out
from .telemetry_data import TelemetryDataError

__all__ = [
    "InterferenceModel",
    "choose_probes",
    "evaluate_interference",
    "load_gavel",
    "pair_features",
    "probe_profile",
]


MAX_GAVEL_KEY_CHARS = 300
"""Longest ``"(job, scale)"`` key :func:`load_gavel` parses (Gavel's are under 60)."""


def load_gavel(path: str | Path, gpu_types: Sequence[str] | None = None) -> pd.DataFrame:
    """Read Gavel's co-location throughputs into one row per ordered pair.

    Args:
        path: ``physical_cluster_throughputs.json`` (``{gpu: {"(job, scale)": {"null": solo,
            "(other, scale)": [tput_job, tput_other]}}}``).
        gpu_types: GPU types to keep (default: every type the file holds).

    Returns:
        Columns ``gpu``, ``a``, ``b`` (job names), ``scale`` (workers), ``solo_a``,
        ``fraction`` (= throughput of ``a`` next to ``b`` / ``solo_a``, in [0, ~1]).

    Raises:
        TelemetryDataError: unreadable file, a GPU type of ``gpu_types`` the file does not
            hold (the message lists those it holds), or an entry that does not follow the
            schema: a level that is not an object, a key that is not ``"('name', scale)"``
            with a whole ``scale`` >= 1, a throughput that is not a finite number >= 0 (the
            message names the GPU type and key).
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise TelemetryDataError(f"{path}: cannot read Gavel throughputs: {exc}") from exc
    if not isinstance(raw, dict):
        raise TelemetryDataError(f"{path}: top level must be an object keyed by GPU type")
    missing = sorted(set(gpu_types or ()) - set(raw))
    if missing:
        raise TelemetryDataError(
            f"{path}: no GPU type {', '.join(missing)} (the file holds "
            f"{', '.join(sorted(raw)) or 'none'})")
    rows = []
    for gpu, jobs in raw.items():
        if gpu_types is not None and gpu not in gpu_types:
            continue
        if not isinstance(jobs, dict):
            raise TelemetryDataError(f"{path}: {gpu}: must be an object keyed by '(job, scale)'")
        for key, entry in jobs.items():
            try:
                rows += _gavel_pairs(gpu, key, entry)
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                raise TelemetryDataError(f"{path}: {gpu} / {key[:80]}: bad entry: {exc}") from exc
    if not rows:
        raise TelemetryDataError(f"{path}: no pairs for GPU types {gpu_types}")
    return pd.DataFrame(rows, columns=["gpu", "a", "b", "scale", "solo_a", "fraction"])


def _gavel_key(key: str) -> tuple[str, int]:
    """``"('ResNet-18 (batch size 16)', 1)"`` -> ``("ResNet-18 (batch size 16)", 1)``.

    Raises:
        ValueError: not a ``(str, whole number >= 1)`` tuple literal (or a key too long).
    """
    if len(key) > MAX_GAVEL_KEY_CHARS:
        raise ValueError(f"key longer than {MAX_GAVEL_KEY_CHARS} characters")
    try:
        value = ast.literal_eval(key)
    except (SyntaxError, MemoryError, RecursionError) as exc:
        raise ValueError(f"not a '(job, scale)' tuple: {exc}") from None
    ok = isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)
    if not ok or type(value[1]) is not int or value[1] < 1:
        raise ValueError("not a '(job name, workers >= 1)' tuple")
    return value[0], value[1]


def _throughput(value: object) -> float:
    """A throughput as a finite float >= 0 (ValueError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"throughput {value!r} is not a number")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"throughput {value!r} is not a finite number >= 0")
    return float(value)


def _gavel_pairs(gpu: str, key: str, entry: object) -> list[tuple]:
    """The rows of one job's entry: ``(gpu, a, b, scale, solo_a, fraction)``."""
    name, scale = _gavel_key(key)
    if not isinstance(entry, dict):
        raise ValueError("entry must be an object with 'null' and '(other, scale)' keys")
    solo = _throughput(entry["null"])
    rows = []
    for other_key, tputs in entry.items():
        if other_key == "null":
            continue
        other, other_scale = _gavel_key(other_key)
        if other_scale != scale:
            continue
        if not isinstance(tputs, list) or len(tputs) != 2:
            raise ValueError(f"{other_key[:80]}: expected [throughput, other's throughput]")
        frac = _throughput(tputs[0]) / solo if solo > 0 else 0.0
        if not math.isfinite(frac):
            raise ValueError(f"{other_key[:80]}: throughput {tputs[0]!r} / solo {solo!r} "
                             "is not a finite fraction")
        _throughput(tputs[1])
        rows.append((gpu, name, other, scale, solo, frac))
    return rows


def _lookup(pairs: pd.DataFrame) -> dict[tuple[str, str, int], float]:
    return dict(zip(zip(pairs["a"], pairs["b"], pairs["scale"], strict=True),
                    pairs["fraction"], strict=True))


def probe_profile(
    pairs: pd.DataFrame, job: str, scale: int, probes: Sequence[str]
) -> InterferenceProfile:
    """A workload's profile from its co-runs with the probes (one GPU type's pairs).

    Returns:
        :class:`~cohabit.model.InterferenceProfile` with keys
        :func:`~cohabit.model.probe_key` ``(i, probe name)`` (``probe<i>:<probe name>``):
        sensitivity ``1 - f(job | probe)``, pressure ``1 - f(probe | job)``; a co-run that was
        not measured gives NaN.
    """
    f = _lookup(pairs)
    sens = tuple((probe_key(i, p), 1.0 - f.get((job, p, scale), np.nan))
                 for i, p in enumerate(probes))
    press = tuple((probe_key(i, p), 1.0 - f.get((p, job, scale), np.nan))
                  for i, p in enumerate(probes))
    return InterferenceProfile(pressure=press, sensitivity=sens)


def _vector(profile: InterferenceProfile) -> list[float]:
    return [v for _, v in profile.sensitivity] + [v for _, v in profile.pressure]


def pair_features(
    pairs: pd.DataFrame,
    probes: Sequence[str],
    with_victim_profile: bool = True,
    measured: pd.DataFrame | None = None,
) -> np.ndarray:
    """Feature rows for ``pairs``: ``[profile(a), profile(b)]`` (or ``profile(b)`` only).

    A profile is ``[sensitivity to each probe, pressure on each probe]``; shape
    ``(len(pairs), 4k)`` or ``(len(pairs), 2k)`` for ``k`` probes. Profiles are looked up in
    ``measured`` (default: ``pairs``), which must hold the probe co-runs; unmeasured ones
    are NaN.
    """
    f = _lookup(pairs if measured is None else measured)
    cache: dict[tuple[str, int], list[float]] = {}

    def prof(job: str, scale: int) -> list[float]:
        key = (job, scale)
        if key not in cache:
            cache[key] = [1.0 - f.get((job, p, scale), np.nan) for p in probes] + [
                1.0 - f.get((p, job, scale), np.nan) for p in probes
            ]
        return cache[key]

    rows = []
    for a, b, s in zip(pairs["a"], pairs["b"], pairs["scale"], strict=True):
        rows.append((prof(a, s) if with_victim_profile else []) + prof(b, s))
    return np.asarray(rows, dtype=float)


def choose_probes(pairs: pd.DataFrame, k: int = 3, shared_only: bool = True) -> list[str]:
    """Pick ``k`` probe workloads from ``pairs`` (training jobs only).

    Greedy, in the spirit of Paragon's choice of informative microbenchmarks: the first probe
    is the co-runner whose inflicted fractions ``f(. | p)`` vary most across jobs; each next
    one maximises the variance left after regressing its column on the chosen ones. Only
    jobs measured at every scale are candidates, so a profile exists at every scale.

    Args:
        shared_only: score the variance on the smallest scale's pairs only (1-GPU jobs that
            share one GPU). Gavel's multi-GPU pairs are all 0 (never shared): they carry no
            information on interference and would only add the variance between scales.
    """
    wide = pairs.pivot_table(index=["a", "scale"], columns="b", values="fraction")
    wide = wide.dropna(axis=1)
    if wide.shape[1] < k:
        raise ValueError(f"only {wide.shape[1]} complete co-runners, {k} probes asked")
    if shared_only:
        scales = wide.index.get_level_values("scale")
        wide = wide[scales == scales.min()]
    cols = list(wide.columns)
    M = wide.to_numpy(float)
    M = M - M.mean(axis=0)
    chosen: list[int] = []
    for _ in range(k):
        if chosen:
            B = M[:, chosen]
            coef, *_ = np.linalg.lstsq(B, M, rcond=None)
            R = M - B @ coef
        else:
            R = M
        score = (R**2).sum(axis=0)
        score[chosen] = -1.0
        chosen.append(int(np.argmax(score)))
    return [str(cols[i]) for i in chosen]


class InterferenceModel(RegressorMixin, BaseEstimator):
    """Predicts the co-located throughput fraction ``f(a | b)`` from probe profiles.

    ``fit(X, y)``: ``X`` rows from :func:`pair_features` (NaN = unmeasured probe co-run,
    filled with the column mean of training), ``y`` fractions in [0, 1]. ``predict(X)``
    returns fractions clipped to ``[0, clip_max]``. Use :meth:`as_callable` to hand
    placement a plain ``(profile_a, profile_b) -> float``.

    Args:
        n_estimators, min_samples_leaf, random_state: of the extra-trees regressor
            (Geurts et al. 2006).
        clip_max: upper clip of predictions (Gavel fractions rarely exceed 1).
        n_probes: if set, ``X`` must be the full ``[profile(a), profile(b)]`` rows of that many
            probes (``4 * n_probes`` columns), and the model also sees the pressure x
            sensitivity products ``sensitivity_a[i] * pressure_b[j]`` (the bilinear
            interaction of URSA/Bubble-Up: what ``a`` suffers grows with how sensitive it is
            to the resources ``b`` presses on). ``None`` = the raw profile only.
        hurdle: two-stage (hurdle) model, after Cragg (1971): an extra-trees classifier for
            "the pair cannot co-run" (fraction 0 in training) and an extra-trees regressor fit
            only on the pairs that ran. The prediction is 0 where the probability of failure
            exceeds ``hurdle_threshold``, else the regressor's fraction (for the absolute
            error, the point of the two-part mixture to predict: a failed co-run is
            all-or-nothing, and one regressor averages it into "half speed"). With
            ``n_probes`` set the failure probability is made symmetric (mean over ``(a, b)``
            and ``(b, a)``: a pair that cannot share a GPU fails in both directions). With no
            zeros (or only zeros) in training it falls back to the single regressor.
        hurdle_threshold: failure probability above which ``hurdle`` predicts 0.
        aggregate: how the trees' predictions are combined: ``"mean"`` (scikit-learn's
            forest, the conditional mean) or ``"median"`` (the median over trees: with
            leaves of one training pair this is the weighted median of the quantile
            regression forest of Meinshausen, JMLR 2006, and the median is the point that
            minimises the absolute error the benchmark judges; a pair that may or may not
            run gets the likelier outcome instead of "half speed").
    """

    def __init__(
        self,
        n_estimators: int = 200,
        min_samples_leaf: int = 1,
        random_state: int = 0,
        clip_max: float = 1.0,
        n_probes: int | None = None,
        hurdle: bool = False,
        hurdle_threshold: float = 0.5,
        aggregate: str = "mean",
    ):
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state
        self.clip_max = clip_max
        self.n_probes = n_probes
        self.hurdle = hurdle
        self.hurdle_threshold = hurdle_threshold
        self.aggregate = aggregate

    def _fill(self, X: np.ndarray) -> np.ndarray:
        X = np.where(np.isnan(X), self.fill_, X)
        if self.n_probes is None:
            return X
        k = self.n_probes
        sens_a, press_b = X[:, :k], X[:, 3 * k:4 * k]
        products = (sens_a[:, :, None] * press_b[:, None, :]).reshape(len(X), k * k)
        return np.hstack([X, products])

    def _swapped(self, X: np.ndarray) -> np.ndarray | None:
        """Rows ``[profile(b), profile(a)]`` of raw rows ``X`` (None without ``n_probes``)."""
        if self.n_probes is None:
            return None
        half = 2 * self.n_probes
        return np.hstack([X[:, half:], X[:, :half]])

    def fit(self, X, y):
        """Fit on pair features ``X`` (n, d) and fractions ``y`` (n,)."""
        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan", y_numeric=True)
        if self.aggregate not in ("mean", "median"):
            raise ValueError(f"aggregate must be 'mean' or 'median', got {self.aggregate!r}")
        if self.n_probes is not None and X.shape[1] != 4 * self.n_probes:
            raise ValueError(
                f"with n_probes={self.n_probes} X needs {4 * self.n_probes} columns "
                f"([profile(a), profile(b)]), got {X.shape[1]}"
            )
        fill = np.nanmean(np.where(np.isnan(X), np.nan, X), axis=0) if X.size else np.zeros(0)
        self.fill_ = np.nan_to_num(fill, nan=0.0)
        Xf = self._fill(X)
        kw = dict(n_estimators=self.n_estimators, min_samples_leaf=self.min_samples_leaf,
                  random_state=self.random_state, n_jobs=1)
        failed = y <= 0.0
        self.failure_ = None
        if self.hurdle and failed.any() and not failed.all():
            self.failure_ = ExtraTreesClassifier(**kw).fit(Xf, failed)
            self.forest_ = ExtraTreesRegressor(**kw).fit(Xf[~failed], y[~failed])
        else:
            self.forest_ = ExtraTreesRegressor(**kw).fit(Xf, y)
        return self

    def _predict_raw(self, X: np.ndarray) -> np.ndarray:
        """Predictions for raw (NaN-holding) rows ``X`` that passed validation."""
        Xf = self._fill(X)
        if self.aggregate == "median":
            pred = np.median([tree.predict(Xf) for tree in self.forest_.estimators_], axis=0)
        else:
            pred = self.forest_.predict(Xf)
        if self.failure_ is not None:
            col = list(self.failure_.classes_).index(True)
            p_fail = self.failure_.predict_proba(Xf)[:, col]
            swapped = self._swapped(X)
            if swapped is not None:
                p_fail = (p_fail + self.failure_.predict_proba(self._fill(swapped))[:, col]) / 2
            pred = np.where(p_fail > self.hurdle_threshold, 0.0, pred)
        return np.clip(pred, 0.0, self.clip_max)

    def predict(self, X):
        """Predicted fractions, shape (n,)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan")
        return self._predict_raw(X)

    def as_callable(self) -> Callable[[InterferenceProfile, InterferenceProfile], float]:
        """A plain function ``(profile_a, profile_b) -> f(a | b)`` (throughput fraction of
        ``a`` next to ``b``); call it with the arguments swapped for what ``a`` inflicts.

        Profiles must come from :func:`probe_profile` with the probes the model was fit on.
        """
        check_is_fitted(self)

        def interference(profile_a: InterferenceProfile, profile_b: InterferenceProfile) -> float:
            row = np.asarray([_vector(profile_a) + _vector(profile_b)], dtype=float)
            if row.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"profiles give {row.shape[1]} features, the model expects "
                    f"{self.n_features_in_}"
                )
            return float(self._predict_raw(row)[0])

        return interference

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def _spearman(pred: np.ndarray, true: np.ndarray) -> float:
    if np.ptp(pred) == 0 or np.ptp(true) == 0:
        return float("nan")
    return float(spearmanr(pred, true).statistic)


def _within_job_spearman(p: pd.DataFrame) -> float:
    values = [
        _spearman(q["pred"].to_numpy(), q["true"].to_numpy())
        for _, q in p[p["scale"] == 1].groupby("held_out")
    ]
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def _fit_predict_by_scale(
    train: pd.DataFrame,
    test: pd.DataFrame,
    probes: Sequence[str],
    measured: pd.DataFrame,
    n_estimators: int,
    products: bool,
    hurdle: bool = False,
    aggregate: str = "mean",
) -> np.ndarray:
    """One :class:`InterferenceModel` per job scale (1-GPU pairs share a GPU; Gavel's
    multi-GPU pairs never do), fit on the training pairs of that scale and used for the test
    pairs of the same scale; a scale absent from training falls back to a model on all."""
    pred = np.empty(len(test))
    kw: dict[str, Any] = dict(n_estimators=n_estimators,
                              n_probes=len(probes) if products else None, hurdle=hurdle,
                              aggregate=aggregate)
    fallback = None
    for scale in np.unique(test["scale"]):
        rows = (test["scale"] == scale).to_numpy()
        part = train[train["scale"] == scale]
        if len(part) < 10:
            if fallback is None:
                fallback = InterferenceModel(**kw).fit(
                    pair_features(train, probes), train["fraction"])
            model = fallback
        else:
            model = InterferenceModel(**kw).fit(pair_features(part, probes), part["fraction"])
        pred[rows] = model.predict(pair_features(test[rows], probes, measured=measured))
    return pred


def evaluate_interference(
    pairs: pd.DataFrame, n_probes: int = 3, n_estimators: int = 200,
    executor: Executor | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Leave-one-job-out evaluation per GPU type (grouped by job name, all scales held out).

    For each held-out job ``h`` (never a probe), probes are chosen on the other jobs, the
    models are fit on pairs among the other jobs (one per job scale), and every measured pair
    involving ``h`` is predicted: ``h`` as victim (what it suffers) and as aggressor (what it
    inflicts).

    The held-out job's co-runs with its probes are measured while profiling it, so the
    profile-based methods return those measured fractions for them (flag ``probe_pair``;
    ``mae_single_gpu_unprobed`` leaves them out and judges only pairs never run).

    Methods: ``probe-profile`` (ours, ``n_probes`` probes, with the pressure x sensitivity
    products, median over the trees), ``probe-profile-mean`` (the same, mean over the trees:
    the earlier headline), ``probe-profile-hurdle`` (``probe-profile`` with ``hurdle=True``:
    "can the pair co-run at all" classifier, then the fraction of pairs that run),
    ``probe-profile-raw`` (mean over trees, without the products), ``no-profile`` (the same
    model with only the other side's profile: no probe run of the new job),
    ``mean-fraction`` (training mean), ``mean-fraction-per-scale`` (training mean of pairs of
    the same scale: a stronger baseline on 1-GPU pairs), ``no-interference`` (1.0).

    Args:
        pairs: :func:`load_gavel` rows (``gpu``, ``a``, ``b``, ``scale``, ``fraction``).
        n_probes: probe workloads per profile (:func:`choose_probes`).
        n_estimators: trees per forest.
        executor: where the folds (one per GPU type x held-out job) run: ``None`` = in this
            process; a :class:`concurrent.futures.Executor` (e.g. a Dask cluster's, ``cohabit
            evaluate interference --executor dask``) judges chunks of folds in parallel, with
            identical results (each fold's forests have fixed seeds).

    Raises:
        ValueError: a GPU type has too few jobs measured against every other to choose
            ``n_probes`` probes (from :func:`choose_probes`).

    Returns:
        ``(predictions, summary)``: one row per predicted pair and method with ``gpu``,
        ``held_out``, ``direction``, ``true``, ``pred``; and per ``gpu`` x ``method`` the
        ``mae``, ``spearman`` (pooled) and ``pairs``, plus ``spearman_within_job`` (rank
        correlation among one held-out job's 1-GPU pairs, averaged over jobs: does the model
        order its neighbours right; NaN for constant predictors),
        ``mae_suffered``/``mae_inflicted`` (by direction), ``mae_job_p90`` (90th percentile
        over held-out jobs), ``mae_single_gpu`` (pairs of 1-GPU jobs only: Gavel's multi-GPU
        pairs are all 0, i.e. never shared), ``mae_single_gpu_unprobed`` (the same without the
        held-out job's probe co-runs) and ``mae_nonzero`` (pairs that did run together).
    """
    folds = [(gpu, held) for gpu, g in pairs.groupby("gpu", sort=True)
             for held in sorted(set(g["a"]))]
    judge = functools.partial(_judge_folds, pairs, n_probes, n_estimators)
    out = fan_out(executor, judge, folds)
    preds = pd.concat(out, ignore_index=True)
    rows = []
    for (gpu, method), p in preds.groupby(["gpu", "method"], sort=False):
        err = (p["pred"] - p["true"]).abs()
        rows.append({
            "gpu": gpu, "method": method, "mae": float(err.mean()),
            "spearman": _spearman(p["pred"].to_numpy(), p["true"].to_numpy()),
            "spearman_within_job": _within_job_spearman(p),
            "mae_suffered": float(err[p["direction"] == "suffered"].mean()),
            "mae_inflicted": float(err[p["direction"] == "inflicted"].mean()),
            "mae_job_p90": float(err.groupby(p["held_out"]).mean().quantile(0.9)),
            "mae_single_gpu": float(err[p["scale"] == 1].mean()),
            "mae_single_gpu_unprobed": float(err[(p["scale"] == 1) & ~p["probe_pair"]].mean()),
            "mae_nonzero": float(err[p["true"] > 0].mean()),
            "pairs": int(len(p)),
        })
    return preds, pd.DataFrame(rows)


def _judge_folds(pairs: pd.DataFrame, n_probes: int, n_estimators: int,
                 folds: list[tuple[str, str]]) -> list[pd.DataFrame]:
    """The prediction rows of every ``(gpu, held-out job)`` fold of ``folds`` (one task of
    :func:`evaluate_interference`)."""
    out: list[pd.DataFrame] = []
    for gpu, held in folds:
        g = pairs[pairs["gpu"] == gpu]
        out += _judge_fold(g, gpu, held, n_probes, n_estimators)
    return out


def _judge_fold(g: pd.DataFrame, gpu: str, held: str, n_probes: int,
                n_estimators: int) -> list[pd.DataFrame]:
    """One fold: ``held`` out of GPU type ``gpu``'s pairs ``g``; every method's rows."""
    out: list[pd.DataFrame] = []
    train = g[(g["a"] != held) & (g["b"] != held)]
    probes = choose_probes(train, n_probes)
    if held in probes:  # cannot happen: probes come from train
        return out
    test = g[(g["a"] == held) | (g["b"] == held)]
    test = test[~((test["a"] == held) & (test["b"] == held))]
    direction = np.where(test["a"] == held, "suffered", "inflicted")
    partner = np.where(direction == "suffered", test["b"], test["a"])
    probe_pair = np.isin(partner, probes)
    measured_value = np.where(probe_pair, test["fraction"].to_numpy(float), np.nan)

    def profiled(pred: np.ndarray, probe_pair=probe_pair, measured=measured_value):
        return np.where(probe_pair, measured, pred)

    pred_ours = profiled(_fit_predict_by_scale(
        train, test, probes, g, n_estimators, True, aggregate="median"))
    pred_mean = profiled(
        _fit_predict_by_scale(train, test, probes, g, n_estimators, True))
    pred_hurdle = profiled(_fit_predict_by_scale(
        train, test, probes, g, n_estimators, True, hurdle=True, aggregate="median"))
    pred_raw = profiled(
        _fit_predict_by_scale(train, test, probes, g, n_estimators, False))
    nop = InterferenceModel(n_estimators=n_estimators)
    # Victim side unknown: model sees only the other job's profile in that direction.
    train_v = pair_features(train, probes, with_victim_profile=False)
    nop.fit(train_v, train["fraction"])
    # Aggressor-side model: predict f(a | b) from a's profile only.
    swapped = train.rename(columns={"a": "b", "b": "a"})
    nop_a = InterferenceModel(n_estimators=n_estimators).fit(
        pair_features(swapped, probes, with_victim_profile=False), train["fraction"]
    )
    test_v = pair_features(test, probes, with_victim_profile=False, measured=g)
    test_a = pair_features(
        test.rename(columns={"a": "b", "b": "a"}), probes,
        with_victim_profile=False, measured=g,
    )
    pred_nop = np.where(direction == "suffered", nop.predict(test_v), nop_a.predict(test_a))
    mean = float(train["fraction"].mean())
    by_scale = train.groupby("scale")["fraction"].mean()
    mean_scale = test["scale"].map(by_scale).fillna(mean).to_numpy(float)
    for method, pred in (
        ("probe-profile", pred_ours),
        ("probe-profile-mean", pred_mean),
        ("probe-profile-hurdle", pred_hurdle),
        ("probe-profile-raw", pred_raw),
        ("no-profile", pred_nop),
        ("mean-fraction", np.full(len(test), mean)),
        ("mean-fraction-per-scale", mean_scale),
        ("no-interference", np.ones(len(test))),
    ):
        out.append(pd.DataFrame({
            "gpu": gpu, "held_out": held, "method": method, "direction": direction,
            "a": test["a"].to_numpy(), "b": test["b"].to_numpy(),
            "scale": test["scale"].to_numpy(), "true": test["fraction"].to_numpy(),
            "pred": pred, "probe_pair": probe_pair,
        }))
    return out
