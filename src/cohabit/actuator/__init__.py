"""Actuators: carry out a plan's actions; the Kubernetes one is the only code that binds,
evicts or patches.

``Actuator.apply(actions) -> list[Outcome]``; dry-run, the eviction budget (a write-ahead
ledger: reserve, evict, confirm or release) and per-workload unavailability are enforced here
once (:class:`EvictionLimits`, :class:`EvictionLedger`). The Kubernetes actuator lives in
:mod:`cohabit.actuator.kubernetes` (imported on demand so the simulator need not load the
kubernetes client).
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
)

__all__ = [
    "LEDGER_STATES",
    "OUTCOME_STATUSES",
    "Actuator",
    "EvictionLedger",
    "EvictionLimits",
    "LedgerEntry",
    "LedgerError",
    "LedgerRefusal",
    "MemoryLedger",
    "admit",
]
