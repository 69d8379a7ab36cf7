"""The local-node actuator: carries out ``Resize`` actions on the cgroups of local processes,
as the kubelet applies a container's resources to its cgroup.

A ``Resize`` of workload ``w`` sets the CFS quota of ``w``'s cgroup to
``requests.cpu_milli`` per ``period_us`` and its memory limit to ``requests.memory_mib``
(requests = limits: a Guaranteed-QoS database). A ``Bind`` of workload ``w`` to a "node"
confines ``w``'s cgroup to that node's CPUs (its cpuset): on one machine, disjoint cpusets
stand for nodes. ``Evict`` is refused. Every resize outcome is kept in
:attr:`LocalCgroupActuator.history` with its time, so a closed loop can plot every resize.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from cohabit.actuator.base import EvictionLimits
from cohabit.cgroup import DEFAULT_CFS_PERIOD_US, Cgroup, CgroupError
from cohabit.model import Action, Bind, Outcome, OutcomeStatus, Resize

__all__ = ["AppliedResize", "LocalCgroupActuator"]


@dataclass(frozen=True)
class AppliedResize:
    """One resize the actuator carried out (or failed to): when, what, the outcome."""

    time: float
    workload: str
    cpu_milli: int
    memory_mib: int
    status: str
    reason: str


class LocalCgroupActuator:
    """:class:`~cohabit.actuator.Actuator` for workloads running in local cgroups.

    Args:
        groups: workload name -> its cgroup.
        nodes: node name -> CPUs of that "node" (e.g. ``{"node-a": "0", "node-b": "1"}``),
            for ``Bind``; the groups must have been made with a cpuset.
        period_us: CFS period for every quota (the kubelet's 100 ms by default).
        dry_run: report ``"dry-run"`` and change nothing.
        clock: seconds for :attr:`history` (default ``time.time``).
    """

    def __init__(self, groups: Mapping[str, Cgroup], *, nodes: Mapping[str, str] | None = None,
                 period_us: int = DEFAULT_CFS_PERIOD_US, dry_run: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        self.groups = dict(groups)
        self.nodes = dict(nodes or {})
        self.period_us = period_us
        self.dry_run = dry_run
        self.clock = clock
        self.history: list[AppliedResize] = []

    def apply(self, actions: Sequence[Action], limits: EvictionLimits | None = None
              ) -> list[Outcome]:
        """One outcome per action: ``done`` when the limits (or cpuset) were written,
        ``dry-run``, ``refused`` (an ``Evict``, an unknown workload or node) or ``failed``
        (the kernel refused, e.g. memory below what the group holds). ``limits`` are
        accepted for the :class:`~cohabit.actuator.base.Actuator` protocol and unused: this
        actuator never evicts."""
        return [self._bind(a) if isinstance(a, Bind) else self._one(a) for a in actions]

    def _bind(self, action: Bind) -> Outcome:
        group = self.groups.get(action.pod)
        cpus = self.nodes.get(action.node)
        if group is None or cpus is None:
            what = f"workload {action.pod!r}" if group is None else f"node {action.node!r}"
            return Outcome(action, OutcomeStatus.REFUSED, f"no local cgroup or cpuset for {what}")
        if self.dry_run:
            return Outcome(action, OutcomeStatus.DRY_RUN, "not applied (dry run)")
        try:
            group.set_cpuset(cpus)
        except CgroupError as exc:
            return Outcome(action, OutcomeStatus.FAILED, str(exc))
        return Outcome(action, OutcomeStatus.DONE,
                       f"cgroup {group.name} on CPUs {cpus} ({action.node})")

    def _one(self, action: Action) -> Outcome:
        if not isinstance(action, Resize):
            return Outcome(action, OutcomeStatus.REFUSED, "the local-node actuator cannot evict")
        group = self.groups.get(action.workload)
        if group is None:
            return Outcome(action, OutcomeStatus.REFUSED,
                           f"no local cgroup for {action.workload!r}")
        req = action.requests
        if self.dry_run:
            outcome = Outcome(action, OutcomeStatus.DRY_RUN, "not applied (dry run)")
        else:
            try:
                self._write(group, req.cpu_milli, req.memory_mib)
                outcome = Outcome(action, OutcomeStatus.DONE,
                                  f"cgroup {group.name}: {req.cpu_milli}m per "
                                  f"{self.period_us} us, {req.memory_mib} MiB")
            except (CgroupError, ValueError) as exc:
                outcome = Outcome(action, OutcomeStatus.FAILED, str(exc))
        self.history.append(AppliedResize(self.clock(), action.workload, req.cpu_milli,
                                          req.memory_mib, outcome.status, action.reason))
        return outcome

    def _write(self, group: Cgroup, cpu_milli: int, memory_mib: int) -> None:
        """Memory first: a shrink the kernel refuses (EBUSY) then fails the whole resize
        before the CPU quota changed. 0 in a field leaves that limit as it is."""
        if memory_mib > 0:
            group.set_memory(memory_mib)
        if cpu_milli > 0:
            group.set_cpu(cpu_milli, self.period_us)
