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

**Predicted NP.** With the linear pressure x sensitivity model (a :data:`Slowdown`
callable, e.g. :func:`~cohabit.placement.interference.pressure_sensitivity_slowdown`), a
workload's predicted normalised performance on a node is the product over the other
workloads there of ``1 - slowdown(it, other)`` (each clipped to [0, 1]): independent
neighbours compose multiplicatively, so several moderate neighbours do not saturate every
prediction at 0 the way a clipped sum does (measured profiles on a 2-core host do that).

**Policies** (both place workloads one at a time in the given order, onto nodes where their
requests fit):

* :func:`place_least_requested`: Kubernetes' LeastRequestedPriority (kube-scheduler
  ``least_requested.go``, now the ``LeastAllocated`` strategy of ``NodeResourcesFit``):
  score = mean over CPU and memory of ``(capacity - requested) * 10 / capacity`` after
  adding the pod; the highest score wins (first node on ties).
* :func:`place_fair`: the node minimising ``unfairness + 0.5 x mean slowdown`` of all
  placed workloads (the mean term separates "everyone equally slowed" from "nobody slowed",
  which unfairness alone cannot), ties to the LeastRequested score; then pairwise swaps
  between nodes while they lower the same objective and keep requests within capacity.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from cohabit.model import InterferenceProfile, Resources
from cohabit.placement.interference import Slowdown

__all__ = [
    "SLOWDOWN_WEIGHT",
    "least_requested_score",
    "place_fair",
    "place_least_requested",
    "predicted_np",
    "unfairness",
]

SLOWDOWN_WEIGHT = 0.5
"""Weight of the mean predicted slowdown beside the unfairness in :func:`place_fair`."""


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


def _feasible(pod: str, node: str, assignment: Mapping[str, str],
              requests: Mapping[str, Resources], nodes: Mapping[str, Resources]) -> bool:
    return (_requested(assignment, requests, node) + requests[pod]).fits_in(nodes[node])


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


def _objective(assignment: Mapping[str, str], profiles: Mapping[str, InterferenceProfile],
               slowdown: Slowdown) -> float:
    np_ = list(predicted_np(assignment, profiles, slowdown).values())
    if not np_:
        return 0.0
    if statistics.fmean(np_) == 0:  # everyone predicted stopped: the worst there is
        return 1.0 + SLOWDOWN_WEIGHT
    return unfairness(np_) + SLOWDOWN_WEIGHT * (1.0 - statistics.fmean(np_))


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
            if not _feasible(pod, node, assignment, requests, nodes):
                continue
            score = least_requested_score(_requested(assignment, requests, node)
                                          + requests[pod], cap)
            if score > best_score:
                best, best_score = node, score
        if best is None:
            raise ValueError(f"{pod} fits on no node")
        assignment[pod] = best
    return assignment


def place_fair(order: Sequence[str], requests: Mapping[str, Resources],
               nodes: Mapping[str, Resources], profiles: Mapping[str, InterferenceProfile],
               slowdown: Slowdown, *, max_rounds: int = 20) -> dict[str, str]:
    """Workload -> node minimising predicted unfairness (module docstring), in ``order``,
    then improved by feasible pairwise swaps.

    Raises:
        ValueError: a workload fits on no node.
    """
    assignment: dict[str, str] = {}
    for pod in order:
        choices = []
        for node, cap in nodes.items():
            if not _feasible(pod, node, assignment, requests, nodes):
                continue
            trial = {**assignment, pod: node}
            lr = least_requested_score(_requested(trial, requests, node), cap)
            choices.append((round(_objective(trial, profiles, slowdown), 9), -lr, node))
        if not choices:
            raise ValueError(f"{pod} fits on no node")
        assignment[pod] = min(choices)[2]
    return _improve_by_swaps(assignment, requests, nodes, profiles, slowdown, max_rounds)


def _improve_by_swaps(assignment: dict[str, str], requests: Mapping[str, Resources],
                      nodes: Mapping[str, Resources],
                      profiles: Mapping[str, InterferenceProfile], slowdown: Slowdown,
                      max_rounds: int) -> dict[str, str]:
    best = _objective(assignment, profiles, slowdown)
    pods = list(assignment)
    for _ in range(max_rounds):
        improved = False
        for i, a in enumerate(pods):
            for b in pods[i + 1:]:
                if assignment[a] == assignment[b]:
                    continue
                trial = {**assignment, a: assignment[b], b: assignment[a]}
                if not all(_requested(trial, requests, n).fits_in(cap)
                           for n, cap in nodes.items()):
                    continue
                value = _objective(trial, profiles, slowdown)
                if value < best - 1e-9:
                    assignment, best, improved = trial, value, True
        if not improved:
            break
    return assignment
