"""Baseline score plugins on clusters whose answer is known by hand: Kubernetes' default
scoring, Kube-Knots CBP+PP (with its p90 resize) and Koordinator-style load-aware."""

from __future__ import annotations

import numpy as np
import pytest

from cohabit.model import Bind
from cohabit.placement import ClusterState, select
from cohabit.placement.baselines import resize_p90, score_kube_default
from cohabit.placement.state import pod_request
from cohabit.placement.usage import PodUsage
from tests.helpers.placement_factories import mk_node, mk_pod, used


def usage(history=(), peak=300.0, ls=True, request=300, mean=None):
    h = np.asarray(history, float)
    m = mean if mean is not None else (float(h.mean()) if h.size else 1.0)
    return PodUsage(h, m, peak, ls, request)


# ----------------------------------------------------------------- kube-default


def test_kube_default_scores_by_hand():
    # a: 64 cores / 256,000 MiB free; b: 16 cores used of 64. Pod: 16 cores, 64,000 MiB.
    # a: least ((64-16)/64*100=75 + (256-64)/256*100=75)/2 = 75; balanced 1-|.25-.25| -> 100
    # b: cpu used 32/64 -> least 50, mem 64/256 -> 75, avg 62; balanced 1-|.5-.25| -> 75
    nodes = [mk_node("a", mem=256_000), mk_node("b", mem=256_000)]
    bound = [mk_pod("x", cpu=16_000, mem=0, node="b")]
    state = ClusterState.from_nodes(nodes, bound)
    req = pod_request(mk_pod("p", cpu=16_000, mem=64_000))
    assert score_kube_default(state, req, np.array([0, 1]), None).tolist() == [175, 137]
    assert select(state, mk_pod("p", cpu=16_000, mem=64_000), "kube-default").node == "a"


def test_kube_default_zero_requests_count_as_defaults():
    state = ClusterState.from_nodes([mk_node("a", cpu=1_000, mem=1_000)])
    req = pod_request(mk_pod("p", cpu=0, mem=0))
    # 100 milli and 200 MiB: least (90 + 80) // 2 = 85; balanced 1 - |0.1 - 0.2| -> 90
    assert score_kube_default(state, req, np.array([0]), None).tolist() == [175]


# ----------------------------------------------------------------- kube-knots


def knots_state(neighbour_usage, pod_usage):
    # GPU0 holds a 300-milli pod with usage; GPU1 holds a 300-milli pod without usage
    nb = used("a", 0, 300, tag="nb")
    quiet = used("a", 1, 300, tag="q")
    state = ClusterState.from_nodes([mk_node("a", gpus=2)], [nb, quiet])
    pod = mk_pod("p", num=1, milli=300)
    state.set_usage({nb.key: neighbour_usage, pod.key: pod_usage})
    return state, pod


# Predicted GPU utilisation after placement = peaks of the pods with usage + requests of the
# others + the pod's own peak. GPU1 (the quiet pod, no usage): 300 + 200 = 500.
KNOTS = [
    pytest.param(usage([0, 1, 0, 1], peak=200), usage([0, 1, 0, 1], peak=200), (1,),
                 id="cbp-refuses-correlated"),  # corr 1.0 >= 0.5 on GPU0
    pytest.param(usage([1, 0, 1, 0], peak=400), usage([0, 1, 0, 1], peak=200), (0,),
                 id="anti-correlated-packs-the-busiest"),  # GPU0: 400 + 200 = 600 > 500
    pytest.param(usage([1, 0, 1, 0], peak=200), usage([0, 1, 0, 1], peak=200), (1,),
                 id="packs-where-more-is-predicted"),  # GPU0: 200 + 200 = 400 < 500
    pytest.param(usage([1, 0, 1, 0], peak=900), usage([0, 1, 0, 1], peak=200), (1,),
                 id="pp-refuses-overflowing-peaks"),  # GPU0: 900 + 200 > 1000
]


@pytest.mark.parametrize(("nb", "me", "gpus"), KNOTS)
def test_kube_knots_cbp_and_pp(nb, me, gpus):
    state, pod = knots_state(nb, me)
    assert select(state, pod, "kube-knots").gpu_indices == gpus


def test_kube_knots_waits_when_no_gpu_passes():
    state, pod = knots_state(usage([0, 1, 0, 1], peak=900), usage([0, 1, 0, 1], peak=800))
    # GPU0: correlated; GPU1: 300 (request) + 800 > 1000 -> nowhere: the pod waits
    assert select(state, pod, "kube-knots") is None
    assert select(state, pod, "best-fit") is not None  # by requests it fits


