"""ClusterState: binds that do not fit raise, releases restore, nothing is ever over-committed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cohabit.engine.scheduling import schedule_pod
from cohabit.model import Bind, GpuDevice, Node, Pod
from cohabit.placement import POLICIES, ClusterState, OverCommitError, typical_pods
from cohabit.simulator.cluster import SimulatedCluster
from tests.helpers.placement_factories import mk_node, mk_pod, used

BAD_BINDS = [
    pytest.param(mk_pod("p", cpu=70_000), Bind("default/p", "a"), "cpu", id="cpu"),
    pytest.param(mk_pod("p", mem=999_999), Bind("default/p", "a"), "mem", id="memory"),
    pytest.param(mk_pod("p", num=1, milli=700), Bind("default/p", "a", (0,)), "GPU 0",
                 id="gpu-milli"),
    pytest.param(mk_pod("p", num=1, milli=100), Bind("default/p", "a", (5,)), "no GPU 5",
                 id="gpu-index"),
    pytest.param(mk_pod("p", num=2, milli=1000), Bind("default/p", "a", (1,)), "2 distinct",
                 id="gpu-count"),
    pytest.param(mk_pod("p", num=1, milli=100, spec=["A10"]), Bind("default/p", "a", (1,)),
                 "model", id="gpu-model"),
    pytest.param(mk_pod("p"), Bind("default/p", "zz"), "unknown node", id="node"),
    pytest.param(mk_pod("x"), Bind("default/p", "a"), "bind is for", id="pod-mismatch"),
]


@pytest.mark.parametrize(("pod", "bind", "match"), BAD_BINDS)
def test_bind_that_does_not_fit_raises_and_changes_nothing(pod, bind, match):
    state = ClusterState.from_nodes([mk_node("a", gpus=2)], [used("a", 0, 500)])
    before = state.to_nodes()
    with pytest.raises(OverCommitError, match=match):
        state.apply(bind, pod)
    assert state.to_nodes() == before


def test_double_bind_raises():
    state = ClusterState.from_nodes([mk_node("a")])
    pod = mk_pod("p", num=1, milli=100)
    state.apply(Bind(pod.key, "a", (0,)), pod)
    with pytest.raises(OverCommitError, match="already bound"):
        state.apply(Bind(pod.key, "a", (1,)), pod)


def test_release_restores_and_reports_placement():
    state = ClusterState.from_nodes([mk_node("a", gpus=2)])
    before = state.to_nodes()
    pod = mk_pod("p", cpu=3_000, num=2, milli=1000)
    state.apply(Bind(pod.key, "a", (0, 1)), pod)
    assert state.to_nodes()[0].cpu_free_milli == 61_000
    assert [g.milli_free for g in state.to_nodes()[0].gpus] == [0, 0]
    assert state.release(pod) == Bind(pod.key, "a", (0, 1))
    assert state.to_nodes() == before
    with pytest.raises(KeyError):
        state.release(pod)


def test_bound_pod_without_gpu_indices_gets_first_fit():
    state = ClusterState.from_nodes([mk_node("a", gpus=2)],
                                    [mk_pod("p", num=1, milli=400, node="a")])
    assert state.placement_of("default/p") == ("a", (0,))


def test_simulated_cluster_evicts_and_reports_unknown():
    cluster = SimulatedCluster([mk_node("a")], typical_pods([mk_pod("t", num=1, milli=500)]))
    pod = mk_pod("p", num=1, milli=500)
    res = schedule_pod(cluster.state, pod, policy="fgd", actuator=cluster)
    assert res.placed and res.bind.node == "a"
    from cohabit.model import Evict

    outs = cluster.apply([Evict(pod.key), Evict(pod.key)])
    assert [o.status for o in outs] == ["done", "failed"]


# ----------------------------------------------------------------- invariant (hypothesis)

node_st = st.builds(
    lambda i, cpu, mem, g, m: Node(f"n{i}", cpu, mem, cpu, mem,
                                   tuple(GpuDevice(j, m) for j in range(g))),
    st.integers(0, 10**6), st.integers(0, 8_000), st.integers(0, 8_000), st.integers(0, 4),
    st.sampled_from(["T4", "P100"]),
)


@st.composite
def pod_st(draw, i):
    kind = draw(st.sampled_from(["cpu", "share", "whole", "multi"]))
    cpu = draw(st.integers(0, 3_000))
    mem = draw(st.integers(0, 3_000))
    spec = draw(st.sampled_from([(), ("T4",), ("P100", "T4")]))
    if kind == "cpu":
        return Pod(f"p{i}", cpu, mem)
    if kind == "share":
        return Pod(f"p{i}", cpu, mem, 1, draw(st.integers(1, 999)), frozenset(spec))
    return Pod(f"p{i}", cpu, mem, 1 if kind == "whole" else draw(st.integers(2, 3)), 1000,
               frozenset(spec))


def _check_invariants(state: ClusterState, nodes: list[Node]) -> None:
    assert (state.cpu_free >= 0).all() and (state.mem_free >= 0).all()
    assert (state.gpu_free >= 0).all() and (state.gpu_free <= 1000).all()
    cpu = np.zeros(len(nodes), np.int64)
    gpu = np.zeros_like(state.gpu_free)
    for b in state.bound.values():
        cpu[b.node] += b.req.cpu
        for g in b.gpus:
            gpu[b.node, g] += b.req.milli
    assert (state.cpu_cap - cpu == state.cpu_free).all()
    assert (1000 * (np.arange(gpu.shape[1]) < state.gpu_cnt[:, None]) - gpu
            == state.gpu_free).all()


@settings(max_examples=60, deadline=None)
@given(
    nodes=st.lists(node_st, min_size=1, max_size=4, unique_by=lambda n: n.name),
    data=st.data(),
    policy=st.sampled_from(sorted(POLICIES)),
)
def test_never_over_commits(nodes, data, policy):
    pods = [data.draw(pod_st(i)) for i in range(data.draw(st.integers(1, 25)))]
    cluster = SimulatedCluster(nodes, typical_pods(pods))
    rng = np.random.default_rng(0)
    for pod in pods:
        res = schedule_pod(cluster.state, pod, policy=policy, rng=rng, actuator=cluster)
        if res.bind is None:
            # nothing fits: the filter must agree that no node has room
            assert cluster.state.feasible(cluster.state.request(pod)).size == 0
        _check_invariants(cluster.state, nodes)
        if data.draw(st.booleans()) and cluster.state.bound:
            cluster.depart(data.draw(st.sampled_from(sorted(cluster.state.bound))))
            _check_invariants(cluster.state, nodes)


def test_schedule_pod_without_actuator_applies_to_state():
    state = ClusterState.from_nodes([mk_node("a", gpus=1)])
    res = schedule_pod(state, mk_pod("p", num=1, milli=600), policy="best-fit")
    assert res.placed and state.placement_of("default/p") == ("a", (0,))
    res = schedule_pod(state, mk_pod("q", num=1, milli=600), policy="best-fit")
    assert res.bind is None and not res.placed


def test_simulated_cluster_raises_on_over_commit():
    cluster = SimulatedCluster([mk_node("a", gpus=1)])
    pod = mk_pod("p", num=1, milli=600)
    cluster.bind_pod(Bind(pod.key, "a", (0,)), pod)
    other = mk_pod("q", num=1, milli=600)
    with pytest.raises(OverCommitError):
        cluster.bind_pod(Bind(other.key, "a", (0,)), other)


def test_from_nodes_snapshot_free_values_round_trip():
    state = ClusterState.from_nodes([mk_node("a", gpus=2)], [used("a", 0, 300, cpu=5_000)])
    snap = state.to_nodes()
    again = ClusterState.from_nodes(snap)
    assert again.to_nodes() == snap
    assert again.feasible(state.request(mk_pod("p", num=1, milli=800))).tolist() == [0]


class _RefusingActuator:
    """An actuator that refuses every action (e.g. the API server answered 409)."""

    def __init__(self) -> None:
        self.seen: list = []

    def apply(self, actions):
        from cohabit.model import Outcome

        self.seen.extend(actions)
        return [Outcome(a, "refused", "conflict") for a in actions]


def test_schedule_pod_leaves_state_to_the_actuator():
    state = ClusterState.from_nodes([mk_node("a", gpus=1)])
    act = _RefusingActuator()
    res = schedule_pod(state, mk_pod("p", num=1, milli=600), policy="gpu-packing", actuator=act)
    assert res.bind == act.seen[0] and res.bind.node == "a"
    assert not res.placed
    assert state.placement_of("default/p") is None  # the actuator did not bind it
