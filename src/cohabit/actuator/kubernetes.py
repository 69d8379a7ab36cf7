"""The Kubernetes actuator: the only code in cohabit that binds, evicts or patches.

* ``Bind`` -> ``POST pods/{name}/binding`` (the pod's binding subresource, as kube-scheduler
  does; RBAC ``pods/binding: create``). GPU indices ride on the Binding's annotations
  (``cohabit.io/gpu-indices``), which the
  API server copies onto the pod atomically with ``spec.nodeName``.
* ``Evict`` -> ``POST pods/{name}/eviction`` with a ``policy/v1`` Eviction, or
  ``policy/v1beta1`` when the server does not serve ``policy/v1`` (Kubernetes < 1.22).
  The API server enforces PodDisruptionBudgets: HTTP 429 is a normal answer and becomes
  status ``"refused"``. Dry-run, the hourly budget and per-workload unavailability are checked
  before the call. The eviction carries the pod's UID as a precondition.
* ``Resize`` -> **in place** when the API server serves the ``pods/resize`` subresource
  (in-place pod resize: beta in Kubernetes 1.33, GA in 1.35; found by API discovery of the
  core group, cached): a strategic-merge ``PATCH pods/{name}/resize`` of each running pod of
  the target, the container's requests (and its limits where they equal the requests, so a
  Guaranteed pod stays Guaranteed), without a restart; the owner's template is left alone
  (changing it would roll the pods, the restart this avoids). Otherwise, as before, a
  strategic-merge patch of the target's pod template container requests
  (Deployment/StatefulSet; a Job's template is immutable, so a Job resize is ``"refused"``),
  which restarts the pods on the rollout. :meth:`KubernetesActuator.resize_method` says which.

Idempotency (restarts must never double-act): a ``Bind`` of a pod that already has a node is
not sent again (and a 409 from a racing bind is read back); an ``Evict`` of a pod that is
gone or already terminating is ``"skipped"``; a ``Resize`` equal to the current requests is
``"done"`` without a patch.

The eviction budget is write-ahead (:mod:`cohabit.actuator.base`): one eviction is

1. **reserve** -- a ``reserved`` entry written to the ledger ConfigMap with the
   ConfigMap's ``resourceVersion`` (optimistic concurrency: a concurrent writer makes it 409
   and the check is redone on a fresh read). A failed reservation evicts nothing.
2. **evict** -- ``POST pods/{name}/eviction``.
3. **confirm** (``done``) or **release** (the server said no: 429, 404, 409, 403, ...). When
   the answer is lost (timeout, connection reset, 5xx), the reservation stays and counts
   against the budget until a later reservation checks the pod (after ``ledger_grace_s``):
   gone, terminating or replaced means ``done``; still there means released.

Every API call carries ``_request_timeout``; API and connection errors become ``"failed"``
outcomes naming the step, never exceptions out of :meth:`KubernetesActuator.apply`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from cohabit.actuator.base import (
    EvictionLedger,
    EvictionLimits,
    LedgerEntry,
    LedgerError,
    LedgerRefusal,
    MemoryLedger,
    Resolver,
    admit,
    kept_entries,
    limits_refusal,
    new_entry,
    settle_entries,
)
from cohabit.config.quantity import cpu_milli, memory_mib
from cohabit.model import Action, Bind, Evict, Outcome, OutcomeStatus, Resize

__all__ = [
    "ANNOTATION_GPU_INDICES",
    "ANNOTATION_GPU_MILLI",
    "API_ERRORS",
    "CONNECTION_ERRORS",
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

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (urllib3.exceptions.HTTPError, OSError)
"""Errors of the transport under the kubernetes client: urllib3's ``MaxRetryError``,
``ReadTimeoutError``, ``ProtocolError``... and socket/TLS ``OSError`` s."""

API_ERRORS: tuple[type[BaseException], ...] = (ApiException, *CONNECTION_ERRORS)
"""An error answer of the API server or an error of the transport under it."""
_API_OR_LEDGER_ERRORS: tuple[type[BaseException], ...] = (*API_ERRORS, LedgerError)
_API_OR_VALUE_ERRORS: tuple[type[BaseException], ...] = (*API_ERRORS, ValueError)
_TRANSPORT_VALUE_OR_LEDGER_ERRORS: tuple[type[BaseException], ...] = (
    *CONNECTION_ERRORS, ValueError, LedgerError)

DEFINITE_REJECTIONS = frozenset({400, 401, 403, 404, 405, 409, 415, 422, 429})
"""HTTP statuses by which the API server says it did not carry a request out (other errors,
5xx and lost answers, leave the outcome unknown)."""

Timeout = float | tuple[float, float]
"""``_request_timeout`` of the kubernetes client: seconds, or ``(connect, read)``."""


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
        request_timeout: ``_request_timeout`` of every API call, seconds (or
            ``(connect, read)``).
        ledger_grace_s: age in seconds after which a reservation with unknown outcome is
            settled by checking its pod (younger ones stay counted: the eviction may still be
            in flight at the server).
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
        request_timeout: Timeout = 10.0,
        ledger_grace_s: float = 300.0,
    ) -> None:
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.apis = client.ApisApi(api_client)
        self.limits = limits or EvictionLimits()
        self.ledger = ledger or MemoryLedger()
        self.resolve_target = resolve_target or (lambda _key: None)
        self.clock = clock
        self._eviction_version: str | None = None
        self._in_place: bool | None = None
        self.verify_binds = verify_binds
        self.bind_concurrency = max(1, bind_concurrency)
        self.request_timeout = request_timeout
        self.ledger_grace_s = ledger_grace_s

    # -- the protocol -----------------------------------------------------------------------
    def apply(self, actions: Sequence[Action], limits: EvictionLimits | None = None
              ) -> list[Outcome]:
        """One :class:`~cohabit.model.Outcome` per action, in order; never raises for API or
        connection errors (they become ``"failed"`` with the reason).

        Binds run ``bind_concurrency`` at a time; evictions and resizes run one by one, in
        order, after them (the budgets count as they go).

        Args:
            actions: the plan's actions.
            limits: eviction limits for this call (default :attr:`limits`); passing them
                keeps concurrent passes of different policies from sharing one attribute.
        """
        limits = limits or self.limits
        binds = [a for a in actions if isinstance(a, Bind)]
        done: dict[int, Outcome] = {}
        if self.bind_concurrency > 1 and len(binds) > 1:
            with ThreadPoolExecutor(self.bind_concurrency) as pool:
                for action, outcome in zip(binds, pool.map(self._one, binds), strict=True):
                    done[id(action)] = outcome
        return [done[id(a)] if id(a) in done else self._one(a, limits) for a in actions]

    def _one(self, action: Action, limits: EvictionLimits | None = None) -> Outcome:
        """Carry out one action; API and connection errors become ``"failed"``."""
        try:
            if isinstance(action, Bind):
                outcome = self._bind(action)
            elif isinstance(action, Evict):
                outcome = self._evict(action, limits or self.limits)
            elif isinstance(action, Resize):
                outcome = self._resize(action)
            else:
                outcome = Outcome(action, OutcomeStatus.FAILED, f"unknown action {action!r}")
        except ApiException as exc:
            outcome = Outcome(action, OutcomeStatus.FAILED, f"HTTP {exc.status}: {_reason(exc)}")
        except _TRANSPORT_VALUE_OR_LEDGER_ERRORS as exc:
            outcome = Outcome(action, OutcomeStatus.FAILED, _describe(exc))
        log.info("%s %s -> %s %s", type(action).__name__, _subject(action), outcome.status,
                 outcome.message)
        return outcome

    def _read_pod(self, name: str, namespace: str) -> Any:
        """The pod, or None when it no longer exists."""
        try:
            return self.core.read_namespaced_pod(name, namespace,
                                                 _request_timeout=self.request_timeout)
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
                return Outcome(action, OutcomeStatus.SKIPPED, "pod is gone")
            bound = pod.spec.node_name
            if bound:
                if bound == action.node:
                    return Outcome(action, OutcomeStatus.DONE, f"already bound to {bound}")
                return Outcome(action, OutcomeStatus.SKIPPED, f"already bound to {bound}")
            if pod.metadata.deletion_timestamp is not None:
                return Outcome(action, OutcomeStatus.SKIPPED, "pod is terminating")
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
                                                    _preload_content=False,
                                                    _request_timeout=self.request_timeout)
        except ApiException as exc:
            if exc.status == 404:
                return Outcome(action, OutcomeStatus.SKIPPED, "pod is gone")
            if exc.status == 409:  # someone (maybe our previous incarnation) bound it
                again = _spec(self.core.read_namespaced_pod(
                    name, namespace, _request_timeout=self.request_timeout)).node_name
                status = OutcomeStatus.DONE if again == action.node else OutcomeStatus.SKIPPED
                return Outcome(action, status, f"already bound to {again}")
            raise
        return Outcome(action, OutcomeStatus.DONE, f"bound to {action.node}")

    # -- evict ------------------------------------------------------------------------------
    def _evict(self, action: Evict, limits: EvictionLimits) -> Outcome:
        """Reserve a budget slot, evict, then confirm or release (see the module doc)."""
        namespace, name = _split(action.pod)
        refusal = limits_refusal(limits)
        if refusal:
            return Outcome(action, OutcomeStatus.SKIPPED, refusal)
        pod = self._read_pod(name, namespace)
        if pod is None:
            return Outcome(action, OutcomeStatus.SKIPPED, "pod is gone")
        if pod.metadata.deletion_timestamp is not None:
            return Outcome(action, OutcomeStatus.SKIPPED, "pod is already terminating")
        workload = (pod.metadata.labels or {}).get(LABEL_WORKLOAD)
        if workload:
            unavailable = self._unavailable(namespace, workload)
            if unavailable + 1 > limits.max_unavailable:
                return Outcome(action, OutcomeStatus.SKIPPED,
                               f"workload {namespace}/{workload} has {unavailable} unavailable "
                               f"pod(s); max unavailable is {limits.max_unavailable}")
        now = self.clock()
        if limits.dry_run:
            over_budget = admit(self.ledger.entries(), action.pod, now,
                                limits.evictions_per_hour)
            if over_budget:
                return Outcome(action, OutcomeStatus.SKIPPED, over_budget)
            return Outcome(action, OutcomeStatus.DRY_RUN, "would evict (dry-run)")
        uid = str(pod.metadata.uid or "")
        try:
            entry = self.ledger.reserve(action.pod, uid, now,
                                        limit=limits.evictions_per_hour,
                                        resolve=self._resolver(now))
        except LedgerRefusal as exc:
            return Outcome(action, OutcomeStatus.SKIPPED, str(exc))
        except _API_OR_LEDGER_ERRORS as exc:
            return Outcome(action, OutcomeStatus.FAILED,
                           "could not reserve a budget slot in the eviction "
                           f"ledger, nothing evicted: {_describe(exc)}")
        return self._post_eviction(action, name, namespace, uid, entry)

    def _post_eviction(self, action: Evict, name: str, namespace: str, uid: str,
                       entry: LedgerEntry) -> Outcome:
        """Step 2 and 3: the eviction call, then confirm or release ``entry``."""
        version = self._eviction_api_version()
        body: dict[str, Any] = {
            "apiVersion": version,
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        }
        if uid:  # evict this pod, not a namesake created since it was read
            body["deleteOptions"] = {"preconditions": {"uid": uid}}
        try:
            # A dict body goes out as it is (the client's annotation names only V1Eviction,
            # which has no policy/v1beta1 form).
            self.core.create_namespaced_pod_eviction(name, namespace,
                                                     body,  # type: ignore[arg-type]
                                                     _preload_content=False,
                                                     _request_timeout=self.request_timeout)
        except ApiException as exc:
            if exc.status in DEFINITE_REJECTIONS:
                note = self._settle(entry, "released")
                if exc.status == 429:
                    return Outcome(action, OutcomeStatus.REFUSED, "PodDisruptionBudget refused the "
                                   f"eviction: {_reason(exc)}{note}")
                if exc.status == 404:
                    return Outcome(action, OutcomeStatus.SKIPPED, f"pod is gone{note}")
                if exc.status == 409:
                    return Outcome(action, OutcomeStatus.SKIPPED,
                                   f"pod was replaced (UID precondition): {_reason(exc)}{note}")
                return Outcome(action, OutcomeStatus.FAILED,
                               f"HTTP {exc.status}: {_reason(exc)}{note}")
            return self._unknown(action, name, namespace, entry, _describe(exc))
        except CONNECTION_ERRORS as exc:
            return self._unknown(action, name, namespace, entry, _describe(exc))
        note = self._settle(entry, "done")
        return Outcome(action, OutcomeStatus.DONE, f"evicted through {version}{note}")

    def _unknown(self, action: Evict, name: str, namespace: str, entry: LedgerEntry,
                 error: str) -> Outcome:
        """The eviction's answer was lost: look at the pod. Evicted -> ``done`` (confirmed);
        otherwise ``failed`` and the reservation stays (the server may still carry the
        request out), settled by a later check after :attr:`ledger_grace_s`."""
        try:
            pod = self._read_pod(name, namespace)
        except API_ERRORS as exc:
            return Outcome(action, OutcomeStatus.FAILED,
                           f"eviction outcome unknown ({error}); the pod "
                           f"could not be read ({_describe(exc)}): its budget slot stays "
                           "reserved until the pod is checked")
        if _evicted(pod, entry.uid):
            note = self._settle(entry, "done")
            return Outcome(action, OutcomeStatus.DONE, "evicted (the API answer was lost: "
                           f"{error}; the pod is terminating or gone){note}")
        return Outcome(action, OutcomeStatus.FAILED,
                       f"eviction outcome unknown ({error}); the pod is "
                       "still there: its budget slot stays reserved until the pod is checked")

    def _settle(self, entry: LedgerEntry, result: str) -> str:
        """Confirm or release ``entry``; ``""`` or a note saying the ledger was not updated
        (the reservation then keeps counting until a later check settles it)."""
        try:
            self.ledger.settle(entry.id, result)
            return ""
        except _API_OR_LEDGER_ERRORS as exc:
            log.warning("eviction ledger: could not mark %s %s: %s", entry.pod, result,
                        _describe(exc))
            return (f" (the ledger was not updated to {result!r}: {_describe(exc)}; the "
                    "reservation keeps counting until the pod is checked)")

    def settle_ledger(self, now: float | None = None) -> list[tuple[LedgerEntry, str]]:
        """Settle every reservation older than :attr:`ledger_grace_s` whose pod can be read
        (evicted -> ``done``, still there -> released); returns what was settled. Evictions
        call this implicitly (inside their reservation); this runs it on its own, e.g. after
        an outage, so the ledger shows every eviction that happened as ``done``.

        Raises:
            LedgerError, kubernetes.client.exceptions.ApiException: the ledger could not be
                read or written (connection errors propagate as urllib3/OS errors).
        """
        now = self.clock() if now is None else now
        resolve = self._resolver(now)
        settled = []
        for entry in self.ledger.entries():
            if entry.state != "reserved":
                continue
            result = resolve(entry)
            if result is not None:
                self.ledger.settle(entry.id, result)
                settled.append((entry, result))
        return settled

    def _resolver(self, now: float) -> Resolver:
        """Settles reservations older than :attr:`ledger_grace_s` by reading their pod."""
        cache: dict[str, str | None] = {}

        def resolve(entry: LedgerEntry) -> str | None:
            if now - entry.time < self.ledger_grace_s:
                return None
            if entry.id not in cache:
                cache[entry.id] = self._check(entry)
            return cache[entry.id]

        return resolve

    def _check(self, entry: LedgerEntry) -> str | None:
        try:
            namespace, name = _split(entry.pod)
            pod = self._read_pod(name, namespace)
        except _API_OR_VALUE_ERRORS as exc:
            log.info("eviction ledger: %s stays reserved (%s)", entry.pod, _describe(exc))
            return None
        result = "done" if _evicted(pod, entry.uid) else "released"
        log.info("eviction ledger: reservation of %s at %.0f settled %s by checking the pod "
                 "(an earlier eviction's outcome was unknown)", entry.pod, entry.time, result)
        return result

    def _unavailable(self, namespace: str, workload: str) -> int:
        selector = f"{LABEL_WORKLOAD}={workload}"
        pods = self.core.list_namespaced_pod(namespace, label_selector=selector,
                                             _request_timeout=self.request_timeout)
        count = 0
        for pod in pods.items:
            if (_meta(pod).deletion_timestamp is not None or not _spec(pod).node_name
                    or (pod.status and pod.status.phase not in ("Running", "Succeeded"))):
                count += 1
        return count

    def _eviction_api_version(self) -> str:
        """``policy/v1`` when the server serves it, else ``policy/v1beta1`` (cached)."""
        if self._eviction_version is None:
            version = "policy/v1beta1"
            try:
                groups = self.apis.get_api_versions(_request_timeout=self.request_timeout)
                for group in groups.groups:
                    if group.name == "policy" and any(v.version == "v1" for v in group.versions):
                        version = "policy/v1"
            except API_ERRORS as exc:
                log.warning("API discovery failed (%s); evicting through policy/v1beta1 "
                            "this time", _describe(exc))
                return version  # not cached: asked again next time
            self._eviction_version = version
        return self._eviction_version

    # -- resize -----------------------------------------------------------------------------
    def in_place_resize(self) -> bool:
        """True when the API server serves ``pods/resize`` (discovery of ``/api/v1``, cached;
        asked again after a failed discovery)."""
        if self._in_place is None:
            try:
                listing = self.core.get_api_resources(_request_timeout=self.request_timeout)
            except API_ERRORS as exc:
                log.warning("API discovery of /api/v1 failed (%s); resizing through the "
                            "owner this time", _describe(exc))
                return False
            self._in_place = any(r.name == "pods/resize" for r in listing.resources or [])
        return self._in_place

    def resize_method(self, kind: str = "Deployment") -> str:
        """How a resize of a ``kind`` target is carried out, for status."""
        if self.in_place_resize():
            return "in place (pods/resize): no restart"
        return f"through the {kind}'s pod template (the API server has no pods/resize): " \
            "pods restart on the rollout"

    def _resize(self, action: Resize) -> Outcome:
        target = self.resolve_target(action.workload)
        if target is None:
            return Outcome(action, OutcomeStatus.FAILED,
                           f"no target known for workload {action.workload}")
        namespace, kind, name = target
        if kind == "Job":
            return Outcome(action, OutcomeStatus.REFUSED,
                           "a Job's pod template is immutable; recreate it")
        if kind not in ("Deployment", "StatefulSet"):
            return Outcome(action, OutcomeStatus.FAILED, f"cannot resize a {kind}")
        suffix = "deployment" if kind == "Deployment" else "stateful_set"
        read = getattr(self.apps, f"read_namespaced_{suffix}")
        patch = getattr(self.apps, f"patch_namespaced_{suffix}")
        obj = read(name, namespace, _request_timeout=self.request_timeout)
        containers = {c.name: c for c in obj.spec.template.spec.containers}
        if action.container not in containers:
            return Outcome(action, OutcomeStatus.FAILED,
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
        if not new_annotations and (want.cpu_milli or want.memory_mib) \
                and self.in_place_resize():
            # The pods, not the template, hold what is in force after an in-place resize.
            return self._resize_in_place(action, obj, kind)
        if not requests and not new_annotations:
            return Outcome(action, OutcomeStatus.DONE, "requests already at the target")
        template: dict[str, Any] = {}
        if requests:
            limits = containers[action.container].resources.limits or {} \
                if containers[action.container].resources else {}
            for res, value in requests.items():  # never leave a request above its limit
                if res in limits and _amount(res, limits[res]) < _amount(res, value):
                    return Outcome(action, OutcomeStatus.REFUSED,
                                   f"{res} request {value} would exceed the limit {limits[res]}")
            template["spec"] = {"containers": [{"name": action.container,
                                                "resources": {"requests": requests}}]}
        if new_annotations:
            template["metadata"] = {"annotations": new_annotations}
        patch(name, namespace, {"spec": {"template": template}},
              _content_type="application/strategic-merge-patch+json",
              _request_timeout=self.request_timeout)
        changed = ", ".join(f"{k}={v}" for k, v in {**requests, **new_annotations}.items())
        return Outcome(action, OutcomeStatus.DONE, f"patched {kind} {namespace}/{name}: {changed}")


    def _resize_in_place(self, action: Resize, owner: Any, kind: str) -> Outcome:
        """``PATCH pods/{name}/resize`` of every running pod of ``owner`` whose container
        differs from the target (requests; limits too where they equal the requests)."""
        namespace, name = owner.metadata.namespace, owner.metadata.name
        labels = (owner.spec.selector.match_labels or {}) if owner.spec.selector else {}
        if not labels:
            return Outcome(action, OutcomeStatus.FAILED,
                           f"{kind} {namespace}/{name} has no matchLabels "
                           "selector to find its pods")
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        pods = self.core.list_namespaced_pod(namespace, label_selector=selector,
                                             _request_timeout=self.request_timeout).items
        want = action.requests
        patched, same = [], 0
        for pod in pods:
            meta = _meta(pod)
            if meta.deletion_timestamp or not _spec(pod).node_name:
                continue
            body = _pod_resize_body(pod, action.container, want)
            if body is None:
                same += 1
                continue
            if isinstance(body, str):
                return Outcome(action, OutcomeStatus.REFUSED,
                               f"pod {namespace}/{meta.name}: {body}")
            self.core.patch_namespaced_pod_resize(
                str(meta.name), namespace, body,
                _content_type="application/strategic-merge-patch+json",
                _request_timeout=self.request_timeout)
            patched.append(str(meta.name))
        if not patched:
            return Outcome(action, OutcomeStatus.DONE,
                           f"{same} pod(s) of {kind} {namespace}/{name} "
                           "already at the target")
        return Outcome(action, OutcomeStatus.DONE, f"resized in place (pods/resize), no restart: "
                       f"{', '.join(patched)} -> cpu={want.cpu_milli}m, "
                       f"memory={want.memory_mib}Mi; the {kind}'s template keeps its "
                       "requests (a template change would restart the pods)")


def _pod_resize_body(pod: Any, container: str, want: Any) -> dict[str, Any] | str | None:
    """The ``pods/resize`` patch for ``container`` of ``pod``: None when already at
    ``want``, a reason string when it cannot be resized so."""
    spec = next((c for c in pod.spec.containers if c.name == container), None)
    if spec is None:
        return f"no container {container!r}"
    res = spec.resources
    requests = dict((res.requests or {}) if res else {})
    limits = dict((res.limits or {}) if res else {})
    new_req: dict[str, str] = {}
    new_lim: dict[str, str] = {}
    for name, value, amount in (("cpu", f"{want.cpu_milli}m", want.cpu_milli),
                                ("memory", f"{want.memory_mib}Mi", want.memory_mib)):
        if not amount or (name in requests and _amount(name, requests[name]) == amount):
            continue
        new_req[name] = value
        if name in limits:
            if name in requests and _amount(name, limits[name]) == _amount(name,
                                                                            requests[name]):
                new_lim[name] = value  # keep requests == limits (the QoS class)
            elif _amount(name, limits[name]) < amount:
                return f"{name} request {value} would exceed the limit {limits[name]}"
    if not new_req:
        return None
    resources: dict[str, Any] = {"requests": new_req}
    if new_lim:
        resources["limits"] = new_lim
    return {"spec": {"containers": [{"name": container, "resources": resources}]}}


class ConfigMapLedger:
    """An :class:`~cohabit.actuator.base.EvictionLedger` persisted in a ConfigMap, so the
    hourly budget and the never-evict-twice rule survive operator restarts and crashes.

    ``data["evictions"]`` holds a JSON list of entries ``{"id", "pod", "uid", "time",
    "state"}`` (:class:`~cohabit.actuator.base.LedgerEntry`; a legacy ``[time, pod]`` pair
    reads as ``done``). Every write is a replace carrying the ``resourceVersion`` read just
    before (or a create when the ConfigMap does not exist), so two writers never both win:
    the loser gets 409 and redoes its check on a fresh read (up to ``conflict_retries``).

    Args:
        api_client: a configured ``ApiClient``.
        namespace, name: where the ConfigMap lives.
        keep_s: entries older than this are pruned on write, seconds.
        request_timeout: ``_request_timeout`` of every call.
        conflict_retries: attempts before a write gives up with :class:`LedgerError`.
    """

    def __init__(self, api_client: client.ApiClient, namespace: str,
                 name: str = "cohabit-evictions", keep_s: float = 7200.0,
                 request_timeout: Timeout = 10.0, conflict_retries: int = 5) -> None:
        self.core = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.name = name
        self.keep_s = keep_s
        self.request_timeout = request_timeout
        self.conflict_retries = conflict_retries

    def _load(self) -> tuple[list[LedgerEntry], Any]:
        try:
            cm = self.core.read_namespaced_config_map(self.name, self.namespace,
                                                      _request_timeout=self.request_timeout)
        except ApiException as exc:
            if exc.status == 404:
                return [], None
            raise
        raw = (cm.data or {}).get("evictions", "[]")
        where = f"ConfigMap {self.namespace}/{self.name} data.evictions"
        try:
            items = json.loads(raw)
        except ValueError as exc:
            raise LedgerError(f"{where} is not JSON: {exc}") from exc
        if not isinstance(items, list):
            raise LedgerError(f"{where} is not a JSON list of entries")
        try:
            return [LedgerEntry.from_json(item, i) for i, item in enumerate(items)], cm
        except LedgerError as exc:
            raise LedgerError(f"{where}: {exc}") from exc

    def _write(self, entries: list[LedgerEntry], cm: Any) -> None:
        """Create or replace (with the read ``resourceVersion``); ApiException 409 on a race."""
        data = {"evictions": json.dumps([e.to_json() for e in entries])}
        if cm is None:
            self.core.create_namespaced_config_map(
                self.namespace,
                client.V1ConfigMap(metadata=client.V1ObjectMeta(name=self.name), data=data),
                _request_timeout=self.request_timeout)
        else:
            cm.data = data
            self.core.replace_namespaced_config_map(self.name, self.namespace, cm,
                                                    _request_timeout=self.request_timeout)

    def entries(self) -> list[LedgerEntry]:
        return self._load()[0]

    def recent(self, now: float, window_s: float = 3600.0) -> list[tuple[float, str]]:
        """``(time, pod)`` of the entries counted in the window before ``now``."""
        return [(e.time, e.pod) for e in self.entries() if e.time > now - window_s]

    def reserve(self, pod: str, uid: str, now: float, *, limit: int,
                window_s: float = 3600.0, resolve: Resolver | None = None) -> LedgerEntry:
        for _ in range(self.conflict_retries):
            entries, cm = self._load()
            kept, results = kept_entries(entries, now, self.keep_s, resolve)
            refusal = admit(kept, pod, now, limit, window_s)
            if refusal is not None:
                if results:  # keep what the checks settled (best effort)
                    try:
                        self._write(kept, cm)
                    except API_ERRORS as exc:
                        log.info("eviction ledger: settled entries not written: %s",
                                 _describe(exc))
                raise LedgerRefusal(refusal)
            entry = new_entry(pod, uid, now)
            try:
                self._write([*kept, entry], cm)
            except ApiException as exc:
                if exc.status == 409:
                    continue
                raise
            return entry
        raise LedgerError(f"ConfigMap {self.namespace}/{self.name}: {self.conflict_retries} "
                          "write conflicts in a row, no budget slot reserved")

    def settle(self, entry_id: str, result: str) -> None:
        for _ in range(self.conflict_retries):
            entries, cm = self._load()
            if cm is None or not any(e.id == entry_id for e in entries):
                return
            try:
                self._write(settle_entries(entries, {entry_id: result}), cm)
            except ApiException as exc:
                if exc.status == 409:
                    continue
                raise
            return
        raise LedgerError(f"ConfigMap {self.namespace}/{self.name}: {self.conflict_retries} "
                          f"write conflicts in a row, entry {entry_id} not marked {result}")


def _meta(pod: client.V1Pod) -> client.V1ObjectMeta:
    """A served pod's metadata (the API server always sends it).

    Raises:
        ValueError: the pod has none.
    """
    if pod.metadata is None:
        raise ValueError("the API server sent a pod without metadata")
    return pod.metadata


def _spec(pod: client.V1Pod) -> client.V1PodSpec:
    """A served pod's spec (the API server always sends it).

    Raises:
        ValueError: the pod has none.
    """
    if pod.spec is None:
        raise ValueError(f"the API server sent pod {_meta(pod).name} without a spec")
    return pod.spec


def _evicted(pod: Any, uid: str) -> bool:
    """Whether the pod read back proves an eviction: gone, terminating, or replaced."""
    if pod is None or pod.metadata.deletion_timestamp is not None:
        return True
    return bool(uid) and str(pod.metadata.uid) != uid


def _describe(exc: BaseException) -> str:
    """A one-line reason for an API or connection error."""
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status}: {_reason(exc)}"
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        return f"{type(exc.reason).__name__}: {exc.reason}"
    return f"{type(exc).__name__}: {exc}"


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
