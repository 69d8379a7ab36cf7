"""Rolling-origin evaluation of right-sizing on per-pod telemetry (GenAI schema).

Split by time, per pod (never random rows): the pod's history from its first sample up to an
origin is the fitting window; the next ``horizon_s`` seconds are judged; then the origin moves
forward by ``horizon_s`` (Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*,
"evaluation on a rolling forecasting origin"). Every method is refitted at every origin on the
same window. Inside a horizon a method may react to a shortfall the way it would in production:
after a shortfall interval the allocation used from the *next* interval on is the method's
bumped one (VPA's OOM bump ``max(+100 MiB, x1.2)`` for memory, cohabit's bump for both
resources); the static request and the p95 rule do not react.

**Honest hyper-parameters (nested rolling origin).** The judged origins start at
``start_fraction`` of each pod's history. The same origin grid is continued backwards into the
fitting windows (``origin - k * horizon_s``, as long as ``min_fit_samples`` precede it): these
*inner* horizons are the validation split. For every candidate operating point of
:class:`JustEnoughEstimator` (``coverage`` x ``interval_confidence`` x ``half_life_s``,
:data:`DEFAULT_GRID`) each inner and outer horizon is judged; at an outer origin ``o`` the
operating point used is selected from the inner and earlier horizons of *all* pods that ended
by ``o`` in trace time (what an operator has seen by then), never from the judged horizon or
later. Older evidence counts less: a validation horizon that ended ``age`` seconds before
``o`` has weight ``2 ** (-age / evidence_half_life_s)`` (default the estimator's a-priori
usage half-life, 6 h). Objectives:

* ``just-enough`` (budgeted, per workload): each pod gets its own operating point, all under
  one fleet-wide shortfall budget (:data:`~cohabit.predictors.rightsizing.SHORTFALL_BUDGET`:
  1 % GPU share, 0.5 % GPU memory): :func:`select_per_workload` (Lagrangian allocation, one
  exchange rate between reserved capacity and shortfalls for the whole fleet), so a
  shortfall is spent on the pod where it saves most. A pod without validation horizons of
  its own gets the pooled choice.
* ``just-enough-pooled``: one operating point for all pods, the least reserved whose pooled
  validation shortfall share is within the budget; if none is, the fewest shortfalls.
* ``just-enough@vpa-cost`` (cost-matched, per workload): the fewest validation shortfalls at
  no more pooled reservation than the VPA recommender had on the same validation horizons.
* ``just-enough@vpa-under`` (shortfall-matched, per workload): the least reserved at no more
  pooled validation shortfalls than VPA had.

The two VPA-matched objectives are how "dominates VPA" (less reserved at no more shortfalls,
or fewer shortfalls at no more reserved) is sought without looking at the judged part.

``just-enough-prior`` is the estimator with its a-priori defaults (no selection at all).

Metrics per resource, pod and method (summed over the pod's judged horizons):

* ``reserved``: sum over judged intervals of the allocation;
* ``static``: the same sum for the static request, the fitting window's peak;
* ``under``: intervals whose usage exceeded the allocation (under-provisioned);
* ``qos_violations`` / ``qos_intervals``: for the GPU share, among intervals with a latency
  sample, those whose latency stretched by ``max(1, usage / allocation)`` (a throttled
  work-conserving share slows service by the demand ratio) exceeds the pod's SLO, the p99
  latency of its fitting window.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from ._common import MEMORY_LIKE
from .rightsizing import (
    DEFAULT_HALF_LIFE_S,
    SHORTFALL_BUDGET,
    JustEnoughEstimator,
    fleet_headroom,
    growth_headroom,
    interval_uppers,
    peak_rises,
)
from .vpa import VpaRecommender

__all__ = [
    "Allocator",
    "DEFAULT_GRID",
    "OperatingPoint",
    "RIGHTSIZING_METHODS",
    "evaluate_rightsizing",
    "judge_horizon",
    "FleetSelection",
    "select_operating_point",
    "select_operating_points",
    "select_per_workload",
    "summarize_rightsizing",
    "per_pod_rightsizing",
]


@dataclass
class Allocator:
    """A fitted method inside one horizon: current allocation and its shortfall reaction."""

    allocation: float
    on_shortfall: Callable[[float, float], float] | None = None
    """``(time_s, used) -> new allocation``; ``None`` = keep the allocation."""


@dataclass(frozen=True)
class OperatingPoint:
    """One candidate setting of :class:`JustEnoughEstimator` for the nested selection."""

    coverage: float
    interval_confidence: float
    half_life_s: float
    growth: bool = False
    """Peak-growth term on (``growth_horizon_s`` = the evaluation horizon)."""
    fleet: bool = False
    """Fleet peak-growth term on too (``fleet_rises``: the relative peak rises of every pod
    that were complete by the origin); implies ``growth``."""

    def label(self) -> str:
        """Short text, e.g. ``c=0.99 ic=0.8 hl=6h +growth``."""
        return (f"c={self.coverage:g} ic={self.interval_confidence:g} "
                f"hl={self.half_life_s / 3600:g}h" + (" +growth" if self.growth else "")
                + (" +fleet" if self.fleet else ""))

    def estimator(
        self, resource: str, horizon_s: float, fleet_rises: np.ndarray | None = None, **kwargs
    ) -> JustEnoughEstimator:
        """The :class:`JustEnoughEstimator` this point stands for.

        Raises:
            ValueError: a fleet point without ``fleet_rises``.
        """
        if self.fleet and fleet_rises is None:
            raise ValueError(f"operating point {self.label()!r} needs fleet_rises")
        return JustEnoughEstimator(
            resource=resource, coverage=self.coverage,
            interval_confidence=self.interval_confidence, half_life_s=self.half_life_s,
            growth_horizon_s=horizon_s if (self.growth or self.fleet) else None,
            fleet_rises=fleet_rises if self.fleet else None, **kwargs,
        )


DEFAULT_GRID: tuple[OperatingPoint, ...] = tuple(
    OperatingPoint(c, ic, hl * 3600.0, growth, fleet)
    for c in (0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)
    for ic in (0.5, 0.8, 0.95)
    for hl in (0.5, 1.0, 2.0, 6.0, 24.0)
    for growth, fleet in ((False, False), (True, False), (True, True))
)
"""Candidates of the nested selection: coverage x interval confidence x half-life x peak
growth (none, the pod's own, own + fleet) (315). The half-lives span half an hour (the
judged horizon's scale) to a day."""

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
    "just-enough-prior": _just_enough,
    "just-enough-prior+qos": _just_enough_qos,
}
"""Fixed methods judged by :func:`evaluate_rightsizing`: the static request (fitting-window
peak), a plain p95 x 1.15 rule, the VPA recommender and cohabit's :class:`JustEnoughEstimator`
with its a-priori defaults, from usage alone and, where the pod has latency, with its QoS
model (SLO = the fitting window's p99 latency). The nested-selected ``just-enough`` rows are
added by :func:`evaluate_rightsizing` itself."""

