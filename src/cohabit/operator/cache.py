"""A watch-fed cache of Nodes and Pods (client-go's informer, in a thread each): the
scheduler's 2-second passes and the workloads' re-plans read it instead of LISTing the whole
cluster every time.

Each kind is LISTed once (raw JSON, ``_preload_content=False``), then WATCHed from the list's
``resourceVersion`` (server timeout 300 s, bookmarks on); a ``410 Gone`` or a broken stream
relists. Objects are kept trimmed to what cohabit reads (no ``managedFields``, no node image
lists). Binds cohabit made are *assumed* (kube-scheduler's assume cache) until the watch
shows the pod bound, so a pass right after a bind never counts that capacity as free.

The cache is a :class:`~cohabit.telemetry.base.ClusterSource` (``snapshot`` of
:class:`~cohabit.telemetry.kube.JsonClusterSource`, :meth:`ClusterCache.workload_snapshot`)
built by the same converters
(:func:`~cohabit.telemetry.kube.snapshot_from_k8s`,
:func:`~cohabit.telemetry.kube.workload_snapshot_from_k8s`) as the LIST-based
:class:`~cohabit.telemetry.kube.KubeClusterSource`, which answers for it until it has synced.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from cohabit.model import Snapshot
from cohabit.telemetry.kube import (
    ANNOTATION_GPU_INDICES,
    LABEL_WORKLOAD,
    JsonClusterSource,
    KubeClusterSource,
    ProblemLog,
    workload_snapshot_from_k8s,
)

__all__ = ["ClusterCache", "trim_node", "trim_pod"]

log = logging.getLogger(__name__)

WATCH_TIMEOUT_S = 300
"""Server-side timeout of one watch request (it is renewed from the last resourceVersion)."""


def trim_pod(obj: dict[str, Any]) -> dict[str, Any]:
    """The parts of a Pod (JSON) cohabit reads: metadata without ``managedFields``, the
    spec, and ``status.phase``/``qosClass``."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    status = obj.get("status") or {}
    return {"metadata": meta, "spec": obj.get("spec") or {},
            "status": {k: status[k] for k in ("phase", "qosClass") if k in status}}


