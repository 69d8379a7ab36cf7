"""One scheduling decision: filter -> score -> pick a node, then pick GPUs inside it.

The shape of a kube-scheduler cycle (``Filter``, ``Score``, ``selectHost``, then the
Open-Gpu-Share ``Reserve`` that picks the GPU index), as the FGD paper's simulator runs it.
"""

from __future__ import annotations

import numpy as np

from cohabit.model import Bind, Pod
from cohabit.placement.policies import POLICIES
from cohabit.placement.state import ClusterState, PodReq

__all__ = ["select", "select_req"]


def _rng(rng: np.random.Generator | None, seed: int | None) -> np.random.Generator | None:
    if rng is not None:
        return rng
    if seed is not None:
        return np.random.default_rng(seed)
    return None


def select_req(
    state: ClusterState,
    req: PodReq,
    policy: str,
    rng: np.random.Generator | None = None,
) -> tuple[int, tuple[int, ...]] | None:
    """:func:`select` on an already converted request: ``(node index, GPU indices)``."""
    try:
        plugin = POLICIES[policy]
    except KeyError:
        raise ValueError(
            f"unknown placement policy {policy!r}; known: {', '.join(POLICIES)}"
        ) from None
    feasible = state.feasible(req)
    if feasible.size == 0:
        return None
    scores = plugin.score(state, req, feasible, rng)
    best = scores.max()
    if best == -np.inf:
        return None  # the policy refuses every node for now (the pod waits)
    cands = feasible[scores == best]
    node = int(cands[np.argmin(state.prio[cands])]) if cands.size > 1 else int(cands[0])
    gpus = plugin.gpus(state, req, node, rng)
    if len(gpus) != req.num:  # pragma: no cover - the filter guarantees a fit
        raise RuntimeError(f"policy {policy} chose node {state.names[node]} without GPUs")
    return node, gpus


def select(
    state: ClusterState,
    pod: Pod,
    policy: str,
    *,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
) -> Bind | None:
    """Choose a node (and GPUs) for ``pod`` under ``policy``; None when no node fits.

    Args:
        state: the cluster; not changed (apply the returned bind with ``state.apply``).
        pod: the pending pod.
        policy: a key of :data:`~cohabit.placement.POLICIES`.
        rng: random generator for the ``random`` policy (or pass ``seed``).
        seed: seed for a fresh generator when ``rng`` is None.

    Returns:
        ``Bind(pod.key, node, gpu_indices)``: the feasible node with the highest score; ties
        go to the node with the lowest ``state.prio`` (by default the smallest name, as in
        the FGD paper's scheduler, where node names carry a random prefix from the seed).

    Raises:
        ValueError: unknown policy, a bad pod, ``random`` without ``rng``/``seed``, ``fgd``
            on a state without a typical-pod distribution.
    """
    req = state.request(pod)
    picked = select_req(state, req, policy, _rng(rng, seed))
    if picked is None:
        return None
    node, gpus = picked
    state.remember(req, pod)
    return Bind(req.key, state.names[node], gpus, reason=f"policy {policy}")