_EPS = 1e-9


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
        short = np.flatnonzero(usage[i:] > allocs[i:] * (1 + _EPS))
        if not len(short):
            break
        j = i + int(short[0])
        allocs[j + 1:] = bump(float(times[j]) if times is not None else float(j),
                              float(usage[j]))
        i = j + 1
    return allocs


def _je_bump(resource: str, current: float, cap: float | None) -> Callable[[float], float]:
    """:meth:`JustEnoughEstimator.bump` as a closure over a running target."""
    state = {"a": current}

    def bump(_time_s: float, used: float) -> float:
        b = max(used + 100.0, used * 1.2) if resource in MEMORY_LIKE else used * 1.2
        if cap is not None:
            b = min(b, cap)
        state["a"] = max(state["a"], max(b, 0.0))
        return state["a"]

    return bump


class _Horizon(NamedTuple):
    """One judged hour of one pod (``k < 0``: an inner, validation horizon; ``k >= 0``: judged)
    with the totals of every grid candidate (arrays of shape ``(C,)``) and of VPA."""

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


def select_operating_point(
    reserved: np.ndarray,
    under: np.ndarray,
    intervals: int,
    budget: float | None = None,
    cost_cap: float | None = None,
    under_cap: float | None = None,
) -> int:
    """Index of the selected candidate from pooled validation sums.

    Exactly one objective:

    * ``budget`` (shortfall share allowed): the least reserved candidate within it, else the
      fewest shortfalls (ties: least reserved);
    * ``cost_cap`` (reserved sum allowed, e.g. VPA's): the fewest shortfalls among candidates
      within it (ties: least reserved), else the least reserved;
    * ``under_cap`` (shortfall count allowed, e.g. VPA's): the least reserved candidate
      within it, else the fewest shortfalls.

    Args:
        reserved, under: per-candidate sums over the validation horizons, shape (C,).
        intervals: judged validation intervals.

    Raises:
        ValueError: not exactly one objective given.
    """
    given = [v is not None for v in (budget, cost_cap, under_cap)]
    if sum(given) != 1:
        raise ValueError("give exactly one of budget, cost_cap and under_cap")
    reserved = np.asarray(reserved, float)
    under = np.asarray(under, float)
    fewest = int(np.lexsort((reserved, under))[0])
    if cost_cap is not None:
        ok = reserved <= cost_cap * (1 + _EPS)
        if not ok.any():
            return int(np.argmin(reserved))
        idx = np.flatnonzero(ok)
        return int(idx[np.lexsort((reserved[ok], under[ok]))[0]])
    limit = budget * intervals if budget is not None else under_cap
    ok = under <= limit + _EPS
    if not ok.any():
        return fewest
    return int(np.flatnonzero(ok)[np.argmin(reserved[ok])])


