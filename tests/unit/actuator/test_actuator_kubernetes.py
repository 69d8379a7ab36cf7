"""The Kubernetes actuator against an API stand-in with a real server's answers (see
fake_kube.py): binding, eviction (v1 / v1beta1, PDB 429, dry-run, budgets, idempotency),
resize."""

from __future__ import annotations

import pytest
from kubernetes import client

from cohabit.actuator import Actuator, EvictionLimits, MemoryLedger
from cohabit.actuator.kubernetes import KubernetesActuator
from cohabit.model import Bind, Evict, Resize, Resources
from tests.helpers.fake_kube import FakeKube


class Clock:
    def __init__(self, t=1_000_000.0):
        self.t = t

    def __call__(self):
        return self.t


def make(fake, limits=None, ledger=None, clock=None, targets=None):
    act = KubernetesActuator(client.ApiClient(), limits=limits or EvictionLimits(dry_run=False),
                             ledger=ledger, clock=clock or Clock(),
                             resolve_target=(targets or {}).get)
    act.core = act.apps = act.apis = fake
    return act


def test_is_an_actuator():
    assert isinstance(make(FakeKube()), Actuator)


@pytest.mark.parametrize(
    ("bound_to", "action", "status", "posts"),
    [(None, Bind("ns/p", "n1", (0, 1)), "done", 1),
     ("n1", Bind("ns/p", "n1"), "done", 0),
     ("n2", Bind("ns/p", "n1"), "skipped", 0),
     (None, Bind("ns/gone", "n1"), "skipped", 0)],
    ids=["binds", "already-bound-here-is-done", "bound-elsewhere-skipped", "missing-pod"],
)
def test_bind(bound_to, action, status, posts):
    fake = FakeKube()
    fake.add_pod("p", node=bound_to)
    [outcome] = make(fake).apply([action])
    assert outcome.status == status
    assert len(fake.bindings) == posts
    if posts:
        assert fake.bindings[0]["annotations"] == {"cohabit.io/gpu-indices": "0,1"}
        assert fake.pods[("ns", "p")].spec.node_name == "n1"


def test_bind_twice_binds_once():
    fake = FakeKube()
    fake.add_pod("p")
    act = make(fake)
    first = act.apply([Bind("ns/p", "n1")])
    again = make(fake).apply([Bind("ns/p", "n1")])  # a restarted operator replays the plan
    assert [o.status for o in first + again] == ["done", "done"]
    assert len(fake.bindings) == 1


def test_bind_race_409_is_read_back():
    fake = FakeKube()
    fake.add_pod("p")
    act = make(fake)
    real_read = fake.read_namespaced_pod
    calls = {"n": 0}

    def stale_read(name, namespace, **kw):  # first read sees it pending, then someone binds
        calls["n"] += 1
        pod = real_read(name, namespace)
        if calls["n"] == 1:
            fake.pods[("ns", "p")].spec.node_name = None
            copy = client.V1Pod(metadata=pod.metadata, spec=client.V1PodSpec(
                containers=pod.spec.containers, node_name=None), status=pod.status)
            pod.spec.node_name = "n1"
            return copy
        return pod

    fake.read_namespaced_pod = stale_read
    [outcome] = act.apply([Bind("ns/p", "n1")])
    assert outcome.status == "done" and "already bound" in outcome.message


@pytest.mark.parametrize(
    ("versions", "expected"),
    [(("v1beta1",), "policy/v1beta1"), (("v1", "v1beta1"), "policy/v1")],
    ids=["k8s-1.20-falls-back", "k8s-1.22-uses-v1"],
)
def test_eviction_api_version(versions, expected):
    fake = FakeKube(policy_versions=versions)
    fake.add_pod("p", node="n1")
    [outcome] = make(fake).apply([Evict("ns/p")])
    assert outcome.status == "done"
    assert fake.evictions[0]["apiVersion"] == expected


def test_pdb_429_is_refused_and_pod_stays():
    fake = FakeKube()
    fake.add_pod("p", node="n1")
    fake.protected.add(("ns", "p"))
    ledger = MemoryLedger()
    [outcome] = make(fake, ledger=ledger).apply([Evict("ns/p")])
    assert outcome.status == "refused" and "disruption budget" in outcome.message
    assert fake.pods[("ns", "p")].metadata.deletion_timestamp is None
    assert ledger.recent(1e12, 1e13) == []  # a refusal spends no budget


def test_dry_run_evicts_nothing():
    fake = FakeKube()
    fake.add_pod("p", node="n1")
    [outcome] = make(fake, limits=EvictionLimits(dry_run=True)).apply([Evict("ns/p")])
    assert outcome.status == "dry-run" and fake.evictions == []


