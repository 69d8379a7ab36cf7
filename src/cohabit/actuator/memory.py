"""The in-memory actuator: carries out ``Bind``, ``Evict`` and ``Resize`` on a placement state.

The simulator's cluster is this actuator over a :class:`~cohabit.placement.ClusterState`, so
a rebinding move the simulator judges goes through the same ``apply(actions, limits)`` the
operator's Kubernetes actuator answers (:mod:`cohabit.actuator.kubernetes`). The eviction
rules are the Kubernetes actuator's, in the same order: limits that allow no eviction
(:func:`~cohabit.actuator.base.limits_refusal`), a pod that is not bound, a pod its owner or a
PodDisruptionBudget protects (``Pod.evictable``, answered ``"refused"`` as the API server's
429), the workload's unavailable pods, dry-run (checked against the ledger, nothing written),
then the write-ahead ledger: reserve, evict, confirm. Without limits (the simulator's
default) every eviction of a bound pod is carried out and nothing is written to a ledger.

A ``Resize`` sets the workload's template requests (:attr:`MemoryActuator.requests`): the
in-memory stand-in for patching the target's pod template; bound pods keep their requests,
as on a cluster until they are re-created.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from cohabit.actuator.base import (
    EvictionLedger,
    EvictionLimits,
    LedgerError,
    LedgerRefusal,
    MemoryLedger,
    admit,
    limits_refusal,
)
from cohabit.model import Action, Bind, Evict, Outcome, OutcomeStatus, Pod, Resize, Resources

__all__ = ["BoundPod", "MemoryActuator", "PlacementTarget"]


class BoundPod(Protocol):
    """What a placement state keeps of a bound pod (:class:`MemoryActuator` reads ``pod``)."""

    @property
    def pod(self) -> Pod | None:
        """The bound pod (None when the state was given only its request)."""
        ...


class PlacementTarget(Protocol):
    """The state an in-memory actuator changes (:class:`cohabit.placement.ClusterState`).

    ``apply`` must raise (``ValueError``, e.g. ``OverCommitError``) and change nothing when a
    bind does not fit; ``release`` raises ``KeyError`` for a pod that is not bound.
    """

    @property
    def bound(self) -> Mapping[str, BoundPod]:
        """Pod key -> its placement, for every bound pod."""
        ...

    def apply(self, bind: Bind, pod: Pod | None = None) -> None:
        """Bind ``pod`` (None: a pod the state was told about by its own selection)."""
        ...

    def release(self, pod: Pod | str) -> Bind:
        """Unbind a pod; returns where it was."""
        ...


class MemoryActuator:
    """:class:`~cohabit.actuator.base.Actuator` over an in-memory :class:`PlacementTarget`.

    Args:
        state: the placement state binds and evictions change.
        limits: default eviction limits of :meth:`apply` (None: no limits, as in the
            simulator, where a rebinding move is carried out whole).
        ledger: the eviction budget's write-ahead ledger (default: a :class:`MemoryLedger`);
            used only when limits apply.
        clock: seconds for the budget window (the simulator passes its trace time).
        strict: a bind that does not fit raises (the simulator: a placement bug must not pass
            silently); False reports it ``"failed"`` instead, as an API server refusing it.

    Attributes:
        requests: ``(workload key, container)`` -> requests set by ``Resize``.
        binds, evictions: binds and evictions carried out (``"done"``).
    """

    def __init__(self, state: PlacementTarget, *, limits: EvictionLimits | None = None,
                 ledger: EvictionLedger | None = None,
                 clock: Callable[[], float] = time.time, strict: bool = True) -> None:
        self.state = state
        self.limits = limits
        self.ledger = ledger if ledger is not None else MemoryLedger()
        self.clock = clock
        self.strict = strict
        self.requests: dict[tuple[str, str], Resources] = {}
        self.binds = 0
        self.evictions = 0
        self._known: dict[str, Pod] = {}

    def submit(self, pod: Pod) -> None:
        """Make ``pod`` known as pending (its creation), so a later ``Bind`` of it needs no
        prior selection on the state."""
        self._known[pod.key] = pod

    def apply(self, actions: Sequence[Action], limits: EvictionLimits | None = None
              ) -> list[Outcome]:
        """One :class:`~cohabit.model.Outcome` per action, in order.

        Args:
            actions: binds, evictions and resizes.
            limits: eviction limits for this call (default: the constructor's; None: none).

        Raises:
            ValueError: (``OverCommitError``) with ``strict``, a bind that does not fit,
                names an unknown node or pod, or a pod already bound.
        """
        limits = limits if limits is not None else self.limits
        return [self._one(a, limits) for a in actions]

    def _one(self, action: Action, limits: EvictionLimits | None) -> Outcome:
        if isinstance(action, Bind):
            return self._bind(action)
        if isinstance(action, Evict):
            return self._evict(action, limits)
        if isinstance(action, Resize):
            self.requests[(action.workload, action.container)] = action.requests
            return Outcome(action, OutcomeStatus.DONE, "template requests set")
        return Outcome(action, OutcomeStatus.FAILED, f"unknown action {action!r}")

    def _bind(self, action: Bind) -> Outcome:
        pod = self._known.get(action.pod)
        try:
            self.state.apply(action, pod)
        except ValueError as exc:
            if self.strict:
                raise
            return Outcome(action, OutcomeStatus.FAILED, str(exc))
        self._known.pop(action.pod, None)
        self.binds += 1
        return Outcome(action, OutcomeStatus.DONE, f"bound to {action.node}")

    def _evict(self, action: Evict, limits: EvictionLimits | None) -> Outcome:
        """The Kubernetes actuator's checks in its order, then reserve, release, confirm."""
        placed = self.state.bound.get(action.pod)
        if limits is None:
            return self._release(action, placed.pod if placed is not None else None, None)
        refusal = limits_refusal(limits)
        if refusal:
            return Outcome(action, OutcomeStatus.SKIPPED, refusal)
        if placed is None:
            return Outcome(action, OutcomeStatus.SKIPPED, "pod is not bound")
        pod = placed.pod
        if pod is not None and not pod.evictable:
            return Outcome(action, OutcomeStatus.REFUSED,
                           "its owner or a PodDisruptionBudget forbids the eviction")
        unavailable = self._unavailable(pod)
        if unavailable + 1 > limits.max_unavailable:
            return Outcome(action, OutcomeStatus.SKIPPED,
                           f"workload has {unavailable} unavailable pod(s); max unavailable "
                           f"is {limits.max_unavailable}")
        return self._reserve_and_release(action, pod, limits)

    def _reserve_and_release(self, action: Evict, pod: Pod | None,
                             limits: EvictionLimits) -> Outcome:
        now = self.clock()
        if limits.dry_run:
            refusal = admit(self.ledger.entries(), action.pod, now, limits.evictions_per_hour)
            if refusal:
                return Outcome(action, OutcomeStatus.SKIPPED, refusal)
            return Outcome(action, OutcomeStatus.DRY_RUN, "would evict (dry-run)")
        try:  # no UIDs in memory: a pod key names one pod
            entry = self.ledger.reserve(action.pod, "", now, limit=limits.evictions_per_hour)
        except LedgerRefusal as exc:
            return Outcome(action, OutcomeStatus.SKIPPED, str(exc))
        except LedgerError as exc:
            return Outcome(action, OutcomeStatus.FAILED, "could not reserve a budget slot in "
                           f"the eviction ledger, nothing evicted: {exc}")
        return self._release(action, pod, entry.id)

    def _release(self, action: Evict, pod: Pod | None, entry_id: str | None) -> Outcome:
        try:
            self.state.release(action.pod)
        except KeyError as exc:
            if entry_id is not None:
                self.ledger.settle(entry_id, "released")
            return Outcome(action, OutcomeStatus.FAILED, str(exc))
        if entry_id is not None:
            self.ledger.settle(entry_id, "done")
        if pod is not None:
            self._known[action.pod] = pod  # pending again, as its owner re-creates it
        self.evictions += 1
        return Outcome(action, OutcomeStatus.DONE, "evicted")

    def _unavailable(self, pod: Pod | None) -> int:
        """Pods of ``pod``'s workload that are known here but not bound (pending, evicted)."""
        if pod is None or not pod.workload:
            return 0
        return sum(1 for p in self._known.values()
                   if p.workload == pod.workload and p.namespace == pod.namespace
                   and p.key not in self.state.bound)
