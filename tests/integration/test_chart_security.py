"""The chart's security settings with the real helm and a real RBAC authorizer (issue 9,
Safety 6): the node agent runs non-root under seccomp RuntimeDefault with no privilege
escalation and no capabilities; with ``operator.watchNamespace`` set, the operator's rights on
namespaced objects are a Role of that namespace, not cluster-wide (regression: the
ClusterRole stayed cluster-wide)."""

from __future__ import annotations

import pytest
import yaml

from tests.integration.harness import rest
from tests.integration.harness.kube import create_namespace
from tests.integration.operator_support import REPO

CHART = REPO / "helm" / "cohabit"


def _docs(helm_binary, *args: str) -> list[dict]:
    out = helm_binary.run("template", "cohabit", str(CHART), "--namespace", "cohabit-system",
                          *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_agent_pod_is_non_root_with_seccomp(helm_binary):
    [agent] = [d for d in _docs(helm_binary) if d["kind"] == "DaemonSet"]
    pod = agent["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    [container] = pod["containers"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False


def test_watch_namespace_renders_a_role_not_cluster_rights(helm_binary):
    docs = _docs(helm_binary, "--set", "operator.watchNamespace=shop")
    cluster = next(d for d in docs if d["kind"] == "ClusterRole")
    cluster_resources = {r for rule in cluster["rules"] for r in rule["resources"]}
    assert not cluster_resources & {"pods", "pods/eviction", "pods/binding", "deployments",
                                    "gpuworkloads", "databaseworkloads"}
    role = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "cohabit")
    assert role["metadata"]["namespace"] == "shop"
    assert {"pods/eviction", "pods/binding", "kopfpeerings"} <= {
        r for rule in role["rules"] for r in rule["resources"]}
    peering = next(d for d in docs if d["kind"] in ("KopfPeering", "ClusterKopfPeering"))
    assert peering["kind"] == "KopfPeering" and peering["metadata"]["namespace"] == "shop"


def _can(api, account: str, verb: str, resource: str, namespace: str, subresource: str = "",
         group: str = "", name: str = "") -> bool:
    user_ns, user = account.split("/")
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
              "spec": {"user": f"system:serviceaccount:{user_ns}:{user}",
                       "groups": ["system:serviceaccounts", f"system:serviceaccounts:{user_ns}"],
                       "resourceAttributes": {"verb": verb, "resource": resource,
                                              "subresource": subresource, "group": group,
                                              "namespace": namespace, "name": name}}}
    out = rest.request(api, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                       body=review)
    return bool(out["status"].get("allowed"))


def test_watch_namespace_rights_stop_at_the_namespace(helm, kube_client, kube_cluster):
    if kube_cluster.external:
        pytest.skip("installs a release on the local test cluster")
    watched = create_namespace(kube_client, "watched")
    release_ns = create_namespace(kube_client, "scoped-release")
    helm.run("upgrade", "--install", "scoped", str(CHART), "--namespace", release_ns,
             "--set", f"operator.watchNamespace={watched}", "--set", "agent.enabled=false",
             "--set", "defaultPolicy.create=false")
    try:
        account = f"{release_ns}/scoped-cohabit"
        assert _can(kube_client, account, "create", "pods", watched, "eviction")
        assert _can(kube_client, account, "create", "pods", watched, "binding")
        assert _can(kube_client, account, "patch", "gpuworkloads", watched, "status",
                    "cohabit.io")
        assert not _can(kube_client, account, "create", "pods", "default", "eviction")
        assert not _can(kube_client, account, "list", "pods", "default")
        assert not _can(kube_client, account, "patch", "deployments", "default", "", "apps")
        assert _can(kube_client, account, "list", "nodes", "")
        assert _can(kube_client, account, "update", "configmaps", release_ns,
                    name="cohabit-evictions")  # the eviction ledger
    finally:
        helm.run("uninstall", "scoped", "--namespace", release_ns)
