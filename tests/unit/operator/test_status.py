"""``workload_status``: ``lastActions`` with their time (a pass without actions keeps the
previous list, so the last resize stays visible); the ``Ready`` summary and its reasons;
unmeasured fields left absent; amounts as quantities; the QoS column text."""

from __future__ import annotations

import pytest

from cohabit.engine.reconcile import Assessment
from cohabit.model import (
    Outcome,
    QosTarget,
    Recommendation,
    Resize,
    Resources,
    Workload,
    WorkloadKind,
)
from cohabit.operator.status import (
    Problems,
    format_cpu,
    format_memory,
    invalid_status,
    qos_summary,
    workload_status,
)

WORKLOAD = Workload(name="sd", namespace="ns", kind=WorkloadKind.GPU_INFERENCE,
                    qos_target=QosTarget(metric="p99_latency_ms", value=100.0))
RESIZE = Outcome(Resize(workload="ns/sd", container="server",
                        requests=Resources(cpu_milli=2000)), "done", "patched")


def test_actions_carry_their_time_and_survive_a_quiet_pass():
    a = Assessment(workload=WORKLOAD)
    first = workload_status(a, [RESIZE], 1, 1_000_000.0)
    [action] = first["lastActions"]
    assert action["action"] == "Resize" and action["target"] == "ns/sd/server"
    assert action["status"] == "done" and action["time"] == first["lastPlanTime"]

    quiet = workload_status(a, [], 1, 1_000_060.0, previous=first)
    assert quiet["lastActions"] == first["lastActions"]
    assert quiet["lastPlanTime"] != first["lastPlanTime"]

    refused = Outcome(Resize(workload="ns/sd", container="server",
                             requests=Resources(cpu_milli=1500)), "refused", "PDB")
    later = workload_status(a, [refused], 1, 1_000_120.0, previous=quiet)
    assert [x["status"] for x in later["lastActions"]] == ["refused"]
    assert later["lastActions"][0]["time"] == later["lastPlanTime"]


def test_no_actions_and_no_previous_status_gives_an_empty_list():
    assert workload_status(Assessment(workload=WORKLOAD), [], 1, 1_000_000.0)["lastActions"] == []


# -- what a user reads: Ready, absent unmeasured fields, quantities ---------------------------


SIZED = Recommendation("server", Resources(cpu_milli=250, memory_mib=16640, gpu_milli=500,
                                           gpu_memory_mib=12288),
                       Resources(cpu_milli=200), Resources(cpu_milli=400), 0.93, False)
UNMEASURED = Recommendation("server", Resources(cpu_milli=4000, memory_mib=16384),
                            Resources(cpu_milli=4000), Resources(cpu_milli=4000), 0.0, True)


def _conds(status):
    return {c["type"]: c for c in status["conditions"]}


@pytest.mark.parametrize(
    ("assessment", "problems", "pending", "ready", "reason"),
    [(dict(recommendations=(SIZED,), low_confidence=False, pods=("ns/a",), nodes=("g1",)),
      Problems(), 0, "True", "Recommending"),
     (dict(recommendations=(SIZED,), low_confidence=False, pods=("ns/a",)),
      Problems(), 1, "True", "Recommending"),  # unmanaged: pending pods are another's
     (dict(recommendations=(UNMEASURED,), reason="Prometheus http://p:9090: refused",
           pods=("ns/a",)), Problems(), 0, "False", "TelemetryUnavailable"),
     (dict(recommendations=(UNMEASURED,), reason="no usage samples for server",
           pods=("ns/a",)), Problems(), 0, "False", "InsufficientHistory"),
     (dict(recommendations=(SIZED,), low_confidence=False, pods=("ns/a",)),
      Problems(target_missing="Deployment ns/x not found"), 0, "False", "TargetNotFound"),
     (dict(recommendations=(SIZED,), low_confidence=False, pods=("ns/a",)),
      Problems(policy_missing="PlacementPolicy 'gold' does not exist"), 1, "False",
      "PolicyNotFound"),
     (dict(recommendations=(SIZED,), low_confidence=False), Problems(), 0, "False", "NoPods")],
    ids=["ready", "unmanaged-pending", "telemetry-down", "no-samples", "target-missing",
         "policy-missing", "no-pods"],
)
def test_ready_summarises_the_first_problem(assessment, problems, pending, ready, reason):
    a = Assessment(workload=WORKLOAD, **assessment)
    conds = _conds(workload_status(a, [], 2, 1_000_000.0, pending=pending, problems=problems))
    assert (conds["Ready"]["status"], conds["Ready"]["reason"]) == (ready, reason)
    assert conds["Ready"]["observedGeneration"] == 2
    if reason == "TargetNotFound":
        assert conds["LowConfidence"]["reason"] == "TargetNotFound"
        assert conds["RecommendationProvided"]["status"] == "False"


