"""Node objects for a cluster without kubelets: capacity, GPUs, a Ready condition.

Nodes may be created with their status (the API server accepts all fields of a Node on
create), so a test node is schedulable and Ready at once; with the harness's admission
settings no not-ready taint is added. Every node carries the label
``cohabit.io/test-node=true`` so that teardown (and people) can find them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from kubernetes.client import ApiClient, CoreV1Api
from kubernetes.client.exceptions import ApiException

from . import rest

TEST_NODE_LABEL = "cohabit.io/test-node"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"


def node_manifest(
    name: str,
    cpu_milli: int = 8000,
    memory_mib: int = 32768,
    gpus: int = 0,
    gpu_product: str | None = None,
    labels: dict[str, str] | None = None,
    allocatable: dict[str, str] | None = None,
    pods: int = 110,
    taints: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A Node (JSON dict) with capacity = allocatable = the given resources.

    Args:
        cpu_milli: CPU in millicores (``"8000m"``).
        memory_mib: memory in MiB (``"32768Mi"``).
        gpus: whole GPUs as extended resource ``nvidia.com/gpu`` (omitted when 0).
        gpu_product: value of label ``nvidia.com/gpu.product`` (e.g. ``"NVIDIA-A100-SXM4-80GB"``,
            the GPU feature discovery spelling); required when ``gpus > 0``.
        labels: extra labels (``kubernetes.io/hostname`` and the test label are always set).
        allocatable: overrides for ``status.allocatable`` (capacity stays as given).
        taints: ``spec.taints`` entries, e.g.
            ``[{"key": "k", "value": "v", "effect": "NoSchedule"}]``.
    Raises ``ValueError`` for negative resources or GPUs without a product label.
    """
    if cpu_milli <= 0 or memory_mib <= 0 or gpus < 0 or pods <= 0:
        raise ValueError(f"node {name}: resources must be positive (cpu_milli={cpu_milli}, "
                         f"memory_mib={memory_mib}, gpus={gpus}, pods={pods})")
    if gpus and not gpu_product:
        raise ValueError(f"node {name}: gpus={gpus} needs gpu_product (label {GPU_PRODUCT_LABEL})")
    capacity = {"cpu": f"{cpu_milli}m", "memory": f"{memory_mib}Mi", "pods": str(pods),
                "ephemeral-storage": "100Gi"}
    if gpus:
        capacity[GPU_RESOURCE] = str(gpus)
    all_labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                  "kubernetes.io/arch": "amd64", TEST_NODE_LABEL: "true", **(labels or {})}
    if gpu_product:
        all_labels[GPU_PRODUCT_LABEL] = gpu_product
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": all_labels},
        "spec": {"taints": taints} if taints else {},
        "status": {
            "capacity": capacity,
            "allocatable": {**capacity, **(allocatable or {})},
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady",
                 "message": "cohabit test harness", "lastHeartbeatTime": now,
                 "lastTransitionTime": now},
            ],
            "addresses": [{"type": "Hostname", "address": name}],
            "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux",
                         "kubeletVersion": "v1.20.2", "kubeProxyVersion": "v1.20.2",
                         "containerRuntimeVersion": "cohabit-standin://0", "bootID": "",
                         "kernelVersion": "", "machineID": "", "osImage": "", "systemUUID": ""},
        },
    }


def create_node(api: ApiClient, name: str, **kwargs: Any) -> dict[str, Any]:
    """Create a Node from :func:`node_manifest` (same keyword arguments); return it as JSON.

    If the server dropped the status on create, it is written through ``/status``.
    Raises ``ApiException`` (409 if the node exists).
    """
    manifest = node_manifest(name, **kwargs)
    created = rest.request(api, "POST", "/api/v1/nodes", body=manifest)
    if created.get("status", {}).get("allocatable") != manifest["status"]["allocatable"]:
        created = rest.request(api, "PATCH", f"/api/v1/nodes/{name}/status",
                               body={"status": manifest["status"]},
                               content_type=rest.MERGE_PATCH)
    return created


def delete_node(api: ApiClient, name: str) -> None:
    """Delete a Node; a node already gone is fine."""
    try:
        CoreV1Api(api).delete_node(name)
    except ApiException as exc:
        if exc.status != 404:
            raise
