"""Utilisation as placement sees it: per-pod usage history, predicted peaks, QoS class, and
which of those pods share which GPU.

Three families of placement signals read it:

* Kube-Knots (Thinakaran et al., "Kube-Knots: Resource Harvesting through Dynamic Container
  Orchestration in GPU-based Datacenters", IEEE CLUSTER 2019): *Correlation-Based
  Prediction* (co-locate only when the utilisation correlation of two pods is below 0.5) and
  *Peak Prediction* (the predicted peaks of the pods sharing a GPU must fit in it);
* Koordinator-style load-aware scheduling (usage thresholds, LS/BE classes);
* cohabit's correlation and peak-fit parts.

Placement never imports the predictors: the engine fills a :class:`UsageView` with numbers
(each pod's history, its predicted peak from ``cohabit.predictors.pp_forecast``) and a
plain ``correlation(a, b)`` callable. Activity is a fraction of the pod's own GPU request
(0 = idle, 1 = busy all the time); usage in milli-GPU is ``request * activity``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Correlation", "PodUsage", "UsageView", "pearson"]

Correlation = Callable[[np.ndarray, np.ndarray], float]
"""``correlation(history_a, history_b) -> float`` in [-1, 1]; NaN when undefined (constant
or too short series)."""


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of the common prefix of ``a`` and ``b``; NaN when shorter than 3
    samples or either is constant."""
    n = min(len(a), len(b))
    if n < 3:
        return math.nan
    x, y = np.asarray(a[:n], float), np.asarray(b[:n], float)
    sx, sy = x.std(), y.std()
    if sx == 0 or sy == 0:
        return math.nan
    return float(((x - x.mean()) * (y - y.mean())).mean() / (sx * sy))


@dataclass(frozen=True)
class PodUsage:
    """What the scheduler knows about one pod's utilisation when it places it.

    Attributes:
        history: activity samples from history (fractions of the request, 0..1; e.g. the
            workload's earlier telemetry), for correlation; may be empty.
        mean: mean activity (0..1): how hard it presses on its neighbours on average.
        peak: predicted peak usage, milli-GPU (e.g. Kube-Knots PP on the history, times the
            request).
        latency_sensitive: an LS pod (QoS protected) rather than best-effort/batch.
        request: GPU milli the pod holds on each of its GPUs (for usage sums).
    """

    history: np.ndarray
    mean: float
    peak: float
    latency_sensitive: bool
    request: int


@dataclass
class UsageView:
    """Usage of the pods known to placement, and which GPU each bound one uses.

    Build it with :meth:`cohabit.placement.ClusterState.set_usage`, which keeps
    :attr:`on_gpu` in step with every ``apply``/``release``.

    Attributes:
        pods: pod key -> :class:`PodUsage` (bound and pending pods).
        correlation: the :data:`Correlation` callable (default :func:`pearson`).
        on_gpu: ``(node, gpu)`` -> keys of the bound pods with usage there.
        on_node: node -> keys of the bound pods with usage there (any GPU, or none).
        relief: ``(nodes, max GPUs per node)`` float array, or ``None`` when the view was
            built without a cluster shape: per GPU, the milli-GPU its bound pods with usage
            request but are not expected to use, ``sum(request x (1 - mean))`` over
            :meth:`neighbours` (recomputed from that set on every bind and release, so it
            never drifts). Load-aware scoring reads it as one array instead of looping over
            pods per GPU.
    """

    pods: dict[str, PodUsage]
    correlation: Correlation = pearson
    on_gpu: dict[tuple[int, int], set[str]] = field(default_factory=dict)
    on_node: dict[int, set[str]] = field(default_factory=dict)
    relief: np.ndarray | None = None
    _corr: dict[tuple[str, str], float] = field(default_factory=dict)
    _gpus: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def bound(self, key: str, node: int, gpus: tuple[int, ...]) -> None:
        """Record a bind (no-op for a pod without usage)."""
        if key not in self.pods:
            return
        self.on_node.setdefault(node, set()).add(key)
        self._gpus[key] = tuple(gpus)
        for g in gpus:
            self.on_gpu.setdefault((node, g), set()).add(key)
            self._update_relief(node, g)

    def unbound(self, key: str, node: int) -> None:
        """Record a release of ``key`` from ``node``."""
        there = self.on_node.get(node)
        if there is None or key not in there:
            return
        there.discard(key)
        if not there:
            del self.on_node[node]
        for g in self._gpus.pop(key, ()):
            keys = self.on_gpu.get((node, g))
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self.on_gpu[(node, g)]
            self._update_relief(node, g)

    def _update_relief(self, node: int, gpu: int) -> None:
        if self.relief is not None:
            self.relief[node, gpu] = sum(self.pods[k].request * (1.0 - self.pods[k].mean)
                                         for k in self.neighbours(node, gpu))

    def corr(self, a: str, b: str) -> float:
        """Memoised correlation of two pods' histories (NaN if either has none)."""
        k = (a, b) if a <= b else (b, a)
        v = self._corr.get(k)
        if v is None:
            pa, pb = self.pods.get(a), self.pods.get(b)
            if pa is None or pb is None or not len(pa.history) or not len(pb.history):
                v = math.nan
            else:
                v = float(self.correlation(pa.history, pb.history))
            self._corr[k] = v
        return v

    def neighbours(self, node: int, gpu: int) -> set[str]:
        """Keys of the bound pods with usage on GPU ``gpu`` of ``node``."""
        return self.on_gpu.get((node, gpu), set())

    def peak_sum(self, node: int, gpu: int) -> float:
        """Sum of the predicted peaks (milli) of the pods on that GPU."""
        return float(sum(self.pods[k].peak for k in self.neighbours(node, gpu)))

    def max_corr(self, key: str, node: int, gpu: int) -> float:
        """Largest correlation between ``key`` and a pod on that GPU (NaN ones skipped;
        -inf when there is no defined one)."""
        best = -math.inf
        for other in self.neighbours(node, gpu):
            c = self.corr(key, other)
            if not math.isnan(c) and c > best:
                best = c
        return best
