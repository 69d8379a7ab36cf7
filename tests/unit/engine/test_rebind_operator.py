"""The operator's rebinding pass runs the simulator's defragmentation step
(``engine.rebind.rebinding_evictions`` through ``reconcile_once``): the same move the
simulator keeps, as an ``Evict`` of a managed, evictable pod, only when rebinding is on."""

from __future__ import annotations

import pytest

from cohabit.config import PolicyConfig, RebindingConfig
from cohabit.engine.rebind import defragment, rebinding_evictions
from cohabit.engine.reconcile import reconcile_once
from cohabit.model import (
    Evict,
    GpuDevice,
    Node,
    Pod,
    QosTarget,
    Resources,
    Snapshot,
    Workload,
    WorkloadKind,
)
from cohabit.placement import ClusterState, typical_pods

NOW = 2_000_000_000.0


def _node(name: str, gpus: int) -> Node:
    return Node(name, 32_000, 131_072, 32_000, 131_072,
                tuple(GpuDevice(i, "T4", 1000, 16_384) for i in range(gpus)))


def _pod(name: str, milli: int, node: str, gpu: int, workload: str | None = "sd",
         evictable: bool = True) -> Pod:
    return Pod(name, 1000, 1024, 1, milli, namespace="ns", node=node, gpu_indices=(gpu,),
               workload=workload, evictable=evictable, creation_time=NOW - 3600)


def _workload(placement: str = "managed") -> Workload:
    return Workload("sd", WorkloadKind.GPU_INFERENCE, QosTarget("p99_latency_ms", 100.0, "q"),
                    "ns", Resources(100, 512, 100, 0), Resources(4000, 8192, 1000, 16_384),
                    "Apply", placement, "Deployment", "sd")


def _snapshot(evictable: bool = True) -> Snapshot:
    """a and b: one T4 each; a holds a 100-milli pod, b an 800-milli pod (both of the managed
    workload ``sd``); c: four T4s busy with whole-GPU pods of no cohabit workload. The typical
    pods are mostly whole GPUs, so the 900 idle milli on a are fragment: moving the small pod
    into b's 200-milli hole frees a's GPU (FGD's fragment falls by about 900 milli)."""
    pods = [_pod("s", 100, "a", 0, evictable=evictable), _pod("big", 800, "b", 0,
                                                              evictable=evictable)]
    pods += [_pod(f"w{i}", 1000, "c", i, workload=None) for i in range(4)]
    return Snapshot(NOW, (_node("a", 1), _node("b", 1), _node("c", 4)), tuple(pods))


def _evicts(plan) -> list[Evict]:  # noqa: ANN001
    return [a for a in plan.actions if isinstance(a, Evict)]


def test_operator_pass_proposes_the_defragmentation_move():
    plan = reconcile_once(_snapshot(), [_workload()], None,
                          PolicyConfig(policy="cohabit", rebinding=RebindingConfig(enabled=True)),
                          NOW)
    [evict] = _evicts(plan)
    assert evict.pod == "ns/s"
    assert evict.reason == "defragment: frees GPU milli on a"


def test_operator_move_is_the_simulators_move():
    snap = _snapshot()
    state = ClusterState.from_nodes(list(snap.nodes), list(snap.pods))
    state.set_typical(typical_pods(list(snap.pods)))
    [move] = defragment(state, "fgd")
    actions = rebinding_evictions(state, "fgd", [])
    assert [a.pod for a in actions] == list(move.victims)


@pytest.mark.parametrize("case", ["rebinding-off", "not-managed", "pdb", "best-fit"])
def test_no_defragmentation_move_when_not_allowed(case):
    rebinding = RebindingConfig(enabled=case != "rebinding-off")
    policy = "best-fit" if case == "best-fit" else "cohabit"  # best-fit: no typical pods
    workload = _workload("unmanaged" if case == "not-managed" else "managed")
    plan = reconcile_once(_snapshot(evictable=case != "pdb"), [workload], None,
                          PolicyConfig(policy=policy, rebinding=rebinding), NOW)
    assert _evicts(plan) == []


def test_a_pod_is_evicted_at_most_once_per_pass():
    snap = _snapshot()
    state = ClusterState.from_nodes(list(snap.nodes), list(snap.pods))
    state.set_typical(typical_pods(list(snap.pods)))
    before = (state.cpu_free.tolist(), state.gpu_free.tolist(), sorted(state.bound))
    actions = rebinding_evictions(state, "cohabit", [], defrag_moves=4)
    assert len({a.pod for a in actions}) == len(actions) == 1
    assert (state.cpu_free.tolist(), state.gpu_free.tolist(), sorted(state.bound)) == before
    assert rebinding_evictions(state, "cohabit", [], defrag_moves=0) == []
