"""Mutable placement view of a cluster: free CPU, memory and GPU milli per node, as arrays.

:class:`ClusterState` is what the score plugins read. It speaks :mod:`cohabit.model` at its
edges (``from_nodes``, ``apply(Bind)``, ``release(Pod)``, ``to_nodes``) and keeps numpy
arrays inside so that filtering and scoring ~1,200 nodes costs tens of microseconds:

* ``cpu_free[N]``, ``mem_free[N]`` (millicores, MiB), ``gpu_free[N, G]`` (milli-GPU per
  device; devices a node does not have are padded with 0 and never chosen),
  ``gpu_cnt[N]``, ``full_free[N]`` (devices with 1000 milli free), ``max_free[N]`` and
  ``total_free[N]``;
* ``prio[N]``: the tie-break rank (lower wins). By default the rank of the node's name, so
  ties go to the smallest name as in the FGD paper's scheduler; the ``--mode fgd`` loop sets
  a seeded permutation, the random name prefix of the paper's simulator
  (hkust-adsl/kubernetes-scheduler-simulator ``pkg/simulator/simulator.go``,
  ``syncClusterResourceList``);
* ``state_id[N]``: an interned id of the node's *fragmentation state*
  ``(model, cpu_free, sorted GPU free milli)``. Fragmentation and FGD scores depend only on
  it, so they are memoised per state id (many nodes share a state) and only a node that
  changed gets a new id.

Every change goes through :meth:`ClusterState.apply` / :meth:`ClusterState.release`, which
check capacity first and raise :class:`OverCommitError` instead of over-committing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cohabit.config.placement import ScoreWeights
from cohabit.model import (
    MILLI_PER_GPU,
    Bind,
    GpuDevice,
    InterferenceProfile,
    Node,
    Pod,
    gpu_request_problems,
)
from cohabit.placement.frag import TypicalPods
from cohabit.placement.interference import Interference, Slowdown
from cohabit.placement.usage import Correlation, PodUsage, UsageView, pearson

__all__ = [
    "NONZERO_CPU_MILLI",
    "ClusterState",
    "OverCommitError",
    "PodReq",
    "pod_request",
]

NONZERO_CPU_MILLI = 100
"""CPU a pod with a zero CPU request counts as in scores and typical pods (kube-scheduler's
``GetNonzeroRequests`` default, used by the FGD simulator's ``utils.GetPodResource``)."""


MAX_REMEMBERED = 10_000
"""Selections :meth:`ClusterState.remember` keeps for a later ``apply(bind)``."""


class OverCommitError(ValueError):
    """A bind would over-commit a node's CPU, memory or a GPU, or is otherwise invalid."""


@dataclass(frozen=True, slots=True)
class PodReq:
    """A pod's requests in the form the plugins use.

    Attributes:
        key: ``namespace/name`` of the pod.
        cpu: CPU request (millicores) used to fit and to account.
        cpu_score: CPU as the scores see it (``cpu`` or :data:`NONZERO_CPU_MILLI` when 0).
        mem: memory request (MiB).
        num: GPUs requested (0 = CPU-only pod).
        milli: milli-GPU per GPU (0 for a CPU-only pod; 1000 = a whole GPU).
        spec: acceptable GPU models (empty = any).
        shape: ``(cpu_score, milli, num, spec)``, the part of a pod every score depends on.
    """

    key: str
    cpu: int
    cpu_score: int
    mem: int
    num: int
    milli: int
    spec: frozenset[str]
    shape: tuple[int, int, int, frozenset[str]]

    @property
    def total_milli(self) -> int:
        """``num * milli``: the pod's whole GPU request."""
        return self.num * self.milli

    @property
    def is_share(self) -> bool:
        """True for a GPU-sharing pod (one GPU, less than 1000 milli)."""
        return self.num == 1 and 0 < self.milli < MILLI_PER_GPU


def pod_request(pod: Pod) -> PodReq:
    """The :class:`PodReq` of a model pod.

    Raises:
        ValueError: a negative request, ``gpu_milli`` outside 0..1000, or a multi-GPU pod
            with a partial share (names the pod and the field).
    """
    if pod.cpu_milli < 0 or pod.memory_mib < 0 or pod.num_gpu < 0:
        raise ValueError(f"pod {pod.key}: negative request")
    milli = pod.gpu_milli if pod.num_gpu > 0 else 0
    if not 0 <= milli <= MILLI_PER_GPU:
        raise ValueError(f"pod {pod.key}: gpu_milli {pod.gpu_milli} outside 0..1000")
    for field_name, what in gpu_request_problems(pod.num_gpu, milli)[:1]:
        raise ValueError(f"pod {pod.key}: {field_name} {what}")  # the rules in cohabit.model
    cpu_score = pod.cpu_milli if pod.cpu_milli > 0 else NONZERO_CPU_MILLI
    return PodReq(
        key=pod.key,
        cpu=pod.cpu_milli,
        cpu_score=cpu_score,
        mem=pod.memory_mib,
        num=pod.num_gpu,
        milli=milli,
        spec=pod.gpu_spec,
        shape=(cpu_score, milli, pod.num_gpu, pod.gpu_spec),
    )


@dataclass
class _Bound:
    node: int
    gpus: tuple[int, ...]
    req: PodReq
    pod: Pod | None


@dataclass
class ClusterState:
    """Mutable placement view of a cluster (see the module docstring for the arrays).

    Build it with :meth:`from_nodes`. Attributes other than the methods are read by the score
    plugins; change them only through :meth:`apply` and :meth:`release`.
    """

    names: list[str]
    model_names: list[str]
    model_id: np.ndarray
    cpu_cap: np.ndarray
    mem_cap: np.ndarray
    cpu_free: np.ndarray
    mem_free: np.ndarray
    gpu_free: np.ndarray
    gpu_cnt: np.ndarray
    prio: np.ndarray
    index: dict[str, int] = field(default_factory=dict)
    labels: list[tuple[tuple[str, str], ...]] = field(default_factory=list)
    full_free: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    max_free: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    total_free: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    aff: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    aff_tags: dict[str, int] = field(default_factory=dict)
    state_id: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    state_keys: list[tuple[int, int, tuple[int, ...]]] = field(default_factory=list)
    _state_index: dict[tuple[int, int, tuple[int, ...]], int] = field(default_factory=dict)
    bound: dict[str, _Bound] = field(default_factory=dict)
    typical: TypicalPods | None = None
    shapes: TypicalPods | None = None
    interference: Interference | None = None
    usage: UsageView | None = None
    weights: ScoreWeights | None = None
    caches: dict[str, Any] = field(default_factory=dict)
    _pending: dict[str, tuple[PodReq, Pod | None]] = field(default_factory=dict)
    _spec_masks: dict[frozenset[str], np.ndarray] = field(default_factory=dict)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_nodes(
        cls,
        nodes: Sequence[Node],
        pods_bound: Sequence[Pod] = (),
        *,
        typical: TypicalPods | None = None,
    ) -> ClusterState:
        """A state of ``nodes`` (their free share, or full capacity minus ``pods_bound``).

        Args:
            nodes: the cluster; ``cpu_milli``/``memory_mib`` are the allocatable capacity.
                Without ``pods_bound`` the free share is the nodes' own
                ``cpu_free_milli``/``memory_free_mib``/``GpuDevice.milli_free`` (a snapshot);
                with ``pods_bound`` it is capacity minus those pods (the nodes' free fields
                are ignored, they would count the same pods twice).
            pods_bound: pods with ``node`` set (and ``gpu_indices`` for GPU pods). A GPU pod
                bound without ``gpu_indices`` gets the lowest-index GPUs that fit.
            typical: a :class:`~cohabit.placement.frag.TypicalPods` distribution for the
                fragmentation metrics and the ``fgd`` score (optional; see
                :meth:`set_typical`).

        Raises:
            ValueError: duplicate node names, GPUs of mixed models on one node, a pod bound
                to an unknown node; :class:`OverCommitError` when the bound pods do not fit.
        """
        n = len(nodes)
        names = [nd.name for nd in nodes]
        _check_unique(names)
        model_names, model_id, gpu_free, gpu_cnt = _gpu_arrays(nodes, bool(pods_bound))
        cpu_cap = np.array([nd.cpu_milli for nd in nodes], np.int64)
        mem_cap = np.array([nd.memory_mib for nd in nodes], np.int64)
        state = cls(
            names=names,
            model_names=model_names,
            model_id=model_id,
            cpu_cap=cpu_cap,
            mem_cap=mem_cap,
            cpu_free=cpu_cap.copy() if pods_bound else np.array(
                [nd.cpu_free_milli for nd in nodes], np.int64),
            mem_free=mem_cap.copy() if pods_bound else np.array(
                [nd.memory_free_mib for nd in nodes], np.int64),
            gpu_free=gpu_free,
            gpu_cnt=gpu_cnt,
            prio=_name_rank(names),
            index={nm: i for i, nm in enumerate(names)},
            labels=[nd.labels for nd in nodes],
            full_free=np.zeros(n, np.int64),
            max_free=np.zeros(n, np.int64),
            total_free=np.zeros(n, np.int64),
            aff=np.zeros((n, 8), np.int64),
            state_id=np.zeros(n, np.int64),
        )
        for i in range(n):
            state._touch(i)
        if typical is not None:
            state.set_typical(typical)
        state._bind_existing(pods_bound)
        return state

    def _bind_existing(self, pods: Sequence[Pod]) -> None:
        """Apply the pods already bound (``node`` set); a GPU pod without ``gpu_indices``
        gets the lowest-index GPUs that fit.

        Raises:
            ValueError: a pod bound to an unknown node; :class:`OverCommitError`: it does
                not fit.
        """
        for pod in pods:
            if pod.node is None:
                continue
            if pod.node not in self.index:
                raise ValueError(f"pod {pod.key} is bound to unknown node {pod.node}")
            req = pod_request(pod)
            gpus = tuple(pod.gpu_indices)
            if req.num > 0 and not gpus:
                gpus = self.first_fit_gpus(req, self.index[pod.node])
            self.apply(Bind(pod.key, pod.node, gpus), pod)

    def set_typical(self, typical: TypicalPods | None,
                    shapes: TypicalPods | None = None) -> None:
        """Use ``typical`` (a :class:`~cohabit.placement.frag.TypicalPods`) for
        fragmentation and ``fgd``, and ``shapes`` (every pod shape of the workload,
        ``typical_pods(pods, coverage_pct=100)``; default ``typical``) for the look-ahead
        part; drops the memoised fragmentation and scores."""
        self.typical = typical
        self.shapes = shapes
        self.caches.clear()

    def set_weights(self, weights: ScoreWeights | None) -> None:
        """Use ``weights`` for the ``cohabit`` score (None: the defaults); drops the memoised
        scores that depend on them."""
        self.weights = weights
        for k in ("static", "static_gpu", "lookahead"):
            self.caches.pop(k, None)

    def set_interference(
        self,
        profiles: Mapping[str, InterferenceProfile],
        slowdown: Slowdown,
        weight: float = 1.0,
        *,
        activity: Mapping[str, float] | None = None,
        latency_sensitive: Iterable[str] = (),
        ls_weight: float = 1.0,
    ) -> Interference:
        """Give the ``cohabit`` score plugin interference profiles and a slowdown callable.

        Args:
            profiles: pod key (``namespace/name``) -> profile, for bound pods and for the
                pods still to be placed (empty profiles are ignored).
            slowdown: ``slowdown(victim, aggressor) -> 0..1`` (see
                :data:`cohabit.placement.interference.Slowdown`).
            weight: score points per percent of predicted slowdown (>= 0).
            activity: pod key -> mean activity 0..1 (what it inflicts is scaled by it).
            latency_sensitive: keys of LS pods (what they suffer counts ``ls_weight`` times).
            ls_weight: that multiplier (:attr:`ScoreWeights.ls_protection`).

        Returns:
            the :class:`~cohabit.placement.interference.Interference` now in
            :attr:`interference` (already bound pods are recorded; later ``apply``/``release``
            keep it current).

        Raises:
            ValueError: negative or non-finite ``weight``.
        """
        inter = Interference(dict(profiles), slowdown, weight, dict(activity or {}),
                             frozenset(latency_sensitive), ls_weight)
        for key, b in self.bound.items():
            inter.bound(key, b.node, b.gpus)
        self.interference = inter
        return inter

    def set_usage(self, pods: Mapping[str, PodUsage],
                  correlation: Correlation = pearson) -> UsageView:
        """Give the usage-aware policies (Kube-Knots, load-aware, cohabit's correlation and
        peak parts) per-pod usage (:class:`~cohabit.placement.usage.PodUsage`, bound and
        pending pods) and the correlation callable; bound pods are recorded and later
        ``apply``/``release`` keep the view current."""
        view = UsageView(dict(pods), correlation, relief=np.zeros(self.gpu_free.shape))
        for key, b in self.bound.items():
            view.bound(key, b.node, b.gpus)
        self.usage = view
        return view

    def set_priority(self, prio: Sequence[int] | np.ndarray) -> None:
        """Set the tie-break rank of every node (lower wins; a permutation of ``0..N-1``).

        Raises:
            ValueError: wrong length or not a permutation.
        """
        arr = np.asarray(prio, dtype=np.int64)
        if arr.shape != (len(self.names),) or set(arr.tolist()) != set(range(len(self.names))):
            raise ValueError("priority must be a permutation of 0..N-1, one entry per node")
        self.prio = arr

    # ------------------------------------------------------------------ queries

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.names)

    def request(self, pod: Pod) -> PodReq:
        """:func:`pod_request` of ``pod``."""
        return pod_request(pod)

    def spec_mask(self, spec: frozenset[str]) -> np.ndarray:
        """Boolean ``[N]``: nodes whose GPU model is acceptable to ``spec`` (empty = any;
        a CPU-only node never matches a non-empty spec), as ``utils.IsNodeAccessibleToPod``
        of the FGD simulator."""
        mask = self._spec_masks.get(spec)
        if mask is None:
            if not spec:
                mask = np.ones(len(self.names), bool)
            else:
                ok = np.array([m != "" and m in spec for m in self.model_names], bool)
                mask = ok[self.model_id]
            self._spec_masks[spec] = mask
        return mask

    def feasible(self, req: PodReq, among: np.ndarray | None = None) -> np.ndarray:
        """Indices of the nodes that pass the filter for ``req``, ascending (``among``: only
        these node indices are checked, and the result keeps their order).

        The filter of the FGD paper's scheduler: the default resource fit (CPU and memory
        requests as given) and Open-Gpu-Share's ``Filter``
        (``pkg/simulator/plugin/open_gpu_share.go``): a GPU pod needs a node with GPUs of an
        acceptable model and, for a sharing pod, one GPU with at least ``milli`` free, for a
        whole/multi-GPU pod ``num`` fully free GPUs.
        """
        at = slice(None) if among is None else among
        ok = (self.cpu_free[at] >= req.cpu) & (self.mem_free[at] >= req.mem)
        if req.num > 0:
            ok &= self.spec_mask(req.spec)[at]
            if req.milli < MILLI_PER_GPU:
                ok &= self.max_free[at] >= req.milli
            else:
                ok &= self.full_free[at] >= req.num
        hits = np.flatnonzero(ok)
        return hits if among is None else among[hits]

    def first_fit_gpus(self, req: PodReq, node: int) -> tuple[int, ...]:
        """Lowest-index GPUs of ``node`` that fit ``req`` (whole GPUs for a whole/multi pod)."""
        if req.num == 0:
            return ()
        row = self.gpu_free[node, : self.gpu_cnt[node]]
        if req.is_share:
            idx = np.flatnonzero(row >= req.milli)
            return (int(idx[0]),) if idx.size else ()
        idx = np.flatnonzero(row == MILLI_PER_GPU)
        return tuple(int(x) for x in idx[: req.num]) if idx.size >= req.num else ()

    def gpu_affinity_tag(self, req: PodReq) -> str | None:
        """The pod's GPU affinity tag (None for CPU-only), as
        ``GetGpuAffinityFromPodAnnotation``: ``share-gpu`` or ``<n>-gpu``."""
        if req.num == 0:
            return None
        if req.is_share:
            return "share-gpu"
        return f"{req.num}-gpu"

    # ------------------------------------------------------------------ changes

    def _touch(self, i: int) -> None:
        cnt = int(self.gpu_cnt[i])
        row = sorted(self.gpu_free[i, :cnt].tolist())
        if cnt:
            self.full_free[i] = row.count(MILLI_PER_GPU)
            self.max_free[i] = row[-1]
            self.total_free[i] = sum(row)
        key = (int(self.model_id[i]), int(self.cpu_free[i]), tuple(row))
        sid = self._state_index.get(key)
        if sid is None:
            sid = len(self.state_keys)
            self._state_index[key] = sid
            self.state_keys.append(key)
        self.state_id[i] = sid

    def remember(self, req: PodReq, pod: Pod | None) -> None:
        """Remember ``req`` so that a later ``apply(bind)`` without the pod can find it.

        At most :data:`MAX_REMEMBERED` selections are kept (the oldest are forgotten), so a
        caller that selects without ever applying does not grow the state without bound.
        """
        self._pending.pop(req.key, None)
        self._pending[req.key] = (req, pod)
        if len(self._pending) > MAX_REMEMBERED:
            del self._pending[next(iter(self._pending))]

    def apply(self, bind: Bind, pod: Pod | None = None) -> None:
        """Bind a pod: subtract its requests from the node and GPUs of ``bind``.

        Args:
            bind: the placement (``bind.pod`` is the pod key ``namespace/name``).
            pod: the pod; may be omitted when ``bind`` came from
                :func:`cohabit.placement.select` on this state.

        Raises:
            OverCommitError: unknown node or pod, pod already bound, wrong number of GPU
                indices, an index out of range or repeated, a GPU model the pod does not
                accept, or not enough free CPU, memory or GPU milli. Nothing changes then.
        """
        if pod is not None:
            req = pod_request(pod)
            if req.key != bind.pod:
                raise OverCommitError(f"bind is for {bind.pod} but pod is {req.key}")
        else:
            found = self._pending.get(bind.pod)
            if found is None:
                raise OverCommitError(f"bind for unknown pod {bind.pod}: pass the pod")
            req, pod = found
        if req.key in self.bound:
            raise OverCommitError(f"pod {req.key} is already bound")
        i = self.index.get(bind.node)
        if i is None:
            raise OverCommitError(f"pod {req.key}: unknown node {bind.node}")
        cpu_free = int(self.cpu_free[i])
        mem_free = int(self.mem_free[i])
        if cpu_free < req.cpu or mem_free < req.mem:
            raise OverCommitError(
                f"pod {req.key} on {bind.node}: needs cpu {req.cpu} mem {req.mem}, free cpu "
                f"{cpu_free} mem {mem_free}"
            )
        gpus = tuple(bind.gpu_indices)
        if len(gpus) != req.num or len(set(gpus)) != len(gpus):
            raise OverCommitError(
                f"pod {req.key} on {bind.node}: needs {req.num} distinct GPU indices, got {gpus}"
            )
        if req.num:
            if not self.spec_mask(req.spec)[i]:
                raise OverCommitError(f"pod {req.key}: {bind.node} has no acceptable GPU model")
            cnt = int(self.gpu_cnt[i])
            row = self.gpu_free[i].tolist()
            for g in gpus:
                if not 0 <= g < cnt:
                    raise OverCommitError(f"pod {req.key}: {bind.node} has no GPU {g}")
                if row[g] < req.milli:
                    raise OverCommitError(
                        f"pod {req.key} on {bind.node} GPU {g}: needs {req.milli} milli, "
                        f"free {row[g]}"
                    )
        self.cpu_free[i] = cpu_free - req.cpu
        self.mem_free[i] = mem_free - req.mem
        for g in gpus:
            self.gpu_free[i, g] -= req.milli
        tag = self.gpu_affinity_tag(req)
        if tag is not None:
            self.aff[i, self._aff_col(tag)] += 1
        self.bound[req.key] = _Bound(i, gpus, req, pod)
        self._pending.pop(req.key, None)
        self._touch(i)
        if self.interference is not None:
            self.interference.bound(req.key, i, gpus)
        if self.usage is not None:
            self.usage.bound(req.key, i, gpus)

    def release(self, pod: Pod | str) -> Bind:
        """Unbind a pod (a departure or an eviction) and return where it was.

        Raises:
            KeyError: the pod is not bound here.
        """
        key = pod if isinstance(pod, str) else pod.key
        b = self.bound.pop(key, None)
        if b is None:
            raise KeyError(f"pod {key} is not bound")
        i = b.node
        self.cpu_free[i] += b.req.cpu
        self.mem_free[i] += b.req.mem
        for g in b.gpus:
            self.gpu_free[i, g] += b.req.milli
        tag = self.gpu_affinity_tag(b.req)
        if tag is not None:
            self.aff[i, self._aff_col(tag)] -= 1
        self._touch(i)
        if self.interference is not None:
            self.interference.unbound(key, i)
        if self.usage is not None:
            self.usage.unbound(key, i)
        return Bind(key, self.names[i], b.gpus)

    def _aff_col(self, tag: str) -> int:
        col = self.aff_tags.get(tag)
        if col is None:
            col = len(self.aff_tags)
            self.aff_tags[tag] = col
            if col >= self.aff.shape[1]:
                extra = np.zeros((self.aff.shape[0], self.aff.shape[1]), np.int64)
                self.aff = np.concatenate([self.aff, extra], axis=1)
        return col

    # ------------------------------------------------------------------ export

    def to_nodes(self) -> list[Node]:
        """The current nodes as model types (free CPU, memory and per-GPU milli)."""
        out = []
        for i, name in enumerate(self.names):
            model = self.model_names[int(self.model_id[i])]
            gpus = tuple(
                GpuDevice(index=j, model=model, milli_free=int(self.gpu_free[i, j]))
                for j in range(int(self.gpu_cnt[i]))
            )
            out.append(
                Node(
                    name=name,
                    cpu_milli=int(self.cpu_cap[i]),
                    memory_mib=int(self.mem_cap[i]),
                    cpu_free_milli=int(self.cpu_free[i]),
                    memory_free_mib=int(self.mem_free[i]),
                    gpus=gpus,
                    labels=self.labels[i],
                )
            )
        return out

    def placement_of(self, pod: Pod | str) -> tuple[str, tuple[int, ...]] | None:
        """``(node, gpu indices)`` of a bound pod, or None."""
        key = pod if isinstance(pod, str) else pod.key
        b = self.bound.get(key)
        return None if b is None else (self.names[b.node], b.gpus)

    # ------------------------------------------------------------------ totals

    def totals(self) -> dict[str, int]:
        """Cluster capacity and allocation: ``gpu_milli``, ``gpu_alloc``, ``cpu``,
        ``cpu_alloc``, ``mem``, ``mem_alloc`` (milli-GPU, millicores, MiB)."""
        gpu_cap = int(self.gpu_cnt.sum()) * MILLI_PER_GPU
        return {
            "gpu_milli": gpu_cap,
            "gpu_alloc": gpu_cap - int(self.total_free.sum()),
            "cpu": int(self.cpu_cap.sum()),
            "cpu_alloc": int(self.cpu_cap.sum() - self.cpu_free.sum()),
            "mem": int(self.mem_cap.sum()),
            "mem_alloc": int(self.mem_cap.sum() - self.mem_free.sum()),
        }


