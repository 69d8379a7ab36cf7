"""The Helm chart with the real helm binary: lint, the committed plain manifests are what the
chart renders, and the installed RBAC grants the operator what it needs and nothing more."""

from __future__ import annotations

import pytest

from tests.integration.harness import rest
from tests.integration.operator_support import RELEASE_NAMESPACE, REPO

CHART = REPO / "helm" / "cohabit"


def test_chart_lints_strict(helm_binary):
    result = helm_binary.run("lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in result.stdout


NAMESPACE_DOC = f"""---
apiVersion: v1
kind: Namespace
metadata:
  name: {RELEASE_NAMESPACE}
  labels:
    app.kubernetes.io/name: cohabit
    app.kubernetes.io/part-of: cohabit
"""


def test_plain_manifests_are_the_rendered_chart(helm_binary):
    """manifests/cohabit.yaml = its release namespace, then exactly what helm renders."""
    rendered = helm_binary.run("template", "cohabit", str(CHART), "--namespace",
                               RELEASE_NAMESPACE).stdout
    committed = (REPO / "manifests" / "cohabit.yaml").read_text()
    body = "\n".join(line for line in committed.splitlines() if not line.startswith("# Gen")
                     and not line.startswith("# helm/cohabit")) + "\n"
    assert body.startswith(NAMESPACE_DOC), "run bash manifests/render.sh"
    assert body[len(NAMESPACE_DOC):].strip() == rendered.strip(), "run bash manifests/render.sh"


def test_template_values_reach_the_operator(helm_binary):
    out = helm_binary.run("template", "cohabit", str(CHART), "--namespace", "x",
                          "--set", "operator.prometheusUrl=http://prom:9090",
                          "--set", "agent.enabled=false").stdout
    assert "http://prom:9090" in out and "kind: DaemonSet" not in out
    assert "livenessProbe" in out and "/healthz" in out


def _can(api, verb: str, resource: str, namespace: str = "default", subresource: str = "",
         group: str = "") -> bool:
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
              "spec": {"user": f"system:serviceaccount:{RELEASE_NAMESPACE}:cohabit",
                       "groups": ["system:serviceaccounts",
                                  f"system:serviceaccounts:{RELEASE_NAMESPACE}"],
                       "resourceAttributes": {"verb": verb, "resource": resource,
                                              "subresource": subresource, "group": group,
                                              "namespace": namespace}}}
    out = rest.request(api, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                       body=review)
    return bool(out["status"].get("allowed"))


@pytest.mark.parametrize(
    ("verb", "resource", "subresource", "group", "allowed"),
    [("create", "pods", "binding", "", True), ("create", "pods", "eviction", "", True),
     ("patch", "deployments", "", "apps", True), ("patch", "gpuworkloads", "status",
                                                  "cohabit.io", True),
     ("create", "events", "", "", True), ("patch", "events", "", "", True),
     ("delete", "events", "", "", False),
     ("delete", "pods", "", "", False), ("create", "pods", "", "", False),
     ("get", "secrets", "", "", False), ("patch", "nodes", "", "", False),
     ("delete", "deployments", "", "apps", False), ("patch", "jobs", "", "batch", False)],
    ids=["bind", "evict", "resize", "status", "event", "event-count", "no-delete-events",
         "no-delete-pods", "no-create-pods",
         "no-secrets", "no-node-writes", "no-delete-deployments", "no-job-patch"],
)
def test_rbac_is_least_privilege(kube_client, kube_cluster, helm, verb, resource, subresource,
                                 group, allowed):
    if kube_cluster.external:
        pytest.skip("checks the chart installed on the local test cluster")
    helm.run("upgrade", "--install", "cohabit", str(CHART), "--namespace", RELEASE_NAMESPACE,
             "--create-namespace")
    assert _can(kube_client, verb, resource, subresource=subresource, group=group) is allowed
