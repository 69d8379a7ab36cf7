"""The operator's watch cache on the real API server: one LIST per kind, then watches (the
scheduler's 2-second passes no longer LIST the cluster), pods and nodes followed as they
change, pending pods of cohabit counted and waking the scheduler, assumed binds."""

from __future__ import annotations

import threading
import time

from cohabit.operator.cache import ClusterCache
from cohabit.telemetry.kube import KubeClusterSource
from tests.integration.harness import bind_pod, rest
from tests.integration.operator_support import wait_for


def _pod(name: str, scheduler: str = "cohabit", workload: str | None = None) -> dict:
    labels = {"cohabit.io/workload": workload} if workload else {}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels,
                         "annotations": {"cohabit.io/gpu-milli": "500"}},
            "spec": {"schedulerName": scheduler, "containers": [{
                "name": "c", "image": "x", "resources": {"requests": {
                    "cpu": "1", "memory": "1Gi"}}}]}}


def test_cache_follows_the_cluster_with_one_list(kube_client, kubelet, namespace, make_node):
    make_node("wc-g1", gpus=2, gpu_product="A10")
    woken = threading.Event()
    cache = ClusterCache(kube_client, "cohabit", namespace, request_timeout_s=10,
                         on_change=woken.set)
    cache.start()
    try:
        assert cache.wait_synced(30)
        base = f"/api/v1/namespaces/{namespace}/pods"
        rest.request(kube_client, "POST", base, body=_pod("p-0", workload="w"))
        rest.request(kube_client, "POST", base, body=_pod("other", scheduler="default"))
        wait_for(lambda: cache.pending_count() == 1, 20, "the pending pod in the cache")
        assert woken.is_set()
        assert cache.pending_keys() == [f"{namespace}/p-0"]
        [mine] = cache.workload_pods(namespace, "w")
        assert mine["metadata"]["name"] == "p-0" and "managedFields" not in mine["metadata"]
        assert cache.pod(f"{namespace}/p-0")["metadata"]["uid"]

        # an assumed bind counts at once; the watch confirms it
        cache.assume(f"{namespace}/p-0", "wc-g1", (1,))
        assert cache.pending_count() == 0
        snap = cache.snapshot(time.time())
        [pod] = [p for p in snap.pods if p.name == "p-0"]
        assert pod.node == "wc-g1" and pod.gpu_indices == (1,)
        bind_pod(kube_client, namespace, "p-0", "wc-g1")
        wait_for(lambda: (cache.pod(f"{namespace}/p-0") or {}).get("spec", {}).get("nodeName"),
                 20, "the bind seen by the watch")
        node = next(n for n in cache.snapshot(time.time()).nodes if n.name == "wc-g1")
        # bound without a GPU-index annotation: its share is counted on the first GPU
        assert sorted(g.milli_free for g in node.gpus) == [500, 1000]

        # the workload's view: the same from the cache as from the API reads
        uid = cache.pod(f"{namespace}/p-0")["metadata"]["uid"]
        assert uid and cache.pod_uid(f"{namespace}/p-0") == uid
        cached = cache.workload_snapshot(namespace, "w", 1.0)
        listed = KubeClusterSource(kube_client, namespace=namespace,
                                   request_timeout=10).workload_snapshot(namespace, "w", 1.0)
        assert [(p.name, p.node) for p in cached.pods] == [("p-0", "wc-g1")]
        assert [n.name for n in cached.nodes] == ["wc-g1"]
        assert cached == listed
        assert cache.workload_snapshot(namespace, "nobody", 1.0).pods == ()

        # deletions leave the cache; many snapshots later there was still one LIST
        rest.request(kube_client, "DELETE", f"{base}/other")
        wait_for(lambda: cache.pod(f"{namespace}/other") is None, 20, "deleted pod gone")
        for _ in range(20):
            cache.snapshot(time.time())
        stats = cache.stats()
        assert stats["pods"]["lists"] == 1 and stats["nodes"]["lists"] == 1
        assert stats["pods"]["synced"] and stats["nodes"]["objects"] >= 1
    finally:
        cache.stop()
