"""Custom-resource specs parsed into typed values, shared by the operator and the simulator.

The CRDs in ``manifests/crds/`` check structure (types, enums, required fields, bounds,
defaults); this module checks the same rules plus what a structural schema cannot
(``min <= max``, quantities within :data:`CPU_MAX_MILLI` / :data:`MEMORY_MAX_MIB`), and turns
a spec ``dict`` into :mod:`cohabit.model` and :class:`PolicyConfig` values. Every error is a
:class:`SpecError` naming the field with its JSON path (``spec.bounds.min.cpu``), which the
operator reports in the ``Invalid`` condition.

Schema and parser agree by construction: the bounds, enums, lengths and the quantity pattern
below are the constants ``manifests/gen_crds.py`` writes into the CRDs, and
``tests/unit/config/test_spec_crd_agreement.py`` feeds the CRDs' own examples, their boundary
values and generated specs to both: whatever the CRD rejects the parser rejects, and whatever
the CRD accepts the parser turns into a value or a :class:`SpecError` (never another error).

No kubernetes import here: input is the plain ``dict`` kopf hands to handlers (or YAML).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cohabit.config.placement import ScoreWeights, parse_score_weights
from cohabit.config.quantity import QuantityError, cpu_milli, memory_mib
from cohabit.model import (
    InterferenceProfile,
    PlacementMode,
    QosMetric,
    QosTarget,
    Resources,
    Workload,
    WorkloadKind,
    WorkloadMode,
)

__all__ = [
    "CPU_MAX_CORES",
    "CPU_MAX_MILLI",
    "GPU_MILLI_MAX",
    "GROUP",
    "INTERFERENCE_MAX",
    "LIMIT_MAX",
    "MEMORY_MAX_BYTES",
    "MEMORY_MAX_MIB",
    "NAME_MAX_LENGTH",
    "PLACEMENT_POLICIES",
    "QUANTITY_MAX_LENGTH",
    "QUANTITY_PATTERN",
    "QUERY_MAX_LENGTH",
    "THRESHOLD_MAX",
    "TOLERANCE_MAX",
    "VERSION",
    "WINDOW_MAX_S",
    "WINDOW_MIN_S",
    "PolicyConfig",
    "RebindingConfig",
    "RightSizingConfig",
    "SpecError",
    "WorkloadSpec",
    "parse_policy",
    "parse_workload",
]

GROUP = "cohabit.io"
"""API group of cohabit's custom resources."""
VERSION = "v1alpha1"
"""API version of cohabit's custom resources."""

QOS_METRICS = {"p99LatencyMs": "p99_latency_ms", "throughput": "throughput"}
"""CRD spelling of ``spec.qos.metric`` -> :attr:`cohabit.model.QosTarget.metric`."""

PLACEMENT_POLICIES = ("cohabit", "fgd", "best-fit", "dot-product", "gpu-packing",
                      "gpu-clustering", "random", "kube-default", "kube-knots", "load-aware")
"""``spec.policy`` values: the names of ``cohabit.placement.POLICIES`` (cohabit's own, the
FGD paper's six, then the other baselines); a unit test keeps them equal to the registry."""

QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"
"""A quantity written as a string in a spec (a subset of Kubernetes' grammar: no exponent, no
sign, suffixes up to tera)."""
QUANTITY_MAX_LENGTH = 32
"""Longest quantity string accepted."""
CPU_MAX_CORES = 1_000_000
"""Largest CPU quantity written as an integer (cores)."""
CPU_MAX_MILLI = CPU_MAX_CORES * 1000
"""Largest CPU quantity in any form, millicores."""
MEMORY_MAX_BYTES = 2**60
"""Largest memory quantity written as an integer (bytes): one EiB."""
MEMORY_MAX_MIB = MEMORY_MAX_BYTES // 2**20
"""Largest memory quantity in any form, MiB."""
GPU_MILLI_MAX = 1_000_000
"""Largest ``gpuMilli`` (a thousand whole GPUs)."""
WINDOW_MIN_S = 60
"""Shortest ``spec.qos.windowSeconds``."""
WINDOW_MAX_S = 30 * 86400
"""Longest ``spec.qos.windowSeconds`` (30 days)."""
QUERY_MAX_LENGTH = 4096
"""Longest ``spec.qos.query``."""
NAME_MAX_LENGTH = 253
"""Longest object or container name."""
INTERFERENCE_MAX = 1000.0
"""Largest declared pressure or sensitivity."""
LIMIT_MAX = 100_000
"""Largest ``evictionsPerHour`` / ``maxUnavailable``."""
TOLERANCE_MAX = 10.0
"""Largest ``spec.rightSizing.tolerance``."""
THRESHOLD_MAX = 1e9
"""Largest ``spec.rebinding.contentionThreshold``."""