def trim_node(obj: dict[str, Any]) -> dict[str, Any]:
    """The parts of a Node (JSON) cohabit reads: metadata without ``managedFields``, the
    spec, and ``status.allocatable``/``capacity``/``conditions``."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    status = obj.get("status") or {}
    return {"metadata": meta, "spec": obj.get("spec") or {},
            "status": {k: status[k] for k in ("allocatable", "capacity", "conditions")
                       if k in status}}


def _key(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name')}" if ns else str(meta.get("name"))


class _Informer:
    """LIST then WATCH one kind into a dict, in a thread, until stopped."""

    def __init__(self, kind: str, lister: Callable[..., Any], trim: Callable, cache: ClusterCache,
                 request_timeout_s: float) -> None:
        self.kind = kind
        self.lister = lister
        self.trim = trim
        self.cache = cache
        self.request_timeout_s = request_timeout_s
        self.synced = threading.Event()
        self.resource_version = ""
        self.lists = 0
        self.watches = 0
        self.failures = 0
        self._resp: Any = None
        self._thread = threading.Thread(target=self._run, name=f"cohabit-watch-{kind}",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Interrupt the stream being read: ``HTTPResponse.shutdown()`` (urllib3 >= 2.3)
        shuts the socket down so the blocked read returns; ``close()`` from another thread
        would wait for the reader's lock instead."""
        resp = self._resp
        shutdown = getattr(resp, "shutdown", None)
        if shutdown is not None:
            with contextlib.suppress(Exception):
                shutdown()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)

    def _run(self) -> None:
        backoff = 1.0
        while not self.cache.stopped.is_set():
            try:
                if not self.resource_version:
                    self._list()
                self._watch()
                backoff = 1.0
            except _Gone:
                log.info("watch of %s expired (410 Gone): listing again", self.kind)
                self.resource_version = ""
            except Exception as exc:  # noqa: BLE001 - network, server errors: retry
                if self.cache.stopped.is_set():
                    return
                self.failures += 1
                level = logging.WARNING if self.failures == 1 or backoff >= 30 else logging.INFO
                log.log(level, "watch of %s failed (%s: %s); retrying in %.0f s", self.kind,
                        type(exc).__name__, str(exc)[:200], backoff)
                self.cache.stopped.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                self.resource_version = ""

    def _list(self) -> None:
        resp = self.lister(_preload_content=False, _request_timeout=self.request_timeout_s)
        body = json.loads(resp.data)
        items = {_key(o): self.trim(o) for o in body.get("items") or []}
        self.cache._replace(self.kind, items)
        self.resource_version = (body.get("metadata") or {}).get("resourceVersion", "")
        self.lists += 1
        if not self.synced.is_set():
            log.info("cache of %s synced: %d object(s)", self.kind, len(items))
        self.synced.set()

    def _watch(self) -> None:
        from kubernetes.watch.watch import iter_resp_lines

        self._resp = self.lister(
            watch=True, resource_version=self.resource_version, allow_watch_bookmarks=True,
            timeout_seconds=WATCH_TIMEOUT_S, _preload_content=False,
            _request_timeout=(self.request_timeout_s, WATCH_TIMEOUT_S + 30))
        self.watches += 1
        try:
            for line in self._lines(iter_resp_lines(self._resp)):
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise _Gone()
                    raise RuntimeError(f"watch error: {obj.get('message', obj)}")
                rv = (obj.get("metadata") or {}).get("resourceVersion")
                if rv:
                    self.resource_version = rv
                if kind == "BOOKMARK":
                    continue
                self.cache._apply(self.kind, kind, _key(obj), self.trim(obj))
        finally:
            resp, self._resp = self._resp, None
            with contextlib.suppress(Exception):
                resp.release_conn()

    def _lines(self, lines: Iterator[str]) -> Iterator[str]:
        for line in lines:
            if self.cache.stopped.is_set():
                return
            if line:
                yield line


class _Gone(Exception):
    """The watch's resourceVersion is too old: list again."""