def test_hourly_budget_and_window():
    fake = FakeKube()
    for i in range(4):
        fake.add_pod(f"p{i}", node="n1")
    clock = Clock()
    act = make(fake, limits=EvictionLimits(dry_run=False, evictions_per_hour=2), clock=clock)
    outcomes = act.apply([Evict(f"ns/p{i}") for i in range(3)])
    assert [o.status for o in outcomes] == ["done", "done", "skipped"]
    assert "budget" in outcomes[2].message
    clock.t += 3601  # the window slides
    assert act.apply([Evict("ns/p3")])[0].status == "done"


def test_never_evicts_twice_even_after_restart():
    fake = FakeKube()
    fake.add_pod("p", node="n1")
    ledger = MemoryLedger()  # the operator's is a ConfigMap; shared across incarnations
    make(fake, ledger=ledger).apply([Evict("ns/p")])
    fake.pods[("ns", "p")].metadata.deletion_timestamp = None  # pretend it lingers
    [again] = make(fake, ledger=ledger).apply([Evict("ns/p")])
    assert again.status == "skipped" and len(fake.evictions) == 1


def test_terminating_pod_is_not_evicted():
    fake = FakeKube()
    fake.add_pod("p", node="n1", terminating=True)
    [outcome] = make(fake).apply([Evict("ns/p")])
    assert outcome.status == "skipped" and fake.evictions == []


def test_max_unavailable_per_workload():
    fake = FakeKube()
    labels = {"cohabit.io/workload": "db"}
    fake.add_pod("db-0", node="n1", labels=labels)
    fake.add_pod("db-1", node=None, labels=labels)  # already unavailable (pending)
    fake.add_pod("other", node="n1", labels={"cohabit.io/workload": "web"})
    act = make(fake, limits=EvictionLimits(dry_run=False, max_unavailable=1))
    outcomes = act.apply([Evict("ns/db-0"), Evict("ns/other")])
    assert [o.status for o in outcomes] == ["skipped", "done"]
    assert "max unavailable" in outcomes[0].message


def test_disabled_rebinding_skips():
    fake = FakeKube()
    fake.add_pod("p", node="n1")
    [o] = make(fake, limits=EvictionLimits(enabled=False, dry_run=False)).apply(
        [Evict("ns/p")])
    assert o.status == "skipped" and fake.evictions == []


TARGETS = {"ns/web": ("ns", "Deployment", "web"), "ns/job": ("ns", "Job", "job")}


@pytest.mark.parametrize(
    ("requests", "limits", "resize", "status", "patched"),
    [({"cpu": "1", "memory": "1Gi"}, None, Resources(500, 2048), "done",
      {"cpu": "500m", "memory": "2048Mi"}),
     ({"cpu": "500m", "memory": "2Gi"}, None, Resources(500, 2048), "done", None),
     ({"cpu": "1", "memory": "1Gi"}, {"memory": "1536Mi"}, Resources(1000, 2048), "refused",
      None)],
    ids=["patches-requests", "unchanged-is-noop", "never-above-limit"],
)
def test_resize(requests, limits, resize, status, patched):
    fake = FakeKube()
    fake.add_deployment("web", requests=requests, limits=limits)
    [o] = make(fake, targets=TARGETS).apply([Resize("ns/web", "main", resize)])
    assert o.status == status
    if patched is None:
        assert fake.patches == []
    else:
        body = fake.patches[0][2]["spec"]["template"]["spec"]["containers"][0]
        assert body == {"name": "main", "resources": {"requests": patched}}
        again = make(fake, targets=TARGETS).apply([Resize("ns/web", "main", resize)])
        assert again[0].status == "done" and len(fake.patches) == 1  # idempotent


def test_resize_gpu_share_annotation_and_job_and_unknown():
    fake = FakeKube()
    fake.add_deployment("web", requests={"cpu": "1"},
                        annotations={"cohabit.io/gpu-milli": "500"})
    act = make(fake, targets=TARGETS)
    outcomes = act.apply([Resize("ns/web", "main", Resources(1000, 0, 300, 0)),
                          Resize("ns/job", "main", Resources(1000)),
                          Resize("ns/none", "main", Resources(1000)),
                          Resize("ns/web", "sidecar", Resources(1000))])
    assert [o.status for o in outcomes] == ["done", "refused", "failed", "failed"]
    assert fake.patches[0][2]["spec"]["template"] == {
        "metadata": {"annotations": {"cohabit.io/gpu-milli": "300"}}}


