"""``--mode replay --contention gavel``: the trace in time, on a cluster slice, with pods
that slow each other.

Set-up (documented in ``docs/benchmarks.md``, "Contended replay"):

* **slice**: every ``N``-th node of the cluster (``nodes[offset::N]``) with the whole pod
  list, ``N`` chosen so that peak GPU demand is 90-110 % of the slice's GPUs;
* **time compression** ``c``: arrivals at ``creation_time / c``, lifetimes unchanged, which
  raises concurrency (the full trace never has more than 66 GPUs busy);
* **workloads**: the seeded mapping of :mod:`cohabit.simulator.workloads` (class, Gavel job
  type, GenAI activity for LS pods);
* **contention**: :class:`~cohabit.simulator.contention.GavelContention`.

The loop advances in steps of ``step_s`` (60 s). At each step: pods that finished leave
(an LS pod at its trace lifetime after arrival, a batch pod when its work is done), queued
pods are retried in FIFO order, arrivals up to now are placed through
:func:`cohabit.engine.scheduling.schedule_pod` (after the policy's admission hook), and then
over the step every running pod gets its fraction ``f`` of solo speed:

* an **LS pod** violates its QoS in the step when ``f < qos_target`` (0.8 of solo, the
  target of :class:`~cohabit.config.placement.ScoreWeights`) while it is active (activity
  >= :data:`ACTIVE_MIN`); its normalised performance is its mean ``f`` over active steps;
* a **batch pod** advances its work by ``f * throttle * step``; when done, its completion
  time is interpolated inside the step (its resources are released at the next step). JCT
  = completion - arrival (queueing included); normalised performance = solo run time /
  actual run time. A batch step with ``f < qos_target`` counts as a BE violation interval;
* **unfairness** is the standard deviation of normalised performance over the GPU pods that
  ran (URSA, Zheng et al.: the spread of normalised performance across co-located
  workloads).

With ``guard`` (cohabit's runtime, as Koordinator's and PIMCloud's best-effort suppression),
an LS pod found below the target in one step gets the batch pods on its GPU throttled from
the next one on, just enough by the model's own prediction (:func:`_throttle`); it stays
protected while it is active, and the throttle lifts once it goes idle. With ``rebind``, a
pod that fits nowhere gets a simulate-then-rebind move
(:func:`cohabit.engine.rebind.make_room`) before it queues.

The replay ends ``horizon_s`` after the last arrival; pods still running are cut there
(batch pods count as unfinished).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
import pandas as pd

from cohabit.config.placement import ScoreWeights
from cohabit.engine.rebind import make_room
from cohabit.engine.scheduling import schedule_pod
from cohabit.model import MILLI_PER_GPU, InterferenceProfile, Node, Pod
from cohabit.placement import POLICIES, Slowdown
from cohabit.placement.usage import PodUsage
from cohabit.simulator.cluster import check_run, scoring_cluster, seed_tiebreak
from cohabit.simulator.contention import CONTENTION_MODELS, GavelContention
from cohabit.simulator.results import (
    CONTENDED_SERIES_COLUMNS,
    PENDING_COLUMNS,
    ReplayRunResult,
)
from cohabit.simulator.workloads import (
    GENAI_STEP_S,
    WorkloadMap,
    gavel_type_order,
    genai_duty_series,
    map_workloads,
)

__all__ = ["ACTIVE_MIN", "ContendedSetup", "build_setup", "run_contended"]

ACTIVE_MIN = 0.05
"""Activity below which an LS pod is idle in a step (no requests to be slow for)."""

STEP_S = 60.0
"""Default step of the contended replay, seconds."""

HORIZON_S = 2 * 86_400.0
"""Default time the replay runs after the last arrival, seconds."""

BUSY_DEMAND = 0.9
"""A step is *busy* when the GPU requests of running and queued pods reach this share of the
slice's GPUs; ``gpu_alloc_busy_pct`` averages allocation over busy steps only (where a
policy that leaves GPUs idle to avoid co-location would lose allocation)."""


def _series_buffer(series: Sequence[np.ndarray | None]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All LS series in one buffer: ``(buffer, offset[P], length[P])``, offset -1 for pods
    without a series (batch, always active)."""
    off = np.full(len(series), -1, np.int64)
    length = np.ones(len(series), np.int64)
    parts, at = [], 0
    for i, s in enumerate(series):
        if s is not None and len(s):
            off[i] = at
            length[i] = len(s)
            parts.append(s)
            at += len(s)
    buf = np.concatenate(parts) if parts else np.zeros(1)
    return buf, off, length


