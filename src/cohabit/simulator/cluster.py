"""The simulator's in-memory cluster: it carries out ``Bind`` and ``Evict`` actions.

:class:`SimulatedCluster` is the in-memory actuator (:class:`cohabit.actuator.MemoryActuator`,
``apply(actions) -> outcomes``) over a :class:`~cohabit.placement.ClusterState`; rebinding
moves go through the engine step the operator uses
(:func:`cohabit.engine.execute.execute_plan`). It never over-commits: a bind that does not
fit raises :class:`~cohabit.placement.OverCommitError` (a placement bug must not pass
silently).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cohabit.actuator import MemoryActuator
from cohabit.config.placement import ScoreWeights
from cohabit.engine.execute import OutcomeTally, execute_plan
from cohabit.engine.rebind import Move
from cohabit.model import Bind, Node, Pod
from cohabit.placement import POLICIES, ClusterState, TypicalPods, typical_pods

__all__ = ["SimulatedCluster", "check_run", "scoring_cluster", "seed_tiebreak"]


def check_run(policy: str, pods: Sequence[Pod], runner: str) -> None:
    """The argument check every simulator run starts with.

    Raises:
        ValueError: ``policy`` is not a key of :data:`cohabit.placement.POLICIES`, or
            ``pods`` is empty (the message names ``runner``).
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown placement policy {policy!r}; known: {', '.join(POLICIES)}")
    if not pods:
        raise ValueError(f"{runner} needs a non-empty pod list")


def seed_tiebreak(state: ClusterState, rng: np.random.Generator) -> None:
    """The random node-name prefix of the FGD paper's simulator: nodes sorted by name get a
    seeded permutation as their tie-break rank (``syncClusterResourceList``; consumes one
    ``rng.permutation``)."""
    by_name = sorted(range(state.n_nodes), key=lambda i: state.names[i])
    prio = np.empty(state.n_nodes, np.int64)
    prio[by_name] = rng.permutation(state.n_nodes)
    state.set_priority(prio)


def scoring_cluster(
    nodes: Sequence[Node],
    pods: Sequence[Pod],
    typical: TypicalPods | None = None,
    weights: ScoreWeights | None = None,
) -> SimulatedCluster:
    """A free :class:`SimulatedCluster` set up for every score plugin: ``typical`` (default
    :func:`~cohabit.placement.typical_pods` of ``pods``) for fragmentation, every pod shape
    of ``pods`` (``coverage_pct=100``) for the look-ahead part, ``weights`` for ``cohabit``
    (None: the defaults). The tie-break order is left to the caller (:func:`seed_tiebreak`).
    """
    if typical is None:
        typical = typical_pods(pods)
    cluster = SimulatedCluster(nodes, typical=typical)
    cluster.state.set_typical(typical, typical_pods(pods, coverage_pct=100))
    cluster.state.set_weights(weights)
    return cluster


class SimulatedCluster(MemoryActuator):
    """In-memory cluster state driven by actions: the in-memory actuator
    (:class:`~cohabit.actuator.MemoryActuator`, strict and without eviction limits) over a
    :class:`~cohabit.placement.ClusterState` it builds.

    Args:
        nodes: the cluster, fully free.
        typical: typical-pod distribution for fragmentation metrics and ``fgd`` (optional).

    Attributes:
        state: the placement view; read it, change it only through :meth:`apply` (or the
            engine step, :func:`cohabit.engine.execute.execute_plan`).
        outcomes: what the rebinding moves carried out did, by ``(action, status)``.
    """

    def __init__(self, nodes: Sequence[Node], typical: TypicalPods | None = None) -> None:
        self.state: ClusterState = ClusterState.from_nodes(nodes, typical=typical)
        super().__init__(self.state)
        self.outcomes = OutcomeTally()

    def bind_pod(self, bind: Bind, pod: Pod) -> None:
        """Apply ``bind`` for ``pod`` (when the bind did not come from ``select``)."""
        self.submit(pod)
        self.apply([bind])

    def apply_move(self, move: Move, pending: Pod | None) -> list[int]:
        """Carry out a rebinding move through the engine step (evict its victims, bind the
        pending pod (None for a defragmentation move) and re-bind the victims where the move
        says); returns the indices of the nodes it touched.

        Raises:
            OverCommitError: a bind does not fit (the move was not replayed on this state).
            KeyError: a victim is not bound here.
        """
        state = self.state
        touched = [state.bound[key].node for key in move.victims]
        if pending is not None:
            self.submit(pending)
        execute_plan(move.actions(), self, dependent=True, recorders=(self.outcomes,))
        touched.extend(state.index[bind.node] for bind in move.binds)
        return touched

    def depart(self, pod: Pod | str) -> None:
        """A bound pod finishes: free its resources.

        Raises:
            KeyError: the pod is not bound.
        """
        self.state.release(pod)
