"""cohabit's real-component test harness (see tests/integration/README.md).

Modules: :mod:`.cluster` (etcd + kube-apiserver on loopback, or a user's KUBECONFIG),
:mod:`.kubelet` (kubelet and PDB-status stand-in), :mod:`.nodes` (Node objects with GPUs),
:mod:`.prometheus` (real Prometheus and prometheus_client exporters), :mod:`.tools`
(helm, kubectl), :mod:`.kube` (waits, binding, eviction), :mod:`.rest` (raw JSON requests),
:mod:`.binaries` (finding/building the binaries).
"""

from .binaries import cache_dir, in_ci, require
from .cluster import Cluster, external_cluster, start_local_cluster
from .kube import (
    bind_pod,
    create_namespace,
    delete_namespace,
    evict_pod,
    force_delete_pods,
    get_pod,
    service_account_token,
    wait_pod,
    wait_pod_gone,
    wait_pod_running,
)
from .kubelet import KubeletStandIn, pdb_status, pod_is_ready, selector_matches
from .nodes import GPU_PRODUCT_LABEL, GPU_RESOURCE, TEST_NODE_LABEL, create_node, node_manifest
from .prometheus import Exporter, PrometheusServer, serve_registry, start_prometheus
from .tools import Tool

__all__ = [
    "GPU_PRODUCT_LABEL",
    "GPU_RESOURCE",
    "TEST_NODE_LABEL",
    "Cluster",
    "Exporter",
    "KubeletStandIn",
    "PrometheusServer",
    "Tool",
    "bind_pod",
    "cache_dir",
    "create_namespace",
    "create_node",
    "delete_namespace",
    "evict_pod",
    "external_cluster",
    "force_delete_pods",
    "get_pod",
    "in_ci",
    "node_manifest",
    "pdb_status",
    "pod_is_ready",
    "require",
    "selector_matches",
    "serve_registry",
    "service_account_token",
    "start_local_cluster",
    "start_prometheus",
    "wait_pod",
    "wait_pod_gone",
    "wait_pod_running",
]
