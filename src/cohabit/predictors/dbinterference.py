"""Interference profiles of databases from stressor and probe runs (URSA's interference
estimator, in Bubble-Up's pressure/sensitivity form).

URSA (Zheng, Chen et al., ICPP 2020, arXiv 1912.11963) quantifies for each database workload
its *pressure* on shared resources and its *sensitivity* to contention on them; Bubble-Up
(Mars et al., MICRO 2011) measures sensitivity against a tunable stressor (the "bubble") and
pressure as the bubble size that hurts a reporter as much as the workload does. Here:

* **Normalised performance** of a latency workload under a fixed offered load:
  ``NP = p99_solo / p99_co`` (1 = unaffected; the fraction of solo "speed" as its clients
  see it), and its **slowdown** ``1 - NP`` in ``[0, 1)``.
* **Sensitivity** to resource ``r``: the slope through the origin of the workload's slowdown
  against the stressor's intensity (cores of CFS quota of the stress-ng worker on the same
  cores), fitted by least squares over 2-3 intensities, clipped at 0: slowdown per core of
  contention on ``r``.
* **Pressure** on ``r``: how much the workload slows a fixed probe (the same stress-ng worker,
  unthrottled) when they share the cores, in stressor cores: the probe's slowdown next to
  the workload divided by the probe's own slowdown per stressor core (its calibrated
  sensitivity). So ``pressure x sensitivity`` is a slowdown, the linear model
  :func:`cohabit.placement.pressure_sensitivity_slowdown` evaluates for placement.

All functions take plain numbers or frames and return :class:`~cohabit.model.InterferenceProfile`
or numbers; none touches a database.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from cohabit.model import InterferenceProfile

__all__ = [
    "SensitivityCurve",
    "curve_slowdown",
    "database_profile",
    "dominant_slowdown",
    "node_slowdown",
    "sensitivity_curve",
    "sensitivity_curves",
    "normalised_performance",
    "pair_error",
    "pressure_score",
    "sensitivity_slope",
    "slowdown",
]


def normalised_performance(p99_solo_ms: float, p99_co_ms: float) -> float:
    """``p99_solo / p99_co`` clipped to ``[0, 1]`` (0 when co-located p99 is infinite).

    Raises:
        ValueError: a non-positive or NaN latency.
    """
    if not (p99_solo_ms > 0 and p99_co_ms > 0):
        raise ValueError(f"latencies must be > 0, got {p99_solo_ms}, {p99_co_ms}")
    if math.isinf(p99_co_ms):
        return 0.0
    return float(min(1.0, p99_solo_ms / p99_co_ms))


def slowdown(p99_solo_ms: float, p99_co_ms: float) -> float:
    """``1 - normalised_performance``: 0 = unaffected, 1 = stopped."""
    return 1.0 - normalised_performance(p99_solo_ms, p99_co_ms)


def sensitivity_slope(intensity: Sequence[float], slowdowns: Sequence[float]) -> float:
    """Least-squares slope through the origin of ``slowdowns`` against ``intensity`` (cores),
    clipped at 0: ``sum(x y) / sum(x^2)``.

    Raises:
        ValueError: different lengths, no positive intensity, or NaN values.
    """
    x = np.asarray(intensity, dtype=float)
    y = np.asarray(slowdowns, dtype=float)
    if x.shape != y.shape or x.size == 0:
        raise ValueError("intensity and slowdowns must be non-empty and of one length")
    if np.isnan(x).any() or np.isnan(y).any():
        raise ValueError("NaN in intensity or slowdowns")
    if not (x > 0).any():
        raise ValueError("at least one intensity must be > 0")
    return float(max(0.0, (x * y).sum() / (x * x).sum()))


def pressure_score(probe_solo: float, probe_co: float, probe_sensitivity: float) -> float:
    """The workload's pressure on a resource in stressor cores: the probe's slowdown next to
    it (``1 - probe_co / probe_solo``, clipped to ``[0, 1]``) over the probe's slowdown per
    stressor core; 0 when the probe is insensitive (``probe_sensitivity <= 0``).

    Raises:
        ValueError: a non-positive solo throughput.
    """
    if not probe_solo > 0:
        raise ValueError(f"probe solo throughput must be > 0, got {probe_solo}")
    hurt = min(1.0, max(0.0, 1.0 - probe_co / probe_solo))
    if probe_sensitivity <= 0:
        return 0.0
    return float(hurt / probe_sensitivity)


def database_profile(sensitivity: pd.DataFrame, pressure: pd.DataFrame,
                     probe_sensitivity: Mapping[str, float]) -> InterferenceProfile:
    """A database's :class:`~cohabit.model.InterferenceProfile` from its measurements.

    Args:
        sensitivity: rows ``resource``, ``intensity`` (cores), ``p99_solo_ms``,
            ``p99_ms`` (with the stressor); several rows per resource.
        pressure: rows ``resource``, ``probe_solo``, ``probe_co`` (probe throughput alone and
            next to the workload); repeats are averaged (median).
        probe_sensitivity: resource -> the probe's slowdown per stressor core.

    Returns:
        Profile with ``sensitivity`` and ``pressure`` keyed by resource (rounded to 1e-4).

    Raises:
        ValueError: a required column is missing.
    """
    for frame, cols in ((sensitivity, {"resource", "intensity", "p99_solo_ms", "p99_ms"}),
                        (pressure, {"resource", "probe_solo", "probe_co"})):
        missing = cols - set(frame.columns)
        if missing:
            raise ValueError(f"frame lacks column(s) {sorted(missing)}")
    sens = []
    for resource, g in sensitivity.groupby("resource", sort=True):
        s = [slowdown(a, b) for a, b in zip(g["p99_solo_ms"], g["p99_ms"], strict=True)]
        sens.append((str(resource), round(sensitivity_slope(g["intensity"], s), 4)))
    press = []
    for resource, g in pressure.groupby("resource", sort=True):
        k = probe_sensitivity.get(str(resource), 0.0)
        p = pressure_score(float(g["probe_solo"].median()), float(g["probe_co"].median()), k)
        press.append((str(resource), round(p, 4)))
    return InterferenceProfile(pressure=tuple(press), sensitivity=tuple(sens))


def dominant_slowdown(victim: InterferenceProfile, aggressor: InterferenceProfile) -> float:
    """A pair model (a placement ``Slowdown`` callable) for neighbours that contend mainly
    through one resource: ``max_r aggressor.pressure[r] * victim.sensitivity[r]``, clipped
    to ``[0, 1]``; NaN entries are skipped.

    On one shared core the CPU and memory-bandwidth stressors both take the victim's CPU
    time, so the sum over resources (the linear model,
    :func:`cohabit.placement.pressure_sensitivity_slowdown`) counts that contention twice;
    the dominant term counts it once (the bottleneck view of contention, as in Paragon's
    per-resource sensitivities, Delimitrou and Kozyrakis, ASPLOS 2013, where the most
    contended resource decides the co-location).
    """
    sens = {r: v for r, v in victim.sensitivity if not math.isnan(v)}
    terms = [p * sens[r] for r, p in aggressor.pressure if r in sens and not math.isnan(p)]
    return float(min(1.0, max(0.0, max(terms, default=0.0))))


def pair_error(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    """How well predicted pair slowdowns match measured ones.

    Returns:
        ``{"n", "mae", "spearman", "mean_measured", "mean_predicted"}`` (Spearman's rank
        correlation is NaN with fewer than 3 pairs or a constant side).

    Raises:
        ValueError: different lengths or no pairs.
    """
    p = np.asarray(predicted, dtype=float)
    m = np.asarray(measured, dtype=float)
    if p.shape != m.shape or p.size == 0:
        raise ValueError("predicted and measured must be non-empty and of one length")
    rho = math.nan
    if p.size >= 3 and np.ptp(p) > 0 and np.ptp(m) > 0:
        rho = float(spearmanr(p, m).statistic)
    return {"n": int(p.size), "mae": float(np.abs(p - m).mean()), "spearman": rho,
            "mean_measured": float(m.mean()), "mean_predicted": float(p.mean())}


SensitivityCurve = tuple[tuple[float, float], ...]
"""A database's measured sensitivity curve: ``((cores, slowdown), ...)`` sorted by cores,
starting at ``(0.0, 0.0)``, slowdown non-decreasing in ``[0, 1]``."""


def sensitivity_curve(intensity: Sequence[float], slowdowns: Sequence[float]
                      ) -> SensitivityCurve:
    """The monotone sensitivity curve through measured points.

    Args:
        intensity: co-located CPU demand of each measurement, cores (> 0; the stressor's CFS
            quota); repeats of one intensity are summarised by their median.
        slowdowns: the database's measured slowdown ``1 - p99_solo / p99_co`` there.

    Returns:
        ``((0, 0), (x1, s1), ...)``: ``(0, 0)`` (alone, by definition), then each distinct
        intensity in increasing order with the running maximum of the clipped slowdowns
        (more contention never helps: a dip below an earlier point is measurement noise).

    Raises:
        ValueError: different lengths, no points, a non-positive or NaN intensity, or a NaN
            slowdown.
    """
    x = np.asarray(intensity, dtype=float)
    y = np.asarray(slowdowns, dtype=float)
    if x.shape != y.shape or x.size == 0:
        raise ValueError("intensity and slowdowns must be non-empty and of one length")
    if np.isnan(x).any() or np.isnan(y).any() or (x <= 0).any():
        raise ValueError(f"intensities must be > 0 and values not NaN, got {x}, {y}")
    levels = np.unique(x)
    medians = [float(np.median(np.clip(y[x == lv], 0.0, 1.0))) for lv in levels]
    running = np.maximum.accumulate(medians)
    return ((0.0, 0.0), *((float(a), float(b)) for a, b in zip(levels, running, strict=True)))


def curve_slowdown(curve: SensitivityCurve, demand_cores: float) -> float:
    """The curve's slowdown at a co-located CPU demand: linear interpolation between the
    measured points, held at the last measured slowdown beyond the last intensity
    (saturating: no extrapolation past what was measured); 0 for no demand.

    Raises:
        ValueError: a negative or NaN demand, or an empty curve.
    """
    if not curve:
        raise ValueError("empty sensitivity curve")
    if not demand_cores >= 0:
        raise ValueError(f"CPU demand must be >= 0 cores, got {demand_cores}")
    xs, ys = zip(*curve, strict=True)
    return float(np.interp(demand_cores, xs, ys))


def node_slowdown(curve: SensitivityCurve, co_runner_cores: Sequence[float]) -> float:
    """Node-level contention model: a database's predicted slowdown on a node is its own
    measured sensitivity curve evaluated at the summed CPU demand of its co-runners there.

    This is URSA's interference estimator (Zheng, Chen et al., ICPP 2020, arXiv 1912.11963:
    a workload's slowdown = its sensitivity evaluated at the pressure its neighbours put on
    the shared resource) with the pressure in the stressor's own unit, cores of CPU demand,
    and the sensitivity kept as the measured curve rather than a slope: on a rate-limited
    database the response is a threshold (queueing: p99 waits grow like ``1 / (1 - rho)``
    as the cores' utilisation ``rho`` nears 1), which a straight line through the origin
    misses. The co-runners' demands add up on the shared cores (one queue), so the sum is
    the argument; several co-runners are not composed pair by pair.

    Args:
        curve: the database's :data:`SensitivityCurve` (CPU stressor, cores).
        co_runner_cores: each co-runner's CPU demand, cores (its measured CPU usage at its
            offered rate, or its CFS quota as an upper bound).

    Returns:
        Predicted slowdown in ``[0, 1]``.

    Raises:
        ValueError: a negative or NaN demand.
    """
    demands = [float(c) for c in co_runner_cores]
    if any(not c >= 0 for c in demands):
        raise ValueError(f"co-runner CPU demands must be >= 0 cores, got {demands}")
    return curve_slowdown(curve, math.fsum(demands))


def sensitivity_curves(sensitivity: pd.DataFrame, resource: str = "cpu"
                       ) -> dict[str, SensitivityCurve]:
    """Every workload's :func:`sensitivity_curve` for ``resource`` from sensitivity rows.

    Args:
        sensitivity: rows ``workload``, ``resource``, ``intensity`` (cores),
            ``p99_solo_ms``, ``p99_ms`` (the shape :func:`database_profile` reads, with the
            workload named).

    Raises:
        ValueError: a required column is missing or a workload has no row for ``resource``.
    """
    missing = {"workload", "resource", "intensity", "p99_solo_ms", "p99_ms"} - set(
        sensitivity.columns)
    if missing:
        raise ValueError(f"sensitivity rows lack column(s) {sorted(missing)}")
    out = {}
    for name, g in sensitivity.groupby("workload", sort=False):
        rows = g[g["resource"] == resource]
        if rows.empty:
            raise ValueError(f"workload {name!r} has no {resource!r} sensitivity rows")
        s = [slowdown(a, b) for a, b in zip(rows["p99_solo_ms"], rows["p99_ms"], strict=True)]
        out[str(name)] = sensitivity_curve(list(rows["intensity"]), s)
    return out