def test_parallel_binds_without_reads_keep_order_and_never_double_bind():
    fake = FakeKube()
    for i in range(12):
        fake.add_pod(f"p{i}", node="n0" if i == 3 else None)
    act = KubernetesActuator(client.ApiClient(), verify_binds=False, bind_concurrency=4)
    act.core = act.apps = act.apis = fake
    reads = {"n": 0}
    real_read = fake.read_namespaced_pod

    def counting_read(name, namespace, **kw):
        reads["n"] += 1
        return real_read(name, namespace)

    fake.read_namespaced_pod = counting_read
    actions = [Bind(f"ns/p{i}", "n1") for i in range(12)] + [Evict("ns/gone")]
    outcomes = act.apply(actions)
    assert [o.action for o in outcomes] == actions
    assert [o.status for o in outcomes[:12]] == ["done"] * 3 + ["skipped"] + ["done"] * 8
    assert "already bound to n0" in outcomes[3].message  # the server's 409, read back
    assert reads["n"] == 1 + 1  # the 409 read-back and the eviction's read only
    assert len(fake.bindings) == 11


def test_configmap_ledger_survives_restarts_and_conflicts():
    from cohabit.actuator import LedgerError, LedgerRefusal
    from cohabit.actuator.kubernetes import ConfigMapLedger

    fake = FakeKube()

    def ledger():
        led = ConfigMapLedger(client.ApiClient(), "cohabit-system")
        led.core = fake
        return led

    first = ledger()
    assert first.recent(1000.0) == []
    a = first.reserve("ns/a", "uid-a", 1000.0, limit=5)
    first.settle(a.id, "done")
    fake.conflicts = 2  # two racing writers: retried with a fresh read
    b = first.reserve("ns/b", "uid-b", 1010.0, limit=5)
    restarted = ledger()  # a new operator process reads the same ConfigMap
    assert restarted.recent(1020.0) == [(1000.0, "ns/a"), (1010.0, "ns/b")]
    assert {e.pod: e.state for e in restarted.entries()} == {"ns/a": "done",
                                                             "ns/b": "reserved"}
    assert restarted.recent(4605.0) == [(1010.0, "ns/b")]  # the hour slides
    with pytest.raises(LedgerRefusal, match="budget spent"):  # the reservation counts
        restarted.reserve("ns/c", "uid-c", 1030.0, limit=2)
    restarted.settle(b.id, "released")
    assert restarted.reserve("ns/c", "uid-c", 1030.0, limit=2).state == "reserved"
    fake.add_pod("a", node="n1")
    act = make(fake, ledger=restarted, clock=Clock(1030.0))
    [again] = act.apply([Evict("ns/a")])
    assert again.status == "skipped" and "evicted already" in again.message
    fake.conflicts = 10  # a writer that always wins: give up, reserve nothing
    with pytest.raises(LedgerError, match="conflicts"):
        restarted.reserve("ns/d", "uid-d", 1040.0, limit=9)
    fake.configmaps[("cohabit-system", "cohabit-evictions")]["data"] = {"evictions": "nope"}
    with pytest.raises(LedgerError, match="data.evictions"):
        restarted.entries()
    [o] = make(fake, ledger=restarted, clock=Clock(1050.0)).apply([Evict("ns/a")])
    assert o.status == "failed" and "nothing evicted" in o.message  # unreadable = spent


def test_legacy_ledger_pairs_count_as_done():
    from cohabit.actuator.kubernetes import ConfigMapLedger

    fake = FakeKube()
    fake.configmaps[("cohabit-system", "cohabit-evictions")] = {
        "rv": "1", "data": {"evictions": '[[1000.0, "ns/a"]]'}}
    led = ConfigMapLedger(client.ApiClient(), "cohabit-system")
    led.core = fake
    [entry] = led.entries()
    assert (entry.pod, entry.state, entry.time) == ("ns/a", "done", 1000.0)


@pytest.mark.parametrize(
    ("limits", "reason"),
    [(EvictionLimits(dry_run=False, evictions_per_hour=0), "evictionsPerHour is 0"),
     (EvictionLimits(dry_run=False, max_unavailable=0), "maxUnavailable is 0"),
     (EvictionLimits(dry_run=True, evictions_per_hour=0), "evictionsPerHour is 0")],
    ids=["zero-budget-means-none", "zero-unavailable-means-none", "zero-budget-dry-run"],
)
def test_zero_limits_mean_zero(limits, reason):
    """Regression: 0 meant "no limit" and 20 of 20 evictions went through."""
    fake = FakeKube()
    for i in range(20):
        fake.add_pod(f"p{i}", node="n1")
    outcomes = make(fake, limits=limits).apply([Evict(f"ns/p{i}") for i in range(20)])
    assert {o.status for o in outcomes} == {"skipped"}
    assert all(reason in o.message for o in outcomes)
    assert fake.evictions == []


