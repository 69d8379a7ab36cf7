"""The cluster from the Kubernetes API: Node and Pod objects as :mod:`cohabit.model` values.

Conventions read (those of the NVIDIA device plugin / GPU feature discovery and of the
Alibaba GPU trace / FGD simulator for shares):

* node GPUs: ``status.allocatable["nvidia.com/gpu"]`` (count), model from the label
  ``nvidia.com/gpu.product``, per-GPU memory (MiB) from ``nvidia.com/gpu.memory``;
* pod GPUs: ``nvidia.com/gpu`` in requests (or limits) = whole GPUs; the annotation
  ``cohabit.io/gpu-milli`` = a fractional share of one GPU (milli-GPU); acceptable models from
  the annotation ``cohabit.io/gpu-models`` (``A10|T4``) or a ``nvidia.com/gpu.product``
  node selector; GPUs held from the annotation ``cohabit.io/gpu-indices`` written at bind;
* pods of a cohabit workload carry the label ``cohabit.io/workload``.

Pending pods are included only when their ``spec.schedulerName`` is cohabit's (the others
belong to another scheduler); finished pods (``Succeeded``/``Failed``) are left out.
The converters take the plain JSON ``dict`` the API returns, so they are testable on
recorded objects and fast on 1,000s of pods (no client model deserialisation).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from cohabit.config.quantity import QuantityError, cpu_milli, memory_mib
from cohabit.model import MILLI_PER_GPU, GpuDevice, Node, Pod, QosClass, Snapshot
from cohabit.telemetry.base import ClusterSource

__all__ = [
    "ANNOTATION_GPU_INDICES",
    "ANNOTATION_GPU_MILLI",
    "ANNOTATION_GPU_MODELS",
    "GPU_RESOURCE",
    "JsonClusterSource",
    "KubeClusterSource",
    "LABEL_GPU_MEMORY",
    "LABEL_GPU_PRODUCT",
    "LABEL_WORKLOAD",
    "ProblemLog",
    "TelemetryError",
    "list_workload_pods",
    "node_from_k8s",
    "pod_from_k8s",
    "read_nodes",
    "read_target",
    "snapshot_from_k8s",
    "template_requests",
    "workload_pods_from_k8s",
    "workload_snapshot_from_k8s",
]

log = logging.getLogger(__name__)

GPU_RESOURCE = "nvidia.com/gpu"
LABEL_GPU_PRODUCT = "nvidia.com/gpu.product"
LABEL_GPU_MEMORY = "nvidia.com/gpu.memory"
ANNOTATION_GPU_MILLI = "cohabit.io/gpu-milli"
ANNOTATION_GPU_MODELS = "cohabit.io/gpu-models"
ANNOTATION_GPU_INDICES = "cohabit.io/gpu-indices"
ANNOTATION_EVICTABLE = "cohabit.io/evictable"
LABEL_WORKLOAD = "cohabit.io/workload"


class TelemetryError(ValueError):
    """A Kubernetes object cohabit cannot read; names the object and the field."""


def _epoch(stamp: str | None) -> float:
    if not stamp:
        return 0.0
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def node_from_k8s(obj: Mapping[str, Any]) -> Node:
    """A Node object (JSON dict) as a :class:`~cohabit.model.Node` with everything free.

    Raises:
        TelemetryError: an allocatable quantity or GPU label does not parse (names the field).
    """
    meta = obj.get("metadata", {})
    name = meta.get("name", "?")
    labels = meta.get("labels") or {}
    alloc = (obj.get("status") or {}).get("allocatable") or {}
    try:
        cpu = cpu_milli(alloc.get("cpu", "0"))
        mem = memory_mib(alloc.get("memory", "0"))
        n_gpu = int(alloc.get(GPU_RESOURCE, "0"))
    except (QuantityError, ValueError) as exc:
        raise TelemetryError(f"node {name}: status.allocatable: {exc}") from exc
    try:
        gpu_mem = int(labels.get(LABEL_GPU_MEMORY, "0"))
    except ValueError as exc:
        raise TelemetryError(f"node {name}: label {LABEL_GPU_MEMORY}: {exc}") from exc
    model = labels.get(LABEL_GPU_PRODUCT, "")
    gpus = tuple(GpuDevice(i, model, MILLI_PER_GPU, gpu_mem) for i in range(n_gpu))
    return Node(name, cpu, mem, cpu, mem, gpus, tuple(sorted(labels.items())))


def _requests(spec: Mapping[str, Any]) -> tuple[int, int, int]:
    """Effective (cpu milli, memory MiB, whole GPUs) as kube-scheduler computes them:
    sum over containers, at least the largest init container."""

    def one(container: Mapping[str, Any]) -> tuple[int, int, int]:
        res = container.get("resources") or {}
        req = res.get("requests") or {}
        lim = res.get("limits") or {}
        cpu = req.get("cpu", lim.get("cpu", "0"))
        mem = req.get("memory", lim.get("memory", "0"))
        gpu = req.get(GPU_RESOURCE, lim.get(GPU_RESOURCE, "0"))
        return cpu_milli(cpu), memory_mib(mem), int(gpu)

    sums = [0, 0, 0]
    for c in spec.get("containers") or []:
        for i, v in enumerate(one(c)):
            sums[i] += v
    for c in spec.get("initContainers") or []:
        for i, v in enumerate(one(c)):
            sums[i] = max(sums[i], v)
    return sums[0], sums[1], sums[2]


def pod_from_k8s(obj: Mapping[str, Any]) -> Pod:
    """A Pod object (JSON dict) as a :class:`~cohabit.model.Pod`.

    Raises:
        TelemetryError: a request, annotation or timestamp does not parse (names the field).
    """
    meta = obj.get("metadata", {})
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    name, namespace = meta.get("name", "?"), meta.get("namespace", "default")
    ann = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    where = f"pod {namespace}/{name}"
    try:
        cpu, mem, whole = _requests(spec)
    except (QuantityError, ValueError) as exc:
        raise TelemetryError(f"{where}: spec.containers[].resources: {exc}") from exc
    num_gpu, gpu_milli = whole, MILLI_PER_GPU if whole else 0
    if ANNOTATION_GPU_MILLI in ann:
        try:
            share = int(ann[ANNOTATION_GPU_MILLI])
        except ValueError as exc:
            raise TelemetryError(f"{where}: annotation {ANNOTATION_GPU_MILLI}: {exc}") from exc
        if not 0 < share <= MILLI_PER_GPU:
            raise TelemetryError(
                f"{where}: annotation {ANNOTATION_GPU_MILLI}={share} is not in 1..1000")
        if whole <= 1:
            num_gpu, gpu_milli = 1, share
    models = ann.get(ANNOTATION_GPU_MODELS, "")
    spec_models = {m for m in models.split("|") if m}
    selector = (spec.get("nodeSelector") or {}).get(LABEL_GPU_PRODUCT)
    if selector:
        spec_models.add(selector)
    indices: tuple[int, ...] = ()
    if ann.get(ANNOTATION_GPU_INDICES):
        try:
            indices = tuple(int(i) for i in ann[ANNOTATION_GPU_INDICES].split(","))
        except ValueError as exc:
            raise TelemetryError(f"{where}: annotation {ANNOTATION_GPU_INDICES}: {exc}") from exc
    qos_name = status.get("qosClass")
    try:
        qos = QosClass(qos_name) if qos_name else _qos_from_requests(spec)
    except ValueError:
        qos = QosClass.BURSTABLE
    deletion = meta.get("deletionTimestamp")
    owned = bool(meta.get("ownerReferences"))
    evictable = owned and ann.get(ANNOTATION_EVICTABLE, "true").lower() != "false"
    return Pod(
        name=name,
        namespace=namespace,
        cpu_milli=cpu,
        memory_mib=mem,
        num_gpu=num_gpu,
        gpu_milli=gpu_milli,
        gpu_spec=frozenset(spec_models),
        qos=qos,
        creation_time=_epoch(meta.get("creationTimestamp")),
        deletion_time=_epoch(deletion) if deletion else None,
        node=spec.get("nodeName") or None,
        gpu_indices=indices,
        workload=labels.get(LABEL_WORKLOAD),
        evictable=evictable,
    )


def _qos_from_requests(spec: Mapping[str, Any]) -> QosClass:
    has_any = False
    guaranteed = True
    for c in spec.get("containers") or []:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            has_any = True
        for r in ("cpu", "memory"):
            if r not in lim or req.get(r, lim.get(r)) != lim.get(r):
                guaranteed = False
    if not has_any:
        return QosClass.BEST_EFFORT
    return QosClass.GUARANTEED if guaranteed else QosClass.BURSTABLE


def snapshot_from_k8s(
    nodes: Iterable[Mapping[str, Any]],
    pods: Iterable[Mapping[str, Any]],
    now: float,
    scheduler_name: str = "cohabit",
) -> tuple[Snapshot, list[str]]:
    """Nodes and pods (JSON dicts) as a :class:`~cohabit.model.Snapshot` with free shares.

    Unschedulable or NotReady nodes are left out; a pod bound to a node left out still counts
    nowhere. Free CPU/memory = allocatable minus requests of bound, unfinished pods; a GPU's
    ``milli_free`` is reduced by pods holding it (``cohabit.io/gpu-indices``), and pods bound by
    another scheduler without indices take the lowest-numbered GPUs with room.

    Returns:
        the snapshot and a list of problems (objects skipped, with the reason); objects that do
        not parse are skipped and reported, never silently dropped.
    """
    problems: list[str] = []
    parsed_nodes: dict[str, Node] = {}
    for obj in nodes:
        spec = obj.get("spec") or {}
        conds = {c.get("type"): c.get("status")
                 for c in (obj.get("status") or {}).get("conditions") or []}
        if spec.get("unschedulable") or conds.get("Ready", "True") != "True":
            continue
        try:
            node = node_from_k8s(obj)
        except TelemetryError as exc:
            problems.append(str(exc))
            continue
        parsed_nodes[node.name] = node
    parsed_pods: list[Pod] = []
    for obj in pods:
        phase = (obj.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            continue
        spec = obj.get("spec") or {}
        if not spec.get("nodeName") and spec.get("schedulerName") != scheduler_name:
            continue
        try:
            parsed_pods.append(pod_from_k8s(obj))
        except TelemetryError as exc:
            problems.append(str(exc))
    used_cpu: dict[str, int] = {}
    used_mem: dict[str, int] = {}
    gpu_free: dict[str, list[int]] = {n: [g.milli_free for g in node.gpus]
                                      for n, node in parsed_nodes.items()}
    for pod in sorted(parsed_pods, key=lambda p: not p.gpu_indices):  # indexed pods first
        if pod.node not in parsed_nodes:
            continue
        used_cpu[pod.node] = used_cpu.get(pod.node, 0) + pod.cpu_milli
        used_mem[pod.node] = used_mem.get(pod.node, 0) + pod.memory_mib
        free = gpu_free[pod.node]
        if not pod.num_gpu:
            continue
        indices = [i for i in pod.gpu_indices if 0 <= i < len(free)]
        if not indices:
            indices = [i for i, f in enumerate(free) if f >= pod.gpu_milli][: pod.num_gpu]
        for i in indices:
            free[i] = max(0, free[i] - pod.gpu_milli)
    final_nodes = []
    for name, node in parsed_nodes.items():
        gpus = tuple(GpuDevice(g.index, g.model, gpu_free[name][g.index], g.memory_mib)
                     for g in node.gpus)
        final_nodes.append(Node(
            node.name, node.cpu_milli, node.memory_mib,
            node.cpu_milli - used_cpu.get(name, 0), node.memory_mib - used_mem.get(name, 0),
            gpus, node.labels))
    final_nodes.sort(key=lambda n: n.name)
    return Snapshot(now, tuple(final_nodes), tuple(parsed_pods)), problems


def workload_pods_from_k8s(objs: Iterable[Mapping[str, Any]]) -> tuple[list[Pod], list[str]]:
    """A workload's pods (JSON dicts) as :class:`~cohabit.model.Pod` values, finished ones
    (``Succeeded``/``Failed``) left out.

    Returns:
        the pods and the problems (pods skipped, with the reason, as :class:`TelemetryError`
        words them).
    """
    pods: list[Pod] = []
    problems: list[str] = []
    for obj in objs:
        if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        try:
            pods.append(pod_from_k8s(obj))
        except TelemetryError as exc:
            problems.append(str(exc))
    return pods, problems


def workload_snapshot_from_k8s(pods: Iterable[Mapping[str, Any]],
                               node: Callable[[str], Mapping[str, Any] | None],
                               now: float) -> tuple[Snapshot, list[str]]:
    """A workload's view (:meth:`ClusterSource.workload_snapshot`) from its pods (JSON dicts)
    and ``node`` (name -> Node JSON, None when absent or unreadable): the unfinished pods and
    the nodes they are bound to, everything free on those nodes. A node that is absent or
    does not parse is left out and logged (INFO: its pods' pressure stays unmeasured).

    Returns:
        the snapshot (nodes sorted by name) and the problems with pods (see
        :func:`workload_pods_from_k8s`).
    """
    parsed, problems = workload_pods_from_k8s(pods)
    nodes = []
    for name in sorted({p.node for p in parsed if p.node}):
        obj = node(name)
        if obj is None:
            continue
        try:
            nodes.append(node_from_k8s(obj))
        except TelemetryError as exc:
            log.info("node %s unreadable, its pods' pressure stays unmeasured: %s", name, exc)
    return Snapshot(now, tuple(nodes), tuple(parsed)), problems


class ProblemLog:
    """Logs each object a source skipped once (WARNING ``skipped: <why>``) while it stays a
    problem, per scope (``""`` = the whole cluster, else a workload's ``namespace/name``,
    which the log line is about)."""

    def __init__(self) -> None:
        self._last: dict[str, list[str]] = {}

    def note(self, scope: str, problems: list[str]) -> None:
        """``problems`` are this read's for ``scope``; those new since the last read of the
        same scope are logged."""
        last = self._last.get(scope, [])
        extra = {"object": scope} if scope else None
        for problem in problems:
            if problem not in last:
                log.warning("skipped: %s", problem, extra=extra)
        if problems:
            self._last[scope] = problems
        else:
            self._last.pop(scope, None)


class JsonClusterSource(ClusterSource):
    """A :class:`~cohabit.telemetry.base.ClusterSource` whose nodes and pods come as the API's
    JSON dicts from :meth:`raw`; :meth:`snapshot` converts them
    (:func:`snapshot_from_k8s`) and logs each skipped object once (:attr:`problems`).
    Subclasses set ``scheduler_name`` and ``problems`` and implement :meth:`raw`."""

    scheduler_name: str
    problems: ProblemLog

    def raw(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """``(nodes, pods)`` as JSON dicts."""
        raise NotImplementedError

    def snapshot(self, now: float) -> Snapshot:
        """The cluster at ``now`` from :meth:`raw`; objects that do not parse are skipped and
        logged once.

        Raises:
            what :meth:`raw` raises (an API source: the API server refused or did not
                answer; :class:`TelemetryError`: a list answer is not a Kubernetes list).
        """
        nodes, pods = self.raw()
        snap, problems = snapshot_from_k8s(nodes, pods, now, self.scheduler_name)
        self.problems.note("", problems)
        return snap


class KubeClusterSource(JsonClusterSource):
    """:class:`~cohabit.telemetry.base.ClusterSource` reading a live API server.

    Lists nodes and pods as raw JSON (``_preload_content=False``): about 10x faster than the
    client's model classes on thousands of pods. Keeps the protocol's defaults for what a
    watch cache adds (always synced, nothing assumed, pending pods not counted live).

    Args:
        api_client: a configured :class:`kubernetes.client.ApiClient`.
        scheduler_name: pending pods with this ``spec.schedulerName`` are cohabit's.
        namespace: restrict pods to one namespace (``""`` = all).
        request_timeout: ``_request_timeout`` of each API call, seconds.
    """

    def __init__(self, api_client: Any, scheduler_name: str = "cohabit",
                 namespace: str = "", request_timeout: float = 10.0) -> None:
        from kubernetes import client

        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.scheduler_name = scheduler_name
        self.namespace = namespace
        self.request_timeout = request_timeout
        self.problems = ProblemLog()

    def raw(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """``(nodes, pods)`` as JSON dicts, from one LIST of each.

        Raises:
            kubernetes.client.exceptions.ApiException, urllib3.exceptions.HTTPError: the API
                server refused or did not answer within ``request_timeout``.
            TelemetryError: a list answer is not a Kubernetes list.
        """
        timeout = self.request_timeout
        nodes = _items(self.core.list_node(_preload_content=False, _request_timeout=timeout))
        if self.namespace:
            resp = self.core.list_namespaced_pod(self.namespace, _preload_content=False,
                                                 _request_timeout=timeout)
        else:
            resp = self.core.list_pod_for_all_namespaces(_preload_content=False,
                                                         _request_timeout=timeout)
        return nodes, _items(resp)

    def workload_snapshot(self, namespace: str, workload: str, now: float) -> Snapshot:
        """The workload's pods from one LIST by label, and one GET per node they are bound
        to (a node not read within ``request_timeout`` is left out and logged).

        Raises:
            kubernetes.client.exceptions.ApiException, urllib3.exceptions.HTTPError: the pods
                could not be listed.
            TelemetryError: the pod list answer is not a Kubernetes list.
        """
        objs = list_workload_pods(self.api_client, namespace, workload,
                                  request_timeout=self.request_timeout)
        pods, problems = workload_pods_from_k8s(objs)
        self.problems.note(f"{namespace}/{workload}", problems)
        nodes = read_nodes(self.api_client, {p.node for p in pods if p.node},
                           self.request_timeout)
        return Snapshot(now, tuple(nodes), tuple(pods))


ANNOTATION_GPU_MEMORY = "cohabit.io/gpu-memory-mib"
"""Pod (template) annotation: GPU memory the pod may use, MiB."""


def template_requests(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Container name -> current requests of a Deployment/StatefulSet/Job (JSON dict) as
    :class:`~cohabit.model.Resources`; ``gpu_milli``/``gpu_memory_mib`` of the first container
    from ``nvidia.com/gpu`` or the template's ``cohabit.io/gpu-milli`` /
    ``cohabit.io/gpu-memory-mib`` annotations.

    Raises:
        TelemetryError: a request does not parse (names the container).
    """
    from cohabit.model import Resources

    meta = obj.get("metadata", {})
    template = ((obj.get("spec") or {}).get("template")) or {}
    ann = (template.get("metadata") or {}).get("annotations") or {}
    out: dict[str, Any] = {}
    for i, c in enumerate((template.get("spec") or {}).get("containers") or []):
        try:
            cpu, mem, whole = _requests({"containers": [c]})
            gpu = whole * MILLI_PER_GPU
            gmem = 0
            if i == 0 and ANNOTATION_GPU_MILLI in ann:
                gpu = int(ann[ANNOTATION_GPU_MILLI])
            if i == 0 and ANNOTATION_GPU_MEMORY in ann:
                gmem = int(ann[ANNOTATION_GPU_MEMORY])
        except (QuantityError, ValueError) as exc:
            raise TelemetryError(f"{meta.get('namespace')}/{meta.get('name')}: container "
                                 f"{c.get('name')}: {exc}") from exc
        out[c.get("name", f"container-{i}")] = Resources(cpu, mem, gpu, gmem)
    return out


def _items(resp: Any) -> list[dict[str, Any]]:
    """``items`` of a raw list response, checked to be a list of objects.

    Raises:
        TelemetryError: the body is not a Kubernetes list.
    """
    try:
        items = json.loads(resp.data)["items"]
    except (ValueError, KeyError, TypeError) as exc:
        raise TelemetryError(f"API list answer is not a Kubernetes list: {exc!r}") from exc
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise TelemetryError("API list answer: items is not a list of objects")
    return items


def read_target(api_client: Any, namespace: str, kind: str, name: str,
                request_timeout: float = 10.0) -> dict[str, Any] | None:
    """The target object (JSON dict) of a workload, or None when it does not exist.

    Raises:
        ValueError: ``kind`` is not Deployment, StatefulSet or Job.
        kubernetes.client.exceptions.ApiException, urllib3.exceptions.HTTPError: another
            API error, or no answer within ``request_timeout`` seconds.
    """
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    apps, batch = client.AppsV1Api(api_client), client.BatchV1Api(api_client)
    readers = {
        "Deployment": apps.read_namespaced_deployment,
        "StatefulSet": apps.read_namespaced_stateful_set,
        "Job": batch.read_namespaced_job,
    }
    if kind not in readers:
        raise ValueError(f"target kind {kind!r} is not Deployment, StatefulSet or Job")
    try:
        resp = readers[kind](name, namespace, _preload_content=False,
                             _request_timeout=request_timeout)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return _body(resp)


def _body(resp: Any) -> Any:
    """The JSON body of a raw answer (``_preload_content=False``: the urllib3 response,
    whatever model class the client's annotation names)."""
    return json.loads(resp.data)


def list_workload_pods(api_client: Any, namespace: str, workload: str,
                       request_timeout: float = 10.0) -> list[dict[str, Any]]:
    """Pods (JSON dicts) labelled ``cohabit.io/workload=<workload>`` in ``namespace``.

    Raises:
        TelemetryError: the answer is not a pod list.
        kubernetes.client.exceptions.ApiException, urllib3.exceptions.HTTPError: an API
            error, or no answer within ``request_timeout`` seconds.
    """
    from kubernetes import client

    resp = client.CoreV1Api(api_client).list_namespaced_pod(
        namespace, label_selector=f"{LABEL_WORKLOAD}={workload}", _preload_content=False,
        _request_timeout=request_timeout)
    return _items(resp)


def read_nodes(api_client: Any, names: set[str], request_timeout: float = 10.0) -> list[Node]:
    """The named nodes (their allocatable CPU, memory and GPUs, everything free), sorted by
    name, one GET each. A node that cannot be read (API error, no answer within
    ``request_timeout`` seconds, unparsable) is left out (its pods' pressure components stay
    absent) and logged at INFO."""
    if not names:
        return []
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    core = client.CoreV1Api(api_client)
    out = []
    for name in sorted(names):
        try:
            resp = core.read_node(name, _preload_content=False, _request_timeout=request_timeout)
            out.append(node_from_k8s(_body(resp)))
        except (ApiException, HTTPError, OSError, TelemetryError, ValueError) as exc:
            log.info("node %s unreadable, its pods' pressure stays unmeasured: %s", name, exc)
    return out
