"""Measured interference pressure (cohabit.predictors.measured_pressure), hand-checkable:
usage relative to the node's/GPU's capacity per shared resource, absent (not 0) without a
source, and the confidence it lowers; and the engine feeding it to status and placement."""

from __future__ import annotations

import pandas as pd
import pytest

from cohabit.config import PolicyConfig, WorkloadSpec
from cohabit.engine.reconcile import assess, reconcile_once
from cohabit.model import (
    Bind,
    GpuDevice,
    InterferenceProfile,
    Node,
    Pod,
    QosTarget,
    Workload,
    WorkloadKind,
)
from cohabit.predictors import PodCapacity, measured_pressure

CPU_NODE = PodCapacity(cpu_milli=4000, memory_mib=8192)
GPU_POD = PodCapacity(cpu_milli=4000, memory_mib=8192, gpus=2, gpu_memory_mib=24576)


def rows(*samples, n=10):
    """``n`` timestamps of (pod, container, resource, value) samples."""
    out = [{"time": float(t), "namespace": "ns", "pod": pod, "container": c, "resource": r,
            "value": float(v)} for t in range(n) for (pod, c, r, v) in samples]
    return pd.DataFrame(out, columns=["time", "namespace", "pod", "container", "resource",
                                      "value"])


CASES = [
    pytest.param(
        # containers summed: (600 + 400) / 4000 = 0.25; (1024 + 1024) / 8192 = 0.25
        rows(("p", "a", "cpu_milli", 600), ("p", "b", "cpu_milli", 400),
             ("p", "a", "memory_mib", 1024), ("p", "b", "memory_mib", 1024)),
        {"p": CPU_NODE}, False, {"cpu": 0.25, "memory": 0.25}, set(), 1.0,
        id="containers-summed",
    ),
    pytest.param(
        # two GPUs: utilisation 300 and 500 milli averaged -> 0.4; FB 12288 / 24576 = 0.5
        rows(("p", "a", "cpu_milli", 1000), ("p", "a", "memory_mib", 4096),
             ("p", "", "gpu_milli", 300), ("p", "", "gpu_milli", 500),
             ("p", "", "gpu_memory_mib", 12288), ("p", "", "gpu_memory_mib", 12288)),
        {"p": GPU_POD}, None, {"cpu": 0.25, "memory": 0.5, "gpu_sm": 0.4, "gpu_mem": 0.5},
        set(), 1.0, id="gpu-devices-averaged",
    ),
    pytest.param(
        # a GPU pod without DCGM series: GPU components absent, 2 of 4 measured
        rows(("p", "a", "cpu_milli", 2000), ("p", "a", "memory_mib", 2048)),
        {"p": GPU_POD}, None, {"cpu": 0.5, "memory": 0.25}, {"gpu_sm", "gpu_mem"}, 0.5,
        id="no-dcgm",
    ),
    pytest.param(
        # GPU memory capacity unknown (no nvidia.com/gpu.memory label): gpu_mem absent
        rows(("p", "a", "cpu_milli", 2000), ("p", "a", "memory_mib", 2048),
             ("p", "", "gpu_milli", 1000), ("p", "", "gpu_memory_mib", 9000)),
        {"p": PodCapacity(4000, 8192, 1, None)}, None,
        {"cpu": 0.5, "memory": 0.25, "gpu_sm": 1.0}, {"gpu_mem"}, 0.75,
        id="gpu-memory-capacity-unknown",
    ),
    pytest.param(
        # five samples of the ten needed: confidence halves
        rows(("p", "a", "cpu_milli", 4000), ("p", "a", "memory_mib", 8192), n=5),
        {"p": CPU_NODE}, False, {"cpu": 1.0, "memory": 1.0}, set(), 0.5,
        id="few-samples",
    ),
    pytest.param(
        # usage above capacity is clipped to 1; a pod with unknown capacity is not used
        rows(("p", "a", "cpu_milli", 6000), ("p", "a", "memory_mib", 4096),
             ("q", "a", "cpu_milli", 0)),
        {"p": CPU_NODE}, False, {"cpu": 1.0, "memory": 0.5}, set(), 1.0,
        id="clipped-and-unplaced-pod-ignored",
    ),
    pytest.param(
        # two pods pooled: (1000/4000 + 3000/4000) / 2 = 0.5
        rows(("p", "a", "cpu_milli", 1000), ("q", "a", "cpu_milli", 3000)),
        {"p": CPU_NODE, "q": CPU_NODE}, False, {"cpu": 0.5}, {"memory"}, 0.5,
        id="pods-pooled-memory-missing",
    ),
    pytest.param(
        rows(("p", "a", "cpu_milli", 1000)), {}, False, {}, {"cpu", "memory"}, 0.0,
        id="no-capacity-at-all",
    ),
]


@pytest.mark.parametrize(("usage", "caps", "gpu", "pressure", "missing", "confidence"), CASES)
def test_measured_pressure(usage, caps, gpu, pressure, missing, confidence):
    est = measured_pressure(usage, caps, expect_gpu=gpu)
    assert dict(est.pressure) == pytest.approx(pressure)
    assert {k for k, _ in est.missing} == missing
    assert est.confidence == pytest.approx(confidence)
    assert set(dict(est.pressure)).isdisjoint(missing)  # absent, never a 0 stand-in


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="resource"):
        measured_pressure(pd.DataFrame({"time": [], "pod": [], "value": []}), {})
    with pytest.raises(ValueError, match="min_samples"):
        measured_pressure(rows(), {}, min_samples=0)


