"""Baseline score plugins beyond the FGD paper's six, each as its source describes it.

* ``kube-default``: Kubernetes' default scoring of the v1.20 scheduler the FGD artifact runs
  on: ``NodeResourcesLeastAllocated`` (LeastRequestedPriority) plus
  ``NodeResourcesBalancedAllocation`` (BalancedResourceAllocation), weight 1 each, over CPU
  and memory requests (kubernetes ``pkg/scheduler/framework/plugins/noderesources``:
  ``least_allocated.go``, ``balanced_allocation.go``); the GPU inside the node is chosen by
  the GPU-share device plugin's bin packing (``best``). URSA (Zheng et al.) compares its
  unfairness against LeastRequestedPriority.
* ``kube-knots``: Kube-Knots CBP+PP (Thinakaran et al., "Kube-Knots: Resource Harvesting
  through Dynamic Container Orchestration in GPU-based Datacenters", IEEE CLUSTER 2019).
  *Correlation-Based Prediction*: a pod shares a GPU only with pods whose utilisation
  correlation with it is below 0.5. *Peak Prediction*: the peaks predicted for the GPU's
  pods (the pod's own included) must fit in the GPU; the engine predicts each pod's peak
  with :func:`cohabit.predictors.pp_forecast` (AR(1) when the lag-1 autocorrelation passes
  the 0.5 gate, the window peak otherwise). Among the GPUs that pass, the most utilised one
  wins (Kube-Knots consolidates to harvest idle cycles); a pod that passes nowhere waits.
  Its admission hook resizes latency-sensitive sharing pods to the p90 of their usage
  history (:func:`resize_p90`), the harvesting step of the paper.
* ``load-aware``: Koordinator's ``LoadAwareScheduling`` (koordinator-sh/koordinator
  ``pkg/scheduler/plugins/loadaware``) on GPUs: estimated usage (mean activity x request)
  instead of requests; a latency-sensitive pod is filtered off a GPU whose estimated usage
  with it would exceed :data:`LOAD_AWARE_THRESHOLD` (koordinator's default CPU usage
  threshold, 65 %); the least used node wins and, inside it, the least used GPU. Best-effort
  pods are not filtered (they take reclaimed resources, as koordinator's batch resources).

Their undefined values follow the sources: a correlation Kube-Knots cannot compute (a
constant or missing history) counts as uncorrelated; every usage-aware baseline falls back to
requests for a pod without usage.
"""

from __future__ import annotations

import math

import numpy as np

from cohabit.model import MILLI_PER_GPU, Pod
from cohabit.placement.state import ClusterState, PodReq
from cohabit.placement.usage import PodUsage

__all__ = [
    "CBP_THRESHOLD",
    "LOAD_AWARE_THRESHOLD",
    "gpus_kube_knots",
    "gpus_load_aware",
    "resize_p90",
    "score_kube_default",
    "score_kube_knots",
    "score_load_aware",
]

MAX_NODE_SCORE = 100
CBP_THRESHOLD = 0.5
"""Kube-Knots co-locates two pods only when their utilisation correlation is below this."""
LOAD_AWARE_THRESHOLD = 0.65
"""Estimated GPU usage (share of the GPU) above which ``load-aware`` keeps LS pods off."""
DEFAULT_MEMORY_MIB = 200
"""Memory a pod without a memory request counts as (kube-scheduler's ``DefaultMemoryRequest``,
200 MB)."""

Rng = np.random.Generator


# --------------------------------------------------------------------- Kubernetes default


