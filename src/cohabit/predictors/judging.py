"""Judging right-sizing methods and candidate operating points on rolling-origin horizons.

A method is refitted at every origin on the fitting window (:class:`Window`) and judged on the
horizon after it. Inside a horizon it may react to a shortfall the way it would in production:
after a shortfall interval the allocation used from the *next* interval on is the method's
bumped one (:func:`judge_horizon`; VPA's OOM bump ``max(+100 MiB, x1.2)`` for memory,
:class:`~cohabit.predictors.rightsizing.BumpRule` for cohabit's estimator); the static request
and the p95 rule do not react.

Per horizon and method (:class:`Outcome`, summed per pod in :class:`Totals`):

* ``reserved``: sum over judged intervals of the allocation;
* ``static``: the same sum for the static request, the fitting window's peak;
* ``under``: intervals whose usage exceeded the allocation (under-provisioned);
* ``qos_violations`` / ``qos_intervals``: for the GPU share, among intervals with a latency
  sample, those whose latency stretched by ``max(1, usage / allocation)`` (a throttled
  work-conserving share slows service by the demand ratio) exceeds the pod's SLO, the p99
  latency of its fitting window.

:class:`CandidateJudge` does the same for every candidate
:class:`~cohabit.predictors.rightsizing.OperatingPoint` of a grid at once, on inner
(validation) and judged horizons alike, with the targets
:func:`~cohabit.predictors.rightsizing.usage_targets` computes for the estimator itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from ._common import MEMORY_LIKE
from .rightsizing import (
    BumpRule,
    JustEnoughEstimator,
    OperatingPoint,
    fleet_headroom,
    gpu_share_cap,
    peak_rises,
    usage_targets,
)
from .rolling_origin import Fold
from .vpa import VpaRecommender

__all__ = [
    "Allocator",
    "CandidateJudge",
    "FleetHeadroom",
    "HorizonTotals",
    "MethodFn",
    "Outcome",
    "PodSeries",
    "RIGHTSIZING_METHODS",
    "Totals",
    "Window",
    "fleet_rise_table",
    "horizon_outcome",
    "judge_horizon",
    "judge_methods",
    "pod_series",
]

EPS = 1e-9
"""Relative tolerance of a shortfall: usage above ``allocation * (1 + EPS)``."""


# --------------------------------------------------------------------------- the data


@dataclass(frozen=True)
class PodSeries:
    """One pod's samples of one resource (rows where the resource was measured).

    Attributes:
        pod: the pod (workload) key.
        t: sample times (s), shape (n,); y: usage, shape (n,).
        lat: latency (ms, NaN where not sampled), shape (n,), or ``None`` without a column.
    """

    pod: str
    t: np.ndarray
    y: np.ndarray
    lat: np.ndarray | None


def pod_series(
    frame: pd.DataFrame, resource: str, latency_column: str | None = "latency_ms"
) -> Iterator[PodSeries]:
    """Every pod of ``frame`` with at least two samples of ``resource``, sorted by pod.

    Args:
        frame: ``pod``, ``time`` (s) and the resource column, as
            :func:`~cohabit.predictors.telemetry_data.load_genai` returns (time-sorted per pod).
        resource: the resource column.
        latency_column: latency column (ms); ignored when absent or ``None``.

    Raises:
        KeyError: ``frame`` has no ``resource`` column.
    """
    if resource not in frame.columns:
        raise KeyError(f"telemetry has no column {resource!r}")
    has_latency = latency_column is not None and latency_column in frame.columns
    for pod, group in frame.groupby("pod", sort=True):
        ok = group[resource].notna().to_numpy()
        y = group[resource].to_numpy(float)[ok]
        if len(y) < 2:
            continue
        lat = group[latency_column].to_numpy(float)[ok] if has_latency else None
        yield PodSeries(str(pod), group["time"].to_numpy(float)[ok], y, lat)


@dataclass(frozen=True)
class Window:
    """One fold of one pod: the fitting window and the judged horizon, as arrays.

    Attributes:
        pod, k, origin: the pod and the fold's place (:class:`~.rolling_origin.Fold`).
        t_fit, y_fit, lat_fit: the fitting window (``lat_fit`` ``None`` without latency).
        t_judged, y_judged, lat_judged: the judged horizon.
        static: the static request: the fitting window's peak.
        cap: allocation cap (:func:`~cohabit.predictors.rightsizing.gpu_share_cap`).
        slo: latency SLO (ms): the fitting window's p99 latency, for the GPU share with at
            least 30 latency samples; else ``None``.
    """

    pod: str
    k: int
    origin: float
    t_fit: np.ndarray
    y_fit: np.ndarray
    lat_fit: np.ndarray | None
    t_judged: np.ndarray
    y_judged: np.ndarray
    lat_judged: np.ndarray | None
    static: float
    cap: float | None
    slo: float | None

    @classmethod
    def of(cls, series: PodSeries, fold: Fold, resource: str) -> Window:
        """The arrays of ``fold`` in ``series``."""
        y_fit = series.y[fold.train]
        lat_fit = series.lat[fold.train] if series.lat is not None else None
        slo = None
        if lat_fit is not None and resource == "gpu_milli" and np.isfinite(lat_fit).sum() >= 30:
            slo = float(np.nanquantile(lat_fit, 0.99))
        return cls(
            series.pod, fold.k, fold.origin, series.t[fold.train], y_fit, lat_fit,
            series.t[fold.test], series.y[fold.test],
            series.lat[fold.test] if series.lat is not None else None,
            float(np.max(y_fit)), gpu_share_cap(resource, y_fit), slo,
        )

    @property
    def intervals(self) -> int:
        """Judged intervals."""
        return len(self.y_judged)


class Outcome(NamedTuple):
    """What one allocation path did over one judged horizon (see the module docstring)."""

    reserved: float
    under: int
    qos_violations: int
    qos_intervals: int


@dataclass
class Totals:
    """Sums of :class:`Outcome` over a pod's judged horizons, for one method."""

    reserved: float = 0.0
    static: float = 0.0
    under: int = 0
    intervals: int = 0
    qos_violations: int = 0
    qos_intervals: int = 0
    horizons: int = 0

    def add(self, outcome: Outcome, static: float, intervals: int) -> None:
        """Count one horizon: its outcome, the static request's sum and its intervals."""
        self.reserved += float(outcome.reserved)
        self.static += float(static)
        self.under += int(outcome.under)
        self.intervals += int(intervals)
        self.horizons += 1
        self.qos_violations += int(outcome.qos_violations)
        self.qos_intervals += int(outcome.qos_intervals)


