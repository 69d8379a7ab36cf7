"""The chart's dashboard and alerts, checked for real (issue 14).

Static (helm only): ``helm lint --strict`` with every monitoring object on; the ServiceMonitor
and PodMonitor select the operator's metrics Service and the agent's pods by labels those
carry, on ports they name; the dashboard ConfigMap carries the Grafana sidecar's label and
valid dashboard JSON; ``promtool check rules`` passes on the rendered PrometheusRule.

Live: ``cohabit operator`` runs as the chart's service account against the real API server
(a fragmented A10 cluster whose PDB refuses the rebinding's eviction, a whole-GPU pod that
fits nowhere, a GpuWorkload with replayed GenAI telemetry and a strict QoS target, a
DatabaseWorkload without telemetry) and ``cohabit agent`` serves its NVML metrics; a second,
"monitoring" Prometheus scrapes both and loads the rendered alert rules. Every dashboard
panel's PromQL (Grafana's ``$namespace`` as All, ``$__rate_interval`` as 1m) and every alert
expression must evaluate without error and return series, every rule must be healthy and
every alert must be pending or firing. The panel table is printed (``pytest -s``/``-rP``).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from kubernetes.client.exceptions import ApiException
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily

from tests.integration.harness import binaries, rest
from tests.integration.harness.kube import get_pod
from tests.integration.harness.procs import ManagedProcess, free_port
from tests.integration.harness.prometheus import start_prometheus
from tests.integration.operator_support import (
    EXAMPLES,
    RELEASE_NAMESPACE,
    REPO,
    GenaiReplay,
    OperatorProcess,
    genai_histories,
    get,
    materialize,
    service_account_kubeconfig,
    wait_for,
)

CHART = REPO / "helm" / "cohabit"
MONITORING = ["--set", "serviceMonitor.enabled=true", "--set", "prometheusRule.enabled=true",
              "--set", "grafanaDashboard.enabled=true"]
TEST_THRESHOLDS = ["--set", "prometheusRule.qosViolatedFor=0s",
                   "--set", "prometheusRule.lowConfidenceFor=0s",
                   "--set", "prometheusRule.pendingLongerThanSeconds=5",
                   "--set", "prometheusRule.pdbRefusals=1",
                   "--set", "prometheusRule.pdbRefusalsWindow=5m"]
GRAFANA_VARIABLES = {"$namespace": ".*", "$__rate_interval": "1m"}


def _render(helm_binary, *extra: str) -> list[dict]:
    out = helm_binary.run("template", "cohabit", str(CHART), "--namespace", RELEASE_NAMESPACE,
                          *MONITORING, *extra).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def _one(docs: list[dict], kind: str, component: str | None = None) -> dict:
    found = [d for d in docs if d["kind"] == kind and (
        component is None
        or d["metadata"]["labels"].get("app.kubernetes.io/component") == component)]
    assert len(found) == 1, f"{kind} {component}: {len(found)} rendered"
    return found[0]


def _panels(dashboard: dict) -> list[dict]:
    out = []
    for p in dashboard["panels"]:
        out += [p, *p.get("panels", [])] if p["type"] == "row" else [p]
    return [p for p in out if p["type"] != "row"]


def _expr(text: str) -> str:
    for var, value in GRAFANA_VARIABLES.items():
        text = text.replace(var, value)
    return text


def _promtool() -> str:
    return str(binaries.require("prometheus").with_name("promtool"))


def test_monitoring_objects_render_lint_and_select_what_they_monitor(helm_binary, tmp_path):
    lint = helm_binary.run("lint", "--strict", str(CHART), *MONITORING)
    assert "0 chart(s) failed" in lint.stdout
    docs = _render(helm_binary)
    defaults = helm_binary.run("template", "cohabit", str(CHART), "--namespace",
                               RELEASE_NAMESPACE).stdout
    assert "monitoring.coreos.com" not in defaults and "grafana_dashboard" not in defaults

    service = _one(docs, "Service", "operator")
    monitor = _one(docs, "ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    ports = {p["name"] for p in service["spec"]["ports"]}
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"] and "metrics" in ports
    agent = _one(docs, "DaemonSet", "agent")
    pod_monitor = _one(docs, "PodMonitor")
    pod_labels = agent["spec"]["template"]["metadata"]["labels"]
    assert pod_monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    agent_ports = {p["name"] for c in agent["spec"]["template"]["spec"]["containers"]
                   for p in c.get("ports", [])}
    assert {e["port"] for e in pod_monitor["spec"]["podMetricsEndpoints"]} <= agent_ports
    for m in (monitor, pod_monitor):
        assert m["spec"]["namespaceSelector"]["matchNames"] == [RELEASE_NAMESPACE]

    config_map = _one(docs, "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config_map["data"]["cohabit.json"])
    assert dashboard["uid"] == "cohabit-overview" and len(_panels(dashboard)) >= 10
    assert all(t["expr"] for p in _panels(dashboard) for t in p["targets"])

    rule = _one(docs, "PrometheusRule")
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert alerts == {"CohabitWorkloadQosViolated", "CohabitRecommendationLowConfidence",
                      "CohabitPodsPendingTooLong", "CohabitEvictionsRefusedByPdb"}
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    check = subprocess.run([_promtool(), "check", "rules", str(path)], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 4 rules found" in check.stdout
    # the values reach the rules
    custom = _one(_render(helm_binary, "--set", "prometheusRule.pendingLongerThanSeconds=90",
                          "--set", "prometheusRule.labels.release=kps"), "PrometheusRule")
    assert custom["metadata"]["labels"]["release"] == "kps"
    assert any(r["expr"].endswith("> 90") for g in custom["spec"]["groups"]
               for r in g["rules"])


# ------------------------------------------------------------------------------- live


@pytest.fixture(scope="module")
def installed(helm, kube_client, kube_cluster, kubelet):
    """The chart installed (CRDs, RBAC, peering, the default policy)."""
    if kube_cluster.external:
        pytest.skip("this test creates fake Nodes; run it on the local test cluster")
    helm.run("upgrade", "--install", "cohabit", str(CHART), "--namespace", RELEASE_NAMESPACE,
             "--create-namespace")

    def established():
        for plural in ("databaseworkloads", "gpuworkloads", "placementpolicies"):
            crd = get(kube_client, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                                   f"{plural}.cohabit.io")
            conds = {c["type"]: c["status"] for c in crd["status"].get("conditions", [])}
            if conds.get("Established") != "True":
                return False
        return True

    wait_for(established, 30, "cohabit CRDs established")
    return True


class CpuCounters:
    """cAdvisor's ``container_cpu_usage_seconds_total`` for pods that use ``cores`` each."""

    def __init__(self, namespace: str, pods: list[str], container: str, cores: float):
        self.namespace, self.pods, self.container, self.cores = namespace, pods, container, cores
        self.t0 = time.time()

    def collect(self):
        fam = CounterMetricFamily("container_cpu_usage_seconds_total", "CPU seconds",
                                  labels=["namespace", "pod", "container"])
        for i, pod in enumerate(self.pods):
            fam.add_metric([self.namespace, pod, self.container],
                           (self.cores + 0.1 * i) * (time.time() - self.t0))
        yield fam


