"""Contended replay on a real slice of the openb default list (every 60th node, the first
1,500 pods, time compressed 16x): the accounting holds together, and cohabit's placement
plus its QoS guard leave latency-sensitive pods fewer violation intervals than fgd's."""

from __future__ import annotations

import numpy as np
import pytest

from cohabit.simulator.contended import build_setup, run_contended


@pytest.fixture(scope="module")
def slice_setup(openb_nodes, openb_default_pods):
    pods = openb_default_pods[:1500]
    return openb_nodes[::60], pods, build_setup(pods, seed=42, compress=16)


@pytest.fixture(scope="module")
def runs(slice_setup):
    nodes, pods, setup = slice_setup
    return {p: run_contended(nodes, pods, setup, policy=p, seed=42)
            for p in ("fgd", "cohabit")}


def test_every_pod_is_accounted_for(runs, slice_setup):
    _, pods, _ = slice_setup
    for r in runs.values():
        e = r.extra
        assert e["placed"] + r.never_placed == len(pods)
        assert 0 < e["gpu_alloc_pct"] <= 100 and 0 < e["gpu_demand_served_pct"] <= 100
        assert e["ls_violation_intervals"] <= e["ls_active_intervals"]
        assert 0 <= e["unfairness"] < 0.5 and np.isfinite(e["jct_mean_s"])


def test_cohabit_protects_latency_sensitive_pods(runs):
    assert (runs["cohabit"].extra["ls_violation_intervals"]
            < runs["fgd"].extra["ls_violation_intervals"])
    assert runs["cohabit"].extra["unfairness"] < runs["fgd"].extra["unfairness"]


def test_mapping_seed_changes_the_workloads_not_the_pods(openb_default_pods):
    pods = openb_default_pods[:300]
    a = build_setup(pods, seed=1).wmap
    b = build_setup(pods, seed=2).wmap
    assert (a.latency_sensitive == b.latency_sensitive).all()
    assert (a.job != b.job).any()
