"""The Kubernetes actuator: the only code in cohabit that binds, evicts or patches.

* ``Bind`` -> ``POST pods/{name}/binding`` (the pod's binding subresource, as kube-scheduler
  does; RBAC ``pods/binding: create``). GPU indices ride on the Binding's annotations
  (``cohabit.io/gpu-indices``), which the
  API server copies onto the pod atomically with ``spec.nodeName``.
* ``Evict`` -> ``POST pods/{name}/eviction`` with a ``policy/v1`` Eviction, or
  ``policy/v1beta1`` when the server does not serve ``policy/v1`` (Kubernetes < 1.22).
  The API server enforces PodDisruptionBudgets: HTTP 429 is a normal answer and becomes
  status ``"refused"``. Dry-run, the hourly budget and per-workload unavailability are checked
  before the call.
* ``Resize`` -> strategic-merge patch of the target's pod template container requests
  (Deployment/StatefulSet; a Job's template is immutable, so a Job resize is ``"refused"``).

Idempotency (restarts must never double-act): a ``Bind`` of a pod that already has a node is
not sent again (and a 409 from a racing bind is read back); an ``Evict`` of a pod that is
gone or already terminating is ``"skipped"``; a ``Resize`` equal to the current requests is
``"done"`` without a patch.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from cohabit.actuator.base import EvictionLedger, EvictionLimits, MemoryLedger
from cohabit.config.quantity import cpu_milli, memory_mib
from cohabit.model import Action, Bind, Evict, Outcome, Resize

__all__ = [
    "ANNOTATION_GPU_INDICES",
    "ANNOTATION_GPU_MILLI",
    "ConfigMapLedger",
    "KubernetesActuator",
    "LABEL_WORKLOAD",
    "TargetRef",
]

log = logging.getLogger(__name__)

ANNOTATION_GPU_INDICES = "cohabit.io/gpu-indices"
"""Pod annotation: comma-separated GPU indices cohabit bound the pod to."""
ANNOTATION_GPU_MILLI = "cohabit.io/gpu-milli"
"""Pod (template) annotation: fractional GPU share, milli-GPU of one GPU."""
ANNOTATION_GPU_MEMORY = "cohabit.io/gpu-memory-mib"
"""Pod (template) annotation: GPU memory the pod may use, MiB."""
LABEL_WORKLOAD = "cohabit.io/workload"
"""Pod label naming the owning cohabit workload (same namespace)."""

TargetRef = tuple[str, str, str]
"""``(namespace, kind, name)`` of a workload's Deployment/StatefulSet/Job."""


