"""CRDs: the chart's equal manifests/crds/, the generator reproduces them, the schemas are
structural enough to validate the examples, and they accept/reject what the parser does."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
CHART_CRDS = ROOT / "helm" / "cohabit" / "crds"
MANIFEST_CRDS = ROOT / "manifests" / "crds"
EXAMPLES = ROOT / "examples"


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_crds", ROOT / "manifests" / "gen_crds.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _crds() -> dict[str, dict]:
    out = {}
    for path in sorted(MANIFEST_CRDS.glob("cohabit.io_*.yaml")):
        crd = yaml.safe_load(path.read_text())
        out[crd["spec"]["names"]["kind"]] = crd
    return out


def _openapi_to_jsonschema(node):
    """apiextensions' OpenAPI v3 subset -> JSON Schema draft 4 (exclusiveMinimum is a bool
    there too); x-kubernetes-* keys are dropped."""
    if isinstance(node, dict):
        return {k: _openapi_to_jsonschema(v) for k, v in node.items()
                if not k.startswith("x-kubernetes-") and k != "default"}
    if isinstance(node, list):
        return [_openapi_to_jsonschema(v) for v in node]
    return node


def _validator(kind: str) -> jsonschema.Draft4Validator:
    schema = _crds()[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return jsonschema.Draft4Validator(_openapi_to_jsonschema(schema))


def test_chart_crds_equal_manifests():
    chart = {p.name: p.read_text() for p in CHART_CRDS.glob("*.yaml")}
    manifests = {p.name: p.read_text() for p in MANIFEST_CRDS.glob("*.yaml")}
    assert chart and chart == manifests


def test_generator_reproduces_committed_crds():
    gen = _load_generator()
    for name, obj in gen.build().items():
        assert (MANIFEST_CRDS / name).read_text() == gen.render(obj), name


def test_crd_conventions():
    crds = _crds()
    assert set(crds) == {"DatabaseWorkload", "GpuWorkload", "PlacementPolicy"}
    assert crds["PlacementPolicy"]["spec"]["scope"] == "Cluster"
    for kind, crd in crds.items():
        assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
        assert crd["spec"]["group"] == "cohabit.io"
        version = crd["spec"]["versions"][0]
        assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
        assert crd["spec"]["names"]["shortNames"], kind
        assert version["additionalPrinterColumns"], kind
        schema = version["schema"]["openAPIV3Schema"]
        assert schema["type"] == "object" and "status" in schema["properties"]


def test_workload_kinds_share_one_schema_core():
    crds = _crds()
    db = crds["DatabaseWorkload"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    gpu = crds["GpuWorkload"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    db_spec, gpu_spec = db["properties"]["spec"]["properties"], gpu["properties"]["spec"][
        "properties"]
    core = set(db_spec) & set(gpu_spec)
    assert {"targetRef", "qos", "bounds", "mode", "placement", "policyRef"} <= core
    for key in core - {"qos"}:
        assert db_spec[key] == gpu_spec[key], key
    # A DatabaseWorkload's qos adds the offered load of the online capacity planner, and its
    # status that planner's decision; the rest is shared.
    db_qos = {**db_spec["qos"], "properties": dict(db_spec["qos"]["properties"])}
    assert "offeredLoadQuery" in db_qos["properties"]
    db_qos["properties"].pop("offeredLoadQuery")
    assert db_qos == gpu_spec["qos"]
    db_status = {**db["properties"]["status"],
                 "properties": dict(db["properties"]["status"]["properties"])}
    assert "capacityPlanner" in db_status["properties"]
    db_status["properties"].pop("capacityPlanner")
    assert db_status == gpu["properties"]["status"]
    conditions = db["properties"]["status"]["properties"]["conditions"]["items"]["properties"]
    assert {"type", "status", "reason", "message", "lastTransitionTime",
            "observedGeneration"} <= set(conditions)


def _example_docs():
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("apiVersion", "").startswith("cohabit.io/"):
                yield pytest.param(doc, id=f"{path.stem}:{doc['kind']}")


@pytest.mark.parametrize("doc", list(_example_docs()))
def test_examples_validate_against_crd_schema(doc):
    errors = list(_validator(doc["kind"]).iter_errors(doc))
    assert not errors, [e.message for e in errors]


def _gpu_example():
    for path in EXAMPLES.glob("gpu-inference-workload.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc["kind"] == "GpuWorkload":
                return doc
    raise LookupError


@pytest.mark.parametrize(
    ("path", "value"),
    [(("spec", "mode"), "Auto"), (("spec", "qos", "metric"), "p50"),
     (("spec", "bounds", "max", "memory"), "lots"), (("spec", "targetRef", "kind"), "Pod"),
     (("spec", "qos", "target"), 0), (("spec", "bounds", "min", "gpuMilli"), -1)],
    ids=["mode", "metric", "quantity", "target-kind", "zero-target", "negative-gpu"],
)
def test_schema_rejects_bad_values(path, value):
    doc = copy.deepcopy(_gpu_example())
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert list(_validator("GpuWorkload").iter_errors(doc))


def _policy_schema() -> dict:
    crd = _crds()["PlacementPolicy"]
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def test_policy_enum_is_the_placement_registry_and_defaults_to_cohabit():
    from cohabit.config import PolicyConfig
    from cohabit.placement import POLICIES

    policy = _policy_schema()["properties"]["policy"]
    assert set(policy["enum"]) == set(POLICIES)
    assert policy["default"] == "cohabit" == PolicyConfig().policy
    weight = _policy_schema()["properties"]["interferenceWeight"]
    assert weight["default"] == PolicyConfig().interference_weight
    values = yaml.safe_load((ROOT / "helm" / "cohabit" / "values.yaml").read_text())
    assert values["defaultPolicy"]["policy"] == "cohabit"


def test_score_schema_defaults_are_the_score_weights():
    from cohabit.config.placement import SCORE_FIELDS, ScoreWeights, _camel

    props = _policy_schema()["properties"]["score"]["properties"]
    fields = {_camel(n) for n in SCORE_FIELDS} - {"interference"}  # spec.interferenceWeight
    assert set(props) == fields
    defaults = ScoreWeights()
    for name in SCORE_FIELDS:
        if name != "interference":
            assert props[_camel(name)]["default"] == getattr(defaults, name), name


@pytest.mark.parametrize(
    ("spec", "ok"),
    [({"policy": "cohabit"}, True), ({"policy": "fgd", "interferenceWeight": 0}, True),
     ({"policy": "tetris"}, False), ({"interferenceWeight": -1}, False),
     ({"interferenceWeight": 101}, False), ({"score": {"lookahead": 0.5}}, True),
     ({"score": {"lookahead": -1}}, False), ({"score": {"qosTarget": 0}}, False),
     ({"policy": "kube-knots"}, True)],
    ids=["cohabit", "fgd-weight-0", "unknown-policy", "negative-weight", "weight-above-100",
         "score-weight", "negative-score-weight", "target-zero", "baseline"],
)
def test_policy_schema_accepts_and_rejects(spec, ok):
    doc = {"apiVersion": "cohabit.io/v1alpha1", "kind": "PlacementPolicy",
           "metadata": {"name": "p"}, "spec": spec}
    errors = list(_validator("PlacementPolicy").iter_errors(doc))
    assert (not errors) == ok, [e.message for e in errors]
