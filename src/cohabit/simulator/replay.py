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
from cohabit.placement import POLICIES, ClusterState, cluster_frag, typical_pods
from cohabit.simulator.cluster import SimulatedCluster
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
    if policy not in POLICIES:
        raise ValueError(f"unknown placement policy {policy!r}; known: {', '.join(POLICIES)}")
    if not pods:
        raise ValueError("run_replay needs a non-empty pod list")
    if sample_every_s <= 0:
        raise ValueError("sample_every_s must be > 0")
    t0 = time.perf_counter()
    cluster = SimulatedCluster(nodes, typical=typical_pods(pods))
    state = cluster.state
    rng = np.random.default_rng(seed)
    by_name = sorted(range(state.n_nodes), key=lambda i: state.names[i])
    prio = np.empty(state.n_nodes, np.int64)
    prio[by_name] = rng.permutation(state.n_nodes)
    state.set_priority(prio)
    policy_rng = np.random.default_rng([seed, 1])
    empty = ClusterState.from_nodes(nodes)

    reqs = [state.request(p) for p in pods]
    never_fits = [empty.feasible(r).size == 0 for r in reqs]
    events: list[tuple[float, int, str, int]] = []
    for k, p in enumerate(pods):
        if p.deletion_time is not None and p.deletion_time < p.creation_time:
            raise ValueError(f"pod {p.key}: deletion_time before creation_time")
        events.append((float(p.creation_time), _ARRIVE, p.name, k))
    heapq.heapify(events)

    placed_at: dict[int, float] = {}
    pending: deque[int] = deque()
    pending_set: set[int] = set()
    dep_scheduled: set[int] = set()
    deleted_pending = 0
    retries = 0
    n_events = 0
    series: list[tuple] = []
    t_first = events[0][0]
    next_sample = t_first
    cap = state.totals()

    def sample(now: float) -> None:
        tot = state.totals()
        frag = cluster_frag(state)
        unsched = sum(1 for k in pending if never_fits[k])
        series.append((
            workload, policy, seed, now, len(state.bound), len(pending), unsched,
            100.0 * tot["gpu_alloc"] / cap["gpu_milli"] if cap["gpu_milli"] else 0.0,
            frag.ratio_pct,
            100.0 * tot["cpu_alloc"] / cap["cpu"] if cap["cpu"] else 0.0,
            100.0 * tot["mem_alloc"] / cap["mem"] if cap["mem"] else 0.0,
        ))

    def try_place(k: int, now: float) -> bool:
        pod = pods[k]
        res = schedule_pod(state, pod, policy=policy, rng=policy_rng, actuator=cluster)
        if res.bind is None:
            return False
        placed_at[k] = now
        if pod.deletion_time is not None and k not in dep_scheduled:
            dep_scheduled.add(k)
            heapq.heappush(events, (float(pod.deletion_time), _DEPART, pod.name, k))
        return True

    while events:
        now = events[0][0]
        while next_sample < now:
            sample(next_sample)
            next_sample += sample_every_s
        freed: list[int] = []
        arrivals: list[int] = []
        while events and events[0][0] == now:
            _, kind, _, k = heapq.heappop(events)
            n_events += 1
            if kind == _DEPART:
                if k in pending_set:  # deleted before it was ever placed
                    pending_set.discard(k)
                    pending.remove(k)
                    deleted_pending += 1
                elif state.placement_of(pods[k]) is not None:
                    freed.append(state.index[state.placement_of(pods[k])[0]])
                    cluster.depart(pods[k])
            else:
                arrivals.append(k)
        if freed and pending:
            keep: deque[int] = deque()
            freed_nodes = np.array(freed, np.int64)
            for k in pending:
                if state.feasible(reqs[k], among=freed_nodes).size:
                    retries += 1
                    if try_place(k, now):
                        pending_set.discard(k)
                        continue
                keep.append(k)
            pending = keep
        for k in arrivals:
            if not try_place(k, now):
                pending.append(k)
                pending_set.add(k)
                dt = pods[k].deletion_time
                if dt is not None:  # leave the queue at deletion time if still pending
                    dep_scheduled.add(k)
                    heapq.heappush(events, (float(dt), _DEPART, pods[k].name, k))
    sample(max(next_sample, now))

    rows = []
    qos_of = np.array([p.qos.value for p in pods])
    wait = np.array([placed_at[k] - pods[k].creation_time if k in placed_at else np.nan
                     for k in range(len(pods))])
    for q in sorted(set(qos_of.tolist())):
        sel = qos_of == q
        w = wait[sel]
        w = w[~np.isnan(w)]
        p50 = float(np.percentile(w, 50)) if w.size else float("nan")
        p99 = float(np.percentile(w, 99)) if w.size else float("nan")
        rows.append((workload, policy, seed, q, int(sel.sum()), p50, p99))
    return ReplayRunResult(
        series=pd.DataFrame(series, columns=list(REPLAY_SERIES_COLUMNS)),
        pending=pd.DataFrame(rows, columns=list(PENDING_COLUMNS)),
        never_placed=len(pending),
        wall_s=time.perf_counter() - t0,
        extra={
            "placed": float(len(placed_at)),
            "deleted_while_pending": float(deleted_pending),
            "events": float(n_events),
            "retries": float(retries),
        },
    )
