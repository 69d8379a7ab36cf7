"""Plain data types exchanged between cohabit's stages.

Every stage (telemetry, predictors, planner, placement, actuator) speaks only these types;
only :mod:`cohabit.engine` wires the stages together. Standard library only: frozen, slotted
dataclasses, so values can be hashed, shared between processes and compared in tests.

Units follow Kubernetes and the Alibaba GPU trace:

* CPU in millicores (``cpu_milli``; 1000 = one core),
* memory and GPU memory in MiB (``memory_mib``, ``gpu_memory_mib``),
* GPU in milli-GPU (``gpu_milli``; 1000 = one whole GPU),
* time in seconds (``float``), passed in by the caller, never read from a clock here.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Union

__all__ = [
    "MILLI_PER_GPU",
    "RESOURCE_FIELDS",
    "TextEnum",
    "Bind",
    "Evict",
    "GpuDevice",
    "InterferenceProfile",
    "Node",
    "Outcome",
    "OutcomeStatus",
    "PlacementMode",
    "Plan",
    "Pod",
    "QosClass",
    "QosMetric",
    "QosTarget",
    "Recommendation",
    "Resize",
    "Resources",
    "Snapshot",
    "Workload",
    "WorkloadKind",
    "WorkloadMode",
    "Action",
    "gpu_request_problems",
    "probe_key",
    "probe_keys",
]

MILLI_PER_GPU = 1000
"""milli-GPU in one whole GPU."""

RESOURCE_FIELDS = ("cpu_milli", "memory_mib", "gpu_milli", "gpu_memory_mib")
"""The fields of :class:`Resources`, in order: the resources cohabit sizes and places (also
the ``resource`` names of usage telemetry)."""


@dataclass(frozen=True, slots=True)
class Resources:
    """An amount of the four resources cohabit plans for.

    Attributes:
        cpu_milli: CPU in millicores (>= 0).
        memory_mib: memory in MiB (>= 0).
        gpu_milli: GPU in milli-GPU, summed over GPUs (2 whole GPUs = 2000).
        gpu_memory_mib: GPU memory in MiB, summed over GPUs.
    """

    cpu_milli: int = 0
    memory_mib: int = 0
    gpu_milli: int = 0
    gpu_memory_mib: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu_milli + other.cpu_milli,
            self.memory_mib + other.memory_mib,
            self.gpu_milli + other.gpu_milli,
            self.gpu_memory_mib + other.gpu_memory_mib,
        )

    def __sub__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu_milli - other.cpu_milli,
            self.memory_mib - other.memory_mib,
            self.gpu_milli - other.gpu_milli,
            self.gpu_memory_mib - other.gpu_memory_mib,
        )

    def fits_in(self, capacity: Resources) -> bool:
        """True when every field is <= the same field of ``capacity``."""
        return all(getattr(self, f) <= getattr(capacity, f) for f in RESOURCE_FIELDS)

    def clamp(self, lower: Resources, upper: Resources) -> Resources:
        """Each field limited to ``[lower, upper]`` (a field of ``upper`` <= 0 means no cap)."""

        def one(v: int, lo: int, hi: int) -> int:
            v = max(v, lo)
            return min(v, hi) if hi > 0 else v

        return Resources(
            one(self.cpu_milli, lower.cpu_milli, upper.cpu_milli),
            one(self.memory_mib, lower.memory_mib, upper.memory_mib),
            one(self.gpu_milli, lower.gpu_milli, upper.gpu_milli),
            one(self.gpu_memory_mib, lower.gpu_memory_mib, upper.gpu_memory_mib),
        )


class TextEnum(str, enum.Enum):
    """A ``str`` enum whose ``str()`` and ``format()`` are its value on every Python version
    (3.12 changed mixed-in enums' ``format()`` to ``Class.MEMBER``), so log lines, CSV and
    JSON read exactly as they did with the plain strings."""

    def __str__(self) -> str:
        return str(self.value)

    @classmethod
    def coerce(cls, value: object, field_name: str) -> TextEnum:
        """``value`` as a member of this enum.

        Raises:
            ValueError: ``value`` is none of the members' values (the message names
                ``field_name`` and the allowed values).
        """
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in cls)
            raise ValueError(f"{field_name}: {value!r} is not one of {allowed}") from None


class QosClass(str, enum.Enum):
    """QoS class of a pod: the Alibaba trace's classes and Kubernetes' own."""

    LS = "LS"  # latency-sensitive (trace)
    BE = "BE"  # best-effort (trace)
    BURSTABLE = "Burstable"
    GUARANTEED = "Guaranteed"
    BEST_EFFORT = "BestEffort"


def gpu_request_problems(num_gpu: int, gpu_milli: int) -> list[tuple[str, str]]:
    """What is wrong with a pod's GPU request of ``num_gpu`` GPUs at ``gpu_milli`` milli-GPU
    each, by the rules of the FGD simulator's Open-GPU-Share plugin: a multi-GPU pod takes
    whole GPUs (1000), a GPU pod has a share above 0, and a pod with no GPU has no share.
    (Ranges, e.g. ``gpu_milli`` within 0..1000, are the caller's checks.)

    Returns:
        ``(field, what is wrong)`` pairs (at most one), empty when the pair is valid; e.g.
        ``("gpu_milli", "0 but num_gpu is 2")``.
    """
    if num_gpu > 1 and gpu_milli > 0 and gpu_milli != MILLI_PER_GPU:
        return [("gpu_milli", f"{gpu_milli} is a partial share but num_gpu is {num_gpu} "
                 f"(multi-GPU pods take whole GPUs: {MILLI_PER_GPU})")]
    if num_gpu >= 1 and gpu_milli == 0:
        return [("gpu_milli", f"0 but num_gpu is {num_gpu}")]
    if num_gpu == 0 and gpu_milli > 0:
        return [("num_gpu", f"0 but gpu_milli is {gpu_milli}")]
    return []


@dataclass(frozen=True, slots=True)
class GpuDevice:
    """One GPU of a node.

    Attributes:
        index: position on the node (0-based; the NVML/device-plugin index).
        model: GPU model name as the trace or the ``nvidia.com/gpu.product`` label gives it.
        milli_free: unallocated milli-GPU, 0..1000.
        memory_mib: GPU memory capacity in MiB (0 when unknown).
    """

    index: int
    model: str
    milli_free: int = MILLI_PER_GPU
    memory_mib: int = 0


@dataclass(frozen=True, slots=True)
class Node:
    """A node's allocatable capacity and its free share.

    Attributes:
        name: node name (unique in a snapshot).
        cpu_milli, memory_mib: allocatable CPU (millicores) and memory (MiB).
        cpu_free_milli, memory_free_mib: what is not requested by bound pods.
        gpus: the node's GPUs with their free milli-GPU.
        labels: node labels.
    """

    name: str
    cpu_milli: int
    memory_mib: int
    cpu_free_milli: int
    memory_free_mib: int
    gpus: tuple[GpuDevice, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def gpu_model(self) -> str:
        """Model of the node's GPUs ('' for a CPU-only node)."""
        return self.gpus[0].model if self.gpus else ""


@dataclass(frozen=True, slots=True)
class Pod:
    """A pod's requests and, once bound, its place.

    Attributes:
        name, namespace: identity; ``key`` is ``namespace/name``.
        cpu_milli, memory_mib: requests.
        num_gpu: GPUs requested (0 for a CPU-only pod).
        gpu_milli: share of *each* GPU, 1..1000 (1000 = whole GPU); a pod with
            ``num_gpu > 1`` always takes whole GPUs.
        gpu_spec: acceptable GPU models (empty = any).
        qos: QoS class.
        creation_time, deletion_time: seconds (trace time or wall time).
        node: bound node, or ``None`` while pending.
        gpu_indices: GPUs of ``node`` the pod holds.
        workload: name of the owning cohabit workload, if any.
        evictable: False when a PDB or the owner forbids eviction.
    """

    name: str
    cpu_milli: int
    memory_mib: int
    num_gpu: int = 0
    gpu_milli: int = 0
    gpu_spec: frozenset[str] = frozenset()
    qos: QosClass = QosClass.BE
    namespace: str = "default"
    creation_time: float = 0.0
    deletion_time: float | None = None
    node: str | None = None
    gpu_indices: tuple[int, ...] = ()
    workload: str | None = None
    evictable: bool = True

    @property
    def key(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"

    @property
    def gpu_request_milli(self) -> int:
        """Total milli-GPU requested: ``num_gpu * gpu_milli``."""
        return self.num_gpu * self.gpu_milli


class WorkloadKind(str, enum.Enum):
    """What a workload is; decides which predictors and probes apply."""

    DATABASE = "Database"
    GPU_INFERENCE = "GpuInference"
    GPU_BATCH = "GpuBatch"


class QosMetric(TextEnum):
    """What a :class:`QosTarget` measures."""

    P99_LATENCY_MS = "p99_latency_ms"  # must stay at or below the target
    THROUGHPUT = "throughput"  # per second, must stay at or above the target


class WorkloadMode(TextEnum):
    """What cohabit does with a workload's recommendations."""

    RECOMMEND = "Recommend"  # status only
    APPLY = "Apply"  # patch the requests


class PlacementMode(TextEnum):
    """Whether cohabit binds a workload's pods."""

    MANAGED = "managed"
    UNMANAGED = "unmanaged"


class OutcomeStatus(TextEnum):
    """What became of one action (:class:`Outcome`)."""

    DONE = "done"
    DRY_RUN = "dry-run"
    REFUSED = "refused"  # e.g. a PodDisruptionBudget answered 429
    SKIPPED = "skipped"  # e.g. a budget, or the pod is gone
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class QosTarget:
    """A workload's QoS target (its SLO).

    Attributes:
        metric: :class:`QosMetric` (a plain string of its value is converted):
            ``"p99_latency_ms"`` (must stay at or below ``value``) or ``"throughput"`` (must
            stay at or above ``value``, per second).
        value: the target.
        query: PromQL that measures the metric (empty for traces).

    Raises:
        ValueError: ``metric`` is not a :class:`QosMetric` value.
    """

    metric: QosMetric
    value: float
    query: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "metric", QosMetric.coerce(self.metric, "QosTarget.metric"))

    def violated(self, observed: float) -> bool:
        """True when ``observed`` misses the target."""
        if self.metric is QosMetric.THROUGHPUT:
            return observed < self.value
        return observed > self.value


@dataclass(frozen=True, slots=True)
class Workload:
    """A cohabit workload as declared by its custom resource.

    Attributes:
        name, namespace: identity.
        kind: database, GPU inference or GPU batch.
        qos_target: the SLO.
        min_resources, max_resources: bounds for recommendations (0 in max = no cap).
        mode: :class:`WorkloadMode`, ``"Recommend"`` (status only) or ``"Apply"`` (patch
            requests).
        placement: :class:`PlacementMode`, ``"managed"`` (cohabit binds its pods) or
            ``"unmanaged"``.
        target_kind, target_name: the Deployment/StatefulSet/Job it sizes.

    ``mode`` and ``placement`` given as plain strings are converted to their enums.

    Raises:
        ValueError: ``mode`` or ``placement`` is not one of its enum's values.
    """

    name: str
    kind: WorkloadKind
    qos_target: QosTarget
    namespace: str = "default"
    min_resources: Resources = Resources()
    max_resources: Resources = Resources()
    mode: WorkloadMode = WorkloadMode.RECOMMEND
    placement: PlacementMode = PlacementMode.UNMANAGED
    target_kind: str = "Deployment"
    target_name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", WorkloadMode.coerce(self.mode, "Workload.mode"))
        object.__setattr__(
            self, "placement", PlacementMode.coerce(self.placement, "Workload.placement")
        )

    @property
    def key(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A right-sizing recommendation for one container.

    Attributes:
        container: container name.
        target: the just-enough requests.
        lower, upper: the range a request may sit in without acting.
        confidence: in [0, 1], from history length, sample count and model error.
        low_confidence: True when nothing should act on it.
    """

    container: str
    target: Resources
    lower: Resources
    upper: Resources
    confidence: float
    low_confidence: bool


@dataclass(frozen=True, slots=True)
class InterferenceProfile:
    """A workload's interference pressure (what it inflicts) and sensitivity (what it suffers).

    Keys are shared resources (``"cpu"``, ``"membw"``, ``"gpu_sm"``, ``"gpu_mem"``, ``"pcie"``,
    ...); values are dimensionless, 0 = none.
    """

    pressure: tuple[tuple[str, float], ...] = ()
    sensitivity: tuple[tuple[str, float], ...] = ()

    def keyed_by(self, keys: frozenset[str]) -> bool:
        """True when both pressure and sensitivity have exactly the components ``keys`` (e.g.
        :func:`probe_keys`: a profile measured against those probes)."""
        return ({k for k, _ in self.sensitivity} == keys
                and {k for k, _ in self.pressure} == keys)


def probe_key(index: int, probe: str) -> str:
    """The :class:`InterferenceProfile` component of the ``index``-th probe workload named
    ``probe``: ``probe<index>:<probe>`` (the Paragon/Bubble-Up probe profiles of
    ``cohabit.predictors.interference``; the index keeps two probes of one name apart)."""
    return f"probe{index}:{probe}"


def probe_keys(probes: Sequence[str]) -> frozenset[str]:
    """The components of a profile measured against ``probes``, in order
    (:func:`probe_key` of each)."""
    return frozenset(probe_key(i, p) for i, p in enumerate(probes))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The cluster at one moment: nodes and pods (bound and pending)."""

    time: float
    nodes: tuple[Node, ...]
    pods: tuple[Pod, ...]


@dataclass(frozen=True, slots=True)
class Bind:
    """Bind a pending pod to a node (and to GPUs of it)."""

    pod: str
    node: str
    gpu_indices: tuple[int, ...] = ()
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Evict:
    """Evict a bound pod so it is re-placed (through the Eviction API on a cluster)."""

    pod: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Resize:
    """Set a workload's container requests to ``requests``."""

    workload: str
    container: str
    requests: Resources
    reason: str = ""


Action = Union[Bind, Evict, Resize]


@dataclass(frozen=True, slots=True)
class Plan:
    """What the engine decided at ``time``: actions, plus recommendations for status.

    Attributes:
        unschedulable: ``(pod key, why)`` of pending pods that fit on no node, ``why`` in
            kube-scheduler's words (``0/4 nodes are available: 2 Insufficient cpu, ...``).
        deferred: keys of pending pods this pass left for the next one (more were pending
            than one pass places); non-empty means "run again at once".
        notes: the same facts (and why a workload got no action) in words, for humans;
            code reads the structured fields, never the notes.
    """

    time: float
    actions: tuple[Action, ...] = ()
    recommendations: tuple[tuple[str, Recommendation], ...] = ()
    notes: tuple[str, ...] = field(default=())
    unschedulable: tuple[tuple[str, str], ...] = field(default=())
    deferred: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an actuator did with one action.

    Attributes:
        action: the action.
        status: :class:`OutcomeStatus` (a plain string of its value is converted):
            ``"done"``, ``"dry-run"``, ``"refused"`` (e.g. a PDB answered 429), ``"skipped"``
            (a budget) or ``"failed"``.
        message: human-readable detail.

    Raises:
        ValueError: ``status`` is not an :class:`OutcomeStatus` value.
    """

    action: Action
    status: OutcomeStatus
    message: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", OutcomeStatus.coerce(self.status, "Outcome.status"))
