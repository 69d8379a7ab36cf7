"""A kubelet (and disruption-controller) stand-in for an API server with no nodes behind it.

:class:`KubeletStandIn` runs background threads against the API:

- **pods**: every pod bound to a node (``spec.nodeName`` set, by the binding subresource or
  at creation) that is still ``Pending`` is marked ``Running`` with ``PodScheduled``,
  ``Initialized``, ``ContainersReady`` and ``Ready`` true and one running, ready container
  status per container, ``start_delay`` seconds after it was seen bound.
- **deletions**: a bound pod being deleted gracefully (``metadata.deletionTimestamp`` set, e.g.
  after an eviction) is removed for good (``gracePeriodSeconds=0`` with a UID precondition)
  after ``min(deletionGracePeriodSeconds, max_grace_seconds)`` seconds, as the kubelet does
  once the containers have stopped. Unbound pods the API server deletes at once by itself.
- **PodDisruptionBudget status** (the disruption controller's job, which ``kube-eviction``
  depends on): every ``pdb_interval`` seconds each PDB's ``currentHealthy``,
  ``desiredHealthy``, ``expectedPods``, ``disruptionsAllowed`` and ``observedGeneration`` are
  recomputed from the selected pods; entries of ``disruptedPods`` are kept until the pod is
  deleting or gone (or 2 minutes passed). Simplification: ``expectedPods`` is the number of
  selected pods (the real controller asks the owning controller's scale for
  ``maxUnavailable`` and percentages). Semantics follow
  kubernetes/pkg/controller/disruption/disruption.go (1.20).

It only talks to the API (loopback); nothing is executed. Counters (``started``,
``finalized``, ``pdb_updates``) and ``errors`` help tests assert what it did.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from kubernetes import client, watch
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from . import rest

log = logging.getLogger("cohabit.tests.kubelet")

DISRUPTED_POD_TIMEOUT_S = 120.0


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_is_ready(pod: dict[str, Any]) -> bool:
    """True when a pod (JSON dict) has condition ``Ready=True`` and is not deleting."""
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return False
    for cond in pod.get("status", {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str],
                     empty_matches_all: bool) -> bool:
    """Evaluate a ``metav1.LabelSelector`` (JSON dict) against ``labels``.

    Supports ``matchLabels`` and ``matchExpressions`` with ``In``, ``NotIn``, ``Exists``,
    ``DoesNotExist``. An empty/absent selector matches everything if ``empty_matches_all``
    (``policy/v1``) and nothing otherwise (``policy/v1beta1``).
    Raises ``ValueError`` for an unknown operator.
    """
    if not selector or (not selector.get("matchLabels") and not selector.get("matchExpressions")):
        return empty_matches_all
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in {"In", "NotIn", "Exists", "DoesNotExist"}:
            raise ValueError(f"label selector operator {op!r} is not supported")
    return True


def _scaled(value: int | str, total: int, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%"):
        return int(text)
    frac = int(text[:-1]) * total / 100.0
    return math.ceil(frac) if round_up else math.floor(frac)


def pdb_status(pdb: dict[str, Any], pods: list[dict[str, Any]], now: float,
               empty_matches_all: bool) -> dict[str, Any]:
    """The status a disruption controller would write for ``pdb`` given the namespace's
    ``pods`` (JSON dicts). ``now`` is a UNIX time in seconds (for ``disruptedPods`` expiry)."""
    spec = pdb.get("spec", {})
    selected = [p for p in pods
                if selector_matches(spec.get("selector"), p["metadata"].get("labels") or {},
                                    empty_matches_all)]
    live = {p["metadata"]["name"] for p in selected if not p["metadata"].get("deletionTimestamp")}
    disrupted = {}
    for name, stamp in ((pdb.get("status") or {}).get("disruptedPods") or {}).items():
        when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        if name in live and now - when.timestamp() < DISRUPTED_POD_TIMEOUT_S:
            disrupted[name] = stamp
    healthy = sum(1 for p in selected if pod_is_ready(p) and p["metadata"]["name"] not in disrupted)
    expected = len(selected)
    if spec.get("maxUnavailable") is not None:
        desired = max(0, expected - _scaled(spec["maxUnavailable"], expected, True))
    else:
        desired = _scaled(spec.get("minAvailable", 1), expected, True)
    return {
        "observedGeneration": pdb["metadata"].get("generation", 0),
        "disruptedPods": disrupted or None,
        "disruptionsAllowed": max(0, healthy - desired),
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
    }


class KubeletStandIn:
    """Background threads that play kubelet and disruption controller (see module docstring).

    Args:
        api_factory: returns a new ``ApiClient`` (one per thread; closed at ``stop()``).
        start_delay: seconds between seeing a pod bound and marking it Running.
        max_grace_seconds: cap on the grace period honoured before finishing a deletion.
        pdb_interval: seconds between PDB status passes; ``None`` disables the PDB loop.
        node_filter: if given, only pods bound to nodes for which it returns True are handled.

    Use as a context manager or call ``start()``/``stop()``.
    """

    def __init__(
        self,
        api_factory: Callable[[], ApiClient],
        start_delay: float = 0.0,
        max_grace_seconds: float = 1.0,
        pdb_interval: float | None = 0.5,
        node_filter: Callable[[str], bool] | None = None,
    ):
        self._api_factory = api_factory
        self.start_delay = start_delay
        self.max_grace_seconds = max_grace_seconds
        self.pdb_interval = pdb_interval
        self.node_filter = node_filter
        self._stop = threading.Event()
        self._lock = threading.Condition()
        self._queue: list[tuple[float, int, str, str, str, str]] = []
        self._seq = itertools.count()
        self._scheduled: set[tuple[str, str]] = set()  # (action, uid)
        self._pods: dict[tuple[str, str], dict[str, Any]] = {}
        self._synced = threading.Event()
        self._threads: list[threading.Thread] = []
        self._clients: list[ApiClient] = []
        self.started = 0
        self.finalized = 0
        self.pdb_updates = 0
        self.errors: list[str] = []

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> KubeletStandIn:
        """Start the threads and wait (up to 30 s) for the first pod list."""
        loops = [self._watch_pods, self._work]
        if self.pdb_interval is not None:
            loops.append(self._pdb_loop)
        for loop in loops:
            api = self._api_factory()
            self._clients.append(api)
            thread = threading.Thread(target=loop, args=(api,), name=f"kubelet-{loop.__name__}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        if not self._synced.wait(30):
            self.stop()
            raise TimeoutError(f"kubelet stand-in: no pod list after 30 s ({self.errors[-3:]})")
        return self

    def stop(self) -> None:
        """Stop the threads (each ends within ~2 s) and close their API clients."""
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        for thread in self._threads:
            thread.join(timeout=10)
        for api in self._clients:
            api.close()
        self._threads.clear()
        self._clients.clear()

    def __enter__(self) -> KubeletStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def pods(self) -> list[dict[str, Any]]:
        """A snapshot of the pods the stand-in currently knows (JSON dicts)."""
        with self._lock:
            return list(self._pods.values())

    # -- pod watch ------------------------------------------------------------------------
    def _watch_pods(self, api: ApiClient) -> None:
        core = client.CoreV1Api(api)
        resource_version = None
        while not self._stop.is_set():
            try:
                if resource_version is None:
                    listing = rest.request(api, "GET", "/api/v1/pods")
                    with self._lock:
                        self._pods = {}
                    for pod in listing.get("items", []):
                        self._on_pod("ADDED", pod)
                    resource_version = listing["metadata"]["resourceVersion"]
                    self._synced.set()
                w = watch.Watch()
                for event in w.stream(core.list_pod_for_all_namespaces, deserialize=False,
                                      resource_version=resource_version, timeout_seconds=2,
                                      allow_watch_bookmarks=True):
                    kind, obj = event["type"], event["object"]
                    if kind == "ERROR":
                        if obj.get("code") == 410:  # expired: list again
                            resource_version = None
                            break
                        raise ApiException(status=obj.get("code"), reason=obj.get("message"))
                    resource_version = obj["metadata"]["resourceVersion"]
                    if kind != "BOOKMARK":
                        self._on_pod(kind, obj)
                    if self._stop.is_set():
                        w.stop()
                        break
            except ApiException as exc:
                if exc.status == 410:
                    resource_version = None
                    continue
                self._error(f"pod watch: {exc.status} {exc.reason}")
                self._stop.wait(0.5)
            except Exception as exc:  # noqa: BLE001 - keep the stand-in alive; reported in errors
                self._error(f"pod watch: {exc!r}")
                self._stop.wait(0.5)

    def _on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        meta, spec = pod["metadata"], pod.get("spec", {})
        key = (meta["namespace"], meta["name"])
        with self._lock:
            if kind == "DELETED":
                self._pods.pop(key, None)
                return
            self._pods[key] = pod
        node = spec.get("nodeName")
        if not node or (self.node_filter and not self.node_filter(node)):
            return
        uid = meta["uid"]
        if meta.get("deletionTimestamp"):
            grace = meta.get("deletionGracePeriodSeconds") or 0
            self._schedule(min(float(grace), self.max_grace_seconds), "finalize", key, uid)
        elif pod.get("status", {}).get("phase", "Pending") == "Pending":
            self._schedule(self.start_delay, "start", key, uid)

    def _schedule(self, delay: float, action: str, key: tuple[str, str], uid: str) -> None:
        with self._lock:
            if (action, uid) in self._scheduled:
                return
            self._scheduled.add((action, uid))
            heapq.heappush(self._queue, (time.monotonic() + delay, next(self._seq), action,
                                         key[0], key[1], uid))
            self._lock.notify_all()

    # -- worker ---------------------------------------------------------------------------
    def _work(self, api: ApiClient) -> None:
        core = client.CoreV1Api(api)
        while not self._stop.is_set():
            with self._lock:
                while not self._stop.is_set() and (
                    not self._queue or self._queue[0][0] > time.monotonic()
                ):
                    wait = self._queue[0][0] - time.monotonic() if self._queue else 1.0
                    self._lock.wait(timeout=max(0.0, min(wait, 1.0)))
                if self._stop.is_set():
                    return
                _, _, action, namespace, name, uid = heapq.heappop(self._queue)
                pod = self._pods.get((namespace, name))
            try:
                if action == "start":
                    self._start_pod(api, namespace, name, uid, pod)
                else:
                    self._finalize_pod(core, namespace, name, uid)
            except ApiException as exc:
                if exc.status not in (404, 409, 422):  # gone, replaced or changed meanwhile
                    self._retry_later(action, uid)
                    self._error(f"{action} {namespace}/{name}: {exc.status} {exc.body}")
            except Exception as exc:  # noqa: BLE001 - keep the stand-in alive; reported in errors
                self._retry_later(action, uid)
                self._error(f"{action} {namespace}/{name}: {exc!r}")

    def _retry_later(self, action: str, uid: str) -> None:
        """Forget a failed action so the pod's next watch event schedules it again."""
        with self._lock:
            self._scheduled.discard((action, uid))

    def _start_pod(self, api: ApiClient, namespace: str, name: str, uid: str,
                   pod: dict[str, Any] | None) -> None:
        if pod is None or pod["metadata"]["uid"] != uid or pod["metadata"].get("deletionTimestamp"):
            return
        now = _now()
        containers = pod.get("spec", {}).get("containers") or []
        conditions = [{"type": t, "status": "True", "lastProbeTime": None,
                       "lastTransitionTime": now}
                      for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]
        status = {
            "phase": "Running",
            "conditions": conditions,
            "startTime": now,
            "containerStatuses": [
                {"name": c["name"], "image": c.get("image", ""), "imageID": "",
                 "containerID": f"standin://{uid[:8]}/{c['name']}", "ready": True,
                 "started": True, "restartCount": 0, "state": {"running": {"startedAt": now}}}
                for c in containers
            ],
        }
        body = {"metadata": {"uid": uid}, "status": status}
        rest.request(api, "PATCH", f"/api/v1/namespaces/{namespace}/pods/{name}/status",
                     body=body, content_type=rest.STRATEGIC_MERGE_PATCH)
        self.started += 1

    def _finalize_pod(self, core: client.CoreV1Api, namespace: str, name: str, uid: str) -> None:
        core.delete_namespaced_pod(
            name, namespace, grace_period_seconds=0,
            body=client.V1DeleteOptions(grace_period_seconds=0,
                                        preconditions=client.V1Preconditions(uid=uid)),
        )
        self.finalized += 1

    # -- PDB status -----------------------------------------------------------------------
    def _pdb_loop(self, api: ApiClient) -> None:
        version = None
        while not self._stop.wait(self.pdb_interval or 0.5):
            try:
                version = version or rest.served_version(api, "policy", ("v1", "v1beta1"))
                if version is None:
                    continue
                listing = rest.request(api, "GET", f"/apis/policy/{version}/poddisruptionbudgets")
                pods = self.pods()
                for pdb in listing.get("items", []):
                    self._update_pdb(api, version, pdb, pods)
            except Exception as exc:  # noqa: BLE001 - keep the stand-in alive; reported in errors
                self._error(f"pdb loop: {exc!r}")

    def _update_pdb(self, api: ApiClient, version: str, pdb: dict[str, Any],
                    pods: list[dict[str, Any]]) -> None:
        meta = pdb["metadata"]
        in_ns = [p for p in pods if p["metadata"]["namespace"] == meta["namespace"]]
        status = pdb_status(pdb, in_ns, time.time(), empty_matches_all=version == "v1")
        old = pdb.get("status") or {}
        if all(old.get(k) == v for k, v in status.items() if v is not None) and (
            bool(old.get("disruptedPods")) == bool(status["disruptedPods"])
        ):
            return
        pdb["status"] = {**old, **{k: v for k, v in status.items() if v is not None}}
        if status["disruptedPods"] is None:
            pdb["status"].pop("disruptedPods", None)
        try:
            rest.request(api, "PUT", f"/apis/policy/{version}/namespaces/{meta['namespace']}"
                         f"/poddisruptionbudgets/{meta['name']}/status", body=pdb)
            self.pdb_updates += 1
        except ApiException as exc:
            if exc.status not in (404, 409):  # conflict: recomputed on the next pass
                raise

    def _error(self, text: str) -> None:
        log.warning("kubelet stand-in: %s", text)
        self.errors.append(text)
        del self.errors[:-50]
