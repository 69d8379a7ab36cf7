"""The ``cohabit`` policy's interference part on small clusters whose answer can be checked
by hand (the look-ahead part is switched off here, ``ScoreWeights(lookahead=0)``; it has its
own tests in ``test_score_parts.py``).

``cohabit`` = FGD score - 100 * w * (slowdown suffered + slowdown inflicted), with the
default slowdown ``sum_r pressure_aggressor[r] * sensitivity_victim[r]`` (Bubble-Up's linear
pressure x sensitivity). FGD numbers in the comments: ``int(100 * sigmoid((frag_before -
frag_after) / 1000))`` with the typical pods of the case (Weng et al., ATC'23).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cohabit.config.placement import ScoreWeights
from cohabit.model import InterferenceProfile
from cohabit.placement import (
    POLICIES,
    ClusterState,
    Interference,
    node_view,
    pressure_sensitivity_slowdown,
    select,
    typical_pods,
)
from cohabit.placement.state import pod_request
from tests.helpers.placement_factories import mk_node, mk_pod, used

NO_LOOKAHEAD = ScoreWeights(lookahead=0.0)


def interference_only(state: ClusterState) -> ClusterState:
    """``state`` with the look-ahead part off: cohabit = FGD - interference penalty."""
    state.set_weights(NO_LOOKAHEAD)
    return state


def prof(pressure: dict | None = None, sensitivity: dict | None = None) -> InterferenceProfile:
    return InterferenceProfile(tuple((pressure or {}).items()),
                               tuple((sensitivity or {}).items()))


HOT_GPU = prof({"gpu_sm": 0.8})            # a GPU hog
MILD_GPU = prof({"gpu_sm": 0.1})
SENS_GPU = prof(sensitivity={"gpu_sm": 0.5})
HOT_CPU = prof({"cpu": 0.9})
SENS_CPU = prof(sensitivity={"cpu": 0.5})

TYP_500 = [mk_pod("t", num=1, milli=500)]   # FGD ties between the two GPUs below
TYP_600 = [mk_pod("t", num=1, milli=600)]   # a 500-milli hole is a fragment for these

# (nodes, bound pods, incoming pod, typical workload, profiles by pod name,
#  expected fgd (node, gpus), expected cohabit (node, gpus), expected cohabit scores or None)
CASES = [
    pytest.param(
        # a: GPU0 holds the hog (500 used), GPU1 free. A 500 pod: GPU0 -> [0, 1000], GPU1 ->
        # [500, 500]; both frag 0 -> FGD 50 and 50, fgd takes GPU0 (first on ties).
        # cohabit: GPU0 50 - 100 * 0.8 * 0.5 = 10, GPU1 50 (other GPU: gpu_sm does not reach)
        [mk_node("a", gpus=2)], [used("a", 0, 500, tag="hog")], mk_pod("p", num=1, milli=500),
        TYP_500, {"u-a-0hog": HOT_GPU, "p": SENS_GPU},
        ("a", (0,)), ("a", (1,)), {"a": 50.0},
        id="sensitive-pod-takes-the-other-gpu",
    ),
    pytest.param(
        # the same, in the other direction: the incoming pod is the hog, the bound pod suffers
        [mk_node("a", gpus=2)], [used("a", 0, 500, tag="victim")],
        mk_pod("p", num=1, milli=500), TYP_500, {"u-a-0victim": SENS_GPU, "p": HOT_GPU},
        ("a", (0,)), ("a", (1,)), {"a": 50.0},
        id="hog-spares-the-sensitive-neighbour",
    ),
    pytest.param(
        # one GPU per node. a: 500 used by a mild neighbour (a hole for 600 pods: frag 500);
        # b: free. A 500 pod: a -> [0] frag 0: int(100 sigmoid(0.5)) = 62; b -> [500] frag
        # 500: int(100 sigmoid(-0.5)) = 37. Penalty on a: 100 * 0.1 * 0.5 = 5 -> 57 > 37.
        [mk_node("a", gpus=1), mk_node("b", gpus=1)], [used("a", 0, 500, tag="n")],
        mk_pod("p", num=1, milli=500), TYP_600, {"u-a-0n": MILD_GPU, "p": SENS_GPU},
        ("a", (0,)), ("a", (0,)), {"a": 57.0, "b": 37},
        id="small-penalty-keeps-the-fragment-fill",
    ),
    pytest.param(
        # as above with the hog: a = 62 - 40 = 22 < b = 37 -> cohabit leaves the hole
        [mk_node("a", gpus=1), mk_node("b", gpus=1)], [used("a", 0, 500, tag="n")],
        mk_pod("p", num=1, milli=500), TYP_600, {"u-a-0n": HOT_GPU, "p": SENS_GPU},
        ("a", (0,)), ("b", (0,)), {"a": 22.0, "b": 37},
        id="large-penalty-beats-fragmentation",
    ),
    pytest.param(
        # CPU contention is node-wide: a CPU-only pod sensitive to CPU avoids the node of a
        # CPU hog (both nodes have the same free state, so FGD ties and takes a);
        # a: FGD - 100 * 0.9 * 0.5 = FGD - 45
        [mk_node("a", gpus=1), mk_node("b", gpus=1)],
        [mk_pod("hog", cpu=8_000, node="a"), mk_pod("calm", cpu=8_000, node="b")],
        mk_pod("p", cpu=1_000), TYP_500, {"hog": HOT_CPU, "p": SENS_CPU},
        ("a", ()), ("b", ()), None,
        id="cpu-pressure-reaches-the-whole-node",
    ),
    pytest.param(
        # a whole-GPU pod takes a free GPU: the hog's gpu_sm pressure on GPU0 does not reach it
        [mk_node("a", gpus=2)], [used("a", 0, 500, tag="hog")],
        mk_pod("p", num=1, milli=1000), TYP_500, {"u-a-0hog": HOT_GPU, "p": SENS_GPU},
        ("a", (1,)), ("a", (1,)), None,
        id="whole-gpu-pod-feels-no-gpu-pressure",
    ),
    pytest.param(
        # an incoming pod without a profile is unknown, not fragile: fgd's answer
        [mk_node("a", gpus=2)], [used("a", 0, 500, tag="hog")], mk_pod("p", num=1, milli=500),
        TYP_500, {"u-a-0hog": HOT_GPU}, ("a", (0,)), ("a", (0,)), {"a": 50},
        id="unprofiled-pod-places-as-fgd",
    ),
    pytest.param(
        # profiles on resources the two do not share (hog: gpu_sm, pod: cpu) cost nothing
        [mk_node("a", gpus=2)], [used("a", 0, 500, tag="hog")], mk_pod("p", num=1, milli=500),
        TYP_500, {"u-a-0hog": HOT_GPU, "p": SENS_CPU}, ("a", (0,)), ("a", (0,)), {"a": 50.0},
        id="disjoint-resources-no-penalty",
    ),
]


@pytest.mark.parametrize(
    ("nodes", "bound", "pod", "workload", "profiles", "fgd", "cohabit", "scores"), CASES
)
def test_cohabit_choice(nodes, bound, pod, workload, profiles, fgd, cohabit, scores):
    keys = {p.name: p.key for p in [*bound, pod]}
    by_key = {keys[name]: pr for name, pr in profiles.items()}
    plain = ClusterState.from_nodes(nodes, bound, typical=typical_pods(workload))
    bind = select(plain, pod, "fgd")
    assert (bind.node, bind.gpu_indices) == fgd

    state = interference_only(ClusterState.from_nodes(nodes, bound,
                                                      typical=typical_pods(workload)))
    state.set_interference(by_key, pressure_sensitivity_slowdown)
    bind = select(state, pod, "cohabit")
    assert (bind.node, bind.gpu_indices) == cohabit
    if scores is not None:
        req = pod_request(pod)
        feasible = state.feasible(req)
        got = POLICIES["cohabit"].score(state, req, feasible, None)
        got = {state.names[i]: float(s) for i, s in zip(feasible, got, strict=True)}
        assert got == pytest.approx(scores)


def test_weight_zero_is_fgd_and_weight_scales_the_penalty():
    nodes, bound = [mk_node("a", gpus=2)], [used("a", 0, 500, tag="hog")]
    pod = mk_pod("p", num=1, milli=500)
    profiles = {bound[0].key: HOT_GPU, pod.key: SENS_GPU}
    for weight, gpus in [(0.0, (0,)), (0.5, (1,))]:
        state = interference_only(ClusterState.from_nodes(nodes, bound,
                                                          typical=typical_pods(TYP_500)))
        state.set_interference(profiles, pressure_sensitivity_slowdown, weight)
        assert select(state, pod, "cohabit").gpu_indices == gpus
        # GPU0: 50 - 100 * 0.5 * 0.4 = 30 at weight 0.5
        assert state.interference.points(pod.key, 0, (0,)) == pytest.approx(100 * weight * 0.4)


def test_binds_and_releases_keep_the_interference_view_current():
    state = ClusterState.from_nodes([mk_node("a", gpus=2)], typical=typical_pods(TYP_500))
    hog, p = mk_pod("hog", num=1, milli=500), mk_pod("p", num=1, milli=500)
    state.set_interference({hog.key: HOT_GPU, p.key: SENS_GPU}, pressure_sensitivity_slowdown)
    first = select(state, hog, "cohabit")
    state.apply(first)
    assert state.interference.on_node == {0: {hog.key: first.gpu_indices}}
    second = select(state, p, "cohabit")
    assert second.gpu_indices != first.gpu_indices  # keeps off the hog's GPU
    state.release(hog)
    assert state.interference.on_node == {}
    assert select(state, p, "cohabit").gpu_indices == (0,)  # plain fgd again


SLOWDOWN_CASES = [
    pytest.param(prof(sensitivity={"gpu_sm": 0.5}), prof({"gpu_sm": 0.8, "cpu": 0.2}), 0.4,
                 id="dot-product"),
    pytest.param(prof(sensitivity={"gpu_sm": 2.0}), prof({"gpu_sm": 0.9}), 1.0, id="clipped"),
    pytest.param(prof(sensitivity={"cpu": 0.5}), prof({"gpu_sm": 0.9}), 0.0, id="disjoint"),
    pytest.param(prof(sensitivity={"cpu": math.nan}), prof({"cpu": 0.9}), 0.0, id="nan-unknown"),
    pytest.param(prof(), prof({"cpu": 0.9}), 0.0, id="no-sensitivity"),
]


@pytest.mark.parametrize(("victim", "aggressor", "expected"), SLOWDOWN_CASES)
def test_pressure_sensitivity_slowdown(victim, aggressor, expected):
    assert pressure_sensitivity_slowdown(victim, aggressor) == pytest.approx(expected)


def test_node_view_keeps_node_wide_resources():
    p = prof({"cpu": 0.3, "gpu_sm": 0.9, "membw": 0.2}, {"pcie": 0.1, "memory": 0.4})
    assert node_view(p) == prof({"cpu": 0.3, "membw": 0.2}, {"memory": 0.4})


@pytest.mark.parametrize(("value", "match"), [(1.5, "0..1"), (math.nan, "0..1"), (-0.1, "0..1")],
                         ids=["above-1", "nan", "negative"])
def test_bad_slowdown_callable_is_named(value, match):
    inter = Interference({"ns/a": HOT_GPU, "ns/b": SENS_GPU}, lambda v, a: value)
    inter.bound("ns/a", 0, (0,))
    with pytest.raises(ValueError, match=match):
        inter.penalty("ns/b", 0, (0,))


def test_bad_weight_is_rejected():
    with pytest.raises(ValueError, match="weight"):
        Interference({}, pressure_sensitivity_slowdown, weight=-1.0)


def test_slowdown_calls_are_memoised():
    calls = []

    def slow(v, a):
        calls.append((v, a))
        return 0.1

    nodes = [mk_node(n, gpus=2) for n in "abcd"]
    bound = [used(n, 0, 500, tag="hog") for n in "abcd"]
    state = ClusterState.from_nodes(nodes, bound, typical=typical_pods(TYP_500))
    pods = [mk_pod(f"p{i}", num=1, milli=100) for i in range(5)]
    profiles = {b.key: HOT_GPU for b in bound} | {p.key: SENS_GPU for p in pods}
    state.set_interference(profiles, slow)
    for p in pods:
        state.apply(select(state, p, "cohabit"))
    # one profile pair per direction, whatever the number of nodes, GPUs and pods
    assert len(calls) <= 4
    assert np.isfinite(list(state.interference._pairs.values())).all()
