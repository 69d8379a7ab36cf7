"""The operator as a new user meets it: the README's and examples/README.md's commands run
exactly as printed (bash, in a checkout-like directory, ``~/.kube/config`` pointing at a
fresh real kube-apiserver 1.20 + etcd), the examples applied, the mistakes a user makes
applied too, and what the user then reads asserted: ``kubectl get`` (and ``-o wide``)
columns, conditions, Events in ``kubectl describe``, ``cohabit_pending_pods``, ``/healthz``.

* :func:`test_examples_helm_path_standalone` -- examples/README.md: ``helm install``, the
  examples, ``cohabit operator ... --standalone`` with a real Prometheus replaying Alibaba
  GenAI telemetry at the printed ``http://localhost:9090``; then the README's removal.
  With ``COHABIT_CAPTURE_EXAMPLES=<file>`` it writes what the user sees to that file
  (``bash scripts/capture-examples.sh`` -> ``examples/output.md``); otherwise it checks
  that the committed capture still has the shape seen now (columns, rows' READY/REASON,
  Event reasons).
* :func:`test_readme_no_helm_path_peered` -- README.md: the operator (peered, no
  ``--standalone``) started before the peering CRD exists pauses its watches (WARNING,
  ``/healthz`` not ready); the no-helm commands install everything; it resumes and works.

The only changes to the environment a user would have: ``PodDisruptionBudget`` is served
as ``policy/v1beta1`` by the 1.20 test server (the examples ship ``policy/v1``), and the
``COHABIT_*`` variables (short intervals, free ports) ride in the environment.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.integration.harness import binaries
from tests.integration.harness.cluster import start_local_cluster
from tests.integration.harness.kubelet import KubeletStandIn
from tests.integration.harness.nodes import create_node
from tests.integration.operator_support import (
    COHABIT,
    EXAMPLES,
    REPO,
    ShellOperator,
    bare,
    condition,
    described_events,
    documented_blocks,
    get,
    kubectl_table,
    materialize,
    start_genai_prometheus,
    translate_for_server,
    wait_for,
    workload_path,
)

README = REPO / "README.md"
EXAMPLES_README = EXAMPLES / "README.md"
CAPTURE = EXAMPLES / "output.md"
NS = "default"  # the examples carry no namespace: they land in the kubeconfig's namespace


class Checkout:
    """A fresh cluster plus a directory that looks like a checkout (helm/, manifests/,
    examples/) and a HOME whose ``~/.kube/config`` points at the cluster; :meth:`sh` runs a
    documented command line there with bash."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.cluster = start_local_cluster(tmp_path / "kube")
        self.api = self.cluster.api_client()
        self.kubelet = KubeletStandIn(self.cluster.api_client).start()
        self.cwd = tmp_path / "checkout"
        self.cwd.mkdir()
        for name in ("helm", "manifests"):
            (self.cwd / name).symlink_to(REPO / name)
        examples = self.cwd / "examples"
        examples.mkdir()
        version = self.cluster.version()
        for src in EXAMPLES.glob("*.yaml"):
            (examples / src.name).write_text(translate_for_server(src.read_text(), version))
        home = tmp_path / "home"
        (home / ".kube").mkdir(parents=True)
        shutil.copy(self.cluster.kubeconfig, home / ".kube" / "config")
        bindir = tmp_path / "bin"
        bindir.mkdir()
        for tool in ("helm", "kubectl"):
            (bindir / tool).symlink_to(binaries.require(tool))
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("COHABIT_", "KUBECONFIG", "HELM_"))}
        self.env.update({"HOME": str(home),
                         "PATH": f"{bindir}:{COHABIT.parent}:{os.environ.get('PATH', '')}",
                         "COHABIT_RECONCILE_INTERVAL_S": "5",
                         "COHABIT_SCHEDULER_INTERVAL_S": "1"})
        self.operators: list[ShellOperator] = []

    def sh(self, command: str, *, check: bool = True, timeout: float = 120.0
           ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["bash", "-c", command], cwd=self.cwd, env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"`{command}` exited {proc.returncode}\nstdout:\n"
                                 f"{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    def operator(self, command: str) -> ShellOperator:
        op = ShellOperator(command, self.cwd, self.env, self.tmp)
        self.operators.append(op)
        return op.start()

    def close(self) -> None:
        for op in self.operators:
            op.stop()
        self.kubelet.stop()
        self.api.close()
        self.cluster.stop()


@pytest.fixture
def checkout(tmp_path, request):
    if os.environ.get("KUBECONFIG") and os.environ.get("COHABIT_LOCAL_CLUSTER") != "1":
        pytest.skip("runs the documented install on fresh local API servers")
    co = Checkout(tmp_path)
    yield co
    failed = getattr(request.node, "rep_call", None)
    for op in co.operators:
        if failed is None or failed.failed:
            print(f"--- operator log (tail) ---\n{op.log(150)}")
    co.close()


def _nodes(api) -> None:
    create_node(api, "gpu-a10", gpus=2, gpu_product="A10", cpu_milli=32000, memory_mib=131072)
    create_node(api, "gpu-t4", gpus=4, gpu_product="T4", cpu_milli=32000, memory_mib=131072)
    create_node(api, "cpu-1", cpu_milli=64000, memory_mib=262144)


def _doc(name: str, kind: str) -> dict:
    return next(d for d in yaml.safe_load_all((EXAMPLES / name).read_text())
                if d and d["kind"] == kind)


def _mistakes(co: Checkout) -> dict[str, str]:
    """Write the mistakes of the issue as files a user would apply; returns name -> path."""
    out = co.tmp / "mistakes"
    out.mkdir()
    gpu = _doc("gpu-inference-workload.yaml", "GpuWorkload")
    db = _doc("postgres-workload.yaml", "DatabaseWorkload")
    bad_bounds = yaml.safe_load(yaml.safe_dump(gpu))
    bad_bounds["metadata"]["name"] = "bad-bounds"
    bad_bounds["spec"]["bounds"]["min"]["cpu"] = "16"  # above max 8: schema-valid, invalid
    ghost = yaml.safe_load(yaml.safe_dump(db))
    ghost["metadata"]["name"] = "ghost-db"
    ghost["spec"]["targetRef"]["name"] = "ghost-db"  # no such StatefulSet
    dep = _doc("gpu-inference-workload.yaml", "Deployment")
    gold_dep = yaml.safe_load(yaml.safe_dump(dep))
    gold_dep["metadata"]["name"] = "gold-inference"
    gold_dep["spec"]["replicas"] = 1
    gold_dep["spec"]["selector"]["matchLabels"] = {"app": "gold-inference"}
    gold_dep["spec"]["template"]["metadata"]["labels"] = {
        "app": "gold-inference", "cohabit.io/workload": "gold-inference"}
    gold = yaml.safe_load(yaml.safe_dump(gpu))
    gold["metadata"]["name"] = "gold-inference"
    gold["spec"]["targetRef"]["name"] = "gold-inference"
    gold["spec"]["policyRef"] = "gold"  # no such PlacementPolicy
    bad_mode = yaml.safe_load(yaml.safe_dump(gpu))
    bad_mode["metadata"]["name"] = "bad-mode"
    bad_mode["spec"]["mode"] = "Auto"
    bad_policy = {"apiVersion": "cohabit.io/v1alpha1", "kind": "PlacementPolicy",
                  "metadata": {"name": "tetris"}, "spec": {"policy": "tetris"}}
    trainer = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "whole-gpu-trainer"},
               "spec": {"schedulerName": "cohabit", "containers": [{
                   "name": "train", "image": "pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime",
                   "resources": {"requests": {"cpu": "8", "memory": "32Gi",
                                              "nvidia.com/gpu": "8"},
                                 "limits": {"nvidia.com/gpu": "8"}}}]}}
    files = {"bad-bounds": [bad_bounds], "ghost-db": [ghost], "gold": [gold_dep, gold],
             "bad-mode": [bad_mode], "bad-policy": [bad_policy], "trainer": [trainer]}
    paths = {}
    for name, docs in files.items():
        path = out / f"{name}.yaml"
        path.write_text(yaml.safe_dump_all(docs))
        paths[name] = str(path)
    return paths


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _events(api, namespace: str = NS) -> list[dict]:
    return [e for e in get(api, f"/api/v1/namespaces/{namespace}/events")["items"]
            if (e.get("source") or {}).get("component") == "cohabit"]


