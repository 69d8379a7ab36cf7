"""What a cluster dashboard shows, from one :class:`~cohabit.model.Snapshot`: GPU allocation
and fragmentation per GPU model, and the pods waiting for cohabit by QoS class.

The GPU figures are the FGD paper's (Weng et al., "Beware of Fragmentation: Scheduling
GPU-Sharing Workloads with Fragmentation Gradient Descent", USENIX ATC'23), computed by the
same placement code the simulator reports them with: a
:class:`~cohabit.placement.ClusterState` of the GPU model's nodes, the typical-pod
distribution of the snapshot's pods (:func:`~cohabit.placement.typical_pods`, as the ``fgd``
policy uses it), and :func:`~cohabit.placement.cluster_frag` for the fragment and idle
milli-GPU. Nothing here is re-derived.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cohabit.model import MILLI_PER_GPU, Node, Pod, Snapshot
from cohabit.placement import ClusterState, cluster_frag, typical_pods

__all__ = ["GpuModelView", "PendingView", "gpu_model_views", "pending_views"]


@dataclass(frozen=True, slots=True)
class GpuModelView:
    """The GPUs of one model across the cluster's schedulable nodes.

    Attributes:
        model: GPU model (``nvidia.com/gpu.product``, e.g. ``A10``).
        nodes: nodes with GPUs of this model.
        gpus: GPUs of this model.
        capacity_milli: ``gpus x 1000`` milli-GPU.
        idle_milli: unallocated milli-GPU.
        frag_milli: fragment milli-GPU (FGD's fragmentation measure of every node, summed);
            ``None`` when the snapshot has no pods to take the typical-pod distribution from.
    """

    model: str
    nodes: int
    gpus: int
    capacity_milli: int
    idle_milli: int
    frag_milli: float | None

    @property
    def allocation_ratio(self) -> float:
        """Allocated / capacity milli-GPU, 0..1 (FGD's GPU allocation ratio)."""
        return 1.0 - self.idle_milli / self.capacity_milli if self.capacity_milli else 0.0

    @property
    def fragmentation_ratio(self) -> float | None:
        """Fragment / idle milli-GPU, 0..1 (FGD's fragmentation ratio; 0 when nothing is
        idle; ``None`` without a typical-pod distribution)."""
        if self.frag_milli is None:
            return None
        return self.frag_milli / self.idle_milli if self.idle_milli else 0.0

    @property
    def fragmented_gpus(self) -> float | None:
        """Fragment milli-GPU in GPUs (FGD's fragmentation amount)."""
        return None if self.frag_milli is None else self.frag_milli / MILLI_PER_GPU


def gpu_model_views(snapshot: Snapshot) -> list[GpuModelView]:
    """One :class:`GpuModelView` per GPU model of ``snapshot`` (sorted by model).

    The free shares are the snapshot's own (``Node.cpu_free_milli``, ``GpuDevice.milli_free``:
    every bound pod counted, whoever bound it); the typical pods are every pod of the snapshot,
    bound and pending.

    Raises:
        ValueError: a node with GPUs of several models (as
            :meth:`~cohabit.placement.ClusterState.from_nodes`).
    """
    by_model: dict[str, list[Node]] = {}
    for node in snapshot.nodes:
        if node.gpus:
            by_model.setdefault(node.gpu_model, []).append(node)
    typical = typical_pods(list(snapshot.pods)) if snapshot.pods else None
    views = []
    for model in sorted(by_model):
        state = ClusterState.from_nodes(by_model[model], typical=typical)
        frag = cluster_frag(state) if typical is not None else None
        capacity = int(state.gpu_cnt.sum()) * MILLI_PER_GPU
        views.append(GpuModelView(
            model=model, nodes=len(by_model[model]), gpus=int(state.gpu_cnt.sum()),
            capacity_milli=capacity, idle_milli=int(state.total_free.sum()),
            frag_milli=None if frag is None else frag.frag_milli))
    return views


@dataclass(frozen=True, slots=True)
class PendingView:
    """Pods of one QoS class waiting for a node.

    Attributes:
        qos_class: the pods' QoS class (``Guaranteed``, ``Burstable``, ``BestEffort``, ...).
        pods: how many.
        oldest_age_s: seconds since the oldest of them was created.
    """

    qos_class: str
    pods: int
    oldest_age_s: float


def pending_views(pods: Iterable[Pod], now: float, placed: Iterable[str] = ()) -> list[PendingView]:
    """The pods without a node (except ``placed``: keys bound since the snapshot), per QoS
    class, sorted by class; a class without pending pods is absent."""
    done = set(placed)
    groups: dict[str, list[Pod]] = {}
    for pod in pods:
        if pod.node is None and pod.deletion_time is None and pod.key not in done:
            groups.setdefault(pod.qos.value, []).append(pod)
    return [PendingView(qos, len(ps), max(0.0, now - min(p.creation_time for p in ps)))
            for qos, ps in sorted(groups.items())]
