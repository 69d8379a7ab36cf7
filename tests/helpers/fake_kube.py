"""An in-memory stand-in for the parts of the Kubernetes API the actuator calls, answering
as a real API server does: 404 for missing pods, 409 for binding a bound pod, 429 when a
PodDisruptionBudget forbids an eviction, and the discovery document of a 1.20 server (no
policy/v1). Objects are the kubernetes client's own model classes."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from kubernetes import client
from kubernetes.client.exceptions import ApiException


def api_error(status: int, message: str) -> ApiException:
    exc = ApiException(status=status, reason=message)
    exc.body = json.dumps({"kind": "Status", "message": message, "code": status})
    return exc


class FakeKube:
    """Pods, Deployments and PDB-like protection; records every write."""

    def __init__(self, policy_versions=("v1beta1",), pod_resize=False):
        self.pods: dict[tuple[str, str], client.V1Pod] = {}
        self.deployments: dict[tuple[str, str], client.V1Deployment] = {}
        self.protected: set[tuple[str, str]] = set()
        self.bindings: list[dict] = []
        self.evictions: list[dict] = []
        self.patches: list[tuple[str, str, dict]] = []
        self.policy_versions = policy_versions
        self.configmaps: dict[tuple[str, str], dict] = {}
        self.conflicts = 0  # replace_namespaced_config_map answers 409 this many times
        self.pod_resize = pod_resize  # serve pods/resize (Kubernetes >= 1.33)
        self.resizes: list[tuple[str, str, dict]] = []

    # -- fixtures ---------------------------------------------------------------------------
    def add_pod(self, name, namespace="ns", node=None, labels=None, phase="Running",
                terminating=False, requests=None, limits=None):
        resources = (client.V1ResourceRequirements(requests=requests, limits=limits)
                     if requests or limits else None)
        self.pods[(namespace, name)] = client.V1Pod(
            metadata=client.V1ObjectMeta(
                name=name, namespace=namespace, uid=f"uid-{name}", labels=labels or {},
                deletion_timestamp=datetime.now(timezone.utc) if terminating else None),
            spec=client.V1PodSpec(containers=[client.V1Container(name="main",
                                                                 resources=resources)],
                                  node_name=node, scheduler_name="cohabit"),
            status=client.V1PodStatus(phase=phase if node else "Pending"))

    def add_deployment(self, name, namespace="ns", requests=None, limits=None,
                       annotations=None):
        self.deployments[(namespace, name)] = client.V1Deployment(
            metadata=client.V1ObjectMeta(name=name, namespace=namespace),
            spec=client.V1DeploymentSpec(
                selector=client.V1LabelSelector(match_labels={"app": name}),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(annotations=annotations),
                    spec=client.V1PodSpec(containers=[client.V1Container(
                        name="main", resources=client.V1ResourceRequirements(
                            requests=requests, limits=limits))]))))

    # -- CoreV1Api --------------------------------------------------------------------------
    def read_namespaced_pod(self, name, namespace, **_):
        try:
            return self.pods[(namespace, name)]
        except KeyError:
            raise api_error(404, f'pods "{name}" not found') from None

    def create_namespaced_pod_binding(self, name, namespace, body, **_):
        assert name == body.metadata.name
        pod = self.pods.get((namespace, name))
        if pod is None:
            raise api_error(404, f'pods "{name}" not found')
        if pod.spec.node_name:
            raise api_error(409, f"pod {body.metadata.name} is already assigned to node "
                                 f'"{pod.spec.node_name}"')
        if body.metadata.uid and body.metadata.uid != pod.metadata.uid:
            raise api_error(409, "uid precondition failed")
        pod.spec.node_name = body.target.name
        pod.metadata.annotations = {**(pod.metadata.annotations or {}),
                                    **(body.metadata.annotations or {})}
        self.bindings.append({"pod": f"{namespace}/{body.metadata.name}",
                              "node": body.target.name,
                              "annotations": body.metadata.annotations})

    def create_namespaced_pod_eviction(self, name, namespace, body, **_):
        group, _, version = body["apiVersion"].partition("/")
        if group != "policy" or version not in self.policy_versions:
            raise api_error(400, f"no kind \"Eviction\" is registered for version "
                                 f"\"{body['apiVersion']}\"")
        pod = self.read_namespaced_pod(name, namespace)
        uid = ((body.get("deleteOptions") or {}).get("preconditions") or {}).get("uid")
        if uid and uid != pod.metadata.uid:
            raise api_error(409, f"Precondition failed: UID in precondition: {uid}, UID in "
                                 f"object meta: {pod.metadata.uid}")
        if (namespace, name) in self.protected:
            raise api_error(429, "Cannot evict pod as it would violate the pod's disruption "
                                 "budget.")
        self.evictions.append(body)
        self.pods[(namespace, name)].metadata.deletion_timestamp = datetime.now(timezone.utc)

    def get_api_resources(self, **_):
        """Discovery of /api/v1: pods and its subresources (pods/resize from 1.33 on)."""
        names = ["pods", "pods/binding", "pods/eviction", "pods/status"]
        if self.pod_resize:
            names.append("pods/resize")
        return client.V1APIResourceList(group_version="v1", resources=[
            client.V1APIResource(name=n, kind="Pod", namespaced=True, singular_name="",
                                 verbs=["get", "patch"]) for n in names])

    def patch_namespaced_pod_resize(self, name, namespace, body, **kwargs):
        if not self.pod_resize:
            raise api_error(404, "the server could not find the requested resource")
        assert kwargs.get("_content_type") == "application/strategic-merge-patch+json"
        pod = self.read_namespaced_pod(name, namespace)
        self.resizes.append((namespace, name, body))
        for c in body["spec"]["containers"]:
            for own in pod.spec.containers:
                if own.name == c["name"]:
                    res = own.resources or client.V1ResourceRequirements()
                    res.requests = {**(res.requests or {}), **c["resources"].get("requests", {})}
                    if "limits" in c["resources"]:
                        res.limits = {**(res.limits or {}), **c["resources"]["limits"]}
                    own.resources = res

    def list_namespaced_pod(self, namespace, label_selector="", **_):
        key, _, value = label_selector.partition("=")
        items = [p for (ns, _), p in self.pods.items()
                 if ns == namespace and (not key or (p.metadata.labels or {}).get(key) == value)]
        return client.V1PodList(items=items)

    # -- ConfigMaps (the eviction ledger) --------------------------------------------------
    def read_namespaced_config_map(self, name, namespace, **_):
        cm = self.configmaps.get((namespace, name))
        if cm is None:
            raise api_error(404, f'configmaps "{name}" not found')
        return client.V1ConfigMap(metadata=client.V1ObjectMeta(
            name=name, namespace=namespace, resource_version=cm["rv"]), data=dict(cm["data"]))

    def create_namespaced_config_map(self, namespace, body, **_):
        key = (namespace, body.metadata.name)
        if key in self.configmaps:
            raise api_error(409, "already exists")
        self.configmaps[key] = {"rv": "1", "data": dict(body.data)}

    def replace_namespaced_config_map(self, name, namespace, body, **_):
        cm = self.configmaps[(namespace, name)]
        if self.conflicts:  # another writer got there first
            self.conflicts -= 1
            cm["rv"] = str(int(cm["rv"]) + 1)
            raise api_error(409, "the object has been modified")
        if body.metadata.resource_version != cm["rv"]:
            raise api_error(409, "the object has been modified")
        cm["rv"] = str(int(cm["rv"]) + 1)
        cm["data"] = dict(body.data)

    # -- AppsV1Api --------------------------------------------------------------------------
    def read_namespaced_deployment(self, name, namespace, **_):
        try:
            return self.deployments[(namespace, name)]
        except KeyError:
            raise api_error(404, f'deployments.apps "{name}" not found') from None

    def patch_namespaced_deployment(self, name, namespace, body, **_):
        self.patches.append((namespace, name, body))
        dep = self.read_namespaced_deployment(name, namespace)
        template = body["spec"]["template"]
        for c in template.get("spec", {}).get("containers", []):
            for own in dep.spec.template.spec.containers:
                if own.name == c["name"]:
                    own.resources.requests = {**(own.resources.requests or {}),
                                              **c["resources"]["requests"]}
        if "metadata" in template:
            dep.spec.template.metadata.annotations = {
                **(dep.spec.template.metadata.annotations or {}),
                **template["metadata"]["annotations"]}

    # -- ApisApi ----------------------------------------------------------------------------
    def get_api_versions(self, **_):
        return client.V1APIGroupList(groups=[client.V1APIGroup(
            name="policy", versions=[
                client.V1GroupVersionForDiscovery(group_version=f"policy/{v}", version=v)
                for v in self.policy_versions],
            preferred_version=None)])
