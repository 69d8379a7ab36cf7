"""The dashboards' cluster view: FGD's allocation and fragmentation per GPU model, pending
pods by QoS class. Hand-checked cases, and a real openb slice placed by the engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from cohabit.engine.observe import gpu_model_views, pending_views
from cohabit.engine.reconcile import place_pending
from cohabit.model import GpuDevice, Node, Pod, QosClass, Snapshot
from cohabit.placement import ClusterState, cluster_frag, typical_pods
from cohabit.simulator import loaders


def node(name: str, model: str, free: list[int], cpu_free: int = 64_000) -> Node:
    return Node(name, 64_000, 256_000, cpu_free, 256_000,
                tuple(GpuDevice(i, model, f) for i, f in enumerate(free)))


SHARE = Pod("share", 1_000, 1_000, 1, 500)
WHOLE = Pod("whole", 8_000, 1_000, 1, 1000)


def test_allocation_and_fragmentation_per_model_by_hand():
    snap = Snapshot(0.0, (node("a", "A10", [1000, 300]), node("t", "T4", [1000, 1000, 1000]),
                          node("c", "", [])), (SHARE, WHOLE))
    views = {v.model: v for v in gpu_model_views(snap)}
    assert set(views) == {"A10", "T4"}  # the CPU-only node has no GPU view
    a10, t4 = views["A10"], views["T4"]
    assert (a10.nodes, a10.gpus, a10.capacity_milli, a10.idle_milli) == (1, 2, 2000, 1300)
    assert a10.allocation_ratio == pytest.approx(700 / 2000)
    # half the typical pods need 500 milli (300 free is a fragment for them), half a whole
    # GPU (300 is a fragment too): 0.5 x 300 + 0.5 x 300
    assert a10.frag_milli == pytest.approx(300)
    assert a10.fragmentation_ratio == pytest.approx(300 / 1300)
    assert a10.fragmented_gpus == pytest.approx(0.3)
    assert (t4.allocation_ratio, t4.frag_milli, t4.fragmentation_ratio) == (0.0, 0.0, 0.0)


def test_a_node_without_cpu_left_is_all_fragment():
    snap = Snapshot(0.0, (node("a", "A10", [1000, 1000], cpu_free=500),), (SHARE, WHOLE))
    [v] = gpu_model_views(snap)
    assert v.allocation_ratio == 0.0
    assert v.fragmentation_ratio == pytest.approx(1.0)  # no typical pod fits its CPU


def test_without_pods_there_is_no_fragmentation_figure():
    [v] = gpu_model_views(Snapshot(0.0, (node("a", "A10", [0, 1000]),), ()))
    assert v.allocation_ratio == 0.5
    assert v.frag_milli is None and v.fragmentation_ratio is None and v.fragmented_gpus is None


def test_a_full_gpu_model_has_no_idle_and_no_fragment():
    [v] = gpu_model_views(Snapshot(0.0, (node("a", "A10", [0, 0]),), (SHARE,)))
    assert (v.allocation_ratio, v.fragmentation_ratio) == (1.0, 0.0)


@pytest.fixture(scope="module")
def placed_slice(package_data: Path):
    """300 GPU nodes of the real openb cluster and 1,500 pods of the default list, placed by
    the engine's fgd placement (what the operator's scheduling pass runs)."""
    trace = loaders.load_trace("default", None)
    nodes = list(trace.nodes[:300])
    pods = list(trace.pods[:1500])
    binds, _ = place_pending(Snapshot(0.0, tuple(nodes), ()), pods, "fgd")
    where = {b.pod: b for b in binds}
    bound = [Pod(**{**{f: getattr(p, f) for f in p.__slots__}, "node": where[p.key].node,
                    "gpu_indices": where[p.key].gpu_indices})
             for p in pods if p.key in where]
    state = ClusterState.from_nodes(nodes, bound)
    return Snapshot(0.0, tuple(state.to_nodes()), tuple(bound)), bound


def test_real_slice_per_model_views_add_up_to_the_clusters_fgd_figures(placed_slice):
    snap, bound = placed_slice
    views = gpu_model_views(snap)
    assert len(views) >= 3  # several GPU models in the openb cluster
    whole = cluster_frag(ClusterState.from_nodes(list(snap.nodes),
                                                 typical=typical_pods(list(snap.pods))))
    assert sum(v.frag_milli for v in views) == pytest.approx(whole.frag_milli)
    assert sum(v.idle_milli for v in views) == whole.idle_milli
    assert sum(v.capacity_milli for v in views) == whole.capacity_milli
    model_of = {n.name: n.gpu_model for n in snap.nodes}
    for v in views:  # allocation = the GPU requests bound to the model's nodes
        used = sum(p.num_gpu * p.gpu_milli for p in bound if model_of[p.node] == v.model)
        assert v.allocation_ratio == pytest.approx(used / v.capacity_milli)
    assert any(0 < v.allocation_ratio < 1 for v in views)
    assert any((v.fragmentation_ratio or 0) > 0 for v in views)


def test_pending_by_qos_class_with_the_oldest_age():
    pods = [Pod("g1", 1, 1, qos=QosClass.GUARANTEED, creation_time=100.0),
            Pod("g2", 1, 1, qos=QosClass.GUARANTEED, creation_time=160.0),
            Pod("b1", 1, 1, qos=QosClass.BURSTABLE, creation_time=190.0),
            Pod("b2", 1, 1, qos=QosClass.BURSTABLE, creation_time=50.0),
            Pod("bound", 1, 1, qos=QosClass.BEST_EFFORT, node="n"),
            Pod("gone", 1, 1, qos=QosClass.BEST_EFFORT, deletion_time=180.0)]
    views = pending_views(pods, now=200.0, placed=["default/b2"])
    assert [(v.qos_class, v.pods, v.oldest_age_s) for v in views] == [
        ("Burstable", 1, 10.0), ("Guaranteed", 2, 100.0)]
    assert pending_views([], now=0.0) == []