def _cluster(kube_client, namespace: str, make_node, policy: str) -> list[str]:
    """A fragmented A10 cluster (after tests/integration/test_operator_e2e.py): ob-g1 holds
    two 500-milli shares, one per GPU, ob-g2 one; a PDB keeps all three; a whole-GPU pod fits
    nowhere until a share moves (the PDB refuses it): it accepts only A10s, so the empty T4
    node (a second GPU model on the dashboard) does not take it. Returns the sd-inference
    pods' names."""
    make_node("ob-g1", gpus=2, gpu_product="A10", cpu_milli=32000, memory_mib=131072)
    make_node("ob-g2", gpus=1, gpu_product="A10", cpu_milli=32000, memory_mib=131072)
    make_node("ob-t4", gpus=4, gpu_product="T4", cpu_milli=32000, memory_mib=131072)
    docs = [d for d in yaml.safe_load_all((EXAMPLES / "gpu-inference-workload.yaml")
                                          .read_text()) if d]
    dep = next(d for d in docs if d["kind"] == "Deployment")
    wl = next(d for d in docs if d["kind"] == "GpuWorkload")
    wl["spec"].update(policyRef=policy, mode="Recommend")
    wl["spec"]["qos"].update(target=1, windowSeconds=86400)  # 1 ms p99: every sample misses
    rest.request(kube_client, "POST", "/apis/cohabit.io/v1alpha1/placementpolicies", body={
        "apiVersion": "cohabit.io/v1alpha1", "kind": "PlacementPolicy",
        "metadata": {"name": policy},
        "spec": {"policy": "best-fit", "rebinding": {"enabled": True, "dryRun": False,
                                                     "evictionsPerHour": 100,
                                                     "maxUnavailable": 1}}})
    dep = rest.request(kube_client, "POST",
                       f"/apis/apps/v1/namespaces/{namespace}/deployments", body=dep)
    rest.request(kube_client, "POST",
                 f"/apis/cohabit.io/v1alpha1/namespaces/{namespace}/gpuworkloads", body=wl)
    placed = [("sd-inference-a", "ob-g1", "0"), ("sd-inference-b", "ob-g1", "1"),
              ("sd-inference-c", "ob-g2", "0")]
    for name, node, gpu in placed:
        d = json.loads(json.dumps(dep))
        d["spec"]["template"]["spec"]["nodeName"] = node
        d["spec"]["template"]["metadata"]["annotations"]["cohabit.io/gpu-indices"] = gpu
        materialize(kube_client, namespace, d, names=[name])
    rest.request(kube_client, "POST",
                 f"/apis/policy/v1beta1/namespaces/{namespace}/poddisruptionbudgets",
                 body={"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget",
                       "metadata": {"name": "sd-all"},
                       "spec": {"minAvailable": 3,
                                "selector": {"matchLabels": {"app": "sd-inference"}}}})
    rest.request(kube_client, "POST", f"/api/v1/namespaces/{namespace}/pods", body={
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "whole-gpu", "annotations": {"cohabit.io/gpu-models": "A10"}},
        "spec": {"schedulerName": "cohabit", "containers": [{
            "name": "train", "image": "x", "resources": {
                "requests": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"},
                "limits": {"nvidia.com/gpu": "1"}}}]}})
    # the database workload: no telemetry anywhere, so its recommendation stays low-confidence
    db_docs = [d for d in yaml.safe_load_all((EXAMPLES / "postgres-workload.yaml")
                                             .read_text()) if d]
    for d in db_docs:
        if d["kind"] == "StatefulSet":
            sts = rest.request(kube_client, "POST",
                               f"/apis/apps/v1/namespaces/{namespace}/statefulsets", body=d)
            materialize(kube_client, namespace, sts)
        elif d["kind"] == "DatabaseWorkload":
            rest.request(kube_client, "POST", "/apis/cohabit.io/v1alpha1/namespaces/"
                         f"{namespace}/databaseworkloads", body=d)
    wait_for(lambda: all((get_pod(kube_client, namespace, n) or {}).get("status", {}).get(
        "phase") == "Running" for n, _, _ in placed), 30, "placed pods running")
    return [n for n, _, _ in placed]


