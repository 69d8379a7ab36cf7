"""engine.reconcile_once / assess on real GenAI telemetry: recommendations, QoS violations,
low confidence without telemetry, resizes within bounds, binds from the placement engine."""

from __future__ import annotations

import math

import pytest

from cohabit.config import PolicyConfig, RebindingConfig, SpecError, WorkloadSpec
from cohabit.engine.reconcile import assess, place_pending, reconcile_once
from cohabit.model import (
    Bind,
    GpuDevice,
    Node,
    Pod,
    QosTarget,
    Resize,
    Resources,
    Snapshot,
    Workload,
    WorkloadKind,
)
from tests.helpers.operator_factories import DownUsage, TraceUsage

NOW = 2_000_000_000.0
LO = Resources(1000, 4096, 200, 4096)
HI = Resources(8000, 32768, 1000, 24576)


def workload(mode="Apply", target_ms=30000.0):
    return Workload("sd", WorkloadKind.GPU_INFERENCE,
                    QosTarget("p99_latency_ms", target_ms, "q"), "ns", LO, HI, mode, "managed",
                    "Deployment", "sd")


def gpu_node(name, gpus=2, model="A10"):
    return Node(name, 32000, 131072, 32000, 131072,
                tuple(GpuDevice(i, model, 1000, 24576) for i in range(gpus)))


def snapshot(pending=()):
    bound = Pod("sd-0", 4000, 16384, 1, 500, namespace="ns", node="g1", gpu_indices=(0,),
                workload="sd")
    return Snapshot(NOW, (gpu_node("g1"), gpu_node("g2")), (bound, *pending))


CURRENT = {("ns/sd", "server"): Resources(4000, 16384, 500, 12288)}


def test_assess_recommends_from_real_trace(genai_frame):
    a = assess(WorkloadSpec(workload(), qos_window_s=86400.0), snapshot(),
               TraceUsage(genai_frame, NOW), NOW, window_s=24 * 3600,
               containers=["server"], current=CURRENT)
    [rec] = a.recommendations
    assert rec.container == "server" and not a.low_confidence and a.reason == ""
    peak_gpu = genai_frame["gpu_milli"].max()
    assert LO.gpu_milli <= rec.target.gpu_milli <= min(HI.gpu_milli, max(peak_gpu, LO.gpu_milli))
    assert rec.target.gpu_memory_mib >= genai_frame["gpu_memory_mib"].median()
    assert a.nodes == ("g1",) and a.pods == ("ns/sd-0",)
    last_day = genai_frame[genai_frame.time > genai_frame.time.max() - 86400]["latency_ms"]
    assert a.qos_samples == last_day.notna().sum() > 0
    assert a.qos_violations == int((last_day > 30000).sum())
    assert not math.isnan(a.qos_observed)


def test_tight_target_counts_violations(genai_frame):
    a = assess(WorkloadSpec(workload(target_ms=1.0), qos_window_s=86400.0), snapshot(),
               TraceUsage(genai_frame, NOW),
               NOW, containers=["server"], current=CURRENT)
    assert a.qos_samples > 0 and a.qos_violations == a.qos_samples


@pytest.mark.parametrize(
    ("usage", "reason"),
    [(None, "no usage source"), (DownUsage(), "Prometheus")],
    ids=["no-source", "prometheus-down"],
)
def test_missing_telemetry_is_low_confidence_and_no_action(usage, reason):
    plan = reconcile_once(snapshot(), [workload()], usage, PolicyConfig(), NOW,
                          current=CURRENT, containers={"ns/sd": ["server"]})
    assert not [a for a in plan.actions if isinstance(a, Resize)]
    [(key, rec)] = plan.recommendations
    assert key == "ns/sd" and rec.low_confidence and rec.confidence == 0.0
    assert rec.target == CURRENT[("ns/sd", "server")]  # reports what is, changes nothing
    assert any(reason in n and "no action" in n for n in plan.notes)


def test_apply_mode_resizes_within_bounds(genai_frame):
    plan = reconcile_once(snapshot(), [workload()], TraceUsage(genai_frame, NOW),
                          PolicyConfig(), NOW, current=CURRENT, window_s=24 * 3600,
                          containers={"ns/sd": ["server"]}, place=False)
    resizes = [a for a in plan.actions if isinstance(a, Resize)]
    assert resizes, plan.notes
    r = resizes[0].requests
    assert LO.gpu_milli <= r.gpu_milli <= HI.gpu_milli
    assert LO.gpu_memory_mib <= r.gpu_memory_mib <= HI.gpu_memory_mib
    assert r.cpu_milli == 4000 and r.memory_mib == 16384  # not measured -> unchanged