def evaluate_rightsizing(
    frame: pd.DataFrame,
    resources: Sequence[str] = ("gpu_milli", "gpu_memory_mib"),
    *,
    start_fraction: float = 0.5,
    horizon_s: float = 3600.0,
    min_fit_samples: int = 60,
    methods: dict[str, MethodFn] | None = None,
    latency_column: str = "latency_ms",
    grid: Sequence[OperatingPoint] = DEFAULT_GRID,
    budgets: dict[str, float] | None = None,
    min_validation_intervals: int = 500,
    evidence_half_life_s: float | None = DEFAULT_HALF_LIFE_S,
    selection: list[dict] | None = None,
    candidate_totals: list[dict] | None = None,
) -> pd.DataFrame:
    """Judge right-sizing methods on every pod of ``frame`` by a rolling origin.

    Args:
        frame: a :func:`~cohabit.predictors.telemetry_data.load_genai` frame (``pod``, ``time``
            and one column per resource; ``latency_ms`` optional).
        resources: resource columns to size.
        start_fraction: first judged origin, as a fraction of each pod's time span.
        horizon_s: length of each judged horizon; origins step by it.
        min_fit_samples: origins (inner or judged) need this many fitting samples; pods with
            fewer before the first judged origin are skipped.
        methods: name -> fixed method; default :data:`RIGHTSIZING_METHODS`.
        latency_column: column holding latency (ms), used for the GPU-share QoS metric.
        grid: candidates of the nested selection; empty = no ``just-enough`` rows.
        budgets: shortfall budget per resource (default
            :data:`~cohabit.predictors.rightsizing.SHORTFALL_BUDGET`).
        min_validation_intervals: below this many validation intervals the a-priori
            defaults are used instead of a selected candidate.
        evidence_half_life_s: validation horizons count with weight ``2 ** (-age / h)``,
            ``age`` = origin - the horizon's end (default: the estimator's own a-priori
            usage half-life, 6 h); ``None`` = all count alike.
        selection: if a list, one dict per (resource, pod, judged origin, objective) with the
            selected candidate is appended to it, with the validation shortfall share and
            saving of what the objective chose for the whole fleet (weighted as the
            evidence), the pod's own validation shortfall share, and VPA's on the same
            horizons.
        candidate_totals: if a list, one dict per (resource, candidate) with its totals over
            the judged horizons (``saving``, ``under_share``) is appended: the trade-off
            curve of every *fixed* candidate, for information only (choosing one from it
            would be tuning on the judged part).

    Returns:
        One row per (resource, pod, method) with ``reserved``, ``static``, ``under``,
        ``intervals``, ``qos_violations``, ``qos_intervals``, ``horizons``. The nested
        selection adds methods ``just-enough`` and, when ``vpa`` is among the methods,
        ``just-enough@vpa-cost`` and ``just-enough@vpa-under``.

    Raises:
        KeyError: a resource column is missing.
        ValueError: ``horizon_s`` not a positive finite number (0 looped forever) or
            ``start_fraction`` outside 0..1.
    """
    if not (math.isfinite(horizon_s) and horizon_s > 0):
        raise ValueError(f"horizon_s must be a positive finite number, got {horizon_s}")
    if not 0 <= start_fraction <= 1:
        raise ValueError(f"start_fraction must be within 0..1, got {start_fraction}")
    methods = RIGHTSIZING_METHODS if methods is None else methods
    budgets = {**SHORTFALL_BUDGET, **(budgets or {})}
    grid = list(grid)
    points = [(g.coverage, g.interval_confidence) for g in grid]
    half_lives = sorted({g.half_life_s for g in grid})
    rows: list[dict] = []
    has_latency = latency_column in frame.columns
    for resource in resources:
        if resource not in frame.columns:
            raise KeyError(f"telemetry has no column {resource!r}")
        acc: dict[tuple[str, str], dict] = {}
        fleet_at = _fleet_rises(frame, resource, horizon_s, grid, points)
        # Candidate table over every (pod, origin): inner (k < 0) and judged (k >= 0).
        cand: list[_Horizon] = []
        for pod, group in frame.groupby("pod", sort=True):
            ok = group[resource].notna().to_numpy()
            t = group["time"].to_numpy(float)[ok]
            y = group[resource].to_numpy(float)[ok]
            lat = group[latency_column].to_numpy(float)[ok] if has_latency else None
            if len(y) < 2:
                continue
            t0, t1 = t[0], t[-1]
            origin0 = t0 + start_fraction * (t1 - t0)
            if np.sum(t < origin0) < min_fit_samples:
                continue
            k = 0
            while np.sum(t < origin0 - (k + 1) * horizon_s) >= min_fit_samples:
                k += 1
            rise_t, rises = peak_rises(t, y, horizon_s) if grid else (None, None)
            for name in methods:
                acc[(str(pod), name)] = dict(reserved=0.0, static=0.0, under=0, intervals=0,
                                             qos_violations=0, qos_intervals=0, horizons=0)
            for kk in range(-k, 10**9):
                origin = origin0 + kk * horizon_s
                if origin > t1:
                    break
                fit = t < origin
                judged = (t >= origin) & (t < origin + horizon_s)
                if not judged.any():
                    continue
                tf, yf = t[fit], y[fit]
                te, ye = t[judged], y[judged]
                static = float(np.max(yf))
                cap = _gpu_cap(resource, yf)
                lf = lat[fit] if lat is not None else None
                slo = None
                if lf is not None and resource == "gpu_milli" and np.isfinite(lf).sum() >= 30:
                    slo = float(np.nanquantile(lf, 0.99))
                le = lat[judged] if lat is not None else None

                # Candidates of the nested selection (all origins).
                if grid:
                    res_c = np.empty(len(grid))
                    und_c = np.empty(len(grid), dtype=int)
                    qos_c = np.zeros(len(grid), dtype=int)
                    has = np.isfinite(le) if (slo is not None and le is not None) else None
                    rmask = rise_t + horizon_s <= tf[-1]
                    recent = float(np.max(yf[tf > tf[-1] - horizon_s]))
                    fleet = fleet_at(origin)
                    for hl in half_lives:
                        idx = [i for i, g in enumerate(grid) if g.half_life_s == hl]
                        pts = [points[i] for i in idx]
                        ups, _ = interval_uppers(tf, yf, hl, pts)
                        grow = growth_headroom(rise_t[rmask], rises[rmask], hl, pts)
                        for i, a, gr in zip(idx, ups, grow, strict=True):
                            a = float(a)
                            if grid[i].growth or grid[i].fleet:
                                a = max(a, recent + float(gr))
                            if grid[i].fleet:
                                a = max(a, recent * (1.0 + float(fleet[i])))
                            a = max(a, 0.0)
                            if cap is not None:
                                a = min(a, cap)
                            allocs = judge_horizon(a, ye, _je_bump(resource, a, cap))
                            res_c[i] = allocs.sum()
                            und_c[i] = int(np.sum(ye > allocs * (1 + _EPS)))
                            if has is not None:
                                stretch = np.maximum(1.0, ye[has] / np.maximum(allocs[has], _EPS))
                                qos_c[i] = int(np.sum(le[has] * stretch > slo))
                    vpa_res, vpa_under = np.nan, 0
                    if "vpa" in methods:
                        va = methods["vpa"](resource, tf, yf, None, None)
                        v_alloc = judge_horizon(va.allocation, ye, va.on_shortfall, te)
                        vpa_res = float(v_alloc.sum())
                        vpa_under = int(np.sum(ye > v_alloc * (1 + _EPS)))
                    qos_n = int(has.sum()) if has is not None else 0
                    cand.append(_Horizon(str(pod), kk, origin, origin + horizon_s, len(ye),
                                         res_c, und_c, static * len(ye), vpa_res, vpa_under,
                                         qos_c, qos_n))
                if kk < 0:
                    continue
                for name, method in methods.items():
                    alloc = method(resource, tf, yf, lf if slo is not None else None, slo)
                    allocs = judge_horizon(alloc.allocation, ye, alloc.on_shortfall, te)
                    _add(acc[(str(pod), name)], allocs, ye, static, slo, le)
        rows += [{"resource": resource, "pod": pod, "method": name, **s}
                 for (pod, name), s in acc.items()]
        if grid and cand:
            rows += _nested(resource, cand, grid, budgets[resource], "vpa" in methods,
                            min_validation_intervals, selection, evidence_half_life_s)
            if candidate_totals is not None:
                outer = [c for c in cand if c.k >= 0]
                res = np.sum([c.reserved for c in outer], axis=0)
                und = np.sum([c.under for c in outer], axis=0)
                n = sum(c.intervals for c in outer)
                stat = sum(c.static for c in outer)
                for i, g in enumerate(grid):
                    candidate_totals.append({
                        "resource": resource, "candidate": g.label(),
                        "saving": 1 - res[i] / stat, "under_share": und[i] / n,
                        "under": int(und[i]), "intervals": int(n),
                    })
    return pd.DataFrame(rows)


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


