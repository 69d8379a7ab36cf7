"""What placement is given about contention and usage: the predictors' outputs as plain
values, wired here because only the engine may join predictors and placement.

* :func:`gavel_placement_view`: interference profiles of Gavel job types from their probe
  co-runs (Paragon/Bubble-Up style, :func:`cohabit.predictors.probe_profile`), the trained
  interference model's predicted fraction for every ordered pair of types, and a
  :data:`~cohabit.placement.Slowdown` callable over those predictions (a table lookup, so
  placement pays no model call per pair). This is what a scheduler can know after probing a
  job; the measured pairs the replay judges with are not used.
* :func:`pod_usages`: per-pod :class:`~cohabit.placement.usage.PodUsage` from usage
  history: mean activity, and the peak Kube-Knots' Peak Prediction forecasts
  (:func:`cohabit.predictors.pp_forecast`: AR(1) when the lag-1 autocorrelation passes the
  0.5 gate, the window peak otherwise), times the request.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from cohabit.model import InterferenceProfile
from cohabit.placement import Slowdown
from cohabit.placement.usage import PodUsage

__all__ = ["gavel_placement_view", "peak_activity", "pod_usages"]


@lru_cache(maxsize=4)
def _predictor(path: str, gpu: str):  # noqa: ANN202 - an InterferencePredictor
    from cohabit.predictors import interference_predictor

    return interference_predictor(path, gpu)


def gavel_placement_view(path: str | Path, types: Sequence[str], gpu: str = "v100"
                         ) -> tuple[dict[str, InterferenceProfile], np.ndarray, Slowdown]:
    """Probe profiles of ``types``, the predicted fraction matrix and a slowdown callable.

    Args:
        path: Gavel ``physical_cluster_throughputs.json``.
        types: job type names (scale 1).
        gpu: GPU type of the pairs and the model.

    Returns:
        ``(profiles by type, predicted[a, b] fractions, slowdown)``; ``slowdown(victim,
        aggressor) = 1 - predicted`` for two of these profiles, 0 for any other pair (e.g.
        the node-scope views, which hold no probe keys).

    Raises:
        cohabit.predictors.TelemetryDataError: an unreadable file.
    """
    from cohabit.predictors import probe_profile
    from cohabit.predictors.interference import load_gavel

    predictor = _predictor(str(path), gpu)
    pairs = load_gavel(path, [gpu])
    profiles = {t: probe_profile(pairs, t, 1, predictor.probes) for t in types}
    ordered = [profiles[t] for t in types]
    predicted = np.clip(predictor.matrix(ordered), 0.0, 1.0)
    index = {p: i for i, p in enumerate(ordered)}
    slow = 1.0 - predicted

    def slowdown(victim: InterferenceProfile, aggressor: InterferenceProfile) -> float:
        a, b = index.get(victim), index.get(aggressor)
        if a is None or b is None:
            return 0.0
        return float(slow[a, b])

    return profiles, predicted, slowdown


def peak_activity(history: np.ndarray) -> float:
    """Kube-Knots PP's forecast of the next activity sample after ``history`` (0..1): AR(1)
    when the series is predictable (lag-1 autocorrelation >= 0.5), else the window peak."""
    from cohabit.predictors import pp_forecast

    h = np.asarray(history, float)
    if h.size == 0:
        return 1.0
    return float(np.clip(pp_forecast(h, h[-1:])[0], 0.0, 1.0))


def pod_usages(keys: Sequence[str], histories: Sequence[np.ndarray], requests: Sequence[int],
               latency_sensitive: Sequence[bool]) -> dict[str, PodUsage]:
    """:class:`PodUsage` of each pod: a pod with a history gets its mean and PP peak; a pod
    without one (a batch job) is taken as busy all the time (mean 1, peak = request).

    Histories shared by several pods (the same source series) are forecast once.
    """
    memo: dict[int, tuple[float, float]] = {}
    out = {}
    for key, h, req, ls in zip(keys, histories, requests, latency_sensitive, strict=True):
        if len(h):
            k = id(h)
            stats = memo.get(k)
            if stats is None:
                stats = (float(np.mean(h)), peak_activity(h))
                memo[k] = stats
            mean, peak = stats
        else:
            mean, peak = 1.0, 1.0
        out[key] = PodUsage(h, mean, peak * req, bool(ls), int(req))
    return out