class FailingLedgerWrites(FakeKube):
    """ConfigMap writes answer ``status`` (403 RBAC, 409, 504...) from call ``after`` on."""

    def __init__(self, status, after=0):
        super().__init__()
        self.status, self.after, self.writes = status, after, 0

    def _maybe_fail(self):
        self.writes += 1
        if self.writes > self.after:
            from tests.helpers.fake_kube import api_error
            raise api_error(self.status, "injected")

    def create_namespaced_config_map(self, namespace, body, **kw):
        self._maybe_fail()
        return super().create_namespaced_config_map(namespace, body, **kw)

    def replace_namespaced_config_map(self, name, namespace, body, **kw):
        self._maybe_fail()
        return super().replace_namespaced_config_map(name, namespace, body, **kw)


def _ledger(fake):
    from cohabit.actuator.kubernetes import ConfigMapLedger

    led = ConfigMapLedger(client.ApiClient(), "cohabit-system", conflict_retries=3)
    led.core = fake
    return led


@pytest.mark.parametrize("status", [403, 409, 504], ids=["rbac-denied", "conflict", "timeout"])
def test_failed_reservation_evicts_nothing(status):
    """Regression: the eviction was posted first and recorded after, so a failing ledger
    write let three pods go with a budget of one."""
    fake = FailingLedgerWrites(status)
    for i in range(3):
        fake.add_pod(f"p{i}", node="n1")
    act = make(fake, ledger=_ledger(fake),
               limits=EvictionLimits(dry_run=False, evictions_per_hour=1))
    outcomes = act.apply([Evict(f"ns/p{i}") for i in range(3)])
    assert [o.status for o in outcomes] == ["failed"] * 3
    assert all("nothing evicted" in o.message for o in outcomes)
    assert fake.evictions == []


@pytest.mark.parametrize("status", [403, 409, 504], ids=["rbac-denied", "conflict", "timeout"])
def test_failed_confirmation_is_still_done_and_counted(status):
    """The confirm write fails after the eviction: the outcome is ``done`` (the pod went),
    and the reservation keeps the slot spent, so a budget of 1 stops the next one."""
    fake = FailingLedgerWrites(status, after=1)  # the reservation is written, then no more
    for i in range(3):
        fake.add_pod(f"p{i}", node="n1")
    act = make(fake, ledger=_ledger(fake),
               limits=EvictionLimits(dry_run=False, evictions_per_hour=1))
    outcomes = act.apply([Evict(f"ns/p{i}") for i in range(3)])
    assert [o.status for o in outcomes] == ["done", "skipped", "skipped"]
    assert "ledger was not updated" in outcomes[0].message
    assert len(fake.evictions) == 1


class LostEvictionAnswer(FakeKube):
    """The eviction request reaches the server (``applied``) or not, but its answer is lost."""

    def __init__(self, applied):
        super().__init__()
        self.applied = applied

    def create_namespaced_pod_eviction(self, name, namespace, body, **kw):
        import urllib3

        if self.applied:
            super().create_namespaced_pod_eviction(name, namespace, body, **kw)
        raise urllib3.exceptions.ReadTimeoutError(None, "/eviction", "Read timed out.")


def test_lost_answer_pod_terminating_is_done():
    fake = LostEvictionAnswer(applied=True)
    fake.add_pod("p", node="n1")
    ledger = MemoryLedger()
    [o] = make(fake, ledger=ledger).apply([Evict("ns/p")])
    assert o.status == "done" and "answer was lost" in o.message
    assert [e.state for e in ledger.entries()] == ["done"]


def test_lost_answer_pod_still_there_keeps_the_slot_until_checked():
    fake = LostEvictionAnswer(applied=False)
    fake.add_pod("p", node="n1")
    fake.add_pod("q", node="n1")
    ledger, clock = MemoryLedger(), Clock()
    limits = EvictionLimits(dry_run=False, evictions_per_hour=1)
    act = make(fake, ledger=ledger, clock=clock, limits=limits)
    act.ledger_grace_s = 300.0
    [o] = act.apply([Evict("ns/p")])
    assert o.status == "failed" and "outcome unknown" in o.message
    assert [e.state for e in ledger.entries()] == ["reserved"]
    [o] = act.apply([Evict("ns/q")])  # the unknown one counts: budget 1 is spent
    assert o.status == "skipped" and "not yet known" in o.message
    clock.t += 301  # past the grace: the check finds p still there and releases its slot
    fake.applied = True
    [o] = act.apply([Evict("ns/q")])
    assert o.status == "done" and [e.pod for e in ledger.entries()] == ["ns/q"]


