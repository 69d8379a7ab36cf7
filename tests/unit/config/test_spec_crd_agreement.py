"""The spec parser and the CRD schema agree (regressions of issue 9: a 5,000-digit
``bounds.max.memory`` matched the CRD pattern and raised ``ValueError``, not ``SpecError``;
the parser took ``qos.windowSeconds: 1`` and a missing ``qos.query`` that the CRD forbids).

Both are fed the CRDs' own examples (``examples/*.yaml``), their boundary values and
Hypothesis-generated specs. The schema side sees what the API server would validate: nulls
and unknown fields pruned, then defaults applied (the documented structural-schema
behaviour), then validation against ``openAPIV3Schema`` with jsonschema. The contract:

* the CRD rejects -> the parser raises ``SpecError`` (on the raw spec too);
* the CRD accepts -> the parser returns a value, or a ``SpecError`` for a rule a schema cannot
  state (``min`` above ``max``, a quantity string above the largest accepted amount);
* never any other exception; parsing the defaulted spec gives what parsing the raw one does.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cohabit.config import SpecError, parse_policy, parse_workload
from cohabit.config.spec import (
    CPU_MAX_CORES,
    GPU_MILLI_MAX,
    INTERFERENCE_MAX,
    LIMIT_MAX,
    MEMORY_MAX_BYTES,
    NAME_MAX_LENGTH,
    QUERY_MAX_LENGTH,
    THRESHOLD_MAX,
    TOLERANCE_MAX,
    WINDOW_MAX_S,
    WINDOW_MIN_S,
)

ROOT = Path(__file__).resolve().parents[3]
PARSER_ONLY = re.compile(r"above the largest accepted|is above the maximum")
"""SpecError reasons for rules a structural schema cannot state."""


def _schemas() -> dict[str, dict]:
    out = {}
    for path in sorted((ROOT / "manifests" / "crds").glob("cohabit.io_*.yaml")):
        crd = yaml.safe_load(path.read_text())
        out[crd["spec"]["names"]["kind"]] = crd["spec"]["versions"][0]["schema"][
            "openAPIV3Schema"]
    return out


SCHEMAS = _schemas()


def _jsonschema(node: Any) -> Any:
    """apiextensions' OpenAPI subset as JSON Schema draft 4: ``x-kubernetes-list-type: set``
    is uniqueness, other ``x-kubernetes-*`` keys and ``default`` are dropped."""
    if isinstance(node, dict):
        out = {k: _jsonschema(v) for k, v in node.items()
               if not k.startswith("x-kubernetes-") and k != "default"}
        if node.get("x-kubernetes-list-type") == "set":
            out["uniqueItems"] = True
        return out
    if isinstance(node, list):
        return [_jsonschema(v) for v in node]
    return node


VALIDATORS = {k: jsonschema.Draft4Validator(_jsonschema(v)) for k, v in SCHEMAS.items()}


def server_view(schema: dict, value: Any) -> Any:
    """What the API server keeps of ``value`` before validating: nulls and fields the schema
    does not name pruned, defaults of absent fields applied (recursively)."""
    if not isinstance(value, dict) or schema.get("type") != "object":
        if isinstance(value, list) and "items" in schema:
            return [server_view(schema["items"], v) for v in value if v is not None]
        return value
    props = schema.get("properties")
    extra = schema.get("additionalProperties")
    out = {}
    for key, v in value.items():
        if v is None:
            continue
        if props is not None and key in props:
            out[key] = server_view(props[key], v)
        elif isinstance(extra, dict):
            out[key] = server_view(extra, v)
        elif props is None or schema.get("x-kubernetes-preserve-unknown-fields"):
            out[key] = v
    for key, sub in (props or {}).items():
        if key not in out and "default" in sub:
            out[key] = server_view(sub, copy.deepcopy(sub["default"]))
    return out


def crd_accepts(kind: str, spec: Any) -> bool:
    schema = SCHEMAS[kind]
    doc = {"apiVersion": "cohabit.io/v1alpha1", "kind": kind, "metadata": {"name": "x"}}
    if spec is not None:
        doc["spec"] = spec
    return VALIDATORS[kind].is_valid(server_view(schema, doc))


def defaulted(kind: str, spec: dict) -> dict:
    return server_view(SCHEMAS[kind], {"spec": spec})["spec"]


def parse(kind: str, spec: Any) -> Any:
    """The parsed value, or the SpecError; any other exception propagates (a failure)."""
    try:
        if kind == "PlacementPolicy":
            return parse_policy(spec, name="x")
        return parse_workload(kind, spec, name="x", namespace="ns")
    except SpecError as exc:
        return exc


def check(kind: str, spec: Any) -> tuple[bool, Any]:
    """Assert the contract of the module docstring for one spec; ``(crd ok, parsed)``."""
    ok = crd_accepts(kind, spec)
    raw = parse(kind, spec if spec is not None else {})
    if not ok:
        assert isinstance(raw, SpecError), f"CRD rejects but the parser took {spec!r}"
        return ok, raw
    view = parse(kind, defaulted(kind, spec if spec is not None else {}))
    if isinstance(view, SpecError):
        assert PARSER_ONLY.search(str(view)), f"CRD accepts, parser refuses: {view}"
    else:
        assert view == raw, "the CRD's defaults differ from the parser's"
    return ok, view


# -- the CRDs' own examples ----------------------------------------------------------------------

def _examples():
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and str(doc.get("apiVersion", "")).startswith("cohabit.io/"):
                yield pytest.param(doc, id=f"{path.stem}:{doc['kind']}")


@pytest.mark.parametrize("doc", list(_examples()))
def test_examples_pass_both(doc):
    ok, parsed = check(doc["kind"], doc["spec"])
    assert ok and not isinstance(parsed, SpecError), parsed


# -- boundary values -----------------------------------------------------------------------------

BASE = {"targetRef": {"kind": "Deployment", "name": "web"},
        "qos": {"metric": "p99LatencyMs", "target": 20, "query": "up"}}


def _with(path: str, value: Any, base: dict | None = None) -> dict:
    spec = copy.deepcopy(BASE if base is None else base)
    node = spec
    keys = path.split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    if value is _DELETE:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = value
    return spec


_DELETE = object()
W = "GpuWorkload"
D = "DatabaseWorkload"
P = "PlacementPolicy"
BOUNDARIES = [
    # (kind, spec, accepted by both)
    (W, _with("qos.windowSeconds", WINDOW_MIN_S - 1), False),
    (W, _with("qos.windowSeconds", 1), False),
    (W, _with("qos.windowSeconds", WINDOW_MIN_S), True),
    (W, _with("qos.windowSeconds", WINDOW_MAX_S), True),
    (W, _with("qos.windowSeconds", WINDOW_MAX_S + 1), False),
    (W, _with("qos.windowSeconds", 90.5), False),
    (W, _with("qos.windowSeconds", "60"), False),
    (W, _with("qos.query", _DELETE), False),
    (W, _with("qos.query", ""), False),
    (W, _with("qos.query", "x" * QUERY_MAX_LENGTH), True),
    (W, _with("qos.query", "x" * (QUERY_MAX_LENGTH + 1)), False),
    (W, _with("qos.metric", _DELETE), False),
    (W, _with("qos.target", 0), False),
    (W, _with("qos.target", 1e-9), True),
    (W, _with("qos.target", "20"), False),
    (W, _with("qos.target", True), False),
    (W, _with("bounds.max.memory", "9" * 5000 + "Mi"), False),
    (W, _with("bounds.max.memory", "1Ti"), True),
    (W, _with("bounds.max.memory", MEMORY_MAX_BYTES), True),
    (W, _with("bounds.max.memory", MEMORY_MAX_BYTES + 1), False),
    (W, _with("bounds.max.memory", -1), False),
    (W, _with("bounds.max.memory", "1e3"), False),
    (W, _with("bounds.max.memory", "1Pi"), False),
    (W, _with("bounds.max.memory", "+1"), False),
    (W, _with("bounds.max.memory", "1.5Gi"), True),
    (W, _with("bounds.max.memory", 1.5), False),
    (W, _with("bounds.min.cpu", CPU_MAX_CORES), True),
    (W, _with("bounds.min.cpu", CPU_MAX_CORES + 1), False),
    (W, _with("bounds.min.cpu", "0.5"), True),
    (W, _with("bounds.min.cpu", "1000000"), True),
    (W, _with("bounds.min.gpuMilli", GPU_MILLI_MAX), True),
    (W, _with("bounds.min.gpuMilli", GPU_MILLI_MAX + 1), False),
    (W, _with("bounds.min.gpuMilli", -1), False),
    (W, _with("targetRef.kind", _DELETE), False),
    (W, _with("targetRef.kind", "Pod"), False),
    (W, _with("targetRef.name", ""), False),
    (W, _with("targetRef.name", "n" * NAME_MAX_LENGTH), True),
    (W, _with("targetRef.name", "n" * (NAME_MAX_LENGTH + 1)), False),
    (W, _with("targetRef.apiVersion", 1), False),
    (W, _with("containers", ["a", "a"]), False),
    (W, _with("containers", [""]), False),
    (W, _with("containers", ["a", "b"]), True),
    (W, _with("workloadType", "Training"), False),
    (W, _with("mode", "Auto"), False),
    (W, _with("interference.pressure.gpu_sm", INTERFERENCE_MAX), True),
    (W, _with("interference.pressure.gpu_sm", INTERFERENCE_MAX + 0.5), False),
    (W, _with("interference.sensitivity.cpu", -0.1), False),
    (W, None, False),
    (D, _with("engine", "oracle"), False),
    (D, _with("engine", "mysql"), True),
    (P, {}, True),
    (P, {"rebinding": {"evictionsPerHour": 0, "maxUnavailable": 0}}, True),
    (P, {"rebinding": {"evictionsPerHour": LIMIT_MAX}}, True),
    (P, {"rebinding": {"evictionsPerHour": LIMIT_MAX + 1}}, False),
    (P, {"rebinding": {"maxUnavailable": -1}}, False),
    (P, {"rebinding": {"contentionThreshold": THRESHOLD_MAX}}, True),
    (P, {"rebinding": {"contentionThreshold": THRESHOLD_MAX * 10}}, False),
    (P, {"rightSizing": {"tolerance": TOLERANCE_MAX}}, True),
    (P, {"rightSizing": {"tolerance": TOLERANCE_MAX + 0.1}}, False),
    (P, {"rightSizing": {"minConfidence": 1.01}}, False),
    (P, {"policy": "tetris"}, False),
    (P, {"policy": "fgd"}, True),
    (P, {"interferenceWeight": 100}, True),
    (P, {"interferenceWeight": 100.01}, False),
    (P, {"rebinding": {"dryRun": "no"}}, False),
]


@pytest.mark.parametrize(("kind", "spec", "accepted"), BOUNDARIES,
                         ids=[f"{i:02d}-{k}" for i, (k, _, _) in enumerate(BOUNDARIES)])
def test_boundary_values_get_the_same_verdict(kind, spec, accepted):
    ok, parsed = check(kind, spec)
    assert ok == accepted
    assert isinstance(parsed, SpecError) == (not accepted), parsed


@pytest.mark.parametrize("spec", [_with("bounds.max.memory", "9" * 30 + "Mi"),
                                  _with("bounds.min.cpu", "1000001"),
                                  _with("bounds.min.cpu", "2", _with("bounds.max.cpu", "1"))],
                         ids=["memory-above-largest", "cpu-above-largest", "min-above-max"])
def test_parser_only_rules_are_clear_errors(spec):
    ok, parsed = check(W, spec)
    assert ok and isinstance(parsed, SpecError) and parsed.field.startswith("spec.bounds.")


def test_zero_budgets_parse_as_zero():
    cfg = parse_policy({"rebinding": {"evictionsPerHour": 0, "maxUnavailable": 0}})
    assert (cfg.rebinding.evictions_per_hour, cfg.rebinding.max_unavailable) == (0, 0)
    described = SCHEMAS[P]["properties"]["spec"]["properties"]["rebinding"]["properties"]
    assert "0 allows no eviction" in described["evictionsPerHour"]["description"]
    assert "0 allows no eviction" in described["maxUnavailable"]["description"]


# -- generated specs -----------------------------------------------------------------------------

JUNK = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.just(2**70),
                 st.just(-(2**70)), st.floats(-3.4e38, 3.4e38, allow_nan=False),
                 st.text(max_size=6), st.just("9" * 40), st.just([]), st.just({}))


def field(valid: st.SearchStrategy) -> st.SearchStrategy:
    """A spec field: usually valid, sometimes junk of any type."""
    return st.one_of(valid, valid, valid, JUNK)


QUANTITIES = st.one_of(
    st.integers(0, 2**62),
    st.from_regex(r"\A[0-9]{1,12}(\.[0-9]{1,3})?(m|k|M|G|T|Ki|Mi|Gi|Ti)?\Z"),
    st.sampled_from(["1e3", "1Pi", "-1", "+2", "", "1.5.5", "9" * 33]),
)
RESOURCES = st.fixed_dictionaries({}, optional={
    "cpu": field(QUANTITIES), "memory": field(QUANTITIES), "gpuMemory": field(QUANTITIES),
    "gpuMilli": field(st.integers(-5, GPU_MILLI_MAX + 5))})
PROFILE = st.dictionaries(st.sampled_from(["cpu", "gpu_sm", "pcie"]),
                          field(st.floats(-1, INTERFERENCE_MAX + 1, allow_nan=False)),
                          max_size=3)
WORKLOAD = st.fixed_dictionaries(
    {},
    optional={
        "targetRef": field(st.fixed_dictionaries({}, optional={
            "kind": field(st.sampled_from(["Deployment", "StatefulSet", "Job", "Pod"])),
            "name": field(st.text(min_size=0, max_size=4)),
            "apiVersion": field(st.just("apps/v1"))})),
        "qos": field(st.fixed_dictionaries({}, optional={
            "metric": field(st.sampled_from(["p99LatencyMs", "throughput", "p50"])),
            "target": field(st.floats(-1, 1e6, allow_nan=False)),
            "query": field(st.sampled_from(["", "up", "rate(x[5m])"])),
            "windowSeconds": field(st.integers(0, WINDOW_MAX_S + 5))})),
        "bounds": field(st.fixed_dictionaries({}, optional={"min": field(RESOURCES),
                                                            "max": field(RESOURCES)})),
        "containers": field(st.lists(st.sampled_from(["a", "b", ""]), max_size=3)),
        "mode": field(st.sampled_from(["Recommend", "Apply", "Auto"])),
        "placement": field(st.sampled_from(["managed", "unmanaged"])),
        "policyRef": field(st.sampled_from(["default", "gold", ""])),
        "workloadType": field(st.sampled_from(["Inference", "Batch", "Training"])),
        "engine": field(st.sampled_from(["postgres", "mysql", "oracle"])),
        "interference": field(st.fixed_dictionaries({}, optional={
            "pressure": field(PROFILE), "sensitivity": field(PROFILE)})),
    })
POLICY = st.fixed_dictionaries({}, optional={
    "policy": field(st.sampled_from(["cohabit", "fgd", "best-fit", "tetris"])),
    "objective": field(st.sampled_from(["balanced", "packing", "qos", "cheap"])),
    "interferenceWeight": field(st.floats(-1, 101, allow_nan=False)),
    "rightSizing": field(st.fixed_dictionaries({}, optional={
        "enabled": field(st.booleans()),
        "minConfidence": field(st.floats(-0.5, 1.5, allow_nan=False)),
        "tolerance": field(st.floats(-1, 11, allow_nan=False))})),
    "rebinding": field(st.fixed_dictionaries({}, optional={
        "enabled": field(st.booleans()), "dryRun": field(st.booleans()),
        "evictionsPerHour": field(st.integers(-1, LIMIT_MAX + 1)),
        "maxUnavailable": field(st.integers(-1, LIMIT_MAX + 1)),
        "contentionThreshold": field(st.floats(-1, THRESHOLD_MAX * 2, allow_nan=False))})),
})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from([W, D]), spec=WORKLOAD)
def test_generated_workload_specs_get_the_same_verdict(kind, spec):
    check(kind, spec)


@settings(max_examples=200, deadline=None)
@given(spec=POLICY)
def test_generated_policy_specs_get_the_same_verdict(spec):
    check(P, spec)


@settings(max_examples=100, deadline=None)
@given(spec=st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5),
                      st.lists(st.integers(), max_size=2),
                      st.dictionaries(st.text(max_size=3), JUNK, max_size=3)),
       kind=st.sampled_from([W, D, P]))
def test_any_json_is_a_value_or_a_spec_error(spec, kind):
    """Not even a mapping: the parser answers SpecError, never a traceback."""
    result = parse(kind, spec)
    assert result is not None


@pytest.mark.parametrize("value", [float("inf"), float("nan"), -float("inf")],
                         ids=["inf", "nan", "-inf"])
def test_non_json_numbers_from_yaml_are_spec_errors(value):
    """YAML (the simulator's input) can carry .inf/.nan, which JSON (the API) cannot."""
    for path in ("qos.target", "interference.pressure.cpu"):
        assert isinstance(parse(W, _with(path, value)), SpecError)
    assert isinstance(parse(P, {"interferenceWeight": value}), SpecError)