_QUANTITY = re.compile(QUANTITY_PATTERN)
_KINDS = {
    ("DatabaseWorkload", None): WorkloadKind.DATABASE,
    ("GpuWorkload", "Inference"): WorkloadKind.GPU_INFERENCE,
    ("GpuWorkload", "Batch"): WorkloadKind.GPU_BATCH,
}
_TARGET_KINDS = ("Deployment", "StatefulSet", "Job")
_MODES = ("Recommend", "Apply")
_PLACEMENTS = ("managed", "unmanaged")
_OBJECTIVES = ("balanced", "packing", "qos")
_ENGINES = ("postgres", "mysql", "other")
_WORKLOAD_TYPES = ("Inference", "Batch")


class SpecError(ValueError):
    """A spec value that fails validation.

    Attributes:
        field: JSON path of the offending field, e.g. ``spec.bounds.max.memory``.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class RightSizingConfig:
    """Arguments of the right-sizing planner policy (``spec.rightSizing``)."""

    enabled: bool = True
    """Resize workloads in ``Apply`` mode."""

    min_confidence: float = 0.5
    """Recommendations below this confidence never act."""

    tolerance: float = 0.1
    """Relative change below which a request is left alone (avoids churn)."""


@dataclass(frozen=True)
class RebindingConfig:
    """Arguments of the rebinding planner policy and the evictor's budgets (``spec.rebinding``)."""

    enabled: bool = False
    """Evict pods to reduce contention or fragmentation."""

    evictions_per_hour: int = 6
    """Cluster-wide eviction budget over a sliding hour (the actuator enforces it, write-ahead:
    a slot is reserved before each eviction). 0 allows no eviction at all."""

    max_unavailable: int = 1
    """Pods of one workload that may be evicted-and-not-yet-running at once, counting the one
    about to be evicted. 0 allows no eviction at all."""

    dry_run: bool = True
    """Report evictions without performing them."""

    contention_threshold: float = 1.0
    """Node contention score above which the policy looks for a pod to move."""


@dataclass(frozen=True)
class PolicyConfig:
    """A parsed ``PlacementPolicy``.

    Attributes:
        name: the resource's name.
        policy: placement policy, a name in the placement registry (checked by the engine);
            default ``cohabit`` (FGD plus an interference penalty; exactly FGD where no
            workload has an interference profile).
        objective: ``balanced``, ``packing`` or ``qos``.
        right_sizing, rebinding: planner policy arguments.
        interference_weight: ``cohabit`` policy's score points per percent of predicted
            co-location slowdown (``spec.interferenceWeight``, 0..100; 0 = no penalty).
        score: the other weights of the ``cohabit`` score (``spec.score``, see
            :class:`~cohabit.config.placement.ScoreWeights`).
    """

    name: str = "default"
    policy: str = "cohabit"
    objective: str = "balanced"
    right_sizing: RightSizingConfig = field(default_factory=RightSizingConfig)
    rebinding: RebindingConfig = field(default_factory=RebindingConfig)
    interference_weight: float = ScoreWeights.interference
    score: ScoreWeights = field(default_factory=ScoreWeights)

    @property
    def weights(self) -> ScoreWeights:
        """The ``cohabit`` score's weights with ``interference_weight`` applied."""
        from dataclasses import replace

        return replace(self.score, interference=self.interference_weight)


