"""One seed of the real default list against the FGD paper's published curves."""

from __future__ import annotations

import numpy as np
import pytest

from cohabit.placement import ClusterState
from cohabit.simulator.fgd import inflate_workload, run_fgd
from cohabit.simulator.results import FGD_CURVE_COLUMNS

STEPS = list(range(50, 131, 10))


@pytest.fixture(scope="module")
def runs(openb_nodes, openb_default_pods):
    return {
        p: run_fgd(openb_nodes, openb_default_pods, policy=p, seed=42, workload="default")
        for p in ("best-fit", "fgd")
    }


@pytest.mark.parametrize("policy", ["best-fit", "fgd"])
def test_seed_42_within_half_a_point_of_published_mean(runs, published, policy):
    curve = runs[policy].curve.set_index("arrived_gpu_demand_pct")["gpu_alloc_ratio_pct"]
    pub = published[(published.workload == "openb_pod_list_default")
                    & (published.policy == policy)
                    & (published.metric == "gpu_alloc_ratio_pct")]
    pub = pub.set_index("arrived_gpu_demand_pct")["mean"]
    devs = {x: round(curve[x] - pub[x], 3) for x in STEPS}
    assert all(abs(d) <= 0.5 for d in devs.values()), devs


def test_fgd_beats_best_fit_at_full_demand(runs):
    at = {p: r.curve.set_index("arrived_gpu_demand_pct").loc[130, "gpu_alloc_ratio_pct"]
          for p, r in runs.items()}
    assert at["fgd"] > at["best-fit"] + 1.5
    assert runs["fgd"].failed_pods < runs["best-fit"].failed_pods


def test_curve_contract(runs):
    res = runs["fgd"]
    c = res.curve
    assert tuple(c.columns) == FGD_CURVE_COLUMNS
    assert c["arrived_gpu_demand_pct"].tolist() == list(range(0, 131))
    assert c["failed_pods"].is_monotonic_increasing
    assert c["failed_pods"].iloc[-1] == res.failed_pods
    # allocation never exceeds arrived demand, and CPU/memory are reported
    assert (c["gpu_alloc_ratio_pct"] <= c["arrived_gpu_demand_pct"] + 1).all()
    assert c.loc[c.arrived_gpu_demand_pct == 130, "cpu_alloc_ratio_pct"].iloc[0] > 10
    assert (c["frag_ratio_pct"].between(0, 100)).all()


def _inflate(nodes, pods, tune: float, seed: int):
    """The arrivals for ``tune`` times the cluster's GPU capacity, and that capacity (milli)."""
    cap = int(ClusterState.from_nodes(nodes).gpu_cnt.sum()) * 1000
    return inflate_workload(pods, cap, tune, np.random.default_rng(seed)), cap


def test_inflation_reaches_tune_times_capacity(openb_nodes, openb_default_pods):
    arrivals, cap = _inflate(openb_nodes, openb_default_pods, 1.3, 42)
    total = sum(p.gpu_request_milli for p in arrivals)
    assert 1.29 * cap < total <= 1.3 * cap
    assert len({p.name for p in arrivals}) == len(arrivals)
    # the originals come first, shuffled, each exactly once
    originals = arrivals[: len(openb_default_pods)]
    assert sorted(p.name for p in originals) == sorted(p.name for p in openb_default_pods)
    assert [p.name for p in originals] != sorted(p.name for p in originals)


def test_tune_below_the_list_thins_it(openb_nodes, openb_default_pods):
    arrivals, cap = _inflate(openb_nodes, openb_default_pods, 0.5, 1)
    total = sum(p.gpu_request_milli for p in arrivals)
    assert 0.49 * cap < total <= 0.5 * cap
    assert len(arrivals) < len(openb_default_pods)
    assert not any("tuned" in p.name for p in arrivals)


def test_trace_typical_pods_keep_raw_spec_groups(package_data, openb_nodes):
    from cohabit.placement import typical_pods
    from cohabit.simulator import loaders
    from cohabit.simulator.fgd import trace_typical_pods

    path = package_data / "alibaba-gpu-2023" / "openb_pod_list_gpuspec25.csv"
    pods = loaders.load_pods(path, openb_nodes)
    assert len(trace_typical_pods(pods, path)) == 113  # as GetTypicalPods on the raw text
    assert len(typical_pods(pods)) == 111  # grouped by the set of models
