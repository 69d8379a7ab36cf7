"""Score plugins: the placement policies, in one explicit registry (:data:`POLICIES`).

Each policy scores the feasible nodes with an integer 0..100 (higher is better; ``cohabit``
subtracts a real-valued interference penalty) and picks the GPUs of the chosen node. The
first six are the FGD paper's; ``cohabit`` is cohabit's own. The definitions are those of
the FGD paper's simulator (hkust-adsl/kubernetes-scheduler-simulator,
``pkg/simulator/plugin/*.go``) with the
configuration of its artifact runs (``experiments/run_scripts/generate_run_scripts.py``,
``scripts/generate_config_and_run.py``): one score plugin enabled, the others disabled, and
the GPU inside a node chosen by the plugin's ``GpuSelMethod``:

========================  =======================================  ==========================
registry name             score (file)                              GPU choice in the node
========================  =======================================  ==========================
``random``                one feasible node drawn uniformly gets    ``random``: a uniformly
                          100, the rest 0 (``random_score.go``)     drawn GPU that fits
``dot-product``           ``100 * (1 - <free, request> / 2)``,      ``best``
                          vectors (CPU, total GPU milli) over
                          (128,000, 8,000) (``dot_product_score.go``,
                          ``-dimext merge -norm max``)
``gpu-clustering``        tiers by the GPU-affinity tags of the     ``best``
                          node's pods (``gpu_clustering_score.go``)
``gpu-packing``           shared GPUs > free GPUs of a used node >  ``best``
                          an idle node (``gpu_packing_score.go``)
``best-fit``              ``100 * (1 - 0.5 (cpu_left - cpu)/128000  ``best``
                          - 0.5 (gpu_left - gpu)/8000)``
                          (``best_fit_score.go``)
``fgd``                   ``int(100 * sigmoid((frag_before -        the GPU with the highest
                          frag_after) / 1000))`` (``fgd_score.go``) score, first on ties
``cohabit``               ``fgd`` minus ``100 * w *`` predicted     the GPU with the highest
                          slowdown suffered + inflicted             combined score
                          (:func:`score_cohabit`)
========================  =======================================  ==========================

``best`` (``open_gpu_share.go``, ``allocateGpuIdBasedOnBestFit``): a sharing pod takes the
GPU with the least free milli that fits (lowest index on ties); a whole or multi-GPU pod
takes the lowest-index fully free GPUs (``AllocateExclusiveGpuId``). Scores that the paper
min-max normalises (best-fit) are not normalised here: the normalisation is monotone and,
for a 0..100 integer score, one-to-one, so the chosen node is the same.

Ties between nodes are broken by :attr:`ClusterState.prio` (see :func:`select`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cohabit.model import MILLI_PER_GPU, Pod
from cohabit.placement.baselines import (
    gpus_kube_knots,
    gpus_load_aware,
    resize_p90,
    score_kube_default,
    score_kube_knots,
    score_load_aware,
)
from cohabit.placement.parts import (
    fgd_gpu_scores,
    fgd_scores,
    lookahead_bound,
    static_exact,
    static_gpu_scores,
    static_scores,
    weights_of,
)
from cohabit.placement.state import ClusterState, PodReq
from cohabit.placement.usage import PodUsage

__all__ = ["POLICIES", "Policy", "cohabit_choice"]

MAX_SPEC_CPU = 128_000
"""CPU milli of the largest node shape, the normaliser of best-fit and dot-product."""
MAX_SPEC_GPU = 8_000
"""GPU milli of the largest node shape (8 GPUs)."""
MAX_NODE_SCORE = 100

Rng = np.random.Generator


# --------------------------------------------------------------------- GPU choice


def gpus_best(state: ClusterState, req: PodReq, node: int, rng: Rng | None) -> tuple[int, ...]:
    """``best`` GPU choice: tightest GPU for a sharing pod, lowest-index free GPUs else."""
    if req.num == 0:
        return ()
    row = state.gpu_free[node, : state.gpu_cnt[node]].tolist()
    if req.is_share:
        best, best_i = MILLI_PER_GPU + 1, -1
        for i, g in enumerate(row):
            if req.milli <= g < best:
                best, best_i = g, i
        return (best_i,) if best_i >= 0 else ()
    idx = [i for i, g in enumerate(row) if g == MILLI_PER_GPU][: req.num]
    return tuple(idx)


def gpus_random(state: ClusterState, req: PodReq, node: int, rng: Rng | None) -> tuple[int, ...]:
    """``random`` GPU choice: a uniformly drawn fitting GPU for a sharing pod (reservoir
    sampling in ``allocateGpuIdBasedOnRandomFit``); lowest-index free GPUs else."""
    if not req.is_share:
        return gpus_best(state, req, node, rng)
    row = state.gpu_free[node, : state.gpu_cnt[node]]
    idx = np.flatnonzero(row >= req.milli)
    if rng is None:
        raise ValueError("the random policy needs an rng")
    return (int(idx[rng.integers(idx.size)]),)


# --------------------------------------------------------------------- policies


@dataclass(frozen=True)
class Policy:
    """A score plugin.

    Attributes:
        name: registry name.
        score: ``score(state, req, feasible, rng) -> int64[len(feasible)]`` in 0..100.
        gpus: ``gpus(state, req, node, rng) -> GPU indices`` for the chosen node.
        source: the file of the FGD paper's simulator (or the paper) the definition follows.
        admit: optional admission hook ``admit(pod, usage) -> pod`` run before the pod is
            placed (Kube-Knots resizes pods there); None = the pod as it is.

    A score of ``-inf`` on every feasible node means the policy refuses to place the pod
    now (it waits).
    """

    name: str
    score: Callable[[ClusterState, PodReq, np.ndarray, Rng | None], np.ndarray]
    gpus: Callable[[ClusterState, PodReq, int, Rng | None], tuple[int, ...]]
    source: str
    admit: Callable[[Pod, PodUsage | None], Pod] | None = None


def score_random(state: ClusterState, req: PodReq, feasible: np.ndarray,
                 rng: Rng | None) -> np.ndarray:
    """100 for one feasible node drawn uniformly, 0 for the others (``random_score.go``)."""
    if rng is None:
        raise ValueError("the random policy needs an rng")
    out = np.zeros(feasible.size, np.int64)
    out[rng.integers(feasible.size)] = MAX_NODE_SCORE
    return out


def score_best_fit(state: ClusterState, req: PodReq, feasible: np.ndarray,
                   rng: Rng | None) -> np.ndarray:
    """``int(100 * (1 - (0.5 (cpu_free - cpu)/128000 + 0.5 (gpu_free - gpu)/8000)))``:
    the node left with the least CPU and GPU wins (``best_fit_score.go``; the operations are
    done in the same order so the truncation matches)."""
    cpu_left = (state.cpu_free[feasible] - req.cpu_score).astype(np.float64)
    gpu_left = (state.total_free[feasible] - req.total_milli).astype(np.float64)
    s = cpu_left / MAX_SPEC_CPU * 0.5
    s = s + gpu_left / MAX_SPEC_GPU * 0.5
    out = np.trunc((1.0 - s) * MAX_NODE_SCORE).astype(np.int64)
    bad = (cpu_left < 0) | (gpu_left < 0)
    out[bad] = 0
    return out


def score_dot_product(state: ClusterState, req: PodReq, feasible: np.ndarray,
                      rng: Rng | None) -> np.ndarray:
    """``int(100 * (1 - <free, request> / 2))`` with free = (CPU left, total GPU milli left)
    and request = (CPU, total GPU milli), both divided by (128,000, 8,000); 0 when the node
    lacks the CPU (``dot_product_score.go`` with ``-dimext merge -norm max``)."""
    n0 = state.cpu_free[feasible].astype(np.float64) / MAX_SPEC_CPU
    n1 = state.total_free[feasible].astype(np.float64) / MAX_SPEC_GPU
    p0 = req.cpu_score / MAX_SPEC_CPU
    p1 = req.total_milli / MAX_SPEC_GPU
    dot = n0 * p0
    dot = dot + n1 * p1
    cur = 1.0 - dot / 2.0
    out = np.trunc(MAX_NODE_SCORE * cur).astype(np.int64)
    out[state.cpu_free[feasible] < req.cpu_score] = 0
    return out


def _go_div(a: np.ndarray, b: int) -> np.ndarray:
    """Integer division truncating toward zero (Go's ``/`` on int64)."""
    q = np.abs(a) // b
    return np.where(a < 0, -q, q)


def score_gpu_clustering(state: ClusterState, req: PodReq, feasible: np.ndarray,
                         rng: Rng | None) -> np.ndarray:
    """GPU clustering (``gpu_clustering_score.go``): a GPU pod scores
    ``25 * (8000 - gpu_left) / 8000`` (integer) plus 75 on a node whose GPU pods all carry
    the pod's affinity tag (``share-gpu`` or ``<n>-gpu``), 50 on a node with that tag among
    others, 25 on a node with no GPU pod, 0 on a node with other tags only. CPU-only: 0."""
    tag = state.gpu_affinity_tag(req)
    if tag is None:
        return np.zeros(feasible.size, np.int64)
    base = _go_div((MAX_NODE_SCORE // 4) * (MAX_SPEC_GPU - state.total_free[feasible]),
                   MAX_SPEC_GPU)
    aff = state.aff[feasible]
    ntags = (aff > 0).sum(axis=1)
    col = state.aff_tags.get(tag)
    has = aff[:, col] > 0 if col is not None else np.zeros(feasible.size, bool)
    bonus = np.where(
        has,
        np.where(ntags == 1, MAX_NODE_SCORE * 3 // 4, MAX_NODE_SCORE * 2 // 4),
        np.where(ntags == 0, MAX_NODE_SCORE // 4, 0),
    )
    return base + bonus


def score_gpu_packing(state: ClusterState, req: PodReq, feasible: np.ndarray,
                      rng: Rng | None) -> np.ndarray:
    """GPU packing (``gpu_packing_score.go``), for a GPU pod:

    1. an idle node: ``max(33 - free_gpus, free_gpus)``;
    2. a used node where the pod needs fully free GPUs: ``max(50 - gpus_used, 33)``;
    3. a used node where the pod fits on a shared GPU (the tightest that fits):
       ``max(100 - (free_milli * 100 // 1000) // 10, 50)``.

    CPU-only pods score 0 everywhere.
    """
    if req.num == 0:
        return np.zeros(feasible.size, np.int64)
    cnt = state.gpu_cnt[feasible]
    full = state.full_free[feasible]
    idle = full == cnt
    case3 = np.maximum(MAX_NODE_SCORE // 3 - full, full)
    if req.is_share:
        rows = state.gpu_free[feasible]
        fits = rows >= req.milli
        tight = np.where(fits, rows, MILLI_PER_GPU + 1).min(axis=1)
        shared = tight < MILLI_PER_GPU
        case2 = np.full(feasible.size, max(MAX_NODE_SCORE // 2 - 1, MAX_NODE_SCORE // 3))
        case1 = np.maximum(
            MAX_NODE_SCORE - (tight * 100 // MILLI_PER_GPU) // 10, MAX_NODE_SCORE // 2
        )
        used = np.where(shared, case1, case2)
    else:
        used = np.full(feasible.size, max(MAX_NODE_SCORE // 2 - req.num, MAX_NODE_SCORE // 3))
    return np.where(idle, case3, used).astype(np.int64)


# --------------------------------------------------------------------- FGD


def score_fgd(state: ClusterState, req: PodReq, feasible: np.ndarray,
              rng: Rng | None) -> np.ndarray:
    """FGD (``fgd_score.go``): ``int(100 * sigmoid((frag_before - frag_after) / 1000))``, the
    node whose fragmentation grows least wins (:func:`~cohabit.placement.parts.fgd_scores`,
    memoised per node state and pod shape)."""
    return fgd_scores(state, req, feasible)


def _first_best(row: list[int], scores: dict[int, float] | dict[int, int],
                extra: Callable[[int], float] | None = None) -> tuple[int, ...]:
    """Index of the first GPU of ``row`` (free milli per GPU) with the highest score
    (``scores`` by free milli, GPUs not in it do not fit), minus ``extra(i)``; ``()`` if none."""
    best, best_i = -math.inf, -1
    for i, g in enumerate(row):
        s = scores.get(g)
        if s is None:
            continue
        if extra is not None:
            s = s - extra(i)
        if best_i < 0 or s > best:
            best, best_i = s, i
    return (best_i,) if best_i >= 0 else ()


def gpus_fgd(state: ClusterState, req: PodReq, node: int, rng: Rng | None) -> tuple[int, ...]:
    """FGD's GPU choice: for a sharing pod the fitting GPU with the highest FGD score (the
    lowest index on ties); else the lowest-index fully free GPUs."""
    if not req.is_share:
        return gpus_best(state, req, node, rng)
    scores = fgd_gpu_scores(state, int(state.state_id[node]), req)
    return _first_best(state.gpu_free[node, : state.gpu_cnt[node]].tolist(), scores)


# --------------------------------------------------------------------- cohabit


def _dynamic_nodes(state: ClusterState, req: PodReq) -> set[int]:
    """Nodes where a pod-dependent part (interference, correlation, peak fit) may apply."""
    out: set[int] = set()
    inter = state.interference
    if inter is not None and inter.on_node and req.key in inter.profiles:
        out.update(inter.on_node)
    usage = state.usage
    if usage is not None and req.is_share and req.key in usage.pods:
        w = weights_of(state)
        if w.correlation or w.peak_fit:
            out.update(usage.on_node)
    return out


def _gpu_penalty(state: ClusterState, req: PodReq, node: int) -> Callable[[int], float]:
    """``penalty(gpu) -> points`` of the pod-dependent parts for ``req`` on ``node``:
    interference (:meth:`Interference.points`), correlation with the GPU's pods (positive
    part, ``ScoreWeights.correlation`` points per unit) and predicted peak overflow of the
    GPU (``ScoreWeights.peak_fit`` points per GPU)."""
    inter = state.interference
    usage = state.usage
    w = weights_of(state)
    profiled = inter is not None and req.key in inter.profiles
    mine = usage.pods.get(req.key) if usage is not None else None

    def penalty(gpu: int) -> float:
        pts = inter.points(req.key, node, (gpu,)) if profiled and inter is not None else 0.0
        if mine is not None and usage is not None:  # mine comes from usage
            if w.correlation:
                c = usage.max_corr(req.key, node, gpu)
                if c > 0:
                    pts += w.correlation * c
            if w.peak_fit:
                over = usage.peak_sum(node, gpu) + mine.peak - MILLI_PER_GPU
                if over > 0:
                    pts += w.peak_fit * over / MILLI_PER_GPU
        return pts

    return penalty


def cohabit_choice(state: ClusterState, req: PodReq, node: int) -> tuple[float, tuple[int, ...]]:
    """cohabit's score and GPU choice on one node (see :func:`score_cohabit`).

    A sharing pod tries every GPU that fits and keeps the best combined score (the lowest
    index on ties); a whole-GPU, multi-GPU or CPU-only pod takes the lowest-index free GPUs
    and pays the node-scope interference penalty.
    """
    inter = state.interference
    if req.is_share:
        scores = static_gpu_scores(state, node, req)
        row = state.gpu_free[node, : state.gpu_cnt[node]].tolist()
        extra = _gpu_penalty(state, req, node)
        gpus = _first_best(row, scores, extra)
        return scores[row[gpus[0]]] - extra(gpus[0]), gpus
    gpus = gpus_best(state, req, node, None)
    score = float(static_scores(state, req, np.array([node]))[0])
    pen = (inter.points(req.key, node, gpus)
           if inter is not None and req.key in inter.profiles else 0.0)
    return score - pen, gpus


def score_cohabit(state: ClusterState, req: PodReq, feasible: np.ndarray,
                  rng: Rng | None) -> np.ndarray:
    """cohabit: the weighted sum of the score parts of :mod:`cohabit.placement.parts`.

    ``score(n) = fragmentation * FGD(n) + lookahead * look-ahead gain(n) / 1000
    - 100 * w * sum_j [slowdown(pod | j) + slowdown(j | pod)]``, weights from
    :class:`~cohabit.config.placement.ScoreWeights` (``state.weights``) and the interference
    weight ``w`` (:attr:`Interference.weight`). FGD is Weng et al., ATC'23 (``fgd_score.go``);
    the look-ahead fragment is :mod:`cohabit.placement.lookahead`; the penalty is the
    pressure/sensitivity co-location model of Bubble-Up (MICRO'11) and Paragon (ASPLOS'13),
    with the slowdown predicted by the callable the engine injects.

    Speed: the fragmentation and look-ahead parts are memoised per (node state, pod shape);
    only nodes that hold a profiled pod are re-scored, and only when the incoming pod has a
    profile. With ``lookahead = 0`` and no profiles the scores (and binds) are exactly
    ``fgd``'s.
    """
    base = static_scores(state, req, feasible)
    dyn = _dynamic_nodes(state, req)
    if not dyn:
        return base
    nodes = np.fromiter(sorted(dyn), np.int64, len(dyn))
    pos = np.searchsorted(feasible, nodes)
    ok = pos < feasible.size
    pos, nodes = pos[ok], nodes[ok]
    hit = feasible[pos] == nodes
    if not hit.any():
        return base
    out = base.copy()
    dyn_pos = pos[hit]
    for p, n in zip(dyn_pos.tolist(), nodes[hit].tolist(), strict=True):
        out[p] = cohabit_choice(state, req, n)[0]
    # penalties may have lowered the best: the look-ahead part of the nodes now near the top
    bound = lookahead_bound(state)
    if bound > 0:
        near = out >= out.max() - 2.0 * bound
        near[dyn_pos] = False
        idx = np.flatnonzero(near)
        if idx.size:
            out[idx] = static_exact(state, req, feasible[idx])
    return out


def gpus_cohabit(state: ClusterState, req: PodReq, node: int,
                 rng: Rng | None) -> tuple[int, ...]:
    """cohabit's GPU choice: the fitting GPU with the best combined score
    (:func:`cohabit_choice`); lowest-index free GPUs for a whole/multi-GPU pod."""
    if not req.is_share:
        return gpus_best(state, req, node, rng)
    if node not in _dynamic_nodes(state, req):
        scores = static_gpu_scores(state, node, req)
        return _first_best(state.gpu_free[node, : state.gpu_cnt[node]].tolist(), scores)
    return cohabit_choice(state, req, node)[1]


POLICIES: dict[str, Policy] = {
    "random": Policy("random", score_random, gpus_random, "random_score.go"),
    "dot-product": Policy("dot-product", score_dot_product, gpus_best, "dot_product_score.go"),
    "gpu-clustering": Policy(
        "gpu-clustering", score_gpu_clustering, gpus_best, "gpu_clustering_score.go"
    ),
    "gpu-packing": Policy("gpu-packing", score_gpu_packing, gpus_best, "gpu_packing_score.go"),
    "best-fit": Policy("best-fit", score_best_fit, gpus_best, "best_fit_score.go"),
    "fgd": Policy("fgd", score_fgd, gpus_fgd, "fgd_score.go"),
    "cohabit": Policy("cohabit", score_cohabit, gpus_cohabit,
                      "fgd_score.go + cohabit.placement.parts"),
    "kube-default": Policy("kube-default", score_kube_default, gpus_best,
                           "kube-scheduler v1.20 least_allocated.go + balanced_allocation.go"),
    "kube-knots": Policy("kube-knots", score_kube_knots, gpus_kube_knots,
                         "Kube-Knots CBP+PP (CLUSTER'19)", admit=resize_p90),
    "load-aware": Policy("load-aware", score_load_aware, gpus_load_aware,
                         "koordinator loadaware plugin"),
}
"""Every placement policy by registry name (the ``--policy`` values of ``cohabit simulate``)."""
