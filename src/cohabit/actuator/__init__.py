"""Actuators: carry out a plan's actions; the Kubernetes one is the only code that binds,
evicts or patches.

``Actuator.apply(actions) -> list[Outcome]``; dry-run, the eviction budget and per-workload
unavailability are enforced here once (:class:`EvictionLimits`). The Kubernetes actuator lives
in :mod:`cohabit.actuator.kubernetes` (imported on demand so the simulator need not load the
kubernetes client).
"""

from cohabit.actuator.base import (
    OUTCOME_STATUSES,
    Actuator,
    EvictionLedger,
    EvictionLimits,
    MemoryLedger,
)

__all__ = ["OUTCOME_STATUSES", "Actuator", "EvictionLedger", "EvictionLimits", "MemoryLedger"]
