"""Why a pod fits nowhere, counted per node in kube-scheduler's FailedScheduling words."""

from __future__ import annotations

import pytest

from cohabit.model import GpuDevice, Node, Pod
from cohabit.placement import ClusterState
from cohabit.placement.explain import unfit_reasons, unschedulable_message


def node(name, cpu=8000, mem=32768, gpus=0, model="A10", free=1000):
    devices = tuple(GpuDevice(i, model, free) for i in range(gpus))
    return Node(name, cpu, mem, cpu, mem, devices)


NODES = [node("cpu-a"), node("a10", gpus=2), node("t4", gpus=1, model="T4"),
         node("a10-busy", gpus=1, free=300)]


@pytest.mark.parametrize(
    ("pod", "reasons"),
    [(Pod("big-cpu", 16000, 1024), {"Insufficient cpu": 4}),
     (Pod("big-both", 16000, 65536), {"Insufficient cpu": 4, "Insufficient memory": 4}),
     (Pod("two-gpus", 1000, 1024, 2, 1000, gpu_spec=frozenset({"T4"})),
      {"node(s) had no GPU": 1, "node(s) had no GPU of model T4": 2,
       "Insufficient nvidia.com/gpu": 1}),
     (Pod("three-gpus", 1000, 1024, 3, 1000),
      {"node(s) had no GPU": 1, "Insufficient nvidia.com/gpu": 3}),
     (Pod("share", 1000, 1024, 1, 800, gpu_spec=frozenset({"A10"})),  # fits on a10 only
      {"node(s) had no GPU": 1, "node(s) had no GPU of model A10": 1,
       "Insufficient nvidia.com/gpu": 1})],
    ids=["cpu", "cpu-and-memory", "model-and-count", "gpu-count", "fits-one-node"],
)
def test_unfit_reasons_count_nodes_per_failed_check(pod, reasons):
    state = ClusterState.from_nodes(NODES, [])
    assert dict(unfit_reasons(state, pod)) == reasons


def test_message_is_kube_schedulers():
    state = ClusterState.from_nodes(NODES, [])
    text = unschedulable_message(state, Pod("p", 16000, 65536, namespace="ns"))
    assert text == "0/4 nodes are available: 4 Insufficient cpu, 4 Insufficient memory."
    empty = ClusterState.from_nodes([], [])
    assert unschedulable_message(empty, Pod("p", 1, 1)).startswith("0/0 nodes are available")
