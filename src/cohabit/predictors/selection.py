"""Choosing :class:`JustEnoughEstimator` operating points on validation horizons.

**Honest hyper-parameters (nested rolling origin).** Every candidate operating point of the
estimator (``coverage`` x ``interval_confidence`` x ``half_life_s`` x peak growth,
:data:`DEFAULT_GRID`) is judged on every inner (validation) and judged horizon
(:class:`~cohabit.predictors.judging.CandidateJudge`). At a judged origin ``o`` the operating
point used is selected from the horizons of *all* pods that ended by ``o`` in trace time (what
an operator has seen by then: :class:`Evidence`), never from the judged horizon or later.
Older evidence counts less: a horizon that ended ``age`` seconds before ``o`` has weight
``2 ** (-age / evidence_half_life_s)`` (default the estimator's a-priori usage half-life,
6 h). Objectives (:data:`OBJECTIVES`, :data:`VPA_OBJECTIVES`):

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
or fewer shortfalls at no more reserved) is sought without looking at the judged part. With
too little validation in the whole fleet (``min_validation_intervals``) the grid point nearest
the estimator's a-priori defaults is used.

:func:`select_operating_points` applies the same selection at the end of a fleet's history:
the operating points the operator's fleet tuner and ``cohabit recommend`` fit with.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from ._common import fan_out
from .judging import EPS as _EPS
from .judging import (
    CandidateJudge,
    FleetHeadroom,
    HorizonTotals,
    MethodFn,
    PodSeries,
    Totals,
    fleet_rise_table,
    pod_series,
)
from .rightsizing import (
    DEFAULT_HALF_LIFE_S,
    SHORTFALL_BUDGET,
    JustEnoughEstimator,
    OperatingPoint,
)
from .rolling_origin import RollingOrigin

__all__ = [
    "DEFAULT_GRID",
    "Evidence",
    "EvidenceTable",
    "FleetSelection",
    "NestedSelection",
    "OBJECTIVES",
    "Objective",
    "SelectionRecord",
    "VPA_OBJECTIVES",
    "judge_candidates",
    "select_operating_point",
    "select_operating_points",
    "select_per_workload",
]

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


# ------------------------------------------------------------------ choosing from sums


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
    if budget is not None:
        limit = budget * intervals
    else:
        assert under_cap is not None  # exactly one objective is given (checked above)
        limit = under_cap
    ok = under <= limit + _EPS
    if not ok.any():
        return fewest
    return int(np.flatnonzero(ok)[np.argmin(reserved[ok])])


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
    assert reserved_limit is not None  # exactly one limit is given (checked above)
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


# ------------------------------------------------------------------------- evidence


class Objective(NamedTuple):
    """One way of choosing (see the module docstring).

    Attributes:
        method: the name of the judged method it yields (e.g. ``just-enough``).
        limit: ``budget`` (the resource's shortfall budget), ``vpa-cost`` (VPA's validation
            reservation) or ``vpa-under`` (VPA's validation shortfalls).
        per_workload: a point per workload (:func:`select_per_workload`) or one pooled.
    """

    method: str
    limit: str
    per_workload: bool


OBJECTIVES = (Objective("just-enough", "budget", True),
              Objective("just-enough-pooled", "budget", False))
"""The budgeted objectives, always judged."""

VPA_OBJECTIVES = (Objective("just-enough@vpa-cost", "vpa-cost", True),
                  Objective("just-enough@vpa-under", "vpa-under", True))
"""The VPA-matched objectives, judged when VPA is."""


@dataclass
class Evidence:
    """Validation sums, decayed by age, of every horizon that ended by one origin.

    Attributes:
        intervals: judged intervals of those horizons (not decayed).
        reserved, under: decayed sums per workload and candidate, shape (W, C).
        workload_intervals: decayed intervals per workload, shape (W,).
        static, vpa_reserved, vpa_under: decayed fleet sums of the static request's
            reservation and of VPA's reservation and shortfalls.
        choices: per-workload choices already made at this origin, by objective ``limit``.
    """

    intervals: float
    reserved: np.ndarray
    under: np.ndarray
    workload_intervals: np.ndarray
    static: float
    vpa_reserved: float
    vpa_under: float
    choices: dict[str, np.ndarray] = field(default_factory=dict)

    def pooled_choice(self, limit: str, budget: float) -> int:
        """One candidate for the whole fleet under ``limit`` (:func:`select_operating_point`)."""
        res, und = self.reserved.sum(0), self.under.sum(0)
        if limit == "budget":
            n = float(self.workload_intervals.sum())
            return select_operating_point(res, und, 1, budget=budget * n)
        if limit == "vpa-cost":
            return select_operating_point(res, und, 1, cost_cap=self.vpa_reserved)
        return select_operating_point(res, und, 1, under_cap=self.vpa_under)

    def per_workload_choice(self, limit: str, budget: float) -> np.ndarray:
        """A candidate per workload under ``limit`` (:func:`select_per_workload`), shape (W,);
        computed once per limit."""
        if limit not in self.choices:
            if limit == "budget":
                n = float(self.workload_intervals.sum())
                kw = {"under_limit": budget * n}
            elif limit == "vpa-cost":
                kw = {"reserved_limit": self.vpa_reserved}
            else:
                kw = {"under_limit": self.vpa_under}
            self.choices[limit] = select_per_workload(self.reserved, self.under, **kw)
        return self.choices[limit]

    def fleet_shares(self, choice: np.ndarray) -> tuple[float, float]:
        """``(shortfall share, saving)`` on the validation horizons of the per-workload
        ``choice`` (shape (W,)): shortfalls / intervals and 1 - reserved / static."""
        rows = np.arange(len(choice))
        under = float(self.under[rows, choice].sum() / self.workload_intervals.sum())
        saving = float(1 - self.reserved[rows, choice].sum() / self.static)
        return under, saving


class EvidenceTable:
    """Every horizon of one resource stacked, for :class:`Evidence` as of any origin.

    Args:
        horizons: :class:`~cohabit.predictors.judging.HorizonTotals` of all pods, inner and
            judged, with ``C`` candidates each (non-empty).
        evidence_half_life_s: decay half-life of the evidence (s); ``None`` = no decay.
    """

    def __init__(self, horizons: Sequence[HorizonTotals], evidence_half_life_s: float | None):
        self.pods = sorted({h.pod for h in horizons})
        self.index = {p: i for i, p in enumerate(self.pods)}
        self._half_life_s = evidence_half_life_s
        self._ends = np.array([h.end for h in horizons])
        self._owner = np.array([self.index[h.pod] for h in horizons])
        self._intervals = np.array([h.intervals for h in horizons], float)
        self._reserved = np.vstack([h.reserved for h in horizons])
        self._under = np.vstack([h.under for h in horizons]).astype(float)
        self._static = np.array([h.static for h in horizons])
        self._vpa_reserved = np.array([h.vpa_reserved for h in horizons])
        self._vpa_under = np.array([h.vpa_under for h in horizons], float)
        self._cache: dict[float, Evidence] = {}

    def at(self, origin: float) -> Evidence:
        """:class:`Evidence` of every horizon that ended by ``origin`` (cached per origin)."""
        if origin not in self._cache:
            self._cache[origin] = self._evidence(origin)
        return self._cache[origin]

    def _evidence(self, origin: float) -> Evidence:
        seen = self._ends <= origin
        w = (np.ones(int(seen.sum())) if self._half_life_s is None
             else 0.5 ** ((origin - self._ends[seen]) / self._half_life_s))
        shape = (len(self.pods), self._reserved.shape[1])
        reserved, under, n = np.zeros(shape), np.zeros(shape), np.zeros(len(self.pods))
        np.add.at(reserved, self._owner[seen], self._reserved[seen] * w[:, None])
        np.add.at(under, self._owner[seen], self._under[seen] * w[:, None])
        np.add.at(n, self._owner[seen], self._intervals[seen] * w)
        return Evidence(
            float(self._intervals[seen].sum()), reserved, under, n,
            float((self._static[seen] * w).sum()), float((self._vpa_reserved[seen] * w).sum()),
            float((self._vpa_under[seen] * w).sum()),
        )


# ------------------------------------------------------------------ nested selection


@dataclass(frozen=True)
class SelectionRecord:
    """What one objective chose for one pod at one judged origin, and on what evidence.

    Attributes:
        resource, pod, origin, method: where (``method``: the objective's method name).
        candidate, candidate_index: the chosen grid point's label and index.
        how: ``selected`` or ``prior`` (too little validation in the whole fleet: the grid
            point nearest the a-priori defaults).
        validation_intervals: validation intervals seen by the origin (not decayed).
        validation_under_share, validation_saving: the validation shortfall share and
            saving of what the objective chose for the whole fleet, weighted as the evidence
            (NaN for ``prior``).
        pod_validation_under_share: this pod's own validation shortfall share at the chosen
            point (NaN without validation of its own).
        vpa_validation_under_share, vpa_validation_saving: VPA's on the same horizons.
    """

    resource: str
    pod: str
    origin: float
    method: str
    candidate: str
    candidate_index: int
    how: str
    validation_intervals: int
    validation_under_share: float
    validation_saving: float
    pod_validation_under_share: float
    vpa_validation_under_share: float
    vpa_validation_saving: float


class NestedOutcome(NamedTuple):
    """What :meth:`NestedSelection.judge` returns: the selected methods' totals per
    ``(pod, method)`` (in first-judged order) and one record per choice."""

    totals: dict[tuple[str, str], Totals]
    records: list[SelectionRecord]


@dataclass(frozen=True)
class NestedSelection:
    """Settings of the nested selection (see the module docstring).

    Attributes:
        grid: candidate operating points; empty = no selection.
        budgets: shortfall budget per resource, over
            :data:`~cohabit.predictors.rightsizing.SHORTFALL_BUDGET`.
        min_validation_intervals: below this many validation intervals (fleet-wide) the
            a-priori defaults' nearest grid point is used instead of a selected one.
        evidence_half_life_s: decay half-life of the evidence (s); ``None`` = no decay.
    """

    grid: Sequence[OperatingPoint] = DEFAULT_GRID
    budgets: Mapping[str, float] | None = None
    min_validation_intervals: int = 500
    evidence_half_life_s: float | None = DEFAULT_HALF_LIFE_S

    def budget(self, resource: str) -> float:
        """The shortfall budget of ``resource`` (share of intervals)."""
        return {**SHORTFALL_BUDGET, **(self.budgets or {})}[resource]

    def judge(
        self, resource: str, horizons: Sequence[HorizonTotals],
        objectives: Sequence[Objective] = OBJECTIVES,
    ) -> NestedOutcome:
        """Choose at every judged horizon for every objective, and total what was chosen.

        Args:
            resource: the resource sized.
            horizons: every horizon of every pod, from
                :meth:`~cohabit.predictors.judging.CandidateJudge.judge` with this ``grid``.
            objectives: the objectives to judge.
        """
        grid = list(self.grid)
        table = EvidenceTable(horizons, self.evidence_half_life_s)
        prior = _nearest(grid, JustEnoughEstimator(resource=resource).operating_point())
        budget = self.budget(resource)
        totals: dict[tuple[str, str], Totals] = {}
        records: list[SelectionRecord] = []
        for h in horizons:
            if h.validation:
                continue
            evidence = table.at(h.origin)
            for objective in objectives:
                index, how = self._pick(evidence, objective, budget, table.index[h.pod], prior)
                pick = _Pick(index, how, grid[index].label())
                totals.setdefault((h.pod, objective.method), Totals()).add(
                    h.outcome(index), h.static, h.intervals)
                records.append(_record(resource, h, objective, pick, evidence,
                                       table.index[h.pod], budget))
        return NestedOutcome(totals, records)

    def _pick(self, evidence: Evidence, objective: Objective, budget: float, workload: int,
              prior: int) -> tuple[int, str]:
        """``(candidate index, "selected" | "prior")`` for one workload."""
        if evidence.intervals <= 0 or evidence.intervals < self.min_validation_intervals:
            return prior, "prior"
        if not objective.per_workload or evidence.workload_intervals[workload] <= 0:
            return evidence.pooled_choice(objective.limit, budget), "selected"
        return int(evidence.per_workload_choice(objective.limit, budget)[workload]), "selected"


class _Pick(NamedTuple):
    """One choice: the candidate's index, ``selected`` or ``prior``, its label."""

    candidate: int
    how: str
    label: str


def _record(resource: str, h: HorizonTotals, objective: Objective, pick: _Pick,
            evidence: Evidence, workload: int, budget: float) -> SelectionRecord:
    """The :class:`SelectionRecord` of one choice for ``workload`` (its row in ``evidence``)."""
    nan = float("nan")
    fleet_under = fleet_saving = vpa_under = vpa_saving = own_under = nan
    if pick.how == "selected":
        # What the objective chose for the whole fleet (a pod without validation of its own
        # takes the pooled point, but the fleet's choice is still per workload).
        choice = (evidence.per_workload_choice(objective.limit, budget) if objective.per_workload
                  else np.full(len(evidence.workload_intervals), pick.candidate))
        fleet_under, fleet_saving = evidence.fleet_shares(choice)
        vpa_under = float(evidence.vpa_under / evidence.workload_intervals.sum())
        vpa_saving = float(1 - evidence.vpa_reserved / evidence.static)
        own_n = evidence.workload_intervals[workload]
        if own_n > 0:
            own_under = float(evidence.under[workload, pick.candidate] / own_n)
    return SelectionRecord(
        resource, h.pod, h.origin, objective.method, pick.label, pick.candidate, pick.how,
        int(evidence.intervals), fleet_under, fleet_saving, own_under, vpa_under, vpa_saving,
    )


def _nearest(grid: Sequence[OperatingPoint], p: OperatingPoint) -> int:
    """Index of the grid point closest to ``p`` (the a-priori default, used before any
    validation data exists)."""
    d = [abs(g.coverage - p.coverage) * 100 + abs(g.interval_confidence - p.interval_confidence)
         + abs(np.log(g.half_life_s / p.half_life_s)) + 10 * (g.growth != p.growth)
         + 10 * (g.fleet != p.fleet)
         for g in grid]
    return int(np.argmin(d))


def judge_candidates(
    frame: pd.DataFrame,
    resource: str,
    splitter: RollingOrigin,
    grid: Sequence[OperatingPoint],
    vpa: MethodFn | None = None,
    latency_column: str | None = None,
    executor: Executor | None = None,
) -> list[HorizonTotals]:
    """Every candidate of ``grid`` judged on every fold of every pod of ``frame``.

    Args:
        frame: ``pod``, ``time`` (s) and the ``resource`` column.
        resource: the resource sized.
        splitter: the rolling origin (its ``horizon_s`` is also the growth horizon).
        grid: candidate operating points; empty = nothing judged.
        vpa: VPA's method, judged beside them (:class:`CandidateJudge`), or ``None``.
        latency_column: latency column for the QoS counts, or ``None``.
        executor: where the pods are judged (:func:`~cohabit.predictors._common.fan_out`:
            ``None`` = here; a :class:`concurrent.futures.Executor`, e.g. a Dask cluster's,
            judges chunks of pods in parallel with identical results).

    Returns:
        :class:`~cohabit.predictors.judging.HorizonTotals` of every pod (sorted) and fold.

    Raises:
        KeyError: ``frame`` has no ``resource`` column.
    """
    series = list(pod_series(frame, resource, latency_column))
    if not grid:
        return []
    fleet = FleetHeadroom(frame, resource, splitter.horizon_s, grid)
    judge = CandidateJudge(resource, grid, splitter.horizon_s, fleet, vpa)
    return fan_out(executor, functools.partial(_judge_pods, judge, splitter), series)


def _judge_pods(judge: CandidateJudge, splitter: RollingOrigin,
                series: list[PodSeries]) -> list[HorizonTotals]:
    """Every fold of every pod of ``series``, judged (one task of :func:`judge_candidates`)."""
    return [h for s in series for h in judge.judge(s, splitter.folds(s.t))]


# -------------------------------------------------------------------- fleet selection


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
    executor: Executor | None = None,
) -> FleetSelection:
    """Choose :class:`JustEnoughEstimator` operating points for a fleet, as of its last samples.

    The same nested selection :func:`~cohabit.predictors.evaluation.evaluate_rightsizing`
    judges as ``just-enough``, applied at the end of the history: every workload's history is
    cut into the horizons before its last sample (:class:`RollingOrigin` with
    ``start_fraction=1``); each candidate of ``grid`` is judged on them (with the shortfall
    reaction); the evidence is decayed by age; and every workload gets its own point under
    one fleet-wide shortfall budget (:func:`select_per_workload`). Then fit
    ``point.estimator(resource, horizon_s, fleet_rises=...)`` on the workload's whole history
    to get its request, or pass the selection to :func:`cohabit.predictors.recommend`.

    Args:
        frame: ``pod`` (workload key), ``time`` (s) and one column per resource, as
            :func:`~cohabit.predictors.telemetry_data.load_genai` returns.
        resources: resource columns to size.
        horizon_s: the refit horizon (s, > 0): the horizons' length and the growth horizon.
        grid, budgets, min_validation_intervals, evidence_half_life_s: as
            :class:`NestedSelection`'s.
        min_fit_samples: horizons need this many earlier samples of their workload.
        executor: where the workloads' back-tests run (:func:`judge_candidates`; ``None`` =
            in this process).

    Returns:
        A :class:`FleetSelection`.

    Raises:
        KeyError: a resource column is missing.
        ValueError: ``horizon_s <= 0`` or ``min_fit_samples < 1``.
    """
    nested = NestedSelection(list(grid), budgets, min_validation_intervals, evidence_half_life_s)
    splitter = RollingOrigin(1.0, horizon_s, min_fit_samples)
    points: dict[str, dict[str, OperatingPoint]] = {}
    how: dict[str, dict[str, str]] = {}
    for resource in resources:
        horizons = judge_candidates(frame, resource, splitter, nested.grid, executor=executor)
        if not horizons:
            continue
        for r in nested.judge(resource, horizons, OBJECTIVES[:1]).records:
            points.setdefault(r.pod, {})[resource] = nested.grid[r.candidate_index]
            how.setdefault(r.pod, {})[resource] = r.how
    fleet_rises = {r: fleet_rise_table(frame, r, horizon_s)[1] for r in resources}
    return FleetSelection(points, how, fleet_rises, float(horizon_s))
