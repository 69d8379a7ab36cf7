"""The simulator's in-memory cluster: it carries out ``Bind`` and ``Evict`` actions.

:class:`SimulatedCluster` implements the actuator interface (``apply(actions) ->
outcomes``) over a :class:`~cohabit.placement.ClusterState`. It never over-commits: a bind
that does not fit raises :class:`~cohabit.placement.OverCommitError` (a placement bug must
not pass silently).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cohabit.config.placement import ScoreWeights
from cohabit.engine.rebind import Move
from cohabit.model import Action, Bind, Evict, Node, Outcome, Pod
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


class SimulatedCluster:
    """In-memory cluster state driven by actions.

    Args:
        nodes: the cluster, fully free.
        typical: typical-pod distribution for fragmentation metrics and ``fgd`` (optional).

    Attributes:
        state: the placement view; read it, change it only through :meth:`apply`.
    """

    def __init__(self, nodes: Sequence[Node], typical: TypicalPods | None = None) -> None:
        self.state = ClusterState.from_nodes(nodes, typical=typical)
        self.binds = 0
        self.evictions = 0

    def apply(self, actions: Sequence[Action]) -> list[Outcome]:
        """Carry out ``Bind`` and ``Evict`` actions, in order.

        Returns:
            One ``Outcome`` per action: ``"done"``, or ``"failed"`` for an ``Evict`` of a pod
            that is not bound and for a ``Resize`` (not simulated).

        Raises:
            OverCommitError: a bind would over-commit a node or GPU, or names an unknown
                node or pod.
        """
        out = []
        for action in actions:
            if isinstance(action, Bind):
                self.state.apply(action)
                self.binds += 1
                out.append(Outcome(action, "done"))
            elif isinstance(action, Evict):
                try:
                    self.state.release(action.pod)
                except KeyError as exc:
                    out.append(Outcome(action, "failed", str(exc)))
                    continue
                self.evictions += 1
                out.append(Outcome(action, "done"))
            else:
                out.append(Outcome(action, "failed", "resize is not simulated"))
        return out

    def bind_pod(self, bind: Bind, pod: Pod) -> None:
        """Apply ``bind`` for ``pod`` (when the bind did not come from ``select``)."""
        self.state.apply(bind, pod)
        self.binds += 1

    def apply_move(self, move: Move, pending: Pod | None) -> list[int]:
        """Carry out a rebinding move: evict its victims, bind the pending pod (None for a
        defragmentation move) and re-bind the victims where the move says; returns the
        indices of the nodes it touched.

        Raises:
            OverCommitError: a bind does not fit (the move was not replayed on this state).
        """
        state = self.state
        pods = {} if pending is None else {pending.key: pending}
        touched = []
        for key in move.victims:
            b = state.bound[key]
            pods[key] = b.pod
            touched.append(b.node)
            state.release(key)
            self.evictions += 1
        for bind in move.binds:
            state.apply(bind, pods[bind.pod])
            self.binds += 1
            touched.append(state.index[bind.node])
        return touched

    def depart(self, pod: Pod | str) -> None:
        """A bound pod finishes: free its resources.

        Raises:
            KeyError: the pod is not bound.
        """
        self.state.release(pod)
