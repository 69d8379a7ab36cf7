"""The scheduling pass holds the runtime lock only while it plans: the cluster list and the
binds run outside it (regression: one Bind against a silent server held the lock for over
90 s). Binds in flight are overlaid on other passes' snapshots, so two concurrent passes
never place pods onto the same free capacity (:class:`cohabit.operator.inflight.InflightBinds`).
"""

from __future__ import annotations

import threading

from cohabit.model import Bind, GpuDevice, Node, Outcome, Pod, Snapshot
from cohabit.operator import reconciler
from cohabit.operator.inflight import InflightBinds
from tests.helpers.operator_factories import StaticCluster

NOW = 2_000_000_000.0


def node(name, gpus=1):
    return Node(name, 8000, 32768, 8000, 32768,
                tuple(GpuDevice(i, "A10", 1000, 24576) for i in range(gpus)))


class BlockingActuator:
    """Blocks in ``apply`` until released; records whether the runtime lock was free."""

    def __init__(self, runtime_lock):
        self.lock = runtime_lock
        self.entered = threading.Event()
        self.release = threading.Event()
        self.lock_free_inside: list[bool] = []
        self.applied: list = []

    def apply(self, actions, limits=None):
        free = self.lock.acquire(blocking=False)
        if free:
            self.lock.release()
        self.lock_free_inside.append(free)
        self.entered.set()
        assert self.release.wait(10)
        self.applied.extend(actions)
        return [Outcome(a, "done") for a in actions]


class BlockingCluster(StaticCluster):
    def __init__(self, snapshot, runtime_lock):
        super().__init__(snapshot)
        self.lock = runtime_lock
        self.lock_free_inside: list[bool] = []

    def snapshot(self, now):
        free = self.lock.acquire(blocking=False)
        if free:
            self.lock.release()
        self.lock_free_inside.append(free)
        return super().snapshot(now)


def test_lock_is_free_during_list_and_binds_and_inflight_binds_are_not_reused(make_runtime):
    pods = (Pod("a", 6000, 1024, namespace="ns"), Pod("b", 6000, 1024, namespace="ns"))
    snap = Snapshot(0, (node("n1"),), pods)  # room for one of them only
    runtime = make_runtime()
    runtime.cluster = BlockingCluster(snap, runtime.lock)
    actuator = BlockingActuator(runtime.lock)
    runtime.actuator = actuator
    first: list = []
    thread = threading.Thread(
        target=lambda: first.extend(reconciler.scheduling_pass(runtime, "default", NOW)))
    thread.start()
    assert actuator.entered.wait(10)
    # the first pass's bind is in flight; a second pass lists the same (stale) cluster
    second_actions: list = []

    class Recording:
        def apply(self, actions, limits=None):
            second_actions.extend(actions)
            return [Outcome(a, "done") for a in actions]

    runtime.actuator = Recording()
    reconciler.scheduling_pass(runtime, "default", NOW)
    actuator.release.set()
    thread.join(10)
    assert actuator.lock_free_inside == [True]
    assert all(runtime.cluster.lock_free_inside)
    [bind] = [o.action for o in first]
    assert isinstance(bind, Bind) and bind.node == "n1"
    assert second_actions == []  # the only node's room is taken by the bind in flight


def test_overlay_takes_capacity_and_forgets_failed_binds():
    clock = {"t": 100.0}
    inflight = InflightBinds(keep_s=60, clock=lambda: clock["t"])
    pod = Pod("a", 2000, 4096, 1, 500, namespace="ns")
    snap = Snapshot(0, (node("n1", gpus=2),), (pod,))
    listed = inflight.mark()
    bind = Bind("ns/a", "n1", (1,))
    inflight.assume([bind], {pod.key: pod})
    over = inflight.overlay(snap, listed)
    [n1] = over.nodes
    assert (n1.cpu_free_milli, n1.memory_free_mib) == (6000, 28672)
    assert [g.milli_free for g in n1.gpus] == [1000, 500]
    assert over.pods[0].node == "n1" and over.pods[0].gpu_indices == (1,)
    clock["t"] = 101.0
    inflight.finish([Outcome(bind, "done")])
    assert inflight.overlay(snap, 100.5).pods[0].node == "n1"  # listed before it finished
    assert inflight.overlay(snap, 102.0) is snap  # listed after: the list shows it
    inflight.assume([bind], {pod.key: pod})
    inflight.finish([Outcome(bind, "failed", "HTTP 500")])
    assert len(inflight) == 0 and inflight.overlay(snap, 0.0) is snap


def test_a_pass_with_the_api_down_returns_nothing(make_runtime):
    import urllib3

    class DownCluster(StaticCluster):
        def snapshot(self, now):
            raise urllib3.exceptions.MaxRetryError(None, "/api/v1/nodes", "refused")

    runtime = make_runtime(cluster=DownCluster(Snapshot(0, (), ())))
    assert reconciler.scheduling_pass(runtime, "default", NOW) == []
    assert runtime.lock.acquire(blocking=False)


def test_operator_api_client_has_no_hidden_retries(tmp_path):
    """urllib3 retries are off: a call takes at most its timeout, and a write whose answer was
    lost is never re-sent behind the eviction ledger's back."""
    import yaml

    from cohabit.operator.main import api_client_from_environment

    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    api = api_client_from_environment(str(path))
    try:
        assert api.configuration.retries == 0
    finally:
        api.close()
