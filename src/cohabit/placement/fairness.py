"""Fair placement of databases (URSA's scheduling engine) and Kubernetes' LeastRequestedPriority
as its baseline.

**Unfairness.** URSA (Zheng, Chen et al., "URSA: Precise Capacity Planning and
Contention-aware Scheduling for Public Clouds", ICPP 2020, arXiv 1912.11963) schedules
database workloads so that the *performance unfairness* between co-located workloads is
small, unfairness being the spread of the workloads' normalised performance (performance
when co-located over performance alone); it reports -42.8 % unfairness against Kubernetes'
LeastRequestedPriority. We measure that spread as the coefficient of variation (population
standard deviation over mean) of the normalised performance ``NP_i`` of every placed
workload, :func:`unfairness`; a workload alone on its node has ``NP = 1``.

**Predicted NP.** With a pair model (a :data:`Slowdown` callable, e.g.
:func:`~cohabit.placement.interference.pressure_sensitivity_slowdown`), a workload's
predicted normalised performance on a node is the product over the other workloads there
of ``1 - slowdown(it, other)`` (each clipped to [0, 1]): independent neighbours compose
multiplicatively, so several moderate neighbours do not saturate every prediction at 0 the
way a clipped sum does. The placement objective is ``unfairness + 0.5 x mean slowdown``
(:data:`SLOWDOWN_WEIGHT`; the mean term separates "everyone equally slowed" from "nobody
slowed", which unfairness alone cannot).

**Policies** (both place workloads in the given order onto nodes where their requests fit):

* :func:`place_least_requested`: Kubernetes' LeastRequestedPriority (kube-scheduler
  ``least_requested.go``, now the ``LeastAllocated`` strategy of ``NodeResourcesFit``):
  score = mean over CPU and memory of ``(capacity - requested) * 10 / capacity`` after
  adding the pod; the highest score wins (first node on ties).
* :func:`place_fair`: **LeastRequested's placement, changed only where the pair model's
  measured error says the change helps.** The pair predictions are only as good as their
  validation: ``residuals`` are (measured - predicted) slowdowns of pairs that were really
  co-run. Each of ``draws`` scenarios perturbs every predicted pair slowdown by a residual
  resampled from them (a bootstrap of the model's error, bias included; pairs' errors are
  taken as independent). From the LeastRequested placement, a local search tries every
  feasible single move and pairwise swap and takes the one with the largest mean
  improvement of the objective among those that improve it in at least ``confidence`` of
  the scenarios (default 0.9, the profile's confidence); it stops when none does. With no
  residuals (an unvalidated model) nothing moves: the result is LeastRequested's placement
  (low confidence, no action); with residuals all 0 (a model trusted as exact) it is a
  plain descent on the predicted objective.
* :func:`place_fair_nodes`: the same rule with a **node-level** model instead of a pair
  model: ``node_slowdown(workload, co_runners)`` predicts a workload's slowdown from the
  whole set of its co-runners on the node (e.g. its measured sensitivity curve at their
  summed CPU demand, :func:`cohabit.predictors.dbinterference.node_slowdown`), and
  ``residuals`` are (measured - predicted) slowdowns of real node co-runs. In each
  scenario a workload's slowdown with a given set of co-runners is the prediction plus a
  residual resampled for that (workload, set) (errors of different sets independent, as
  pairs' errors are above), clipped to [0, 1]; ``NP = 1 - slowdown``; a workload alone
  has ``NP = 1``.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cohabit.model import InterferenceProfile, Resources
from cohabit.placement.interference import Slowdown

__all__ = [
    "CONFIDENCE",
    "DRAWS",
    "SLOWDOWN_WEIGHT",
    "FairPlacement",
    "NodeSlowdown",
    "least_requested_score",
    "place_fair",
    "place_fair_nodes",
    "place_least_requested",
    "predicted_np",
    "predicted_np_nodes",
    "unfairness",
]

SLOWDOWN_WEIGHT = 0.5
"""Weight of the mean predicted slowdown beside the unfairness in :func:`place_fair`."""

CONFIDENCE = 0.9
"""Share of error scenarios in which a move must lower the objective to be taken."""

DRAWS = 200
"""Error scenarios (bootstrap resamples of the residuals) per decision."""

NodeSlowdown = Callable[[str, frozenset[str]], float]
"""A node-level model: ``(workload, its co-runners on the node) -> predicted slowdown`` in
``[0, 1]`` (0 for no co-runner)."""


@dataclass(frozen=True)
class FairPlacement:
    """What :func:`place_fair` decided.

    Attributes:
        assignment: workload -> node.
        baseline: LeastRequested's assignment it started from.
        moves: the moves taken, in order, e.g. ``"swap a<->b (p=0.95, gain 0.031)"``.
        reason: one line: why it equals the baseline or how it differs.
    """

    assignment: dict[str, str]
    baseline: dict[str, str]
    moves: tuple[str, ...]
    reason: str


def unfairness(normalised: Sequence[float]) -> float:
    """Coefficient of variation (population) of normalised performance values; 0 for fewer
    than two values.

    Raises:
        ValueError: a value outside ``[0, 1]`` or a mean of 0.
    """
    values = [float(v) for v in normalised]
    if any(not 0.0 <= v <= 1.0 for v in values):
        raise ValueError(f"normalised performance must be in [0, 1], got {values}")
    if len(values) < 2:
        return 0.0
    mean = statistics.fmean(values)
    if mean == 0:
        raise ValueError("mean normalised performance is 0")
    return statistics.pstdev(values) / mean


def least_requested_score(requested: Resources, capacity: Resources) -> float:
    """LeastRequestedPriority's node score (0..10) for CPU and memory already requested
    (including the pod being placed)."""
    def one(req: int, cap: int) -> float:
        return 0.0 if cap <= 0 or req > cap else (cap - req) * 10.0 / cap

    return (one(requested.cpu_milli, capacity.cpu_milli)
            + one(requested.memory_mib, capacity.memory_mib)) / 2.0


def _requested(assignment: Mapping[str, str], requests: Mapping[str, Resources],
               node: str) -> Resources:
    total = Resources()
    for pod, n in assignment.items():
        if n == node:
            total = total + requests[pod]
    return total


def _fits(assignment: Mapping[str, str], requests: Mapping[str, Resources],
          nodes: Mapping[str, Resources]) -> bool:
    return all(_requested(assignment, requests, n).fits_in(cap) for n, cap in nodes.items())


def predicted_np(assignment: Mapping[str, str], profiles: Mapping[str, InterferenceProfile],
                 slowdown: Slowdown) -> dict[str, float]:
    """Predicted normalised performance of every placed workload (see the module docstring);
    a workload without a profile neither suffers nor inflicts."""
    empty = InterferenceProfile()
    out = {}
    for pod, node in assignment.items():
        me = profiles.get(pod, empty)
        np_ = 1.0
        for other, n in assignment.items():
            if n == node and other != pod:
                np_ *= 1.0 - min(1.0, max(0.0, slowdown(me, profiles.get(other, empty))))
        out[pod] = np_
    return out


def place_least_requested(order: Sequence[str], requests: Mapping[str, Resources],
                          nodes: Mapping[str, Resources]) -> dict[str, str]:
    """Workload -> node by LeastRequestedPriority, in ``order``.

    Raises:
        ValueError: a workload fits on no node.
    """
    assignment: dict[str, str] = {}
    for pod in order:
        best, best_score = None, -1.0
        for node, cap in nodes.items():
            trial = {**assignment, pod: node}
            if not _requested(trial, requests, node).fits_in(cap):
                continue
            score = least_requested_score(_requested(trial, requests, node), cap)
            if score > best_score:
                best, best_score = node, score
        if best is None:
            raise ValueError(f"{pod} fits on no node")
        assignment[pod] = best
    return assignment


def _scenarios(pods: Sequence[str], profiles: Mapping[str, InterferenceProfile],
               slowdown: Slowdown, residuals: Sequence[float], draws: int,
               seed: int) -> np.ndarray:
    """Pair slowdowns ``S[d, victim, aggressor]`` of ``draws`` scenarios: the prediction
    plus a resampled residual, clipped to [0, 1] (diagonal 0)."""
    empty = InterferenceProfile()
    n = len(pods)
    pred = np.array([[0.0 if i == j else slowdown(profiles.get(v, empty),
                                                  profiles.get(a, empty))
                      for j, a in enumerate(pods)] for i, v in enumerate(pods)])
    rng = np.random.default_rng(seed)
    noise = rng.choice(np.asarray(residuals, dtype=float), size=(draws, n, n))
    out = np.clip(pred[None, :, :] + noise, 0.0, 1.0)
    out[:, np.arange(n), np.arange(n)] = 0.0
    return out


def _objectives(nodes_of: np.ndarray, scen: np.ndarray) -> np.ndarray:
    """The objective (module docstring) of one assignment (node index per pod) in every
    scenario; shape ``(draws,)``."""
    same = (nodes_of[:, None] == nodes_of[None, :]) & ~np.eye(len(nodes_of), dtype=bool)
    return _objective_of_np(np.where(same[None], 1.0 - scen, 1.0).prod(axis=2))


def _objective_of_np(np_: np.ndarray) -> np.ndarray:
    """``unfairness + SLOWDOWN_WEIGHT x mean slowdown`` of NP values ``(draws, pods)``;
    shape ``(draws,)`` (a scenario with mean NP 0 counts as unfairness 1)."""
    mean = np_.mean(axis=1)
    safe = np.where(mean > 0, mean, 1.0)
    cov = np.where(mean > 0, np_.std(axis=1) / safe, 1.0)
    return cov + SLOWDOWN_WEIGHT * (1.0 - mean)


def _candidates(assignment: Mapping[str, str], nodes: Mapping[str, Resources]
                ) -> list[tuple[str, dict[str, str]]]:
    pods = list(assignment)
    out = []
    for pod in pods:
        for node in nodes:
            if node != assignment[pod]:
                out.append((f"move {pod}->{node}", {**assignment, pod: node}))
    for i, a in enumerate(pods):
        for b in pods[i + 1:]:
            if assignment[a] != assignment[b]:
                out.append((f"swap {a}<->{b}",
                            {**assignment, a: assignment[b], b: assignment[a]}))
    return out


def _start(order: Sequence[str], requests: Mapping[str, Resources],
           nodes: Mapping[str, Resources], residuals: Sequence[float] | None,
           confidence: float) -> tuple[dict[str, str], np.ndarray | None]:
    """The evidence rule's common start: LeastRequested's placement and the residuals as
    an array (None when there are none: the model is unvalidated).

    Raises:
        ValueError: ``confidence`` outside [0.5, 1]; a residual that is not finite; a
            workload that fits on no node.
    """
    if not 0.5 <= confidence <= 1.0:
        raise ValueError(f"confidence must be in [0.5, 1], got {confidence}")
    baseline = place_least_requested(order, requests, nodes)
    if not residuals:
        return baseline, None
    errors = np.asarray(residuals, dtype=float)
    if not np.isfinite(errors).all():
        raise ValueError("residuals must be finite")
    return baseline, errors


def _unvalidated(baseline: dict[str, str], model: str) -> FairPlacement:
    """LeastRequested's placement, unchanged, for a model without measured errors."""
    return FairPlacement(dict(baseline), baseline, (), f"{model} not validated "
                         "(no residuals): LeastRequested's placement, no move")


