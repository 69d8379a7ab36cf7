"""Cluster-level fragmentation (the FGD paper's ``ClusterGpuFragReport``,
``pkg/simulator/analysis.go``): fragment milli over idle milli and over capacity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cohabit.model import MILLI_PER_GPU
from cohabit.placement.parts import frag_model
from cohabit.placement.state import ClusterState

__all__ = ["ClusterFrag", "cluster_frag"]


@dataclass(frozen=True, slots=True)
class ClusterFrag:
    """Fragmentation of the whole cluster.

    Attributes:
        frag_milli: fragment milli-GPU summed over nodes.
        idle_milli: unallocated milli-GPU.
        capacity_milli: all milli-GPU of the cluster.
    """

    frag_milli: float
    idle_milli: int
    capacity_milli: int

    @property
    def ratio_pct(self) -> float:
        """Fragment / idle milli, % (``frag_ratio_pct``; 0 when nothing is idle)."""
        return 100.0 * self.frag_milli / self.idle_milli if self.idle_milli else 0.0

    @property
    def amount_pct(self) -> float:
        """Fragment milli / cluster milli, % (``frag_amount_pct_of_cluster_gpus``)."""
        return 100.0 * self.frag_milli / self.capacity_milli if self.capacity_milli else 0.0


def node_frags(state: ClusterState) -> np.ndarray:
    """Fragment milli of every node, ``float[N]`` (memoised per node state)."""
    fm = frag_model(state)
    tab = state.caches.get("frag_tab")
    n_states = len(state.state_keys)
    if tab is None or tab.size < n_states:
        new = np.full(max(2 * n_states, 64), np.nan)
        if tab is not None:
            new[: tab.size] = tab
        tab = new
        state.caches["frag_tab"] = tab
    vals = tab[state.state_id]
    miss = np.isnan(vals)
    if miss.any():
        keys = state.state_keys
        for sid in np.unique(state.state_id[miss]).tolist():
            tab[sid] = fm.frag(keys[sid])
        vals = tab[state.state_id]
    return vals


def cluster_frag(state: ClusterState) -> ClusterFrag:
    """:class:`ClusterFrag` of the current state.

    Raises:
        ValueError: the state has no typical-pod distribution.
    """
    return ClusterFrag(
        frag_milli=float(node_frags(state).sum()),
        idle_milli=int(state.total_free.sum()),
        capacity_milli=int(state.gpu_cnt.sum()) * MILLI_PER_GPU,
    )