@dataclass(frozen=True)
class ContendedSetup:
    """Everything a contended run needs besides the policy and seed.

    Attributes:
        contention: the judge's contention model.
        wmap: the workload mapping (indexed like the pod list).
        profiles: Gavel type name -> probe profile (what placement is told).
        slowdown: placement's slowdown callable over those profiles (predicted).
        usages: pod key -> :class:`PodUsage` (history, mean, PP peak, class).
        compress: time compression ``c``.
        step_s, horizon_s: loop step and tail, seconds.
        weights: the ``cohabit`` score weights (``qos_target`` is also the judge's target).
    """

    contention: GavelContention
    wmap: WorkloadMap
    profiles: dict[str, InterferenceProfile]
    slowdown: Slowdown
    usages: dict[str, PodUsage]
    compress: float = 1.0
    step_s: float = STEP_S
    horizon_s: float = HORIZON_S
    weights: ScoreWeights = field(default_factory=ScoreWeights)


@dataclass
class _Run:
    """Mutable per-pod accounting (arrays indexed like the pod list)."""

    n: int
    placed_at: np.ndarray = field(init=False)
    done_at: np.ndarray = field(init=False)
    work: np.ndarray = field(init=False)
    throttle: np.ndarray = field(init=False)
    f_sum: np.ndarray = field(init=False)
    f_steps: np.ndarray = field(init=False)
    violations: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.placed_at = np.full(self.n, np.nan)
        self.done_at = np.full(self.n, np.nan)
        self.work = np.zeros(self.n)
        self.throttle = np.ones(self.n)
        self.f_sum = np.zeros(self.n)
        self.f_steps = np.zeros(self.n)
        self.violations = np.zeros(self.n, np.int64)


def run_contended(
    nodes: list[Node],
    pods: Sequence[Pod],
    setup: ContendedSetup,
    *,
    policy: str,
    seed: int,
    workload: str = "custom",
    guard: bool | None = None,
    rebind: bool = False,
) -> ReplayRunResult:
    """One contended replay (see the module docstring).

    Args:
        nodes: the slice, fully free.
        pods: the pod list (times in trace seconds; compressed here).
        setup: :class:`ContendedSetup` (mapping and models, built once per pod list).
        policy: placement policy name.
        seed: tie-break order and the ``random`` policy (the mapping has its own seed).
        workload: name for the result frames.
        guard: throttle batch pods next to an LS pod at risk (default: on for ``cohabit``).
        rebind: simulate-then-rebind for pods that fit nowhere (migrations counted).

    Returns:
        :class:`~cohabit.simulator.results.ReplayRunResult`: ``series`` with
        :data:`~cohabit.simulator.results.CONTENDED_SERIES_COLUMNS`, ``pending`` per class,
        and ``extra`` with the summary metrics (``gpu_alloc_pct``, ``ls_violation_intervals``,
        ``be_violation_intervals``, ``ls_active_intervals``, ``jct_mean_s``, ``jct_p99_s``,
        ``jct_slowdown_mean``, ``unfairness``, ``migrations``, ``unfinished``, ...).

    Raises:
        ValueError: unknown policy, empty pod list, a pod without times.
    """
    check_run(policy, pods, "run_contended")
    if guard is None:
        guard = policy == "cohabit"
    t_wall = time.perf_counter()
    plugin = POLICIES[policy]
    loop = _Loop(nodes, list(pods), setup, policy, seed, guard, rebind, plugin.admit)
    loop.run()
    return loop.result(workload, policy, seed, time.perf_counter() - t_wall)


def _lifetime(pod: Pod) -> float:
    """Seconds from creation to deletion; a replayed pod must have both.

    Raises:
        ValueError: the pod has no ``deletion_time``.
    """
    if pod.deletion_time is None:
        raise ValueError(f"pod {pod.key}: no deletion_time, so it cannot be replayed")
    return float(pod.deletion_time - pod.creation_time)