def place_fair(order: Sequence[str], requests: Mapping[str, Resources],
               nodes: Mapping[str, Resources], profiles: Mapping[str, InterferenceProfile],
               slowdown: Slowdown, *, residuals: Sequence[float] | None,
               confidence: float = CONFIDENCE, draws: int = DRAWS, seed: int = 0,
               max_moves: int = 50) -> FairPlacement:
    """LeastRequested's placement improved where the validated pair model says so, with
    confidence (module docstring).

    Args:
        residuals: measured minus predicted slowdown of validated pairs (any number >= 1);
            None or empty: the model is unvalidated and the baseline is returned.
        confidence: share of scenarios in which a move must lower the objective (0.5-1).
        draws: scenarios; seed: their random seed (the result is deterministic).

    Returns:
        :class:`FairPlacement`.

    Raises:
        ValueError: a workload fits on no node; ``confidence`` outside [0.5, 1]; a residual
            that is not finite.
    """
    baseline, errors = _start(order, requests, nodes, residuals, confidence)
    if errors is None:
        return _unvalidated(baseline, "pair model")
    pods = list(baseline)
    node_names = list(nodes)
    scen = _scenarios(pods, profiles, slowdown, errors.tolist(), draws, seed)

    def score(assignment: Mapping[str, str]) -> np.ndarray:
        return _objectives(np.array([node_names.index(assignment[p]) for p in pods]), scen)

    return _descend(baseline, requests, nodes, score, confidence=confidence, draws=draws,
                    max_moves=max_moves)


