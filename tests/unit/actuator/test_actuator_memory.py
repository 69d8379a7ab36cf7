"""The in-memory actuator over a real ClusterState: binds, evictions under the Kubernetes
actuator's limits (budget, dry-run, disabled, PDB, max unavailable), resizes, strictness."""

from __future__ import annotations

import pytest

from cohabit.actuator import Actuator, EvictionLimits, MemoryActuator, MemoryLedger
from cohabit.model import Bind, Evict, GpuDevice, Node, Pod, Resize, Resources
from cohabit.placement import ClusterState, OverCommitError


class Clock:
    def __init__(self, t=1_000_000.0):
        self.t = t

    def __call__(self):
        return self.t


def mk_node(name, cpu=8000, gpus=1):
    return Node(name, cpu, 32_000, cpu, 32_000, tuple(GpuDevice(i, "T4") for i in range(gpus)))


def bound_state(n_pods=3, workload=None, evictable=True):
    """Node ``a`` (8 cores, one GPU) with ``n_pods`` one-core pods bound on it."""
    pods = [Pod(f"p{i}", 1000, 1000, node="a", workload=workload, evictable=evictable)
            for i in range(n_pods)]
    return ClusterState.from_nodes([mk_node("a")], pods)


def make(state, **limits):
    lim = EvictionLimits(**{"dry_run": False, "max_unavailable": 10, **limits})
    return MemoryActuator(state, limits=lim, ledger=MemoryLedger(), clock=Clock(),
                          strict=False)


def test_is_an_actuator():
    assert isinstance(MemoryActuator(bound_state()), Actuator)


def test_bind_of_a_submitted_pod_changes_the_state():
    state = bound_state(0)
    act = MemoryActuator(state)
    pod = Pod("w", 2000, 1000, num_gpu=1, gpu_milli=500)
    act.submit(pod)
    [outcome] = act.apply([Bind(pod.key, "a", (0,))])
    assert outcome.status == "done"
    assert int(state.cpu_free[0]) == 6000 and int(state.gpu_free[0, 0]) == 500
    assert act.binds == 1


@pytest.mark.parametrize(
    ("strict", "expect"), [(True, "raise"), (False, "failed")], ids=["strict", "lenient"])
def test_bind_that_does_not_fit(strict, expect):
    state = bound_state(0)
    act = MemoryActuator(state, strict=strict)
    pod = Pod("big", 9000, 1000)
    act.submit(pod)
    if expect == "raise":
        with pytest.raises(OverCommitError):
            act.apply([Bind(pod.key, "a")])
    else:
        [outcome] = act.apply([Bind(pod.key, "a")])
        assert outcome.status == "failed" and "needs cpu 9000" in outcome.message
    assert int(state.cpu_free[0]) == 8000 and not state.bound


def test_budget_counts_as_it_goes_and_the_window_slides():
    state = bound_state(4)
    act = make(state, evictions_per_hour=2)
    outcomes = act.apply([Evict(f"default/p{i}") for i in range(3)])
    assert [o.status for o in outcomes] == ["done", "done", "skipped"]
    assert "budget spent (2/2" in outcomes[2].message
    assert sorted(state.bound) == ["default/p2", "default/p3"]
    assert [e.state for e in act.ledger.entries()] == ["done", "done"]
    act.clock.t += 3601
    assert act.apply([Evict("default/p3")])[0].status == "done"


def test_dry_run_changes_and_records_nothing():
    state = bound_state(2)
    act = make(state, dry_run=True)
    outcomes = act.apply([Evict("default/p0"), Evict("default/p1")])
    assert [o.status for o in outcomes] == ["dry-run", "dry-run"]
    assert act.ledger.entries() == [] and len(state.bound) == 2 and act.evictions == 0


@pytest.mark.parametrize(
    ("limits", "pod_kw", "status", "words"),
    [({"enabled": False}, {}, "skipped", "disabled"),
     ({"evictions_per_hour": 0}, {}, "skipped", "evictionsPerHour is 0"),
     ({}, {"evictable": False}, "refused", "PodDisruptionBudget"),
     ({"max_unavailable": 1}, {"workload": "w"}, "skipped", "1 unavailable")],
    ids=["disabled", "zero-budget", "pdb", "max-unavailable"],
)
def test_guards(limits, pod_kw, status, words):
    state = bound_state(2, **pod_kw)
    act = make(state, **limits)
    first = act.apply([Evict("default/p0")])[0]
    if words == "1 unavailable":  # the first eviction leaves one pod of the workload out
        assert first.status == "done"
        first = act.apply([Evict("default/p1")])[0]
    assert first.status == status and words in first.message
    assert "default/p1" in state.bound


def test_evicting_a_pod_that_is_not_bound():
    act = make(bound_state(0))
    assert act.apply([Evict("default/nobody")])[0].status == "skipped"
    unlimited = MemoryActuator(bound_state(0))
    [outcome] = unlimited.apply([Evict("default/nobody")])
    assert outcome.status == "failed" and "not bound" in outcome.message


def test_evicted_pod_can_be_bound_again_without_resubmitting():
    state = ClusterState.from_nodes([mk_node("a"), mk_node("b")],
                                    [Pod("x", 1000, 1000, num_gpu=1, gpu_milli=500,
                                         node="a", gpu_indices=(0,))])
    act = MemoryActuator(state)
    outcomes = act.apply([Evict("default/x"), Bind("default/x", "b", (0,))])
    assert [o.status for o in outcomes] == ["done", "done"]
    assert state.placement_of("default/x") == ("b", (0,))


def test_resize_sets_template_requests():
    act = MemoryActuator(bound_state(0))
    want = Resources(cpu_milli=1500, memory_mib=2048)
    [outcome] = act.apply([Resize("default/db", "postgres", want)])
    assert outcome.status == "done" and act.requests == {("default/db", "postgres"): want}
