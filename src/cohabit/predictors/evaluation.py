"""Rolling-origin evaluation of right-sizing on per-pod telemetry (GenAI schema).

Split by time, per pod (never random rows): the pod's history from its first sample up to an
origin is the fitting window; the next ``horizon_s`` seconds are judged; then the origin moves
forward by ``horizon_s`` (Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*,
"evaluation on a rolling forecasting origin"). Every method is refitted at every origin on the
same window. Inside a horizon a method may react to a shortfall the way it would in production
(VPA's OOM bump for memory, cohabit's bump); the static request does not.

Metrics per resource, pod and method (summed over the pod's horizons):

* ``reserved``: sum over judged intervals of the allocation;
* ``static``: the same sum for the static request, the fitting window's peak;
* ``under``: intervals whose usage exceeded the allocation (under-provisioned);
* ``qos_violations`` / ``qos_intervals``: for the GPU share, among intervals with a latency
  sample, those whose latency stretched by ``max(1, usage / allocation)`` (a throttled
  work-conserving share slows service by the demand ratio) exceeds the pod's SLO, the p99
  latency of its fitting window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._common import MEMORY_LIKE
from .rightsizing import JustEnoughEstimator
from .vpa import VpaRecommender

__all__ = [
    "Allocator",
    "RIGHTSIZING_METHODS",
    "evaluate_rightsizing",
    "summarize_rightsizing",
    "per_pod_rightsizing",
]


@dataclass
class Allocator:
    """A fitted method inside one horizon: current allocation and its shortfall reaction."""

    allocation: float
    on_shortfall: Callable[[float, float], float] | None = None
    """``(time_s, used) -> new allocation``; ``None`` = keep the allocation."""


MethodFn = Callable[[str, np.ndarray, np.ndarray, np.ndarray | None, float | None], Allocator]
"""``(resource, times, usage, latency or None, latency SLO or None) -> Allocator``."""


def _static(resource, t, y, lat, slo) -> Allocator:
    return Allocator(float(np.max(y)))


def _p95_margin(resource, t, y, lat, slo) -> Allocator:
    return Allocator(float(np.quantile(y, 0.95) * 1.15))


def _vpa(resource, t, y, lat, slo) -> Allocator:
    model = VpaRecommender(resource=resource).fit(t[:, None], y)
    if resource not in MEMORY_LIKE:
        return Allocator(model.target_)

    def oom(time_s: float, used: float) -> float:
        return model.record_oom(time_s, used).target_

    return Allocator(model.target_, oom)


def _gpu_cap(resource: str, y: np.ndarray) -> float | None:
    if resource != "gpu_milli":
        return None
    return 1000.0 * max(1.0, float(np.ceil(np.max(y) / 1000.0)))


def _just_enough(resource, t, y, lat, slo) -> Allocator:
    model = JustEnoughEstimator(resource=resource, max_value=_gpu_cap(resource, y))
    model.fit(t[:, None], y)
    return Allocator(model.target_, lambda _t, used: model.bump(used))


def _just_enough_qos(resource, t, y, lat, slo) -> Allocator:
    if lat is None or slo is None:
        return _just_enough(resource, t, y, lat, slo)
    model = JustEnoughEstimator(
        resource=resource, latency_column=1, latency_target_ms=slo,
        max_value=_gpu_cap(resource, y),
    ).fit(np.column_stack([t, lat]), y)
    return Allocator(model.target_, lambda _t, used: model.bump(used))


RIGHTSIZING_METHODS: dict[str, MethodFn] = {
    "static-peak": _static,
    "p95x1.15": _p95_margin,
    "vpa": _vpa,
    "just-enough": _just_enough,
    "just-enough+qos": _just_enough_qos,
}
"""Methods judged by :func:`evaluate_rightsizing`: the static request (fitting-window peak),
a plain p95 x 1.15 rule, the VPA recommender and cohabit's :class:`JustEnoughEstimator`
from usage alone and, where the pod has latency, with its QoS model (SLO = the fitting
window's p99 latency)."""


def evaluate_rightsizing(
    frame: pd.DataFrame,
    resources: Sequence[str] = ("gpu_milli", "gpu_memory_mib"),
    *,
    start_fraction: float = 0.5,
    horizon_s: float = 3600.0,
    min_fit_samples: int = 60,
    methods: dict[str, MethodFn] | None = None,
    latency_column: str = "latency_ms",
) -> pd.DataFrame:
    """Judge right-sizing methods on every pod of ``frame`` by a rolling origin.

    Args:
        frame: a :func:`~cohabit.predictors.telemetry_data.load_genai` frame (``pod``, ``time``
            and one column per resource; ``latency_ms`` optional).
        resources: resource columns to size.
        start_fraction: first origin, as a fraction of each pod's time span.
        horizon_s: length of each judged horizon; origins step by it.
        min_fit_samples: pods/resources with fewer fitting samples at the first origin are
            skipped (not enough history to size anything).
        methods: name -> method; default :data:`RIGHTSIZING_METHODS`.
        latency_column: column holding latency (ms), used for the GPU-share QoS metric.

    Returns:
        One row per (resource, pod, method) with ``reserved``, ``static``, ``under``,
        ``intervals``, ``qos_violations``, ``qos_intervals``, ``horizons``.

    Raises:
        KeyError: a resource column is missing.
    """
    methods = methods or RIGHTSIZING_METHODS
    rows: list[dict] = []
    has_latency = latency_column in frame.columns
    for resource in resources:
        if resource not in frame.columns:
            raise KeyError(f"telemetry has no column {resource!r}")
        for pod, group in frame.groupby("pod", sort=True):
            ok = group[resource].notna().to_numpy()
            t = group["time"].to_numpy(float)[ok]
            y = group[resource].to_numpy(float)[ok]
            lat = group[latency_column].to_numpy(float)[ok] if has_latency else None
            if len(y) < 2:
                continue
            t0, t1 = t[0], t[-1]
            origin = t0 + start_fraction * (t1 - t0)
            if np.sum(t < origin) < min_fit_samples:
                continue
            acc = {m: dict(reserved=0.0, static=0.0, under=0, intervals=0, qos_violations=0,
                           qos_intervals=0, horizons=0) for m in methods}
            while origin <= t1:
                fit = t < origin
                judged = (t >= origin) & (t < origin + horizon_s)
                origin += horizon_s
                if not judged.any():
                    continue
                tf, yf = t[fit], y[fit]
                lf = lat[fit] if lat is not None else None
                slo = None
                if lf is not None and resource == "gpu_milli" and np.isfinite(lf).sum() >= 30:
                    slo = float(np.nanquantile(lf, 0.99))
                static = float(np.max(yf))
                te, ye = t[judged], y[judged]
                le = lat[judged] if lat is not None else None
                for name, method in methods.items():
                    alloc = method(resource, tf, yf, lf if slo is not None else None, slo)
                    a = alloc.allocation
                    allocs = np.empty(len(ye))
                    for i, (ti, ui) in enumerate(zip(te, ye, strict=True)):
                        allocs[i] = a
                        if ui > a * (1 + 1e-9) and alloc.on_shortfall is not None:
                            a = alloc.on_shortfall(float(ti), float(ui))
                    s = acc[name]
                    s["reserved"] += float(allocs.sum())
                    s["static"] += static * len(ye)
                    s["under"] += int(np.sum(ye > allocs * (1 + 1e-9)))
                    s["intervals"] += len(ye)
                    s["horizons"] += 1
                    if slo is not None and le is not None:
                        has = np.isfinite(le)
                        stretch = np.maximum(1.0, ye[has] / np.maximum(allocs[has], 1e-9))
                        s["qos_violations"] += int(np.sum(le[has] * stretch > slo))
                        s["qos_intervals"] += int(has.sum())
            for name, s in acc.items():
                rows.append({"resource": resource, "pod": str(pod), "method": name, **s})
    return pd.DataFrame(rows)


def per_pod_rightsizing(results: pd.DataFrame) -> pd.DataFrame:
    """Per pod: ``saving`` (1 - reserved/static) and ``under_share`` (static 0 -> NaN saving)."""
    out = results.copy()
    static = out["static"].where(out["static"] > 0)
    out["saving"] = 1.0 - out["reserved"] / static
    out["under_share"] = out["under"] / out["intervals"].where(out["intervals"] > 0)
    return out


def summarize_rightsizing(results: pd.DataFrame) -> pd.DataFrame:
    """Per resource and method: fleet-wide saving and shortfall share, and per-pod quantiles.

    Columns: ``saving`` (1 - total reserved / total static), ``under_share`` (under-provisioned
    judged intervals / all judged intervals), ``qos_violation_share`` (NaN without latency),
    ``pods``, and per-pod distribution columns ``saving_p10/p50/p90`` and
    ``under_share_p50/p90/max``.
    """
    per_pod = per_pod_rightsizing(results)
    rows = []
    for (resource, method), g in per_pod.groupby(["resource", "method"], sort=False):
        qi = g["qos_intervals"].sum()
        rows.append(
            {
                "resource": resource,
                "method": method,
                "saving": 1.0 - g["reserved"].sum() / g["static"].sum()
                if g["static"].sum() > 0 else float("nan"),
                "under_share": g["under"].sum() / g["intervals"].sum(),
                "qos_violation_share": g["qos_violations"].sum() / qi if qi else float("nan"),
                "pods": int(len(g)),
                "saving_p10": g["saving"].quantile(0.1),
                "saving_p50": g["saving"].quantile(0.5),
                "saving_p90": g["saving"].quantile(0.9),
                "under_share_p50": g["under_share"].quantile(0.5),
                "under_share_p90": g["under_share"].quantile(0.9),
                "under_share_max": g["under_share"].max(),
            }
        )
    return pd.DataFrame(rows)