def _descend(baseline: dict[str, str], requests: Mapping[str, Resources],
             nodes: Mapping[str, Resources], score: Callable[[Mapping[str, str]], np.ndarray],
             *, confidence: float, draws: int, max_moves: int) -> FairPlacement:
    """The evidence-gated local search from ``baseline``: take the feasible single move or
    swap with the largest mean gain of ``score`` (per-scenario objectives) among those
    better in >= ``confidence`` of the scenarios, until none is."""
    current, current_j, moves = dict(baseline), score(baseline), []
    for _ in range(max_moves):
        best = None
        for label, trial in _candidates(current, nodes):
            if not _fits(trial, requests, nodes):
                continue
            j = score(trial)
            win, gain = float((j < current_j - 1e-12).mean()), float((current_j - j).mean())
            if win >= confidence and gain > 0 and (best is None or gain > best[0]):
                best = (gain, win, label, trial, j)
        if best is None:
            break
        gain, win, label, current, current_j = best
        moves.append(f"{label} (p={win:.2f}, gain {gain:.3f})")
    reason = (f"{len(moves)} move(s) from LeastRequested, each better in >= {confidence:g} "
              f"of {draws} error scenarios" if moves else
              f"no move better than LeastRequested's placement in >= {confidence:g} of "
              f"{draws} error scenarios")
    return FairPlacement(current, baseline, tuple(moves), reason)