def _reasons_on(api, kind: str, name: str, namespace: str = NS) -> set[str]:
    return {e["reason"] for e in _events(api, namespace)
            if e["involvedObject"]["kind"] == kind and e["involvedObject"]["name"] == name}


def _rows(tables: list[list[dict[str, str]]]) -> dict[str, dict[str, str]]:
    return {row["NAME"].split("/")[-1]: row for table in tables for row in table}


def _ready(api, plural: str, name: str, status: str, reason: str):
    def probe():
        obj = get(api, workload_path(NS, plural, name))
        c = condition(obj, "Ready")
        return obj if c and (c["status"], c["reason"]) == (status, reason) else None
    return wait_for(probe, 150, f"{plural}/{name} Ready={status} ({reason})")


def test_examples_helm_path_standalone(checkout, shared_data, exporter):
    co = checkout
    blocks = documented_blocks(EXAMPLES_README)
    [walk] = [b for b in blocks if b[0].startswith("helm install")]
    applies = [c for c in walk[1:] if c.startswith("kubectl apply")]
    views = [c for c in walk[1:] if not c.startswith("kubectl apply")]  # as printed
    [run_operator] = [c for b in blocks for c in b if c.startswith("cohabit operator")]
    assert "--standalone" in run_operator and len(applies) == 4
    _nodes(co.api)

    # 1. install and apply as printed: no errors, no "apply over a create" warning
    co.sh(walk[0])
    for command in applies:
        result = co.sh(command)
        assert "last-applied-configuration" not in result.stderr, result.stderr

    # 2. the mistakes: two the schema refuses, four the operator reports
    mistakes = _mistakes(co)
    for name in ("bad-mode", "bad-policy"):
        refused = co.sh(f"kubectl apply -f {mistakes[name]}", check=False)
        field = "spec.mode" if name == "bad-mode" else "spec.policy"
        assert refused.returncode != 0 and field in refused.stderr, refused.stderr
    for name in ("bad-bounds", "ghost-db", "gold", "trainer"):
        co.sh(f"kubectl apply -f {mistakes[name]}")

    # 3. the pods the controllers would create (none run on the test server)
    dep = lambda n: get(co.api, f"/apis/apps/v1/namespaces/{NS}/deployments/{n}")  # noqa: E731
    sd = materialize(co.api, NS, dep("sd-inference"))
    materialize(co.api, NS, dep("batch-embedder"))
    materialize(co.api, NS, dep("gold-inference"))
    materialize(co.api, NS, get(co.api, f"/apis/apps/v1/namespaces/{NS}/statefulsets/"
                                         "orders-db"))

    # 4. Prometheus where the printed command expects it, replaying GenAI telemetry
    sd_pods = [p["metadata"]["name"] for p in sd]
    port = 9090 if _port_free(9090) else None
    prom = start_genai_prometheus(shared_data, exporter, co.tmp / "prometheus", NS, sd_pods,
                                  "server", "sd-inference", port=port)
    command = run_operator if port else run_operator.replace("http://localhost:9090", prom.url)
    try:
        op = co.operator(command)
        _check_helm_walkthrough(co, op, views, sd_pods)
    finally:
        prom.stop()