def test_policy_missing_holds_managed_pods():
    managed = Workload(name="sd", namespace="ns", kind=WorkloadKind.GPU_INFERENCE,
                       qos_target=QosTarget(metric="p99_latency_ms", value=100.0),
                       placement="managed")
    a = Assessment(workload=managed, recommendations=(SIZED,), low_confidence=False,
                   pods=("ns/a",))
    status = workload_status(a, [], 1, 1_000_000.0, pending=1,
                             problems=Problems(policy_missing="PlacementPolicy 'x' missing"))
    placed = _conds(status)["Placed"]
    assert placed["reason"] == "PolicyNotFound" and "1 of 1 pod(s) wait" in placed["message"]


def test_unmeasured_fields_are_absent():
    a = Assessment(workload=WORKLOAD, recommendations=(UNMEASURED,), pods=("ns/a",),
                   reason="no usage samples for server")
    status = workload_status(a, [], 1, 1_000_000.0)
    assert status["recommendations"] == []
    assert "confidence" not in status
    assert status["qos"] == {"samples": 0, "target": 100.0}  # no violations, no observed


def test_measured_recommendation_has_quantities_and_only_sized_amounts():
    db_rec = Recommendation("postgres", Resources(cpu_milli=1500, memory_mib=2048),
                            Resources(), Resources(), 0.8, False)
    a = Assessment(workload=WORKLOAD, recommendations=(SIZED, db_rec), low_confidence=False,
                   pods=("ns/a",), qos_observed=18.234, qos_samples=57, qos_violations=3)
    status = workload_status(a, [], 1, 1_000_000.0)
    first, second = status["recommendations"]
    assert first["target"] == {"cpu": "250m", "memory": "16640Mi", "gpu": "500m",
                               "gpuMemory": "12Gi"}
    assert first["cpuMilli"] == 250 and first["lower"] == {"cpuMilli": 200}
    assert second["target"] == {"cpu": "1500m", "memory": "2Gi"}
    assert "gpuMilli" not in second and "lower" not in second
    assert status["confidence"] == 0.8
    assert status["qos"] == {"samples": 57, "target": 100.0, "violations": 3,
                             "observed": 18.234, "summary": "18.2ms <= 100ms"}


@pytest.mark.parametrize(
    ("metric", "target", "observed", "text"),
    [("p99_latency_ms", 20, 18.24, "18.2ms <= 20ms"),
     ("p99_latency_ms", 20, 25.1, "25.1ms > 20ms"),
     ("throughput", 1000, 1234.5, "1234/s >= 1000/s"), ("throughput", 50, 12, "12/s < 50/s")],
    ids=["latency-met", "latency-violated", "throughput-met", "throughput-violated"],
)
def test_qos_summary(metric, target, observed, text):
    assert qos_summary(QosTarget(metric=metric, value=target), observed) == text


@pytest.mark.parametrize(("milli", "text"), [(250, "250m"), (2000, "2"), (1500, "1500m")])
def test_format_cpu(milli, text):
    assert format_cpu(milli) == text


@pytest.mark.parametrize(("mib", "text"), [(16640, "16640Mi"), (16384, "16Gi"), (1, "1Mi")])
def test_format_memory(mib, text):
    assert format_memory(mib) == text


def test_invalid_status_is_not_ready():
    status = invalid_status("spec.bounds.min.cpu", "16 is above spec.bounds.max.cpu 8", 4,
                            1_000_000.0)
    conds = _conds(status)
    assert conds["Invalid"]["status"] == "True"
    assert (conds["Ready"]["status"], conds["Ready"]["reason"]) == ("False", "InvalidSpec")
    assert "spec.bounds.min.cpu" in conds["Ready"]["message"]
    policy = _conds(invalid_status("spec.policy", "bad", 1, 1_000_000.0, workload=False))
    assert "RecommendationProvided" not in policy
