"""The engine step that carries a plan out (``execute_plan``): one outcome per action,
dependent plans stop at the first action not done, recorders see every execution once,
dry-run records nothing, a budget spent mid-plan holds the rest back."""

from __future__ import annotations

import pytest

from cohabit.actuator import EvictionLimits, MemoryActuator, MemoryLedger
from cohabit.engine.execute import Execution, OutcomeTally, execute_plan
from cohabit.engine.rebind import make_room
from cohabit.model import Bind, Evict, GpuDevice, Node, Outcome, Pod, Resize, Resources
from cohabit.placement import ClusterState, OverCommitError, typical_pods
from cohabit.simulator.cluster import SimulatedCluster


def mk_node(name, gpus=2):
    return Node(name, 16_000, 64_000, 16_000, 64_000,
                tuple(GpuDevice(i, "T4") for i in range(gpus)))


def share(name, node=None, gpu=0):
    return Pod(name, 1000, 1000, 1, 500, node=node, gpu_indices=(gpu,) if node else ())


def fragmented():
    """a: both GPUs half used, b: its one GPU half used; a whole-GPU pod fits nowhere until
    one of a's pods moves to b (tests/unit/engine/test_rebind.py's first case)."""
    nodes = [mk_node("a"), mk_node("b", gpus=1)]
    bound = [share("x", "a", 0), share("y", "a", 1), share("z", "b", 0)]
    want = Pod("w", 1000, 1000, 1, 1000)
    return nodes, bound, want


def limited(state, **kw):
    limits = EvictionLimits(**{"dry_run": False, "max_unavailable": 10, **kw})
    return MemoryActuator(state, limits=limits, ledger=MemoryLedger(), clock=lambda: 1e6,
                          strict=False)


def test_empty_plan_calls_nothing():
    class Boom:
        def apply(self, actions, limits=None):
            raise AssertionError("no actuator call for an empty plan")

    tally = OutcomeTally()
    assert execute_plan([], Boom(), recorders=[tally]) == Execution()
    assert tally.executions == 0


def test_every_recorder_sees_the_same_execution_once():
    state = ClusterState.from_nodes([mk_node("a")], [share("x", "a")])
    seen = []

    class Spy:
        def record(self, execution):
            seen.append(execution)

    tally = OutcomeTally()
    done = execute_plan([Evict("default/x"), Resize("default/w", "c", Resources(100))],
                        MemoryActuator(state), recorders=[Spy(), tally, Spy()])
    assert seen == [done, done]
    assert tally.count("Evict") == 1 and tally.count("Resize") == 1
    assert done.evicted == ("default/x",) and len(done.resized) == 1 and done.complete


def test_missing_outcomes_become_failed():
    class Short:
        def apply(self, actions, limits=None):
            return [Outcome(actions[0], "done")]

    ex = execute_plan([Evict("ns/a"), Evict("ns/b")], Short())
    assert [o.status for o in ex.outcomes] == ["done", "failed"]
    assert "no outcome" in ex.outcomes[1].message and not ex.complete


def test_limits_reach_the_actuator_per_call():
    state = ClusterState.from_nodes([mk_node("a")], [share("x", "a")])
    act = MemoryActuator(state)  # no limits of its own
    ex = execute_plan([Evict("default/x")], act, limits=EvictionLimits(dry_run=True))
    assert ex.outcomes[0].status == "dry-run" and "default/x" in state.bound


def test_rebinding_move_through_the_step_matches_the_replay():
    nodes, bound, want = fragmented()
    cluster = SimulatedCluster(nodes, typical=typical_pods([*bound, want]))
    for p in bound:
        cluster.bind_pod(Bind(p.key, p.node, p.gpu_indices), p)
    move = make_room(cluster.state, want, "best-fit")
    assert move is not None
    victims_at = {cluster.state.bound[v].node for v in move.victims}
    touched = cluster.apply_move(move, want)
    assert cluster.state.placement_of(want.key) == (move.node, move.binds[0].gpu_indices)
    assert all(cluster.state.placement_of(v) is not None for v in move.victims)
    assert cluster.outcomes.count("Evict") == len(move.victims)
    assert cluster.outcomes.count("Bind") == 1 + len(move.victims)
    assert set(touched) == victims_at | {cluster.state.index[b.node] for b in move.binds}


def test_budget_spent_mid_move_holds_the_binds_back():
    nodes, bound, want = fragmented()
    state = ClusterState.from_nodes(nodes, bound)
    # two victims' worth of plan, budget for one eviction
    plan = [Evict("default/x"), Evict("default/y"), Bind(want.key, "a", (0,))]
    act = limited(state, evictions_per_hour=1)
    act.submit(want)
    ex = execute_plan(plan, act, dependent=True)
    assert [o.status for o in ex.outcomes] == ["done", "skipped", "skipped"]
    assert "budget spent" in ex.outcomes[1].message
    assert "depends on Evict default/y" in ex.outcomes[2].message
    assert "default/x" not in state.bound and "default/y" in state.bound
    assert want.key not in state.bound
    assert len(act.ledger.entries()) == 1


def test_budget_spent_mid_plan_independent_actions_go_on():
    nodes, bound, _ = fragmented()
    state = ClusterState.from_nodes(nodes, bound)
    other = Pod("o", 1000, 1000)
    act = limited(state, evictions_per_hour=1)
    act.submit(other)
    ex = execute_plan([Evict("default/x"), Evict("default/y"), Bind(other.key, "b")], act)
    assert [o.status for o in ex.outcomes] == ["done", "skipped", "done"]
    assert ex.bound == (Bind(other.key, "b"),) and ex.evicted == ("default/x",)


@pytest.mark.parametrize("dependent", [False, True], ids=["independent", "dependent"])
def test_failed_bind(dependent):
    state = ClusterState.from_nodes([mk_node("a", gpus=1)], [])
    act = MemoryActuator(state, strict=False)
    first, second = Pod("p1", 1000, 1000), Pod("p2", 1000, 1000)
    act.submit(first)
    act.submit(second)
    tally = OutcomeTally()
    ex = execute_plan([Bind(first.key, "nowhere"), Bind(second.key, "a")], act,
                      dependent=dependent, recorders=[tally])
    assert ex.outcomes[0].status == "failed" and "unknown node" in ex.outcomes[0].message
    assert ex.outcomes[1].status == ("skipped" if dependent else "done")
    assert (second.key in state.bound) is not dependent
    assert tally.count("Bind", "failed") == 1


def test_strict_failed_bind_raises_and_records_nothing():
    state = ClusterState.from_nodes([mk_node("a", gpus=1)], [])
    act = MemoryActuator(state)
    pod = Pod("p", 1000, 1000)
    act.submit(pod)
    tally = OutcomeTally()
    with pytest.raises(OverCommitError):
        execute_plan([Bind(pod.key, "nowhere")], act, recorders=[tally])
    assert tally.executions == 0


def test_dry_run_records_nothing():
    nodes, bound, want = fragmented()
    state = ClusterState.from_nodes(nodes, bound)
    before = (state.cpu_free.tolist(), state.gpu_free.tolist(), sorted(state.bound))
    act = limited(state, dry_run=True)
    act.submit(want)
    tally = OutcomeTally()
    ex = execute_plan([Evict("default/x"), Bind(want.key, "a", (0,))], act, dependent=True,
                      recorders=[tally])
    assert [o.status for o in ex.outcomes] == ["dry-run", "skipped"]
    assert act.ledger.entries() == []
    assert (state.cpu_free.tolist(), state.gpu_free.tolist(), sorted(state.bound)) == before
    assert ex.done() == () and tally.count("Evict", "dry-run") == 1
