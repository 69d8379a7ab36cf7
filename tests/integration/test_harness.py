"""The real-component harness works: API server, CRDs, binding, kubelet stand-in, eviction
with PDBs, Prometheus scraping an exporter, helm and kubectl against the test cluster."""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import requests
import yaml
from kubernetes.client import ApiClient, ApiextensionsV1Api, CustomObjectsApi, VersionApi
from kubernetes.client.exceptions import ApiException
from prometheus_api_client import PrometheusConnect
from prometheus_client import CollectorRegistry, Gauge
from urllib3.util.retry import Retry

from tests.integration.harness import rest
from tests.integration.harness.cluster import Cluster
from tests.integration.harness.kube import (
    bind_pod,
    evict_pod,
    get_pod,
    service_account_token,
    wait_pod_gone,
    wait_pod_running,
)
from tests.integration.harness.kubelet import KubeletStandIn, pdb_status
from tests.integration.harness.procs import wait_until
from tests.integration.harness.tools import Tool

pytestmark = pytest.mark.integration


def pod_manifest(name: str, labels: dict[str, str] | None = None, gpus: int = 0) -> dict:
    resources = {"requests": {"cpu": "500m", "memory": "256Mi"}}
    if gpus:
        resources["limits"] = {"nvidia.com/gpu": str(gpus)}
        resources["requests"]["nvidia.com/gpu"] = str(gpus)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "schedulerName": "cohabit",  # no such scheduler runs: the test binds the pod
            "containers": [{"name": "main", "image": "registry.invalid/app:1",
                            "resources": resources}],
        },
    }


def create_pod(api: ApiClient, namespace: str, manifest: dict) -> dict:
    return rest.request(api, "POST", f"/api/v1/namespaces/{namespace}/pods", body=manifest)


def test_apiserver_answers_and_enforces_token_auth(kube_cluster: Cluster,
                                                   kube_client: ApiClient) -> None:
    info = VersionApi(kube_client).get_code()
    assert info.major == "1"
    if kube_cluster.external:
        return
    assert kube_cluster.version() == (1, 20)
    ctx = ssl.create_default_context(cafile=str(kube_cluster.ca_file))
    req = urllib.request.Request(f"{kube_cluster.server}/api/v1/namespaces",
                                 headers={"Authorization": "Bearer not-the-token"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, context=ctx, timeout=5)
    assert err.value.code == 401
    err.value.close()


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "probes.harness.cohabit.io"},
    "spec": {
        "group": "harness.cohabit.io",
        "scope": "Namespaced",
        "names": {"plural": "probes", "singular": "probe", "kind": "Probe",
                  "shortNames": ["prb"]},
        "versions": [{
            "name": "v1alpha1", "served": True, "storage": True,
            "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {"type": "object", "properties": {
                        "mode": {"type": "string", "enum": ["Recommend", "Apply"],
                                 "default": "Recommend"},
                        "bounds": {"type": "object",
                                   "additionalProperties": {"type": "integer"}},
                    }},
                    "status": {"type": "object",
                               "x-kubernetes-preserve-unknown-fields": True},
                },
            }},
        }],
    },
}


def test_crd_and_custom_resource_roundtrip(kube_client: ApiClient, namespace: str) -> None:
    """Custom-resource requests are what crashed the unpatched reflect2 (map iteration)."""
    ext = ApiextensionsV1Api(kube_client)
    try:
        rest.request(kube_client, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                     body=CRD)
    except ApiException as exc:
        if exc.status != 409:
            raise

    def established() -> bool | None:
        crd = ext.read_custom_resource_definition(CRD["metadata"]["name"])
        conds = {c.type: c.status for c in (crd.status.conditions or [])}
        return True if conds.get("Established") == "True" else None

    wait_until(established, timeout=20, what="CRD Established")
    objs = CustomObjectsApi(kube_client)
    body = {"apiVersion": "harness.cohabit.io/v1alpha1", "kind": "Probe",
            "metadata": {"name": "p1", "labels": {"a": "b"}},
            "spec": {"bounds": {"cpu_milli": 4000, "memory_mib": 2048}}}
    created = wait_until(
        lambda: objs.create_namespaced_custom_object("harness.cohabit.io", "v1alpha1", namespace,
                                                     "probes", body),
        timeout=10, what="first custom resource accepted")
    assert created["spec"]["mode"] == "Recommend"  # structural default applied
    got = objs.get_namespaced_custom_object("harness.cohabit.io", "v1alpha1", namespace,
                                            "probes", "p1")
    assert got["spec"]["bounds"] == {"cpu_milli": 4000, "memory_mib": 2048}
    objs.patch_namespaced_custom_object_status(
        "harness.cohabit.io", "v1alpha1", namespace, "probes", "p1",
        {"status": {"node": "n1", "conditions": [{"type": "Placed", "status": "True"}]}},
        _content_type=rest.MERGE_PATCH)
    listed = objs.list_namespaced_custom_object("harness.cohabit.io", "v1alpha1", namespace,
                                                "probes", label_selector="a=b")
    assert [i["status"]["node"] for i in listed["items"]] == ["n1"]
    bad = {**body, "metadata": {"name": "p2"}, "spec": {"mode": "Sometimes"}}
    with pytest.raises(ApiException) as err:
        objs.create_namespaced_custom_object("harness.cohabit.io", "v1alpha1", namespace,
                                             "probes", bad)
    assert err.value.status == 422 and "spec.mode" in err.value.body