def _check_unique(names: list[str]) -> None:
    """Raise ValueError naming (up to five of) the duplicate node names."""
    if len(set(names)) != len(names):
        dup = sorted({x for x in names if names.count(x) > 1})
        raise ValueError(f"duplicate node names: {dup[:5]}")


def _name_rank(names: list[str]) -> np.ndarray:
    """Each node's rank in name order (the default tie-break priority)."""
    order = sorted(range(len(names)), key=lambda i: names[i])
    prio = np.empty(len(names), np.int64)
    prio[order] = np.arange(len(names))
    return prio


def _gpu_arrays(
    nodes: Sequence[Node], all_free: bool
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """``(model_names, model_id[n], gpu_free[n, gmax], gpu_cnt[n])`` of ``nodes``: GPU
    model names (index 0 is ``""``, no GPU), each node's model index, free milli per GPU
    (``MILLI_PER_GPU`` each when ``all_free``, else ``GpuDevice.milli_free``) and GPU count.

    Raises:
        ValueError: GPUs of several models on one node, GPU indices not ``0..k-1``, a
            ``milli_free`` outside ``0..MILLI_PER_GPU``.
    """
    n = len(nodes)
    gmax = max(max((len(nd.gpus) for nd in nodes), default=0), 1)
    model_names: list[str] = [""]
    model_index = {"": 0}
    model_id = np.zeros(n, np.int64)
    gpu_free = np.zeros((n, gmax), np.int64)
    gpu_cnt = np.zeros(n, np.int64)
    for i, nd in enumerate(nodes):
        models = {g.model for g in nd.gpus}
        if len(models) > 1:
            raise ValueError(f"node {nd.name}: GPUs of several models {sorted(models)}")
        m = nd.gpu_model
        if m not in model_index:
            model_index[m] = len(model_names)
            model_names.append(m)
        model_id[i] = model_index[m]
        gpu_cnt[i] = len(nd.gpus)
        for j, g in enumerate(sorted(nd.gpus, key=lambda d: d.index)):
            if g.index != j:
                raise ValueError(f"node {nd.name}: GPU indices must be 0..{len(nd.gpus)-1}")
            if not 0 <= g.milli_free <= MILLI_PER_GPU:
                raise ValueError(f"node {nd.name} GPU {j}: milli_free {g.milli_free}")
            gpu_free[i, j] = MILLI_PER_GPU if all_free else g.milli_free
    return model_names, model_id, gpu_free, gpu_cnt
