"""kopf handlers called as plain functions over a runtime with recorded collaborators:
status from real GenAI telemetry, Invalid naming the field, LowConfidence and no action when
Prometheus is down, Apply-mode resizes through the actuator, the secondary scheduler binding
only the pods that follow its policy, and the registry wiring."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from cohabit.config import (
    OperatorSettings,
    PrometheusSettings,
    ReconcileSettings,
    SchedulerSettings,
)
from cohabit.model import Bind, Pod, Resize, Snapshot
from cohabit.operator import handlers, reconciler
from cohabit.operator.status import merge_conditions
from tests.helpers.operator_factories import (
    NOW,
    DownUsage,
    StaticCluster,
    TraceUsage,
    call_workload,
    conditions,
    gpu_node,
    memo,
    pod_json,
    spec,
)


def test_status_from_real_telemetry_and_apply_resize(genai_frame, cluster_api, make_runtime):
    settings = OperatorSettings(prometheus=PrometheusSettings(window_s=86400))
    runtime = make_runtime(usage=TraceUsage(genai_frame, NOW), settings=settings)
    status = call_workload(runtime, spec())
    conds = conditions(status)
    assert conds["RecommendationProvided"]["status"] == "True"
    assert conds["LowConfidence"]["status"] == "False"
    assert conds["Invalid"]["status"] == "False"
    assert conds["Placed"]["status"] == "False" and conds["Placed"]["reason"] == "PodsPending"
    assert all(c["observedGeneration"] == 3 for c in status["conditions"])
    [rec] = status["recommendations"]
    assert rec["container"] == "server" and 200 <= rec["gpuMilli"] <= 1000
    assert status["node"] == "g1" and status["qos"]["samples"] > 0
    resizes = [a for a in runtime.actuator.applied if isinstance(a, Resize)]
    assert resizes and resizes[0].workload == "ns/sd"
    assert status["lastActions"][0]["action"] == "Resize"
    assert runtime.targets["ns/sd"] == ("ns", "Deployment", "sd")
    # measured pressure from the same real GPU telemetry (DCGM duty cycle and FB used of the
    # bound pod sd-0 on g1, 24,576 MiB GPUs); no CPU/memory series -> absent, confidence 1/2
    window = genai_frame[genai_frame.time > genai_frame.time.max() - 86400]
    inter = status["interference"]
    assert inter["measured"] == ["gpu_sm", "gpu_mem"]
    assert inter["pressure"]["gpu_sm"] == pytest.approx(
        window["gpu_milli"].dropna().mean() / 1000, abs=1e-4)
    assert inter["pressure"]["gpu_mem"] == pytest.approx(
        min(1.0, window["gpu_memory_mib"].dropna().mean() / 24576), abs=1e-4)
    assert "cpu" not in inter["pressure"] and "memory" not in inter["pressure"]
    assert {m["resource"] for m in inter["missing"]} == {"cpu", "memory"}
    assert inter["confidence"] == 0.5
    assert inter["sensitivity"] == {}


def test_fleet_tuner_sizes_the_workload_when_enabled(genai_frame, cluster_api, make_runtime):
    from cohabit.engine.tuning import FleetTuner

    settings = OperatorSettings(prometheus=PrometheusSettings(window_s=86400))
    runtime = make_runtime(usage=TraceUsage(genai_frame, NOW), settings=settings)
    runtime.tuner = FleetTuner(interval_s=3600, background=False)
    status = call_workload(runtime, spec(mode="Recommend"))
    assert runtime.tuner.selections == 1
    points = runtime.tuner.current().points["ns/sd/server"]
    assert set(points) == {"gpu_milli", "gpu_memory_mib"}
    [rec] = status["recommendations"]
    assert rec["container"] == "server" and 200 <= rec["gpuMilli"] <= 1000


def test_recommend_mode_writes_status_only(genai_frame, cluster_api, make_runtime):
    runtime = make_runtime(usage=TraceUsage(genai_frame, NOW))
    status = call_workload(runtime, spec(mode="Recommend"))
    assert status["recommendations"] and runtime.actuator.applied == []


@pytest.mark.parametrize("usage", [None, DownUsage()], ids=["no-prometheus", "prometheus-down"])
def test_missing_telemetry_gives_low_confidence_and_no_action(usage, cluster_api, make_runtime):
    runtime = make_runtime(usage=usage)
    status = call_workload(runtime, spec())
    conds = conditions(status)
    assert conds["LowConfidence"]["status"] == "True"
    assert conds["RecommendationProvided"]["status"] == "False"
    if usage is not None:
        assert conds["LowConfidence"]["reason"] == "TelemetryUnavailable"
        assert "Prometheus" in conds["LowConfidence"]["message"]
    assert runtime.actuator.applied == []
    # nothing was measured: no recommendation and no confidence (as VPA leaves them out)
    assert status["recommendations"] == [] and "confidence" not in status
    assert "violations" not in status["qos"] and status["qos"]["samples"] == 0
    assert conds["Ready"]["status"] == "False"
    assert conds["Ready"]["reason"] == "TelemetryUnavailable"


def test_invalid_spec_names_the_field(cluster_api, make_runtime):
    runtime = make_runtime()
    bad = spec(bounds={"min": {"cpu": "4"}, "max": {"cpu": "1"}})
    status = call_workload(runtime, bad)
    invalid = conditions(status)["Invalid"]
    assert invalid["status"] == "True" and invalid["reason"] == "InvalidSpec"
    assert "spec.bounds.min.cpu" in invalid["message"]
    assert "ns/sd" not in runtime.workloads and runtime.actuator.applied == []


def test_missing_target_is_low_confidence(cluster_api, make_runtime, genai_frame):
    cluster_api["target"] = None
    runtime = make_runtime(usage=TraceUsage(genai_frame, NOW))
    status = call_workload(runtime, spec())
    assert "not found" in conditions(status)["LowConfidence"]["message"]
    assert runtime.actuator.applied == []


def test_condition_transition_time_is_kept():
    old = [{"type": "Placed", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}]
    new = [{"type": "Placed", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
           {"type": "Invalid", "status": "False", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    merged = {c["type"]: c for c in merge_conditions(old, new)}
    assert merged["Placed"]["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    flipped = merge_conditions(old, [{**new[0], "status": "False"}])
    assert flipped[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("policy_spec", "invalid"),
    [({"policy": "best-fit"}, False), ({"policy": "tetris"}, True),
     ({"rebinding": {"evictionsPerHour": -2}}, True)],
    ids=["valid", "unknown-placement-policy", "negative-budget"],
)
def test_policy_handler(policy_spec, invalid, make_runtime):
    runtime = make_runtime()
    patch = SimpleNamespace(status={})
    handlers.policy_changed(spec=policy_spec, name="default", meta={"generation": 1},
                            status={}, patch=patch, memo=memo(runtime))
    cond = conditions(patch.status)["Invalid"]
    assert (cond["status"] == "True") is invalid
    assert ("default" in runtime.policies) is (not invalid)


def test_scheduling_pass_binds_only_its_policys_pods(make_runtime):
    pods = (Pod("mine", 1000, 1024, 1, 500, namespace="ns"),  # no workload: default policy
            Pod("theirs", 1000, 1024, 1, 500, namespace="ns", workload="other"),
            Pod("bound", 1000, 1024, namespace="ns", node="g1"))
    runtime = make_runtime(cluster=StaticCluster(Snapshot(0, (gpu_node("g1"),), pods)))
    from cohabit.config import WorkloadSpec
    from cohabit.model import QosTarget, Workload, WorkloadKind
    other = Workload("other", WorkloadKind.GPU_BATCH, QosTarget("throughput", 1.0, "q"), "ns")
    runtime.workloads["ns/other"] = WorkloadSpec(other, policy_ref="gold")
    outcomes = reconciler.scheduling_pass(runtime, "default", NOW)
    assert [o.action.pod for o in outcomes] == ["ns/mine"]
    assert isinstance(outcomes[0].action, Bind) and outcomes[0].action.node == "g1"
    gold = reconciler.scheduling_pass(runtime, "gold", NOW)
    assert [o.action.pod for o in gold] == ["ns/theirs"]


@pytest.mark.parametrize(
    ("age_s", "known", "placed"),
    [(5.0, False, False), (5.0, True, True), (60.0, False, True)],
    ids=["new-unknown-waits", "spec-known-goes", "grace-over-goes"],
)
def test_workload_pods_wait_for_the_workload_spec(make_runtime, age_s, known, placed):
    """A pass racing the workload handler does not place a new pod of a cohabit workload
    before its spec (policyRef, declared interference profile) is parsed (30 s grace by
    default); it does not wait for the telemetry assessment."""
    from cohabit.config import WorkloadSpec
    from cohabit.model import QosTarget, Workload, WorkloadKind

    pods = (Pod("sd-0", 1000, 1024, 1, 500, namespace="ns", workload="sd",
                creation_time=NOW - age_s),)
    runtime = make_runtime(cluster=StaticCluster(Snapshot(0, (gpu_node("g1"),), pods)))
    if known:
        sd = Workload("sd", WorkloadKind.GPU_INFERENCE, QosTarget("p99_latency_ms", 1.0), "ns")
        runtime.workloads["ns/sd"] = WorkloadSpec(sd, policy_ref="default")
    assert "ns/sd" not in runtime.assessments
    outcomes = reconciler.scheduling_pass(runtime, "default", NOW)
    assert [o.action.pod for o in outcomes] == (["ns/sd-0"] if placed else [])


def test_workload_handler_wakes_the_scheduler_for_its_pending_pods(cluster_api, make_runtime):
    """The workload handler does not bind (that is the policy's scheduling pass) but wakes
    the pass of its policy when some of its pods wait, so they are placed at once."""
    snap = Snapshot(0, (gpu_node("g1"),),
                    (Pod("sd-0", 4000, 16384, 1, 500, namespace="ns", node="g1",
                         gpu_indices=(0,), workload="sd"),
                     Pod("sd-1", 4000, 16384, 1, 500, namespace="ns", workload="sd",
                         creation_time=NOW - 1)))
    runtime = make_runtime(cluster=StaticCluster(snap))
    waker = runtime.waker("default")
    assert not waker.is_set()
    call_workload(runtime, spec(mode="Recommend"))
    assert not [a for a in runtime.actuator.applied if isinstance(a, Bind)]
    assert waker.is_set()


def test_placement_loop_runs_until_stopped(make_runtime):
    pods = (Pod("p", 1000, 1024, namespace="ns"),)
    runtime = make_runtime(cluster=StaticCluster(Snapshot(0, (gpu_node("g1"),), pods)),
                           settings=OperatorSettings(
                               scheduler=SchedulerSettings(interval_s=0.05),
                               reconcile=ReconcileSettings(interval_s=3600)))

    class Stopped:
        def __init__(self):
            self.flag = threading.Event()

        def __bool__(self):
            return self.flag.is_set()

    stopped = Stopped()
    thread = threading.Thread(target=handlers.placement_loop, kwargs=dict(
        name="default", stopped=stopped, memo=memo(runtime), logger=None), daemon=True)
    thread.start()
    deadline = threading.Event()
    for _ in range(100):
        if runtime.actuator.applied:
            break
        deadline.wait(0.05)
    stopped.flag.set()
    thread.join(5)
    assert not thread.is_alive()
    assert runtime.actuator.applied and runtime.actuator.applied[0] == Bind(
        "ns/p", "g1", (), reason="policy cohabit")


def test_registry_has_every_handler():
    reg = handlers.build_registry(OperatorSettings())
    names = [h.fn.__name__ for part in (reg._activities, reg._changing, reg._spawning,
                                        reg._watching) for h in part.get_all_handlers()]
    # create + update + resume per workload kind, the delete, the policy handlers, the
    # timers (spawning), the daemon, startup, cleanup, probe and login; pods and nodes are
    # the watch cache's, not kopf's
    assert names.count("workload_changed") == 2 * 3 + 2
    assert names.count("workload_deleted") == 2 and names.count("policy_changed") == 3
    for name in ("placement_loop", "policy_deleted", "liveness", "configure", "cleanup",
                 "login"):
        assert names.count(name) == 1, name
    watched = {h.selector.any_name for part in (reg._changing, reg._spawning, reg._watching)
               for h in part.get_all_handlers()}
    assert watched == {"databaseworkloads", "gpuworkloads", "placementpolicies"}


def test_declared_interference_reaches_status_and_rebinding(cluster_api, make_runtime):
    """Two noisy GPU workloads share g1 while g2 is empty: the status reports each declared
    profile, and the policy's rebinding pass proposes moving one pod (dry-run by default)."""
    from cohabit.config import parse_policy

    noisy = {"pressure": {"gpu_sm": 2.0}, "sensitivity": {"gpu_sm": 1.0}}
    pods = (Pod("a-0", 1000, 1024, 1, 500, namespace="ns", node="g1", gpu_indices=(0,),
                workload="a"),
            Pod("b-0", 1000, 1024, 1, 500, namespace="ns", node="g1", gpu_indices=(0,),
                workload="b"))
    runtime = make_runtime(cluster=StaticCluster(Snapshot(0, (gpu_node("g1"), gpu_node("g2")),
                                                          pods)))
    runtime.policies["default"] = parse_policy({"rebinding": {"enabled": True}})
    for name in ("a", "b"):
        cluster_api["pods"] = [pod_json(f"{name}-0", "g1")]
        patch = SimpleNamespace(status={})
        handlers.workload_changed(
            body={"kind": "GpuWorkload"}, spec=spec(mode="Recommend", interference=noisy),
            name=name, namespace="ns", meta={"generation": 1}, status={}, patch=patch,
            memo=memo(runtime))
        inter = patch.status["interference"]
        assert inter["pressure"] == {"gpu_sm": 2.0} and inter["sensitivity"] == {"gpu_sm": 1.0}
        assert inter["measured"] == [] and inter["confidence"] == 0.0  # no usage source
        assert {m["resource"] for m in inter["missing"]} == {"cpu", "memory", "gpu_sm",
                                                             "gpu_mem"}
    outcomes = reconciler.scheduling_pass(runtime, "default", NOW, rebind=True)
    evictions = [o.action for o in outcomes if not isinstance(o.action, Bind)]
    assert len(evictions) == 1 and evictions[0].pod in ("ns/a-0", "ns/b-0")
    assert "contention on g1" in evictions[0].reason
    assert reconciler.scheduling_pass(runtime, "default", NOW, rebind=False) == []


def test_grace_counts_from_the_operators_start(make_runtime):
    """Right after a (re)start every pod is old: a pod of a workload whose spec is not read
    yet still waits the grace period, counted from the start."""
    pods = (Pod("sd-0", 1000, 1024, 1, 500, namespace="ns", workload="sd",
                creation_time=NOW - 3600),)
    runtime = make_runtime(cluster=StaticCluster(Snapshot(0, (gpu_node("g1"),), pods)))
    runtime.started = NOW - 5
    assert reconciler.scheduling_pass(runtime, "default", NOW) == []
    runtime.started = NOW - 60
    assert [o.action.pod for o in reconciler.scheduling_pass(runtime, "default", NOW)] == [
        "ns/sd-0"]