def _check_helm_walkthrough(co: Checkout, op: ShellOperator, views: list[str],
                            sd_pods: list[str]) -> None:
    api = co.api
    # -- conditions, each mistake with its own reason ------------------------------------------
    sd = _ready(api, "gpuworkloads", "sd-inference", "True", "Applying")
    _ready(api, "gpuworkloads", "bad-bounds", "False", "InvalidSpec")
    _ready(api, "databaseworkloads", "ghost-db", "False", "TargetNotFound")
    gold = _ready(api, "gpuworkloads", "gold-inference", "False", "PolicyNotFound")
    orders = _ready(api, "databaseworkloads", "orders-db", "False", "InsufficientHistory")
    assert "'gold' does not exist" in condition(gold, "Ready")["message"]
    assert condition(gold, "Placed")["reason"] == "PolicyNotFound"
    assert "spec.bounds.min.cpu" in condition(
        get(api, workload_path(NS, "gpuworkloads", "bad-bounds")), "Invalid")["message"]
    rec = sd["status"]["recommendations"][0]
    assert rec["target"]["gpu"].endswith("m") and rec["target"]["memory"].endswith(("Mi", "Gi"))
    # nothing measured, nothing shown (VPA's convention)
    assert orders["status"]["recommendations"] == [] and "confidence" not in orders["status"]
    assert "violations" not in orders["status"]["qos"]

    # -- Events --------------------------------------------------------------------------------
    def events_seen():
        pods = {p: _reasons_on(api, "Pod", p) for p in
                (*sd_pods, "orders-db-0", "whole-gpu-trainer", "gold-inference-00000")}
        work = {w: _reasons_on(api, k, w) for k, w in
                (("GpuWorkload", "sd-inference"), ("GpuWorkload", "bad-bounds"),
                 ("DatabaseWorkload", "ghost-db"), ("GpuWorkload", "gold-inference"),
                 ("DatabaseWorkload", "orders-db"))}
        ok = (all("Scheduled" in pods[p] for p in (*sd_pods, "orders-db-0"))
              and "FailedScheduling" in pods["whole-gpu-trainer"]
              and "FailedScheduling" in pods["gold-inference-00000"]
              and "Resized" in work["sd-inference"] and "InvalidSpec" in work["bad-bounds"]
              and "TargetNotFound" in work["ghost-db"]
              and "PolicyNotFound" in work["gold-inference"]
              and "LowConfidence" in work["orders-db"])
        return (pods, work) if ok else None

    wait_for(events_seen, 90, "the Events of every action and mistake")
    messages = {(e["involvedObject"]["name"], e["reason"]): e for e in _events(api)}
    trainer = messages[("whole-gpu-trainer", "FailedScheduling")]
    assert trainer["message"].startswith("0/3 nodes are available: ")
    assert "Insufficient nvidia.com/gpu" in trainer["message"]
    assert trainer["type"] == "Warning" and trainer["count"] >= 1
    assert "no PlacementPolicy named 'gold'" in messages[
        ("gold-inference-00000", "FailedScheduling")]["message"]
    scheduled = messages[(sd_pods[0], "Scheduled")]
    assert scheduled["message"].startswith(f"Successfully assigned {NS}/{sd_pods[0]} to ")

    # -- metrics and /healthz ------------------------------------------------------------------
    wait_for(lambda: op.metrics().get(("cohabit_pending_pods", ())) == 2, 30,
             "cohabit_pending_pods counting the trainer and the pod of the missing policy")
    # (kopf caches the probe's answer for 10 s: a cached answer may predate the last
    # workloads' reconciles, so wait for the whole count, not only the invalid one)
    state = wait_for(lambda: (lambda s: s if (s["invalid"], s["workloads"], s["policies"])
                              == (1, 4, 2) else None)(op.health()["state"]), 30,
                     "/healthz counting 4 workloads, 2 policies and the invalid workload")
    assert state["ready"] and state["mode"] == "standalone" and not state["paused"]
    metrics = op.metrics()
    labels = (("container", "server"), ("kind", "GpuWorkload"), ("namespace", NS),
              ("workload", "sd-inference"))
    assert 0.2 <= metrics[("cohabit_recommendation_gpus", labels)] <= 1.0
    assert ("cohabit_qos_violations", labels[1:]) in metrics

    # -- what the user types -------------------------------------------------------------------
    outputs = {bare(command): co.sh(command).stdout for command in views}
    plain = _rows(kubectl_table(outputs["kubectl get dbworkloads,gpuworkloads"]))
    wide = _rows(kubectl_table(outputs["kubectl get dbworkloads,gpuworkloads -o wide"]))
    gpu_header = next(t for t in kubectl_table(outputs["kubectl get dbworkloads,gpuworkloads"])
                      if any(r["NAME"].endswith("sd-inference") for r in t))[0].keys()
    assert list(gpu_header) == ["NAME", "TARGET", "MODE", "READY", "CPU", "MEMORY", "GPU",
                                "GPU-MEM", "CONFIDENCE", "QOS", "AGE"]
    row = plain["sd-inference"]  # quantities (the values move with the live replay)
    assert row["READY"] == "True" and re.fullmatch(r"\d+m|\d+", row["GPU"])
    assert re.fullmatch(r"\d+(Mi|Gi)", row["MEMORY"]) and re.fullmatch(r"\d+(Mi|Gi)",
                                                                       row["GPU-MEM"])
    assert re.fullmatch(r"\d+ms (<=|>) 30000ms", row["QOS"]), row["QOS"]
    assert 0.5 <= float(row["CONFIDENCE"]) <= 1.0
    assert plain["bad-bounds"]["READY"] == "False"
    assert plain["orders-db"]["CPU"] in ("", "<none>")  # not measured: empty, not 0
    assert {k: wide[k]["REASON"] for k in wide} == {
        "orders-db": "InsufficientHistory", "ghost-db": "TargetNotFound",
        "sd-inference": "Applying", "bad-bounds": "InvalidSpec",
        "gold-inference": "PolicyNotFound"}
    assert wide["sd-inference"]["NODE"] == "gpu-a10"
    assert wide["sd-inference"]["QOS-TARGET"] == "30000"
    described = described_events(outputs["kubectl describe gpuworkload sd-inference"])
    assert {"Resized"} <= {e["Reason"] for e in described}
    assert all(e["From"] == "cohabit" for e in described)
    listed = outputs["kubectl get events --field-selector source=cohabit"]
    assert "FailedScheduling" in listed and "Scheduled" in listed and "Resized" in listed
    extra = {"kubectl describe pod " + sd_pods[0]: None,
             "kubectl describe pod whole-gpu-trainer": None,
             "kubectl describe gpuworkload gold-inference": None,
             "kubectl describe gpuworkload bad-bounds": None}
    for command in extra:
        extra[command] = co.sh(command).stdout
    assert "Scheduled" in {e["Reason"] for e in described_events(
        extra["kubectl describe pod " + sd_pods[0]])}
    _capture_or_check({**outputs, **extra}, op)

    # -- removing cohabit as the README says, while the operator runs --------------------------
    [removal] = [b for b in documented_blocks(README) if b[0].startswith("kubectl delete")]
    for command in removal:
        co.sh(command, timeout=90)
    crds = get(api, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]
    assert not [c for c in crds if c["spec"]["group"] in ("cohabit.io", "kopf.dev")]