# ------------------------------------------------------------------ one allocation path


def judge_horizon(
    allocation: float,
    usage: np.ndarray,
    bump: Callable[[float, float], float] | None,
    times: np.ndarray | None = None,
) -> np.ndarray:
    """Allocations in force at each judged interval, with the shortfall reaction.

    Interval ``i`` is short when ``usage[i] > allocation``; the allocation from interval
    ``i + 1`` on is then ``bump(usage[i])`` (never applied retroactively).

    Args:
        allocation: allocation at the start of the horizon.
        usage: usage per judged interval, shape (n,).
        bump: ``(time_s, used) -> new allocation``; ``None`` = never react.
        times: interval times (s), shape (n,), passed to ``bump`` (default: the index).

    Returns:
        Allocations, shape (n,).
    """
    allocs = np.full(len(usage), float(allocation))
    if bump is None:
        return allocs
    i = 0
    while i < len(usage):
        short = np.flatnonzero(usage[i:] > allocs[i:] * (1 + EPS))
        if not len(short):
            break
        j = i + int(short[0])
        allocs[j + 1:] = bump(float(times[j]) if times is not None else float(j),
                              float(usage[j]))
        i = j + 1
    return allocs


def horizon_outcome(allocs: np.ndarray, window: Window) -> Outcome:
    """:class:`Outcome` of the allocations ``allocs`` (shape (n,)) over ``window``'s horizon."""
    used = window.y_judged
    reserved, under = float(allocs.sum()), int(np.sum(used > allocs * (1 + EPS)))
    if window.slo is None or window.lat_judged is None:
        return Outcome(reserved, under, 0, 0)
    has = np.isfinite(window.lat_judged)
    stretch = np.maximum(1.0, used[has] / np.maximum(allocs[has], EPS))
    violations = int(np.sum(window.lat_judged[has] * stretch > window.slo))
    return Outcome(reserved, under, violations, int(has.sum()))


