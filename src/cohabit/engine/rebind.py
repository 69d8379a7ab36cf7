"""Simulate-then-rebind: a move is replayed on the placement state before it is kept.

The planner proposes *which* pods could make room for a pending pod
(:func:`cohabit.planner.rebinding.room_victims`); placement knows *where* things go. This
module wires the two, as only the engine may: for a pending pod that fits nowhere it

1. ranks the nodes where it could fit if some pods left (the smallest GPU and CPU deficit
   first, ``max_nodes`` of them), and asks the planner for victim sets on each;
2. replays each candidate on the :class:`~cohabit.placement.ClusterState`: evict the
   victims, bind the pending pod on the node, re-place every victim through the same
   placement policy; a candidate is kept only if everything was placed and ``pays`` agrees
   (by default: the pending pod's GPU milli is allocated on top of what was, i.e. the
   allocation grows); the replay is always undone;
3. returns the kept move as actions (``Evict`` per victim, then the ``Bind`` of the pending
   pod and each victim's new ``Bind``) for the actuator, which owns budgets, PDBs and
   dry-run. The simulator's actuator applies them; the operator's reports them.

The same function serves the simulator (``cohabit simulate --rebind``) and the operator's
rebinding pass (a check on the planner's evictions), so what is benchmarked is what runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cohabit.model import MILLI_PER_GPU, Action, Bind, Evict, GpuDevice, Node, Pod
from cohabit.placement import POLICIES, ClusterState, select_req
from cohabit.placement.state import PodReq, pod_request
from cohabit.planner.rebinding import room_victims

__all__ = ["Move", "PaysFn", "make_room"]

PaysFn = Callable[[ClusterState, "Move"], bool]
"""``pays(state after the move, move) -> keep it?``; called while the move is applied."""


@dataclass(frozen=True)
class Move:
    """A rebinding move that was replayed and pays.

    Attributes:
        pending: key of the pod the move places.
        node: where the pending pod goes.
        victims: keys of the pods moved away (evicted and re-placed).
        binds: the pending pod's ``Bind``, then each victim's new ``Bind``.
        gain_milli: GPU milli allocated in addition (the pending pod's request).
    """

    pending: str
    node: str
    victims: tuple[str, ...]
    binds: tuple[Bind, ...]
    gain_milli: int

    def actions(self) -> list[Action]:
        """``Evict`` of each victim, then the binds, in the order the actuator applies them."""
        evicts: list[Action] = [Evict(v, reason=f"rebind: makes room on {self.node} for "
                                               f"{self.pending}") for v in self.victims]
        return evicts + list(self.binds)


def _movable(pod: Pod | None) -> bool:
    return pod is not None and pod.evictable


def candidate_nodes(state: ClusterState, req: PodReq, max_nodes: int) -> np.ndarray:
    """Nodes where ``req`` could fit if pods left (GPU model, GPU count, CPU and memory
    capacity), the smallest GPU deficit then CPU deficit first, at most ``max_nodes``."""
    ok = (state.cpu_cap >= req.cpu) & (state.mem_cap >= req.mem)
    if req.num:
        ok &= state.spec_mask(req.spec) & (state.gpu_cnt >= req.num)
        gpu_def = (np.maximum(req.milli - state.max_free, 0) if req.is_share
                   else np.maximum(req.num - state.full_free, 0) * MILLI_PER_GPU)
    else:
        gpu_def = np.zeros(state.n_nodes, np.int64)
    cpu_def = np.maximum(req.cpu - state.cpu_free, 0)
    mem_def = np.maximum(req.mem - state.mem_free, 0)
    idx = np.flatnonzero(ok)
    order = np.lexsort((state.prio[idx], mem_def[idx], cpu_def[idx], gpu_def[idx]))
    return idx[order][:max_nodes]


def _node_view(state: ClusterState, i: int) -> Node:
    model = state.model_names[int(state.model_id[i])]
    gpus = tuple(GpuDevice(j, model, milli_free=int(state.gpu_free[i, j]))
                 for j in range(int(state.gpu_cnt[i])))
    return Node(state.names[i], int(state.cpu_cap[i]), int(state.mem_cap[i]),
                int(state.cpu_free[i]), int(state.mem_free[i]), gpus)


def _pods_by_node(state: ClusterState, nodes: np.ndarray) -> dict[int, list[Pod]]:
    want = set(nodes.tolist())
    out: dict[int, list[Pod]] = {i: [] for i in want}
    for b in state.bound.values():
        if b.node in want and b.pod is not None:
            out[b.node].append(_with_place(b.pod, state.names[b.node], b.gpus))
    return out


def _with_place(pod: Pod, node: str, gpus: tuple[int, ...]) -> Pod:
    if pod.node == node and pod.gpu_indices == gpus:
        return pod
    from dataclasses import replace

    return replace(pod, node=node, gpu_indices=gpus)


def make_room(
    state: ClusterState,
    pod: Pod,
    policy: str,
    *,
    rng: np.random.Generator | None = None,
    max_victims: int = 2,
    max_nodes: int = 8,
    max_tries: int = 12,
    movable: Callable[[Pod], bool] = _movable,
    pays: PaysFn | None = None,
) -> Move | None:
    """A move that places ``pod`` (which fits nowhere) by moving at most ``max_victims``
    pods, replayed on ``state`` and undone (see the module docstring).

    Args:
        state: the placement view; unchanged on return.
        pod: the pending pod.
        policy: the placement policy that places the pod and re-places the victims.
        rng: generator for the ``random`` policy.
        max_victims: pods moved per move (the per-pass eviction budget of one pending pod).
        max_nodes: candidate nodes examined.
        max_tries: moves replayed at most.
        movable: which bound pods may be moved (default: ``evictable``, i.e. no PDB or owner
            forbids it; workload budgets are the actuator's to enforce when it applies).
        pays: extra acceptance test (e.g. predicted QoS) on the state with the move applied.

    Returns:
        The first move that re-placed every victim and pays, or None.

    Raises:
        ValueError: unknown policy or a bad pod.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown placement policy {policy!r}")
    req = pod_request(pod)
    nodes = candidate_nodes(state, req, max_nodes)
    if nodes.size == 0:
        return None
    pods_at = _pods_by_node(state, nodes)
    tries = 0
    for i in nodes.tolist():
        view = _node_view(state, i)

        def replaceable(p: Pod) -> bool:
            # a victim that fits nowhere now (its own node's other GPUs included) cannot be
            # re-placed after the move
            return movable(p) and bool(state.feasible(pod_request(p)).size)

        for victims in room_victims(pod, view, pods_at[i], replaceable, max_victims):
            if tries >= max_tries:
                return None
            tries += 1
            move = _replay(state, pod, req, i, victims, policy, rng, pays)
            if move is not None:
                return move
    return None


def _replay(state: ClusterState, pod: Pod, req: PodReq, node: int, victims: Sequence[Pod],
            policy: str, rng: np.random.Generator | None, pays: PaysFn | None) -> Move | None:
    """Apply the move on ``state``, judge it, undo it; the move if it worked and pays."""
    plugin = POLICIES[policy]
    origin = {v.key: state.release(v.key) for v in victims}
    placed: list[tuple[Bind, Pod]] = []
    move = None
    try:
        gpus = (plugin.gpus(state, req, node, rng)
                if state.feasible(req, among=np.array([node])).size else None)
        if gpus is not None and len(gpus) == req.num:  # the policy may refuse the node
            bind = Bind(pod.key, state.names[node], gpus, reason=f"rebind {policy}")
            state.apply(bind, pod)
            placed.append((bind, pod))
            for v in victims:
                picked = select_req(state, pod_request(v), policy, rng)
                if picked is None:
                    break
                vb = Bind(v.key, state.names[picked[0]], picked[1], reason="rebind: moved")
                state.apply(vb, v)
                placed.append((vb, v))
            else:
                move = Move(pod.key, state.names[node], tuple(v.key for v in victims),
                            tuple(b for b, _ in placed), req.total_milli)
                if pays is not None and not pays(state, move):
                    move = None
    finally:
        for b, _ in reversed(placed):
            state.release(b.pod)
        for v in victims:
            state.apply(origin[v.key], v)
    return move