@dataclass(frozen=True)
class WorkloadSpec:
    """A parsed ``DatabaseWorkload`` or ``GpuWorkload``.

    Attributes:
        workload: the model value the engine plans with.
        policy_ref: name of the ``PlacementPolicy`` it follows.
        qos_window_s: window over which QoS violations are counted, seconds.
        containers: containers to recommend for (empty = every container of the target).
        interference: the declared profile (``spec.interference``), or None.
        offered_load_query: ``spec.qos.offeredLoadQuery`` of a ``DatabaseWorkload``: PromQL
            of the offered load (transactions per second), which turns on the online
            capacity planner (``""`` = off).
    """

    workload: Workload
    policy_ref: str = "default"
    qos_window_s: float = 3600.0
    containers: tuple[str, ...] = ()
    interference: InterferenceProfile | None = None
    offered_load_query: str = ""


def _get(obj: Mapping[str, Any], key: str, path: str, kind: type | tuple[type, ...]) -> Any:
    """``obj[key]`` checked to be a ``kind``; None when absent or null (the API server prunes
    nulls of non-nullable fields, so null means absent)."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise SpecError(f"{path}.{key}", f"expected {name}, got {_short(value)}")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + f"... ({len(text)} characters)"


def _string(obj: Mapping[str, Any], key: str, path: str, *, default: str | None = None,
            required: bool = False, min_length: int = 0,
            max_length: int = NAME_MAX_LENGTH) -> str | None:
    value = _get(obj, key, path, str)
    if value is None:
        if required:
            raise SpecError(f"{path}.{key}", "is required")
        return default
    if not min_length <= len(value) <= max_length:
        raise SpecError(f"{path}.{key}", f"length {len(value)} is not in "
                        f"[{min_length}, {max_length}]")
    return value


def _quantity(obj: Mapping[str, Any], key: str, path: str, *, cpu: bool) -> int:
    """A CPU (millicores) or memory (MiB) quantity: an integer (cores / bytes) up to the CRD's
    maximum, or a string matching :data:`QUANTITY_PATTERN`; 0 when absent."""
    value = obj.get(key)
    where = f"{path}.{key}"
    if value is None:
        return 0
    int_max, out_max = (CPU_MAX_CORES, CPU_MAX_MILLI) if cpu else (MEMORY_MAX_BYTES,
                                                                   MEMORY_MAX_MIB)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise SpecError(where, f"expected a quantity (integer or string), got {_short(value)}")
    if isinstance(value, int) and not 0 <= value <= int_max:
        raise SpecError(where, f"integer {_short(value)} is not in [0, {int_max}]")
    if isinstance(value, str) and (len(value) > QUANTITY_MAX_LENGTH
                                   or not _QUANTITY.match(value)):
        raise SpecError(where, f"{_short(value)} is not a quantity like 500m, 2, 512Mi, 4Gi "
                        f"(at most {QUANTITY_MAX_LENGTH} characters)")
    unit = "millicores" if cpu else "MiB"
    too_large = f"{_short(value)} is above the largest accepted ({out_max} {unit})"
    try:
        amount = cpu_milli(value) if cpu else memory_mib(value)
    except QuantityError as exc:
        raise SpecError(where, too_large if "above" in str(exc) else str(exc)) from exc
    if amount > out_max:
        raise SpecError(where, too_large)
    return amount


def _resources(obj: Mapping[str, Any] | None, path: str) -> Resources:
    if obj is None:
        return Resources()
    if not isinstance(obj, Mapping):
        raise SpecError(path, f"expected an object, got {_short(obj)}")
    unknown = set(obj) - {"cpu", "memory", "gpuMilli", "gpuMemory"}
    if unknown:
        raise SpecError(f"{path}.{sorted(map(str, unknown))[0]}", "unknown resource")
    cpu = _quantity(obj, "cpu", path, cpu=True)
    mem = _quantity(obj, "memory", path, cpu=False)
    gmem = _quantity(obj, "gpuMemory", path, cpu=False)
    gpu = _integer(obj, "gpuMilli", path, 0, 0, GPU_MILLI_MAX)
    return Resources(cpu, mem, gpu, gmem)


def _enum(value: Any, allowed: tuple[str, ...], path: str, default: str) -> str:
    if value is None:
        return default
    if value not in allowed:
        raise SpecError(path, f"{_short(value)} is not one of {', '.join(allowed)}")
    return value


def parse_workload(
    kind: str, spec: Mapping[str, Any], *, name: str, namespace: str = "default"
) -> WorkloadSpec:
    """A ``DatabaseWorkload``/``GpuWorkload`` spec as a :class:`WorkloadSpec`.

    The fields are checked in a fixed order (kind, ``targetRef``, ``qos``, ``bounds``,
    ``mode``/``placement``/``policyRef``, ``containers``, ``interference``), so a spec with
    several problems always reports the first one in that order.

    Args:
        kind: the resource kind, ``"DatabaseWorkload"`` or ``"GpuWorkload"``.
        spec: the resource's ``spec`` mapping.
        name, namespace: the resource's metadata.

    Raises:
        SpecError: naming the field (``spec.targetRef.kind``, ``spec.bounds.min.cpu``, ...).
    """
    if not isinstance(spec, Mapping):
        raise SpecError("spec", "expected an object")
    model_kind = _workload_kind(kind, spec)
    target_kind, target_name = _target_ref(spec)
    qos = _qos(spec, kind)
    lower, upper = _bounds(spec)
    mode = _enum(spec.get("mode"), _MODES, "spec.mode", "Recommend")
    placement = _enum(spec.get("placement"), _PLACEMENTS, "spec.placement", "unmanaged")
    policy_ref = _string(spec, "policyRef", "spec") or "default"
    containers = _containers(spec)
    interference = _interference(spec.get("interference"))
    workload = Workload(
        name=name,
        namespace=namespace,
        kind=model_kind,
        qos_target=qos.target,
        min_resources=lower,
        max_resources=upper,
        mode=WorkloadMode(mode),
        placement=PlacementMode(placement),
        target_kind=target_kind,
        target_name=target_name,
    )
    return WorkloadSpec(workload, policy_ref, qos.window_s, containers, interference,
                        qos.offered_load_query)


def _workload_kind(kind: str, spec: Mapping[str, Any]) -> WorkloadKind:
    """The model kind of a resource kind (and ``spec.workloadType`` of a ``GpuWorkload``);
    checks ``spec.engine`` of a ``DatabaseWorkload``."""
    if kind == "DatabaseWorkload":
        _enum(spec.get("engine"), _ENGINES, "spec.engine", "postgres")
        return _KINDS[(kind, None)]
    if kind == "GpuWorkload":
        wtype = _enum(spec.get("workloadType"), _WORKLOAD_TYPES, "spec.workloadType",
                      "Inference")
        return _KINDS[(kind, wtype)]
    raise SpecError("kind", f"{_short(kind)} is not DatabaseWorkload or GpuWorkload")


def _target_ref(spec: Mapping[str, Any]) -> tuple[str, str]:
    """``spec.targetRef`` (required, with a required ``kind`` and ``name``) as
    ``(kind, name)``."""
    target = _get(spec, "targetRef", "spec", Mapping)
    if target is None:
        raise SpecError("spec.targetRef", "is required")
    if target.get("kind") is None:
        raise SpecError("spec.targetRef.kind", "is required")
    target_kind = _enum(target.get("kind"), _TARGET_KINDS, "spec.targetRef.kind", "Deployment")
    target_name = _string(target, "name", "spec.targetRef", required=True, min_length=1)
    _string(target, "apiVersion", "spec.targetRef")
    return target_kind, target_name or ""


@dataclass(frozen=True)
class _Qos:
    """``spec.qos`` parsed: the model's target, the counting window (seconds) and the
    offered-load PromQL (``""`` = none)."""

    target: QosTarget
    window_s: float
    offered_load_query: str


def _qos(spec: Mapping[str, Any], kind: str) -> _Qos:
    """``spec.qos`` (required): metric, target above 0, query, window and, for a
    ``DatabaseWorkload`` with a p99 target only, ``offeredLoadQuery``."""
    qos = _get(spec, "qos", "spec", Mapping)
    if qos is None:
        raise SpecError("spec.qos", "is required")
    metric = qos.get("metric")
    if metric is None:
        raise SpecError("spec.qos.metric", "is required")
    metric = _enum(metric, tuple(QOS_METRICS), "spec.qos.metric", "")
    value = qos.get("target")
    if (not isinstance(value, int | float) or isinstance(value, bool)
            or not math.isfinite(value) or value <= 0):
        raise SpecError("spec.qos.target", f"expected a number above 0, got {_short(value)}")
    query = _string(qos, "query", "spec.qos", required=True, min_length=1,
                    max_length=QUERY_MAX_LENGTH)
    window = _integer(qos, "windowSeconds", "spec.qos", 3600, WINDOW_MIN_S, WINDOW_MAX_S)
    offered = _string(qos, "offeredLoadQuery", "spec.qos", default="", min_length=1,
                      max_length=QUERY_MAX_LENGTH) or ""
    if offered and kind != "DatabaseWorkload":
        raise SpecError("spec.qos.offeredLoadQuery", "only a DatabaseWorkload has one")
    if offered and QOS_METRICS[metric] != "p99_latency_ms":
        raise SpecError("spec.qos.offeredLoadQuery",
                        "the online capacity planner needs spec.qos.metric p99LatencyMs")
    return _Qos(QosTarget(QosMetric(QOS_METRICS[metric]), float(value), query or ""), float(window),
                offered)


def _bounds(spec: Mapping[str, Any]) -> tuple[Resources, Resources]:
    """``spec.bounds`` as ``(min, max)``; a set maximum (above 0) below its minimum is an
    error naming the minimum's field."""
    bounds = _get(spec, "bounds", "spec", Mapping) or {}
    lower = _resources(bounds.get("min"), "spec.bounds.min")
    upper = _resources(bounds.get("max"), "spec.bounds.max")
    for attr, label in (("cpu_milli", "cpu"), ("memory_mib", "memory"),
                        ("gpu_milli", "gpuMilli"), ("gpu_memory_mib", "gpuMemory")):
        lo, hi = getattr(lower, attr), getattr(upper, attr)
        if hi > 0 and lo > hi:
            raise SpecError(f"spec.bounds.min.{label}",
                            f"minimum {lo} is above the maximum {hi} (spec.bounds.max.{label})")
    return lower, upper