# ------------------------------------------------------------------ engine wiring

NOW = 1_000_000.0


class FrameUsage:
    """A UsageSource answering from a fixed frame (pods filtered)."""

    def __init__(self, frame):
        self.frame = frame

    def usage(self, namespace, pods, start, end):
        return self.frame[self.frame["pod"].isin(pods)].reset_index(drop=True)

    def qos(self, workload, start, end):
        return pd.DataFrame({"time": [NOW - 10.0], "value": [1.0]})


def node(name):
    return Node(name, 4000, 8192, 4000, 8192, (GpuDevice(0, "T4", 1000, 16384),))


def wl(name, sensitivity=None):
    return WorkloadSpec(Workload(name, WorkloadKind.DATABASE, QosTarget("p99_latency_ms", 50.0),
                                 "ns", placement="managed"),
                        interference=(InterferenceProfile((), tuple(sensitivity.items()))
                                      if sensitivity else None))


def test_measured_cpu_pressure_steers_cohabit_placement():
    """A CPU hog (declared nothing; measured 3,600 of 4,000 milli on n1) and a pending pod of
    a CPU-sensitive workload: cohabit's FGD scores tie between the two equal nodes (the
    smallest name, n1, would win), the measured pressure x declared sensitivity
    (0.9 x 0.5 = 0.45 -> 45 points) sends it to n2. Without the pressure: n1."""
    hog = Pod("hog-0", 500, 1024, namespace="ns", node="n1", workload="hog")
    calm = Pod("calm-0", 500, 1024, namespace="ns", node="n2", workload="calm")
    new = Pod("fragile-0", 500, 1024, namespace="ns", workload="fragile")
    snap_pods = (hog, calm, new)
    from cohabit.model import Snapshot

    snap = Snapshot(NOW, (node("n1"), node("n2")), snap_pods)
    usage = FrameUsage(rows(("hog-0", "c", "cpu_milli", 3600), ("hog-0", "c", "memory_mib", 512),
                            ("calm-0", "c", "cpu_milli", 40), ("calm-0", "c", "memory_mib", 512),
                            n=12).assign(time=lambda f: f["time"] + NOW - 100))
    specs = [wl("hog"), wl("calm"), wl("fragile", {"cpu": 0.5})]
    a = assess(specs[0], snap, usage, NOW)
    assert dict(a.interference.pressure) == pytest.approx({"cpu": 0.9, "memory": 0.0625})
    assert a.interference_confidence == 1.0 and a.pressure_measured == ("cpu", "memory")

    def binds(usage_source):
        plan = reconcile_once(snap, specs, usage_source, PolicyConfig(), NOW)
        return [(b.pod, b.node) for b in plan.actions if isinstance(b, Bind)]

    assert binds(usage) == [("ns/fragile-0", "n2")]
    assert binds(None) == [("ns/fragile-0", "n1")]  # no telemetry: no pressure, plain fgd


def probe_prof(sens, press):
    keys = ("probe0:A", "probe1:B")
    return InterferenceProfile(tuple(zip(keys, press, strict=True)),
                               tuple(zip(keys, sens, strict=True)))


@pytest.mark.parametrize(
    ("victim", "aggressor", "expected"),
    [(probe_prof((0.2, 0.4), (0.1, 0.1)), probe_prof((0.0, 0.0), (0.5, 0.5)), 0.3),
     (InterferenceProfile((), (("cpu", 0.5),)), InterferenceProfile((("cpu", 0.8),), ()), 0.4),
     (probe_prof((0.2, 0.4), (0.1, 0.1)), InterferenceProfile((("cpu", 0.8),), ()), 0.0)],
    ids=["probe-profiles-use-the-model", "resource-profiles-fall-back", "mixed-fall-back"],
)
def test_predictor_slowdown_routes_by_profile_keys(victim, aggressor, expected):
    from cohabit.engine.reconcile import predictor_slowdown

    # a stand-in model f(a | b) = 0.7 for any pair of probe profiles -> slowdown 0.3
    slow = predictor_slowdown(lambda a, b: 0.7, ["A", "B"])
    assert slow(victim, aggressor) == pytest.approx(expected)


def test_slowdown_model_names():
    from cohabit.engine.reconcile import pressure_sensitivity, slowdown_model

    assert slowdown_model("pressure-sensitivity") is pressure_sensitivity
    with pytest.raises(ValueError, match="gavel"):
        slowdown_model("oracle")


def test_probe_profiles_of_the_predictors_reach_the_trained_model():
    """``probe_profile`` (predictors) writes the keys ``predictor_slowdown`` (engine) reads:
    one ``probe_key`` format for both, so the model is asked, never the fallback."""
    import pandas as pd

    from cohabit.engine.reconcile import predictor_slowdown
    from cohabit.model import probe_keys
    from cohabit.predictors.interference import probe_profile

    probes = ["A", "B", "A"]  # a repeated probe name stays two components
    pairs = pd.DataFrame({"a": ["j", "A", "j", "B"], "b": ["A", "j", "B", "j"],
                          "scale": [1, 1, 1, 1], "fraction": [0.9, 0.8, 0.7, 0.6]})
    prof = probe_profile(pairs, "j", 1, probes)
    assert prof.keyed_by(probe_keys(probes)) and len(prof.pressure) == 3
    asked = []
    slow = predictor_slowdown(lambda a, b: asked.append((a, b)) or 0.75, probes)
    assert slow(prof, prof) == pytest.approx(0.25) and asked == [(prof, prof)]
