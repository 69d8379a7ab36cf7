"""Small helpers over the Kubernetes API for tests: waits, binding, eviction, namespaces.

These are test conveniences; the operator has its own actuator. All take an ``ApiClient``
and work on the local 1.20 server and on a user's cluster alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from kubernetes.client import ApiClient, CoreV1Api
from kubernetes.client.exceptions import ApiException

from . import rest
from .procs import wait_until


def get_pod(api: ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    """The pod as a JSON dict, or ``None`` if it does not exist."""
    try:
        return rest.request(api, "GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def wait_pod(api: ApiClient, namespace: str, name: str,
             predicate: Callable[[dict[str, Any]], bool], timeout: float = 20.0,
             what: str = "condition") -> dict[str, Any]:
    """Poll until the pod exists and ``predicate(pod)`` holds; return the pod (JSON dict).
    ``TimeoutError`` after ``timeout`` seconds."""

    def probe() -> dict[str, Any] | None:
        pod = get_pod(api, namespace, name)
        return pod if pod is not None and predicate(pod) else None

    return wait_until(probe, timeout, f"pod {namespace}/{name} {what}")


def wait_pod_running(api: ApiClient, namespace: str, name: str,
                     timeout: float = 20.0) -> dict[str, Any]:
    """Wait until the pod's phase is ``Running``; return it."""
    return wait_pod(api, namespace, name,
                    lambda p: p.get("status", {}).get("phase") == "Running", timeout, "Running")


def wait_pod_gone(api: ApiClient, namespace: str, name: str, timeout: float = 20.0) -> None:
    """Wait until the pod no longer exists."""
    wait_until(lambda: True if get_pod(api, namespace, name) is None else None, timeout,
               f"pod {namespace}/{name} deleted")


def bind_pod(api: ApiClient, namespace: str, name: str, node: str) -> None:
    """Bind a pending pod to ``node`` through the ``binding`` subresource (what a scheduler
    does). Raises ``ApiException`` (409 if already bound)."""
    body = {"apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
    rest.request(api, "POST", f"/api/v1/namespaces/{namespace}/pods/{name}/binding", body=body)


def evict_pod(api: ApiClient, namespace: str, name: str) -> str:
    """Evict a pod through the Eviction API, ``policy/v1`` where served, else
    ``policy/v1beta1`` (1.20). Returns the policy version used.

    Raises ``ApiException``: ``status == 429`` when a PodDisruptionBudget forbids it.
    """
    version = rest.served_version(api, "policy", ("v1", "v1beta1"))
    if version == "v1":
        # policy/v1 in discovery does not prove v1 Eviction (1.21 served v1 PDBs but v1
        # Eviction came in 1.22); the server answers 400/404 for an unknown version.
        try:
            _post_eviction(api, namespace, name, "v1")
            return "v1"
        except ApiException as exc:
            if exc.status not in (400, 404):
                raise
    _post_eviction(api, namespace, name, "v1beta1")
    return "v1beta1"


def _post_eviction(api: ApiClient, namespace: str, name: str, version: str) -> None:
    body = {"apiVersion": f"policy/{version}", "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace}}
    rest.request(api, "POST", f"/api/v1/namespaces/{namespace}/pods/{name}/eviction", body=body)


def create_namespace(api: ApiClient, prefix: str = "t") -> str:
    """Create a namespace named ``<prefix>-<8 hex>`` (prefix trimmed to a valid name)."""
    clean = "".join(ch if ch.isalnum() else "-" for ch in prefix.lower()).strip("-")[:40] or "t"
    name = f"{clean}-{uuid.uuid4().hex[:8]}"
    rest.request(api, "POST", "/api/v1/namespaces",
                 body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def force_delete_pods(api: ApiClient, namespace: str | None = None,
                      field_selector: str | None = None) -> int:
    """Delete pods at once (grace period 0) in ``namespace`` (all namespaces if ``None``)
    matching ``field_selector`` (e.g. ``"spec.nodeName=n1"``); return how many."""
    path = f"/api/v1/namespaces/{namespace}/pods" if namespace else "/api/v1/pods"
    query = {"fieldSelector": field_selector} if field_selector else None
    pods = rest.request(api, "GET", path, query=query).get("items", [])
    core = CoreV1Api(api)
    for pod in pods:
        meta = pod["metadata"]
        try:
            core.delete_namespaced_pod(meta["name"], meta["namespace"], grace_period_seconds=0)
        except ApiException as exc:
            if exc.status != 404:
                raise
    return len(pods)


def delete_namespace(api: ApiClient, name: str) -> None:
    """Delete a namespace's pods at once, then the namespace (without a controller-manager
    it stays ``Terminating`` with its other objects, which is harmless in tests)."""
    try:
        force_delete_pods(api, name)
        CoreV1Api(api).delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise


def service_account_token(api: ApiClient, namespace: str, name: str,
                          expiration_seconds: int = 3600) -> str:
    """A token for service account ``namespace/name`` from the TokenRequest API (works
    without a controller-manager). Raises ``ApiException`` (404 if the account is missing)."""
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": expiration_seconds}}
    doc = rest.request(api, "POST",
                       f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", body=body)
    return doc["status"]["token"]
