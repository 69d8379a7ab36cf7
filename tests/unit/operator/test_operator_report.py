"""What the operator tells a user, through the handlers: Events for binds, pods that fit
nowhere, evictions (done, dry-run, refused by a PDB), resizes, invalid specs, a missing
target or policy, low confidence entered and left; log lines on change only; the
``/healthz`` payload; peering settings for standalone and peered runs."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import kopf
import pytest

from cohabit.config import OperatorSettings, PrometheusSettings
from cohabit.model import Evict, Pod, Snapshot
from cohabit.operator import handlers, reconciler
from cohabit.operator.report import report_outcomes
from tests.helpers.operator_factories import (
    NOW,
    DownUsage,
    RecordingActuator,
    StaticCluster,
    TraceUsage,
    call_workload,
    conditions,
    gpu_node,
    memo,
    spec,
)


def events(runtime, reason=None):
    out = list(runtime.events.sink.events.values())
    return [e for e in out if reason is None or e["reason"] == reason]


def test_missing_target_is_target_not_found(cluster_api, make_runtime, genai_frame):
    cluster_api["target"] = None
    runtime = make_runtime(usage=TraceUsage(genai_frame, NOW))
    status = call_workload(runtime, spec())
    conds = conditions(status)
    assert conds["LowConfidence"]["reason"] == "TargetNotFound"
    assert (conds["Ready"]["status"], conds["Ready"]["reason"]) == ("False", "TargetNotFound")
    assert status["recommendations"] == []
    [event] = events(runtime, "TargetNotFound")
    assert event["type"] == "Warning" and "Deployment ns/sd not found" in event["message"]
    assert event["involvedObject"]["kind"] == "GpuWorkload"


def test_policy_ref_naming_no_policy(cluster_api, make_runtime):
    runtime = make_runtime()
    status = call_workload(runtime, spec(mode="Recommend", policyRef="gold"))
    conds = conditions(status)
    assert (conds["Ready"]["status"], conds["Ready"]["reason"]) == ("False", "PolicyNotFound")
    assert conds["Placed"]["reason"] == "PolicyNotFound"  # sd-1 waits
    assert "'gold' does not exist" in conds["Placed"]["message"]
    [event] = events(runtime, "PolicyNotFound")
    assert event["type"] == "Warning"
    # the first accepted policy's pass reports the waiting pod; the pending gauge counts it
    snap = Snapshot(0, (gpu_node("g1"),), (Pod("sd-1", 1000, 1024, 1, 500, namespace="ns",
                                                workload="sd", creation_time=NOW - 1),))
    runtime.cluster = StaticCluster(snap)
    assert reconciler.scheduling_pass(runtime, "default", NOW) == []
    [failed] = events(runtime, "FailedScheduling")
    assert failed["involvedObject"]["name"] == "sd-1"
    assert "no PlacementPolicy named 'gold'" in failed["message"]
    assert runtime.metrics.pending._value.get() == 1


def test_invalid_spec_event_repeats_log_once(cluster_api, make_runtime, caplog):
    runtime = make_runtime()
    runtime.events.correlator.repeat_interval_s = 0.0
    bad = spec(bounds={"min": {"cpu": "4"}, "max": {"cpu": "1"}})
    with caplog.at_level(logging.INFO):
        first = call_workload(runtime, bad)
        call_workload(runtime, bad, status=first)
    [event] = events(runtime, "InvalidSpec")
    assert event["count"] == 2 and "spec.bounds.min.cpu" in event["message"]
    warnings = [r for r in caplog.records if "is invalid" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert runtime.invalid == {"ns/sd": event["message"]}
    health = handlers.liveness(memo=memo(runtime))
    assert health["invalid"] == 1 and health["workloads"] == 0


def test_low_confidence_events_fire_on_transitions(cluster_api, make_runtime, genai_frame):
    settings = OperatorSettings(prometheus=PrometheusSettings(window_s=86400))
    runtime = make_runtime(usage=DownUsage(), settings=settings)
    low = call_workload(runtime, spec(mode="Recommend"))
    again = call_workload(runtime, spec(mode="Recommend"), status=low)
    [entered] = events(runtime, "LowConfidence")
    assert entered["type"] == "Warning" and entered["count"] == 1  # not repeated
    assert "TelemetryUnavailable" in entered["message"]
    runtime.usage = TraceUsage(genai_frame, NOW)
    ok = call_workload(runtime, spec(mode="Recommend"), status=again)
    conds = conditions(ok)
    assert conds["LowConfidence"]["status"] == "False"
    assert (conds["Ready"]["status"], conds["Ready"]["reason"]) == ("False", "PodsPending")
    [left] = events(runtime, "RecommendationProvided")
    assert left["type"] == "Normal" and "confidence" in left["message"]


def test_resize_and_successful_pass_are_reported(cluster_api, make_runtime, genai_frame,
                                                 caplog):
    settings = OperatorSettings(prometheus=PrometheusSettings(window_s=86400))
    runtime = make_runtime(usage=TraceUsage(genai_frame, NOW), settings=settings)
    with caplog.at_level(logging.INFO, logger="cohabit.operator.reconciler"):
        call_workload(runtime, spec())
    resized = events(runtime, "Resized")
    assert resized and resized[0]["involvedObject"]["kind"] == "GpuWorkload"
    assert resized[0]["message"].startswith("container server:")
    [line] = [r for r in caplog.records if r.getMessage().startswith("reconciled GpuWorkload")]
    assert line.object == "ns/sd" and "confidence" in line.getMessage()
    gauges = runtime.metrics.registry.get_sample_value
    labels = {"namespace": "ns", "workload": "sd", "kind": "GpuWorkload", "container": "server"}
    assert 0.2 <= gauges("cohabit_recommendation_gpus", labels) <= 1.0
    assert gauges("cohabit_recommendation_confidence_ratio",
                  {k: labels[k] for k in ("namespace", "workload", "kind")}) >= 0.5


def test_scheduling_pass_reports_binds_and_unschedulable(make_runtime):
    pods = (Pod("fits", 1000, 1024, 1, 500, namespace="ns"),
            Pod("huge", 64000, 1024, namespace="ns"))
    runtime = make_runtime(cluster=StaticCluster(Snapshot(0, (gpu_node("g1"),), pods)))
    outcomes = reconciler.scheduling_pass(runtime, "default", NOW)
    assert [o.action.pod for o in outcomes] == ["ns/fits"]
    [scheduled] = events(runtime, "Scheduled")
    assert scheduled["message"].startswith("Successfully assigned ns/fits to g1 (GPU 0)")
    [failed] = events(runtime, "FailedScheduling")
    assert failed["involvedObject"]["name"] == "huge"
    assert failed["message"] == "0/1 nodes are available: 1 Insufficient cpu."


@pytest.mark.parametrize(
    ("status", "message", "reason", "type_"),
    [("done", "evicted through policy/v1", "EvictedByCohabit", "Normal"),
     ("dry-run", "would evict (dry-run)", "EvictionDryRun", "Normal"),
     ("refused", "429: Cannot evict pod as it would violate the pod's disruption budget.",
      "EvictionRefused", "Warning"),
     ("skipped", "budget of 6 evictions per hour used", "EvictionSkipped", "Normal"),
     ("failed", "HTTP 500", "EvictionFailed", "Warning")],
    ids=["done", "dry-run", "refused-pdb", "budget", "failed"],
)
def test_eviction_outcomes_become_pod_events(make_runtime, status, message, reason, type_):
    from cohabit.model import Outcome

    runtime = make_runtime()
    report_outcomes(runtime, [Outcome(Evict("ns/a-0", "contention on g1"), status, message)])
    [event] = events(runtime)
    assert (event["reason"], event["type"]) == (reason, type_)
    assert event["involvedObject"] == {"kind": "Pod", "name": "a-0", "namespace": "ns",
                                       "apiVersion": "v1"}
    assert "contention on g1" in event["message"]


def test_refused_eviction_through_a_pass(make_runtime, cluster_api):
    from cohabit.config import parse_policy

    noisy = {"pressure": {"gpu_sm": 2.0}, "sensitivity": {"gpu_sm": 1.0}}
    pods = tuple(Pod(f"{n}-0", 1000, 1024, 1, 500, namespace="ns", node="g1",
                     gpu_indices=(0,), workload=n) for n in ("a", "b"))
    runtime = make_runtime(cluster=StaticCluster(Snapshot(0, (gpu_node("g1"), gpu_node("g2")),
                                                          pods)),
                           actuator=RecordingActuator(answer="refused"))
    runtime.policies["default"] = parse_policy({"rebinding": {"enabled": True}})
    for name in ("a", "b"):
        cluster_api["pods"] = []
        handlers.workload_changed(
            body={"kind": "GpuWorkload"}, spec=spec(mode="Recommend", interference=noisy),
            name=name, namespace="ns", meta={"generation": 1, "uid": f"uid-{name}"},
            status={}, patch=SimpleNamespace(status={}), memo=memo(runtime))
    reconciler.scheduling_pass(runtime, "default", NOW, rebind=True)
    [refused] = events(runtime, "EvictionRefused")
    assert refused["type"] == "Warning"


def test_invalid_policy_holds_its_pods(make_runtime):
    runtime = make_runtime()
    patch = SimpleNamespace(status={})
    handlers.policy_changed(spec={"policy": "tetris"}, name="gold",
                            meta={"generation": 1, "uid": "p-1"}, status={}, patch=patch,
                            memo=memo(runtime))
    ready = conditions(patch.status)["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    [event] = events(runtime, "InvalidSpec")
    assert event["involvedObject"]["kind"] == "PlacementPolicy"
    assert event["metadata"]["namespace"] == "default"
    from cohabit.config import WorkloadSpec
    from cohabit.model import QosTarget, Workload, WorkloadKind

    w = Workload("w", WorkloadKind.GPU_BATCH, QosTarget("throughput", 1.0, "q"), "ns")
    runtime.workloads["ns/w"] = WorkloadSpec(w, policy_ref="gold")
    runtime.cluster = StaticCluster(Snapshot(0, (gpu_node("g1"),),
                                             (Pod("w-0", 100, 100, namespace="ns",
                                                  workload="w"),)))
    assert reconciler.scheduling_pass(runtime, "gold", NOW) == []
    [failed] = events(runtime, "FailedScheduling")
    assert "PlacementPolicy 'gold' is invalid" in failed["message"]
    handlers.policy_deleted(name="gold", memo=memo(runtime))
    assert "gold" not in runtime.invalid_policies


@pytest.mark.parametrize("standalone", [True, False], ids=["standalone", "peered"])
def test_configure_peering(make_runtime, standalone):
    runtime = make_runtime()
    runtime.standalone = standalone
    settings = kopf.OperatorSettings()
    handlers.configure(settings=settings, memo=memo(runtime))
    assert settings.peering.standalone is standalone
    assert settings.peering.mandatory is (not standalone)
    assert settings.peering.name == "cohabit"


def test_policy_found_invalid_while_sizing_is_reported_not_replaced(
        cluster_api, make_runtime, genai_frame):
    """A policy whose placement name no longer validates (accepted by an older operator, or
    set in the runtime directly) is reported invalid; the workload's Apply-mode resize does
    not run under a fallback policy."""
    from cohabit.config import PolicyConfig

    settings = OperatorSettings(prometheus=PrometheusSettings(window_s=86400))
    runtime = make_runtime(usage=TraceUsage(genai_frame, NOW), settings=settings)
    runtime.policies["default"] = PolicyConfig(name="default", policy="tetris")
    status = call_workload(runtime, spec())
    assert runtime.actuator.applied == []  # no resize under best-fit (or anything else)
    assert "default" not in runtime.policies
    assert "spec.policy" in runtime.invalid_policies["default"]
    [event] = events(runtime, "InvalidSpec")
    assert event["involvedObject"]["kind"] == "PlacementPolicy"
    assert "'tetris' is not a placement policy" in event["message"]
    ready = conditions(status)["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "PolicyNotFound")
    assert "PlacementPolicy 'default' is invalid" in ready["message"]
    assert status["recommendations"]  # the recommendation itself is still reported


@pytest.mark.parametrize("answer", ["done", "failed"], ids=["bound", "bind-failed"])
def test_scheduling_pass_records_through_the_engine_step(make_runtime, answer):
    """What the actuator answered is counted in cohabit_actions_total{action,status} and
    told as Events, once per outcome; a failed bind is not assumed in the cache."""
    from tests.helpers.operator_factories import RecordingActuator

    class AssumingCluster(StaticCluster):
        assumed: list = []

        def assume(self, pod, node, gpus):
            self.assumed.append((pod, node, gpus))

    pods = (Pod("a", 1000, 1024, 1, 500, namespace="ns"),
            Pod("b", 1000, 1024, 1, 500, namespace="ns"))
    cluster = AssumingCluster(Snapshot(0, (gpu_node("g1"),), pods))
    runtime = make_runtime(cluster=cluster, actuator=RecordingActuator(answer))
    outcomes = reconciler.scheduling_pass(runtime, "default", NOW)
    assert [o.status for o in outcomes] == [answer, answer]
    count = runtime.metrics.registry.get_sample_value(
        "cohabit_actions_total", {"action": "Bind", "status": answer})
    assert count == 2
    reason = "Scheduled" if answer == "done" else "FailedScheduling"
    assert len(events(runtime, reason)) == 2
    assert [p for p, _, _ in cluster.assumed] == (["ns/a", "ns/b"] if answer == "done" else [])
