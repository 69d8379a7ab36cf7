"""``--mode replay`` on a real slice: 11 nodes, the first 3,000 pods of the default list."""

from __future__ import annotations

import math

import pytest

from cohabit.simulator.replay import run_replay
from cohabit.simulator.results import PENDING_COLUMNS, REPLAY_SERIES_COLUMNS


@pytest.fixture(scope="module")
def slice_(openb_nodes, openb_default_pods):
    pods = sorted(openb_default_pods, key=lambda p: (p.creation_time, p.name))[:3000]
    return openb_nodes[::120], pods


@pytest.mark.parametrize("policy", ["fgd", "best-fit", "random"])
def test_replay_slice(slice_, policy):
    nodes, pods = slice_
    res = run_replay(nodes, pods, policy=policy, seed=42, workload="default",
                     sample_every_s=600)
    assert tuple(res.series.columns) == REPLAY_SERIES_COLUMNS
    assert tuple(res.pending.columns) == PENDING_COLUMNS
    # every pod is placed, left the queue when deleted while pending, or still pending
    assert res.extra["placed"] + res.extra["deleted_while_pending"] + res.never_placed == len(pods)
    # this slice is contended: some pods wait and are placed later from the queue
    assert res.series["pending_pods"].max() > 0
    assert res.extra["retries"] > 0
    assert res.pending["pods"].sum() == len(pods)
    ls = res.pending.set_index("qos").loc["LS"]
    assert ls["p50_pending_s"] >= 0 and ls["p99_pending_s"] >= ls["p50_pending_s"]
    assert res.series["gpu_alloc_ratio_pct"].between(0, 100).all()
    assert res.series["time_s"].is_monotonic_increasing
    # at the end every placed pod with a deletion time has left
    still = sum(1 for p in pods if p.deletion_time is None)
    assert res.series["running_pods"].iloc[-1] <= still
    assert not math.isnan(res.series["frag_ratio_pct"].iloc[-1])


def test_replay_is_deterministic_per_seed(slice_):
    nodes, pods = slice_
    a = run_replay(nodes, pods[:800], policy="random", seed=3, sample_every_s=3600)
    b = run_replay(nodes, pods[:800], policy="random", seed=3, sample_every_s=3600)
    assert a.series.equals(b.series)
