"""The one engine step that carries a plan out through an actuator.

Every caller that turns decided actions into effects goes through :func:`execute_plan`: the
operator's workload pass (its ``Resize`` actions), its scheduling pass (``Bind``/``Evict``),
:func:`cohabit.engine.scheduling.schedule_pod` (one ``Bind``), the simulator's rebinding
moves (``Evict`` of each victim, then the ``Bind`` of the pending pod and of each victim) and
the database paths (the online capacity planner's and the profiler's ``Resize``, the
interference benchmark's cpuset ``Bind``).
The actuator decides and reports (dry-run, eviction budget with its write-ahead ledger,
PodDisruptionBudgets: :mod:`cohabit.actuator`); this step

1. sends the actions (all at once, or one at a time when each needs the ones before it),
2. checks it got one outcome per action (a missing one becomes ``"failed"``, never a
   silently shorter list),
3. hands the :class:`Execution` to every :class:`OutcomeRecorder` (the operator's metrics and
   Events, the simulator's move counts), the same way for every caller.

Planner policies and placement only propose; like the descheduler's evictor
(kubernetes-sigs/descheduler ``pkg/descheduler/evictions``) nothing bypasses the actuator.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cohabit.actuator import Actuator, EvictionLimits
from cohabit.model import Action, Bind, Evict, Outcome, OutcomeStatus, Resize

__all__ = ["Execution", "OutcomeRecorder", "OutcomeTally", "execute_plan"]

_APPLIED = (OutcomeStatus.DONE, OutcomeStatus.DRY_RUN)


@dataclass(frozen=True, slots=True)
class Execution:
    """What carrying out one plan did: one outcome per action, in the plan's order.

    Attributes:
        outcomes: the actuator's outcomes (and the step's own ``"skipped"`` for actions of a
            dependent plan after one that was not done).
    """

    outcomes: tuple[Outcome, ...] = ()

    def done(self, kind: type[Action] | None = None) -> tuple[Action, ...]:
        """Actions carried out (``"done"``), of ``kind`` when given (``Bind``/``Evict``/
        ``Resize``)."""
        return tuple(o.action for o in self.outcomes if o.status == OutcomeStatus.DONE
                     and (kind is None or isinstance(o.action, kind)))

    @property
    def bound(self) -> tuple[Bind, ...]:
        """The binds carried out."""
        return tuple(a for a in self.done(Bind) if isinstance(a, Bind))

    @property
    def evicted(self) -> tuple[str, ...]:
        """Keys of the pods evicted."""
        return tuple(a.pod for a in self.done(Evict) if isinstance(a, Evict))

    @property
    def resized(self) -> tuple[Resize, ...]:
        """The resizes carried out."""
        return tuple(a for a in self.done(Resize) if isinstance(a, Resize))

    @property
    def complete(self) -> bool:
        """True when every action was done (or would be, in dry-run)."""
        return all(o.status in _APPLIED for o in self.outcomes)

    def tally(self) -> Counter[tuple[str, str]]:
        """``(action type name, status value)`` -> outcomes (the operator's
        ``cohabit_actions_total{action,status}`` labels)."""
        return Counter((type(o.action).__name__, str(o.status.value)) for o in self.outcomes)


class OutcomeRecorder(Protocol):
    """Where a caller records what a plan's execution did (metrics, Events, counts)."""

    def record(self, execution: Execution) -> None:
        """Take note of ``execution`` (called once per :func:`execute_plan`)."""
        ...


class OutcomeTally:
    """An :class:`OutcomeRecorder` that counts outcomes by ``(action type, status)`` over
    every execution it is given (the simulator's migrations are its ``("Evict", "done")``).
    """

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.executions = 0

    def record(self, execution: Execution) -> None:
        self.counts.update(execution.tally())
        self.executions += 1

    def count(self, action: str, status: str = "done") -> int:
        """Outcomes of action type ``action`` (``"Bind"``, ``"Evict"``, ``"Resize"``) with
        ``status``."""
        return self.counts[(action, status)]


def execute_plan(
    actions: Sequence[Action],
    actuator: Actuator,
    *,
    limits: EvictionLimits | None = None,
    dependent: bool = False,
    recorders: Iterable[OutcomeRecorder] = (),
) -> Execution:
    """Carry ``actions`` out through ``actuator`` and record the outcomes.

    Args:
        actions: the plan's actions, in the order the actuator should see them.
        actuator: carries them out (:class:`~cohabit.actuator.Actuator`).
        limits: eviction limits for this call (None: the actuator's own).
        dependent: each action needs the ones before it (a rebinding move: the evictions
            make the room the binds use). They are sent one at a time; after the first that
            is not ``"done"``, the rest are ``"skipped"`` without reaching the actuator.
            False (independent actions): one ``apply`` call, so the actuator may batch.
        recorders: each gets the :class:`Execution` once, after the actuator answered.

    Returns:
        :class:`Execution` with one outcome per action (none and no actuator call for an
        empty plan).

    Raises:
        Whatever the actuator raises (e.g. the simulator's ``OverCommitError`` for a bind
        that does not fit: a placement bug); recorders are then not called.
    """
    if not actions:
        return Execution()
    outcomes = (_apply_in_turn(actions, actuator, limits) if dependent
                else _apply(actions, actuator, limits))
    execution = Execution(tuple(outcomes))
    for recorder in recorders:
        recorder.record(execution)
    return execution


def _apply(actions: Sequence[Action], actuator: Actuator, limits: EvictionLimits | None
           ) -> list[Outcome]:
    """One ``apply`` call; an outcome the actuator did not give becomes ``"failed"``."""
    outcomes = (actuator.apply(actions) if limits is None
                else actuator.apply(actions, limits=limits))
    if len(outcomes) == len(actions):
        return list(outcomes)
    return [outcomes[i] if i < len(outcomes) else
            Outcome(a, OutcomeStatus.FAILED, "the actuator gave no outcome for this action")
            for i, a in enumerate(actions)]


def _apply_in_turn(actions: Sequence[Action], actuator: Actuator,
                   limits: EvictionLimits | None) -> list[Outcome]:
    """One action at a time while each is ``"done"``; the rest ``"skipped"``."""
    outcomes: list[Outcome] = []
    for k, action in enumerate(actions):
        outcome = _apply([action], actuator, limits)[0]
        outcomes.append(outcome)
        if outcome.status != OutcomeStatus.DONE:
            why = (f"not carried out: it depends on {type(action).__name__} "
                   f"{_subject(action)}, which was {outcome.status.value}")
            outcomes.extend(Outcome(a, OutcomeStatus.SKIPPED, why) for a in actions[k + 1:])
            break
    return outcomes


def _subject(action: Action) -> str:
    return action.workload if isinstance(action, Resize) else action.pod
