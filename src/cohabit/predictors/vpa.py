"""A faithful re-implementation of the Kubernetes Vertical Pod Autoscaler recommender.

This is cohabit's *baseline* for right-sizing: what a user running the upstream VPA would
get from the same usage history. Written from the upstream design, not copied from it.
Upstream sources (kubernetes/autoscaler, ``vertical-pod-autoscaler/pkg/recommender/``):

* ``util/histogram.go``, ``util/decaying_histogram.go``: histograms over exponential buckets
  (bucket ``i`` starts at ``first * (ratio**i - 1) / (ratio - 1)``), whose sample weights grow
  as ``2 ** ((t - t_ref) / half_life)`` so that old samples lose half their weight every
  half-life; ``Percentile`` returns the *end* of the bucket holding the percentile.
* ``model/aggregations_config.go``: CPU buckets start at 0.01 core (newer releases use
  0.001), memory buckets at 1e7 bytes, 5 % growth, 24 h half-life for both; memory peaks per
  24 h interval, 8 intervals; OOM bump ``max(+100 MiB, x1.2)``; ``minSampleWeight`` 0.1.
  Here decay weights are taken relative to the newest sample (upstream shifts a reference
  timestamp to avoid overflow; percentiles are the same), and upstream's ``epsilon``
  (minimum bucket weight) is not applied.
* ``model/aggregate_container_state.go``, ``model/container.go``: CPU samples weighted by
  ``max(request, 0.1)``; memory enters the histogram as one peak per interval; an OOM adds
  a memory sample of ``max(used + 100 MiB, used * 1.2)``.
* ``logic/recommender.go``, ``logic/estimator.go``: target p90, lower bound p50, upper bound
  p95, each plus a 15 % safety margin; confidence ``min(lifespan_days, samples / 1440)``;
  upper bound x ``(1 + 1/confidence)``, lower bound x ``(1 + 0.001/confidence) ** -2``;
  minimums 25 millicores and 250 MiB per pod.

cohabit maps its four resources onto the two VPA kinds: ``cpu_milli`` and ``gpu_milli`` are
CPU-like (usage histogram; GPU share in GPUs takes the place of cores), ``memory_mib`` and
``gpu_memory_mib`` memory-like (daily peaks, OOM bump; GPU memory in bytes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ._common import MEMORY_LIKE, check_resource

__all__ = ["ExponentialHistogram", "VpaRecommender", "vpa_confidence"]

MIB = 2**20
DAY_S = 86400.0


@dataclass(frozen=True)
class ExponentialHistogram:
    """Bucket layout of VPA's exponential histograms (``util/histogram_options.go``).

    Attributes:
        max_value: largest representable value (values above land in the last bucket).
        first_bucket: size of the first bucket.
        ratio: each bucket is ``ratio`` times wider than the previous one.
    """

    max_value: float
    first_bucket: float
    ratio: float = 1.05

    @property
    def num_buckets(self) -> int:
        """Number of buckets, ``ceil(log(max*(r-1)/first + 1) / log r) + 1``."""
        r = self.ratio
        return int(math.ceil(math.log(self.max_value * (r - 1) / self.first_bucket + 1, r))) + 1

    def bucket_start(self, index: np.ndarray | int) -> np.ndarray:
        """Start of bucket ``index`` (0 for bucket 0)."""
        r = self.ratio
        return self.first_bucket * (np.power(r, index) - 1) / (r - 1)

    def find_bucket(self, values: np.ndarray) -> np.ndarray:
        """Bucket index of each value (values below ``first_bucket`` go to bucket 0)."""
        v = np.maximum(np.asarray(values, dtype=float), 0.0)
        r = self.ratio
        idx = np.floor(np.log(v * (r - 1) / self.first_bucket + 1) / math.log(r)).astype(int)
        return np.clip(idx, 0, self.num_buckets - 1)

    def percentile(self, values: np.ndarray, weights: np.ndarray, q: float) -> float:
        """VPA ``Histogram.Percentile``: end of the first bucket whose cumulative weight >= q.

        Returns 0.0 for an empty histogram (no positive weight).
        """
        if len(values) == 0 or not np.any(weights > 0):
            return 0.0
        n = self.num_buckets
        hist = np.bincount(self.find_bucket(values), weights=weights, minlength=n)
        cum = np.cumsum(hist)
        bucket = int(np.searchsorted(cum, q * cum[-1] * (1 - 1e-12), side="left"))
        bucket = min(bucket, n - 1)
        if bucket < n - 1:
            return float(self.bucket_start(bucket + 1))
        return float(self.bucket_start(bucket))


def vpa_confidence(times: np.ndarray, samples_per_day: float = 1440.0) -> float:
    """VPA's history confidence: ``min(lifespan in days, samples / 1440)`` (``estimator.go``).

    Args:
        times: sample times in seconds (any order).
        samples_per_day: samples that count as one day (upstream assumes 1 per minute).
    """
    if len(times) == 0:
        return 0.0
    lifespan = (float(np.max(times)) - float(np.min(times))) / DAY_S
    return min(lifespan, len(times) / samples_per_day)


class VpaRecommender(RegressorMixin, BaseEstimator):
    """The Kubernetes VPA recommender for one resource of one container (baseline).

    ``fit(X, y)``: ``X[:, 0]`` is the sample time in seconds (other columns ignored), ``y`` the
    usage in the resource's cohabit unit (millicores, MiB, milli-GPU, MiB). ``predict(X)``
    returns the target recommendation for every row (the recommendation does not depend on
    the row: VPA gives one request per container). Learned attributes (cohabit units):
    ``target_``, ``lower_``, ``upper_``, ``confidence_`` (VPA's days-of-history heuristic).
    Use :meth:`record_oom` for the OOM bump of memory-like resources.

    Args:
        resource: one of ``cpu_milli``, ``memory_mib``, ``gpu_milli``, ``gpu_memory_mib``.
        target_percentile, lower_percentile, upper_percentile: 0.9 / 0.5 / 0.95 upstream.
        safety_margin: 0.15 upstream.
        half_life_s: histogram decay half-life, 24 h upstream.
        cpu_first_bucket: first CPU bucket in cores (0.01; newer upstream 0.001).
        memory_first_bucket: first memory bucket in bytes (1e7).
        bucket_growth: 0.05.
        memory_interval_s, memory_intervals: peak window (24 h) and how many are kept (8).
        request: the container's request in cohabit units, weighting CPU-like samples as
            ``max(request, 0.1)`` (in cores/GPUs); ``None`` = weight 1.
        oom_ratio, oom_min_bump_mib: 1.2 and 100 MiB.
        min_cpu_milli, min_memory_mib: 25 and 250 (the pod minimums).
    """

    def __init__(
        self,
        resource: str = "cpu_milli",
        target_percentile: float = 0.9,
        lower_percentile: float = 0.5,
        upper_percentile: float = 0.95,
        safety_margin: float = 0.15,
        half_life_s: float = DAY_S,
        cpu_first_bucket: float = 0.01,
        memory_first_bucket: float = 1e7,
        bucket_growth: float = 0.05,
        memory_interval_s: float = DAY_S,
        memory_intervals: int = 8,
        request: float | None = None,
        oom_ratio: float = 1.2,
        oom_min_bump_mib: float = 100.0,
        min_cpu_milli: float = 25.0,
        min_memory_mib: float = 250.0,
    ):
        self.resource = resource
        self.target_percentile = target_percentile
        self.lower_percentile = lower_percentile
        self.upper_percentile = upper_percentile
        self.safety_margin = safety_margin
        self.half_life_s = half_life_s
        self.cpu_first_bucket = cpu_first_bucket
        self.memory_first_bucket = memory_first_bucket
        self.bucket_growth = bucket_growth
        self.memory_interval_s = memory_interval_s
        self.memory_intervals = memory_intervals
        self.request = request
        self.oom_ratio = oom_ratio
        self.oom_min_bump_mib = oom_min_bump_mib
        self.min_cpu_milli = min_cpu_milli
        self.min_memory_mib = min_memory_mib

    # -- unit mapping -------------------------------------------------------------------
    def _memory_like(self) -> bool:
        return self.resource in MEMORY_LIKE

    def _to_native(self, y: np.ndarray) -> np.ndarray:
        """cohabit units -> VPA units (cores/GPUs or bytes)."""
        return y * MIB if self._memory_like() else y / 1000.0

    def _from_native(self, v: float) -> float:
        return v / MIB if self._memory_like() else v * 1000.0

    def _histogram(self) -> ExponentialHistogram:
        ratio = 1.0 + self.bucket_growth
        if self._memory_like():
            return ExponentialHistogram(1e12, self.memory_first_bucket, ratio)
        return ExponentialHistogram(1000.0, self.cpu_first_bucket, ratio)

    def _samples(self, t: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(values, base weights, times) that enter the histogram."""
        native = self._to_native(y)
        if not self._memory_like():
            w = 1.0 if self.request is None else max(self.request / 1000.0, 0.1)
            return native, np.full(len(native), w), t
        # Memory: one peak per interval, the last ``memory_intervals`` intervals.
        window = np.floor((t - t.min()) / self.memory_interval_s).astype(int)
        keep = window > window.max() - self.memory_intervals
        window, native, t = window[keep], native[keep], t[keep]
        order = np.lexsort((-native, window))
        first = np.ones(len(order), dtype=bool)
        first[1:] = window[order][1:] != window[order][:-1]
        peaks = order[first]
        return native[peaks], np.ones(len(peaks)), t[peaks]

    # -- estimator API ------------------------------------------------------------------
    def fit(self, X, y):
        """Aggregate the usage history ``(X[:, 0] time s, y usage)`` into the histograms.

        Raises:
            ValueError: bad resource, non-finite or negative input (from sklearn validation).
        """
        check_resource(self.resource)
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        t = X[:, 0]
        self.times_ = t
        self.values_, self.weights_, self.sample_times_ = self._samples(t, y.astype(float))
        self.n_samples_ = len(y)
        self._recompute()
        return self

    def record_oom(self, time_s: float, used: float) -> VpaRecommender:
        """Add VPA's OOM sample ``max(used + 100 MiB, used * 1.2)`` and recompute.

        Only for memory-like resources; ``used`` is in MiB.

        Raises:
            ValueError: the resource is CPU-like.
        """
        check_is_fitted(self)
        if not self._memory_like():
            raise ValueError(f"record_oom applies to memory resources, not {self.resource}")
        bumped = max(used + self.oom_min_bump_mib, used * self.oom_ratio)
        self.values_ = np.append(self.values_, bumped * MIB)
        self.weights_ = np.append(self.weights_, 1.0)
        self.sample_times_ = np.append(self.sample_times_, time_s)
        self._recompute()
        return self

    def _recompute(self) -> None:
        hist = self._histogram()
        w = self.weights_
        if self.half_life_s > 0 and len(self.sample_times_):
            w = w * np.exp2((self.sample_times_ - self.sample_times_.max()) / self.half_life_s)
        margin = 1.0 + self.safety_margin
        base = {
            name: hist.percentile(self.values_, w, q) * margin
            for name, q in (
                ("target", self.target_percentile),
                ("lower", self.lower_percentile),
                ("upper", self.upper_percentile),
            )
        }
        conf = vpa_confidence(self.times_)
        upper = base["upper"] * (1.0 + 1.0 / conf) if conf > 0 else math.inf
        lower = base["lower"] * (1.0 + 0.001 / conf) ** -2 if conf > 0 else 0.0
        minimum = self.min_memory_mib if self._memory_like() else self.min_cpu_milli
        self.confidence_ = conf
        self.target_ = max(self._from_native(base["target"]), minimum)
        self.lower_ = max(self._from_native(lower), minimum)
        self.upper_ = max(self._from_native(upper), minimum)

    def predict(self, X):
        """The target recommendation (cohabit units) for each row of ``X``, shape (n,)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return np.full(X.shape[0], self.target_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # A request recommender predicts an upper percentile, not the mean: R^2 is poor.
        tags.regressor_tags.poor_score = True
        tags.input_tags.positive_only = False
        return tags
