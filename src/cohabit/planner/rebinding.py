"""Rebinding: choose pods to evict so they are re-placed with less contention or
fragmentation. The policy only proposes ``Evict`` actions; the actuator evicts (or not).

Two rules, each bounded by ``max_evictions_per_pass``:

1. **Contention.** A node's contention is
   ``C(n) = sum over ordered pairs (i, j), i != j, of pods on n: sum_r p_i[r] * s_j[r]``,
   where ``p``/``s`` are the workloads' interference pressure and sensitivity per shared
   resource (``cpu``, ``membw``, ``gpu_sm``, ...). On a node with ``C(n)`` above
   ``contention_threshold``, the pod whose departure lowers ``C(n)`` most is proposed, if it
   fits on another node where its own contribution would be lower (the "move if it pays"
   rule of contention-aware schedulers such as Paragon/Quasar, applied to rebinding).
2. **Make room.** A pending GPU pod that fits on no node makes the policy propose the
   cheapest set of at most two pods on one node whose departure lets it fit there
   (:func:`room_victims`: GPU milli split over several GPUs, GPU fragmentation as the FGD
   paper defines it, ATC'23; or CPU used up next to idle GPUs), if each of them fits on
   another node. The engine replays each proposed move in the simulator before it is kept
   (:mod:`cohabit.engine.rebind`, simulate-then-rebind).

Only pods of ``managed`` cohabit workloads that are ``evictable`` and not terminating are
ever proposed, so the operator (and anything cohabit does not place) is never a candidate.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cohabit.model import Action, Evict, InterferenceProfile, Node, Pod
from cohabit.planner.base import PlanContext, PolicyArgsError

__all__ = [
    "Rebinding",
    "RebindingArgs",
    "node_contention",
    "room_victims",
    "validate_rebinding_args",
]


@dataclass(frozen=True)
class RebindingArgs:
    """Arguments of :class:`Rebinding`.

    Attributes:
        contention_threshold: node contention above which a move is looked for (>= 0).
        max_evictions_per_pass: evictions proposed per planning pass (>= 0).
        defragment: apply the fragmentation rule.
    """

    contention_threshold: float = 1.0
    max_evictions_per_pass: int = 1
    defragment: bool = True


def validate_rebinding_args(args: RebindingArgs) -> None:
    """Raise :class:`PolicyArgsError` naming the bad argument."""
    if args.contention_threshold < 0:
        raise PolicyArgsError(
            f"Rebinding.contention_threshold={args.contention_threshold} is negative")
    if args.max_evictions_per_pass < 0:
        raise PolicyArgsError(
            f"Rebinding.max_evictions_per_pass={args.max_evictions_per_pass} is negative")


def _pair(a: InterferenceProfile, b: InterferenceProfile) -> float:
    """How much ``a`` slows ``b``: sum over resources of a's pressure x b's sensitivity."""
    sens = dict(b.sensitivity)
    return sum(p * sens.get(r, 0.0) for r, p in a.pressure)


def node_contention(profiles: list[InterferenceProfile]) -> float:
    """``C(n)`` over the profiles of the pods on one node (see module doc)."""
    total = 0.0
    for i, a in enumerate(profiles):
        for j, b in enumerate(profiles):
            if i != j:
                total += _pair(a, b)
    return total


def _fits(pod: Pod, node: Node) -> bool:
    if pod.cpu_milli > node.cpu_free_milli or pod.memory_mib > node.memory_free_mib:
        return False
    if pod.gpu_spec and node.gpu_model not in pod.gpu_spec:
        return False
    if not pod.num_gpu:
        return True
    return sum(1 for g in node.gpus if g.milli_free >= pod.gpu_milli) >= pod.num_gpu


class Rebinding:
    """Propose evictions that reduce contention or GPU fragmentation (see module doc)."""

    name = "Rebinding"

    def __init__(self, args: RebindingArgs) -> None:
        self.args = args

    def plan(self, ctx: PlanContext) -> list[Action]:
        budget = self.args.max_evictions_per_pass
        if budget <= 0:
            return []
        actions: list[Action] = []
        chosen: set[str] = set()
        for action in self._contention(ctx):
            if len(actions) >= budget:
                return actions
            actions.append(action)
            chosen.add(action.pod)
        if self.args.defragment:
            for action in self._fragmentation(ctx):
                if len(actions) >= budget:
                    break
                if action.pod not in chosen:
                    actions.append(action)
                    chosen.add(action.pod)
        return actions

    def _movable(self, ctx: PlanContext, pod: Pod) -> bool:
        workload = ctx.workload_of(pod)
        return (workload is not None and workload.placement == "managed" and pod.evictable
                and pod.deletion_time is None and pod.node is not None)

    def _contention(self, ctx: PlanContext) -> list[Evict]:
        by_node: dict[str, list[Pod]] = defaultdict(list)
        for pod in ctx.snapshot.pods:
            if pod.node is not None and pod.deletion_time is None:
                by_node[pod.node].append(pod)
        empty = InterferenceProfile()

        def profile(p: Pod) -> InterferenceProfile:
            w = ctx.workload_of(p)
            return ctx.interference.get(w.key, empty) if w else empty

        nodes = {n.name: n for n in ctx.snapshot.nodes}
        scored = []
        for node_name, pods in by_node.items():
            profiles = [profile(p) for p in pods]
            total = node_contention(profiles)
            if total <= self.args.contention_threshold:
                continue
            best: tuple[float, Pod] | None = None
            for k, pod in enumerate(pods):
                if not self._movable(ctx, pod):
                    continue
                rest = profiles[:k] + profiles[k + 1:]
                gain = total - node_contention(rest)
                here = gain
                # Where else could it go, and would it contend less there?
                better = False
                for other, node in nodes.items():
                    if other == node_name or not _fits(pod, node):
                        continue
                    there = [profile(q) for q in by_node.get(other, [])]
                    cost = node_contention([*there, profile(pod)]) - node_contention(there)
                    if cost < here:
                        better = True
                        break
                if better and gain > 0 and (best is None or gain > best[0]):
                    best = (gain, pod)
            if best is not None:
                scored.append((best[0], node_name, best[1]))
        scored.sort(key=lambda t: (-t[0], t[1]))
        return [Evict(pod.key, reason=f"contention on {node}: moving it saves {gain:.2f}")
                for gain, node, pod in scored]

    def _fragmentation(self, ctx: PlanContext) -> list[Evict]:
        pending = [p for p in ctx.snapshot.pods if p.node is None and p.num_gpu]
        if not pending:
            return []
        nodes = list(ctx.snapshot.nodes)
        by_node: dict[str, list[Pod]] = defaultdict(list)
        for p in ctx.snapshot.pods:
            if p.node is not None and p.deletion_time is None:
                by_node[p.node].append(p)
        for want in pending:
            if any(_fits(want, n) for n in nodes):
                continue  # placement will handle it
            for node in nodes:
                for victims in room_victims(want, node, by_node.get(node.name, ()),
                                            lambda p: self._movable(ctx, p)):
                    if all(any(_fits(v, other) for other in nodes if other.name != node.name)
                           for v in victims):
                        return [Evict(v.key, reason=(
                            f"defragment {node.name}: makes room for pending {want.key}"))
                            for v in victims]
        return []


def _gpu_fits(want: Pod, free: Sequence[int]) -> bool:
    if not want.num_gpu:
        return True
    return sum(1 for f in free if f >= want.gpu_milli) >= want.num_gpu


def room_victims(want: Pod, node: Node, pods: Sequence[Pod],
                 movable: Callable[[Pod], bool], max_victims: int = 2,
                 max_candidates: int = 12) -> list[tuple[Pod, ...]]:
    """Sets of movable pods on ``node`` whose departure lets ``want`` fit there, cheapest
    first.

    The "make room" step of rebinding: a pending pod that fits nowhere because the free
    CPU, memory or GPU milli of a node is split the wrong way (GPU fragmentation in the
    sense of the FGD paper, Weng et al. ATC'23; or CPU used up next to idle GPUs) gets a node
    by moving at most ``max_victims`` pods away. Only the node's free resources and the
    victims' requests are looked at; whether the victims fit elsewhere, and whether the move
    pays, is for the caller to check (the engine replays each move in the simulator first).

    Args:
        want: the pending pod.
        node: a node (free CPU, memory and per-GPU free milli as in a snapshot).
        pods: the pods bound to ``node`` (with ``gpu_indices`` for GPU pods).
        movable: which pods may be moved (managed, evictable, not terminating).
        max_victims: most pods moved for ``want`` (1 or 2).
        max_candidates: the cheapest movable pods considered for pairs.

    Returns:
        Victim tuples, fewest pods first, then least GPU milli and CPU moved; empty when the
        GPU model does not suit ``want`` or no set of up to ``max_victims`` pods helps.
    """
    if want.gpu_spec and node.gpu_model not in want.gpu_spec:
        return []
    if want.num_gpu and len(node.gpus) < want.num_gpu:
        return []
    free = {g.index: g.milli_free for g in node.gpus}
    cands = sorted((p for p in pods if movable(p)),
                   key=lambda p: (p.gpu_request_milli, p.cpu_milli, p.key))[:max_candidates]

    def fits_without(victims: tuple[Pod, ...]) -> bool:
        cpu = node.cpu_free_milli + sum(v.cpu_milli for v in victims)
        mem = node.memory_free_mib + sum(v.memory_mib for v in victims)
        if cpu < want.cpu_milli or mem < want.memory_mib:
            return False
        after = dict(free)
        for v in victims:
            for i in v.gpu_indices:
                if i in after:
                    after[i] += v.gpu_milli
        return _gpu_fits(want, list(after.values()))

    out: list[tuple[Pod, ...]] = []
    for k in range(1, max_victims + 1):
        for victims in itertools.combinations(cands, k):
            if fits_without(victims):
                out.append(victims)
        if out:
            break  # fewer pods first: a pair is only tried when no single pod helps
    out.sort(key=lambda vs: (sum(v.gpu_request_milli for v in vs),
                             sum(v.cpu_milli for v in vs), tuple(v.key for v in vs)))
    return out
