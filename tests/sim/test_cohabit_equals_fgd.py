"""The ``cohabit`` policy on the real openb trace is built from parts: with the look-ahead
weight at 0 and no interference profiles it must place exactly as ``fgd`` (same node and
same GPUs for every pod), so its fragmentation part *is* FGD; with the default weights it
differs, and only there."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cohabit.config.placement import ScoreWeights
from cohabit.model import InterferenceProfile
from cohabit.placement import ClusterState, pressure_sensitivity_slowdown, select, typical_pods
from cohabit.simulator.fgd import run_fgd

FGD_ONLY = ScoreWeights(lookahead=0.0)


def _binds(nodes, pods, policy, seed, profiles=None, weights=FGD_ONLY):
    state = ClusterState.from_nodes(nodes, typical=typical_pods(pods))
    state.set_weights(weights)
    rng = np.random.default_rng(seed)
    state.set_priority(rng.permutation(state.n_nodes))
    if profiles is not None:
        state.set_interference(profiles, pressure_sensitivity_slowdown)
    order = rng.permutation(len(pods))
    out = []
    for i in order.tolist():
        bind = select(state, pods[i], policy)
        if bind is not None:
            state.apply(bind)
        out.append(None if bind is None else (bind.node, bind.gpu_indices))
    return out


@pytest.mark.parametrize("seed", [42, 7], ids=["seed42", "seed7"])
@pytest.mark.parametrize("with_empty_profiles", [False, True], ids=["no-profiles", "empty"])
def test_cohabit_binds_equal_fgd_on_a_real_slice(openb_nodes, openb_default_pods, seed,
                                                 with_empty_profiles):
    # 304 nodes, 3,000 pods: the slice over-fills the cluster, so failures are compared too
    nodes = openb_nodes[::4]
    pods = openb_default_pods[:3000]
    profiles = ({p.key: InterferenceProfile() for p in pods} if with_empty_profiles
                else None)
    fgd = _binds(nodes, pods, "fgd", seed)
    ours = _binds(nodes, pods, "cohabit", seed, profiles)
    assert ours == fgd
    assert sum(b is None for b in fgd) > 0 and sum(b is not None for b in fgd) > 2000


def test_cohabit_run_fgd_curve_equals_fgd(openb_nodes, openb_default_pods):
    a = run_fgd(openb_nodes, openb_default_pods, policy="fgd", seed=42, tune=1.3)
    b = run_fgd(openb_nodes, openb_default_pods, policy="cohabit", seed=42, tune=1.3,
                weights=FGD_ONLY)
    cols = [c for c in a.curve.columns if c != "policy"]
    pd.testing.assert_frame_equal(a.curve[cols], b.curve[cols])
    assert (a.arrivals, a.failed_pods) == (b.arrivals, b.failed_pods)


def test_default_weights_differ_from_fgd_only_by_the_lookahead(openb_nodes, openb_default_pods):
    # the look-ahead part changes where pods go (it is not a no-op) ...
    nodes, pods = openb_nodes[::4], openb_default_pods[:3000]
    assert (_binds(nodes, pods, "cohabit", 42, weights=ScoreWeights())
            != _binds(nodes, pods, "fgd", 42))
