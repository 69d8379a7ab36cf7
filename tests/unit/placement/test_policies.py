"""Each policy on small clusters whose answer can be checked by hand.

Expected scores are computed in the comments from the definitions in the FGD paper's
simulator (``pkg/simulator/plugin/*.go``); ties go to the smallest node name.
"""

from __future__ import annotations

import numpy as np
import pytest

from cohabit.placement import POLICIES, ClusterState, select, typical_pods
from cohabit.placement.state import pod_request
from tests.helpers.placement_factories import mk_node, mk_pod, used

# (id, policy, nodes, bound pods, pod, typical workload, expected (node, gpus), expected
#  scores by node name or None)
CASES = [
    pytest.param(
        "best-fit",
        # a: (28000/128000*.5 + 1000/8000*.5) = .171875 -> int(82.8) = 82
        # b: (60000/128000*.5 + 7000/8000*.5) = .671875 -> int(32.8) = 32
        [mk_node("a", cpu=32_000, gpus=2), mk_node("b", cpu=64_000, gpus=8)],
        [], mk_pod("p", cpu=4_000, num=1, milli=1000), None,
        ("a", (0,)), {"a": 82, "b": 32},
        id="best-fit-tighter-node",
    ),
    pytest.param(
        "best-fit",
        # one node, GPUs free [1000, 300, 600]: best GPU choice is the tightest that fits (1)
        [mk_node("a", gpus=3)], [used("a", 1, 700), used("a", 2, 400)],
        mk_pod("p", num=1, milli=250), None, ("a", (1,)), None,
        id="best-fit-tightest-gpu",
    ),
    pytest.param(
        "best-fit",
        # equal scores: the smallest name wins
        [mk_node("b"), mk_node("a")], [], mk_pod("p", num=1, milli=500), None,
        ("a", (0,)), None, id="best-fit-tie-smallest-name",
    ),
    pytest.param(
        "dot-product",
        # a: free (64000, 8000) -> .5*.0625 + 1*.125 = .15625 -> 1-.078125 -> 92
        # b: free (16000, 2000) -> .125*.0625 + .25*.125 = .0390625 -> 1-.01953 -> 98
        [mk_node("a", cpu=64_000, gpus=8), mk_node("b", cpu=16_000, gpus=2)], [],
        mk_pod("p", cpu=8_000, num=1, milli=1000), None, ("b", (0,)), {"a": 92, "b": 98},
        id="dot-product-least-aligned",
    ),
    pytest.param(
        "gpu-packing",
        # a idle 8 GPUs: max(33-8, 8) = 25; b has a GPU with 400 free: 100 - 40//10 = 96;
        # c used, only whole GPUs fit the 500 pod: max(50-1, 33) = 49
        [mk_node("a"), mk_node("b", gpus=2), mk_node("c", gpus=2)],
        [used("b", 0, 600), used("c", 0, 1000)], mk_pod("p", num=1, milli=300), None,
        ("b", (0,)), {"a": 25, "b": 96, "c": 49},
        id="gpu-packing-shared-first",
    ),
    pytest.param(
        "gpu-packing",
        # 2-GPU pod: a idle 8: 25; b idle 2: max(33-2, 2) = 31; c used 4 GPUs: max(50-2,33)=48
        [mk_node("a"), mk_node("b", gpus=2), mk_node("c", gpus=4)],
        [used("c", 0, 200)], mk_pod("p", num=2, milli=1000), None,
        ("c", (1, 2)), {"a": 25, "b": 31, "c": 48},
        id="gpu-packing-multi-gpu-used-node",
    ),
    pytest.param(
        "gpu-clustering",
        # share pod. a: share pods only -> 75 + 25*(8000-7400)//8000 = 75 + 1 = 76
        # b: a 1-gpu pod only -> 0 + 25*1000//8000 = 3;  c idle 8 -> 25 + 0 = 25
        [mk_node("a"), mk_node("b"), mk_node("c")],
        [used("a", 0, 600), used("b", 0, 1000)], mk_pod("p", num=1, milli=300), None,
        ("a", (0,)), {"a": 76, "b": 3, "c": 25},
        id="gpu-clustering-same-affinity",
    ),
    pytest.param(
        "gpu-clustering",
        # CPU-only pods score 0 everywhere: the smallest name wins
        [mk_node("b"), mk_node("a")], [used("b", 0, 500)], mk_pod("p", cpu=2_000), None,
        ("a", ()), {"a": 0, "b": 0}, id="gpu-clustering-cpu-pod",
    ),
    pytest.param(
        "fgd",
        # typical pods: all 600-milli. a free [1000, 700]: 300 on GPU0 -> [700, 700], no
        # fragment -> int(100*sigmoid(0)) = 50; on GPU1 -> [1000, 400]: 400 milli can no
        # longer host a 600 pod -> int(100*sigmoid(-0.4)) = 40. b [1000] -> [700]: 50.
        # a and b tie at 50: the smallest name.
        [mk_node("a", gpus=2), mk_node("b", gpus=1)], [used("a", 1, 300)],
        mk_pod("p", num=1, milli=300), [mk_pod(f"t{i}", num=1, milli=600) for i in range(3)],
        ("a", (0,)), {"a": 50, "b": 50},
        id="fgd-avoids-fragment",
    ),
    pytest.param(
        "fgd",
        # typical: whole-GPU pods. a free [1000, 500]: 500 is already fragment (frag 500);
        # a 500 pod there -> [1000, 0]: frag 0 -> int(100*sigmoid(0.5)) = 62.
        # b [1000, 1000] -> [500, 1000]: frag 500 -> int(100*sigmoid(-0.5)) = 37.
        [mk_node("a", gpus=2), mk_node("b", gpus=2)], [used("a", 1, 500)],
        mk_pod("p", num=1, milli=500), [mk_pod("t", num=1, milli=1000)],
        ("a", (1,)), {"a": 62, "b": 37},
        id="fgd-fills-fragment",
    ),
]