class _Loop:
    """The state of one contended replay (one method per step of the loop)."""

    def __init__(self, nodes: list[Node], pods: list[Pod], setup: ContendedSetup, policy: str,
                 seed: int, guard: bool, rebind: bool, admit) -> None:  # noqa: ANN001
        self.pods = pods
        self.setup = setup
        self.policy = policy
        self.guard = guard
        self.rebind = rebind
        self.admit = admit
        self._index: dict[str, int] | None = None  # pod key -> position, built on first move
        self.cluster = scoring_cluster(nodes, pods, weights=setup.weights)
        self.state = self.cluster.state
        seed_tiebreak(self.state, np.random.default_rng(seed))
        self.rng = np.random.default_rng([seed, 1])
        self._inform_placement()
        n = len(pods)
        c = setup.compress
        self.arrival = np.array([p.creation_time / c for p in pods])
        self.life = np.array([_lifetime(p) for p in pods], dtype=np.float64)
        if (self.life < 0).any():
            raise ValueError("a pod's deletion_time is before its creation_time")
        self.ls = setup.wmap.latency_sensitive
        self.job = setup.wmap.job
        self.acc = _Run(n)
        self.acc.work[:] = np.where(self.ls, 0.0, self.life)
        self.order = sorted(range(n), key=lambda k: (self.arrival[k], pods[k].name))
        self.next_arrival = 0
        self.pending: deque[int] = deque()
        self.running: set[int] = set()
        self.is_running = np.zeros(n, bool)
        self.end = np.where(self.ls, self.arrival + self.life, np.inf)
        self.node = np.zeros(n, np.int64)
        self.group = np.full(n, -1, np.int64)
        self.members: dict[int, set[int]] = {}
        self.cpu = np.array([p.cpu_milli for p in pods], float)
        self.request = np.array([p.gpu_milli if p.num_gpu else 0 for p in pods], float)
        self.demand = np.array([p.gpu_request_milli for p in pods], float)
        self.used = 0.0
        self.protected = np.zeros(n, bool)
        self._buf, self._off, self._len = _series_buffer(setup.wmap.series)
        self.migrations = 0
        self.series: list[tuple] = []
        self.gpu_cap = float(self.state.gpu_cnt.sum() * MILLI_PER_GPU)
        self.alloc_sum = 0.0
        self.alloc_steps = 0
        self.busy_sum = 0.0
        self.busy_steps = 0
        self.served = 0.0
        self.asked = 0.0
        self.ls_active = 0
        self.freed = False
        self.last = float(self.arrival.max()) if n else 0.0
        self._pairs_dirty = True
        self._arr: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ set-up

    def _inform_placement(self) -> None:
        """Interference profiles, LS classes, activity and usage for the policies."""
        s = self.setup
        keys = [p.key for p in self.pods]
        profiles = {k: s.profiles[s.wmap.types[j]] for k, j in zip(keys, s.wmap.job,
                                                                   strict=True) if j >= 0}
        activity = {k: s.usages[k].mean for k in keys if k in s.usages}
        ls_keys = [k for k, ls in zip(keys, s.wmap.latency_sensitive, strict=True) if ls]
        self.state.set_interference(profiles, s.slowdown, s.weights.interference,
                                    activity=activity,
                                    latency_sensitive=ls_keys,
                                    ls_weight=s.weights.ls_protection)
        self.state.set_usage(s.usages)

    # ------------------------------------------------------------------ loop

    def run(self) -> None:
        step = self.setup.step_s
        if not self.order:
            return
        t = math.floor(self.arrival[self.order[0]] / step) * step
        end = self.last + self.setup.horizon_s
        while t <= end and (self.next_arrival < len(self.order) or self.running
                            or self.pending):
            self._depart(t)
            self._retry(t)
            self._arrive(t)
            jump = self._account(t, step)
            t += max(step, jump)
        self.end_time = t

    def _depart(self, t: float) -> None:
        run = self.is_running
        gone = np.flatnonzero(run & ((self.acc.done_at <= t) | (self.end <= t)))
        for k in gone.tolist():
            self.cluster.depart(self.pods[k].key)
            self._unmark(k)
        if self.pending:  # an LS pod whose lifetime ended while queued leaves unplaced
            self.pending = deque(k for k in self.pending
                                 if not (self.ls[k] and self.arrival[k] + self.life[k] <= t))

    def _place(self, k: int, t: float) -> bool:
        pod = self.pods[k]
        if self.admit is not None:
            pod = self.admit(pod, self.setup.usages.get(pod.key))
            if pod is not self.pods[k]:
                view = self.state.usage
                usage = view.pods.get(pod.key) if view is not None else None
                if view is not None and usage is not None:
                    view.pods[pod.key] = replace(usage, request=pod.gpu_milli)
        res = schedule_pod(self.state, pod, policy=self.policy, rng=self.rng,
                           actuator=self.cluster)
        placed = res.bind is not None
        if not placed and self.rebind:
            move = make_room(self.state, pod, self.policy, rng=self.rng)
            if move is not None:
                if self._index is None:
                    self._index = {p.key: i for i, p in enumerate(self.pods)}
                index = self._index
                victims = [index[v] for v in move.victims]
                for v in victims:
                    self._unmark(v)
                self.cluster.apply_move(move, pod)
                for v in victims:
                    self._mark(v)
                self.migrations += len(move.victims)
                placed = True
        if not placed:
            return False
        self.acc.placed_at[k] = t
        self._mark(k)
        return True

    def _mark(self, k: int) -> None:
        """Pod ``k`` now runs: record its node and shared GPU."""
        b = self.state.bound[self.pods[k].key]
        self.running.add(k)
        self.is_running[k] = True
        self.node[k] = b.node
        if b.req.is_share:
            g = b.node * int(self.state.gpu_free.shape[1]) + b.gpus[0]
            self.group[k] = g
            self.members.setdefault(g, set()).add(k)
        self.used += self.demand[k]
        self._pairs_dirty = True

    def _unmark(self, k: int) -> None:
        self.running.discard(k)
        self.is_running[k] = False
        g = int(self.group[k])
        if g >= 0:
            self.members[g].discard(k)
            if not self.members[g]:
                del self.members[g]
            self.group[k] = -1
        self.used -= self.demand[k]
        self.freed = True
        self._pairs_dirty = True

    def _retry(self, t: float) -> None:
        if not self.pending or not self.freed:
            return
        self.freed = False
        keep: deque[int] = deque()
        for k in self.pending:
            if not self._place(k, t):
                keep.append(k)
        self.pending = keep

    def _arrive(self, t: float) -> None:
        while self.next_arrival < len(self.order):
            k = self.order[self.next_arrival]
            if self.arrival[k] > t:
                break
            self.next_arrival += 1
            if not self._place(k, t):
                self.pending.append(k)

    # ------------------------------------------------------------------ contention

    def _arrays(self) -> dict[str, np.ndarray]:
        """Per running pod: index, job, group (shared GPU), node, cpu share, request, class;
        and the ordered pairs (positions) sharing a GPU. Rebuilt when the running set
        changed."""
        if not self._pairs_dirty:
            return self._arr
        ks = np.flatnonzero(self.is_running)
        pos = np.full(len(self.pods), -1, np.int64)
        pos[ks] = np.arange(ks.size)
        pi: list[int] = []
        pj: list[int] = []
        for mem in self.members.values():
            if len(mem) > 1:
                rows = pos[list(mem)].tolist()
                for a in rows:
                    for b in rows:
                        if a != b:
                            pi.append(a)
                            pj.append(b)
        node = self.node[ks]
        self._arr = {
            "k": ks, "node": node, "group": self.group[ks], "job": self.job[ks],
            "cpu_share": self.cpu[ks] / np.maximum(self.state.cpu_cap[node], 1),
            "request": self.request[ks], "ls": self.ls[ks],
            "pi": np.array(pi, np.int64), "pj": np.array(pj, np.int64),
        }
        self._pairs_dirty = False
        return self._arr

    def _activity(self, ks: np.ndarray, t: float) -> np.ndarray:
        """Activity of running pods at ``t`` (batch: 1; LS: their series at their age)."""
        off = self._off[ks]
        out = np.ones(ks.size)
        ls = off >= 0
        if ls.any():
            k = ks[ls]
            age = t - self.acc.placed_at[k]
            idx = (age // GENAI_STEP_S).astype(np.int64) % self._len[k]
            out[ls] = self._buf[off[ls] + idx]
        return out

    def _account(self, t: float, step: float) -> float:
        """Contention over ``[t, t + step)``; returns how far the loop may jump (>= step
        when nothing changes until the next event)."""
        self._sample(t)
        if not self.running:
            return self._idle_jump(t, step)
        a = self._arrays()
        ks = a["k"]
        act = self._activity(ks, t)
        eff = act * self.acc.throttle[ks]
        f = self.setup.contention.fractions(a["job"], eff, a["group"], a["node"],
                                            a["cpu_share"], a["request"], a["pi"], a["pj"])
        target = self.setup.weights.qos_target
        ls = a["ls"]
        active = ls & (act >= ACTIVE_MIN)
        self.ls_active += int(active.sum())
        low = f < target
        viol = (active & low) | (~ls & low)
        self.acc.violations[ks[viol]] += 1
        self.acc.f_sum[ks[active]] += f[active]
        self.acc.f_steps[ks[active]] += 1
        batch = ~ls
        rate = f[batch] * self.acc.throttle[ks[batch]]
        bk = ks[batch]
        before = self.acc.work[bk]
        after = before - rate * step
        done = after <= 0
        self.acc.work[bk] = np.maximum(after, 0.0)
        if done.any():
            fin = bk[done]
            self.acc.done_at[fin] = t + before[done] / np.maximum(rate[done], 1e-9)
        if self.guard:
            # an LS pod found below the target stays protected while it is active
            protect = active & (low | self.protected[ks])
            self.protected[ks] = protect
            self._throttle(a, act, f, protect)
        return step

    def _throttle(self, a: dict[str, np.ndarray], act: np.ndarray, f: np.ndarray,
                  at_risk: np.ndarray) -> None:
        """Throttle the batch pods on the GPU of an LS pod at risk so that, by the model,
        the LS pod would reach the target: ``theta = (1 - target) / sum_j s_ij`` over its
        batch co-runners (at most 1); release the others."""
        ks, pi, pj = a["k"], a["pi"], a["pj"]
        theta = np.ones(ks.size)
        if at_risk.any() and pi.size:
            cont = self.setup.contention
            s = 1.0 - cont.fraction[a["job"][pi], a["job"][pj]]
            be = ~a["ls"][pj]
            sel = at_risk[pi] & be
            if sel.any():
                need = np.bincount(pi[sel], s[sel], minlength=ks.size)
                allowed = np.where(need > 0, (1.0 - self.setup.weights.qos_target)
                                   / np.maximum(need, 1e-9), 1.0)
                cap = np.full(ks.size, 1.0)
                np.minimum.at(cap, pj[sel], allowed[pi[sel]])
                theta = np.clip(cap, 0.0, 1.0)
        self.acc.throttle[ks] = np.where(a["ls"], 1.0, theta)

    def _idle_jump(self, t: float, step: float) -> float:
        nxt = [self.arrival[self.order[self.next_arrival]]] \
            if self.next_arrival < len(self.order) else []
        if not nxt:
            return step
        return max(step, math.floor((nxt[0] - t) / step) * step)

    def _sample(self, t: float) -> None:
        pct = 100.0 * self.used / self.gpu_cap if self.gpu_cap else 0.0
        if t <= self.last:
            self.alloc_sum += pct
            self.alloc_steps += 1
            waiting = sum(self.demand[k] for k in self.pending) if self.pending else 0.0
            self.served += self.used
            self.asked += self.used + waiting
            if self.used + waiting >= BUSY_DEMAND * self.gpu_cap:
                self.busy_sum += pct
                self.busy_steps += 1
        if not self.series or t - self.series[-1][3] >= 3600.0:
            tot = self.state.totals()
            self.series.append((
                "", "", 0, t, len(self.running), len(self.pending), pct,
                100.0 * tot["cpu_alloc"] / tot["cpu"] if tot["cpu"] else 0.0,
                int(self.acc.violations[self.ls].sum()),
            ))

    # ------------------------------------------------------------------ results

    def result(self, workload: str, policy: str, seed: int, wall: float) -> ReplayRunResult:
        acc = self.acc
        ls, batch = self.ls, ~self.ls
        gpu = self.job >= 0
        ran = ~np.isnan(acc.placed_at)
        finished = batch & ~np.isnan(acc.done_at)
        jct = acc.done_at[finished] - self.arrival[finished]
        solo = self.life[finished]
        run_time = acc.done_at[finished] - acc.placed_at[finished]
        perf = np.full(len(self.pods), np.nan)
        perf[finished] = np.where(run_time > 0, solo / np.maximum(run_time, 1e-9), 1.0)
        ls_ran = ls & ran
        perf[ls_ran] = np.where(acc.f_steps[ls_ran] > 0,
                                acc.f_sum[ls_ran] / np.maximum(acc.f_steps[ls_ran], 1), 1.0)
        perf = np.minimum(perf, 1.0)
        judged = gpu & ~np.isnan(perf)
        wait = acc.placed_at - self.arrival
        rows = []
        for name, sel in (("LS", ls), ("BE", batch)):
            w = wait[sel & ran]
            rows.append((workload, policy, seed, name, int(sel.sum()),
                         float(np.percentile(w, 50)) if w.size else math.nan,
                         float(np.percentile(w, 99)) if w.size else math.nan))
        series = pd.DataFrame(self.series, columns=list(CONTENDED_SERIES_COLUMNS))
        series["workload"], series["policy"], series["seed"] = workload, policy, seed
        extra = {
            "placed": float(ran.sum()),
            "gpu_alloc_pct": self.alloc_sum / max(self.alloc_steps, 1),
            "gpu_alloc_busy_pct": self.busy_sum / self.busy_steps if self.busy_steps
            else math.nan,
            "busy_steps": float(self.busy_steps),
            "gpu_demand_served_pct": 100.0 * self.served / self.asked if self.asked
            else math.nan,
            "ls_violation_intervals": float(acc.violations[ls].sum()),
            "ls_active_intervals": float(self.ls_active),
            "be_violation_intervals": float(acc.violations[batch].sum()),
            "ls_pods_violating": float((acc.violations[ls] > 0).sum()),
            "jct_mean_s": float(jct.mean()) if jct.size else math.nan,
            "jct_p99_s": float(np.percentile(jct, 99)) if jct.size else math.nan,
            "jct_slowdown_mean": float((run_time / np.maximum(solo, 1e-9))[solo > 0].mean())
            if jct.size else math.nan,
            "unfairness": float(np.std(perf[judged])) if judged.any() else math.nan,
            "perf_mean": float(np.mean(perf[judged])) if judged.any() else math.nan,
            "unfinished": float((batch & ran & np.isnan(acc.done_at)).sum()),
            "migrations": float(self.migrations),
            "end_time_s": float(self.end_time),
        }
        return ReplayRunResult(series=series, pending=pd.DataFrame(rows,
                                                                   columns=list(PENDING_COLUMNS)),
                               never_placed=int((~ran).sum()), wall_s=wall, extra=extra)



# ---------------------------------------------------------------------- set-up


@lru_cache(maxsize=2)
def _static_inputs(model: str) -> tuple[GavelContention, dict[str, InterferenceProfile],
                                        Slowdown, tuple[np.ndarray, ...]]:
    """The per-process part of a set-up: the contention model, placement's predicted view of
    it, and the GenAI activity series (loaded and trained once per worker)."""
    from cohabit.engine.contention import gavel_placement_view
    from cohabit.predictors.interference import load_gavel
    from cohabit.predictors.telemetry_data import PACKAGED_GAVEL, PACKAGED_GENAI

    if model not in CONTENTION_MODELS:
        raise ValueError(f"unknown contention model {model!r}; known: "
                         f"{', '.join(CONTENTION_MODELS)}")
    path = PACKAGED_GAVEL / "physical_cluster_throughputs.json"
    pairs = load_gavel(path, ["v100"])
    types = gavel_type_order(pairs)
    profiles, predicted, slowdown = gavel_placement_view(path, types)
    contention = GavelContention.from_pairs(pairs, types, predicted)
    return contention, profiles, slowdown, tuple(genai_duty_series(PACKAGED_GENAI))


def build_setup(pods: Sequence[Pod], *, seed: int, compress: float = 1.0,
                model: str = "gavel", weights: ScoreWeights | None = None,
                step_s: float = STEP_S, horizon_s: float = HORIZON_S) -> ContendedSetup:
    """The :class:`ContendedSetup` of ``pods`` for mapping seed ``seed``.

    Raises:
        ValueError: an unknown contention ``model`` or ``compress <= 0``.
    """
    from cohabit.engine.contention import pod_usages

    if compress <= 0:
        raise ValueError(f"time compression must be > 0, got {compress}")
    contention, profiles, slowdown, series = _static_inputs(model)
    wmap = map_workloads(pods, contention.types, series, seed)
    usages = pod_usages([p.key for p in pods], wmap.history,
                        [p.gpu_milli if p.num_gpu else 0 for p in pods],
                        wmap.latency_sensitive.tolist())
    return ContendedSetup(contention, wmap, profiles, slowdown, usages, compress, step_s,
                          horizon_s, weights or ScoreWeights())
