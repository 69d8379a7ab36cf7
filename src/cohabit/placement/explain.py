"""Why a pod fits on no node, in the words kube-scheduler uses in its ``FailedScheduling``
Events (``0/4 nodes are available: 2 Insufficient cpu, 2 Insufficient nvidia.com/gpu.``).

The checks are those of :meth:`ClusterState.feasible` (the filter every policy runs), one at a
time so each node's failing checks can be counted; a node may fail several, as in
kube-scheduler's message.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from cohabit.model import MILLI_PER_GPU, Pod
from cohabit.placement.state import ClusterState

__all__ = ["unfit_reasons", "unschedulable_message"]


def unfit_reasons(state: ClusterState, pod: Pod) -> Counter[str]:
    """Filter failure -> number of nodes failing it, for ``pod`` on ``state``.

    Reasons: ``Insufficient cpu``, ``Insufficient memory``, ``node(s) had no GPU`` (a GPU pod
    on a node without GPUs), ``node(s) had no GPU of model A|B`` (none of the acceptable
    models), ``Insufficient nvidia.com/gpu`` (no GPU with the share free, or not ``num``
    whole GPUs free).

    Raises:
        ValueError: a bad pod (see :meth:`ClusterState.request`).
    """
    req = state.request(pod)
    reasons: Counter[str] = Counter()
    n = state.n_nodes
    if n == 0:
        return reasons
    reasons["Insufficient cpu"] = int(np.count_nonzero(state.cpu_free[:n] < req.cpu))
    reasons["Insufficient memory"] = int(np.count_nonzero(state.mem_free[:n] < req.mem))
    if req.num > 0:
        has_gpu = state.gpu_cnt[:n] > 0
        model_ok = state.spec_mask(req.spec)[:n] & has_gpu
        reasons["node(s) had no GPU"] = int(np.count_nonzero(~has_gpu))
        if req.spec:
            models = "|".join(sorted(req.spec))
            reasons[f"node(s) had no GPU of model {models}"] = int(
                np.count_nonzero(has_gpu & ~model_ok))
        if req.milli < MILLI_PER_GPU:
            short = state.max_free[:n] < req.milli
        else:
            short = state.full_free[:n] < req.num
        reasons["Insufficient nvidia.com/gpu"] = int(np.count_nonzero(model_ok & short))
    return +reasons  # drop zero counts


def unschedulable_message(state: ClusterState, pod: Pod) -> str:
    """kube-scheduler's ``FailedScheduling`` message for a pod that fits nowhere:
    ``0/N nodes are available: <count> <reason>, ....`` (reasons sorted by name, as
    kube-scheduler sorts them)."""
    reasons = unfit_reasons(state, pod)
    n = state.n_nodes
    if n == 0:
        return "0/0 nodes are available: no Ready, schedulable nodes."
    parts = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
    return f"0/{n} nodes are available: {parts or 'no node passed the filter'}."
