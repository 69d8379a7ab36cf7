"""Custom-resource specs parsed into typed values, shared by the operator and the simulator.

The CRDs in ``manifests/crds/`` check structure (types, enums, required fields, defaults);
this module checks what a structural schema cannot (``min <= max``, quantities, a
throughput target above zero) and turns a spec ``dict`` into :mod:`cohabit.model` and
:class:`PolicyConfig` values. Every error is a :class:`SpecError` naming the field with its
JSON path (``spec.bounds.min.cpu``), which the operator reports in the ``Invalid`` condition.

No kubernetes import here: input is the plain ``dict`` kopf hands to handlers (or YAML).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cohabit.config.placement import ScoreWeights, parse_score_weights
from cohabit.config.quantity import QuantityError, cpu_milli, memory_mib
from cohabit.model import InterferenceProfile, QosTarget, Resources, Workload, WorkloadKind

__all__ = [
    "GROUP",
    "VERSION",
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

_KINDS = {
    ("DatabaseWorkload", None): WorkloadKind.DATABASE,
    ("GpuWorkload", "Inference"): WorkloadKind.GPU_INFERENCE,
    ("GpuWorkload", "Batch"): WorkloadKind.GPU_BATCH,
}
_TARGET_KINDS = ("Deployment", "StatefulSet", "Job")
_MODES = ("Recommend", "Apply")
_PLACEMENTS = ("managed", "unmanaged")
_OBJECTIVES = ("balanced", "packing", "qos")


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
    """Cluster-wide eviction budget over a sliding hour (the actuator enforces it)."""

    max_unavailable: int = 1
    """Pods of one workload that may be evicted-and-not-yet-running at once."""

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
    """

    workload: Workload
    policy_ref: str = "default"
    qos_window_s: float = 3600.0
    containers: tuple[str, ...] = ()
    interference: InterferenceProfile | None = None


def _get(obj: Mapping[str, Any], key: str, path: str, kind: type | tuple[type, ...]) -> Any:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise SpecError(f"{path}.{key}", f"expected {name}, got {value!r}")
    return value


def _resources(obj: Mapping[str, Any] | None, path: str) -> Resources:
    if obj is None:
        return Resources()
    if not isinstance(obj, Mapping):
        raise SpecError(path, f"expected an object, got {obj!r}")
    unknown = set(obj) - {"cpu", "memory", "gpuMilli", "gpuMemory"}
    if unknown:
        raise SpecError(f"{path}.{sorted(unknown)[0]}", "unknown resource")
    try:
        cpu = cpu_milli(obj["cpu"]) if obj.get("cpu") is not None else 0
    except QuantityError as exc:
        raise SpecError(f"{path}.cpu", str(exc)) from exc
    try:
        mem = memory_mib(obj["memory"]) if obj.get("memory") is not None else 0
    except QuantityError as exc:
        raise SpecError(f"{path}.memory", str(exc)) from exc
    try:
        gmem = memory_mib(obj["gpuMemory"]) if obj.get("gpuMemory") is not None else 0
    except QuantityError as exc:
        raise SpecError(f"{path}.gpuMemory", str(exc)) from exc
    gpu = obj.get("gpuMilli", 0)
    if not isinstance(gpu, int) or isinstance(gpu, bool) or gpu < 0:
        raise SpecError(f"{path}.gpuMilli", f"expected a non-negative integer, got {gpu!r}")
    return Resources(cpu, mem, gpu, gmem)


def _enum(value: Any, allowed: tuple[str, ...], path: str, default: str) -> str:
    if value is None:
        return default
    if value not in allowed:
        raise SpecError(path, f"{value!r} is not one of {', '.join(allowed)}")
    return value


