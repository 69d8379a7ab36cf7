"""Plain callables over the predictors, for the planner, placement and operator.

Nothing here returns a scikit-learn object: inputs are pandas/numpy, outputs are
:mod:`cohabit.model` types or floats.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cohabit.model import InterferenceProfile, QosTarget, Recommendation, Resources

from ._common import RESOURCES
from .interference import InterferenceModel, choose_probes, load_gavel, pair_features
from .rightsizing import JustEnoughEstimator, gpu_share_cap
from .selection import FleetSelection
from .telemetry_data import PACKAGED_GAVEL

__all__ = ["InterferencePredictor", "interference_predictor", "recommend"]


def recommend(
    usage: pd.DataFrame,
    qos_target: QosTarget | None = None,
    bounds: tuple[Resources, Resources] | None = None,
    container: str = "main",
    selection: FleetSelection | None = None,
    workload: str | None = None,
) -> Recommendation:
    """Just-enough requests for one container from its usage history.

    Args:
        usage: one row per sample with a ``time`` column (seconds) and any of the resource
            columns ``cpu_milli``, ``memory_mib``, ``gpu_milli``, ``gpu_memory_mib`` (NaN =
            not measured); optional ``latency_ms`` (p99 or end-to-end latency per sample).
        qos_target: with ``metric == "p99_latency_ms"`` and a ``latency_ms`` column, CPU and
            GPU share are sized by :class:`~cohabit.predictors.rightsizing.JustEnoughEstimator`'s
            QoS model; otherwise from usage alone.
        bounds: ``(min, max)`` resources the recommendation is clamped to (0 in max = no cap).
        container: container name carried into the result.
        selection: operating points chosen for a fleet by
            :func:`~cohabit.predictors.selection.select_operating_points`; the resources
            ``workload`` has a point for are sized with it (coverage, interval confidence,
            half-life, peak growth, fleet growth), the others with the estimator's a-priori
            defaults. ``None`` = defaults everywhere.
        workload: this history's key in ``selection`` (required with ``selection``).

    Returns:
        A :class:`~cohabit.model.Recommendation`; resources without samples are 0. Its
        confidence is the smallest over the sized resources, ``low_confidence`` if any is low.

    Raises:
        ValueError: no ``time`` column, no resource column with samples, or ``selection``
            without ``workload``.
    """
    if "time" not in usage.columns:
        raise ValueError("usage frame needs a 'time' column (seconds)")
    if selection is not None and workload is None:
        raise ValueError("a selection needs the workload's key (workload=...)")
    chosen = (selection.points.get(workload, {})
              if selection is not None and workload is not None else {})
    targets, lowers, uppers, confs = {}, {}, {}, []
    low = False
    for resource in RESOURCES:
        if resource not in usage.columns:
            continue
        rows = usage[usage[resource].notna()]
        if rows.empty:
            continue
        t = rows["time"].to_numpy(float)
        y = rows[resource].to_numpy(float)
        use_qos = (
            qos_target is not None
            and qos_target.metric == "p99_latency_ms"
            and "latency_ms" in rows.columns
            and resource in ("cpu_milli", "gpu_milli")
        )
        kwargs: dict = {"max_value": gpu_share_cap(resource, y)}
        if use_qos and qos_target is not None:
            kwargs.update(latency_column=1, latency_target_ms=qos_target.value)
        point = chosen.get(resource)
        if point is not None and selection is not None:  # chosen is empty without one
            est = point.estimator(resource, selection.horizon_s,
                                  fleet_rises=selection.fleet_rises.get(resource), **kwargs)
        else:
            est = JustEnoughEstimator(resource=resource, **kwargs)
        X = np.column_stack([t, rows["latency_ms"].to_numpy(float)]) if use_qos else t[:, None]
        est.fit(X, y)
        targets[resource] = math.ceil(est.target_)
        lowers[resource] = math.floor(est.lower_)
        uppers[resource] = math.ceil(est.upper_)
        confs.append(est.confidence_)
        low = low or est.low_confidence_
    if not targets:
        raise ValueError(f"usage frame has no samples in any of {RESOURCES}")
    target, lower, upper = Resources(**targets), Resources(**lowers), Resources(**uppers)
    if bounds is not None:
        lo, hi = bounds
        target, lower, upper = target.clamp(lo, hi), lower.clamp(lo, hi), upper.clamp(lo, hi)
    return Recommendation(container, target, lower, upper, float(min(confs)), bool(low))


@dataclass(frozen=True)
class InterferencePredictor:
    """A trained interference model behind a plain call (no scikit-learn in its interface).

    Attributes:
        probes: the probe workloads a new workload must be co-run with to get its profile
            (:func:`~cohabit.predictors.interference.probe_profile`).
        gpu: GPU type the model was trained for.
    """

    probes: tuple[str, ...]
    gpu: str
    _fn: Callable[[InterferenceProfile, InterferenceProfile], float]
    _model: InterferenceModel | None = None

    def __call__(self, profile_a: InterferenceProfile, profile_b: InterferenceProfile) -> float:
        """Predicted throughput fraction of ``a`` when it shares a GPU with ``b`` (0..1);
        swap the arguments for what ``a`` inflicts on ``b``."""
        return self._fn(profile_a, profile_b)

    def matrix(self, profiles: Sequence[InterferenceProfile]) -> np.ndarray:
        """Predicted fractions of every ordered pair in one batch: ``out[a, b]`` = fraction
        of ``profiles[a]`` next to ``profiles[b]``, shape ``(n, n)``."""
        n = len(profiles)
        if self._model is None:
            return np.array([[self._fn(a, b) for b in profiles] for a in profiles])
        vec = [[v for _, v in p.sensitivity] + [v for _, v in p.pressure] for p in profiles]
        rows = np.array([vec[a] + vec[b] for a in range(n) for b in range(n)], dtype=float)
        return self._model.predict(rows).reshape(n, n)


def interference_predictor(
    path: str | Path | None = None, gpu: str = "v100", n_probes: int = 3
) -> InterferencePredictor:
    """Train :class:`~cohabit.predictors.interference.InterferenceModel` on Gavel pairs.

    The model takes the median over its trees (``aggregate="median"``): the prediction that
    minimises absolute error, the held-out evaluation's headline setting.

    Args:
        path: Gavel ``physical_cluster_throughputs.json`` (default: the packaged copy).
        gpu: GPU type to train for.
        n_probes: probe workloads (at most 3).

    Raises:
        TelemetryDataError: unreadable file or no pairs for ``gpu``.
        ValueError: ``n_probes`` outside 1..3.
    """
    if not 1 <= n_probes <= 3:
        raise ValueError(f"n_probes must be 1..3, got {n_probes}")
    path = Path(path) if path is not None else PACKAGED_GAVEL / "physical_cluster_throughputs.json"
    pairs = load_gavel(path, [gpu])
    probes = choose_probes(pairs, n_probes)
    model = InterferenceModel(n_probes=len(probes), aggregate="median").fit(
        pair_features(pairs, probes), pairs["fraction"]
    )
    return InterferencePredictor(tuple(probes), gpu, model.as_callable(), model)