def _shape(outputs: dict[str, str]) -> dict[str, object]:
    """What must stay true of a capture: table columns and each workload's READY and
    REASON."""
    shape: dict[str, object] = {}
    for command, text in outputs.items():
        if command.startswith("kubectl get") and "jsonpath" not in command and \
                "events" not in command:
            tables = kubectl_table(text)
            shape[command + " columns"] = [list(t[0].keys()) for t in tables if t]
            if "-o wide" in command:
                shape[command + " rows"] = sorted(
                    (r["NAME"], r.get("READY", ""), r.get("REASON", "")) for t in tables
                    for r in t)
    return shape


def _reasons(outputs: dict[str, str]) -> dict[str, set[str]]:
    """Event reasons per ``describe`` and ``get events`` command."""
    out = {}
    for command, text in outputs.items():
        if command.startswith("kubectl describe"):
            out[command] = {e["Reason"] for e in described_events(text)}
        elif command.startswith("kubectl get events"):
            out[command] = {r["REASON"] for t in kubectl_table(text) for r in t}
    return out


def _capture_blocks(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    command = None
    body: list[str] = []
    inside = False
    for line in text.splitlines():
        if line.startswith("$ ") and not inside:
            command = line[2:]
        elif line.startswith("```"):
            inside = not inside
            if not inside and command is not None:
                out[command] = "\n".join(body)
                body, command = [], None
        elif inside:
            body.append(line)
    return out


def _capture_or_check(outputs: dict[str, str], op: ShellOperator) -> None:
    target = os.environ.get("COHABIT_CAPTURE_EXAMPLES")
    if target:
        _write_capture(Path(target), outputs, op)
        return
    assert CAPTURE.exists(), "examples/output.md is missing: bash scripts/capture-examples.sh"
    committed = _capture_blocks(CAPTURE.read_text())
    missing = set(outputs) - set(committed)
    assert not missing, f"not in examples/output.md: {missing}; bash scripts/capture-examples.sh"
    ours = _shape(outputs)
    theirs = _shape({c: committed[c] for c in outputs})
    assert ours == theirs, "examples/output.md is stale: bash scripts/capture-examples.sh"
    # every Event reason the capture shows still happens (a run may show more: a repeat
    # that was not due yet when the capture was taken)
    live = _reasons(outputs)
    for command, reasons in _reasons({c: committed[c] for c in outputs}).items():
        assert reasons <= live[command], (command, reasons - live[command])


def _write_capture(path: Path, outputs: dict[str, str], op: ShellOperator) -> None:
    import json

    stamp = time.strftime("%Y-%m-%d", time.gmtime())
    health = json.dumps(op.health()["state"], indent=2, sort_keys=True)
    metrics = op.metrics()
    wanted = ("cohabit_pending_pods", "cohabit_recommendation_", "cohabit_workloads",
              "cohabit_qos_violations")
    metric_lines = sorted(
        f"{name}{{{','.join(f'{k}={v!r}' for k, v in labels)}}} {value:g}"
        .replace("'", '"').replace("{}", "")
        for (name, labels), value in metrics.items() if name.startswith(wanted))
    parts = [
        "# What the examples look like",
        "",
        f"Captured {stamp} by `bash scripts/capture-examples.sh` "
        "(`tests/integration/test_walkthrough.py`): the commands of `examples/README.md` run "
        "as printed against a real kube-apiserver 1.20 with the example nodes `gpu-a10` "
        "(2 x A10), `gpu-t4` (4 x T4) and `cpu-1`, the operator run as printed "
        "(`--standalone`) with a real Prometheus replaying Alibaba GenAI telemetry for "
        "`sd-inference`, and the mistakes of the table in `examples/README.md` applied "
        "(`bad-bounds`, `ghost-db`, `gold-inference` with `policyRef: gold`, and "
        "`whole-gpu-trainer`, a pod asking for 8 GPUs). The test fails when the live output "
        "no longer has this shape (columns, READY/REASON, Event reasons). Ages, times and "
        "generated pod names differ from run to run.",
        "",
    ]
    for command, text in outputs.items():
        parts += [f"$ {command}", "```", text.rstrip(), "```", ""]
    parts += ["`/healthz` (the kopf probe `state`):", "```", health, "```", "",
              "`/metrics` (cohabit's own series):", "```", *metric_lines, "```", ""]
    path.write_text("\n".join(parts))


def test_readme_no_helm_path_peered(checkout):
    co = checkout
    blocks = documented_blocks(README, "## Operator: workloads on a cluster")
    [no_helm] = [b for b in blocks if b[0] == "kubectl apply -f manifests/crds/"]
    [walk] = [b for b in blocks if b[0].startswith("helm install")]
    [run_operator] = [c for b in blocks for c in b if c.startswith("cohabit operator")]
    assert "--standalone" not in run_operator
    _nodes(co.api)

    # 1. a peered operator whose peering CRD is missing: every watch paused, and it says so
    co.sh("kubectl apply -f manifests/crds/cohabit.io_databaseworkloads.yaml "
          "-f manifests/crds/cohabit.io_gpuworkloads.yaml "
          "-f manifests/crds/cohabit.io_placementpolicies.yaml")
    op = co.operator(run_operator)
    paused = wait_for(lambda: op.health()["state"]["paused"], 60, "paused watches")
    assert not op.health()["state"]["ready"]
    assert all("peering CRD" in why for why in paused.values())
    wait_for(lambda: "WARNING" in op.log(200) and "paused: the kopf peering CRD" in op.log(200),
             30, "the pause logged at WARNING")

    # 2. the documented install without helm, exactly as printed
    for command in no_helm:
        co.sh(command)
    state = wait_for(lambda: (lambda s: s if s["ready"] and s["policies"] == 1 else None)(
        op.health()["state"]), 90, "the operator resumes and accepts the default policy")
    assert state["mode"] == "peering cohabit"
    assert get(co.api, "/api/v1/namespaces/cohabit-system")["status"]["phase"] == "Active"

    # 3. the README's examples and views
    for command in (c for c in walk[1:] if c.startswith("kubectl apply")):
        co.sh(command)
    dep = get(co.api, f"/apis/apps/v1/namespaces/{NS}/deployments/sd-inference")
    sd = [p["metadata"]["name"] for p in materialize(co.api, NS, dep)]
    materialize(co.api, NS, get(co.api, f"/apis/apps/v1/namespaces/{NS}/statefulsets/"
                                         "orders-db"))
    wait_for(lambda: all("Scheduled" in _reasons_on(co.api, "Pod", p)
                         for p in (*sd, "orders-db-0")), 60, "Scheduled Events on the pods")
    # nothing listens on the printed Prometheus URL here: low confidence, said once
    obj = _ready(co.api, "gpuworkloads", "sd-inference", "False", "TelemetryUnavailable")
    assert obj["status"]["recommendations"] == []
    wait_for(lambda: get(co.api, workload_path(NS, "gpuworkloads", "sd-inference"))[
        "status"].get("node"), 30, "the status naming the pods' node")
    outputs = {bare(c): co.sh(c).stdout for c in walk[1:] if not c.startswith("kubectl apply")}
    rows = _rows(kubectl_table(outputs["kubectl get dbworkloads,gpuworkloads -o wide"]))
    assert rows["sd-inference"]["REASON"] == "TelemetryUnavailable"
    assert rows["sd-inference"]["NODE"] == "gpu-a10"
    events = described_events(outputs["kubectl describe gpuworkload sd-inference"])
    # the latest LowConfidence Event says why now (an earlier Normal one, "NoPods", appears
    # when the operator reconciled before the StatefulSet's pod existed)
    low = [e for e in events if e["Reason"] == "LowConfidence"]
    assert low and low[-1]["Type"] == "Warning" and low[-1]["From"] == "cohabit"
    assert op.metrics().get(("cohabit_pending_pods", ())) == 0
    log = op.logs()
    assert "[default/sd-inference] reconciled GpuWorkload: Ready=False" in log
    assert "watch of " in log and " resumed" in log
