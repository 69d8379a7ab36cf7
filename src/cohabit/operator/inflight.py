"""Binds decided but not yet visible in a listed snapshot: kube-scheduler's "assumed pods".

The scheduling pass lists the cluster and sends its binds *outside* the runtime lock (network
I/O under a lock would stall every other pass when the API server is slow). Only planning
runs under the lock. So that two passes (two policies, or a pass racing its successor) never
place pods onto the same free capacity, a pass records the binds it decided here before it
releases the lock (:meth:`InflightBinds.assume`), and every later plan overlays them on its
snapshot (:meth:`InflightBinds.overlay`) while they are in flight, or finished after that
snapshot's list began (the list may predate them). A failed bind is forgotten at once.

After kube-scheduler's scheduling cache (``AssumePod`` / ``FinishBinding`` / ``ForgetPod``,
kubernetes ``pkg/scheduler/internal/cache``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from cohabit.model import Bind, GpuDevice, Node, Outcome, OutcomeStatus, Pod, Snapshot

__all__ = ["InflightBinds"]


@dataclass
class _Assumed:
    pod: Pod
    bind: Bind
    finished_at: float | None = None


class InflightBinds:
    """Assumed binds, thread-safe.

    Args:
        keep_s: seconds a finished bind stays overlaid on snapshots listed before it
            finished (longer than any list call can take: a few request timeouts).
        clock: monotonic seconds (injected by tests).
    """

    def __init__(self, keep_s: float = 120.0, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.keep_s = keep_s
        self.clock = clock
        self._assumed: dict[str, _Assumed] = {}
        self._lock = threading.Lock()

    def mark(self) -> float:
        """The time a snapshot's list begins (pass it to :meth:`overlay`)."""
        return self.clock()

    def assume(self, binds: Iterable[Bind], pods: Mapping[str, Pod]) -> None:
        """Record ``binds`` (their pods, by key, from the planned snapshot) as in flight."""
        with self._lock:
            for b in binds:
                if b.pod in pods:
                    self._assumed[b.pod] = _Assumed(pods[b.pod], b)

    def finish(self, outcomes: Iterable[Outcome]) -> None:
        """Bind outcomes are in: ``done`` ones stay overlaid for :attr:`keep_s` (until every
        snapshot listed before them is out of use), the others are forgotten."""
        now = self.clock()
        with self._lock:
            for o in outcomes:
                if not isinstance(o.action, Bind):
                    continue
                entry = self._assumed.get(o.action.pod)
                if entry is None or entry.bind != o.action:
                    continue
                if o.status == OutcomeStatus.DONE:
                    entry.finished_at = now
                else:
                    del self._assumed[o.action.pod]
            for key in [k for k, e in self._assumed.items()
                        if e.finished_at is not None and now - e.finished_at > self.keep_s]:
                del self._assumed[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._assumed)

    def overlay(self, snapshot: Snapshot, listed_at: float) -> Snapshot:
        """``snapshot`` with the assumed binds it cannot show yet: pods pending in it (or
        absent: created after its list) become bound to their assumed node and GPUs, and
        that node's free CPU, memory and GPU share shrink by their requests."""
        with self._lock:
            active = [e for e in self._assumed.values()
                      if e.finished_at is None or e.finished_at >= listed_at]
        if not active:
            return snapshot
        pods = {p.key: p for p in snapshot.pods}
        nodes = {n.name: n for n in snapshot.nodes}
        for e in active:
            seen = pods.get(e.pod.key)
            if (seen is not None and seen.node is not None) or e.bind.node not in nodes:
                continue  # the list shows it bound already, or the node is gone
            base = seen if seen is not None else e.pod
            pods[base.key] = replace(base, node=e.bind.node, gpu_indices=e.bind.gpu_indices)
            nodes[e.bind.node] = _take(nodes[e.bind.node], base, e.bind.gpu_indices)
        return Snapshot(snapshot.time, tuple(nodes[n.name] for n in snapshot.nodes),
                        tuple(pods.values()))


def _take(node: Node, pod: Pod, gpu_indices: tuple[int, ...]) -> Node:
    """``node`` with ``pod``'s requests taken from its free share."""
    gpus = tuple(GpuDevice(g.index, g.model, max(0, g.milli_free - pod.gpu_milli),
                           g.memory_mib) if g.index in gpu_indices else g for g in node.gpus)
    return replace(node, cpu_free_milli=node.cpu_free_milli - pod.cpu_milli,
                   memory_free_mib=node.memory_free_mib - pod.memory_mib, gpus=gpus)
