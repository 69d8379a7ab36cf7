"""Actuators: carry out a plan's actions; the Kubernetes one is the only code that binds,
evicts or patches.

``Actuator.apply(actions) -> list[Outcome]``; dry-run, the eviction budget (a write-ahead
ledger: reserve, evict, confirm or release) and per-workload unavailability are enforced here
once (:class:`EvictionLimits`, :class:`EvictionLedger`). :class:`MemoryActuator` carries
the same actions out on an in-memory placement state (the simulator's cluster). The
Kubernetes actuator lives in :mod:`cohabit.actuator.kubernetes` (imported on demand so the
simulator need not load the kubernetes client).
"""

from cohabit.actuator.base import (
    LEDGER_STATES,
    OUTCOME_STATUSES,
    Actuator,
    EvictionLedger,
    EvictionLimits,
    LedgerEntry,
    LedgerError,
    LedgerRefusal,
    MemoryLedger,
    admit,
    limits_refusal,
)
from cohabit.actuator.memory import MemoryActuator, PlacementTarget

__all__ = [
    "LEDGER_STATES",
    "OUTCOME_STATUSES",
    "Actuator",
    "EvictionLedger",
    "EvictionLimits",
    "LedgerEntry",
    "LedgerError",
    "LedgerRefusal",
    "MemoryActuator",
    "MemoryLedger",
    "PlacementTarget",
    "admit",
    "limits_refusal",
]
