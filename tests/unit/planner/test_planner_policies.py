"""Planner policies: right-sizing within bounds unless low confidence; rebinding picks the
pod whose move pays, never an unmanaged/unevictable one; the registry validates args."""

from __future__ import annotations

import pytest

from cohabit.config import PolicyConfig, RebindingConfig, RightSizingConfig
from cohabit.model import (
    Evict,
    GpuDevice,
    InterferenceProfile,
    Node,
    Pod,
    QosTarget,
    Recommendation,
    Resize,
    Resources,
    Snapshot,
    Workload,
    WorkloadKind,
)
from cohabit.planner import (
    POLICIES,
    PlanContext,
    PolicyArgsError,
    Rebinding,
    RebindingArgs,
    RightSizing,
    RightSizingArgs,
    build_policies,
    build_policy,
    node_contention,
)

LAT = QosTarget("p99_latency_ms", 20.0, "q")


def wl(name="db", mode="Apply", placement="managed", lo=Resources(), hi=Resources()):
    return Workload(name, WorkloadKind.DATABASE, LAT, "ns", lo, hi, mode, placement,
                    "Deployment", name)


def rec(target, conf=0.9, low=False, container="main"):
    return Recommendation(container, target, target, target, conf, low)


@pytest.mark.parametrize(
    ("workload", "current", "recommendation", "expected"),
    [
        (wl(), Resources(1000, 1024), rec(Resources(500, 2048)), Resources(500, 2048)),
        (wl(lo=Resources(800, 0)), Resources(1000, 1024), rec(Resources(500, 1024)),
         Resources(800, 1024)),
        (wl(hi=Resources(1500, 1536)), Resources(1000, 1024), rec(Resources(4000, 4096)),
         Resources(1500, 1536)),
        (wl(), Resources(1000, 1024), rec(Resources(1050, 1000)), None),
        (wl(), Resources(1000, 1024), rec(Resources(500, 512), conf=0.3), None),
        (wl(), Resources(1000, 1024), rec(Resources(500, 512), low=True), None),
        (wl(mode="Recommend"), Resources(1000, 1024), rec(Resources(500, 512)), None),
        (wl(), Resources(1000, 1024, 500, 8000), rec(Resources(0, 0, 300, 0)),
         Resources(1000, 1024, 300, 8000)),
    ],
    ids=["shrink-and-grow", "clamped-to-min", "clamped-to-max", "within-tolerance",
         "below-min-confidence", "flagged-low-confidence", "recommend-mode", "gpu-only"],
)
def test_right_sizing(workload, current, recommendation, expected):
    ctx = PlanContext(Snapshot(0.0, (), ()), (workload,), {workload.key: (recommendation,)},
                      {(workload.key, "main"): current})
    actions = RightSizing(RightSizingArgs(min_confidence=0.5, tolerance=0.1)).plan(ctx)
    if expected is None:
        assert actions == []
    else:
        assert len(actions) == 1 and isinstance(actions[0], Resize)
        assert actions[0].requests == expected and actions[0].workload == "ns/db"


def node(name, cpu=8000, mem=32768, gpus=0, free=None):
    devs = tuple(GpuDevice(i, "A10", (free or [1000] * gpus)[i], 24576) for i in range(gpus))
    return Node(name, cpu, mem, cpu, mem, devs)


def pod(name, node_name, workload, evictable=True, **kw):
    return Pod(name, kw.pop("cpu", 1000), kw.pop("mem", 1024), namespace="ns", node=node_name,
               workload=workload, evictable=evictable, **kw)


NOISY = InterferenceProfile(pressure=(("membw", 2.0),), sensitivity=(("membw", 0.2),))
VICTIM = InterferenceProfile(pressure=(("membw", 0.1),), sensitivity=(("membw", 1.0),))


def contention_ctx(noisy_evictable=True, noisy_placement="managed", room_elsewhere=True):
    workloads = (wl("noisy", placement=noisy_placement), wl("victim"))
    pods = (pod("noisy-0", "n1", "noisy", evictable=noisy_evictable),
            pod("victim-0", "n1", "victim"))
    nodes = (node("n1"), node("n2", cpu=8000 if room_elsewhere else 500))
    return PlanContext(Snapshot(0.0, nodes, pods), workloads, {}, {},
                       {"ns/noisy": NOISY, "ns/victim": VICTIM})