def parse_workload(
    kind: str, spec: Mapping[str, Any], *, name: str, namespace: str = "default"
) -> WorkloadSpec:
    """A ``DatabaseWorkload``/``GpuWorkload`` spec as a :class:`WorkloadSpec`.

    Args:
        kind: the resource kind, ``"DatabaseWorkload"`` or ``"GpuWorkload"``.
        spec: the resource's ``spec`` mapping.
        name, namespace: the resource's metadata.

    Raises:
        SpecError: naming the field (``spec.targetRef.kind``, ``spec.bounds.min.cpu``, ...).
    """
    if not isinstance(spec, Mapping):
        raise SpecError("spec", "expected an object")
    if kind == "DatabaseWorkload":
        model_kind = _KINDS[(kind, None)]
    elif kind == "GpuWorkload":
        wtype = _enum(spec.get("workloadType"), ("Inference", "Batch"), "spec.workloadType",
                      "Inference")
        model_kind = _KINDS[(kind, wtype)]
    else:
        raise SpecError("kind", f"{kind!r} is not DatabaseWorkload or GpuWorkload")

    target = _get(spec, "targetRef", "spec", Mapping)
    if target is None:
        raise SpecError("spec.targetRef", "is required")
    target_kind = _enum(target.get("kind"), _TARGET_KINDS, "spec.targetRef.kind", "Deployment")
    target_name = _get(target, "name", "spec.targetRef", str)
    if not target_name:
        raise SpecError("spec.targetRef.name", "is required")

    qos = _get(spec, "qos", "spec", Mapping)
    if qos is None:
        raise SpecError("spec.qos", "is required")
    metric = qos.get("metric")
    if metric not in QOS_METRICS:
        raise SpecError("spec.qos.metric", f"{metric!r} is not one of {', '.join(QOS_METRICS)}")
    value = qos.get("target")
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise SpecError("spec.qos.target", f"expected a number above 0, got {value!r}")
    query = _get(qos, "query", "spec.qos", str) or ""
    window = qos.get("windowSeconds", 3600)
    if not isinstance(window, int | float) or isinstance(window, bool) or window <= 0:
        raise SpecError("spec.qos.windowSeconds", f"expected a number above 0, got {window!r}")

    bounds = _get(spec, "bounds", "spec", Mapping) or {}
    lower = _resources(bounds.get("min"), "spec.bounds.min")
    upper = _resources(bounds.get("max"), "spec.bounds.max")
    for attr, label in (("cpu_milli", "cpu"), ("memory_mib", "memory"),
                        ("gpu_milli", "gpuMilli"), ("gpu_memory_mib", "gpuMemory")):
        lo, hi = getattr(lower, attr), getattr(upper, attr)
        if hi > 0 and lo > hi:
            raise SpecError(f"spec.bounds.min.{label}",
                            f"minimum {lo} is above the maximum {hi} (spec.bounds.max.{label})")

    mode = _enum(spec.get("mode"), _MODES, "spec.mode", "Recommend")
    placement = _enum(spec.get("placement"), _PLACEMENTS, "spec.placement", "unmanaged")
    policy_ref = _get(spec, "policyRef", "spec", str) or "default"
    containers = spec.get("containers") or []
    if not isinstance(containers, list) or not all(isinstance(c, str) and c for c in containers):
        raise SpecError("spec.containers", "expected a list of container names")
    if len(set(containers)) != len(containers):
        raise SpecError("spec.containers", "lists a container twice")

    interference = _interference(spec.get("interference"))
    workload = Workload(
        name=name,
        namespace=namespace,
        kind=model_kind,
        qos_target=QosTarget(QOS_METRICS[metric], float(value), query),
        min_resources=lower,
        max_resources=upper,
        mode=mode,
        placement=placement,
        target_kind=target_kind,
        target_name=target_name,
    )
    return WorkloadSpec(workload, policy_ref, float(window), tuple(containers), interference)


def _interference(obj: Any) -> InterferenceProfile | None:
    if obj is None:
        return None
    if not isinstance(obj, Mapping):
        raise SpecError("spec.interference", f"expected an object, got {obj!r}")
    parts: dict[str, tuple[tuple[str, float], ...]] = {}
    for part in ("pressure", "sensitivity"):
        values = obj.get(part) or {}
        if not isinstance(values, Mapping):
            raise SpecError(f"spec.interference.{part}", "expected a map of resource -> number")
        for resource, v in values.items():
            if not isinstance(v, int | float) or isinstance(v, bool) or v < 0 or v != v:
                raise SpecError(f"spec.interference.{part}.{resource}",
                                f"expected a number >= 0, got {v!r}")
        parts[part] = tuple(sorted((str(k), float(v)) for k, v in values.items()))
    unknown = set(obj) - {"pressure", "sensitivity"}
    if unknown:
        raise SpecError(f"spec.interference.{sorted(unknown)[0]}", "unknown field")
    return InterferenceProfile(pressure=parts["pressure"], sensitivity=parts["sensitivity"])


def parse_policy(spec: Mapping[str, Any], *, name: str = "default") -> PolicyConfig:
    """A ``PlacementPolicy`` spec as a :class:`PolicyConfig`.

    Raises:
        SpecError: naming the field (``spec.rebinding.evictionsPerHour``, ...).
    """
    if not isinstance(spec, Mapping):
        raise SpecError("spec", "expected an object")
    policy = _get(spec, "policy", "spec", str) or PolicyConfig.policy
    objective = _enum(spec.get("objective"), _OBJECTIVES, "spec.objective", "balanced")

    rs = _get(spec, "rightSizing", "spec", Mapping) or {}
    rs_default = RightSizingConfig()
    min_conf = _number(rs, "minConfidence", "spec.rightSizing", rs_default.min_confidence, 0, 1)
    tolerance = _number(rs, "tolerance", "spec.rightSizing", rs_default.tolerance, 0, 10)
    enabled = _get(rs, "enabled", "spec.rightSizing", bool)
    right_sizing = RightSizingConfig(
        rs_default.enabled if enabled is None else enabled, min_conf, tolerance
    )

    rb = _get(spec, "rebinding", "spec", Mapping) or {}
    rb_default = RebindingConfig()
    per_hour = _integer(rb, "evictionsPerHour", "spec.rebinding", rb_default.evictions_per_hour)
    max_unavail = _integer(rb, "maxUnavailable", "spec.rebinding", rb_default.max_unavailable)
    threshold = _number(rb, "contentionThreshold", "spec.rebinding",
                        rb_default.contention_threshold, 0, 1e9)
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
    value = obj.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or not lo <= value <= hi:
        raise SpecError(f"{path}.{key}", f"expected a number in [{lo}, {hi}], got {value!r}")
    return float(value)


def _integer(obj: Mapping[str, Any], key: str, path: str, default: int) -> int:
    value = obj.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SpecError(f"{path}.{key}", f"expected a non-negative integer, got {value!r}")
    return value