def test_bound_pod_is_marked_running(kube_client: ApiClient, kubelet: KubeletStandIn,
                                     namespace: str, make_node) -> None:
    node = make_node("gpu-node-a", cpu_milli=16000, memory_mib=65536, gpus=4,
                     gpu_product="NVIDIA-A100-SXM4-80GB")
    assert node["status"]["allocatable"]["nvidia.com/gpu"] == "4"
    assert node["metadata"]["labels"]["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-80GB"
    create_pod(kube_client, namespace, pod_manifest("infer-0", gpus=1))
    time.sleep(0.5)
    pending = get_pod(kube_client, namespace, "infer-0")
    assert pending["status"]["phase"] == "Pending"  # nobody schedules `cohabit` pods but us
    bind_pod(kube_client, namespace, "infer-0", "gpu-node-a")
    pod = wait_pod_running(kube_client, namespace, "infer-0", timeout=15)
    assert pod["spec"]["nodeName"] == "gpu-node-a"
    conds = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert conds["Ready"] == "True"
    assert pod["status"]["containerStatuses"][0]["ready"] is True
    with pytest.raises(ApiException) as err:  # a bound pod cannot be bound again
        bind_pod(kube_client, namespace, "infer-0", "gpu-node-a")
    assert err.value.status == 409


def test_eviction_honours_pdb(kube_client: ApiClient, kubelet: KubeletStandIn, namespace: str,
                              make_node) -> None:
    make_node("cpu-node-b")
    for i in range(2):
        create_pod(kube_client, namespace, pod_manifest(f"db-{i}", labels={"app": "db"}))
        bind_pod(kube_client, namespace, f"db-{i}", "cpu-node-b")
    for i in range(2):
        wait_pod_running(kube_client, namespace, f"db-{i}")
    version = rest.served_version(kube_client, "policy", ("v1", "v1beta1"))
    pdb_path = f"/apis/policy/{version}/namespaces/{namespace}/poddisruptionbudgets"
    pdb = {"apiVersion": f"policy/{version}", "kind": "PodDisruptionBudget",
           "metadata": {"name": "db"},
           "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "db"}}}}
    rest.request(kube_client, "POST", pdb_path, body=pdb)
    wait_until(lambda: rest.request(kube_client, "GET", f"{pdb_path}/db")
               .get("status", {}).get("currentHealthy") == 2 or None, 15, "PDB status")
    with pytest.raises(ApiException) as err:
        evict_pod(kube_client, namespace, "db-0")
    assert err.value.status == 429
    assert get_pod(kube_client, namespace, "db-0")["metadata"].get("deletionTimestamp") is None

    rest.request(kube_client, "PATCH", f"{pdb_path}/db", body={"spec": {"minAvailable": 1}},
                 content_type=rest.MERGE_PATCH)
    wait_until(lambda: rest.request(kube_client, "GET", f"{pdb_path}/db")
               .get("status", {}).get("disruptionsAllowed") == 1 or None, 15,
               "PDB allows one disruption")
    used = evict_pod(kube_client, namespace, "db-0")
    assert used == ("v1beta1" if version == "v1beta1" else used)
    wait_pod_gone(kube_client, namespace, "db-0", timeout=40)
    with pytest.raises(ApiException) as err:  # the survivor is protected now
        evict_pod(kube_client, namespace, "db-1")
    assert err.value.status == 429
    assert get_pod(kube_client, namespace, "db-1")["status"]["phase"] == "Running"


@pytest.mark.parametrize(
    ("spec", "ready", "expected"),
    [
        ({"minAvailable": 2}, [True, True, True], (1, 2, 3)),
        ({"minAvailable": 3}, [True, True, False], (0, 3, 2)),
        ({"maxUnavailable": 1}, [True, True, True], (1, 2, 3)),
        ({"minAvailable": "50%"}, [True, True, True], (1, 2, 3)),
        ({"maxUnavailable": "34%"}, [True, True, True], (2, 1, 3)),  # 1.02 rounds up to 2
    ],
    ids=["min-int", "min-int-unready", "max-int", "min-percent-rounds-up", "max-percent-rounds-up"],
)
def test_pdb_status_arithmetic(spec: dict, ready: list[bool], expected: tuple) -> None:
    pods = [{"metadata": {"name": f"p{i}", "namespace": "n", "labels": {"app": "x"}},
             "status": {"conditions": [{"type": "Ready", "status": "True" if r else "False"}]}}
            for i, r in enumerate(ready)]
    pods.append({"metadata": {"name": "other", "namespace": "n", "labels": {"app": "y"}},
                 "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    pdb = {"metadata": {"name": "b", "generation": 3},
           "spec": {**spec, "selector": {"matchLabels": {"app": "x"}}}}
    status = pdb_status(pdb, pods, time.time(), empty_matches_all=False)
    allowed, desired, healthy = expected
    assert (status["disruptionsAllowed"], status["desiredHealthy"],
            status["currentHealthy"]) == (allowed, desired, healthy)
    assert status["expectedPods"] == len(ready) and status["observedGeneration"] == 3


def test_prometheus_scrapes_exporter(prometheus, exporter) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("cohabit_harness_probe", "harness probe", ["pod"], registry=registry)
    gauge.labels(pod="infer-0").set(42.5)
    exp = exporter(registry)
    prom = prometheus({"harness": [exp.target]}, scrape_interval="1s")
    t0 = time.monotonic()
    result = prom.wait_for('cohabit_harness_probe{pod="infer-0"}', timeout=30)
    first_sample_s = time.monotonic() - t0
    assert float(result[0]["value"][1]) == 42.5
    assert result[0]["metric"]["job"] == "harness"
    with requests.Session() as session:  # closed, so no socket outlives the test
        client = PrometheusConnect(url=prom.url, disable_ssl=True, retry=Retry(total=0),
                                   session=session)
        rows = client.custom_query('cohabit_harness_probe')
        assert [r["metric"]["pod"] for r in rows] == ["infer-0"]
        assert first_sample_s < 30
        prom.stop()
        with pytest.raises(requests.exceptions.ConnectionError):  # Prometheus is down
            client.custom_query('cohabit_harness_probe')


def test_helm_lint_template_and_install(helm: Tool, kubectl: Tool, kube_client: ApiClient,
                                        namespace: str, tmp_path: Path) -> None:
    assert helm.run("version", "--short").stdout.startswith("v3.17.3")
    helm.run("create", tmp_path / "demo")
    helm.run("lint", "--strict", tmp_path / "demo")
    rendered = list(yaml.safe_load_all(helm.run("template", "demo", tmp_path / "demo").stdout))
    kinds = {doc["kind"] for doc in rendered if doc}
    assert {"Deployment", "Service", "ServiceAccount"} <= kinds

    chart = tmp_path / "tiny"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: tiny\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("greeting: hello\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n")
    helm.run("install", "tiny", chart, "-n", namespace, "--set", "greeting=hi")
    out = kubectl.run("get", "configmap", "tiny-cm", "-n", namespace, "-o", "yaml").stdout
    assert yaml.safe_load(out)["data"] == {"greeting": "hi"}
    assert "tiny" in helm.run("list", "-n", namespace, "-q").stdout.split()
    manifest = tmp_path / "extra.yaml"
    manifest.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                                        "metadata": {"name": "applied", "namespace": namespace},
                                        "data": {"k": "v"}}))
    kubectl.run("apply", "-f", manifest)
    got = rest.request(kube_client, "GET", f"/api/v1/namespaces/{namespace}/configmaps/applied")
    assert got["data"] == {"k": "v"}


def test_service_account_identity_is_held_to_rbac(kube_cluster: Cluster, kube_client: ApiClient,
                                                  kubectl: Tool, namespace: str,
                                                  tmp_path: Path) -> None:
    ns = f"/api/v1/namespaces/{namespace}"
    rest.request(kube_client, "POST", f"{ns}/serviceaccounts",
                 body={"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": "reader"}})
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    rest.request(kube_client, "POST", f"{rbac}/roles", body={
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "pod-reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]})
    rest.request(kube_client, "POST", f"{rbac}/rolebindings", body={
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "pod-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}]})
    token = service_account_token(kube_client, namespace, "reader")
    config = kube_cluster.kubeconfig_for_token(token, tmp_path / "reader.kubeconfig")
    as_reader = Tool(path=kubectl.path, env={**kubectl.env, "KUBECONFIG": str(config)})
    assert as_reader.run("get", "pods", "-n", namespace).returncode == 0
    denied = as_reader.run("create", "configmap", "x", "-n", namespace, check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
    denied = as_reader.run("get", "nodes", check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