def test_kube_knots_undefined_correlation_counts_as_uncorrelated():
    # a constant history has no correlation: CBP does not refuse, PP alone decides
    state, pod = knots_state(usage([1, 1, 1, 1], peak=300), usage([0, 1, 0, 1], peak=200))
    assert select(state, pod, "kube-knots") is not None


@pytest.mark.parametrize(
    ("pod", "u", "milli"),
    [
        pytest.param(mk_pod("p", num=1, milli=500), usage(np.linspace(0, 1, 11)), 450,
                     id="ls-share-to-p90"),
        pytest.param(mk_pod("p", num=1, milli=500), usage(np.linspace(0, 1, 11), ls=False),
                     500, id="batch-untouched"),
        pytest.param(mk_pod("p", num=1, milli=1000), usage(np.linspace(0, 1, 11)), 1000,
                     id="whole-gpu-untouched"),
        pytest.param(mk_pod("p", num=1, milli=500), usage(np.zeros(10)), 10,
                     id="floor-10-milli"),
        pytest.param(mk_pod("p", num=1, milli=500), None, 500, id="no-usage"),
    ],
)
def test_kube_knots_resize_p90(pod, u, milli):
    assert resize_p90(pod, u).gpu_milli == milli


# ----------------------------------------------------------------- load-aware


def test_load_aware_keeps_ls_off_busy_gpus_and_lets_be_in():
    # GPU0: a 600-milli batch pod (estimated 600 used); GPU1: a 600-milli LS pod at 10 %
    # (estimated 60). An LS pod of 300 (mean 0.5 -> 150): GPU0 750 > 650 filtered; GPU1 210.
    busy = used("a", 0, 600, tag="busy")
    calm = used("a", 1, 600, tag="calm")
    state = ClusterState.from_nodes([mk_node("a", gpus=2)], [busy, calm])
    ls_pod = mk_pod("p", num=1, milli=300)
    be_pod = mk_pod("q", num=1, milli=300)
    state.set_usage({busy.key: usage(ls=False, request=600, mean=1.0),
                     calm.key: usage(request=600, mean=0.1),
                     ls_pod.key: usage(request=300, mean=0.5),
                     be_pod.key: usage(ls=False, request=300, mean=1.0)})
    assert select(state, ls_pod, "load-aware").gpu_indices == (1,)
    state2 = ClusterState.from_nodes([mk_node("a", gpus=1)], [used("a", 0, 600, tag="busy")])
    state2.set_usage({"default/u-a-0busy": usage(ls=False, request=600, mean=1.0),
                      ls_pod.key: usage(request=300, mean=0.5),
                      be_pod.key: usage(ls=False, request=300, mean=1.0)})
    assert select(state2, ls_pod, "load-aware") is None  # 600 + 150 > 650: waits
    assert select(state2, be_pod, "load-aware") is not None  # BE soaks up what is left


def test_load_aware_prefers_the_least_used_node():
    nodes = [mk_node("a", gpus=2), mk_node("b", gpus=2)]
    bound = [used("a", 0, 1000, tag="x")]
    state = ClusterState.from_nodes(nodes, bound)
    pod = mk_pod("p", num=1, milli=1000)
    assert select(state, pod, "load-aware").node == "b"


def test_load_aware_estimate_follows_binds_and_releases():
    # a: a 600-milli pod at 10 % (estimated 60); b: a 1000-milli pod at 10 % (100): a whole-GPU
    # pod goes to a. Replace a's pod by a busy one (600 estimated): now b is less used. A
    # stale estimate after the release would still say 60 on a.
    state = ClusterState.from_nodes([mk_node("a", gpus=2), mk_node("b", gpus=2)], [])
    calm_a, calm_b = mk_pod("ca", num=1, milli=600), mk_pod("cb", num=1, milli=1000)
    busy_a, pod = mk_pod("ba", num=1, milli=600), mk_pod("p", num=1, milli=1000)
    state.set_usage({calm_a.key: usage(ls=False, request=600, mean=0.1),
                     calm_b.key: usage(ls=False, request=1000, mean=0.1),
                     busy_a.key: usage(ls=False, request=600, mean=1.0)})
    state.apply(Bind(calm_a.key, "a", (0,)), calm_a)
    state.apply(Bind(calm_b.key, "b", (0,)), calm_b)
    assert select(state, pod, "load-aware").node == "a"
    state.release(calm_a.key)
    state.apply(Bind(busy_a.key, "a", (0,)), busy_a)
    assert select(state, pod, "load-aware").node == "b"
    for key in (busy_a.key, calm_b.key):
        state.release(key)
    assert not state.usage.relief.any()
