"""Simulate-then-rebind: a move is replayed on the placement state before it is kept.

The planner proposes *which* pods could make room for a pending pod
(:func:`cohabit.planner.rebinding.room_victims`); placement knows *where* things go. This
module wires the two, as only the engine may: for a pending pod that fits nowhere it

1. ranks the nodes where it could fit if some pods left (the smallest GPU and CPU deficit
   first, ``max_nodes`` of them), and asks the planner for victim sets on each;
2. replays each candidate on the :class:`~cohabit.placement.ClusterState`: evict the
   victims, bind the pending pod on the node, re-place every victim through the same
   placement policy -- a victim that fits nowhere gets a move of its own, one level down
   (a chain, ``depth`` levels, :data:`CHAIN_DEPTH` by default); a candidate is kept only if
   everything was placed and ``pays`` agrees (by default: the pending pod's GPU milli is
   allocated on top of what was, i.e. the allocation grows); the replay is always undone;
3. returns the kept move as actions (``Evict`` per victim, then the ``Bind`` of the pending
   pod and each victim's new ``Bind``) for the actuator, which owns budgets, PDBs and
   dry-run. The simulator's actuator applies them; the operator's reports them.

The same function serves the simulator (``cohabit simulate --rebind``) and the operator's
rebinding pass (a check on the planner's evictions), so what is benchmarked is what runs.

:func:`defragment` moves pods before anything fails: the pods of the least used shared
GPUs are placed again when FGD's fragment milli falls enough (the descheduler's idea with
FGD's measure). ``--mode fgd --rebind`` runs it once per 1 % of capacity arrived; the
operator's rebinding pass runs it once per pass (:func:`rebinding_evictions`, the same
function, its moves reported or applied as evictions like ``make_room``'s).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cohabit.model import MILLI_PER_GPU, Action, Bind, Evict, GpuDevice, Node, Pod
from cohabit.placement import POLICIES, ClusterState, select_req
from cohabit.placement.parts import frag_model
from cohabit.placement.state import PodReq, pod_request
from cohabit.planner.rebinding import room_victims

__all__ = ["OPERATOR_DEFRAG_MOVES", "Move", "PaysFn", "defragment", "make_room",
           "rebinding_evictions"]

PaysFn = Callable[[ClusterState, "Move"], bool]
"""``pays(state after the move, move) -> keep it?``; called while the move is applied."""


@dataclass(frozen=True)
class Move:
    """A rebinding move that was replayed and pays.

    Attributes:
        pending: key of the pod the move places ("" for a defragmentation move, which
            places no new pod).
        node: where the pending pod goes (defragmentation: the node the pods leave).
        victims: keys of the pods moved away (evicted and re-placed).
        binds: the pending pod's ``Bind``, then each victim's new ``Bind``.
        gain_milli: GPU milli allocated in addition (the pending pod's request; 0 for
            defragmentation).
        frag_gain_milli: fragment milli removed (FGD's measure under the typical pods;
            defragmentation moves only, else 0).
    """

    pending: str
    node: str
    victims: tuple[str, ...]
    binds: tuple[Bind, ...]
    gain_milli: int
    frag_gain_milli: float = 0.0

    def actions(self) -> list[Action]:
        """``Evict`` of each victim, then the binds, in the order the actuator applies them."""
        why = (f"rebind: makes room on {self.node} for {self.pending}" if self.pending
               else f"defragment: frees GPU milli on {self.node}")
        evicts: list[Action] = [Evict(v, reason=why) for v in self.victims]
        return evicts + list(self.binds)


CHAIN_DEPTH = 2
"""Levels of a rebinding chain by default: a victim that fits nowhere may get a move of its
own (one level more). Seed 42 of the default list at 130 % arrived: 95.80 % GPU allocation
with one level, 95.87 % with two (docs/benchmarks.md, issue 12)."""


ROOM_NODES = 16
"""Candidate nodes :func:`make_room` examines per level by default. Seeds 42 and 45 of the
default list at 130 % arrived: 95.93 / 95.90 % GPU allocation with 8 nodes and 12 victim
sets, 96.08 / 96.05 % with 16 and 24 (docs/benchmarks.md, issue 12, fourth session),
for about 1.7-2x the CPU time of a ``--rebind`` run; all ten seeds 42..51 at or
above 96.0 %, mean 96.05 %."""

ROOM_TRIES = 24
"""Victim sets :func:`make_room` replays at most for the pending pod itself by default
(1.5 per candidate node, as 12 for 8 before; see :data:`ROOM_NODES`)."""


def _movable(pod: Pod | None) -> bool:
    return pod is not None and pod.evictable


def candidate_nodes(state: ClusterState, req: PodReq, max_nodes: int,
                    mix: bool = False, rank: str = "empty") -> np.ndarray:
    """Nodes where ``req`` could fit if pods left (GPU model, GPU count, CPU and memory
    capacity), the smallest GPU deficit then CPU deficit first, at most ``max_nodes``.

    With ``mix`` the list alternates with the nodes of the smallest CPU deficit then GPU
    deficit (each node once), so that nodes with CPU to spare but no free GPU are
    examined too: at saturation the nodes with free GPUs are the ones whose CPU is used up.

    ``rank`` (:data:`RANKS`): ``"empty"`` (default) counts a whole-GPU request's deficit in
    missing empty GPUs (every node without one ties; the seeded node order chooses);
    ``"milli"`` puts the nodes where the CPU and memory already fit first, then ranks by
    :func:`gpu_deficit` (the milli to move). Seeds 42..51 with ``"milli"``: better on the
    three seeds below 96 %, worse on others (docs/benchmarks.md, issue 12), so not the
    default.

    Raises:
        ValueError: unknown ``rank``.
    """
    if rank not in RANKS:
        raise ValueError(f"candidate_nodes: rank must be one of {RANKS}, got {rank!r}")
    ok = (state.cpu_cap >= req.cpu) & (state.mem_cap >= req.mem)
    if req.num:
        ok &= state.spec_mask(req.spec) & (state.gpu_cnt >= req.num)
        gpu_def = (gpu_deficit(state, req) if rank == "milli" or req.is_share
                   else np.maximum(req.num - state.full_free, 0) * MILLI_PER_GPU)
    else:
        gpu_def = np.zeros(state.n_nodes, np.int64)
    cpu_def = np.maximum(req.cpu - state.cpu_free, 0)
    mem_def = np.maximum(req.mem - state.mem_free, 0)
    idx = np.flatnonzero(ok)
    keys = [state.prio[idx], mem_def[idx], cpu_def[idx], gpu_def[idx]]
    if rank == "milli":
        keys.append(((cpu_def > 0) | (mem_def > 0))[idx])
    by_gpu = idx[np.lexsort(tuple(keys))]
    if not mix:
        return by_gpu[:max_nodes]
    by_cpu = idx[np.lexsort((state.prio[idx], mem_def[idx], gpu_def[idx], cpu_def[idx]))]
    both = np.empty(2 * idx.size, np.int64)
    both[0::2], both[1::2] = by_gpu, by_cpu
    _, first = np.unique(both, return_index=True)
    return both[np.sort(first)][:max_nodes]


RANKS = ("empty", "milli")
"""Orders of :func:`candidate_nodes` (its ``rank``)."""


def gpu_deficit(state: ClusterState, req: PodReq) -> np.ndarray:
    """GPU milli that must leave each node before ``req`` fits there by GPU, ``int64[N]``.

    A sharing request needs one GPU with ``req.milli`` free: ``req.milli - max_free``. A
    whole-GPU request needs ``req.num`` empty GPUs: the milli in use on the ``req.num`` GPUs
    that hold the least, so a node whose GPU holds a 100-milli sliver ranks before one whose
    GPUs are full (counting only empty GPUs would tie every full node at ``1000 * num``).
    Nodes with fewer than ``req.num`` GPUs get at least ``1000 * req.num`` (their padded
    slots hold no free milli); the caller filters them out by GPU count.
    """
    if req.is_share:
        return np.maximum(req.milli - state.max_free, 0)
    most_free = -np.sort(-state.gpu_free, axis=1)[:, :req.num]
    return req.num * MILLI_PER_GPU - most_free.sum(axis=1)


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
    max_nodes: int = ROOM_NODES,
    max_tries: int = ROOM_TRIES,
    depth: int = CHAIN_DEPTH,
    sub_tries: int = 4,
    mix_nodes: bool = False,
    rank: str = "empty",
    movable: Callable[[Pod], bool] = _movable,
    pays: PaysFn | None = None,
) -> Move | None:
    """A move that places ``pod`` (which fits nowhere) by moving at most ``max_victims``
    pods off one node, replayed on ``state`` and undone (see the module docstring).

    With ``depth`` > 1 a victim that fits nowhere after the move gets a move of its own
    (a chain: the victim's room is made on another node by moving at most ``max_victims``
    pods there, and so on ``depth`` levels down). A pod is moved at most once per move,
    and every pod of the chain must be placed again for the move to count.

    Args:
        state: the placement view; unchanged on return.
        pod: the pending pod.
        policy: the placement policy that places the pod and re-places the victims.
        rng: generator for the ``random`` policy.
        max_victims: pods moved off one node per level (the victims of one pending pod).
        max_nodes: candidate nodes examined per level.
        max_tries: victim sets replayed at most for ``pod`` itself.
        depth: levels of the chain (1: victims must fit somewhere as things are).
        sub_tries: victim sets replayed at most for each victim's own move (``depth`` > 1).
        mix_nodes: candidate nodes alternate GPU-deficit and CPU-deficit order
            (:func:`candidate_nodes` ``mix``).
        rank: candidate node order (:func:`candidate_nodes` ``rank``, :data:`RANKS`).
        movable: which bound pods may be moved (default: ``evictable``, i.e. no PDB or owner
            forbids it; workload budgets are the actuator's to enforce when it applies).
        pays: extra acceptance test (e.g. predicted QoS) on the state with the move applied.

    Returns:
        The first move that re-placed every victim and pays, or None. ``victims`` holds
        every pod moved (all levels); ``binds`` the pending pod's bind first.

    Raises:
        ValueError: unknown policy, a bad pod or ``depth`` < 1.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown placement policy {policy!r}")
    if depth < 1:
        raise ValueError(f"make_room: depth must be >= 1, got {depth}")
    if rank not in RANKS:
        raise ValueError(f"make_room: rank must be one of {RANKS}, got {rank!r}")
    search = _Search(state, policy, rng, movable, max_victims, max_nodes, sub_tries, mix_nodes,
                     rank)
    try:
        if not search.place(pod, pod_request(pod), depth, max_tries):
            return None
        move = search.move(pod)
        return move if pays is None or pays(state, move) else None
    finally:
        search.undo(0)


class _Search:
    """The replay of one (possibly chained) move on ``state``: every change is journalled so
    that a failed branch, and at the end the whole move, is undone."""

    def __init__(self, state: ClusterState, policy: str, rng: np.random.Generator | None,
                 movable: Callable[[Pod], bool], max_victims: int, max_nodes: int,
                 sub_tries: int, mix_nodes: bool, rank: str = "empty") -> None:
        self.state, self.policy, self.rng = state, policy, rng
        self.plugin = POLICIES[policy]
        self.movable, self.max_victims = movable, max_victims
        self.max_nodes, self.sub_tries = max_nodes, sub_tries
        self.mix_nodes, self.rank = mix_nodes, rank
        self.journal: list[tuple[str, Bind, Pod]] = []  # ("release"|"apply", bind, pod)
        self.moved: list[str] = []  # keys placed or evicted in this move (never moved again)

    def place(self, pod: Pod, req: PodReq, depth: int, max_tries: int) -> bool:
        """Place ``pod`` by moving pods off one candidate node (victims re-placed, with
        their own chain while ``depth`` > 1; at most ``max_tries`` victim sets); the
        changes stay applied on success."""
        state = self.state
        nodes = candidate_nodes(state, req, self.max_nodes, self.mix_nodes, self.rank)
        if nodes.size == 0:
            return False
        pods_at = _pods_by_node(state, nodes)
        moved = set(self.moved)

        def replaceable(p: Pod) -> bool:
            # at the last level a victim that fits nowhere now (its own node's other GPUs
            # included) cannot be re-placed after the move
            if p.key in moved or not self.movable(p):
                return False
            return depth > 1 or bool(state.feasible(pod_request(p)).size)

        tries = 0
        for i in nodes.tolist():
            view = _node_view(state, i)
            for victims in room_victims(pod, view, pods_at[i], replaceable, self.max_victims):
                if tries >= max_tries:
                    return False
                tries += 1
                mark, moved_mark = len(self.journal), len(self.moved)
                if self._attempt(pod, req, i, victims, depth):
                    return True
                self.undo(mark)
                del self.moved[moved_mark:]
        return False

    def _attempt(self, pod: Pod, req: PodReq, node: int, victims: Sequence[Pod],
                 depth: int) -> bool:
        state = self.state
        self.moved.append(pod.key)
        for v in victims:
            self.moved.append(v.key)
            self.journal.append(("release", state.release(v.key), v))
        if not state.feasible(req, among=np.array([node])).size:
            return False
        gpus = self.plugin.gpus(state, req, node, self.rng)
        if gpus is None or len(gpus) != req.num:  # the policy may refuse the node
            return False
        self._bind(Bind(pod.key, state.names[node], gpus, reason=f"rebind {self.policy}"),
                   pod)
        for v in victims:
            vreq = pod_request(v)
            picked = select_req(state, vreq, self.policy, self.rng)
            if picked is not None:
                self._bind(Bind(v.key, state.names[picked[0]], picked[1],
                                reason="rebind: moved"), v)
            elif depth <= 1 or not self.place(v, vreq, depth - 1, self.sub_tries):
                return False
        return True

    def _bind(self, bind: Bind, pod: Pod) -> None:
        self.state.apply(bind, pod)
        self.journal.append(("apply", bind, pod))

    def undo(self, mark: int) -> None:
        """Take back every change after journal entry ``mark``, newest first."""
        while len(self.journal) > mark:
            kind, bind, pod = self.journal.pop()
            if kind == "apply":
                self.state.release(bind.pod)
            else:
                self.state.apply(bind, pod)

    def move(self, pod: Pod) -> Move:
        """The applied journal as a :class:`Move` for ``pod``."""
        victims = tuple(b.pod for kind, b, _ in self.journal if kind == "release")
        binds = tuple(b for kind, b, _ in self.journal if kind == "apply")
        # the pending pod's bind is the first change after its victims left; applying the
        # binds in journal order after every eviction never over-commits (more is free)
        return Move(pod.key, binds[0].node, victims, binds, pod_request(pod).total_milli)


def defragment(
    state: ClusterState,
    policy: str,
    *,
    rng: np.random.Generator | None = None,
    max_gpus: int = 32,
    max_moves: int = 4,
    max_pods: int = 2,
    min_gain_milli: float = 200.0,
    max_small: int = 0,
    movable: Callable[[Pod], bool] = _movable,
) -> list[Move]:
    """Defragmentation moves before any pod fails: empty the least used shared GPUs.

    The descheduler's idea (evict so that the scheduler places again, better) with FGD's
    measure of what is better (Weng et al., ATC'23: the fragment milli a node holds for
    the typical pods, i.e. the workload's history, never its future): the ``max_gpus``
    partly used GPUs holding the least milli are tried in turn; their pods (at most
    ``max_pods``, all movable, all GPU-sharing) are released and placed again through
    ``policy`` on the state as it is. A move is kept only if every pod was placed and the
    fragment milli of the nodes it touched fell by at least ``min_gain_milli`` per pod
    moved; a pod that lands back where it was makes no move. Kept moves stay applied while
    the next are searched (each sees the earlier ones) and all are undone before return.

    Args:
        state: the placement view, with a typical-pod distribution; unchanged on return.
        policy: the placement policy that re-places the pods.
        rng: generator for the ``random`` policy.
        max_gpus: partly used GPUs examined (least used first).
        max_moves: moves returned at most.
        max_pods: most pods on one GPU for it to be examined.
        min_gain_milli: fragment milli a move must remove per pod it moves.
        max_small: after the GPUs, the ``max_small`` smallest sharing pods that share their
            GPU with another pod are tried one at a time (a small pod moved into a sliver
            beside a large one opens its GPU for a typical pod); 0: none.
        movable: which bound pods may be moved (default: ``evictable``).

    Returns:
        The moves in the order they were found; apply them in that order (each was
        replayed on the state the earlier ones left). ``pending`` is "" and ``node`` the
        node the pods leave.

    Raises:
        ValueError: unknown policy, or a state without a typical-pod distribution.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown placement policy {policy!r}")
    fm = frag_model(state)
    search = _Search(state, policy, rng, movable, 0, 0, 0, False)
    moves: list[Move] = []
    touched: set[tuple[int, int]] = set()  # GPUs an earlier move of this pass changed
    try:
        groups = _least_used_gpus(state, max_gpus, max_pods) + _small_pods(state, max_small)
        for group in groups:
            if len(moves) >= max_moves:
                break
            if (group[0].node, group[0].gpus[0]) in touched or not all(
                    b.pod is not None and movable(b.pod) and b.req.is_share for b in group):
                continue
            mark = len(search.journal)
            move = _consolidate(search, fm, group, min_gain_milli)
            if move is None:
                search.undo(mark)
                continue
            moves.append(move)
            touched.add((group[0].node, group[0].gpus[0]))
            touched.update((state.index[b.node], g) for b in move.binds for g in b.gpu_indices)
    finally:
        search.undo(0)
    return moves


def _least_used_gpus(state: ClusterState, max_gpus: int, max_pods: int) -> list[list]:
    """The bound pods of the ``max_gpus`` partly used GPUs with the least milli in use
    (at most ``max_pods`` pods each), least used first."""
    on: dict[tuple[int, int], list] = {}
    for b in state.bound.values():
        for g in b.gpus:
            on.setdefault((b.node, g), []).append(b)
    partly = [(MILLI_PER_GPU - int(state.gpu_free[i, g]), i, g, pods)
              for (i, g), pods in on.items()
              if state.gpu_free[i, g] > 0 and len(pods) <= max_pods]
    partly.sort(key=lambda t: (t[0], int(state.prio[t[1]]), t[2]))
    return [pods for *_, pods in partly[:max_gpus]]


def _small_pods(state: ClusterState, max_small: int) -> list[list]:
    """The ``max_small`` smallest bound sharing pods whose GPU holds another pod too, each
    as a group of one (smallest first, then the seeded node order)."""
    if max_small <= 0:
        return []
    count: dict[tuple[int, int], int] = {}
    for b in state.bound.values():
        for g in b.gpus:
            count[(b.node, g)] = count.get((b.node, g), 0) + 1
    small = [b for b in state.bound.values()
             if b.req.is_share and count[(b.node, b.gpus[0])] > 1]
    small.sort(key=lambda b: (b.req.milli, int(state.prio[b.node]), b.gpus[0], b.req.key))
    return [[b] for b in small[:max_small]]


def _consolidate(search: _Search, fm, group: list, min_gain: float) -> Move | None:  # noqa: ANN001
    """Release the pods of one GPU and place them again (see :func:`defragment`); the move
    stays applied when it pays, else the caller undoes it."""
    state = search.state
    source = group[0].node
    before: dict[int, float] = {source: fm.frag(state.state_keys[int(state.state_id[source])])}
    was = {b.req.key: (b.node, b.gpus) for b in group}
    for b in group:
        search.journal.append(("release", state.release(b.req.key), b.pod))
    for b in group:
        picked = select_req(state, b.req, search.policy, search.rng)
        if picked is None:
            return None
        i, gpus = picked
        if i not in before:
            before[i] = fm.frag(state.state_keys[int(state.state_id[i])])
        search._bind(Bind(b.req.key, state.names[i], gpus, reason="defragment: moved"), b.pod)
    moved = [bd for kind, bd, _ in search.journal[-len(group):] if kind == "apply"
             and (state.index[bd.node], tuple(bd.gpu_indices)) != was[bd.pod]]
    after = sum(fm.frag(state.state_keys[int(state.state_id[i])]) for i in before)
    gain = sum(before.values()) - after
    if len(moved) != len(group) or gain < min_gain * len(group):
        return None
    return Move("", state.names[source], tuple(b.req.key for b in group),
                tuple(bd for kind, bd, _ in search.journal[-len(group):] if kind == "apply"),
                0, gain)


OPERATOR_DEFRAG_MOVES = 1
"""Defragmentation moves one operator rebinding pass proposes at most (the simulator's
``--mode fgd`` pass keeps :func:`defragment`'s default of 4 per 1 % of capacity arrived; an
operator pass runs every reconcile, so one move a pass, within the actuator's eviction
budget, keeps the churn per pass small)."""


def rebinding_evictions(
    state: ClusterState,
    policy: str,
    wanting: Sequence[Pod],
    *,
    rng: np.random.Generator | None = None,
    movable: Callable[[Pod], bool] = _movable,
    defrag_moves: int = OPERATOR_DEFRAG_MOVES,
) -> list[Action]:
    """The operator's rebinding step on the state of one pass: the ``Evict`` actions of the
    :func:`make_room` move of each pod in ``wanting`` (pods that fit nowhere), then of up to
    ``defrag_moves`` :func:`defragment` moves (only when ``state`` has a typical-pod
    distribution, i.e. under ``fgd`` or ``cohabit``; a pod already evicted by a move of this
    pass is not moved again).

    Each kept move is applied to ``state`` before the next is searched (so two moves never
    count on the same free milli) and all are undone before return. Only evictions are
    returned: the owners re-create the evicted pods and a later pass places them (and the
    pending pod) through the same policy, as the replay did. The
    actuator owns the eviction budget, PDBs and dry-run (with ``dryRun`` the moves are
    reported, not carried out). ``state`` is unchanged on return.

    Args:
        state: the placement view of the pass (binds of the pass applied).
        policy: the placement policy that places and re-places pods.
        wanting: pending pods that fit nowhere, in the order they get a move.
        rng: generator for the ``random`` policy.
        movable: which bound pods a move may evict.
        defrag_moves: defragmentation moves at most (0: none).

    Returns:
        ``Evict`` actions, each reason naming the move (``rebind: makes room ...`` or
        ``defragment: frees GPU milli on ...``); a pod is evicted at most once.

    Raises:
        ValueError: unknown policy.
    """
    actions: list[Action] = []
    moved: set[str] = set()  # pods a move of this pass evicts or places
    search = _Search(state, policy, rng, movable, 0, 0, 0, False)

    def still_movable(p: Pod) -> bool:
        return p.key not in moved and movable(p)

    def keep(move: Move, pending: Pod | None) -> None:
        """Report the move's evictions and apply it to ``state`` (undone at the end), so
        the next moves of the pass are searched on the state this one leaves."""
        pods: dict[str, Pod] = {}
        for v in move.victims:
            victim = state.bound[v].pod
            if victim is None:  # a move only names pods it read from the state
                raise ValueError(f"rebinding: victim {v} has no pod on the state")
            pods[v] = victim
        if pending is not None:
            pods[pending.key] = pending
        for v in move.victims:
            search.journal.append(("release", state.release(v), pods[v]))
            actions.append(Evict(v, reason=move.actions()[0].reason))
        for b in move.binds:
            search._bind(b, pods[b.pod])
        moved.update(pods)

    try:
        for pod in wanting:
            move = make_room(state, pod, policy, rng=rng, movable=still_movable)
            if move is not None:
                keep(move, pod)
        if defrag_moves > 0 and state.typical is not None:
            for move in defragment(state, policy, rng=rng, max_moves=defrag_moves,
                                   movable=still_movable):
                keep(move, None)
    finally:
        search.undo(0)
    return actions
