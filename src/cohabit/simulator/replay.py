"""``--mode replay``: the trace in time, with arrivals, departures and a pending queue.

Each pod arrives at ``creation_time`` and, once placed, leaves at ``deletion_time`` (None:
it stays). An arriving pod goes through :func:`cohabit.engine.scheduling.schedule_pod`; if
no node fits it waits in a FIFO pending queue. After the departures of one instant the
queue is retried in order. A pending pod is only retried when it fits one of the nodes that
just freed resources: it fit nowhere at its last attempt and every other node has since only
lost room, so this is exact and keeps long queues cheap. A pod whose ``deletion_time``
passes while it is still pending leaves the queue unplaced.

Events of the same instant: departures first, then arrivals in name order. The seed fixes
the node tie-break order (as in ``--mode fgd``) and the ``random`` policy's draws.

Reported: a time series (every ``sample_every_s`` of trace time) of running, pending and
unschedulable pods (pending pods that would not fit even an empty node) and of GPU, CPU and
memory allocation and GPU fragmentation; per QoS class the p50/p99 of pending time (placed
pods; ``pods`` counts every pod of the class) and the pods never placed.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Sequence

import numpy as np
import pandas as pd

from cohabit.engine.scheduling import schedule_pod
from cohabit.model import Node, Pod
from cohabit.placement import ClusterState, cluster_frag, typical_pods
from cohabit.simulator.cluster import SimulatedCluster, check_run, seed_tiebreak
from cohabit.simulator.results import PENDING_COLUMNS, REPLAY_SERIES_COLUMNS, ReplayRunResult

__all__ = ["run_replay"]

_DEPART, _ARRIVE = 0, 1


def run_replay(
    nodes: list[Node],
    pods: Sequence[Pod],
    *,
    policy: str,
    seed: int,
    workload: str = "custom",
    sample_every_s: float = 3600.0,
) -> ReplayRunResult:
    """Replay ``pods`` in trace time on ``nodes`` (see the module docstring).

    Args:
        nodes: the cluster, fully free.
        pods: pods with ``creation_time`` (and ``deletion_time`` or None), seconds.
        policy: a key of :data:`cohabit.placement.POLICIES`.
        seed: fixes the node tie-break order and the ``random`` policy.
        workload: name for the result frames.
        sample_every_s: series sampling period in trace seconds (> 0).

    Returns:
        :class:`~cohabit.simulator.results.ReplayRunResult`; ``extra`` holds ``placed``,
        ``deleted_while_pending``, ``events`` and ``retries``.

    Raises:
        ValueError: unknown policy, empty pod list, ``sample_every_s <= 0``, a pod whose
            ``deletion_time`` is before its ``creation_time``.
    """
    _check_arguments(pods, policy, sample_every_s)
    t0 = time.perf_counter()
    replay = _Replay(nodes, pods, policy=policy, seed=seed, workload=workload)
    replay.run(sample_every_s)
    return ReplayRunResult(
        series=pd.DataFrame(replay.series, columns=list(REPLAY_SERIES_COLUMNS)),
        pending=pd.DataFrame(replay.pending_rows(), columns=list(PENDING_COLUMNS)),
        never_placed=len(replay.pending),
        wall_s=time.perf_counter() - t0,
        extra={
            "placed": float(len(replay.placed_at)),
            "deleted_while_pending": float(replay.deleted_pending),
            "events": float(replay.n_events),
            "retries": float(replay.retries),
        },
    )


def _check_arguments(pods: Sequence[Pod], policy: str, sample_every_s: float) -> None:
    """Raise ValueError for an unknown policy, no pods or a period <= 0."""
    check_run(policy, pods, "run_replay")
    if sample_every_s <= 0:
        raise ValueError("sample_every_s must be > 0")


def _seeded_cluster(nodes: list[Node], pods: Sequence[Pod], seed: int) -> SimulatedCluster:
    """A free simulated cluster whose node tie-break order is a permutation drawn from
    ``seed`` (over the nodes in name order)."""
    cluster = SimulatedCluster(nodes, typical=typical_pods(pods))
    seed_tiebreak(cluster.state, np.random.default_rng(seed))
    return cluster


def _arrivals(pods: Sequence[Pod]) -> list[tuple[float, int, str, int]]:
    """The arrival events ``(time, _ARRIVE, name, index)`` as a heap.

    Raises:
        ValueError: a pod's ``deletion_time`` is before its ``creation_time``.
    """
    events = []
    for k, p in enumerate(pods):
        if p.deletion_time is not None and p.deletion_time < p.creation_time:
            raise ValueError(f"pod {p.key}: deletion_time before creation_time")
        events.append((float(p.creation_time), _ARRIVE, p.name, k))
    heapq.heapify(events)
    return events


class _Replay:
    """The state of one replay: the event heap, the pending queue, the samples."""

    def __init__(
        self, nodes: list[Node], pods: Sequence[Pod], *, policy: str, seed: int, workload: str
    ) -> None:
        self.pods, self.policy, self.seed, self.workload = pods, policy, seed, workload
        self.cluster = _seeded_cluster(nodes, pods, seed)
        self.state = self.cluster.state
        self.policy_rng = np.random.default_rng([seed, 1])
        empty = ClusterState.from_nodes(nodes)
        self.reqs = [self.state.request(p) for p in pods]
        self.never_fits = [empty.feasible(r).size == 0 for r in self.reqs]
        self.events = _arrivals(pods)
        self.placed_at: dict[int, float] = {}
        self.pending: deque[int] = deque()
        self.pending_set: set[int] = set()
        self.dep_scheduled: set[int] = set()
        self.deleted_pending = 0
        self.retries = 0
        self.n_events = 0
        self.series: list[tuple] = []
        self.cap = self.state.totals()

    def run(self, sample_every_s: float) -> None:
        """Process every event; sample every ``sample_every_s`` and once at the end."""
        next_sample = self.events[0][0]
        now = next_sample
        while self.events:
            now = self.events[0][0]
            while next_sample < now:
                self.sample(next_sample)
                next_sample += sample_every_s
            freed, arrivals = self.pop_instant(now)
            if freed and self.pending:
                self.retry_pending(freed, now)
            for k in arrivals:
                self.admit(k, now)
        self.sample(max(next_sample, now))

    def pop_instant(self, now: float) -> tuple[list[int], list[int]]:
        """Pop every event at ``now``: departures leave (or leave the queue); returns the
        freed node indices and the arriving pods."""
        freed: list[int] = []
        arrivals: list[int] = []
        while self.events and self.events[0][0] == now:
            _, kind, _, k = heapq.heappop(self.events)
            self.n_events += 1
            if kind != _DEPART:
                arrivals.append(k)
            elif k in self.pending_set:  # deleted before it was ever placed
                self.pending_set.discard(k)
                self.pending.remove(k)
                self.deleted_pending += 1
            elif (where := self.state.placement_of(self.pods[k])) is not None:
                freed.append(self.state.index[where[0]])
                self.cluster.depart(self.pods[k])
        return freed, arrivals

    def retry_pending(self, freed: list[int], now: float) -> None:
        """Retry, in queue order, the pending pods that fit one of the ``freed`` nodes."""
        keep: deque[int] = deque()
        freed_nodes = np.array(freed, np.int64)
        for k in self.pending:
            if self.state.feasible(self.reqs[k], among=freed_nodes).size:
                self.retries += 1
                if self.try_place(k, now):
                    self.pending_set.discard(k)
                    continue
            keep.append(k)
        self.pending = keep

    def admit(self, k: int, now: float) -> None:
        """Place arriving pod ``k`` or queue it (until its deletion time, if any)."""
        if self.try_place(k, now):
            return
        self.pending.append(k)
        self.pending_set.add(k)
        dt = self.pods[k].deletion_time
        if dt is not None:  # leave the queue at deletion time if still pending
            self.dep_scheduled.add(k)
            heapq.heappush(self.events, (float(dt), _DEPART, self.pods[k].name, k))

    def try_place(self, k: int, now: float) -> bool:
        """Schedule pod ``k``; when bound, record the time and push its departure."""
        pod = self.pods[k]
        res = schedule_pod(
            self.state, pod, policy=self.policy, rng=self.policy_rng, actuator=self.cluster
        )
        if res.bind is None:
            return False
        self.placed_at[k] = now
        if pod.deletion_time is not None and k not in self.dep_scheduled:
            self.dep_scheduled.add(k)
            heapq.heappush(self.events, (float(pod.deletion_time), _DEPART, pod.name, k))
        return True

    def sample(self, now: float) -> None:
        """Append one :data:`REPLAY_SERIES_COLUMNS` row for trace time ``now``."""
        tot = self.state.totals()
        cap = self.cap
        frag = cluster_frag(self.state)
        unsched = sum(1 for k in self.pending if self.never_fits[k])
        self.series.append((
            self.workload, self.policy, self.seed, now, len(self.state.bound),
            len(self.pending), unsched,
            100.0 * tot["gpu_alloc"] / cap["gpu_milli"] if cap["gpu_milli"] else 0.0,
            frag.ratio_pct,
            100.0 * tot["cpu_alloc"] / cap["cpu"] if cap["cpu"] else 0.0,
            100.0 * tot["mem_alloc"] / cap["mem"] if cap["mem"] else 0.0,
        ))

    def pending_rows(self) -> list[tuple]:
        """:data:`PENDING_COLUMNS` rows: per QoS class, pods and p50/p99 pending time of the
        placed ones (NaN when none was placed)."""
        pods = self.pods
        rows = []
        qos_of = np.array([p.qos.value for p in pods])
        wait = np.array([self.placed_at[k] - pods[k].creation_time if k in self.placed_at
                         else np.nan for k in range(len(pods))])
        for q in sorted(set(qos_of.tolist())):
            sel = qos_of == q
            w = wait[sel]
            w = w[~np.isnan(w)]
            p50 = float(np.percentile(w, 50)) if w.size else float("nan")
            p99 = float(np.percentile(w, 99)) if w.size else float("nan")
            rows.append((self.workload, self.policy, self.seed, q, int(sel.sum()), p50, p99))
        return rows