class ClusterCache(JsonClusterSource):
    """Nodes and pods from watches; a ``ClusterSource``. Until both kinds have synced,
    :meth:`workload_snapshot` reads the API (a :class:`KubeClusterSource`); :meth:`snapshot`
    answers from what is cached (the scheduling pass does not run before :attr:`synced`).

    Args:
        api_client: a configured ``kubernetes.client.ApiClient``.
        scheduler_name: pending pods with this ``spec.schedulerName`` are cohabit's.
        namespace: restrict pods to one namespace (``""`` = all).
        request_timeout_s: timeout of a LIST and of connecting a WATCH, seconds.
        on_change: called (from a watch thread) when something changed that may let a
            pending pod of cohabit's fit: such a pod was added or changed, or a pod was
            deleted or a node changed while some wait.

    Attributes:
        stopped: set by :meth:`stop`.
    """

    def __init__(self, api_client: Any, scheduler_name: str = "cohabit", namespace: str = "",
                 request_timeout_s: float = 60.0,
                 on_change: Callable[[], None] | None = None) -> None:
        from kubernetes import client

        core = client.CoreV1Api(api_client)
        self.scheduler_name = scheduler_name
        self.namespace = namespace
        self.on_change = on_change
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._objects: dict[str, dict[str, dict[str, Any]]] = {"nodes": {}, "pods": {}}
        self._by_workload: dict[tuple[str, str], set[str]] = {}
        self._pending: set[str] = set()
        self._assumed: dict[str, tuple[str, tuple[int, ...], float]] = {}
        self.problems = ProblemLog()
        self._api = KubeClusterSource(api_client, scheduler_name, namespace,
                                      request_timeout=request_timeout_s)

        def pods(**kw: Any) -> Any:
            if namespace:
                return core.list_namespaced_pod(namespace, **kw)
            return core.list_pod_for_all_namespaces(**kw)

        self._informers = {
            "nodes": _Informer("nodes", core.list_node, trim_node, self, request_timeout_s),
            "pods": _Informer("pods", pods, trim_pod, self, request_timeout_s),
        }

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start both informers (returns at once; see :attr:`synced`)."""
        for informer in self._informers.values():
            informer.start()

    def stop(self, timeout_s: float = 1.0) -> None:
        """Stop the informers: close their streams and wait at most ``timeout_s`` for the
        threads (daemon threads: a stream stuck in a read ends with the process)."""
        if self.stopped.is_set():
            return
        self.stopped.set()
        for informer in self._informers.values():
            informer.stop()
        deadline = time.monotonic() + timeout_s
        for informer in self._informers.values():
            informer.join(max(0.0, deadline - time.monotonic()))

    @property
    def synced(self) -> bool:
        """Both kinds listed at least once."""
        return all(i.synced.is_set() for i in self._informers.values())

    def wait_synced(self, timeout_s: float) -> bool:
        """Block until :attr:`synced` (at most ``timeout_s``); returns it."""
        deadline = time.monotonic() + timeout_s
        for informer in self._informers.values():
            informer.synced.wait(max(0.0, deadline - time.monotonic()))
        return self.synced

    def stats(self) -> dict[str, Any]:
        """Objects held, lists and watches made per kind (for ``/healthz`` and tests)."""
        with self._lock:
            sizes = {k: len(v) for k, v in self._objects.items()}
        return {k: {"objects": sizes[k], "lists": i.lists, "watches": i.watches,
                    "synced": i.synced.is_set()} for k, i in self._informers.items()}

    # -- updates (watch threads) ------------------------------------------------------------

    def _mine_pending(self, pod: dict[str, Any]) -> bool:
        spec = pod.get("spec") or {}
        return (spec.get("schedulerName") == self.scheduler_name and not spec.get("nodeName")
                and not (pod.get("metadata") or {}).get("deletionTimestamp")
                and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))

    def _index(self, key: str, pod: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        for obj, add in ((old, False), (pod, True)):
            if obj is None:
                continue
            meta = obj.get("metadata") or {}
            workload = (meta.get("labels") or {}).get(LABEL_WORKLOAD)
            if workload:
                keys = self._by_workload.setdefault((meta.get("namespace", ""), workload), set())
                if add:
                    keys.add(key)
                else:
                    keys.discard(key)
        if pod is not None and self._mine_pending(pod):
            self._pending.add(key)
        else:
            self._pending.discard(key)
        if pod is None or (pod.get("spec") or {}).get("nodeName"):
            self._assumed.pop(key, None)

    def _replace(self, kind: str, items: dict[str, dict[str, Any]]) -> None:
        with self._lock:
            self._objects[kind] = items
            if kind == "pods":
                self._by_workload.clear()
                self._pending.clear()
                for key, pod in items.items():
                    self._index(key, pod, None)
                for key in [k for k in self._assumed if k not in items]:
                    del self._assumed[key]
        self._notify(kind, "RELIST", None, None)

    def _apply(self, kind: str, event: str, key: str, obj: dict[str, Any]) -> None:
        with self._lock:
            table = self._objects[kind]
            old = table.get(key)
            if event == "DELETED":
                table.pop(key, None)
                new = None
            else:
                table[key] = obj
                new = obj
            if kind == "pods":
                self._index(key, new, old)
        self._notify(kind, event, new, old)

    def _notify(self, kind: str, event: str, new: dict[str, Any] | None,
                old: dict[str, Any] | None) -> None:
        if self.on_change is None:
            return
        pending_changed = kind == "pods" and new is not None and self._mine_pending(new)
        room_changed = bool(self._pending) and (kind == "nodes"
                                                or event in ("DELETED", "RELIST"))
        if pending_changed or room_changed:
            self.on_change()

    # -- reads ------------------------------------------------------------------------------

    def raw(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """``(nodes, pods)`` as JSON dicts, assumed binds applied."""
        with self._lock:
            nodes = list(self._objects["nodes"].values())
            pods = list(self._objects["pods"].values())
            assumed = dict(self._assumed)
        if assumed:
            pods = [self._with_assumed(p, assumed) for p in pods]
        return nodes, pods

    @staticmethod
    def _with_assumed(pod: dict[str, Any], assumed: dict[str, tuple]) -> dict[str, Any]:
        key = _key(pod)
        if key not in assumed or (pod.get("spec") or {}).get("nodeName"):
            return pod
        node, gpus, _ = assumed[key]
        meta = dict(pod.get("metadata") or {})
        if gpus:
            meta["annotations"] = {**(meta.get("annotations") or {}),
                                   ANNOTATION_GPU_INDICES: ",".join(str(g) for g in gpus)}
        return {**pod, "metadata": meta, "spec": {**(pod.get("spec") or {}), "nodeName": node}}

    def workload_snapshot(self, namespace: str, workload: str, now: float) -> Snapshot:
        """One workload's pods and their nodes (``ClusterSource``): from the cache once
        :attr:`synced` (assumed binds applied), else from the API.

        Raises:
            kubernetes.client.exceptions.ApiException, urllib3.exceptions.HTTPError: not
                synced yet and the API could not list the pods.
        """
        if not self.synced:
            return self._api.workload_snapshot(namespace, workload, now)
        snap, problems = workload_snapshot_from_k8s(self.workload_pods(namespace, workload),
                                                    self.node, now)
        self.problems.note(f"{namespace}/{workload}", problems)
        return snap

    def workload_pods(self, namespace: str, workload: str) -> list[dict[str, Any]]:
        """Pods (JSON) labelled ``cohabit.io/workload=<workload>`` in ``namespace``."""
        with self._lock:
            keys = sorted(self._by_workload.get((namespace, workload), ()))
            pods = [self._objects["pods"][k] for k in keys if k in self._objects["pods"]]
            assumed = dict(self._assumed)
        return [self._with_assumed(p, assumed) for p in pods] if assumed else pods

    def node(self, name: str) -> dict[str, Any] | None:
        """The Node (JSON) or None."""
        with self._lock:
            return self._objects["nodes"].get(name)

    def pod(self, key: str) -> dict[str, Any] | None:
        """The Pod (JSON) by ``namespace/name``, or None."""
        with self._lock:
            return self._objects["pods"].get(key)

    def pod_uid(self, key: str) -> str:
        """The UID of pod ``namespace/name`` as cached (``""`` when not cached)."""
        return ((self.pod(key) or {}).get("metadata") or {}).get("uid", "")

    def pending_keys(self) -> list[str]:
        """Keys of cohabit's pods without a node (assumed binds excluded)."""
        with self._lock:
            return sorted(k for k in self._pending if k not in self._assumed)

    def pending_count(self) -> int:
        """How many of cohabit's pods wait for a node (``cohabit_pending_pods``)."""
        return len(self.pending_keys())

    # -- assume -----------------------------------------------------------------------------

    def assume(self, pod_key: str, node: str, gpu_indices: tuple[int, ...],
               ttl_s: float = 300.0) -> None:
        """Treat ``pod_key`` as bound to ``node`` until the watch shows it bound (or
        ``ttl_s`` passes)."""
        with self._lock:
            self._assumed[pod_key] = (node, tuple(gpu_indices), time.monotonic() + ttl_s)
            self._expire()

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, (_, _, until) in self._assumed.items() if until < now]:
            del self._assumed[key]