def _reaction(rule: BumpRule, allocation: float) -> Callable[[float, float], float]:
    """:meth:`JustEnoughEstimator.bump` for :func:`judge_horizon`: ``rule`` over a running
    allocation that starts at ``allocation``."""
    current = allocation

    def on_shortfall(_time_s: float, used: float) -> float:
        nonlocal current
        current = rule(current, used)
        return current

    return on_shortfall


# ---------------------------------------------------------------------- fixed methods


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


def _just_enough(resource, t, y, lat, slo) -> Allocator:
    model = JustEnoughEstimator(resource=resource, max_value=gpu_share_cap(resource, y))
    model.fit(t[:, None], y)
    return Allocator(model.target_, lambda _t, used: model.bump(used))


def _just_enough_qos(resource, t, y, lat, slo) -> Allocator:
    if lat is None or slo is None:
        return _just_enough(resource, t, y, lat, slo)
    model = JustEnoughEstimator(
        resource=resource, latency_column=1, latency_target_ms=slo,
        max_value=gpu_share_cap(resource, y),
    ).fit(np.column_stack([t, lat]), y)
    return Allocator(model.target_, lambda _t, used: model.bump(used))


RIGHTSIZING_METHODS: dict[str, MethodFn] = {
    "static-peak": _static,
    "p95x1.15": _p95_margin,
    "vpa": _vpa,
    "just-enough-prior": _just_enough,
    "just-enough-prior+qos": _just_enough_qos,
}
"""Fixed methods judged by :func:`~cohabit.predictors.evaluation.evaluate_rightsizing`: the
static request (fitting-window peak), a plain p95 x 1.15 rule, the VPA recommender and
cohabit's :class:`JustEnoughEstimator` with its a-priori defaults, from usage alone and, where
the pod has latency, with its QoS model (SLO = the fitting window's p99 latency)."""


def _judge_method(method: MethodFn, window: Window, resource: str) -> Outcome:
    """Fit ``method`` on ``window``'s fitting part and judge it on its horizon."""
    lat = window.lat_fit if window.slo is not None else None
    alloc = method(resource, window.t_fit, window.y_fit, lat, window.slo)
    allocs = judge_horizon(alloc.allocation, window.y_judged, alloc.on_shortfall,
                           window.t_judged)
    return horizon_outcome(allocs, window)


def judge_methods(
    series: PodSeries, folds: Sequence[Fold], methods: Mapping[str, MethodFn], resource: str
) -> dict[str, Totals]:
    """Every method's :class:`Totals` over the judged (``k >= 0``) folds of one pod.

    Returns:
        ``{method name: Totals}``, one per method (zero totals when no fold is judged).
    """
    totals = {name: Totals() for name in methods}
    for fold in folds:
        if fold.validation:
            continue
        window = Window.of(series, fold, resource)
        for name, method in methods.items():
            outcome = _judge_method(method, window, resource)
            totals[name].add(outcome, window.static * window.intervals, window.intervals)
    return totals


# ------------------------------------------------------------------ candidate points


@dataclass(frozen=True)
class HorizonTotals:
    """One horizon of one pod with the outcome of every grid candidate (arrays of shape
    ``(C,)``) and of VPA (NaN reserved when VPA is not judged).

    ``k < 0``: an inner (validation) horizon; ``k >= 0``: a judged one.
    """

    pod: str
    k: int
    origin: float
    end: float
    intervals: int
    reserved: np.ndarray
    under: np.ndarray
    static: float
    vpa_reserved: float
    vpa_under: int
    qos_violations: np.ndarray
    qos_intervals: int

    @property
    def validation(self) -> bool:
        """An inner (validation) horizon."""
        return self.k < 0

    def outcome(self, candidate: int) -> Outcome:
        """The :class:`Outcome` of candidate ``candidate``."""
        return Outcome(float(self.reserved[candidate]), int(self.under[candidate]),
                       int(self.qos_violations[candidate]), self.qos_intervals)


