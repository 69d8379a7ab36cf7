"""Kubernetes objects (JSON as the API serves them) -> model nodes, pods and snapshots."""

from __future__ import annotations

import pytest

from cohabit.model import QosClass, Resources
from cohabit.telemetry.kube import (
    ProblemLog,
    TelemetryError,
    node_from_k8s,
    pod_from_k8s,
    snapshot_from_k8s,
    template_requests,
    workload_snapshot_from_k8s,
)


def k8s_node(name, cpu="16", mem="64Gi", gpus=None, product=None, gpu_mem=None,
             ready="True", unschedulable=False):
    alloc = {"cpu": cpu, "memory": mem, "pods": "110"}
    labels = {"kubernetes.io/hostname": name}
    if gpus is not None:
        alloc["nvidia.com/gpu"] = str(gpus)
    if product:
        labels["nvidia.com/gpu.product"] = product
    if gpu_mem:
        labels["nvidia.com/gpu.memory"] = str(gpu_mem)
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"unschedulable": unschedulable} if unschedulable else {},
            "status": {"allocatable": alloc,
                       "conditions": [{"type": "Ready", "status": ready}]}}


def k8s_pod(name, node=None, cpu="500m", mem="1Gi", gpu=None, ann=None, labels=None,
            scheduler="cohabit", phase=None, owned=True, selector=None, init=None):
    res = {"requests": {"cpu": cpu, "memory": mem}}
    if gpu:
        res["limits"] = {"nvidia.com/gpu": str(gpu)}
    spec = {"schedulerName": scheduler, "containers": [{"name": "main", "resources": res}]}
    if node:
        spec["nodeName"] = node
    if selector:
        spec["nodeSelector"] = selector
    if init:
        spec["initContainers"] = [{"name": "init", "resources": {"requests": init}}]
    meta = {"name": name, "namespace": "ns", "annotations": ann or {}, "labels": labels or {},
            "creationTimestamp": "2026-11-22T02:00:00Z"}
    if owned:
        meta["ownerReferences"] = [{"kind": "ReplicaSet", "name": "rs", "uid": "u"}]
    return {"metadata": meta, "spec": spec,
            "status": {"phase": phase or ("Running" if node else "Pending")}}


def test_gpu_node():
    n = node_from_k8s(k8s_node("g1", gpus=4, product="NVIDIA-A10", gpu_mem=23028))
    assert (n.cpu_milli, n.memory_mib, len(n.gpus), n.gpu_model) == (16000, 65536, 4,
                                                                    "NVIDIA-A10")
    assert n.gpus[3].memory_mib == 23028 and n.gpus[3].milli_free == 1000
    assert node_from_k8s(k8s_node("c1")).gpus == ()


@pytest.mark.parametrize(
    ("pod", "expected"),
    [(k8s_pod("a"), dict(cpu_milli=500, memory_mib=1024, num_gpu=0, gpu_milli=0)),
     (k8s_pod("b", gpu=2), dict(num_gpu=2, gpu_milli=1000)),
     (k8s_pod("c", ann={"cohabit.io/gpu-milli": "250"}), dict(num_gpu=1, gpu_milli=250)),
     (k8s_pod("d", ann={"cohabit.io/gpu-models": "A10|T4"}, selector={
         "nvidia.com/gpu.product": "V100"}), dict(gpu_spec=frozenset({"A10", "T4", "V100"}))),
     (k8s_pod("e", node="n1", ann={"cohabit.io/gpu-indices": "1,3"}, gpu=2),
      dict(node="n1", gpu_indices=(1, 3))),
     (k8s_pod("f", labels={"cohabit.io/workload": "db"}), dict(workload="db")),
     (k8s_pod("g", owned=False), dict(evictable=False)),
     (k8s_pod("h", init={"cpu": "2", "memory": "512Mi"}), dict(cpu_milli=2000,
                                                               memory_mib=1024))],
    ids=["cpu-only", "whole-gpus", "gpu-share", "gpu-models", "bound-with-indices",
         "workload-label", "bare-pod-not-evictable", "init-container-max"],
)
def test_pods(pod, expected):
    p = pod_from_k8s(pod)
    for key, value in expected.items():
        assert getattr(p, key) == value, key
    assert p.qos == QosClass.BURSTABLE and p.creation_time > 1.7e9


