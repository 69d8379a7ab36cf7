"""The actuator interface and the limits every actuator enforces.

An actuator turns :mod:`cohabit.model` actions (``Bind``, ``Evict``, ``Resize``) into effects
and reports one :class:`~cohabit.model.Outcome` per action. Planner policies and placement
only *propose* actions; dry-run, the eviction budget and the per-workload unavailability
limit are enforced here, once, after the descheduler's evictor
(kubernetes-sigs/descheduler ``pkg/descheduler/evictions``), so no policy can bypass them.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cohabit.config import RebindingConfig
from cohabit.model import Action, Outcome

__all__ = [
    "Actuator",
    "EvictionLedger",
    "EvictionLimits",
    "MemoryLedger",
    "OUTCOME_STATUSES",
]

OUTCOME_STATUSES = ("done", "dry-run", "refused", "skipped", "failed")
"""Every value :attr:`cohabit.model.Outcome.status` may take."""


@runtime_checkable
class Actuator(Protocol):
    """Anything that can carry out a plan's actions.

    ``apply`` must be idempotent: applying the same action twice (e.g. after an operator
    restart) must not bind a pod twice, evict twice or patch twice.
    """

    def apply(self, actions: Sequence[Action]) -> list[Outcome]:
        """One outcome per action, in order."""
        ...


@dataclass(frozen=True)
class EvictionLimits:
    """Eviction safety limits (from the ``PlacementPolicy``'s ``spec.rebinding``).

    Attributes:
        dry_run: report evictions as ``"dry-run"`` without calling the API.
        evictions_per_hour: cluster-wide budget over a sliding 3,600 s window (0 = none).
        max_unavailable: pods of one workload that may be unavailable (pending, terminating,
            not running) at once, counting the one about to be evicted (0 = none).
        enabled: False turns every eviction into ``"skipped"``.
    """

    dry_run: bool = True
    evictions_per_hour: int = 6
    max_unavailable: int = 1
    enabled: bool = True

    @classmethod
    def from_config(cls, config: RebindingConfig) -> EvictionLimits:
        """Limits from a parsed ``spec.rebinding``."""
        return cls(
            dry_run=config.dry_run,
            evictions_per_hour=config.evictions_per_hour,
            max_unavailable=config.max_unavailable,
            enabled=config.enabled,
        )


class EvictionLedger(Protocol):
    """Where performed evictions are remembered, so budgets survive restarts."""

    def recent(self, now: float, window_s: float = 3600.0) -> list[tuple[float, str]]:
        """``(time, pod key)`` of evictions within ``window_s`` before ``now``."""
        ...

    def record(self, when: float, pod: str) -> None:
        """Remember an eviction of ``pod`` (``namespace/name``) at ``when`` (epoch seconds)."""
        ...


class MemoryLedger:
    """An in-process :class:`EvictionLedger` (the simulator's, and the operator's fallback)."""

    def __init__(self) -> None:
        self._events: deque[tuple[float, str]] = deque()
        self._lock = threading.Lock()

    def recent(self, now: float, window_s: float = 3600.0) -> list[tuple[float, str]]:
        with self._lock:
            return [(t, p) for t, p in self._events if now - window_s < t <= now]

    def record(self, when: float, pod: str) -> None:
        with self._lock:
            self._events.append((when, pod))
            while len(self._events) > 10_000:
                self._events.popleft()
