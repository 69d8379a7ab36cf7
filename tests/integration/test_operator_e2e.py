"""The operator end to end on a real kube-apiserver (1.20) with etcd, a real Prometheus and
real helm/kubectl: ``helm install`` of the chart, ``kubectl apply`` of the examples, and
``cohabit operator`` running as the chart's service account (so its RBAC is enforced).

There is no controller-manager on the test server, so the pods a Deployment/StatefulSet would
get are created by the test from the object's own template (``materialize``); the harness's
kubelet stand-in runs bound pods and computes PDB status.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from cohabit.config import cpu_milli, memory_mib, parse_workload
from cohabit.engine.reconcile import place_pending, pod_profiles
from cohabit.telemetry.kube import snapshot_from_k8s
from tests.integration.harness import rest
from tests.integration.harness.kube import get_pod
from tests.integration.operator_support import (
    EXAMPLES,
    RELEASE_NAMESPACE,
    REPO,
    OperatorProcess,
    condition,
    get,
    materialize,
    service_account_kubeconfig,
    start_genai_prometheus,
    translate_for_server,
    wait_for,
    workload_path,
)


@pytest.fixture(scope="module")
def installed(helm, kube_client, kube_cluster, kubelet):
    """The chart installed once for the module (CRDs, RBAC, peering, default policy)."""
    if kube_cluster.external:
        pytest.skip("these tests create fake Nodes; run them on the local test cluster")
    helm.run("upgrade", "--install", "cohabit", str(REPO / "helm" / "cohabit"),
             "--namespace", RELEASE_NAMESPACE, "--create-namespace")

    def established():
        for plural in ("databaseworkloads", "gpuworkloads", "placementpolicies"):
            crd = get(kube_client, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                                   f"{plural}.cohabit.io")
            conds = {c["type"]: c["status"] for c in crd["status"].get("conditions", [])}
            if conds.get("Established") != "True":
                return False
        return True

    wait_for(established, 30, "cohabit CRDs established")
    return True


@pytest.fixture(scope="module")
def sa_kubeconfig(installed, kube_cluster, kube_client, tmp_path_factory):
    return service_account_kubeconfig(kube_cluster, kube_client,
                                      tmp_path_factory.mktemp("sa") / "cohabit.kubeconfig")


@pytest.fixture
def start_operator(sa_kubeconfig, tmp_path, request):
    procs: list[OperatorProcess] = []

    def start(prometheus_url: str = "", **env: str) -> OperatorProcess:
        op = OperatorProcess(sa_kubeconfig, tmp_path, prometheus_url, env).start()
        procs.append(op)
        return op

    yield start
    for op in procs:
        op.stop()
    failed = getattr(request.node, "rep_call", None)
    if failed is None or failed.failed:
        for op in procs:
            print(f"--- operator log (tail) ---\n{op.log(120)}")


@pytest.fixture
def cleanup_workloads(kube_client):
    """Delete the cohabit objects a test made (namespaces never finish terminating here)."""
    made: list[str] = []
    yield made
    for path in made:
        try:
            rest.request(kube_client, "DELETE", path)
        except ApiException as exc:
            if exc.status != 404:
                raise


def apply(kubectl, namespace: str, path: Path, cleanup: list[str]) -> list[dict]:
    """``kubectl apply`` a file; returns its documents; cohabit objects are deleted later."""
    kubectl.run("apply", "-n", namespace, "-f", str(path))
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for d in docs:
        if d["apiVersion"].startswith("cohabit.io/"):
            plural = {"GpuWorkload": "gpuworkloads", "DatabaseWorkload": "databaseworkloads"}
            if d["kind"] in plural:
                cleanup.append(workload_path(namespace, plural[d["kind"]], d["metadata"]["name"]))
            else:
                cleanup.append(f"/apis/cohabit.io/v1alpha1/placementpolicies/"
                               f"{d['metadata']['name']}")
    return docs


def deployment(api, namespace: str, name: str) -> dict:
    return get(api, f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")


def pods_of(api, namespace: str) -> list[dict]:
    return get(api, f"/api/v1/namespaces/{namespace}/pods")["items"]


def cohabit_events(api, namespace: str, name: str) -> set[str]:
    """Reasons of the Events cohabit posted about object ``name``."""
    return {e["reason"] for e in get(api, f"/api/v1/namespaces/{namespace}/events")["items"]
            if e["involvedObject"]["name"] == name
            and (e.get("source") or {}).get("component") == "cohabit"}


def test_pods_bound_to_the_node_the_policy_chose(installed, kubectl, kube_client, namespace,
                                                 make_node, start_operator,
                                                 cleanup_workloads):
    make_node("pa-a10", gpus=2, gpu_product="A10", cpu_milli=32000, memory_mib=131072)
    make_node("pa-v100", gpus=1, gpu_product="V100M32", cpu_milli=32000, memory_mib=131072)
    make_node("pa-t4", gpus=4, gpu_product="T4", cpu_milli=32000, memory_mib=131072)
    make_node("pa-cpu", cpu_milli=64000, memory_mib=262144)
    apply(kubectl, namespace, EXAMPLES / "gpu-inference-workload.yaml", cleanup_workloads)
    apply(kubectl, namespace, EXAMPLES / "managed-deployment.yaml", cleanup_workloads)
    for name in ("sd-inference", "batch-embedder"):
        materialize(kube_client, namespace, deployment(kube_client, namespace, name))

    # What the policy chooses for these pods on this cluster, computed by the placement
    # engine on the same snapshot the operator will see, with the interference profile the
    # GpuWorkload declares (the default policy, cohabit, reads it; no Prometheus here).
    nodes = get(kube_client, "/api/v1/nodes")["items"]
    snap, problems = snapshot_from_k8s(nodes, pods_of(kube_client, namespace), time.time())
    assert not problems
    policy = get(kube_client, "/apis/cohabit.io/v1alpha1/placementpolicies/default")
    declared = {}
    for d in yaml.safe_load_all((EXAMPLES / "gpu-inference-workload.yaml").read_text()):
        if d and d["kind"] == "GpuWorkload":
            w = parse_workload(d["kind"], d["spec"], name=d["metadata"]["name"],
                               namespace=namespace)
            declared[w.workload.key] = w.interference
    expected_binds, unplaced = place_pending(snap, [p for p in snap.pods if p.node is None],
                                             policy["spec"]["policy"],
                                             profiles=pod_profiles(snap.pods, declared))
    assert not unplaced and len(expected_binds) == 5
    expected = {b.pod.split("/")[1]: (b.node, b.gpu_indices) for b in expected_binds}

    start_operator()
    bound = wait_for(lambda: (lambda ps: ps if all(p["spec"].get("nodeName") for p in ps)
                              else None)(pods_of(kube_client, namespace)), 60, "pods bound")
    got = {p["metadata"]["name"]: (p["spec"]["nodeName"], tuple(
        int(i) for i in p["metadata"]["annotations"]["cohabit.io/gpu-indices"].split(",")))
        for p in bound}
    assert got == expected
    per_gpu: dict[tuple[str, int], int] = {}
    for p in bound:
        node = p["spec"]["nodeName"]
        share = int(p["metadata"]["annotations"].get("cohabit.io/gpu-milli", 1000))
        for i in got[p["metadata"]["name"]][1]:
            per_gpu[(node, i)] = per_gpu.get((node, i), 0) + share
        if p["metadata"]["name"].startswith("sd-inference"):
            assert node in ("pa-a10", "pa-v100")  # cohabit.io/gpu-models: A10|V100M32
    assert max(per_gpu.values()) <= 1000
    wait_for(lambda: all(get_pod(kube_client, namespace, n)["status"]["phase"] == "Running"
                         for n in got), 30, "pods running (kubelet stand-in)")
    out = kubectl.run("get", "-n", namespace, "gpuworkloads").stdout
    assert "sd-inference" in out
    wait_for(lambda: all("Scheduled" in cohabit_events(kube_client, namespace, n) for n in got),
             30, "a Scheduled Event on every pod")


@pytest.fixture
def genai_prometheus(shared_data, exporter, tmp_path):
    """A real Prometheus whose TSDB holds 22.8 h of backfilled GenAI telemetry for the given
    pods and which scrapes an exporter replaying it live."""
    servers = []

    def start(namespace: str, pods: list[str], container: str, service: str):
        server = start_genai_prometheus(shared_data, exporter, tmp_path / "prometheus",
                                        namespace, pods, container, service)
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


def translated_example(tmp_path: Path, name: str, cluster) -> Path:
    """An example as the test server serves it (``policy/v1`` PDBs -> ``v1beta1`` on 1.20)."""
    out = tmp_path / name
    out.write_text(translate_for_server((EXAMPLES / name).read_text(), cluster.version()))
    return out


def test_status_from_prometheus_and_apply_patches_within_bounds(
        installed, kubectl, kube_client, kube_cluster, namespace, make_node, start_operator,
        cleanup_workloads, genai_prometheus, tmp_path):
    make_node("pb-a10", gpus=4, gpu_product="A10", cpu_milli=64000, memory_mib=262144)
    make_node("pb-cpu", cpu_milli=64000, memory_mib=262144)
    apply(kubectl, namespace, EXAMPLES / "gpu-inference-workload.yaml", cleanup_workloads)
    apply(kubectl, namespace, translated_example(tmp_path, "postgres-workload.yaml", kube_cluster),
          cleanup_workloads)
    sd = materialize(kube_client, namespace, deployment(kube_client, namespace, "sd-inference"))
    sts = get(kube_client, f"/apis/apps/v1/namespaces/{namespace}/statefulsets/orders-db")
    materialize(kube_client, namespace, sts)
    prom = genai_prometheus(namespace, [p["metadata"]["name"] for p in sd], "server",
                            "sd-inference")
    before = deployment(kube_client, namespace, "sd-inference")
    start_operator(prom.url)

    path = workload_path(namespace, "gpuworkloads", "sd-inference")

    def recommended():
        # Binding is the scheduler loop's; the workload's status names the node from the
        # next reconcile on (5 s here), so wait for both conditions.
        obj = get(kube_client, path)
        c = condition(obj, "RecommendationProvided")
        placed = condition(obj, "Placed")
        return (obj if c and c["status"] == "True" and placed and placed["status"] == "True"
                else None)

    obj = wait_for(recommended, 120, "GpuWorkload RecommendationProvided and Placed")
    status = obj["status"]
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    [rec] = status["recommendations"]
    assert rec["container"] == "server" and rec["confidence"] >= 0.5
    assert 200 <= rec["gpuMilli"] <= 1000 and 4096 <= rec["gpuMemoryMiB"] <= 24576
    assert 4096 <= rec["memoryMiB"] <= 32768
    assert status["qos"]["samples"] > 0 and 0 <= status["qos"]["violations"] <= status["qos"][
        "samples"]
    assert status["node"] == "pb-a10"
    assert condition(obj, "LowConfidence")["status"] == "False"
    assert condition(obj, "Placed")["status"] == "True"

    # Apply mode: the Deployment's template now carries the recommendation, within bounds.
    def patched():
        dep = deployment(kube_client, namespace, "sd-inference")
        return dep if dep["metadata"]["generation"] > before["metadata"]["generation"] else None

    dep = wait_for(patched, 60, "Deployment patched by the operator")
    template = dep["spec"]["template"]
    [server] = template["spec"]["containers"]
    requests = server["resources"]["requests"]
    assert 4096 <= memory_mib(requests["memory"]) <= 32768
    assert 1000 <= cpu_milli(requests["cpu"]) <= 8000
    assert memory_mib(requests["memory"]) <= memory_mib(server["resources"]["limits"]["memory"])
    share = int(template["metadata"]["annotations"]["cohabit.io/gpu-milli"])
    assert 200 <= share <= 1000
    changed = (requests != before["spec"]["template"]["spec"]["containers"][0]["resources"][
        "requests"]) or share != 500
    assert changed

    # The reconcile that patched the Deployment writes its status (with the action) after
    # the patch, so the patch can be seen first.
    def resized():
        obj = get(kube_client, path)
        return obj if any(a["action"] == "Resize" and a["status"] == "done"
                          for a in obj["status"].get("lastActions", [])) else None

    wait_for(resized, 30, "GpuWorkload status with the done Resize action")

    # The database workload has no telemetry in this Prometheus: LowConfidence, untouched.
    db = wait_for(lambda: (lambda o: o if condition(o, "LowConfidence") else None)(
        get(kube_client, workload_path(namespace, "databaseworkloads", "orders-db"))),
        60, "DatabaseWorkload status")
    assert condition(db, "LowConfidence")["status"] == "True"
    sts_after = get(kube_client, f"/apis/apps/v1/namespaces/{namespace}/statefulsets/orders-db")
    assert sts_after["metadata"]["generation"] == sts["metadata"]["generation"]

    # what a user types: the short names and the printer columns
    table = kubectl.run("get", "-n", namespace, "dbworkloads,gpuworkloads").stdout
    assert "orders-db" in table and "sd-inference" in table
    assert "CONFIDENCE" in table and "READY" in table and "QOS" in table
    wide = kubectl.run("get", "-n", namespace, "dbworkloads,gpuworkloads", "-o", "wide").stdout
    assert "pb-a10" in wide and "VIOLATIONS" in wide and "REASON" in wide
    # the resize is an Event on the workload, from cohabit
    wait_for(lambda: "Resized" in cohabit_events(kube_client, namespace, "sd-inference"), 30,
             "the Resized Event")


def test_bad_spec_gets_invalid_and_schema_rejects(installed, kubectl, kube_client, namespace,
                                                  start_operator, cleanup_workloads, tmp_path):
    doc = next(d for d in yaml.safe_load_all((EXAMPLES / "gpu-inference-workload.yaml")
                                             .read_text()) if d["kind"] == "GpuWorkload")
    doc["metadata"]["name"] = "bad-bounds"
    doc["spec"]["bounds"]["min"]["cpu"] = "16"  # above max (8): valid schema, invalid spec
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    apply(kubectl, namespace, bad, cleanup_workloads)
    start_operator()
    path = workload_path(namespace, "gpuworkloads", "bad-bounds")
    obj = wait_for(lambda: (lambda o: o if condition(o, "Invalid") else None)(
        get(kube_client, path)), 60, "Invalid condition")
    invalid = condition(obj, "Invalid")
    assert invalid["status"] == "True" and invalid["reason"] == "InvalidSpec"
    assert "spec.bounds.min.cpu" in invalid["message"]
    assert invalid["observedGeneration"] == obj["metadata"]["generation"]

    doc["metadata"]["name"] = "bad-mode"
    doc["spec"]["mode"] = "Auto"  # the structural schema refuses this one
    bad.write_text(yaml.safe_dump(doc))
    result = kubectl.run("apply", "-n", namespace, "-f", str(bad), check=False)
    assert result.returncode != 0 and "spec.mode" in result.stderr


def test_prometheus_down_gives_low_confidence_and_no_action(
        installed, kubectl, kube_client, namespace, make_node, start_operator, cleanup_workloads,
        prometheus, exporter):
    make_node("pc-a10", gpus=2, gpu_product="A10", cpu_milli=32000, memory_mib=131072)
    apply(kubectl, namespace, EXAMPLES / "gpu-inference-workload.yaml", cleanup_workloads)
    materialize(kube_client, namespace, deployment(kube_client, namespace, "sd-inference"))
    before = deployment(kube_client, namespace, "sd-inference")
    prom = prometheus([exporter().target])
    prom.stop()  # the outage
    op = start_operator(prom.url)
    path = workload_path(namespace, "gpuworkloads", "sd-inference")
    obj = wait_for(lambda: (lambda o: o if condition(o, "LowConfidence") else None)(
        get(kube_client, path)), 60, "LowConfidence condition")
    low = condition(obj, "LowConfidence")
    assert low["status"] == "True" and low["reason"] == "TelemetryUnavailable"
    assert "Prometheus" in low["message"]
    assert condition(obj, "RecommendationProvided")["status"] == "False"
    time.sleep(6)  # one more timer re-plan (interval 5 s) still acts on nothing
    after = deployment(kube_client, namespace, "sd-inference")
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert op.actions("Resize", "done") == 0


def _fragmented_cluster(kube_client, kubectl, namespace, make_node, cleanup, tmp_path,
                        policy_name: str, dry_run: bool, pdb: bool):
    """pd-g1 (2 GPUs) holds two 500-milli shares, one per GPU; pd-g2 (1 GPU) holds one share.
    A pending whole-GPU pod fits nowhere until one share on pd-g1 moves to pd-g2."""
    make_node("pd-g1", gpus=2, gpu_product="A10", cpu_milli=32000, memory_mib=131072)
    make_node("pd-g2", gpus=1, gpu_product="A10", cpu_milli=32000, memory_mib=131072)
    policy = {"apiVersion": "cohabit.io/v1alpha1", "kind": "PlacementPolicy",
              "metadata": {"name": policy_name},
              "spec": {"policy": "best-fit", "rebinding": {
                  "enabled": True, "dryRun": dry_run, "evictionsPerHour": 100,
                  "maxUnavailable": 1}}}
    docs = [d for d in yaml.safe_load_all((EXAMPLES / "gpu-inference-workload.yaml")
                                          .read_text()) if d]
    for d in docs:
        if d["kind"] == "GpuWorkload":
            d["spec"]["policyRef"] = policy_name
            d["spec"]["mode"] = "Recommend"
    path = tmp_path / "frag.yaml"
    path.write_text(yaml.safe_dump_all([policy, *docs]))
    apply(kubectl, namespace, path, cleanup)
    dep = deployment(kube_client, namespace, "sd-inference")
    placed = [("sd-inference-a", "pd-g1", "0"), ("sd-inference-b", "pd-g1", "1"),
              ("sd-inference-c", "pd-g2", "0")]
    for name, node, gpu in placed:
        d = json.loads(json.dumps(dep))
        d["spec"]["template"]["spec"]["nodeName"] = node
        d["spec"]["template"]["metadata"]["annotations"]["cohabit.io/gpu-indices"] = gpu
        materialize(kube_client, namespace, d, names=[name])
    if pdb:
        rest.request(kube_client, "POST",
                     f"/apis/policy/v1beta1/namespaces/{namespace}/poddisruptionbudgets",
                     body={"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget",
                           "metadata": {"name": "sd-all"},
                           "spec": {"minAvailable": 3,
                                    "selector": {"matchLabels": {"app": "sd-inference"}}}})
    rest.request(kube_client, "POST", f"/api/v1/namespaces/{namespace}/pods", body={
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "whole-gpu"},
        "spec": {"schedulerName": "cohabit", "containers": [{
            "name": "train", "image": "x", "resources": {
                "requests": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"},
                "limits": {"nvidia.com/gpu": "1"}}}]}})
    wait_for(lambda: all((get_pod(kube_client, namespace, n) or {}).get("status", {}).get(
        "phase") == "Running" for n, _, _ in placed), 30, "placed pods running")


def test_eviction_honours_pdb_then_defragments(installed, kubectl, kube_client, namespace,
                                                make_node, start_operator, cleanup_workloads,
                                                tmp_path):
    _fragmented_cluster(kube_client, kubectl, namespace, make_node, cleanup_workloads, tmp_path,
                        f"defrag-{namespace}"[:60], dry_run=False, pdb=True)
    op = start_operator()
    wait_for(lambda: op.actions("Evict", "refused") >= 1, 60, "an eviction refused by the PDB")
    wait_for(lambda: any("EvictionRefused" in cohabit_events(kube_client, namespace, p)
                         for p in ("sd-inference-a", "sd-inference-b")), 30,
             "the EvictionRefused Event on the pod")
    names = {p["metadata"]["name"] for p in pods_of(kube_client, namespace)}
    assert {"sd-inference-a", "sd-inference-b", "sd-inference-c"} <= names  # 429 left them
    assert all(not (p["metadata"].get("deletionTimestamp")) for p in pods_of(kube_client,
                                                                              namespace))
    assert op.actions("Evict", "done") == 0
    assert get_pod(kube_client, namespace, "whole-gpu")["spec"].get("nodeName") is None

    rest.request(kube_client, "DELETE",
                 f"/apis/policy/v1beta1/namespaces/{namespace}/poddisruptionbudgets/sd-all")
    wait_for(lambda: op.actions("Evict", "done") >= 1, 60, "the eviction once the PDB is gone")
    whole = wait_for(lambda: (lambda p: p if p["spec"].get("nodeName") else None)(
        get_pod(kube_client, namespace, "whole-gpu")), 60, "whole-GPU pod bound")
    assert whole["spec"]["nodeName"] == "pd-g1"
    assert op.actions("Evict", "done") == 1  # one move was enough; nothing repeated
    wait_for(lambda: "Scheduled" in cohabit_events(kube_client, namespace, "whole-gpu")
             and any("EvictedByCohabit" in cohabit_events(kube_client, namespace, p)
                     for p in ("sd-inference-a", "sd-inference-b")), 30,
             "Scheduled and EvictedByCohabit Events (written in the background)")
    left = {p["metadata"]["name"] for p in pods_of(kube_client, namespace)}
    assert len({"sd-inference-a", "sd-inference-b"} - left) == 1
    ledger = get(kube_client, f"/api/v1/namespaces/{RELEASE_NAMESPACE}/configmaps/"
                              "cohabit-evictions")
    entries = json.loads(ledger["data"]["evictions"])  # the write-ahead ledger's entries
    keys = [e["pod"] for e in entries if e["pod"].startswith(namespace)]
    assert len(keys) == len(set(keys)) == 1
    assert [e["state"] for e in entries if e["pod"].startswith(namespace)] == ["done"]


def test_dry_run_evicts_nothing(installed, kubectl, kube_client, namespace, make_node,
                                start_operator, cleanup_workloads, tmp_path):
    _fragmented_cluster(kube_client, kubectl, namespace, make_node, cleanup_workloads, tmp_path,
                        f"dry-{namespace}"[:60], dry_run=True, pdb=False)
    op = start_operator()
    wait_for(lambda: op.actions("Evict", "dry-run") >= 2, 60, "two dry-run rebinding passes")
    assert op.actions("Evict", "done") == 0
    wait_for(lambda: any("EvictionDryRun" in cohabit_events(kube_client, namespace, p)
                         for p in ("sd-inference-a", "sd-inference-b")), 30,
             "the EvictionDryRun Event")
    trainer = wait_for(lambda: [
        e for e in get(kube_client, f"/api/v1/namespaces/{namespace}/events")["items"]
        if e["involvedObject"]["name"] == "whole-gpu" and e["reason"] == "FailedScheduling"],
        30, "FailedScheduling on the whole-GPU pod")
    assert "Insufficient nvidia.com/gpu" in trainer[0]["message"]
    pods = pods_of(kube_client, namespace)
    assert {"sd-inference-a", "sd-inference-b", "sd-inference-c"} <= {
        p["metadata"]["name"] for p in pods}
    assert all(not p["metadata"].get("deletionTimestamp") for p in pods)
    assert get_pod(kube_client, namespace, "whole-gpu")["spec"].get("nodeName") is None