def _fleet_rises(frame, resource, horizon_s, grid, points) -> Callable[[float], np.ndarray]:
    """``origin -> fleet headroom per grid point`` from the relative peak rises of every pod
    complete by the origin (:func:`fleet_rise_table`).

    To bound the work, the rises are taken as of the last checkpoint at or before the origin
    (checkpoints every ``horizon_s`` of trace time): never later than the origin."""
    if not any(g.fleet for g in grid):
        return lambda _origin: np.zeros(len(grid))
    known_at, rises = fleet_rise_table(frame, resource, horizon_s)
    t0 = float(frame["time"].min())
    cache: dict[float, np.ndarray] = {}

    def at(origin: float) -> np.ndarray:
        checkpoint = t0 + np.floor((origin - t0) / horizon_s) * horizon_s
        if checkpoint not in cache:
            k = int(np.searchsorted(known_at, checkpoint, side="right"))
            cache[checkpoint] = fleet_headroom(rises[:k], points)
        return cache[checkpoint]

    return at


@dataclass(frozen=True)
class FleetSelection:
    """Operating points chosen now for every workload of a fleet (:func:`select_operating_points`).

    Attributes:
        points: ``{workload: {resource: OperatingPoint}}``; a workload is missing for a
            resource it has too little history of (it then gets the estimator's defaults).
        how: ``{workload: {resource: "selected" | "prior"}}`` (``prior``: too little
            validation in the whole fleet, the a-priori defaults' nearest grid point).
        fleet_rises: ``{resource: relative one-horizon peak rises of the whole fleet}``,
            for ``+fleet`` points (:meth:`OperatingPoint.estimator`'s ``fleet_rises``).
        horizon_s: the refit horizon the points were judged for (the growth horizon).
    """

    points: dict[str, dict[str, OperatingPoint]]
    how: dict[str, dict[str, str]]
    fleet_rises: dict[str, np.ndarray]
    horizon_s: float