class KubernetesActuator:
    """:class:`~cohabit.actuator.base.Actuator` against a Kubernetes API server.

    Args:
        api_client: a configured :class:`kubernetes.client.ApiClient`.
        limits: eviction limits; replace :attr:`limits` when the policy changes.
        ledger: where evictions are remembered (default: in memory).
        resolve_target: workload key (``namespace/name``) -> :data:`TargetRef`, for ``Resize``.
        clock: epoch seconds (injected so tests control the budget window).
        verify_binds: read each pod before binding it. The operator passes False: its binds
            come from a snapshot listed just before, and the API server refuses a second bind
            of a pod with 409 (read back and reported), so a bind is never applied twice.
        bind_concurrency: binds sent in parallel (placement has already decided them all).
    """

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        limits: EvictionLimits | None = None,
        ledger: EvictionLedger | None = None,
        resolve_target: Callable[[str], TargetRef | None] | None = None,
        clock: Callable[[], float] = time.time,
        verify_binds: bool = True,
        bind_concurrency: int = 1,
    ) -> None:
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.apis = client.ApisApi(api_client)
        self.limits = limits or EvictionLimits()
        self.ledger = ledger or MemoryLedger()
        self.resolve_target = resolve_target or (lambda _key: None)
        self.clock = clock
        self._eviction_version: str | None = None
        self.verify_binds = verify_binds
        self.bind_concurrency = max(1, bind_concurrency)

    # -- the protocol -----------------------------------------------------------------------
    def apply(self, actions: Sequence[Action]) -> list[Outcome]:
        """One :class:`~cohabit.model.Outcome` per action, in order; never raises for API errors.

        Binds run ``bind_concurrency`` at a time; evictions and resizes run one by one, in
        order, after them (the budgets count as they go).
        """
        binds = [a for a in actions if isinstance(a, Bind)]
        done: dict[int, Outcome] = {}
        if self.bind_concurrency > 1 and len(binds) > 1:
            with ThreadPoolExecutor(self.bind_concurrency) as pool:
                for action, outcome in zip(binds, pool.map(self._one, binds), strict=True):
                    done[id(action)] = outcome
        return [done[id(a)] if id(a) in done else self._one(a) for a in actions]

    def _one(self, action: Action) -> Outcome:
        """Carry out one action; API and connection errors become ``"failed"``."""
        try:
            if isinstance(action, Bind):
                outcome = self._bind(action)
            elif isinstance(action, Evict):
                outcome = self._evict(action)
            elif isinstance(action, Resize):
                outcome = self._resize(action)
            else:
                outcome = Outcome(action, "failed", f"unknown action {action!r}")
        except ApiException as exc:
            outcome = Outcome(action, "failed", f"HTTP {exc.status}: {_reason(exc)}")
        except (OSError, ValueError) as exc:  # connection errors, bad data
            outcome = Outcome(action, "failed", f"{type(exc).__name__}: {exc}")
        log.info("%s %s -> %s %s", type(action).__name__, _subject(action), outcome.status,
                 outcome.message)
        return outcome

    def _read_pod(self, name: str, namespace: str) -> Any:
        """The pod, or None when it no longer exists."""
        try:
            return self.core.read_namespaced_pod(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    # -- bind -------------------------------------------------------------------------------
    def _bind(self, action: Bind) -> Outcome:
        namespace, name = _split(action.pod)
        uid = None
        if self.verify_binds:
            pod = self._read_pod(name, namespace)
            if pod is None:
                return Outcome(action, "skipped", "pod is gone")
            bound = pod.spec.node_name
            if bound:
                if bound == action.node:
                    return Outcome(action, "done", f"already bound to {bound}")
                return Outcome(action, "skipped", f"already bound to {bound}")
            if pod.metadata.deletion_timestamp is not None:
                return Outcome(action, "skipped", "pod is terminating")
            uid = pod.metadata.uid
        annotations = {}
        if action.gpu_indices:
            annotations[ANNOTATION_GPU_INDICES] = ",".join(str(i) for i in action.gpu_indices)
        body = client.V1Binding(
            metadata=client.V1ObjectMeta(
                name=name, namespace=namespace, annotations=annotations or None, uid=uid,
            ),
            target=client.V1ObjectReference(api_version="v1", kind="Node", name=action.node),
        )
        try:
            # _preload_content=False: the client cannot deserialise the Status the server
            # answers with (kubernetes-client/python#825).
            self.core.create_namespaced_pod_binding(name, namespace, body,
                                                    _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return Outcome(action, "skipped", "pod is gone")
            if exc.status == 409:  # someone (maybe our previous incarnation) bound it
                again = self.core.read_namespaced_pod(name, namespace).spec.node_name
                status = "done" if again == action.node else "skipped"
                return Outcome(action, status, f"already bound to {again}")
            raise
        return Outcome(action, "done", f"bound to {action.node}")

    # -- evict ------------------------------------------------------------------------------
    def _evict(self, action: Evict) -> Outcome:
        namespace, name = _split(action.pod)
        limits = self.limits
        if not limits.enabled:
            return Outcome(action, "skipped", "rebinding is disabled")
        pod = self._read_pod(name, namespace)
        if pod is None:
            return Outcome(action, "skipped", "pod is gone")
        if pod.metadata.deletion_timestamp is not None:
            return Outcome(action, "skipped", "pod is already terminating")
        now = self.clock()
        recent = self.ledger.recent(now)
        if any(p == action.pod for _, p in recent):
            return Outcome(action, "skipped", "pod was evicted already")
        if limits.evictions_per_hour and len(recent) >= limits.evictions_per_hour:
            return Outcome(action, "skipped",
                           f"eviction budget spent ({len(recent)}/{limits.evictions_per_hour} "
                           "in the last hour)")
        workload = (pod.metadata.labels or {}).get(LABEL_WORKLOAD)
        if workload and limits.max_unavailable:
            unavailable = self._unavailable(namespace, workload)
            if unavailable + 1 > limits.max_unavailable:
                return Outcome(action, "skipped",
                               f"workload {namespace}/{workload} has {unavailable} unavailable "
                               f"pod(s); max unavailable is {limits.max_unavailable}")
        if limits.dry_run:
            return Outcome(action, "dry-run", "would evict (dry-run)")
        version = self._eviction_api_version()
        body = {
            "apiVersion": version,
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        }
        try:
            self.core.create_namespaced_pod_eviction(name, namespace, body,
                                                     _preload_content=False)
        except ApiException as exc:
            if exc.status == 429:
                return Outcome(action, "refused",
                               f"PodDisruptionBudget refused the eviction: {_reason(exc)}")
            if exc.status == 404:
                return Outcome(action, "skipped", "pod is gone")
            raise
        self.ledger.record(now, action.pod)
        return Outcome(action, "done", f"evicted through {version}")

    def _unavailable(self, namespace: str, workload: str) -> int:
        selector = f"{LABEL_WORKLOAD}={workload}"
        pods = self.core.list_namespaced_pod(namespace, label_selector=selector)
        count = 0
        for pod in pods.items:
            if (pod.metadata.deletion_timestamp is not None or not pod.spec.node_name
                    or (pod.status and pod.status.phase not in ("Running", "Succeeded"))):
                count += 1
        return count

    def _eviction_api_version(self) -> str:
        """``policy/v1`` when the server serves it, else ``policy/v1beta1`` (cached)."""
        if self._eviction_version is None:
            version = "policy/v1beta1"
            try:
                groups = self.apis.get_api_versions()
                for group in groups.groups:
                    if group.name == "policy" and any(v.version == "v1" for v in group.versions):
                        version = "policy/v1"
            except ApiException as exc:
                log.warning("API discovery failed (%s); evicting through policy/v1beta1",
                            _reason(exc))
            self._eviction_version = version
        return self._eviction_version

    # -- resize -----------------------------------------------------------------------------
    def _resize(self, action: Resize) -> Outcome:
        target = self.resolve_target(action.workload)
        if target is None:
            return Outcome(action, "failed", f"no target known for workload {action.workload}")
        namespace, kind, name = target
        if kind == "Job":
            return Outcome(action, "refused", "a Job's pod template is immutable; recreate it")
        if kind not in ("Deployment", "StatefulSet"):
            return Outcome(action, "failed", f"cannot resize a {kind}")
        suffix = "deployment" if kind == "Deployment" else "stateful_set"
        read = getattr(self.apps, f"read_namespaced_{suffix}")
        patch = getattr(self.apps, f"patch_namespaced_{suffix}")
        obj = read(name, namespace)
        containers = {c.name: c for c in obj.spec.template.spec.containers}
        if action.container not in containers:
            return Outcome(action, "failed",
                           f"{kind} {namespace}/{name} has no container {action.container!r}")
        current = (containers[action.container].resources.requests or {}) \
            if containers[action.container].resources else {}
        want = action.requests
        requests: dict[str, str] = {}
        if want.cpu_milli and cpu_milli(current.get("cpu", "0")) != want.cpu_milli:
            requests["cpu"] = f"{want.cpu_milli}m"
        if want.memory_mib and memory_mib(current.get("memory", "0")) != want.memory_mib:
            requests["memory"] = f"{want.memory_mib}Mi"
        annotations = dict(obj.spec.template.metadata.annotations or {}) \
            if obj.spec.template.metadata else {}
        new_annotations: dict[str, str] = {}
        if 0 < want.gpu_milli < 1000 and ANNOTATION_GPU_MILLI in annotations \
                and annotations[ANNOTATION_GPU_MILLI] != str(want.gpu_milli):
            new_annotations[ANNOTATION_GPU_MILLI] = str(want.gpu_milli)
        if want.gpu_memory_mib and ANNOTATION_GPU_MEMORY in annotations \
                and annotations[ANNOTATION_GPU_MEMORY] != str(want.gpu_memory_mib):
            new_annotations[ANNOTATION_GPU_MEMORY] = str(want.gpu_memory_mib)
        if not requests and not new_annotations:
            return Outcome(action, "done", "requests already at the target")
        template: dict[str, Any] = {}
        if requests:
            limits = containers[action.container].resources.limits or {} \
                if containers[action.container].resources else {}
            for res, value in requests.items():  # never leave a request above its limit
                if res in limits and _amount(res, limits[res]) < _amount(res, value):
                    return Outcome(action, "refused",
                                   f"{res} request {value} would exceed the limit {limits[res]}")
            template["spec"] = {"containers": [{"name": action.container,
                                                "resources": {"requests": requests}}]}
        if new_annotations:
            template["metadata"] = {"annotations": new_annotations}
        patch(name, namespace, {"spec": {"template": template}},
              _content_type="application/strategic-merge-patch+json")
        changed = ", ".join(f"{k}={v}" for k, v in {**requests, **new_annotations}.items())
        return Outcome(action, "done", f"patched {kind} {namespace}/{name}: {changed}")


class ConfigMapLedger:
    """An :class:`EvictionLedger` persisted in a ConfigMap, so the hourly budget and the
    never-evict-twice rule survive operator restarts.

    The ConfigMap ``data["evictions"]`` holds a JSON list of ``[time, pod]`` pairs; writes use
    the ConfigMap's ``resourceVersion`` (optimistic concurrency), retried on 409.
    """

    def __init__(self, api_client: client.ApiClient, namespace: str,
                 name: str = "cohabit-evictions", keep_s: float = 7200.0) -> None:
        self.core = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.name = name
        self.keep_s = keep_s

    def _load(self) -> tuple[list[tuple[float, str]], Any]:
        try:
            cm = self.core.read_namespaced_config_map(self.name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return [], None
            raise
        raw = (cm.data or {}).get("evictions", "[]")
        try:
            events = [(float(t), str(p)) for t, p in json.loads(raw)]
        except (ValueError, TypeError) as exc:
            raise ValueError(f"ConfigMap {self.namespace}/{self.name} data.evictions is not a "
                             f"JSON list of [time, pod] pairs: {exc}") from exc
        return events, cm

    def recent(self, now: float, window_s: float = 3600.0) -> list[tuple[float, str]]:
        events, _ = self._load()
        return [(t, p) for t, p in events if now - window_s < t <= now]

    def record(self, when: float, pod: str) -> None:
        for _ in range(5):
            events, cm = self._load()
            events = [(t, p) for t, p in events if t > when - self.keep_s] + [(when, pod)]
            data = {"evictions": json.dumps(events)}
            try:
                if cm is None:
                    self.core.create_namespaced_config_map(
                        self.namespace,
                        client.V1ConfigMap(metadata=client.V1ObjectMeta(name=self.name),
                                           data=data))
                else:
                    cm.data = data
                    self.core.replace_namespaced_config_map(self.name, self.namespace, cm)
                return
            except ApiException as exc:
                if exc.status != 409:
                    raise
        raise RuntimeError(f"could not record eviction of {pod} in ConfigMap "
                           f"{self.namespace}/{self.name} after 5 conflicts")


def _split(key: str) -> tuple[str, str]:
    namespace, sep, name = key.partition("/")
    if not sep or not name:
        raise ValueError(f"pod key {key!r} is not namespace/name")
    return namespace, name


def _subject(action: Action) -> str:
    if isinstance(action, Resize):
        return f"{action.workload}/{action.container}"
    return action.pod


def _amount(resource: str, value: str) -> int:
    return cpu_milli(value) if resource == "cpu" else memory_mib(value)


def _reason(exc: ApiException) -> str:
    try:
        body: Mapping[str, Any] = json.loads(exc.body or "{}")
        return str(body.get("message") or exc.reason)
    except ValueError:
        return str(exc.reason)
