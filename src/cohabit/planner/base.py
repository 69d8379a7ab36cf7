"""The planner's policy protocol, its input, and the plugin registry.

A policy decides *what* should change (resize a workload, evict a pod so it is re-placed);
it never performs anything. Actions go to the actuator, which owns dry-run and budgets,
as descheduler plugins hand evictions to its evictor (kubernetes-sigs/descheduler,
``pkg/framework/plugins`` and ``pkg/descheduler/evictions``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from cohabit.model import (
    Action,
    InterferenceProfile,
    Pod,
    Recommendation,
    Resources,
    Snapshot,
    Workload,
)

__all__ = ["PlanContext", "PluginSpec", "PlannerPolicy", "PolicyArgsError"]


class PolicyArgsError(ValueError):
    """A planner policy argument out of range; names the policy and the argument."""


@dataclass(frozen=True)
class PlanContext:
    """Everything a planner policy may look at, at one moment.

    Attributes:
        snapshot: nodes (with free shares) and pods.
        workloads: the cohabit workloads.
        recommendations: workload key -> one recommendation per container.
        current: ``(workload key, container)`` -> the container's current requests.
        interference: workload key -> its interference profile.
        now: epoch seconds (passed in).
    """

    snapshot: Snapshot
    workloads: tuple[Workload, ...] = ()
    recommendations: Mapping[str, tuple[Recommendation, ...]] = field(default_factory=dict)
    current: Mapping[tuple[str, str], Resources] = field(default_factory=dict)
    interference: Mapping[str, InterferenceProfile] = field(default_factory=dict)
    now: float = 0.0

    def workload_of(self, pod: Pod) -> Workload | None:
        """The cohabit workload owning ``pod`` (same namespace, label name), if any."""
        if pod.workload is None:
            return None
        for w in self.workloads:
            if w.name == pod.workload and w.namespace == pod.namespace:
                return w
        return None


@runtime_checkable
class PlannerPolicy(Protocol):
    """A planner policy: ``plan(ctx) -> actions``; pure, no I/O, no clock. (Not
    :class:`cohabit.placement.Policy`, the placement score plugin.)"""

    name: str

    def plan(self, ctx: PlanContext) -> list[Action]:
        """Proposed actions for ``ctx`` (possibly none)."""
        ...


@dataclass(frozen=True)
class PluginSpec:
    """A registry entry: how to build a policy from its arguments.

    Attributes:
        args_type: dataclass of the arguments, with defaults.
        factory: ``args -> PlannerPolicy``.
        validate: raises :class:`PolicyArgsError` on bad arguments.
    """

    args_type: type
    factory: Callable[[Any], PlannerPolicy]
    validate: Callable[[Any], None]