@pytest.mark.parametrize(
    ("policy", "nodes", "bound", "pod", "workload", "expected", "scores"), CASES
)
def test_policy_choice(policy, nodes, bound, pod, workload, expected, scores):
    typical = typical_pods(workload) if workload else None
    state = ClusterState.from_nodes(nodes, bound, typical=typical)
    bind = select(state, pod, policy, seed=0)
    assert bind is not None
    assert (bind.node, bind.gpu_indices) == expected
    if scores is not None:
        req = pod_request(pod)
        feasible = state.feasible(req)
        got = POLICIES[policy].score(state, req, feasible, np.random.default_rng(0))
        assert {state.names[i]: int(s) for i, s in zip(feasible, got, strict=True)} == scores


FILTER_CASES = [
    pytest.param(mk_pod("p", num=1, milli=500, spec=["V100M32"]), ["b"], id="gpu-model-spec"),
    pytest.param(mk_pod("p", cpu=40_000), ["a"], id="cpu-fit"),
    pytest.param(mk_pod("p", mem=300_000), [], id="memory-fit"),
    pytest.param(mk_pod("p", num=2, milli=1000), ["b"], id="multi-gpu-needs-free-gpus"),
    pytest.param(mk_pod("p", num=1, milli=800), ["b"], id="share-needs-one-gpu-with-room"),
    pytest.param(mk_pod("p", num=1, milli=300), ["a", "b"], id="share-fits-partial-gpu"),
]


@pytest.mark.parametrize(("pod", "feasible"), FILTER_CASES)
def test_filter(pod, feasible):
    # a: T4 x2, one GPU 1000 used, one 400 used, 48 cores left; b: V100M32 x4, 24 cores left
    nodes = [mk_node("a", cpu=64_000, gpus=2), mk_node("b", cpu=32_000, gpus=4, model="V100M32")]
    bound = [used("a", 0, 1000, cpu=16_000), used("a", 1, 400), used("b", 0, 1000, cpu=8_000)]
    state = ClusterState.from_nodes(nodes, bound)
    got = [state.names[i] for i in state.feasible(pod_request(pod))]
    assert got == feasible
    for policy in POLICIES:
        if policy == "fgd":
            state.set_typical(typical_pods([pod]))
        bind = select(state, pod, policy, seed=1)
        assert (bind.node if bind else None) in (feasible or [None])


def test_random_policy_spreads_over_feasible_nodes():
    nodes = [mk_node(n, gpus=1) for n in "abcd"]
    state = ClusterState.from_nodes(nodes)
    rng = np.random.default_rng(7)
    seen = {select(state, mk_pod("p", num=1, milli=100), "random", rng=rng).node
            for _ in range(200)}
    assert seen == set("abcd")


def test_unknown_policy_names_the_known_ones():
    state = ClusterState.from_nodes([mk_node("a")])
    with pytest.raises(ValueError, match="best-fit"):
        select(state, mk_pod("p"), "first-fit")


def test_fgd_without_typical_pods_is_a_clear_error():
    state = ClusterState.from_nodes([mk_node("a")])
    with pytest.raises(ValueError, match="typical"):
        select(state, mk_pod("p", num=1, milli=100), "fgd")