def _containers(spec: Mapping[str, Any]) -> tuple[str, ...]:
    """``spec.containers``: distinct container names (empty = every container)."""
    containers = _get(spec, "containers", "spec", list) or []
    if not all(isinstance(c, str) and 0 < len(c) <= NAME_MAX_LENGTH for c in containers):
        raise SpecError("spec.containers", "expected a list of container names")
    if len(set(containers)) != len(containers):
        raise SpecError("spec.containers", "lists a container twice")
    return tuple(containers)


def _interference(obj: Any) -> InterferenceProfile | None:
    if obj is None:
        return None
    if not isinstance(obj, Mapping):
        raise SpecError("spec.interference", f"expected an object, got {_short(obj)}")
    parts: dict[str, tuple[tuple[str, float], ...]] = {}
    for part in ("pressure", "sensitivity"):
        values = obj.get(part) or {}
        if not isinstance(values, Mapping):
            raise SpecError(f"spec.interference.{part}", "expected a map of resource -> number")
        for resource, v in values.items():
            if (not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v)
                    or not 0 <= v <= INTERFERENCE_MAX):
                raise SpecError(f"spec.interference.{part}.{resource}",
                                f"expected a number in [0, {INTERFERENCE_MAX:g}], got "
                                f"{_short(v)}")
        parts[part] = tuple(sorted((str(k), float(v)) for k, v in values.items()))
    unknown = set(obj) - {"pressure", "sensitivity"}
    if unknown:
        raise SpecError(f"spec.interference.{sorted(map(str, unknown))[0]}", "unknown field")
    return InterferenceProfile(pressure=parts["pressure"], sensitivity=parts["sensitivity"])