def select_operating_points(
    frame: pd.DataFrame,
    resources: Sequence[str] = ("gpu_milli", "gpu_memory_mib"),
    *,
    horizon_s: float = 3600.0,
    grid: Sequence[OperatingPoint] = DEFAULT_GRID,
    budgets: dict[str, float] | None = None,
    evidence_half_life_s: float | None = DEFAULT_HALF_LIFE_S,
    min_fit_samples: int = 60,
    min_validation_intervals: int = 500,
) -> FleetSelection:
    """Choose :class:`JustEnoughEstimator` operating points for a fleet, as of its last samples.

    The same nested selection :func:`evaluate_rightsizing` judges as ``just-enough``, applied
    at the end of the history: every workload's history is cut into the hourly horizons
    before its last sample; each candidate of ``grid`` is judged on them (with the shortfall
    reaction); the evidence is decayed by age; and every workload gets its own point under
    one fleet-wide shortfall budget (:func:`select_per_workload`). Then fit
    ``point.estimator(resource, horizon_s, fleet_rises=...)`` on the workload's whole history
    to get its request, or pass the selection to :func:`cohabit.predictors.recommend`.

    Args:
        frame: ``pod`` (workload key), ``time`` (s) and one column per resource, as
            :func:`~cohabit.predictors.telemetry_data.load_genai` returns.
        resources, horizon_s, grid, budgets, evidence_half_life_s, min_fit_samples,
            min_validation_intervals: as for :func:`evaluate_rightsizing`.

    Returns:
        A :class:`FleetSelection`.

    Raises:
        KeyError: a resource column is missing.
    """
    grid = list(grid)
    selection: list[dict] = []
    evaluate_rightsizing(
        frame, resources, start_fraction=1.0, horizon_s=horizon_s,
        min_fit_samples=min_fit_samples, methods={}, grid=grid, budgets=budgets,
        min_validation_intervals=min_validation_intervals,
        evidence_half_life_s=evidence_half_life_s, selection=selection,
    )
    points: dict[str, dict[str, OperatingPoint]] = {}
    how: dict[str, dict[str, str]] = {}
    for row in selection:
        if row["method"] != "just-enough":
            continue
        points.setdefault(row["pod"], {})[row["resource"]] = grid[row["candidate_index"]]
        how.setdefault(row["pod"], {})[row["resource"]] = row["how"]
    fleet_rises = {r: fleet_rise_table(frame, r, horizon_s)[1] for r in resources}
    return FleetSelection(points, how, fleet_rises, float(horizon_s))


