"""The actuator interface, the limits every actuator enforces and the eviction ledger.

An actuator turns :mod:`cohabit.model` actions (``Bind``, ``Evict``, ``Resize``) into effects
and reports one :class:`~cohabit.model.Outcome` per action. Planner policies and placement
only *propose* actions; dry-run, the eviction budget and the per-workload unavailability
limit are enforced here, once, after the descheduler's evictor
(kubernetes-sigs/descheduler ``pkg/descheduler/evictions``), so no policy can bypass them.

The eviction budget is kept write-ahead: a budget slot is *reserved* in the ledger before the
eviction is sent, then *confirmed* (``done``) or *released*. A reservation whose outcome is
unknown (the operator died, the answer was lost) counts against the budget exactly like a
done eviction until a check of the pod settles it (:func:`admit`, :class:`EvictionLedger`),
so no fault sequence evicts more than the budget allows.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from cohabit.config import RebindingConfig
from cohabit.model import Action, Outcome

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
    "Resolver",
    "admit",
    "limits_refusal",
    "new_entry",
    "kept_entries",
    "settle_entries",
]

OUTCOME_STATUSES = ("done", "dry-run", "refused", "skipped", "failed")
"""Every value :attr:`cohabit.model.Outcome.status` may take."""


@runtime_checkable
class Actuator(Protocol):
    """Anything that can carry out a plan's actions.

    ``apply`` must be idempotent: applying the same action twice (e.g. after an operator
    restart) must not bind a pod twice, evict twice or patch twice.
    """

    def apply(self, actions: Sequence[Action], limits: EvictionLimits | None = None
              ) -> list[Outcome]:
        """One outcome per action, in order; ``limits`` are this call's eviction limits
        (None: the actuator's own)."""
        ...


@dataclass(frozen=True)
class EvictionLimits:
    """Eviction safety limits (from the ``PlacementPolicy``'s ``spec.rebinding``).

    Attributes:
        dry_run: report evictions as ``"dry-run"`` without calling the API.
        evictions_per_hour: cluster-wide budget over a sliding 3,600 s window; 0 allows no
            eviction at all (it never means "no limit").
        max_unavailable: pods of one workload that may be unavailable (pending, terminating,
            not running) at once, counting the one about to be evicted; 0 allows no eviction
            at all (an eviction always makes one pod unavailable).
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


def limits_refusal(limits: EvictionLimits) -> str:
    """Why ``limits`` allow no eviction at all (``""`` when they allow some)."""
    if not limits.enabled:
        return "rebinding is disabled"
    if limits.evictions_per_hour <= 0:
        return "evictionsPerHour is 0: no evictions allowed"
    if limits.max_unavailable <= 0:
        return "maxUnavailable is 0: no pod may be made unavailable, so none is evicted"
    return ""


LEDGER_STATES = ("reserved", "done")
"""States of a ledger entry: ``reserved`` (written before the eviction is sent; outcome not
yet known) and ``done`` (the eviction happened). A released reservation is removed."""


@dataclass(frozen=True)
class LedgerEntry:
    """One eviction budget slot in the ledger.

    Attributes:
        id: unique id of the reservation (hex).
        pod: ``namespace/name`` of the pod.
        uid: the pod's UID when it was reserved (a pod recreated under the same name has
            another UID, so its absence proves the eviction happened).
        time: epoch seconds of the reservation; the slot counts in the budget's sliding
            window from then.
        state: one of :data:`LEDGER_STATES`.
    """

    id: str
    pod: str
    uid: str
    time: float
    state: str

    def to_json(self) -> dict[str, object]:
        """The entry as stored in the ConfigMap (``{"id", "pod", "uid", "time", "state"}``)."""
        return {"id": self.id, "pod": self.pod, "uid": self.uid, "time": self.time,
                "state": self.state}

    @classmethod
    def from_json(cls, raw: object, index: int) -> LedgerEntry:
        """Parse one stored entry; a legacy ``[time, pod]`` pair is a ``done`` entry.

        Raises:
            LedgerError: naming the entry's index and what is wrong.
        """
        if isinstance(raw, list | tuple) and len(raw) == 2:
            raw = {"id": f"legacy-{index}", "pod": raw[1], "uid": "", "time": raw[0],
                   "state": "done"}
        if not isinstance(raw, dict):
            raise LedgerError(f"entry {index} is not an object: {raw!r}")
        try:
            entry = cls(str(raw["id"]), str(raw["pod"]), str(raw.get("uid", "")),
                        float(raw["time"]), str(raw["state"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise LedgerError(f"entry {index} ({raw!r}): {type(exc).__name__}: {exc}") from exc
        if entry.state not in LEDGER_STATES or entry.time != entry.time:
            raise LedgerError(f"entry {index}: state {entry.state!r} / time {entry.time!r} "
                              f"invalid (states: {', '.join(LEDGER_STATES)})")
        return entry


class LedgerError(RuntimeError):
    """The ledger could not be read or written (malformed, or too many write conflicts).
    Nothing is evicted on it: an unreadable budget is a spent budget."""


class LedgerRefusal(Exception):
    """The ledger refuses a reservation (budget spent, pod evicted already, or an eviction
    of it in flight); the message says which."""


Resolver = Callable[[LedgerEntry], "str | None"]
"""``entry -> "done" | "released" | None``: settles a ``reserved`` entry by checking its pod
(``None`` = leave it reserved, e.g. too young or the pod could not be read)."""


def new_entry(pod: str, uid: str, now: float) -> LedgerEntry:
    """A fresh ``reserved`` entry for ``pod`` at ``now``."""
    return LedgerEntry(uuid.uuid4().hex, pod, uid, float(now), "reserved")


def kept_entries(entries: Iterable[LedgerEntry], now: float, keep_s: float,
                 resolve: Resolver | None) -> tuple[list[LedgerEntry], dict[str, str]]:
    """The entries younger than ``keep_s`` seconds at ``now`` with the reservations that
    ``resolve`` settles applied (:func:`settle_entries`), and those results (entry id ->
    ``"done"``/``"released"``; empty without ``resolve``)."""
    kept = [e for e in entries if e.time > now - keep_s]
    if resolve is None:
        return kept, {}
    results = {e.id: r for e in kept if e.state == "reserved"
               for r in [resolve(e)] if r is not None}
    return settle_entries(kept, results), results


def settle_entries(entries: Iterable[LedgerEntry], outcomes: dict[str, str]
                   ) -> list[LedgerEntry]:
    """``entries`` with ``outcomes`` (id -> ``"done"``/``"released"``) applied: a ``done``
    entry keeps its slot, a released one is removed; ids not in ``outcomes`` are kept."""
    out = []
    for e in entries:
        result = outcomes.get(e.id)
        if result == "released":
            continue
        out.append(replace(e, state="done") if result == "done" else e)
    return out


def admit(entries: Sequence[LedgerEntry], pod: str, now: float, limit: int,
          window_s: float = 3600.0) -> str | None:
    """Why ``pod`` may not be evicted at ``now`` under a budget of ``limit`` per
    ``window_s``, or None when a slot is free.

    Every entry newer than ``now - window_s`` counts, ``reserved`` ones included (an
    unknown outcome is assumed to be an eviction); entries stamped in the future (another
    instance's clock ahead of ours) count too. A pod evicted within the window, or with a
    reservation not yet settled, is not evicted again.
    """
    mine = [e for e in entries
            if e.pod == pod and (e.state == "reserved" or e.time > now - window_s)]
    if any(e.state == "done" for e in mine):
        return "pod was evicted already"
    if mine:
        return "an eviction of this pod is in flight or its outcome is not known yet"
    if limit <= 0:
        return "eviction budget is 0 (evictionsPerHour: 0 allows no evictions)"
    counted = [e for e in entries if e.time > now - window_s]
    if len(counted) >= limit:
        unknown = sum(e.state == "reserved" for e in counted)
        detail = f", {unknown} of them with outcome not yet known" if unknown else ""
        return (f"eviction budget spent ({len(counted)}/{limit} in the last "
                f"{window_s:.0f} s{detail})")
    return None


class EvictionLedger(Protocol):
    """Where eviction budget slots are kept, so budgets survive restarts and faults.

    The protocol is write-ahead: :meth:`reserve` before the eviction is sent, then
    :meth:`settle` with ``"done"`` or ``"released"``. Implementations make ``reserve`` atomic
    (check and write under one lock or one optimistic-concurrency write).
    """

    def entries(self) -> list[LedgerEntry]:
        """Every kept entry.

        Raises:
            LedgerError: the ledger is malformed.
        """
        ...

    def reserve(self, pod: str, uid: str, now: float, *, limit: int,
                window_s: float = 3600.0, resolve: Resolver | None = None) -> LedgerEntry:
        """Atomically settle what ``resolve`` can settle, check :func:`admit` and write a
        ``reserved`` entry for ``pod``.

        Raises:
            LedgerRefusal: :func:`admit` refused (nothing written but settled entries).
            LedgerError: malformed ledger or persistent write conflicts.
        """
        ...

    def settle(self, entry_id: str, result: str) -> None:
        """Mark a reservation ``"done"`` or remove it (``"released"``); unknown ids are
        ignored (someone settled it already)."""
        ...


class MemoryLedger:
    """An in-process :class:`EvictionLedger` (the simulator's, and the operator's fallback
    when no ledger namespace is set: budgets then reset with the process).

    Args:
        keep_s: entries older than this are dropped, seconds (longer than any budget window).
    """

    def __init__(self, keep_s: float = 7200.0) -> None:
        self.keep_s = keep_s
        self._entries: list[LedgerEntry] = []
        self._lock = threading.Lock()

    def entries(self) -> list[LedgerEntry]:
        with self._lock:
            return list(self._entries)

    def reserve(self, pod: str, uid: str, now: float, *, limit: int,
                window_s: float = 3600.0, resolve: Resolver | None = None) -> LedgerEntry:
        with self._lock:
            kept, _ = kept_entries(self._entries, now, self.keep_s, resolve)
            refusal = admit(kept, pod, now, limit, window_s)
            if refusal is not None:
                self._entries = kept
                raise LedgerRefusal(refusal)
            entry = new_entry(pod, uid, now)
            self._entries = [*kept, entry]
            return entry

    def settle(self, entry_id: str, result: str) -> None:
        with self._lock:
            self._entries = settle_entries(self._entries, {entry_id: result})

    def recent(self, now: float, window_s: float = 3600.0) -> list[tuple[float, str]]:
        """``(time, pod)`` of the entries counted in the window before ``now``."""
        with self._lock:
            return [(e.time, e.pod) for e in self._entries if e.time > now - window_s]