@pytest.mark.parametrize(
    ("pod", "field"),
    [(k8s_pod("x", cpu="lots"), "resources"),
     (k8s_pod("x", ann={"cohabit.io/gpu-milli": "1500"}), "cohabit.io/gpu-milli"),
     (k8s_pod("x", ann={"cohabit.io/gpu-indices": "a"}), "cohabit.io/gpu-indices")],
    ids=["bad-quantity", "share-out-of-range", "bad-indices"],
)
def test_bad_pods_name_the_field(pod, field):
    with pytest.raises(TelemetryError, match=field):
        pod_from_k8s(pod)


def test_snapshot_free_shares_and_filters():
    nodes = [k8s_node("g1", cpu="8", mem="32Gi", gpus=2, product="A10"),
             k8s_node("down", ready="False"), k8s_node("cordoned", unschedulable=True)]
    pods = [
        k8s_pod("share", node="g1", ann={"cohabit.io/gpu-milli": "300",
                                         "cohabit.io/gpu-indices": "1"}),
        k8s_pod("whole", node="g1", gpu=1, scheduler="default-scheduler"),
        k8s_pod("done", node="g1", phase="Succeeded"),
        k8s_pod("pending-mine"),
        k8s_pod("pending-theirs", scheduler="default-scheduler"),
        k8s_pod("broken", cpu="??"),
    ]
    snap, problems = snapshot_from_k8s(nodes, pods, now=5.0)
    assert [n.name for n in snap.nodes] == ["g1"]
    g1 = snap.nodes[0]
    assert (g1.cpu_free_milli, g1.memory_free_mib) == (8000 - 1000, 32768 - 2048)
    assert [g.milli_free for g in g1.gpus] == [0, 700]  # whole pod took the first free GPU
    assert sorted(p.name for p in snap.pods) == ["pending-mine", "share", "whole"]
    assert len(problems) == 1 and "ns/broken" in problems[0]


def test_template_requests():
    dep = {"metadata": {"name": "web", "namespace": "ns"},
           "spec": {"template": {"metadata": {"annotations": {"cohabit.io/gpu-milli": "400",
                                                              "cohabit.io/gpu-memory-mib": "8192"}},
                                 "spec": {"containers": [
                                     {"name": "server", "resources": {"requests": {
                                         "cpu": "2", "memory": "4Gi"}}},
                                     {"name": "sidecar", "resources": {}}]}}}}
    assert template_requests(dep) == {"server": Resources(2000, 4096, 400, 8192),
                                      "sidecar": Resources()}


def test_workload_snapshot_keeps_the_workloads_view():
    """A workload's view: unfinished pods whatever their scheduler (a pending pod of another
    scheduler still counts as pending), the nodes they are bound to with everything free,
    even a NotReady one; an unreadable pod is reported, an absent or unparsable node left
    out."""
    nodes = {"g1": k8s_node("g1", cpu="8", mem="32Gi", gpus=2, product="A10"),
             "down": k8s_node("down", ready="False"),
             "bad": k8s_node("bad", cpu="many")}
    pods = [k8s_pod("a", node="g1", gpu=1), k8s_pod("b", node="down"),
            k8s_pod("c", node="bad"), k8s_pod("d", node="gone"),
            k8s_pod("e", scheduler="default-scheduler"),
            k8s_pod("f", node="g1", phase="Failed"), k8s_pod("g", cpu="??")]
    snap, problems = workload_snapshot_from_k8s(pods, nodes.get, now=7.0)
    assert snap.time == 7.0
    assert [p.name for p in snap.pods] == ["a", "b", "c", "d", "e"]
    assert [n.name for n in snap.nodes] == ["down", "g1"]
    g1 = snap.nodes[1]
    assert (g1.cpu_free_milli, [g.milli_free for g in g1.gpus]) == (8000, [1000, 1000])
    assert len(problems) == 1 and "ns/g" in problems[0]


def test_problem_log_says_each_problem_once_per_scope(caplog):
    log = ProblemLog()
    with caplog.at_level("WARNING", logger="cohabit.telemetry.kube"):
        log.note("ns/w", ["pod ns/x: bad"])
        log.note("ns/w", ["pod ns/x: bad"])
        log.note("", ["pod ns/x: bad"])  # another scope: said again
        log.note("ns/w", [])
        log.note("ns/w", ["pod ns/x: bad"])  # cured, then broken again
    said = [(getattr(r, "object", ""), r.getMessage()) for r in caplog.records]
    assert said == [("ns/w", "skipped: pod ns/x: bad"), ("", "skipped: pod ns/x: bad"),
                    ("ns/w", "skipped: pod ns/x: bad")]