def score_kube_default(state: ClusterState, req: PodReq, feasible: np.ndarray,
                       rng: Rng | None) -> np.ndarray:
    """LeastAllocated + BalancedAllocation (kube-scheduler v1.20), 0..200.

    LeastAllocated: ``((cap - used - pod) * 100 // cap)`` for CPU and memory, averaged
    (integer). BalancedAllocation: ``int((1 - |cpu_fraction - mem_fraction|) * 100)``, 0
    when either fraction reaches 1. Requests are the non-zero ones (100 milli CPU, 200 MB).
    """
    cpu = max(req.cpu, 100)
    mem = req.mem if req.mem > 0 else DEFAULT_MEMORY_MIB
    cap_c = state.cpu_cap[feasible]
    cap_m = state.mem_cap[feasible]
    used_c = cap_c - state.cpu_free[feasible] + cpu
    used_m = cap_m - state.mem_free[feasible] + mem
    least_c = np.where(cap_c > 0, (cap_c - used_c) * MAX_NODE_SCORE // np.maximum(cap_c, 1), 0)
    least_m = np.where(cap_m > 0, (cap_m - used_m) * MAX_NODE_SCORE // np.maximum(cap_m, 1), 0)
    least = (np.maximum(least_c, 0) + np.maximum(least_m, 0)) // 2
    fc = used_c / np.maximum(cap_c, 1)
    fm = used_m / np.maximum(cap_m, 1)
    balanced = np.where((fc >= 1) | (fm >= 1), 0,
                        np.trunc((1.0 - np.abs(fc - fm)) * MAX_NODE_SCORE)).astype(np.int64)
    return least + balanced


# --------------------------------------------------------------------- Kube-Knots


def _request(req: PodReq) -> float:
    return float(req.milli)


def _knots_gpu_scores(state: ClusterState, req: PodReq, node: int) -> dict[int, float]:
    """GPU index -> predicted utilisation after placement (milli), for the GPUs of ``node``
    that fit and pass CBP and PP; a pod without usage is judged by its request."""
    usage = state.usage
    mine = usage.pods.get(req.key) if usage is not None else None
    my_peak = mine.peak if mine is not None else _request(req)
    out: dict[int, float] = {}
    for i, free in enumerate(state.gpu_free[node, : state.gpu_cnt[node]].tolist()):
        if free < req.milli:
            continue
        if usage is None:
            out[i] = float(MILLI_PER_GPU - free + req.milli)
            continue
        others = usage.neighbours(node, i)
        held = MILLI_PER_GPU - free - sum(usage.pods[k].request for k in others)
        peaks = usage.peak_sum(node, i) + held + my_peak  # pods without usage: requests
        if peaks > MILLI_PER_GPU:
            continue  # PP: the predicted peaks do not fit in the GPU
        if mine is not None and any(usage.corr(req.key, k) >= CBP_THRESHOLD for k in others):
            continue  # CBP: correlated utilisation (NaN compares False: uncorrelated)
        out[i] = peaks
    return out


def score_kube_knots(state: ClusterState, req: PodReq, feasible: np.ndarray,
                     rng: Rng | None) -> np.ndarray:
    """Kube-Knots CBP+PP (see the module docstring): for a sharing pod the best GPU's
    predicted utilisation after placement (milli; higher = more consolidated), ``-inf`` on
    a node where no GPU passes CBP and PP; a whole, multi-GPU or CPU-only pod (no GPU
    sharing) scores like best-fit by requests."""
    if not req.is_share:
        cpu_left = (state.cpu_free[feasible] - req.cpu_score) / 128_000.0
        gpu_left = (state.total_free[feasible] - req.total_milli) / 8_000.0
        return 1.0 - 0.5 * cpu_left - 0.5 * gpu_left
    out = np.full(feasible.size, -math.inf)
    for p, n in enumerate(feasible.tolist()):
        scores = _knots_gpu_scores(state, req, n)
        if scores:
            out[p] = max(scores.values())
    return out


def gpus_kube_knots(state: ClusterState, req: PodReq, node: int,
                    rng: Rng | None) -> tuple[int, ...]:
    """The passing GPU with the highest predicted utilisation (lowest index on ties);
    lowest-index free GPUs for a whole/multi-GPU pod."""
    if not req.is_share:
        return state.first_fit_gpus(req, node)
    scores = _knots_gpu_scores(state, req, node)
    return _first_max(scores)


def resize_p90(pod: Pod, usage: PodUsage | None) -> Pod:
    """Kube-Knots' harvesting: a latency-sensitive sharing pod is resized to the 90th
    percentile of its usage history (``request * p90(activity)``, at least 10 milli, never
    above the request); other pods are left as they are."""
    if usage is None or not usage.latency_sensitive or not len(usage.history):
        return pod
    if not (pod.num_gpu == 1 and 0 < pod.gpu_milli < MILLI_PER_GPU):
        return pod
    p90 = float(np.percentile(usage.history, 90))
    milli = int(min(pod.gpu_milli, max(10, math.ceil(pod.gpu_milli * p90))))
    if milli == pod.gpu_milli:
        return pod
    from dataclasses import replace

    return replace(pod, gpu_milli=milli)


# --------------------------------------------------------------------- load-aware


def _estimated(state: ClusterState, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Estimated usage (milli) of every GPU of ``nodes`` (shape ``(len(nodes), max GPUs)``):
    the request of the pods on it minus what its pods with usage are not expected to use
    (:attr:`~cohabit.placement.usage.UsageView.relief`); and the mask of GPUs that exist."""
    held = MILLI_PER_GPU - state.gpu_free[nodes].astype(float)
    usage = state.usage
    if usage is not None and usage.relief is not None:
        held -= usage.relief[nodes]
    present = np.arange(held.shape[1])[None, :] < state.gpu_cnt[nodes][:, None]
    return held, present


def _load_gpu_ok(state: ClusterState, req: PodReq, nodes: np.ndarray,
                 est: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Mask ``(len(nodes), max GPUs)`` of the GPUs a sharing pod may take: enough free milli
    and, for a latency-sensitive pod, estimated usage with it at most the threshold."""
    usage = state.usage
    mine = usage.pods.get(req.key) if usage is not None else None
    ok = present & (state.gpu_free[nodes] >= req.milli)
    if mine is not None and mine.latency_sensitive:
        ok &= est + req.milli * mine.mean <= LOAD_AWARE_THRESHOLD * MILLI_PER_GPU
    return ok


def score_load_aware(state: ClusterState, req: PodReq, feasible: np.ndarray,
                     rng: Rng | None) -> np.ndarray:
    """Koordinator-style load-aware scoring (see the module docstring): ``100 * (1 -
    estimated GPU usage of the node after placement / its GPU capacity)`` plus, for a sharing
    pod, nothing on a node whose every fitting GPU is over the LS threshold (``-inf``);
    CPU-only pods score by CPU requests left (LeastAllocated). Vectorised over ``feasible``:
    shape ``(len(feasible),)``."""
    if req.num == 0:
        cap = state.cpu_cap[feasible].astype(float)
        return MAX_NODE_SCORE * (state.cpu_free[feasible] - req.cpu_score) / np.maximum(cap, 1)
    est, present = _estimated(state, feasible)
    total = np.where(present, est, 0.0).sum(axis=1) + req.total_milli
    cnt = state.gpu_cnt[feasible].astype(float)
    out = MAX_NODE_SCORE * (1.0 - total / (cnt * MILLI_PER_GPU))
    if req.is_share:
        ok = _load_gpu_ok(state, req, feasible, est, present)
        out[~ok.any(axis=1)] = -math.inf
    return out


def gpus_load_aware(state: ClusterState, req: PodReq, node: int,
                    rng: Rng | None) -> tuple[int, ...]:
    """The least used fitting GPU under the threshold (lowest index on ties); lowest-index
    free GPUs for a whole/multi-GPU pod."""
    if not req.is_share:
        return state.first_fit_gpus(req, node)
    nodes = np.array([node])
    est, present = _estimated(state, nodes)
    ok = _load_gpu_ok(state, req, nodes, est, present)[0]
    return _first_max({i: -float(est[0, i]) for i in np.flatnonzero(ok).tolist()})


def _first_max(scores: dict[int, float]) -> tuple[int, ...]:
    """``(gpu,)``: the lowest GPU index with the highest score; ``()`` when none passed."""
    if not scores:
        return ()
    best = max(scores.values())
    return (min(i for i, v in scores.items() if v == best),)
