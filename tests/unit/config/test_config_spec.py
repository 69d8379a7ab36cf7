"""Spec parsing: the shipped examples parse; bad specs name the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cohabit.config import (
    OperatorSettings,
    SettingsError,
    SpecError,
    cpu_milli,
    memory_mib,
    parse_policy,
    parse_quantity,
    parse_workload,
)
from cohabit.config.quantity import QuantityError
from cohabit.model import Resources, WorkloadKind

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _docs(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]


def _example(kind: str) -> dict:
    for name in ("postgres-workload.yaml", "gpu-inference-workload.yaml"):
        for doc in _docs(name):
            if doc["kind"] == kind:
                return doc
    raise LookupError(kind)


@pytest.mark.parametrize(
    ("text", "milli", "mib"),
    [("250m", 250, 1), ("1", 1000, 1), ("1.5", 1500, 1), ("2Gi", 2147483648000, 2048),
     ("512Mi", 536870912000, 512), ("1G", 10**12, 954), (3, 3000, 1), ("100k", 10**8, 1)],
    ids=["milli", "one", "fraction", "gibi", "mebi", "giga-rounds-up", "int", "kilo"],
)
def test_quantities(text, milli, mib):
    assert cpu_milli(text) == milli
    assert memory_mib(text) == mib  # rounded up: a request never shrinks


@pytest.mark.parametrize("bad", ["", "abc", "1x", "-1", "1Mi2", True, float("nan")],
                         ids=["empty", "word", "suffix", "negative", "junk", "bool", "nan"])
def test_bad_quantities_raise(bad):
    with pytest.raises(QuantityError):
        parse_quantity(bad)


def test_postgres_example_parses():
    doc = _example("DatabaseWorkload")
    spec = parse_workload(doc["kind"], doc["spec"], name=doc["metadata"]["name"],
                          namespace="shop")
    w = spec.workload
    assert w.kind == WorkloadKind.DATABASE
    assert (w.target_kind, w.target_name, w.key) == ("StatefulSet", "orders-db", "shop/orders-db")
    assert w.qos_target.metric == "p99_latency_ms" and w.qos_target.value == 20
    assert w.min_resources == Resources(500, 1024, 0, 0)
    assert w.max_resources == Resources(4000, 8192, 0, 0)
    assert (w.mode, w.placement, spec.policy_ref) == ("Recommend", "managed", "default")


def test_gpu_example_parses():
    doc = _example("GpuWorkload")
    w = parse_workload(doc["kind"], doc["spec"], name="sd-inference").workload
    assert w.kind == WorkloadKind.GPU_INFERENCE
    assert w.min_resources.gpu_milli == 200 and w.max_resources.gpu_memory_mib == 24 * 1024
    assert w.mode == "Apply"
    spec = parse_workload(doc["kind"], doc["spec"], name="sd-inference")
    assert dict(spec.interference.pressure) == {"gpu_sm": 0.6, "gpu_mem": 0.3}
    assert dict(spec.interference.sensitivity) == {"gpu_sm": 0.5, "pcie": 0.2}


def _spec(**changes):
    spec = {"targetRef": {"kind": "Deployment", "name": "x"},
            "qos": {"metric": "p99LatencyMs", "target": 10, "query": "up"}}
    for path, value in changes.items():
        node = spec
        keys = path.split("__")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return spec


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (_spec(bounds__min__cpu="2", bounds__max__cpu="1"), "spec.bounds.min.cpu"),
        (_spec(bounds__min__memory="8Gi", bounds__max__memory="1Gi"), "spec.bounds.min.memory"),
        (_spec(bounds__max__memory="lots"), "spec.bounds.max.memory"),
        (_spec(bounds__min__gpuMilli=-5), "spec.bounds.min.gpuMilli"),
        (_spec(bounds__min__disk="1Gi"), "spec.bounds.min.disk"),
        (_spec(qos__target=0), "spec.qos.target"),
        (_spec(qos__metric="p50"), "spec.qos.metric"),
        (_spec(qos__windowSeconds=-1), "spec.qos.windowSeconds"),
        (_spec(targetRef__kind="CronJob"), "spec.targetRef.kind"),
        (_spec(targetRef__name=""), "spec.targetRef.name"),
        (_spec(mode="Auto"), "spec.mode"),
        (_spec(placement="always"), "spec.placement"),
        (_spec(containers=["a", "a"]), "spec.containers"),
        (_spec(interference__pressure__gpu_sm=-1), "spec.interference.pressure.gpu_sm"),
        (_spec(interference__blast=1), "spec.interference.blast"),
        ({"qos": {"metric": "throughput", "target": 1, "query": "q"}}, "spec.targetRef"),
    ],
    ids=["cpu-min-above-max", "mem-min-above-max", "bad-quantity", "negative-gpu",
         "unknown-resource", "zero-target", "bad-metric", "bad-window", "bad-target-kind",
         "empty-target-name", "bad-mode", "bad-placement", "duplicate-container",
         "negative-pressure", "unknown-interference-field", "missing-target"],
)
def test_bad_workload_spec_names_field(spec, field):
    with pytest.raises(SpecError) as err:
        parse_workload("DatabaseWorkload", spec, name="x")
    assert err.value.field == field
    assert field in str(err.value)


def test_unknown_kind_is_rejected():
    with pytest.raises(SpecError, match="kind"):
        parse_workload("Pod", _spec(), name="x")


def test_policy_example_and_defaults():
    doc = _docs("placement-policy.yaml")[0]
    cfg = parse_policy(doc["spec"], name="default")
    assert cfg.policy == "cohabit" and cfg.rebinding.enabled and cfg.rebinding.dry_run
    assert cfg.rebinding.evictions_per_hour == 6 and cfg.right_sizing.min_confidence == 0.5
    assert cfg.interference_weight == 1.0
    empty = parse_policy({})
    assert empty.policy == "cohabit" and not empty.rebinding.enabled and empty.rebinding.dry_run
    from cohabit.config.placement import ScoreWeights

    assert empty.interference_weight == ScoreWeights().interference
    assert parse_policy({"interferenceWeight": 0}).interference_weight == 0.0


@pytest.mark.parametrize(
    ("spec", "field"),
    [({"rebinding": {"evictionsPerHour": -1}}, "spec.rebinding.evictionsPerHour"),
     ({"interferenceWeight": -1}, "spec.interferenceWeight"),
     ({"interferenceWeight": "high"}, "spec.interferenceWeight"),
     ({"rebinding": {"dryRun": "yes"}}, "spec.rebinding.dryRun"),
     ({"rightSizing": {"minConfidence": 2}}, "spec.rightSizing.minConfidence"),
     ({"objective": "cheapest"}, "spec.objective")],
    ids=["negative-budget", "negative-weight", "string-weight", "string-bool",
         "confidence-above-1", "bad-objective"],
)
def test_bad_policy_names_field(spec, field):
    with pytest.raises(SpecError) as err:
        parse_policy(spec)
    assert err.value.field == field


def test_settings_from_env():
    s = OperatorSettings.from_env({
        "COHABIT_PROMETHEUS_URL": "http://prom:9090", "COHABIT_RECONCILE_INTERVAL_S": "15",
        "COHABIT_NAMESPACE": "shop", "COHABIT_METRICS_PORT": "9000", "PATH": "/bin",
        "COHABIT_LEDGER_NAMESPACE": "cohabit-system"})
    assert s.prometheus.url == "http://prom:9090" and s.reconcile.interval_s == 15.0
    assert s.namespace == "shop" and s.metrics.port == 9000
    assert s.scheduler.name == "cohabit"  # untouched default


@pytest.mark.parametrize("env", [{"COHABIT_RECONCILE_INTERVAL_S": "soon"},
                                 {"COHABIT_PROMETHEUS_NOPE": "1"}], ids=["bad-float", "unknown"])
def test_bad_settings_name_the_variable(env):
    with pytest.raises(SettingsError, match=next(iter(env))):
        OperatorSettings.from_env(env)


def test_offered_load_query_turns_on_the_capacity_planner():
    spec = _spec(qos__offeredLoadQuery='sum(rate(pg_stat_database_xact_commit[1m]))')
    parsed = parse_workload("DatabaseWorkload", spec, name="x")
    assert parsed.offered_load_query.startswith("sum(rate(")
    assert parse_workload("DatabaseWorkload", _spec(), name="x").offered_load_query == ""


@pytest.mark.parametrize(
    ("kind", "spec", "message"),
    [
        ("GpuWorkload", _spec(qos__offeredLoadQuery="q"), "only a DatabaseWorkload"),
        ("DatabaseWorkload", _spec(qos__offeredLoadQuery="q", qos__metric="throughput"),
         "p99LatencyMs"),
        ("DatabaseWorkload", _spec(qos__offeredLoadQuery=""), "length 0"),
        ("DatabaseWorkload", _spec(qos__offeredLoadQuery=5), "expected"),
    ],
    ids=["gpu-workload", "throughput-metric", "empty", "not-a-string"],
)
def test_bad_offered_load_query_names_field(kind, spec, message):
    with pytest.raises(SpecError, match=message) as err:
        parse_workload(kind, spec, name="x")
    assert err.value.field == "spec.qos.offeredLoadQuery"


def test_policy_score_weights_are_parsed_and_named_on_error():
    from cohabit.config.placement import ScoreWeights

    cfg = parse_policy({"score": {"lookahead": 0.5, "lsProtection": 2},
                        "interferenceWeight": 0.2})
    assert cfg.score.lookahead == 0.5 and cfg.score.ls_protection == 2
    assert cfg.weights.interference == 0.2 and parse_policy({}).score == ScoreWeights()
    for bad, field in [({"score": {"lookahead": -1}}, "spec.score.lookahead"),
                       ({"score": {"interference": 1}}, "spec.score.interference"),
                       ({"score": 3}, "spec.score")]:
        with pytest.raises(SpecError) as exc:
            parse_policy(bad)
        assert exc.value.field == field
