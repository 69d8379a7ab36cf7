"""Score parts of the ``cohabit`` policy, each on cases small enough to check by hand.

Look-ahead fragment of a node for typical pod ``t``: ``idle - min(GPU slots, CPU slots) *
milli_t * num_t`` (all idle milli for a CPU-only pod or a model it does not accept),
weighted over the typical pods (:mod:`cohabit.placement.lookahead`).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cohabit.config.placement import ScoreWeights, parse_score_weights
from cohabit.model import InterferenceProfile
from cohabit.placement import ClusterState, select, typical_pods
from cohabit.placement.frag import TypicalPod, TypicalPods
from cohabit.placement.lookahead import LookAheadFrag
from cohabit.placement.parts import fgd_gpu_scores, fgd_node_score, static_scores
from cohabit.placement.policies import POLICIES, gpus_fgd, score_fgd
from cohabit.placement.state import pod_request
from cohabit.placement.usage import PodUsage
from tests.helpers.placement_factories import mk_node, mk_pod, used


def typ(*pods: tuple[int, int, int, float, tuple[str, ...]]) -> TypicalPods:
    return TypicalPods(tuple(TypicalPod(c, m, n, frozenset(s), f, 1) for c, m, n, f, s in pods),
                       1.0, len(pods))


SHARE_470 = (1_000, 470, 1, 1.0, ())
WHOLE_12 = (12_000, 1000, 1, 1.0, ())
EIGHT = (8_000, 1000, 8, 1.0, ())

# (typical pods, model names, node (model id, cpu free, GPU free milli), expected fragment)
FRAG_CASES = [
    pytest.param(typ(SHARE_470), ["", "T4"], (1, 64_000, [1000]), 60.0,
                 id="remainder-inside-a-gpu"),  # 2 x 470 fit, 60 left
    pytest.param(typ(SHARE_470), ["", "T4"], (1, 1_500, [1000]), 530.0,
                 id="cpu-runs-out-first"),  # 1 CPU slot: 470 used, 530 stranded
    pytest.param(typ(WHOLE_12), ["", "G2"], (1, 96_000, [1000] * 8), 0.0,
                 id="cpu-matches-gpus"),
    pytest.param(typ(WHOLE_12), ["", "G2"], (1, 90_000, [1000] * 8), 1000.0,
                 id="one-gpu-short-of-cpu"),  # 7 CPU slots for 8 GPUs
    pytest.param(typ(EIGHT), ["", "G2"], (1, 96_000, [1000] * 7 + [0]), 7000.0,
                 id="multi-gpu-slot-broken"),
    pytest.param(typ((1_000, 470, 1, 1.0, ("V100",))), ["", "T4"], (1, 64_000, [1000]),
                 1000.0, id="model-not-accepted"),
    pytest.param(typ((1_000, 0, 0, 1.0, ())), ["", "T4"], (1, 64_000, [300, 200]), 500.0,
                 id="cpu-only-typical-pod-sees-all-idle"),
    pytest.param(typ((1_000, 470, 1, 0.5, ()), (1_000, 0, 0, 0.5, ())), ["", "T4"],
                 (1, 64_000, [1000]), 0.5 * 60 + 0.5 * 1000, id="weighted-sum"),
]


@pytest.mark.parametrize(("typical", "models", "node", "expected"), FRAG_CASES)
def test_lookahead_fragment(typical, models, node, expected):
    la = LookAheadFrag(typical, models, weighting="count")
    model, cpu, gpus = node
    key = (model, cpu, tuple(sorted(gpus)))
    assert la.frag_keys([key])[0] == pytest.approx(expected)


def test_demand_weighting_counts_gpu_milli():
    # share 500 and whole 1000, equally frequent: demand 500 vs 1000 -> weights 1/3, 2/3;
    # a node with one GPU of 700 free: share frag 200, whole frag 700 (cannot host it)
    t = typ((1_000, 500, 1, 0.5, ()), (1_000, 1000, 1, 0.5, ()))
    la = LookAheadFrag(t, ["", "T4"], weighting="demand")
    assert la.weight == pytest.approx([1 / 3, 2 / 3])
    assert la.frag_keys([(1, 64_000, (700,))])[0] == pytest.approx(200 / 3 + 700 * 2 / 3)


def test_gains_are_before_minus_after():
    la = LookAheadFrag(typ(SHARE_470), ["", "T4"], weighting="count")
    # GPU of 1000 free -> 530 free (1 slot, 60 lost): 60 -> 60; GPU of 470 free -> 0: 0 -> 0
    # for a second GPU: the state is (470, 1000)
    gains = la.gain_share([(1, 64_000, (470, 1000))], 1_000, 470)[0]
    assert gains == pytest.approx({470: 0.0, 1000: 0.0})
    # CPU: a CPU-only pod of 63,000 leaves 1 CPU slot -> fragment 60 -> 530
    assert la.gain_exclusive([(1, 64_000, (1000,))], 63_000, 0)[0] == pytest.approx(-470.0)
    # a whole GPU taken from two free ones: 2 x 2 slots -> 2 slots: fragment 120 -> 60
    assert la.gain_exclusive([(1, 64_000, (1000, 1000))], 1_000, 1)[0] == pytest.approx(60.0)


def test_fgd_share_scoring_is_one_function():
    # node a: GPU0 500 free, GPU1 free; typical 600 -> a 500 hole is a fragment
    state = ClusterState.from_nodes([mk_node("a", gpus=2)], [used("a", 0, 500)],
                                    typical=typical_pods([mk_pod("t", num=1, milli=600)]))
    req = pod_request(mk_pod("p", num=1, milli=500))
    sid = int(state.state_id[0])
    scores = fgd_gpu_scores(state, sid, req)
    # GPU0 (500 free): frag 500 -> 0: int(100 sigmoid(0.5)) = 62; GPU1: 500 -> 1000: 37
    assert scores == {500: 62, 1000: 37}
    assert fgd_node_score(state, sid, req) == 62
    assert gpus_fgd(state, req, 0, None) == (0,)


def test_zero_lookahead_is_fgd_and_lookahead_breaks_fgd_ties():
    # a and b tie under FGD (both idle, same shape); b has less CPU: a whole-GPU pod asking
    # 12 cores on b leaves 2 GPUs with 8 cores (one 12-core slot short) -> look-ahead
    # prefers a.
    nodes = [mk_node("a", cpu=48_000, gpus=4), mk_node("b", cpu=48_000, gpus=4)]
    bound = [mk_pod("cpu-hog", cpu=12_000, node="b")]
    workload = [mk_pod("t", cpu=12_000, num=1, milli=1000)] * 3 + [mk_pod("c", cpu=100)]
    pod = mk_pod("p", cpu=12_000, num=1, milli=1000)
    state = ClusterState.from_nodes(nodes, bound, typical=typical_pods(workload))
    req = pod_request(pod)
    feasible = state.feasible(req)
    state.set_weights(ScoreWeights(lookahead=0.0))
    assert static_scores(state, req, feasible).tolist() == score_fgd(state, req, feasible,
                                                                     None).tolist()
    state.set_weights(ScoreWeights())
    assert select(state, pod, "cohabit").node == "a"


LS = InterferenceProfile(sensitivity=(("gpu_sm", 0.5),))
HOG = InterferenceProfile(pressure=(("gpu_sm", 0.8),))


@pytest.mark.parametrize(
    ("ls_weight", "activity", "expected"),
    [
        pytest.param(1.0, 1.0, 100 * 0.4, id="plain"),
        pytest.param(3.0, 1.0, 3 * 100 * 0.4, id="ls-protected"),
        pytest.param(3.0, 0.25, 3 * 100 * 0.4 * 0.25, id="idle-aggressor-presses-less"),
    ],
)
def test_interference_part_qos_class_and_activity(ls_weight, activity, expected):
    from cohabit.placement import pressure_sensitivity_slowdown

    state = ClusterState.from_nodes([mk_node("a", gpus=2)], [used("a", 0, 500, tag="hog")])
    hog = "default/u-a-0hog"
    inter = state.set_interference({hog: HOG, "default/p": LS}, pressure_sensitivity_slowdown,
                                   activity={hog: activity}, latency_sensitive=["default/p"],
                                   ls_weight=ls_weight)
    assert inter.points("default/p", 0, (0,)) == pytest.approx(expected)
    assert inter.points("default/p", 0, (1,)) == 0.0  # another GPU: gpu_sm does not reach


def _usage(history, peak, ls=True, request=300):
    h = np.asarray(history, float)
    return PodUsage(h, float(h.mean()) if h.size else 1.0, peak, ls, request)


@pytest.mark.parametrize(
    ("other_history", "other_peak", "weights", "expected_gpu"),
    [
        pytest.param([0, 1, 0, 1, 0, 1], 300.0, ScoreWeights(lookahead=0, correlation=10),
                     (1,), id="correlated-neighbour-avoided"),
        pytest.param([1, 0, 1, 0, 1, 0], 300.0, ScoreWeights(lookahead=0, correlation=10),
                     (0,), id="anti-correlated-neighbour-is-fine"),
        pytest.param([1, 0, 1, 0, 1, 0], 900.0, ScoreWeights(lookahead=0, peak_fit=500),
                     (1,), id="peaks-that-overflow-the-gpu-avoided"),
    ],
)
def test_usage_parts(other_history, other_peak, weights, expected_gpu):
    # GPU0 holds a 300-milli pod; GPU1 holds a 300-milli pod with no usage known. FGD ties
    # the two GPUs for a 300-milli pod (same free milli), so only the usage parts decide.
    other = used("a", 0, 300, tag="o")
    quiet = used("a", 1, 300, tag="q")
    me = mk_pod("p", num=1, milli=300)
    state = ClusterState.from_nodes([mk_node("a", gpus=2)], [other, quiet],
                                    typical=typical_pods([mk_pod("t", num=1, milli=300)]))
    state.set_weights(weights)
    state.set_usage({other.key: _usage(other_history, other_peak),
                     me.key: _usage([0, 1, 0, 1, 0, 1], 300.0)})
    assert select(state, me, "cohabit").gpu_indices == expected_gpu


@pytest.mark.parametrize(
    ("spec", "match"),
    [({"lookahead": -1}, "spec.score.lookahead"), ({"bogus": 1}, "spec.score.bogus"),
     ({"qosTarget": 0}, "spec.score.qosTarget"),
     ({"lookaheadWeighting": "x"}, "spec.score.lookaheadWeighting"),
     ({"lsProtection": math.inf}, "spec.score.lsProtection")],
    ids=["negative", "unknown", "target-zero", "weighting", "infinite"],
)
def test_score_weights_are_validated_by_field(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_score_weights(spec)


def test_score_weights_parse_camel_case():
    w = parse_score_weights({"lookahead": 0.5, "lsProtection": 2, "lookaheadWeighting": "count"})
    assert (w.lookahead, w.ls_protection, w.lookahead_weighting) == (0.5, 2, "count")
    assert parse_score_weights(None) == ScoreWeights()


def test_every_policy_is_registered_with_a_source():
    for name in ("cohabit", "kube-default", "kube-knots", "load-aware"):
        assert POLICIES[name].source
