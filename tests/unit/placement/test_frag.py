"""Typical pods and fragmentation: hand-checked cases and the real default list."""

from __future__ import annotations

import pytest

from cohabit.placement import ClusterState, cluster_frag, node_frag, typical_pods
from tests.helpers.placement_factories import mk_node, mk_pod, used

SHARE = mk_pod("s", cpu=1_000, num=1, milli=500)
WHOLE = mk_pod("w", cpu=8_000, num=1, milli=1000)
CPU = mk_pod("c", cpu=4_000)
T4ONLY = mk_pod("t", cpu=1_000, num=1, milli=500, spec=["T4"])

FRAG_CASES = [
    # (gpu free, cpu free, model, workload, expected fragment milli)
    pytest.param([1000, 300], 64_000, "T4", [SHARE, WHOLE], 0.5 * 300 + 0.5 * 300,
                 id="both-fit-small-gpu-is-fragment"),
    pytest.param([1000, 300], 4_000, "T4", [SHARE, WHOLE], 0.5 * 300 + 0.5 * 1300,
                 id="cpu-lacking-all-idle-is-fragment"),
    pytest.param([400, 300], 64_000, "T4", [SHARE], 700, id="no-gpu-fits"),
    pytest.param([1000, 1000], 64_000, "T4", [SHARE, CPU], 0.5 * 0 + 0.5 * 2000,
                 id="cpu-only-pods-see-all-idle"),
    pytest.param([1000, 600], 64_000, "P100", [T4ONLY, SHARE], 0.5 * 1600 + 0.5 * 0,
                 id="no-access-all-idle"),
    pytest.param([0, 0], 64_000, "T4", [SHARE, CPU], 0.0, id="no-idle-no-fragment"),
    pytest.param([1000] * 4, 64_000, "T4", [mk_pod("m", num=4, milli=1000)], 0.0,
                 id="multi-gpu-fits"),
    pytest.param([1000, 1000, 1000, 900], 64_000, "T4", [mk_pod("m", num=4, milli=1000)],
                 3900.0, id="multi-gpu-one-short"),
]


@pytest.mark.parametrize(("gpus", "cpu", "model", "workload", "expected"), FRAG_CASES)
def test_node_frag(gpus, cpu, model, workload, expected):
    assert node_frag(gpus, cpu, model, typical_pods(workload)) == pytest.approx(expected)


def test_typical_pods_keep_groups_until_95_percent():
    # 60 share, 30 whole, 6 cpu, 4 odd pods: 60+30 = 90% < 95%, +6 = 96% -> three groups
    workload = ([SHARE] * 60 + [WHOLE] * 30 + [CPU] * 6
                + [mk_pod(f"o{i}", cpu=100 + i, num=1, milli=100) for i in range(4)])
    tp = typical_pods(workload)
    assert [(t.milli, t.num, t.count) for t in tp.pods] == [(500, 1, 60), (1000, 1, 30),
                                                           (0, 0, 6)]
    assert tp.coverage == pytest.approx(0.96)
    assert sum(t.freq for t in tp.pods) == pytest.approx(1.0)
    assert tp.pods[0].freq == pytest.approx(60 / 96)


def test_zero_cpu_counts_as_100_milli():
    tp = typical_pods([mk_pod("z", cpu=0, num=1, milli=200)])
    assert tp.pods[0].cpu == 100


def test_default_list_has_35_typical_groups(default_trace):
    _, pods = default_trace
    tp = typical_pods(pods)
    assert len(tp) == 35
    assert round(100 * tp.coverage, 2) == 95.26
    assert any(t.num == 0 for t in tp.pods)  # CPU-only pods are among them


def test_cluster_frag_ratio_and_amount():
    state = ClusterState.from_nodes([mk_node("a", gpus=2), mk_node("b", gpus=2)],
                                    [used("a", 0, 800)], typical=typical_pods([SHARE]))
    cf = cluster_frag(state)
    # a: [200, 1000] -> 200 is a fragment for 500-milli pods; b: none
    assert cf.frag_milli == pytest.approx(200)
    assert cf.idle_milli == 3200
    assert cf.ratio_pct == pytest.approx(100 * 200 / 3200)
    assert cf.amount_pct == pytest.approx(100 * 200 / 4000)


def test_raw_spec_text_keeps_groups_apart_as_the_paper_does():
    pods = [mk_pod(f"p{i}", num=1, milli=500, spec=["V100M16", "V100M32"]) for i in range(4)]
    text = ["V100M16|V100M32"] * 3 + ["V100M16|V100M32|V100M32"]
    merged = typical_pods(pods, coverage_pct=100)
    apart = typical_pods(pods, coverage_pct=100, spec_text=text)
    assert [t.count for t in merged.pods] == [4]
    assert [t.count for t in apart.pods] == [3, 1]
    assert all(t.spec == frozenset({"V100M16", "V100M32"}) for t in apart.pods)
    with pytest.raises(ValueError, match="one entry per pod"):
        typical_pods(pods, spec_text=text[:2])