def parse_policy(spec: Mapping[str, Any], *, name: str = "default") -> PolicyConfig:
    """A ``PlacementPolicy`` spec as a :class:`PolicyConfig`.

    ``evictionsPerHour: 0`` and ``maxUnavailable: 0`` allow no eviction at all (they never
    mean "no limit").

    Raises:
        SpecError: naming the field (``spec.rebinding.evictionsPerHour``, ...).
    """
    if not isinstance(spec, Mapping):
        raise SpecError("spec", "expected an object")
    policy = _enum(spec.get("policy"), PLACEMENT_POLICIES, "spec.policy", PolicyConfig.policy)
    objective = _enum(spec.get("objective"), _OBJECTIVES, "spec.objective", "balanced")

    rs = _get(spec, "rightSizing", "spec", Mapping) or {}
    rs_default = RightSizingConfig()
    min_conf = _number(rs, "minConfidence", "spec.rightSizing", rs_default.min_confidence, 0, 1)
    tolerance = _number(rs, "tolerance", "spec.rightSizing", rs_default.tolerance, 0,
                        TOLERANCE_MAX)
    enabled = _get(rs, "enabled", "spec.rightSizing", bool)
    right_sizing = RightSizingConfig(
        rs_default.enabled if enabled is None else enabled, min_conf, tolerance
    )

    rb = _get(spec, "rebinding", "spec", Mapping) or {}
    rb_default = RebindingConfig()
    per_hour = _integer(rb, "evictionsPerHour", "spec.rebinding",
                        rb_default.evictions_per_hour, 0, LIMIT_MAX)
    max_unavail = _integer(rb, "maxUnavailable", "spec.rebinding", rb_default.max_unavailable,
                           0, LIMIT_MAX)
    threshold = _number(rb, "contentionThreshold", "spec.rebinding",
                        rb_default.contention_threshold, 0, THRESHOLD_MAX)
    rb_enabled = _get(rb, "enabled", "spec.rebinding", bool)
    dry_run = _get(rb, "dryRun", "spec.rebinding", bool)
    rebinding = RebindingConfig(
        rb_default.enabled if rb_enabled is None else rb_enabled,
        per_hour,
        max_unavail,
        rb_default.dry_run if dry_run is None else dry_run,
        threshold,
    )
    weight = _number(spec, "interferenceWeight", "spec", PolicyConfig.interference_weight,
                     0, 100)
    try:
        score = parse_score_weights(_get(spec, "score", "spec", Mapping), "spec.score")
    except ValueError as exc:
        field_path, _, message = str(exc).partition(": ")
        raise SpecError(field_path, message) from None
    return PolicyConfig(name, policy, objective, right_sizing, rebinding, weight, score)


def _number(obj: Mapping[str, Any], key: str, path: str, default: float, lo: float,
            hi: float) -> float:
    value = obj.get(key)
    if value is None:
        return float(default)
    if (not isinstance(value, int | float) or isinstance(value, bool)
            or not math.isfinite(value) or not lo <= value <= hi):
        raise SpecError(f"{path}.{key}", f"expected a number in [{lo:g}, {hi:g}], got "
                        f"{_short(value)}")
    return float(value)


def _integer(obj: Mapping[str, Any], key: str, path: str, default: int, lo: int = 0,
             hi: int = LIMIT_MAX) -> int:
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise SpecError(f"{path}.{key}", f"expected an integer in [{lo}, {hi}], got "
                        f"{_short(value)}")
    return value
