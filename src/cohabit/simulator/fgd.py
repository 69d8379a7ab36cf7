"""``--mode fgd``: the FGD paper's experiment (Weng et al., USENIX ATC 2023, Section 6).

The method of the paper's artifact (hkust-adsl/kubernetes-scheduler-simulator,
``pkg/simulator/core.go`` ``Simulate`` and ``pkg/simulator/simulator.go``):

1. the typical-pod distribution comes from the original pod list;
2. the pod list is sorted by name and shuffled with the seed (``SortClusterPods``);
3. inflation (``tuneUpPods``): pods drawn uniformly with replacement from the name-sorted
   originals are appended until the next draw's per-GPU milli would push the total GPU
   request past ``tune`` x cluster GPU milli (a list already above the target is thinned by
   removing random pods, ``tuneDownPods``);
4. node names get a random prefix from a seeded permutation (``syncClusterResourceList``),
   so score ties, which go to the smallest name, break randomly but consistently;
5. pods are scheduled one at a time in that order, with no departures; a pod that fits
   nowhere fails and stays failed; every arrival adds its GPU request to the arrived demand.

Reporting (``experiments/analysis/merge_alloc_discrete.py``): after every arrival the
cluster's GPU allocation is logged; the value at X% arrived is the mean over the arrivals
whose arrived percentage rounds to X (half to even, as Python's ``round``), or, when there is
none, those within one point. numpy's generator replaces Go's ``math/rand``, so single seeds
differ from the paper's while the means over seeds agree (see ``docs/benchmarks.md``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cohabit.config.placement import ScoreWeights
from cohabit.engine.rebind import defragment, make_room
from cohabit.engine.scheduling import schedule_pod
from cohabit.model import MILLI_PER_GPU, Node, Pod
from cohabit.placement import TypicalPods, typical_pods
from cohabit.placement.parts import frag_model
from cohabit.simulator.cluster import (
    SimulatedCluster,
    check_run,
    scoring_cluster,
    seed_tiebreak,
)
from cohabit.simulator.loaders import raw_gpu_spec_text as raw_spec_text
from cohabit.simulator.results import FGD_CURVE_COLUMNS, FgdRunResult

__all__ = [
    "aggregate_curve",
    "inflate_workload",
    "raw_spec_text",
    "run_fgd",
    "seed_tiebreak",
    "trace_typical_pods",
]


def trace_typical_pods(pods: Sequence[Pod], path: str | Path) -> TypicalPods:
    """:func:`~cohabit.placement.typical_pods` of ``pods`` loaded from the pod list at
    ``path``, grouped by the raw ``gpu_spec`` text as the paper does (pass the result as
    ``run_fgd(..., typical=...)``).

    Raises:
        ValueError: ``path`` does not have one row per pod.
    """
    return typical_pods(pods, spec_text=raw_spec_text(path))


def inflate_workload(
    pods: Sequence[Pod], capacity_milli: int, tune: float, rng: np.random.Generator
) -> list[Pod]:
    """Arrival order of the FGD experiment: name-sort, shuffle, then inflate to ``tune``.

    Args:
        pods: the original pod list.
        capacity_milli: the cluster's GPU milli.
        tune: target total GPU request as a multiple of ``capacity_milli`` (<= 0: no tuning).
        rng: the run's generator (consumed: shuffle, then inflation draws).

    Returns:
        The arrivals; inflation clones are named ``<name>-tuned-<i>``.
    """
    originals = sorted(pods, key=lambda p: p.name)
    order = rng.permutation(len(originals))
    arrivals = [originals[i] for i in order]
    if tune <= 0:
        return arrivals
    target = tune * float(capacity_milli)
    total = sum(p.gpu_request_milli for p in arrivals)
    if total > target:
        while total > target and arrivals:
            p = arrivals.pop(int(rng.integers(len(arrivals))))
            total -= p.gpu_request_milli
    elif total < target:
        if not any(p.gpu_request_milli for p in originals):
            raise ValueError("cannot inflate a pod list that requests no GPU to a GPU target")
        n = len(originals)
        i = 0
        while True:
            p = originals[int(rng.integers(n))]
            if float(total + p.gpu_milli) > target:
                break
            total += p.gpu_request_milli
            arrivals.append(dataclasses.replace(p, name=f"{p.name}-tuned-{i}"))
            i += 1
    return arrivals


def aggregate_curve(log: pd.DataFrame, total_gpus: int, tune: float) -> pd.DataFrame:
    """Per-arrival log -> one row per 1% step of arrived GPU demand (the paper's rule).

    Args:
        log: columns ``arrived_milli, used_milli, frag_milli, idle_milli, cpu_alloc_pct,
            mem_alloc_pct, failed``, one row per arrival.
        total_gpus: GPUs of the cluster.
        tune: the run's tune (steps go to ``round(100 * tune)``).

    Returns:
        Columns ``arrived_gpu_demand_pct`` and the metric columns of
        :data:`~cohabit.simulator.results.FGD_CURVE_COLUMNS`; a step without any arrival
        within one point is NaN (failed pods: the last known count).
    """
    arrive = np.round(log["arrived_milli"].to_numpy(np.float64) / total_gpus / 10)
    alloc = np.round(log["used_milli"].to_numpy(np.float64) / total_gpus / 10, 2)
    cap = float(total_gpus * MILLI_PER_GPU)
    frag = log["frag_milli"].to_numpy(np.float64)
    idle = log["idle_milli"].to_numpy(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        frag_ratio = np.where(idle > 0, 100.0 * frag / idle, 0.0)
    frag_amount = 100.0 * frag / cap
    cpu = log["cpu_alloc_pct"].to_numpy(np.float64)
    mem = log["mem_alloc_pct"].to_numpy(np.float64)
    failed = log["failed"].to_numpy(np.int64)
    rows = []
    last_failed = 0
    for x in range(0, int(round(100 * tune)) + 1):
        sel = arrive == x
        if not sel.any():
            sel = (arrive >= x - 1) & (arrive <= x + 1)
        if sel.any():
            last_failed = int(failed[sel].max())
            rows.append((x, alloc[sel].mean(), frag_ratio[sel].mean(),
                         frag_amount[sel].mean(), cpu[sel].mean(), mem[sel].mean(),
                         last_failed))
        else:
            rows.append((x, np.nan, np.nan, np.nan, np.nan, np.nan, last_failed))
    return pd.DataFrame(rows, columns=list(FGD_CURVE_COLUMNS[4:]))


DEFRAG_EVERY_PCT = 1.0
"""``--rebind``: a defragmentation pass per this much arrived GPU demand (% of capacity),
the curve's step."""


def run_fgd(
    nodes: list[Node],
    pods: list[Pod],
    *,
    policy: str,
    seed: int,
    tune: float = 1.3,
    workload: str = "custom",
    typical: TypicalPods | None = None,
    weights: ScoreWeights | None = None,
    rebind: bool = False,
    max_victims: int = 2,
    defrag_every_pct: float | None = DEFRAG_EVERY_PCT,
) -> FgdRunResult:
    """One ``--mode fgd`` run (see the module docstring).

    Args:
        nodes: the cluster (fully free).
        pods: the original pod list (typical pods and inflation draw from it).
        policy: a key of :data:`cohabit.placement.POLICIES`.
        seed: seeds the shuffle, the inflation, the node tie-break order and ``random``.
        tune: target GPU request as a multiple of cluster GPU capacity.
        workload: name written into the curve's ``workload`` column.
        typical: the typical-pod distribution (default: :func:`typical_pods` of ``pods``).
        weights: the ``cohabit`` score's weights (default :class:`ScoreWeights`).
        rebind: simulate-then-rebind: a pod that fits nowhere gets a move that makes room
            for it (:func:`cohabit.engine.rebind.make_room`, at most ``max_victims`` pods
            moved per failing pod), and every ``defrag_every_pct`` % of the cluster's GPU
            capacity arrived a defragmentation pass
            (:func:`cohabit.engine.rebind.defragment`); moves count as migrations. Without
            it no pod ever moves.
        max_victims: pods moved per failing pod (per level of a chain).
        defrag_every_pct: arrived GPU demand between defragmentation passes, % of the
            cluster's GPU milli (None: no pass; only with ``rebind``).

    Returns:
        :class:`~cohabit.simulator.results.FgdRunResult` with one curve row per 1% step;
        ``extra`` holds ``migrations`` and ``moves`` (0 without ``rebind``).

    Raises:
        ValueError: unknown policy, empty pod list, a cluster without GPUs.
    """
    check_run(policy, pods, "run_fgd")
    t0 = time.perf_counter()
    cluster = scoring_cluster(nodes, pods, typical, weights)
    total_gpus = int(cluster.state.gpu_cnt.sum())
    if total_gpus == 0:
        raise ValueError("run_fgd needs a cluster with GPUs")
    rng = np.random.default_rng(seed)
    arrivals = inflate_workload(pods, total_gpus * MILLI_PER_GPU, tune, rng)
    seed_tiebreak(cluster.state, rng)
    run = _FgdRun(cluster, policy, np.random.default_rng([seed, 1]), rebind, max_victims,
                  defrag_every_pct if rebind else None)
    log = run.place_all(arrivals)
    curve = _labelled(aggregate_curve(log, total_gpus, tune), workload, policy, seed, tune)
    return FgdRunResult(curve=curve, arrivals=len(arrivals), failed_pods=run.failed,
                        wall_s=time.perf_counter() - t0,
                        extra={"migrations": float(run.migrations), "moves": float(run.moves)})


_LOG_COLUMNS = ["arrived_milli", "used_milli", "frag_milli", "idle_milli",
                "cpu_alloc_pct", "mem_alloc_pct", "failed"]


class _FgdRun:
    """One ``--mode fgd`` pass: places the arrivals in order and logs the cluster after each
    (the fragmentation sum is kept up to date on the nodes each placement touched)."""

    def __init__(self, cluster: SimulatedCluster, policy: str, rng: np.random.Generator,
                 rebind: bool, max_victims: int, defrag_every_pct: float | None) -> None:
        self.cluster, self.state = cluster, cluster.state
        self.policy, self.rng = policy, rng
        self.rebind, self.max_victims = rebind, max_victims
        self.defrag_step = (None if defrag_every_pct is None
                            else defrag_every_pct / 100.0 * int(self.state.gpu_cnt.sum())
                            * MILLI_PER_GPU)
        self.fm = frag_model(self.state)
        keys = self.state.state_keys
        self.node_frag = np.array([self.fm.frag(keys[s]) for s in self.state.state_id.tolist()])
        self.frag_sum = float(self.node_frag.sum())
        self.cap = int(self.state.gpu_cnt.sum()) * MILLI_PER_GPU
        self.cpu_cap = float(self.state.cpu_cap.sum())
        self.mem_cap = float(self.state.mem_cap.sum())
        self.cpu_used = self.mem_used = self.gpu_used = 0
        self.failed = self.migrations = self.moves = 0
        self.hopeless: set[tuple] = set()  # requests that found no move on this state

    def place_all(self, arrivals: Sequence[Pod]) -> pd.DataFrame:
        """Place every arrival; one :data:`_LOG_COLUMNS` row per arrival."""
        log = np.zeros((len(arrivals), 7), np.float64)
        arrived = 0
        step = self.defrag_step
        next_defrag = math.inf if step is None else step
        for k, pod in enumerate(arrivals):
            if step is not None and arrived >= next_defrag:
                self.defragment()
                next_defrag += step
            arrived += pod.gpu_request_milli
            touched = self.place(pod)
            if touched:
                self.account(pod, touched)
            else:
                self.failed += 1
            log[k] = self.row(arrived)
        return pd.DataFrame(log, columns=_LOG_COLUMNS)

    def place(self, pod: Pod) -> list[int]:
        """Schedule ``pod`` (with ``rebind``: else make room for it); the indices of the
        nodes that changed (empty: the pod failed)."""
        state = self.state
        res = schedule_pod(state, pod, policy=self.policy, rng=self.rng, actuator=self.cluster)
        if res.bind is not None:
            self.hopeless.clear()
            return [state.index[res.bind.node]]
        if not self.rebind:
            return []
        shape = _request_shape(pod)
        if shape in self.hopeless:
            return []  # the same request found no move and nothing has changed since
        move = make_room(state, pod, self.policy, rng=self.rng, max_victims=self.max_victims)
        if move is None:
            if self.policy != "random":  # others decide the same on the same state
                self.hopeless.add(shape)
            return []
        self.migrations += len(move.victims)
        self.moves += 1
        self.hopeless.clear()
        return self.cluster.apply_move(move, pod)

    def defragment(self) -> None:
        """One defragmentation pass: apply its moves, count them, update fragmentation."""
        moves = defragment(self.state, self.policy, rng=self.rng)
        for move in moves:
            self.refrag(self.cluster.apply_move(move, None))
            self.migrations += len(move.victims)
            self.moves += 1
        if moves:
            self.hopeless.clear()

    def refrag(self, touched: Sequence[int]) -> None:
        """Update the fragmentation of the ``touched`` nodes."""
        keys = self.state.state_keys
        for i in set(touched):
            new = self.fm.frag(keys[int(self.state.state_id[i])])
            self.frag_sum += new - self.node_frag[i]
            self.node_frag[i] = new

    def account(self, pod: Pod, touched: list[int]) -> None:
        """Update the fragmentation of the touched nodes and the allocation totals."""
        self.refrag(touched)
        self.cpu_used += pod.cpu_milli
        self.mem_used += pod.memory_mib
        self.gpu_used += pod.gpu_request_milli

    def row(self, arrived: int) -> tuple:
        """The log row after an arrival (see :data:`_LOG_COLUMNS`)."""
        return (arrived, self.gpu_used, self.frag_sum, self.cap - self.gpu_used,
                100.0 * self.cpu_used / self.cpu_cap, 100.0 * self.mem_used / self.mem_cap,
                self.failed)


def _request_shape(pod: Pod) -> tuple:
    """What placement and rebinding read of a pod: its requests and GPU models."""
    return (pod.cpu_milli, pod.memory_mib, pod.num_gpu, pod.gpu_milli, pod.gpu_spec)


def _labelled(curve: pd.DataFrame, workload: str, policy: str, seed: int,
              tune: float) -> pd.DataFrame:
    """``curve`` with its run's labels in front, in :data:`FGD_CURVE_COLUMNS` order."""
    curve.insert(0, "tune", float(tune))
    curve.insert(0, "seed", int(seed))
    curve.insert(0, "policy", policy)
    curve.insert(0, "workload", workload)
    return curve[list(FGD_CURVE_COLUMNS)]
