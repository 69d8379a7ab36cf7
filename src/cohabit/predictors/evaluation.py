"""Rolling-origin evaluation of right-sizing on per-pod telemetry (GenAI schema).

:func:`evaluate_rightsizing` puts the pieces together, per resource:

1. split every pod's history by a rolling origin
   (:class:`~cohabit.predictors.rolling_origin.RollingOrigin`: fitting window, judged horizon,
   and inner validation horizons before the first judged origin);
2. judge the fixed methods (:data:`~cohabit.predictors.judging.RIGHTSIZING_METHODS`: the static
   request, p95 x 1.15, VPA, the estimator's a-priori defaults) on the judged horizons
   (:func:`~cohabit.predictors.judging.judge_methods`);
3. judge every candidate operating point of the estimator on every horizon
   (:class:`~cohabit.predictors.judging.CandidateJudge`, with the targets the estimator itself
   learns, :func:`~cohabit.predictors.rightsizing.usage_targets`);
4. select a point at every judged origin from the validation evidence seen by then, for each
   objective, and total what was selected
   (:class:`~cohabit.predictors.selection.NestedSelection`: methods ``just-enough``,
   ``just-enough-pooled`` and, when VPA is judged, ``just-enough@vpa-cost`` and
   ``just-enough@vpa-under``).

``just-enough-prior`` is the estimator with its a-priori defaults (no selection at all). The
metrics (``reserved``, ``static``, ``under``, ``qos_violations``, ``qos_intervals``) are
those of :mod:`cohabit.predictors.judging`; :func:`summarize_rightsizing` pools them.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._common import fan_out
from .judging import (
    RIGHTSIZING_METHODS,
    HorizonTotals,
    MethodFn,
    PodSeries,
    judge_methods,
    pod_series,
)
from .rightsizing import OperatingPoint
from .rolling_origin import RollingOrigin
from .selection import (
    OBJECTIVES,
    VPA_OBJECTIVES,
    NestedSelection,
    SelectionRecord,
    judge_candidates,
)

__all__ = [
    "RightsizingEvaluation",
    "evaluate_rightsizing",
    "per_pod_rightsizing",
    "summarize_rightsizing",
]


@dataclass(frozen=True)
class RightsizingEvaluation:
    """What :func:`evaluate_rightsizing` found.

    Attributes:
        results: one row per (resource, pod, method) with ``reserved``, ``static``,
            ``under``, ``intervals``, ``qos_violations``, ``qos_intervals``, ``horizons``
            (sums over the pod's judged horizons).
        selection: one row per (resource, pod, judged origin, objective):
            :class:`~cohabit.predictors.selection.SelectionRecord`'s fields.
        candidates: one row per (resource, candidate) with ``saving``, ``under_share``,
            ``under``, ``intervals`` over all judged horizons: the trade-off curve of every
            *fixed* candidate, for information only (choosing one from it would be tuning on
            the judged part).
    """

    results: pd.DataFrame
    selection: pd.DataFrame
    candidates: pd.DataFrame


@dataclass
class _Collected:
    """Rows of every resource, in order."""

    results: list[dict] = dataclasses.field(default_factory=list)
    selection: list[SelectionRecord] = dataclasses.field(default_factory=list)
    candidates: list[dict] = dataclasses.field(default_factory=list)


def evaluate_rightsizing(
    frame: pd.DataFrame,
    resources: Sequence[str] = ("gpu_milli", "gpu_memory_mib"),
    *,
    start_fraction: float = 0.5,
    horizon_s: float = 3600.0,
    min_fit_samples: int = 60,
    methods: Mapping[str, MethodFn] | None = None,
    latency_column: str = "latency_ms",
    nested: NestedSelection | None = None,
    executor: Executor | None = None,
) -> RightsizingEvaluation:
    """Judge right-sizing methods on every pod of ``frame`` by a rolling origin.

    Args:
        frame: a :func:`~cohabit.predictors.telemetry_data.load_genai` frame (``pod``, ``time``
            and one column per resource; ``latency_ms`` optional).
        resources: resource columns to size.
        start_fraction: first judged origin, as a fraction of each pod's time span, [0, 1].
        horizon_s: length of each judged horizon (s, > 0); origins step by it.
        min_fit_samples: origins (inner or judged) need this many fitting samples (>= 1);
            pods with fewer before the first judged origin are skipped.
        methods: name -> fixed method; default
            :data:`~cohabit.predictors.judging.RIGHTSIZING_METHODS`.
        latency_column: column holding latency (ms), used for the GPU-share QoS metric.
        nested: the nested selection's settings (default :class:`NestedSelection()`: the
            default grid and budgets, 500 validation intervals, evidence half-life 6 h); an
            empty ``grid`` = no ``just-enough`` rows.
        executor: where the per-pod back-tests (steps 2 and 3) run: ``None`` = in this
            process; a :class:`concurrent.futures.Executor` (e.g. a Dask cluster's) judges
            chunks of pods in parallel, with identical results.

    Returns:
        A :class:`RightsizingEvaluation`.

    Raises:
        KeyError: a resource column is missing.
        ValueError: ``start_fraction``, ``horizon_s`` or ``min_fit_samples`` out of range.
    """
    methods = RIGHTSIZING_METHODS if methods is None else methods
    nested = NestedSelection() if nested is None else nested
    splitter = RollingOrigin(start_fraction, horizon_s, min_fit_samples)
    out = _Collected()
    for resource in resources:
        _judge_fixed(out, frame, resource, splitter, methods, latency_column, executor)
        horizons = judge_candidates(frame, resource, splitter, nested.grid, methods.get("vpa"),
                                    latency_column, executor)
        if horizons:
            _judge_nested(out, resource, horizons, nested, with_vpa="vpa" in methods)
    return RightsizingEvaluation(pd.DataFrame(out.results), pd.DataFrame(out.selection),
                                 pd.DataFrame(out.candidates))


def _judge_fixed(out: _Collected, frame: pd.DataFrame, resource: str, splitter: RollingOrigin,
                 methods: Mapping[str, MethodFn], latency_column: str,
                 executor: Executor | None) -> None:
    """Step 2: the fixed methods' rows of every pod with folds."""
    series = list(pod_series(frame, resource, latency_column))
    judge = functools.partial(_fixed_rows, resource, splitter, dict(methods))
    out.results += fan_out(executor, judge, series)


def _fixed_rows(resource: str, splitter: RollingOrigin, methods: Mapping[str, MethodFn],
                series: list[PodSeries]) -> list[dict]:
    """The fixed methods' rows of the pods of ``series`` (one task of step 2)."""
    rows = []
    for s in series:
        folds = splitter.folds(s.t)
        if not folds:
            continue
        for name, totals in judge_methods(s, folds, methods, resource).items():
            rows.append({"resource": resource, "pod": s.pod, "method": name,
                         **dataclasses.asdict(totals)})
    return rows


def _judge_nested(out: _Collected, resource: str, horizons: list[HorizonTotals],
                  nested: NestedSelection, with_vpa: bool) -> None:
    """Step 4: the selected methods' rows, the selection records and the candidates' curve."""
    objectives = OBJECTIVES + (VPA_OBJECTIVES if with_vpa else ())
    judged = nested.judge(resource, horizons, objectives)
    out.results += [{"resource": resource, "pod": pod, "method": method,
                     **dataclasses.asdict(totals)}
                    for (pod, method), totals in judged.totals.items()]
    out.selection += judged.records
    out.candidates += _candidate_curve(resource, horizons, nested.grid)


def _candidate_curve(resource: str, horizons: list[HorizonTotals],
                     grid: Sequence[OperatingPoint]) -> list[dict]:
    """Every fixed candidate's totals over the judged horizons (information only)."""
    judged = [h for h in horizons if not h.validation]
    reserved = np.sum([h.reserved for h in judged], axis=0)
    under = np.sum([h.under for h in judged], axis=0)
    intervals = sum(h.intervals for h in judged)
    static = sum(h.static for h in judged)
    return [{"resource": resource, "candidate": g.label(),
             "saving": 1 - reserved[i] / static, "under_share": under[i] / intervals,
             "under": int(under[i]), "intervals": int(intervals)}
            for i, g in enumerate(grid)]


def per_pod_rightsizing(results: pd.DataFrame) -> pd.DataFrame:
    """Per pod: ``saving`` (1 - reserved/static) and ``under_share`` (static 0 -> NaN saving).

    Args:
        results: :attr:`RightsizingEvaluation.results`.
    """
    out = results.copy()
    static = out["static"].where(out["static"] > 0)
    out["saving"] = 1.0 - out["reserved"] / static
    out["under_share"] = out["under"] / out["intervals"].where(out["intervals"] > 0)
    return out


def summarize_rightsizing(results: pd.DataFrame) -> pd.DataFrame:
    """Per resource and method: fleet-wide saving and shortfall share, and per-pod quantiles.

    Args:
        results: :attr:`RightsizingEvaluation.results`.

    Returns:
        Columns ``saving`` (1 - total reserved / total static), ``under_share``
        (under-provisioned judged intervals / all judged intervals), ``qos_violation_share``
        (NaN without latency), ``pods``, and per-pod distribution columns
        ``saving_p10/p50/p90`` and ``under_share_p50/p90/max``.
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