def fleet_rise_table(frame: pd.DataFrame, resource: str,
                     horizon_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Relative one-horizon peak rises of every pod of ``frame`` (:func:`peak_rises` with
    ``relative=True``), with the time each became known (``s + horizon_s``).

    Returns:
        ``(known_at, rises)``, 1-D, sorted by ``known_at``.
    """
    known, values = [], []
    for _, group in frame[frame[resource].notna()].groupby("pod", sort=True):
        rt, r = peak_rises(group["time"].to_numpy(float), group[resource].to_numpy(float),
                           horizon_s, relative=True)
        known.append(rt + horizon_s)
        values.append(r)
    if not known:
        return np.empty(0), np.empty(0)
    known_at, rises = np.concatenate(known), np.concatenate(values)
    order = np.argsort(known_at, kind="stable")
    return known_at[order], rises[order]


class FleetHeadroom:
    """``origin -> fleet headroom per grid point`` from the relative peak rises of every pod
    complete by the origin (:func:`fleet_rise_table`, :func:`fleet_headroom`).

    To bound the work, the rises are taken as of the last checkpoint at or before the origin
    (checkpoints every ``horizon_s`` of trace time from the frame's first sample): never
    later than the origin. Zeros when no grid point has the fleet term.
    """

    def __init__(self, frame: pd.DataFrame, resource: str, horizon_s: float,
                 grid: Sequence[OperatingPoint]):
        self._points = [(g.coverage, g.interval_confidence) for g in grid]
        self._horizon_s = horizon_s
        self._on = any(g.fleet for g in grid)
        self._cache: dict[float, np.ndarray] = {}
        if self._on:
            self._known_at, self._rises = fleet_rise_table(frame, resource, horizon_s)
            self._t0 = float(frame["time"].min())

    def at(self, origin: float) -> np.ndarray:
        """Relative headroom per grid point, shape ``(C,)``, as known at ``origin``."""
        if not self._on:
            return np.zeros(len(self._points))
        checkpoint = self._t0 + np.floor((origin - self._t0) / self._horizon_s) * self._horizon_s
        if checkpoint not in self._cache:
            k = int(np.searchsorted(self._known_at, checkpoint, side="right"))
            self._cache[checkpoint] = fleet_headroom(self._rises[:k], self._points)
        return self._cache[checkpoint]


@dataclass(frozen=True)
class CandidateJudge:
    """Judges every candidate of ``grid`` on every fold of a pod (see the module docstring).

    Attributes:
        resource: the resource sized.
        grid: candidate operating points, ``C`` of them.
        horizon_s: the refit horizon: the folds' horizon and the candidates' growth horizon.
        fleet: the fleet's headroom as of each origin (for ``+fleet`` candidates).
        vpa: VPA's method, judged on the same horizons as the yardstick of the VPA-matched
            objectives; ``None`` = not judged.
    """

    resource: str
    grid: Sequence[OperatingPoint]
    horizon_s: float
    fleet: FleetHeadroom
    vpa: MethodFn | None = None

    def judge(self, series: PodSeries, folds: Sequence[Fold]) -> list[HorizonTotals]:
        """One :class:`HorizonTotals` per fold (inner and judged)."""
        rises = peak_rises(series.t, series.y, self.horizon_s)
        return [self._horizon(Window.of(series, fold, self.resource), rises) for fold in folds]

    def _horizon(self, window: Window, rises: tuple[np.ndarray, np.ndarray]) -> HorizonTotals:
        targets = usage_targets(
            window.t_fit, window.y_fit, self.grid, horizon_s=self.horizon_s, rises=rises,
            fleet_growth=self.fleet.at(window.origin), max_value=window.cap,
        ).target
        rule = JustEnoughEstimator(resource=self.resource, max_value=window.cap).bump_rule
        outcomes = [
            horizon_outcome(judge_horizon(a, window.y_judged, _reaction(rule, a)), window)
            for a in targets
        ]
        vpa = self._vpa_outcome(window)
        return HorizonTotals(
            window.pod, window.k, window.origin, window.origin + self.horizon_s,
            window.intervals,
            np.array([o.reserved for o in outcomes]),
            np.array([o.under for o in outcomes], dtype=int),
            window.static * window.intervals, float(vpa.reserved), int(vpa.under),
            np.array([o.qos_violations for o in outcomes], dtype=int),
            outcomes[0].qos_intervals if outcomes else 0,
        )

    def _vpa_outcome(self, window: Window) -> Outcome:
        """VPA fitted on usage alone and judged on ``window`` (NaN reserved if not judged)."""
        if self.vpa is None:
            return Outcome(np.nan, 0, 0, 0)
        usage_only = dataclasses.replace(window, lat_fit=None, lat_judged=None, slo=None)
        return _judge_method(self.vpa, usage_only, self.resource)
