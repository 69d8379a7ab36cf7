"""Simulate-then-rebind: a move is replayed on the placement state, kept only if every pod
is placed, and the state is left as it was; the simulator's actuator then applies it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cohabit.engine.rebind import candidate_nodes, defragment, make_room
from cohabit.model import GpuDevice, Node, Pod
from cohabit.placement import ClusterState, select, typical_pods
from cohabit.placement.state import pod_request
from cohabit.simulator.cluster import SimulatedCluster


def mk_node(name, cpu=16_000, gpus=2, model="T4"):
    return Node(name, cpu, 64_000, cpu, 64_000, tuple(GpuDevice(i, model) for i in range(gpus)))


def mk_pod(name, cpu=1000, num=0, milli=0, node=None, gpus=(), evictable=True):
    return Pod(name, cpu, 1000, num, milli, node=node, gpu_indices=tuple(gpus),
               evictable=evictable)


def snapshot(state: ClusterState) -> tuple:
    return (state.cpu_free.tolist(), state.gpu_free.tolist(),
            sorted((k, b.node, b.gpus) for k, b in state.bound.items()))


CASES = [
    pytest.param(
        # a: both GPUs half used; b: one GPU with 500 free. A whole-GPU pod fits nowhere;
        # moving one 500 pod from a to b frees a GPU on a.
        [mk_node("a"), mk_node("b", gpus=1)],
        [mk_pod("x", num=1, milli=500, node="a", gpus=[0]),
         mk_pod("y", num=1, milli=500, node="a", gpus=[1]),
         mk_pod("z", num=1, milli=500, node="b", gpus=[0])],
        mk_pod("w", num=1, milli=1000), "a", 1, id="defragment-a-gpu",
    ),
    pytest.param(
        # a: idle GPU, CPU used up by a CPU-only pod that fits on b
        [mk_node("a", cpu=8000, gpus=1), mk_node("b", cpu=8000, gpus=0)],
        [mk_pod("cpu-hog", cpu=7500, node="a")],
        mk_pod("w", cpu=4000, num=1, milli=1000), "a", 1, id="free-cpu",
    ),
    pytest.param(
        # the victim would fit nowhere else: no move
        [mk_node("a", gpus=1)],
        [mk_pod("x", num=1, milli=600, node="a", gpus=[0])],
        mk_pod("w", num=1, milli=600), None, 0, id="victim-has-nowhere-to-go",
    ),
    pytest.param(
        [mk_node("a"), mk_node("b", gpus=1)],
        [mk_pod("x", num=1, milli=500, node="a", gpus=[0], evictable=False),
         mk_pod("y", num=1, milli=500, node="a", gpus=[1], evictable=False),
         mk_pod("z", num=1, milli=500, node="b", gpus=[0], evictable=False)],
        mk_pod("w", num=1, milli=1000), None, 0, id="pdb-forbids-eviction",
    ),
]


@pytest.mark.parametrize(("nodes", "bound", "want", "node", "victims"), CASES)
def test_make_room(nodes, bound, want, node, victims):
    cluster = SimulatedCluster(nodes, typical=typical_pods([*bound, want]))
    state = cluster.state
    for p in bound:
        cluster.bind_pod(_bind(p), p)
    assert select(state, want, "cohabit") is None
    before = snapshot(state)
    move = make_room(state, want, "cohabit")
    assert snapshot(state) == before  # replayed and undone
    if node is None:
        assert move is None
        return
    assert move.node == node and len(move.victims) == victims
    assert move.gain_milli == want.gpu_request_milli
    cluster.apply_move(move, want)
    assert state.placement_of(want)[0] == node
    assert all(state.placement_of(v) is not None for v in move.victims)
    assert (state.gpu_free >= 0).all() and (state.cpu_free >= 0).all()


def _bind(p: Pod):
    from cohabit.model import Bind

    return Bind(p.key, p.node, p.gpu_indices)


def test_candidate_nodes_rank_the_smallest_deficit_first():
    state = ClusterState.from_nodes(
        [mk_node("a", gpus=1), mk_node("b", gpus=1), mk_node("c", gpus=1, model="P100")],
        [mk_pod("x", num=1, milli=900, node="a", gpus=[0]),
         mk_pod("y", num=1, milli=300, node="b", gpus=[0])])
    req = pod_request(Pod("w", 1000, 1000, 1, 800, frozenset({"T4"})))
    # b lacks 100 milli, a lacks 700; c has the wrong model
    assert [state.names[i] for i in candidate_nodes(state, req, 5)] == ["b", "a"]


def test_candidate_nodes_rank_whole_gpu_pods_by_the_milli_to_move():
    # no node has an empty GPU; a whole-GPU pod needs the least milli moved off c (150, its
    # less used GPU), then b (400), then a (900); d has the least GPU milli in use but too
    # little CPU, so it comes after every node where the CPU already fits
    state = ClusterState.from_nodes(
        [mk_node("a", gpus=1), mk_node("b", gpus=2), mk_node("c", gpus=2),
         mk_node("d", cpu=8000, gpus=1)],
        [mk_pod("x", num=1, milli=900, node="a", gpus=[0]),
         mk_pod("y0", num=1, milli=400, node="b", gpus=[0]),
         mk_pod("y1", num=1, milli=400, node="b", gpus=[1]),
         mk_pod("z0", num=1, milli=1000, node="c", gpus=[0]),
         mk_pod("z1", num=1, milli=150, node="c", gpus=[1]),
         mk_pod("u", cpu=7000, num=1, milli=100, node="d", gpus=[0])])
    one = pod_request(mk_pod("w", cpu=4000, num=1, milli=1000))
    assert [state.names[i] for i in candidate_nodes(state, one, 5, rank="milli")] == [
        "c", "b", "a", "d"]
    two = pod_request(mk_pod("w2", num=2, milli=1000))
    # two GPUs: b needs 800 moved, c 1,150; a and d have one GPU
    assert [state.names[i] for i in candidate_nodes(state, two, 5, rank="milli")] == ["b", "c"]
    with pytest.raises(ValueError, match="rank"):
        candidate_nodes(state, one, 5, rank="random")


# ----------------------------------------------------------------- invariant (hypothesis)


@st.composite
def cluster_and_pods(draw):
    n = draw(st.integers(1, 4))
    nodes = [mk_node(f"n{i}", cpu=draw(st.integers(2_000, 16_000)), gpus=draw(st.integers(0, 3)))
             for i in range(n)]
    pods = []
    for i in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(["cpu", "share", "whole"]))
        cpu = draw(st.integers(0, 4_000))
        if kind == "cpu":
            pods.append(mk_pod(f"p{i}", cpu=cpu))
        elif kind == "share":
            pods.append(mk_pod(f"p{i}", cpu=cpu, num=1, milli=draw(st.integers(1, 999))))
        else:
            pods.append(mk_pod(f"p{i}", cpu=cpu, num=1, milli=1000))
    return nodes, pods


@given(cluster_and_pods(), st.sampled_from(["cohabit", "fgd", "best-fit"]))
@settings(max_examples=60, deadline=None)
def test_rebinding_never_over_commits(data, policy):
    nodes, pods = data
    cluster = SimulatedCluster(nodes, typical=typical_pods(pods))
    state = cluster.state
    for pod in pods:
        bind = select(state, pod, policy)
        if bind is not None:
            cluster.apply([bind])
            continue
        move = make_room(state, pod, policy)
        if move is not None:
            cluster.apply_move(move, pod)
        _check(state)


def _check(state: ClusterState) -> None:
    assert (state.cpu_free >= 0).all() and (state.mem_free >= 0).all()
    assert (state.gpu_free >= 0).all() and (state.gpu_free <= 1000).all()
    cpu = np.zeros(state.n_nodes, np.int64)
    gpu = np.zeros_like(state.gpu_free)
    for b in state.bound.values():
        cpu[b.node] += b.req.cpu
        for g in b.gpus:
            gpu[b.node, g] += b.req.milli
    assert (state.cpu_cap - cpu == state.cpu_free).all()
    assert (1000 * (np.arange(gpu.shape[1]) < state.gpu_cnt[:, None]) - gpu
            == state.gpu_free).all()


def test_operator_pass_reports_the_eviction_of_a_move_that_pays():
    # the same planner step in the operator: reconcile_once with rebinding enabled proposes
    # only evictions whose move was replayed and pays; the actuator (dry-run) reports them.
    # Only pods of the policy's managed workloads move; a pending pod of another policy
    # (outside the pass's pending_filter) is made room for as well.
    from dataclasses import replace

    from cohabit.config import PolicyConfig, RebindingConfig
    from cohabit.engine.reconcile import reconcile_once
    from cohabit.model import Evict, QosTarget, Snapshot, Workload, WorkloadKind

    nodes = (mk_node("a"), mk_node("b", gpus=1))
    bound = tuple(replace(p, workload="sd") for p in (
        mk_pod("x", num=1, milli=500, node="a", gpus=[0]),
        mk_pod("y", num=1, milli=500, node="a", gpus=[1]),
        mk_pod("z", num=1, milli=500, node="b", gpus=[0])))
    free_nodes = tuple(
        Node(n.name, n.cpu_milli, n.memory_mib, n.cpu_milli - 1000 * k, n.memory_mib - 1000 * k,
             tuple(GpuDevice(g.index, g.model, 500) for g in n.gpus))
        for n, k in zip(nodes, (2, 1), strict=True))
    want = mk_pod("w", num=1, milli=1000)
    snap = Snapshot(0.0, free_nodes, (*bound, want))
    managed = Workload("sd", WorkloadKind.GPU_INFERENCE, QosTarget("p99_latency_ms", 100),
                       placement="managed")
    rebinding = PolicyConfig(rebinding=RebindingConfig(enabled=True))
    off = reconcile_once(snap, [managed], None, PolicyConfig(), 0.0)
    assert not [a for a in off.actions if isinstance(a, Evict)]
    on = reconcile_once(snap, [managed], None, rebinding, 0.0)
    evicts = [a for a in on.actions if isinstance(a, Evict)]
    assert len(evicts) == 1 and evicts[0].pod in {"default/x", "default/y"}
    # the pending pod follows another policy: this pass does not bind it but makes room
    other = reconcile_once(snap, [managed], None, rebinding, 0.0,
                           pending_filter=lambda p: p.key != "default/w")
    assert [a.pod for a in other.actions if isinstance(a, Evict)] == [evicts[0].pod]
    assert not other.unschedulable
    # pods of no workload of this policy (or of an unmanaged one) are never moved
    for workloads in ([], [replace(managed, placement="unmanaged")]):
        plan = reconcile_once(snap, workloads, None, rebinding, 0.0)
        assert not [a for a in plan.actions if isinstance(a, Evict)]


# ------------------------------------------------------------------ chains of moves


def _swap_cluster():
    """a: 2 GPUs, CPU nearly used by x (whole GPU, 7 cores); b: CPU to spare, its only GPU
    held by y (whole GPU, 1.5 cores). A whole-GPU pod asking 4 cores fits nowhere; neither
    x nor y fits anywhere else, so one level of moves cannot help, but x to b and y to a
    (a swap) can."""
    nodes = [mk_node("a", cpu=8000, gpus=2), mk_node("b", cpu=16_000, gpus=1)]
    bound = [mk_pod("x", cpu=7000, num=1, milli=1000, node="a", gpus=[0]),
             mk_pod("y", cpu=1500, num=1, milli=1000, node="b", gpus=[0])]
    cluster = SimulatedCluster(nodes, typical=typical_pods(bound))
    for p in bound:
        cluster.bind_pod(_bind(p), p)
    return cluster, mk_pod("w", cpu=4000, num=1, milli=1000)


def test_a_chain_of_two_levels_swaps_pods_that_one_level_cannot_move():
    cluster, want = _swap_cluster()
    state = cluster.state
    assert select(state, want, "cohabit") is None
    assert make_room(state, want, "cohabit", depth=1) is None
    before = snapshot(state)
    move = make_room(state, want, "cohabit", depth=2)
    assert snapshot(state) == before
    assert move is not None and move.node == "a"
    assert sorted(move.victims) == ["default/x", "default/y"]
    assert move.binds[0].pod == want.key
    assert [a.__class__.__name__ for a in move.actions()] == ["Evict"] * 2 + ["Bind"] * 3
    cluster.apply_move(move, want)
    assert state.placement_of(want)[0] == "a"
    assert state.placement_of("default/x")[0] == "b"
    assert state.placement_of("default/y")[0] == "a"
    _check(state)


def test_a_chain_never_moves_a_pod_that_may_not_be_evicted():
    cluster, want = _swap_cluster()
    y = cluster.state.bound["default/y"].pod
    assert make_room(cluster.state, want, "cohabit", depth=2,
                     movable=lambda p: p.key != y.key) is None


def test_make_room_rejects_a_depth_below_one():
    cluster, want = _swap_cluster()
    with pytest.raises(ValueError, match="depth"):
        make_room(cluster.state, want, "cohabit", depth=0)


def test_mixed_candidate_order_alternates_gpu_and_cpu_deficits():
    state = ClusterState.from_nodes(
        [mk_node("a", cpu=8000, gpus=1), mk_node("b", cpu=8000, gpus=1),
         mk_node("c", cpu=16_000, gpus=1)],
        [mk_pod("x", cpu=7500, node="a"), mk_pod("y", cpu=7000, node="b"),
         mk_pod("z", cpu=1000, num=1, milli=1000, node="c", gpus=[0])])
    req = pod_request(mk_pod("w", cpu=4000, num=1, milli=1000))
    # a and b: GPU free, CPU short by 3500 / 3000; c: CPU free, short of one GPU
    assert [state.names[i] for i in candidate_nodes(state, req, 2)] == ["b", "a"]
    assert [state.names[i] for i in candidate_nodes(state, req, 2, mix=True)] == ["b", "c"]
    assert [state.names[i] for i in candidate_nodes(state, req, 5, mix=True)] == ["b", "c", "a"]
    # rank="milli": the node where the CPU already fits (c) first, then b before a
    assert [state.names[i] for i in candidate_nodes(state, req, 5, rank="milli")] == [
        "c", "b", "a"]


# ------------------------------------------------------------------ defragmentation


def _defrag_cluster(evictable=True):
    """a and b: one T4 each. a holds a 100-milli pod, b an 800-milli pod. The typical pods
    are mostly whole-GPU pods, so a's GPU is fragmented; moving the small pod into b's
    200-milli hole frees a whole GPU."""
    nodes = [mk_node("a", gpus=1), mk_node("b", gpus=1)]
    bound = [mk_pod("s", num=1, milli=100, node="a", gpus=[0], evictable=evictable),
             mk_pod("big", num=1, milli=800, node="b", gpus=[0], evictable=evictable)]
    history = [*bound, *(mk_pod(f"h{i}", num=1, milli=1000) for i in range(8))]
    cluster = SimulatedCluster(nodes, typical=typical_pods(history))
    for p in bound:
        cluster.bind_pod(_bind(p), p)
    return cluster


def test_defragment_moves_a_small_pod_into_a_hole_and_frees_a_whole_gpu():
    cluster = _defrag_cluster()
    state = cluster.state
    before = snapshot(state)
    moves = defragment(state, "cohabit")
    assert snapshot(state) == before
    assert len(moves) == 1
    move = moves[0]
    assert move.pending == "" and move.node == "a" and move.victims == ("default/s",)
    assert move.frag_gain_milli >= 200 and move.gain_milli == 0
    assert "defragment" in move.actions()[0].reason
    cluster.apply_move(move, None)
    assert state.placement_of("default/s")[0] == "b"
    assert int(state.full_free.sum()) == 1
    _check(state)
    assert defragment(state, "cohabit") == []  # nothing left to gain


def test_defragment_moves_a_small_pod_beside_a_large_one_when_asked():
    """a: one GPU with a 500- and a 150-milli pod; b: one GPU with an 810-milli pod (a
    190-milli sliver). Typical pods mostly ask 500: a's 350 idle milli are fragment. No GPU
    can be emptied (the 500 pod fits only where it is), but the 150 pod fits b's sliver and
    leaves 500 free on a for a typical pod: only the small-pod candidates find that."""
    nodes = [mk_node("a", gpus=1), mk_node("b", gpus=1)]
    bound = [mk_pod("half", num=1, milli=500, node="a", gpus=[0]),
             mk_pod("s", num=1, milli=150, node="a", gpus=[0]),
             mk_pod("big", num=1, milli=810, node="b", gpus=[0])]
    history = [*bound, *(mk_pod(f"h{i}", num=1, milli=500) for i in range(8))]
    cluster = SimulatedCluster(nodes, typical=typical_pods(history))
    for p in bound:
        cluster.bind_pod(_bind(p), p)
    state = cluster.state
    assert defragment(state, "cohabit") == []
    before = snapshot(state)
    [move] = defragment(state, "cohabit", max_small=4)
    assert snapshot(state) == before
    assert move.victims == ("default/s",) and move.node == "a"
    assert [(b.node, b.gpu_indices) for b in move.binds] == [("b", (0,))]
    assert move.frag_gain_milli >= 200
    cluster.apply_move(move, None)
    assert int(state.gpu_free[state.index["a"], 0]) == 500
    _check(state)
    assert defragment(state, "cohabit", max_small=4) == []


@pytest.mark.parametrize("case", ["pdb", "gain-too-small"])
def test_defragment_keeps_pods_that_may_not_move_or_do_not_pay(case):
    cluster = _defrag_cluster(evictable=case != "pdb")
    kwargs = {"min_gain_milli": 1e9} if case == "gain-too-small" else {}
    assert defragment(cluster.state, "cohabit", **kwargs) == []


@given(cluster_and_pods(), st.sampled_from(["cohabit", "fgd", "best-fit"]),
       st.integers(1, 5))
@settings(max_examples=60, deadline=None)
def test_chains_and_defragmentation_never_over_commit(data, policy, every):
    nodes, pods = data
    cluster = SimulatedCluster(nodes, typical=typical_pods(pods))
    state = cluster.state
    for k, pod in enumerate(pods):
        if k % every == 0:
            for move in defragment(state, policy, max_small=4):
                cluster.apply_move(move, None)
            _check(state)
        bind = select(state, pod, policy)
        if bind is not None:
            cluster.apply([bind])
            continue
        move = make_room(state, pod, policy, depth=3, mix_nodes=True)
        if move is not None:
            cluster.apply_move(move, pod)
            assert len(set(move.victims)) == len(move.victims)
        _check(state)
