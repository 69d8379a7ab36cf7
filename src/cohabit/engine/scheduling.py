"""One scheduling cycle for one pod: the single place where a pod gets placed.

Both the offline simulator (:mod:`cohabit.simulator.fgd`, :mod:`cohabit.simulator.replay`)
and the operator go through :func:`schedule_pod`: placement chooses (filter -> score ->
pick), the engine step (:func:`cohabit.engine.execute.execute_plan`) has the actuator carry
out the ``Bind`` (the simulator's in-memory cluster or the Kubernetes binding API), and the
outcome comes back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from cohabit.actuator import Actuator
from cohabit.engine.execute import OutcomeRecorder, execute_plan
from cohabit.model import Bind, Outcome, OutcomeStatus, Pod
from cohabit.placement import ClusterState, select

__all__ = ["ScheduleResult", "schedule_pod"]


@dataclass(frozen=True, slots=True)
class ScheduleResult:
    """What one scheduling cycle did.

    Attributes:
        bind: the chosen placement, or None when no node fits (the pod stays pending).
        outcome: the actuator's outcome for ``bind`` (None without a bind; ``"done"`` when
            the bind was applied to the state directly).
    """

    bind: Bind | None
    outcome: Outcome | None

    @property
    def placed(self) -> bool:
        """True when the pod is now bound (or would be, in dry-run)."""
        return self.outcome is not None and self.outcome.status in (OutcomeStatus.DONE,
                                                                    OutcomeStatus.DRY_RUN)


def schedule_pod(
    state: ClusterState,
    pod: Pod,
    *,
    policy: str,
    rng: np.random.Generator | None = None,
    actuator: Actuator | None = None,
    recorders: Iterable[OutcomeRecorder] = (),
) -> ScheduleResult:
    """Place one pending pod.

    Args:
        state: the placement view of the cluster.
        pod: the pending pod.
        policy: a key of :data:`cohabit.placement.POLICIES`.
        rng: random generator (needed by the ``random`` policy).
        actuator: carries out the bind and owns the resulting state change (the simulator's
            :class:`~cohabit.simulator.cluster.SimulatedCluster` applies it to ``state``;
            the operator's actuator calls the binding API), through
            :func:`~cohabit.engine.execute.execute_plan`. When None, the bind is applied to
            ``state`` here (a plan being built, nothing carried out).
        recorders: given the execution of the bind (see ``execute_plan``).

    Returns:
        :class:`ScheduleResult`.

    Raises:
        ValueError: unknown policy or bad pod (see :func:`cohabit.placement.select`);
            :class:`~cohabit.placement.OverCommitError` if applying the bind would
            over-commit (a bug, never silently ignored).
    """
    bind = select(state, pod, policy, rng=rng)
    if bind is None:
        return ScheduleResult(None, None)
    if actuator is None:
        state.apply(bind, pod)
        return ScheduleResult(bind, Outcome(bind, OutcomeStatus.DONE))
    execution = execute_plan([bind], actuator, recorders=recorders)
    return ScheduleResult(bind, execution.outcomes[0])
