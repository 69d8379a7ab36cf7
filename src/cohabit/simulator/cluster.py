"""The simulator's in-memory cluster: it carries out ``Bind`` and ``Evict`` actions.

:class:`SimulatedCluster` implements the actuator interface (``apply(actions) ->
outcomes``) over a :class:`~cohabit.placement.ClusterState`. It never over-commits: a bind
that does not fit raises :class:`~cohabit.placement.OverCommitError` (a placement bug must
not pass silently).
"""

from __future__ import annotations

from collections.abc import Sequence

from cohabit.engine.rebind import Move
from cohabit.model import Action, Bind, Evict, Node, Outcome, Pod
from cohabit.placement import ClusterState, TypicalPods

__all__ = ["SimulatedCluster"]


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

    def apply_move(self, move: Move, pending: Pod) -> list[int]:
        """Carry out a rebinding move: evict its victims, bind the pending pod and re-bind
        the victims where the move says; returns the indices of the nodes it touched.

        Raises:
            OverCommitError: a bind does not fit (the move was not replayed on this state).
        """
        state = self.state
        pods = {pending.key: pending}
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