def test_recommend_mode_never_resizes(genai_frame):
    plan = reconcile_once(snapshot(), [workload(mode="Recommend")], TraceUsage(genai_frame, NOW),
                          PolicyConfig(), NOW, current=CURRENT, window_s=24 * 3600,
                          containers={"ns/sd": ["server"]})
    assert not [a for a in plan.actions if isinstance(a, Resize)]
    assert plan.recommendations and not plan.recommendations[0][1].low_confidence


def test_pending_pods_get_binds_that_respect_capacity():
    pending = tuple(Pod(f"sd-{i}", 4000, 16384, 1, 500, namespace="ns", workload="sd",
                        creation_time=float(i)) for i in range(1, 8))
    plan = reconcile_once(snapshot(pending), [], None, PolicyConfig(policy="best-fit"), NOW)
    binds = [a for a in plan.actions if isinstance(a, Bind)]
    # 4 GPUs x 2 shares = 8 slots, one taken: all 7 fit, no GPU over-committed
    assert len(binds) == 7
    per_gpu: dict[tuple[str, int], int] = {("g1", 0): 500}
    for b in binds:
        assert len(b.gpu_indices) == 1
        per_gpu[(b.node, b.gpu_indices[0])] = per_gpu.get((b.node, b.gpu_indices[0]), 0) + 500
    assert max(per_gpu.values()) <= 1000


def test_pods_that_fit_nowhere_are_noted():
    huge = Pod("huge", 64000, 1024, namespace="ns")
    binds, unplaced = place_pending(snapshot(), [huge], "fgd")
    assert binds == [] and unplaced == ["ns/huge"]


def test_plan_says_why_a_pod_fits_nowhere():
    """Two whole-GPU pods on 2 x 2 A10s, one share taken on g1: the first takes g2's two
    GPUs, the second sees g1 with one free GPU and g2 full (each pod sees the earlier binds)."""
    pods = (Pod("a", 1000, 1024, 2, 1000, namespace="ns", creation_time=1.0),
            Pod("b", 1000, 1024, 2, 1000, namespace="ns", creation_time=2.0))
    plan = reconcile_once(snapshot(pods), [], None, PolicyConfig(policy="best-fit"), NOW)
    assert [a.pod for a in plan.actions if isinstance(a, Bind)] == ["ns/a"]
    assert plan.unschedulable == (
        ("ns/b", "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."),)


def test_unknown_placement_policy_names_the_field():
    with pytest.raises(SpecError) as err:
        reconcile_once(snapshot(), [], None, PolicyConfig(policy="tetris"), NOW)
    assert err.value.field == "spec.policy"


def test_rebinding_policy_flows_through(genai_frame):
    cfg = PolicyConfig(rebinding=RebindingConfig(enabled=True, contention_threshold=0.0))
    plan = reconcile_once(snapshot(), [workload()], None, cfg, NOW)
    assert all(not isinstance(a, Resize) for a in plan.actions)  # low confidence: no resize


def test_max_pending_places_the_oldest_first():
    pending = tuple(Pod(f"p{i}", 100, 100, namespace="ns", creation_time=float(10 - i))
                    for i in range(10))
    plan = reconcile_once(snapshot(pending), [], None, PolicyConfig(policy="best-fit"), NOW,
                          max_pending=3)
    assert [a.pod for a in plan.actions] == ["ns/p9", "ns/p8", "ns/p7"]
    assert plan.deferred == tuple(f"ns/p{i}" for i in range(6, -1, -1))  # the younger seven
    assert any("more pods pending" in n for n in plan.notes)  # the words stay for humans


def test_no_deferred_pods_when_all_fit_in_one_pass():
    pending = tuple(Pod(f"p{i}", 100, 100, namespace="ns", creation_time=float(i))
                    for i in range(3))
    plan = reconcile_once(snapshot(pending), [], None, PolicyConfig(policy="best-fit"), NOW,
                          max_pending=3)
    assert plan.deferred == ()
