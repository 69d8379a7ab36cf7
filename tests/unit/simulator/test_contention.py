"""The contention model and the contended replay on cases checked by hand, and the
never-over-commit invariant under contention, throttling and rebinding (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cohabit.config.placement import ScoreWeights
from cohabit.model import GpuDevice, InterferenceProfile, Node, Pod, QosClass
from cohabit.placement import ClusterState
from cohabit.placement.usage import PodUsage
from cohabit.simulator import contended
from cohabit.simulator.contended import ContendedSetup, run_contended
from cohabit.simulator.contention import ZERO_PAIR_FRACTION, GavelContention
from cohabit.simulator.workloads import WorkloadMap, gavel_type_order, map_workloads

TYPES = ("light", "heavy")
# light next to heavy runs at 0.5, heavy next to light at 0.9; same type: 0.8; heavy-heavy: 0
PAIRS = pd.DataFrame({
    "gpu": "v100", "scale": 1, "solo_a": 1.0,
    "a": ["light", "light", "heavy", "heavy"], "b": ["light", "heavy", "light", "heavy"],
    "fraction": [0.8, 0.5, 0.9, 0.0],
})


def model(beta=0.1) -> GavelContention:
    return GavelContention.from_pairs(PAIRS, TYPES, node_beta=beta)


def test_pairs_zero_and_unmeasured():
    m = model()
    assert m.fraction[0, 1] == 0.5 and m.fraction[1, 0] == 0.9
    assert m.fraction[1, 1] == ZERO_PAIR_FRACTION  # could not co-run: an even time split
    partial = PAIRS[PAIRS["a"] != "heavy"]
    predicted = np.full((2, 2), 0.7)
    m2 = GavelContention.from_pairs(partial, TYPES, predicted)
    assert m2.fraction[1, 0] == 0.7 and not m2.measured[1, 0] and m2.measured[0, 1]
    assert gavel_type_order(PAIRS) == ["light", "heavy"]  # heavy inflicts more


def fr(job, act, group, node, cpu, req, pairs, beta=0.1):
    pi = np.array([a for a, _ in pairs], np.int64)
    pj = np.array([b for _, b in pairs], np.int64)
    return model(beta).fractions(np.array(job), np.array(act, float), np.array(group),
                                 np.array(node), np.array(cpu, float), np.array(req, float),
                                 pi, pj)


FRACTIONS = [
    pytest.param([0, 1], [1, 1], [0, 0], [0, 0], [0, 0], [500, 500], [(0, 1), (1, 0)],
                 [0.5, 0.9], id="gavel-pair"),
    pytest.param([0, 1], [1, 0.5], [0, 0], [0, 0], [0, 0], [500, 500], [(0, 1), (1, 0)],
                 [1 - 0.5 * 0.5, 0.9], id="idle-neighbour-presses-less"),
    pytest.param([0, 0, 0], [1, 1, 1], [0, 0, 0], [0, 0, 0], [0, 0, 0], [300] * 3,
                 [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)], [0.64] * 3,
                 id="three-co-runners-multiply"),
    pytest.param([0, -1], [1, 1], [-1, -1], [0, 0], [0.5, 0.5], [1000, 0], [],
                 [1 - 0.1 * 0.5, 1 - 0.1 * 0.5], id="host-cpu"),
    pytest.param([0, 0], [1, 1], [0, 0], [0, 0], [0, 0], [800, 700], [],
                 [1000 / 1500, 1000 / 1500], id="oversubscribed-gpu"),
]


@pytest.mark.parametrize(("job", "act", "group", "node", "cpu", "req", "pairs", "expected"),
                         FRACTIONS)
def test_fractions(job, act, group, node, cpu, req, pairs, expected):
    assert fr(job, act, group, node, cpu, req, pairs).tolist() == pytest.approx(expected)


def test_mapping_is_seeded_and_by_shape():
    pods = [Pod(f"p{i}", 1000, 100, 1, 100 if i % 2 else 1000,
                qos=QosClass.LS if i % 3 == 0 else QosClass.BE) for i in range(40)]
    series = [np.linspace(0, 1, 1200)]
    a = map_workloads(pods, TYPES, series, 7)
    b = map_workloads(pods, TYPES, series, 7)
    assert a.job.tolist() == b.job.tolist()
    assert a.latency_sensitive.tolist() == [i % 3 == 0 for i in range(40)]
    # small shares get the lighter type, whole GPUs the heavier (window 0.25 around q)
    assert {int(a.job[i]) for i in range(1, 40, 2)} == {0}
    assert {int(a.job[i]) for i in range(0, 40, 2)} == {1}
    # LS pods replay the second half of a series, schedulers see only the first half
    assert len(a.history[0]) == 600 and a.series[0] is not None and a.series[1] is None
    assert set(np.round(a.series[0], 6)) <= set(np.round(series[0][600:], 6))


# ----------------------------------------------------------------- tiny contended replays


def tiny_setup(pods, job, ls, *, compress=1.0, weights=None, beta=0.1):
    series = [np.ones(100) if flag else None for flag in ls]
    wmap = WorkloadMap(TYPES, np.array(job), np.array(ls), series,
                       [np.ones(50) if flag else np.zeros(0) for flag in ls], 0)
    profiles = {t: InterferenceProfile() for t in TYPES}
    usages = {p.key: PodUsage(np.ones(50) if flag else np.zeros(0), 1.0,
                              float(p.gpu_milli), bool(flag), p.gpu_milli)
              for p, flag in zip(pods, ls, strict=True)}
    return ContendedSetup(model(beta), wmap, profiles, lambda v, a: 0.0, usages, compress,
                          60.0, 3600.0, weights or ScoreWeights(lookahead=0))


def gpu_node(name, gpus=1, cpu=8000):
    return Node(name, cpu, 64_000, cpu, 64_000, tuple(GpuDevice(i, "V100") for i in range(gpus)))


def test_two_batch_pods_sharing_a_gpu_run_longer():
    # light (500) + heavy (500) on one GPU from t=0: light at 0.5, heavy at 0.9 (plus 0 host)
    pods = [Pod("a", 0, 100, 1, 500, qos=QosClass.BE, creation_time=0, deletion_time=600),
            Pod("b", 0, 100, 1, 500, qos=QosClass.BE, creation_time=0, deletion_time=600)]
    setup = tiny_setup(pods, [0, 1], [False, False])
    r = run_contended([gpu_node("n")], pods, setup, policy="fgd", seed=0, guard=False)
    # b: 600 s of work at 0.9 -> 666.7 s; a: 0.5 while b runs (333.3 s of work), then alone
    assert r.extra["jct_mean_s"] == pytest.approx((666.67 + 666.67 + 266.67) / 2, rel=0.02)
    assert r.extra["be_violation_intervals"] >= 11  # a below 0.8 for 11-12 steps


def test_guard_throttles_the_batch_neighbour_of_an_ls_pod():
    # LS light (active all the time) shares with a batch heavy: 0.5 < 0.8 -> violation; the
    # guard throttles the batch pod to (1 - 0.8) / 0.5 = 0.4 -> LS at 0.8 from the next step
    pods = [Pod("ls", 0, 100, 1, 500, qos=QosClass.LS, creation_time=0, deletion_time=1200),
            Pod("be", 0, 100, 1, 500, qos=QosClass.BE, creation_time=0, deletion_time=1800)]
    setup = tiny_setup(pods, [0, 1], [True, False])
    plain = run_contended([gpu_node("n")], pods, setup, policy="fgd", seed=0, guard=False)
    guarded = run_contended([gpu_node("n")], pods, setup, policy="fgd", seed=0, guard=True)
    assert plain.extra["ls_violation_intervals"] == 20
    assert guarded.extra["ls_violation_intervals"] == 1  # only the step that detected it
    assert guarded.extra["jct_mean_s"] > plain.extra["jct_mean_s"]  # BE pays


def test_unfairness_is_the_spread_of_normalised_performance():
    pods = [Pod("a", 0, 100, 1, 500, qos=QosClass.BE, creation_time=0, deletion_time=600),
            Pod("b", 0, 100, 1, 500, qos=QosClass.BE, creation_time=0, deletion_time=600)]
    setup = tiny_setup(pods, [0, 1], [False, False])
    spread = run_contended([gpu_node("n", gpus=1)], pods, setup, policy="fgd", seed=0,
                           guard=False).extra["unfairness"]
    apart = run_contended([gpu_node("n", gpus=2)], pods, tiny_setup(pods, [0, 1], [False,
                          False], beta=0.0), policy="load-aware", seed=0,
                          guard=False).extra["unfairness"]
    assert apart == pytest.approx(0.0, abs=1e-9) and spread > 0.05


@st.composite
def contended_case(draw):
    n = draw(st.integers(1, 3))
    nodes = [gpu_node(f"n{i}", gpus=draw(st.integers(1, 3)), cpu=draw(st.integers(2000, 8000)))
             for i in range(n)]
    pods, job, ls = [], [], []
    for i in range(draw(st.integers(1, 20))):
        kind = draw(st.sampled_from(["share", "whole", "cpu"]))
        milli = draw(st.integers(50, 999)) if kind == "share" else 1000
        num = 0 if kind == "cpu" else 1
        start = draw(st.integers(0, 1800))
        is_ls = draw(st.booleans())
        pods.append(Pod(f"p{i}", draw(st.integers(0, 2000)), 100, num, milli if num else 0,
                        qos=QosClass.LS if is_ls else QosClass.BE, creation_time=start,
                        deletion_time=start + draw(st.integers(60, 1800))))
        job.append(draw(st.integers(0, 1)) if num else -1)
        ls.append(is_ls)
    return nodes, pods, job, ls


@given(contended_case(), st.sampled_from(["cohabit", "fgd", "kube-knots", "load-aware"]),
       st.booleans())
@settings(max_examples=40, deadline=None)
def test_contended_replay_never_over_commits(case, policy, rebind):
    nodes, pods, job, ls = case
    setup = tiny_setup(pods, job, ls)
    seen = []
    original = contended._Loop._account

    def checked(self, t, step):
        _check(self.state)
        seen.append(t)
        return original(self, t, step)

    contended._Loop._account = checked
    try:
        r = run_contended(nodes, pods, setup, policy=policy, seed=0, rebind=rebind)
    finally:
        contended._Loop._account = original
    assert seen and r.extra["placed"] + r.never_placed == len(pods)
    assert not math.isnan(r.extra["gpu_alloc_pct"])


def _check(state: ClusterState) -> None:
    assert (state.cpu_free >= 0).all() and (state.mem_free >= 0).all()
    assert (state.gpu_free >= 0).all() and (state.gpu_free <= 1000).all()
    gpu = np.zeros_like(state.gpu_free)
    for b in state.bound.values():
        for g in b.gpus:
            gpu[b.node, g] += b.req.milli
    assert (1000 * (np.arange(gpu.shape[1]) < state.gpu_cnt[:, None]) - gpu
            == state.gpu_free).all()