def _add(s: dict, allocs: np.ndarray, ye: np.ndarray, static: float, slo, le) -> None:
    s["reserved"] += float(allocs.sum())
    s["static"] += static * len(ye)
    s["under"] += int(np.sum(ye > allocs * (1 + _EPS)))
    s["intervals"] += len(ye)
    s["horizons"] += 1
    if slo is not None and le is not None:
        has = np.isfinite(le)
        stretch = np.maximum(1.0, ye[has] / np.maximum(allocs[has], _EPS))
        s["qos_violations"] += int(np.sum(le[has] * stretch > slo))
        s["qos_intervals"] += int(has.sum())


def select_per_workload(
    reserved: np.ndarray,
    under: np.ndarray,
    under_limit: float | None = None,
    reserved_limit: float | None = None,
) -> np.ndarray:
    """Per-workload operating points under one fleet-wide limit (Lagrangian allocation).

    Each workload ``w`` gets ``argmin_c reserved[w, c] + lam * under[w, c]``: one exchange
    rate ``lam`` (reserved units per shortfall interval) for the whole fleet, so a shortfall
    is spent where it saves most (Everett, "Generalized Lagrange multiplier method for
    solving problems of optimum allocation of resources", Operations Research 1963). ``lam``
    is found by bisection on ``log10 lam`` in [-4, 14]: pooled shortfalls fall and pooled
    reservation rises as ``lam`` grows.

    Exactly one limit:

    * ``under_limit``: the smallest ``lam`` whose pooled shortfalls are within it (least
      reserved); if even the largest ``lam`` exceeds it, the fewest-shortfall choices;
    * ``reserved_limit``: the largest ``lam`` whose pooled reservation is within it (fewest
      shortfalls); if even the smallest exceeds it, the least-reserving choices.

    Args:
        reserved, under: validation sums per workload and candidate, shape (W, C); rows of
            workloads without validation data should be all zero (they then choose the
            least reserved candidate and add nothing to the pooled sums).

    Returns:
        Candidate index per workload, shape (W,).

    Raises:
        ValueError: not exactly one limit given, or the shapes differ.
    """
    if (under_limit is None) == (reserved_limit is None):
        raise ValueError("give exactly one of under_limit and reserved_limit")
    reserved = np.asarray(reserved, float)
    under = np.asarray(under, float)
    if reserved.shape != under.shape or reserved.ndim != 2:
        raise ValueError(f"reserved {reserved.shape} and under {under.shape} must be equal (W, C)")
    rows = np.arange(len(reserved))

    def at(log_lam: float) -> tuple[np.ndarray, float, float]:
        choice = np.argmin(reserved + 10.0**log_lam * under, axis=1)
        return choice, float(under[rows, choice].sum()), float(reserved[rows, choice].sum())

    lo, hi = -4.0, 14.0
    if under_limit is not None:
        choice, u, _ = at(lo)
        if u <= under_limit + _EPS:
            return choice
        for _ in range(60):
            mid = (lo + hi) / 2
            if at(mid)[1] <= under_limit + _EPS:
                hi = mid
            else:
                lo = mid
        return at(hi)[0]
    choice, _, r = at(lo)
    if r > reserved_limit * (1 + _EPS):
        return choice
    for _ in range(60):
        mid = (lo + hi) / 2
        if at(mid)[2] <= reserved_limit * (1 + _EPS):
            lo = mid
        else:
            hi = mid
    return at(lo)[0]