def test_reservation_of_a_killed_operator_is_settled_by_the_pod():
    """A reservation left by a process killed after the eviction: the pod is gone, so the
    check marks it done (it keeps its slot); one left before the eviction is released."""
    fake = FakeKube()
    fake.add_pod("kept", node="n1")
    fake.add_pod("next", node="n1")
    ledger, clock = MemoryLedger(), Clock()
    gone = ledger.reserve("ns/gone", "uid-gone", clock.t, limit=5)
    kept = ledger.reserve("ns/kept", "uid-kept", clock.t, limit=5)
    clock.t += 301
    act = make(fake, ledger=ledger, clock=clock,
               limits=EvictionLimits(dry_run=False, evictions_per_hour=2))
    act.ledger_grace_s = 300.0
    [o] = act.apply([Evict("ns/next")])
    assert o.status == "done"
    states = {e.pod: e.state for e in ledger.entries()}
    assert states == {"ns/gone": "done", "ns/next": "done"}
    assert kept.id not in {e.id for e in ledger.entries()} and gone.id in {
        e.id for e in ledger.entries()}


def test_uid_precondition_protects_a_namesake():
    fake = FakeKube()
    fake.add_pod("p", node="n1")
    act = make(fake)
    real_read = fake.read_namespaced_pod

    def read_then_replace(name, namespace, **kw):  # the pod is recreated after the read
        pod = real_read(name, namespace)
        fake.add_pod("p", node="n1")
        fake.pods[("ns", "p")].metadata.uid = "uid-new"
        return pod

    fake.read_namespaced_pod = read_then_replace
    [o] = act.apply([Evict("ns/p")])
    assert o.status == "skipped" and "replaced" in o.message and fake.evictions == []
    assert act.ledger.entries() == []  # released


def test_apply_never_raises_against_a_closed_port():
    """Regression: ``apply()`` raised urllib3 ``MaxRetryError`` against a closed port."""
    from tests.helpers.loopback_servers import closed_port_client

    with closed_port_client() as api:
        act = KubernetesActuator(api, limits=EvictionLimits(dry_run=False),
                                 request_timeout=2.0)
        outcomes = act.apply([Bind("ns/p", "n1"), Evict("ns/p"),
                              Resize("ns/web", "main", Resources(100))])
    assert [o.status for o in outcomes] == ["failed"] * 3
    assert all("Connection refused" in o.message or "NewConnectionError" in o.message
               for o in outcomes[:2]), outcomes


def test_a_server_that_never_answers_is_cut_at_the_timeout():
    """Regression: one Bind blocked for over 90 s against a server that never answered."""
    import time

    from tests.helpers.loopback_servers import silent_server_client

    with silent_server_client() as api:
        act = KubernetesActuator(api, verify_binds=False, request_timeout=1.0)
        started = time.monotonic()
        [o] = act.apply([Bind("ns/p", "n1")])
        took = time.monotonic() - started
    assert o.status == "failed" and "timed out" in o.message.lower()
    assert took < 5.0


def test_engine_step_budget_spent_mid_plan():
    """The operator's scheduling plan through the engine step: the binds go out, the
    evictions count against the budget as they go, the ledger holds what was evicted."""
    from cohabit.engine.execute import OutcomeTally, execute_plan

    fake = FakeKube()
    fake.add_pod("pending")
    for i in range(3):
        fake.add_pod(f"v{i}", node="n1")
    ledger = MemoryLedger()
    act = make(fake, ledger=ledger)
    tally = OutcomeTally()
    plan = [Bind("ns/pending", "n2"), *(Evict(f"ns/v{i}") for i in range(3))]
    ex = execute_plan(plan, act, recorders=[tally],
                      limits=EvictionLimits(dry_run=False, evictions_per_hour=2))
    assert [o.status for o in ex.outcomes] == ["done", "done", "done", "skipped"]
    assert len(fake.bindings) == 1 and len(fake.evictions) == 2
    assert [e.state for e in ledger.entries()] == ["done", "done"]
    assert tally.count("Evict", "skipped") == 1 and tally.count("Bind") == 1


def test_engine_step_dry_run_writes_no_ledger_entry():
    from cohabit.engine.execute import execute_plan

    fake = FakeKube()
    fake.add_pod("v", node="n1")
    ledger = MemoryLedger()
    ex = execute_plan([Evict("ns/v")], make(fake, ledger=ledger),
                      limits=EvictionLimits(dry_run=True))
    assert ex.outcomes[0].status == "dry-run"
    assert fake.evictions == [] and ledger.entries() == []
