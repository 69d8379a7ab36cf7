"""Interference between co-located pods, as placement sees it: profiles, a plain slowdown
callable, and which profiled pods sit on which node and GPU.

cohabit's own score plugin (``cohabit`` in :data:`~cohabit.placement.POLICIES`) combines
FGD's fragmentation gradient with an interference penalty computed here. The model follows
the pressure/sensitivity split of Bubble-Up (Mars et al., "Bubble-Up: Increasing Utilization
in Modern Warehouse Scale Computers via Sensible Co-locations", MICRO 2011), Paragon
(Delimitrou & Kozyrakis, ASPLOS 2013) and URSA: every workload has a *pressure* vector (how
hard it loads each shared resource) and a *sensitivity* vector (how much it slows per unit of
its neighbours' pressure), one :class:`~cohabit.model.InterferenceProfile` per pod.

Placement never imports the predictors: it sees only a :data:`Slowdown` callable
``slowdown(victim, aggressor) -> fraction`` injected by the engine (the trained
``cohabit.predictors.interference_predictor()`` on probe profiles, or
:func:`pressure_sensitivity_slowdown`).

**Scope.** Pods that share a GPU interfere through every resource of their profiles; pods on
the same node but on different GPUs (or without GPUs) interfere only through the node's
shared resources (:data:`NODE_RESOURCES`: CPU, memory, memory bandwidth, cache, disk,
network), so the callable sees their *node views* (profiles restricted to those keys). A pod
without a profile is unknown, not harmless or fragile: it adds no penalty and suffers none,
so with no profiles at all the ``cohabit`` policy is exactly ``fgd``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from cohabit.model import InterferenceProfile

__all__ = [
    "NODE_RESOURCES",
    "Interference",
    "Slowdown",
    "node_view",
    "pressure_sensitivity_slowdown",
]

Slowdown = Callable[[InterferenceProfile, InterferenceProfile], float]
"""``slowdown(victim, aggressor) -> float``: predicted fractional slowdown of ``victim`` when
co-located with ``aggressor`` (0 = none, 1 = stopped); e.g. ``1 - f(victim | aggressor)`` of
a throughput-fraction model."""

NODE_RESOURCES = frozenset({"cpu", "memory", "membw", "llc", "cache", "disk", "net", "network"})
"""Profile keys that pods on the same node share whatever GPU they use; every other key
(``gpu_sm``, ``gpu_mem``, ``pcie``, ``probe<i>:<name>``, ...) is shared only on one GPU."""


def pressure_sensitivity_slowdown(victim: InterferenceProfile,
                                  aggressor: InterferenceProfile) -> float:
    """The default :data:`Slowdown`: ``sum_r aggressor.pressure[r] * victim.sensitivity[r]``,
    clipped to ``[0, 1]``; NaN entries count as unknown (skipped).

    The linear pressure x sensitivity model of Bubble-Up (MICRO'11, a workload's slowdown is
    its sensitivity curve read at its co-runners' pressure score, linearised here) and of the
    planner's rebinding contention ``C(n)``.

    Example: victim sensitivity ``{gpu_sm: 0.5}``, aggressor pressure ``{gpu_sm: 0.8,
    cpu: 0.2}`` -> ``0.4``.
    """
    sens = {r: v for r, v in victim.sensitivity if not math.isnan(v)}
    if not sens:
        return 0.0
    total = 0.0
    for r, p in aggressor.pressure:
        s = sens.get(r)
        if s is not None and not math.isnan(p):
            total += p * s
    return min(1.0, max(0.0, total))


def node_view(profile: InterferenceProfile) -> InterferenceProfile:
    """``profile`` restricted to :data:`NODE_RESOURCES` (what pods on other GPUs feel)."""
    return InterferenceProfile(
        pressure=tuple((r, v) for r, v in profile.pressure if r in NODE_RESOURCES),
        sensitivity=tuple((r, v) for r, v in profile.sensitivity if r in NODE_RESOURCES),
    )


def _active(p: InterferenceProfile) -> bool:
    return bool(p.pressure) or bool(p.sensitivity)


@dataclass
class Interference:
    """Profiles and placement of profiled pods, for the ``cohabit`` score plugin.

    Build it with :meth:`cohabit.placement.ClusterState.set_interference`, which also keeps
    :attr:`on_node` in step with every ``apply``/``release``.

    Attributes:
        profiles: pod key (``namespace/name``) -> profile, for bound and pending pods.
        slowdown: the :data:`Slowdown` callable.
        weight: score points per 1% of predicted slowdown x 100 (the penalty is
            ``100 * weight * total slowdown``; FGD scores are 0..100).
        activity: pod key -> mean activity 0..1 (share of time it loads its GPU); what a pod
            inflicts is scaled by it (missing = 1, always busy).
        latency_sensitive: keys of latency-sensitive (LS) pods: the slowdown they suffer
            counts ``ls_weight`` times (the QoS-class part: LS protected, BE soaks up).
        ls_weight: that multiplier (>= 0; 1 = no class distinction).
        on_node: node index -> {pod key: GPU indices} of the *profiled* bound pods.

    Raises (from ``__post_init__``):
        ValueError: ``weight`` negative or not finite.
    """

    profiles: dict[str, InterferenceProfile]
    slowdown: Slowdown
    weight: float = 1.0
    activity: dict[str, float] = field(default_factory=dict)
    latency_sensitive: frozenset[str] = frozenset()
    ls_weight: float = 1.0
    on_node: dict[int, dict[str, tuple[int, ...]]] = field(default_factory=dict)
    _pairs: dict[tuple[InterferenceProfile, InterferenceProfile], float] = field(
        default_factory=dict)
    _views: dict[str, InterferenceProfile] = field(default_factory=dict)
    _on_gpu: dict[tuple[int, int], set[str]] = field(default_factory=dict)
    _node_scope: dict[int, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("weight", "ls_weight"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"interference {name} must be finite and >= 0, got {v}")
        self.profiles = {k: p for k, p in self.profiles.items() if _active(p)}

    # ------------------------------------------------------------------ bookkeeping

    def bound(self, key: str, node: int, gpus: tuple[int, ...]) -> None:
        """Record a bind of ``key`` (no-op for a pod without a profile)."""
        if key in self.profiles:
            self.on_node.setdefault(node, {})[key] = gpus
            for g in gpus:
                self._on_gpu.setdefault((node, g), set()).add(key)
            if _active(self._view(key)):
                self._node_scope.setdefault(node, set()).add(key)

    def unbound(self, key: str, node: int) -> None:
        """Record a release of ``key`` from ``node``."""
        pods = self.on_node.get(node)
        gpus = pods.pop(key, None) if pods is not None else None
        if gpus is None:
            return
        if not pods:
            del self.on_node[node]
        for g in gpus:
            there = self._on_gpu.get((node, g))
            if there is not None:
                there.discard(key)
                if not there:
                    del self._on_gpu[(node, g)]
        scope = self._node_scope.get(node)
        if scope is not None:
            scope.discard(key)
            if not scope:
                del self._node_scope[node]

    def update(self, profiles: Mapping[str, InterferenceProfile]) -> None:
        """Add or replace profiles (e.g. newly pending pods); bound pods keep their place."""
        for k, p in profiles.items():
            if _active(p):
                self.profiles[k] = p
                self._views.pop(k, None)

    # ------------------------------------------------------------------ prediction

    def pair(self, victim: InterferenceProfile, aggressor: InterferenceProfile) -> float:
        """Memoised ``slowdown(victim, aggressor)`` (0 when either side is empty).

        Raises:
            ValueError: the callable returned NaN or a value outside ``[0, 1]``.
        """
        if not victim.sensitivity or not aggressor.pressure:
            return 0.0
        k = (victim, aggressor)
        v = self._pairs.get(k)
        if v is None:
            v = float(self.slowdown(victim, aggressor))
            if not 0.0 <= v <= 1.0:  # also catches NaN
                raise ValueError(f"slowdown callable returned {v}, expected 0..1")
            self._pairs[k] = v
        return v

    def _view(self, key: str) -> InterferenceProfile:
        v = self._views.get(key)
        if v is None:
            v = node_view(self.profiles[key])
            self._views[key] = v
        return v

    def _victim_weight(self, key: str) -> float:
        return self.ls_weight if key in self.latency_sensitive else 1.0

    def penalty(self, key: str, node: int, gpus: Iterable[int]) -> float:
        """Total predicted slowdown if pod ``key`` joins ``node`` on GPUs ``gpus``: what it
        suffers plus what it inflicts, summed over the profiled pods already there (full
        profiles for pods sharing one of ``gpus``, node views for the others). What a pod
        inflicts is scaled by its :attr:`activity`; what an LS pod suffers by
        :attr:`ls_weight`. 0 when ``key`` has no profile or the node has no profiled pod."""
        me = self.profiles.get(key)
        if me is None or node not in self.on_node:
            return 0.0
        sharing: set[str] = set()
        for g in gpus:
            sharing |= self._on_gpu.get((node, g), set())
        sharing.discard(key)
        total = 0.0
        act = self.activity
        my_act = act.get(key, 1.0)
        my_w = self._victim_weight(key)
        for other in sharing:
            b = self.profiles[other]
            total += (my_w * act.get(other, 1.0) * self.pair(me, b)
                      + self._victim_weight(other) * my_act * self.pair(b, me))
        scope = self._node_scope.get(node)
        mine_view = self._view(key)
        if scope and _active(mine_view):
            for other in scope:
                if other == key or other in sharing:
                    continue
                b = self._view(other)
                total += (my_w * act.get(other, 1.0) * self.pair(mine_view, b)
                          + self._victim_weight(other) * my_act * self.pair(b, mine_view))
        return total

    def points(self, key: str, node: int, gpus: Iterable[int]) -> float:
        """:meth:`penalty` in score points: ``100 * weight * penalty``."""
        return 100.0 * self.weight * self.penalty(key, node, gpus)