def _rules(prom, kind: str) -> list[dict]:
    with urllib.request.urlopen(f"{prom.url}/api/v1/{kind}", timeout=5) as resp:
        data = json.loads(resp.read())["data"]
    return data["alerts"] if kind == "alerts" else [
        r for g in data["groups"] for r in g["rules"]]


def test_every_panel_and_alert_returns_series_from_the_running_operator(
        installed, helm_binary, kube_client, kube_cluster, namespace, make_node, exporter,
        shared_data, tmp_path, request):
    docs = _render(helm_binary, *TEST_THRESHOLDS)
    dashboard = json.loads(_one(docs, "ConfigMap")["data"]["cohabit.json"])
    rule = _one(docs, "PrometheusRule")
    rules_path = tmp_path / "cohabit-rules.yaml"
    rules_path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))

    policy = f"observe-{namespace}"[:60]
    pods = _cluster(kube_client, namespace, make_node, policy)
    # telemetry Prometheus (what the operator reads): GenAI replay + CPU counters
    registry = CollectorRegistry()
    replay = GenaiReplay(genai_histories(shared_data, len(pods)), namespace, pods, "server",
                         "sd-inference")
    registry.register(replay)
    registry.register(CpuCounters(namespace, pods, "server", 2.0))
    telemetry_exporter = exporter(registry)
    replay.backfill(tmp_path / "telemetry" / "data", end=time.time() - 120)
    telemetry = start_prometheus([telemetry_exporter.target], workdir=tmp_path / "telemetry")
    operator = agent = monitoring = None
    try:
        telemetry.wait_for(f'DCGM_FI_DEV_GPU_UTIL{{namespace="{namespace}"}}', timeout=60)
        kubeconfig = service_account_kubeconfig(kube_cluster, kube_client,
                                                tmp_path / "sa.kubeconfig")
        operator = OperatorProcess(kubeconfig, tmp_path, telemetry.url).start()
        agent_port = free_port()
        agent = ManagedProcess("agent", [str(Path(sys.executable).with_name("cohabit")),
                                         "agent", "--port", str(agent_port), "--node", "ob-g1"],
                               tmp_path / "agent.log")
        monitoring = start_prometheus(
            {"cohabit-operator": [f"127.0.0.1:{operator.metrics_port}"],
             "cohabit-agent": [f"127.0.0.1:{agent_port}"]},
            workdir=tmp_path / "monitoring", rule_files=[str(rules_path)])

        # the conditions the alerts watch, as the operator reports them
        wait_for(lambda: operator.actions("Evict", "refused") >= 3, 120,
                 "evictions refused by the PDB, repeatedly")
        for q in ('cohabit_qos_violations{workload="sd-inference"} > 0',
                  'cohabit_recommendation_low_confidence{workload="orders-db"} > 0',
                  'cohabit_recommendation_cpu_cores{workload="sd-inference"}',
                  'cohabit_scheduler_oldest_pending_pod_age_seconds > 5',
                  'cohabit_cluster_gpu_fragmentation_ratio{gpu_model="A10"} > 0',
                  'cohabit_nvml_up'):
            monitoring.wait_for(q, timeout=120)

        report, failures = [], []
        deadline = time.monotonic() + 90
        for panel in _panels(dashboard):
            for target in panel["targets"]:
                expr = _expr(target["expr"])
                while True:  # rate() needs two scrapes in the window: retry a while
                    result = monitoring.query(expr)  # raises on an evaluation error
                    if result or time.monotonic() > deadline:
                        break
                    time.sleep(1)
                report.append((panel["title"], target["refId"], len(result), expr))
                if not result:
                    failures.append(f"panel {panel['title']!r} {target['refId']}: {expr}")
        for r in (r for g in rule["spec"]["groups"] for r in g["rules"]):
            result = monitoring.query(r["expr"])
            report.append((f"alert {r['alert']}", "expr", len(result), r["expr"]))
            if not result:
                failures.append(f"alert {r['alert']}: {r['expr']}")
        width = max(len(t) for t, *_ in report)
        print("\n" + "\n".join(f"{title:<{width}}  {ref:>4}  {n:>3} series  {expr}"
                               for title, ref, n, expr in report))
        assert not failures, "no series:\n" + "\n".join(failures)

        # Prometheus evaluates the rendered rules itself: healthy, and every alert active
        def active():
            rules = _rules(monitoring, "rules")
            bad = [(r["name"], r.get("lastError")) for r in rules if r["health"] == "err"]
            assert not bad, bad
            states = {a["labels"]["alertname"] for a in _rules(monitoring, "alerts")
                      if a["state"] in ("pending", "firing")}
            return states if len(states) == 4 else None

        assert wait_for(active, 60, "all four alerts pending or firing") == {
            "CohabitWorkloadQosViolated", "CohabitRecommendationLowConfidence",
            "CohabitPodsPendingTooLong", "CohabitEvictionsRefusedByPdb"}
        fired = {(a["labels"]["alertname"], a["labels"].get("workload", a["labels"].get(
            "qos_class", ""))) for a in _rules(monitoring, "alerts")}
        assert ("CohabitWorkloadQosViolated", "sd-inference") in fired
        assert ("CohabitRecommendationLowConfidence", "orders-db") in fired
        assert any(a == "CohabitPodsPendingTooLong" for a, _ in fired)
    except BaseException:
        if operator is not None:
            print(f"--- operator log (tail) ---\n{operator.log(120)}")
        raise
    finally:
        for thing in (monitoring, agent, operator, telemetry):
            if thing is not None:
                thing.stop()
        for path in (f"/apis/cohabit.io/v1alpha1/placementpolicies/{policy}",
                     f"/apis/cohabit.io/v1alpha1/namespaces/{namespace}/gpuworkloads/"
                     "sd-inference",
                     f"/apis/cohabit.io/v1alpha1/namespaces/{namespace}/databaseworkloads/"
                     "orders-db"):
            with contextlib.suppress(ApiException):  # 404: never created
                rest.request(kube_client, "DELETE", path)
