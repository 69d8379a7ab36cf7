"""Factories for the operator tests (fixtures are in conftest.py): a usage source replaying
one pod of the real Alibaba GenAI trace (../shared/data/alibaba-genai-2026), a usage source
whose Prometheus is down, a recording actuator, a static cluster source."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

import pandas as pd

from cohabit.model import GpuDevice, Node, Outcome, Snapshot, Workload
from cohabit.operator import handlers
from cohabit.telemetry import ClusterSource, TelemetryUnavailable, empty_qos

GENAI_POD = "96c64ba31f81010967b49666a3a0990c"  # full 22.8 h history and 394 latency samples


class TraceUsage:
    """A UsageSource over one GenAI pod's history, shifted to end at ``end``: GPU duty cycle
    (x10 = milli-GPU) and GPU memory under every pod asked for, latency as the QoS series."""

    def __init__(self, frame: pd.DataFrame, end: float):
        shift = end - frame["time"].max()
        self.frame = frame.assign(time=frame["time"] + shift)
        self.calls: list[tuple] = []

    def usage(self, namespace: str, pods: Sequence[str], start: float, end: float):
        self.calls.append(("usage", namespace, tuple(pods)))
        f = self.frame[(self.frame.time >= start) & (self.frame.time <= end)]
        rows = []
        for pod in pods:
            for resource in ("gpu_milli", "gpu_memory_mib"):
                part = f[["time", resource]].dropna().rename(columns={resource: "value"})
                rows.append(part.assign(namespace=namespace, pod=pod, container="",
                                        resource=resource))
        out = pd.concat(rows, ignore_index=True)
        return out[["time", "namespace", "pod", "container", "resource", "value"]]

    def qos(self, workload: Workload, start: float, end: float):
        f = self.frame[(self.frame.time >= start) & (self.frame.time <= end)]
        part = f[["time", "latency_ms"]].dropna().rename(columns={"latency_ms": "value"})
        return part.reset_index(drop=True) if not part.empty else empty_qos()


class DownUsage:
    """A UsageSource whose Prometheus is down."""

    def usage(self, *args, **kwargs):
        raise TelemetryUnavailable("Prometheus http://127.0.0.1:1: connection refused")

    qos = usage


class RecordingActuator:
    """Records actions; answers ``done`` (or what ``answer`` says)."""

    def __init__(self, answer: str = "done"):
        self.applied: list = []
        self.answer = answer
        self.limits = None

    def apply(self, actions, limits=None):
        self.applied.extend(actions)
        self.limits = limits
        return [Outcome(a, self.answer) for a in actions]


class StaticCluster(ClusterSource):
    """A ClusterSource returning a fixed snapshot (time replaced by ``now``); a workload's
    view is its pods in that snapshot and the nodes they are bound to."""

    def __init__(self, snapshot: Snapshot):
        self.snap = snapshot

    def snapshot(self, now: float) -> Snapshot:
        return Snapshot(now, self.snap.nodes, self.snap.pods)

    def workload_snapshot(self, namespace: str, workload: str, now: float) -> Snapshot:
        pods = tuple(p for p in self.snap.pods
                     if p.namespace == namespace and p.workload == workload)
        bound = {p.node for p in pods if p.node}
        return Snapshot(now, tuple(n for n in self.snap.nodes if n.name in bound), pods)


def memo(runtime):
    """What kopf passes as ``memo``: an object holding the runtime."""
    return SimpleNamespace(runtime=runtime)


NOW = 2_000_000_000.0

DEPLOYMENT = {
    "metadata": {"name": "sd", "namespace": "ns"},
    "spec": {"template": {
        "metadata": {"annotations": {"cohabit.io/gpu-milli": "500",
                                     "cohabit.io/gpu-memory-mib": "12288"}},
        "spec": {"containers": [{"name": "server", "resources": {
            "requests": {"cpu": "4", "memory": "16Gi"}}}]}}},
}


def pod_json(name, node=None):
    return {"metadata": {"name": name, "namespace": "ns", "labels": {"cohabit.io/workload": "sd"},
                         "annotations": {"cohabit.io/gpu-milli": "500"},
                         "ownerReferences": [{"kind": "ReplicaSet"}]},
            "spec": {"schedulerName": "cohabit", "nodeName": node, "containers": [
                {"name": "server", "resources": {"requests": {"cpu": "4", "memory": "16Gi"}}}]},
            "status": {"phase": "Running" if node else "Pending"}}


def spec(mode="Apply", **over):
    s = {"targetRef": {"kind": "Deployment", "name": "sd"}, "workloadType": "Inference",
         "qos": {"metric": "p99LatencyMs", "target": 30000, "query": "q",
                 "windowSeconds": 86400},
         "bounds": {"min": {"cpu": "1", "memory": "4Gi", "gpuMilli": 200, "gpuMemory": "4Gi"},
                    "max": {"cpu": "8", "memory": "32Gi", "gpuMilli": 1000,
                            "gpuMemory": "24Gi"}},
         "mode": mode, "placement": "managed"}
    s.update(over)
    return s


def call_workload(runtime, workload_spec, status=None, generation=3):
    patch = SimpleNamespace(status={})
    handlers.workload_changed(
        body={"kind": "GpuWorkload"}, spec=workload_spec, name="sd", namespace="ns",
        meta={"generation": generation}, status=status or {}, patch=patch, memo=memo(runtime),
        logger=None, reason="create", diff=(), old=None, new=None)
    return patch.status


def conditions(status):
    return {c["type"]: c for c in status["conditions"]}


def gpu_node(name):
    return Node(name, 32000, 131072, 32000, 131072,
                tuple(GpuDevice(i, "A10", 1000, 24576) for i in range(2)))