def _nested(resource, cand, grid, budget, with_vpa, min_validation, selection,
            evidence_half_life_s) -> list[dict]:
    """Judged rows of the nested-selected ``just-enough`` methods (see the module docstring)."""
    pods = sorted({c.pod for c in cand})
    pod_index = {p: i for i, p in enumerate(pods)}
    ends = np.array([c.end for c in cand])
    owner = np.array([pod_index[c.pod] for c in cand])
    n_int = np.array([c.intervals for c in cand], float)
    res_all = np.vstack([c.reserved for c in cand])
    und_all = np.vstack([c.under for c in cand]).astype(float)
    stat_all = np.array([c.static for c in cand])
    vpa_all = np.array([c.vpa_reserved for c in cand])
    vpa_under_all = np.array([c.vpa_under for c in cand], float)
    prior = JustEnoughEstimator(resource=resource)
    prior_point = OperatingPoint(prior._coverage(), prior.interval_confidence,
                                 prior.half_life_s, prior.growth_horizon_s is not None)
    objectives = [("just-enough", "budget", True), ("just-enough-pooled", "budget", False)]
    if with_vpa:
        objectives += [("just-enough@vpa-cost", "vpa-cost", True),
                       ("just-enough@vpa-under", "vpa-under", True)]
    cache: dict[float, dict] = {}

    def evidence(origin: float) -> dict:
        """Validation sums (decayed by age) of every horizon that ended by ``origin``."""
        if origin in cache:
            return cache[origin]
        seen = ends <= origin
        e: dict = {"n": float(n_int[seen].sum())}
        if seen.any():
            w = (np.ones(int(seen.sum())) if evidence_half_life_s is None
                 else 0.5 ** ((origin - ends[seen]) / evidence_half_life_s))
            shape = (len(pods), len(grid))
            e["res_w"], e["und_w"] = np.zeros(shape), np.zeros(shape)
            e["n_w"] = np.zeros(len(pods))
            np.add.at(e["res_w"], owner[seen], res_all[seen] * w[:, None])
            np.add.at(e["und_w"], owner[seen], und_all[seen] * w[:, None])
            np.add.at(e["n_w"], owner[seen], n_int[seen] * w)
            e["stat_w"] = float((stat_all[seen] * w).sum())
            e["vpa_w"] = float((vpa_all[seen] * w).sum())
            e["vpa_under_w"] = float((vpa_under_all[seen] * w).sum())
            e["choice"] = {}
        cache[origin] = e
        return e

    def choose(e: dict, objective: str, per_workload: bool, pod: str) -> int:
        res_p, und_p, n_p = e["res_w"], e["und_w"], e["n_w"]
        pooled_res, pooled_und, pooled_n = res_p.sum(0), und_p.sum(0), float(n_p.sum())
        if not per_workload or n_p[pod_index[pod]] <= 0:
            if objective == "budget":
                return select_operating_point(pooled_res, pooled_und, 1, budget=budget * pooled_n)
            if objective == "vpa-cost":
                return select_operating_point(pooled_res, pooled_und, 1, cost_cap=e["vpa_w"])
            return select_operating_point(pooled_res, pooled_und, 1, under_cap=e["vpa_under_w"])
        if objective not in e["choice"]:
            if objective == "budget":
                e["choice"][objective] = select_per_workload(
                    res_p, und_p, under_limit=budget * pooled_n)
            elif objective == "vpa-cost":
                e["choice"][objective] = select_per_workload(
                    res_p, und_p, reserved_limit=e["vpa_w"])
            else:
                e["choice"][objective] = select_per_workload(
                    res_p, und_p, under_limit=e["vpa_under_w"])
        return int(e["choice"][objective][pod_index[pod]])

    acc: dict[tuple[str, str], dict] = {}
    for pod, kk, origin, _end, m, res_c, und_c, static_sum, _v, _vu, qos_c, qos_n in cand:
        if kk < 0:
            continue
        e = evidence(origin)
        for name, objective, per_workload in objectives:
            s = acc.setdefault((pod, name), dict(
                reserved=0.0, static=0.0, under=0, intervals=0, qos_violations=0,
                qos_intervals=0, horizons=0))
            if e["n"] < min_validation:
                i = _nearest(grid, prior_point)
                chosen = "prior"
            else:
                i = choose(e, objective, per_workload, pod)
                chosen = "selected"
            s["reserved"] += float(res_c[i])
            s["static"] += float(static_sum)
            s["under"] += int(und_c[i])
            s["intervals"] += int(m)
            s["horizons"] += 1
            s["qos_violations"] += int(qos_c[i])
            s["qos_intervals"] += int(qos_n)
            if selection is not None:
                has = chosen == "selected"
                k = pod_index[pod]
                own_n = e["n_w"][k] if has else 0.0
                if has:  # the fleet's validation totals of what this objective chose
                    fleet = (e["choice"].get(objective) if per_workload else None)
                    fleet = np.full(len(pods), i) if fleet is None else fleet
                    rows_ = np.arange(len(pods))
                    v_under = float(e["und_w"][rows_, fleet].sum() / e["n_w"].sum())
                    v_saving = float(1 - e["res_w"][rows_, fleet].sum() / e["stat_w"])
                selection.append({
                    "resource": resource, "pod": pod, "origin": origin, "method": name,
                    "candidate": grid[i].label(), "candidate_index": i, "how": chosen,
                    "validation_intervals": int(e["n"]),
                    "validation_under_share": v_under if has else np.nan,
                    "validation_saving": v_saving if has else np.nan,
                    "pod_validation_under_share": (float(e["und_w"][k, i] / own_n)
                                                   if own_n > 0 else np.nan),
                    "vpa_validation_under_share": (float(e["vpa_under_w"] / e["n_w"].sum())
                                                   if has else np.nan),
                    "vpa_validation_saving": (float(1 - e["vpa_w"] / e["stat_w"])
                                              if has else np.nan),
                })
    return [{"resource": resource, "pod": pod, "method": name, **s}
            for (pod, name), s in acc.items()]


def _nearest(grid: Sequence[OperatingPoint], p: OperatingPoint) -> int:
    """Index of the grid point closest to ``p`` (the a-priori default, used before any
    validation data exists)."""
    d = [abs(g.coverage - p.coverage) * 100 + abs(g.interval_confidence - p.interval_confidence)
         + abs(np.log(g.half_life_s / p.half_life_s)) + 10 * (g.growth != p.growth)
         + 10 * (g.fleet != p.fleet)
         for g in grid]
    return int(np.argmin(d))


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