def predicted_np_nodes(assignment: Mapping[str, str], node_slowdown: NodeSlowdown
                       ) -> dict[str, float]:
    """Predicted normalised performance ``1 - node_slowdown(w, co-runners)`` (clipped to
    [0, 1]) of every placed workload under a node-level model; 1 alone on a node."""
    out = {}
    for pod, node in assignment.items():
        co = frozenset(o for o, n in assignment.items() if n == node and o != pod)
        out[pod] = 1.0 - min(1.0, max(0.0, node_slowdown(pod, co))) if co else 1.0
    return out


def place_fair_nodes(order: Sequence[str], requests: Mapping[str, Resources],
                     nodes: Mapping[str, Resources], node_slowdown: NodeSlowdown, *,
                     residuals: Sequence[float] | None, confidence: float = CONFIDENCE,
                     draws: int = DRAWS, seed: int = 0, max_moves: int = 50
                     ) -> FairPlacement:
    """LeastRequested's placement improved where a validated *node-level* model says so,
    with confidence (module docstring; the evidence rule of :func:`place_fair`).

    Args:
        node_slowdown: :data:`NodeSlowdown`, e.g. a database's sensitivity curve at its
            co-runners' summed CPU demand.
        residuals: measured minus predicted slowdown of real node co-runs (any number >= 1);
            None or empty: unvalidated, the baseline is returned.
        confidence, draws, seed, max_moves: as :func:`place_fair` (deterministic per seed).

    Returns:
        :class:`FairPlacement`.

    Raises:
        ValueError: a workload fits on no node; ``confidence`` outside [0.5, 1]; a residual
            that is not finite.
    """
    baseline, errors = _start(order, requests, nodes, residuals, confidence)
    if errors is None:
        return _unvalidated(baseline, "node model")
    pods = list(baseline)
    cache: dict[tuple[int, int], np.ndarray] = {}

    def slowdowns(i: int, co: frozenset[str]) -> np.ndarray:
        """Scenario slowdowns (draws,) of pod ``i`` beside ``co``: one independent
        resample of the residuals per (pod, co-runner set), seeded by both."""
        mask = sum(1 << pods.index(o) for o in co)
        if (i, mask) not in cache:
            rng = np.random.default_rng([seed, i, mask])
            cache[(i, mask)] = np.clip(node_slowdown(pods[i], co)
                                       + rng.choice(errors, size=draws), 0.0, 1.0)
        return cache[(i, mask)]

    def score(assignment: Mapping[str, str]) -> np.ndarray:
        np_ = np.ones((draws, len(pods)))
        for i, pod in enumerate(pods):
            co = frozenset(o for o in pods if o != pod and assignment[o] == assignment[pod])
            if co:
                np_[:, i] = 1.0 - slowdowns(i, co)
        return _objective_of_np(np_)

    return _descend(baseline, requests, nodes, score, confidence=confidence, draws=draws,
                    max_moves=max_moves)