def test_node_contention_is_pairwise_pressure_times_sensitivity():
    assert node_contention([NOISY, VICTIM]) == pytest.approx(2.0 * 1.0 + 0.1 * 0.2)
    assert node_contention([NOISY]) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [({}, ["ns/noisy-0"]),
     ({"noisy_evictable": False}, ["ns/victim-0"]),
     ({"noisy_placement": "unmanaged"}, ["ns/victim-0"]),
     ({"room_elsewhere": False}, [])],
    ids=["moves-the-noisy-pod", "unevictable-noisy-moves-victim", "unmanaged-never-moved",
         "no-room-no-move"],
)
def test_rebinding_contention(kwargs, expected):
    actions = Rebinding(RebindingArgs(contention_threshold=1.0)).plan(contention_ctx(**kwargs))
    assert [a.pod for a in actions] == expected
    assert all(isinstance(a, Evict) for a in actions)


def test_rebinding_below_threshold_does_nothing():
    assert Rebinding(RebindingArgs(contention_threshold=5.0)).plan(contention_ctx()) == []


def test_rebinding_defragments_for_a_pending_whole_gpu_pod():
    # n1: two GPUs each half used by a share pod -> 1000 milli free in total, no whole GPU.
    nodes = (node("n1", gpus=2, free=[500, 500]), node("n2", gpus=1, free=[500]))
    share_a = pod("a", "n1", "db", num_gpu=1, gpu_milli=500, gpu_indices=(0,))
    share_b = pod("b", "n1", "db", num_gpu=1, gpu_milli=500, gpu_indices=(1,))
    other = pod("c", "n2", "db", num_gpu=1, gpu_milli=500, gpu_indices=(0,))
    pending = Pod("want", 1000, 1024, num_gpu=1, gpu_milli=1000, namespace="ns")
    ctx = PlanContext(Snapshot(0.0, nodes, (share_a, share_b, other, pending)), (wl(),))
    actions = Rebinding(RebindingArgs()).plan(ctx)
    assert [a.pod for a in actions] == ["ns/a"]  # n2 has room for a 500-milli share


def test_registry_and_validation():
    assert set(POLICIES) == {"RightSizing", "Rebinding"}
    with pytest.raises(PolicyArgsError, match="unknown planner policy"):
        build_policy("LowNodeUtilization")
    with pytest.raises(PolicyArgsError, match="min_confidence"):
        build_policy("RightSizing", {"min_confidence": 1.5})
    with pytest.raises(PolicyArgsError, match="unknown argument"):
        build_policy("Rebinding", {"threshold": 1})
    cfg = PolicyConfig(right_sizing=RightSizingConfig(enabled=False),
                       rebinding=RebindingConfig(enabled=True))
    assert [p.name for p in build_policies(cfg)] == ["Rebinding"]
    assert [p.name for p in build_policies(PolicyConfig())] == ["RightSizing"]


# ----------------------------------------------------------------- make room (room_victims)


def share(name, node_name, gpu, milli, cpu=1000):
    return Pod(name, cpu, 1024, 1, milli, namespace="ns", node=node_name, gpu_indices=(gpu,))


ROOM = [
    pytest.param(
        # two GPUs each half used: a whole-GPU pod needs one of the two 500-milli pods gone
        Pod("w", 1000, 1024, 1, 1000), node("n", gpus=2, free=[500, 500]),
        [share("a", "n", 0, 500), share("b", "n", 1, 500)], [("a",), ("b",)],
        id="consolidate-a-gpu",
    ),
    pytest.param(
        # GPU free but CPU used up: the CPU hog (no GPU) is the cheapest to move
        Pod("w", 6000, 1024, 1, 1000), Node("n", 8000, 32768, 1000, 30000,
                                            (GpuDevice(0, "A10", 1000),)),
        [Pod("hog", 6000, 1024, namespace="ns", node="n"),
         Pod("small", 1000, 1024, namespace="ns", node="n")],
        [("hog",)], id="free-cpu-next-to-an-idle-gpu",
    ),
    pytest.param(
        # 3 x 300 on one GPU (100 free) for a 600 pod: two of them must go
        Pod("w", 1000, 1024, 1, 600), node("n", gpus=1, free=[100]),
        [share("a", "n", 0, 300), share("b", "n", 0, 300), share("c", "n", 0, 300)],
        [("a", "b"), ("a", "c"), ("b", "c")], id="pair-when-no-single-pod-helps",
    ),
    pytest.param(
        Pod("w", 1000, 1024, 1, 1000, frozenset({"V100"})), node("n", gpus=2, free=[500, 500]),
        [share("a", "n", 0, 500)], [], id="model-not-accepted",
    ),
    pytest.param(
        # the only pod that would help may not move
        Pod("w", 1000, 1024, 1, 1000), node("n", gpus=1, free=[500]),
        [share("locked", "n", 0, 500)], [], id="unmovable",
    ),
]


@pytest.mark.parametrize(("want", "nd", "pods", "expected"), ROOM)
def test_room_victims(want, nd, pods, expected):
    from cohabit.planner import room_victims

    got = room_victims(want, nd, pods, lambda p: p.name != "locked")
    assert [tuple(v.name for v in vs) for vs in got] == expected
