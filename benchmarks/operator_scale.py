"""Operator at scale on the real API server: 1,000 pods on 200 nodes, 200 workloads.

Starts the integration harness's local cluster (etcd + kube-apiserver 1.20 on loopback, see
tests/integration/README.md), installs the chart with the real helm, creates 200 Nodes with
the shapes of 200 real openb nodes (Alibaba GPU trace, sampled with a seed, CPU-only and GPU
nodes in the trace's proportion), runs ``cohabit operator`` as the chart's service account,
then applies 200 workloads (Deployment + DatabaseWorkload/GpuWorkload) and their 1,000 pods
(shapes of real openb pods; GPU pods keep their share and model constraint) as fast as the
client can, and measures from the API's own watch streams:

* apply -> bound: pod created (POST returned) until a watch event shows ``spec.nodeName``;
* apply -> status: workload created until its status shows ``observedGeneration``.

There is no kubelet here (the stand-in is not started: binding, not running, is measured).

    .venv/bin/python benchmarks/operator_scale.py [--pods 1000 --nodes 200 --workloads 200]

Prints a JSON summary (and writes it with ``--out``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from harness import binaries, rest  # noqa: E402
from harness.cluster import start_local_cluster  # noqa: E402
from harness.nodes import create_node  # noqa: E402
from harness.tools import helm_tool  # noqa: E402
from kubernetes import client, watch  # noqa: E402
from operator_support import (  # noqa: E402
    RELEASE_NAMESPACE,
    OperatorProcess,
    service_account_kubeconfig,
    wait_for,
    workload_path,
)

DATA = REPO / "src" / "cohabit" / "data" / "alibaba-gpu-2023"
MODELS = {"G2": "G2", "T4": "T4", "P100": "P100", "G3": "G3", "V100M16": "V100M16",
          "V100M32": "V100M32", "A10": "A10"}


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


class Stamps:
    """First time (monotonic) a watch saw a predicate become true, per object name."""

    def __init__(self, api, list_fn, args, predicate):
        self.api, self.list_fn, self.args, self.predicate = api, list_fn, args, predicate
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        rv = None
        while not self.stop.is_set():
            w = watch.Watch()
            try:
                for ev in w.stream(self.list_fn, *self.args, resource_version=rv,
                                   timeout_seconds=5):
                    obj = ev["object"]
                    meta = obj["metadata"] if isinstance(obj, dict) else obj.metadata
                    rv = meta["resourceVersion"] if isinstance(obj, dict) else \
                        meta.resource_version
                    name = meta["name"] if isinstance(obj, dict) else meta.name
                    if name not in self.seen and self.predicate(obj):
                        self.seen[name] = time.monotonic()
            except client.exceptions.ApiException as exc:
                if exc.status != 410:
                    raise
                rv = None
            finally:
                w.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--workloads", type=int, default=200)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    nodes = pd.read_csv(DATA / "openb_node_list_all_node.csv")
    nodes = nodes.iloc[rng.choice(len(nodes), args.nodes, replace=False)].reset_index(drop=True)
    pods = pd.read_csv(DATA / "openb_pod_list_default.csv", dtype={"gpu_spec": "string"})
    pods = pods.iloc[rng.choice(len(pods), args.pods, replace=False)].reset_index(drop=True)
    models = set(nodes["model"].dropna())
    pods["gpu_spec"] = pods["gpu_spec"].fillna("").astype(str)

    work = Path(tempfile.mkdtemp(prefix="cohabit-operator-scale-"))
    cluster = start_local_cluster(work / "kube")
    op = None
    try:
        api = cluster.api_client()
        helm = helm_tool(binaries.require("helm"), cluster.kubeconfig, work / "helm-home")
        helm.run("upgrade", "--install", "cohabit", str(REPO / "helm" / "cohabit"),
                 "--namespace", RELEASE_NAMESPACE, "--create-namespace")
        for i, row in nodes.iterrows():
            gpus = int(row["gpu"])
            create_node(api, f"n{i:03d}-{row['sn'][-6:]}".lower(), cpu_milli=int(row["cpu_milli"]),
                        memory_mib=int(row["memory_mib"]), gpus=gpus,
                        gpu_product=(MODELS.get(str(row["model"]), str(row["model"]))
                                     if gpus else None), pods=250)
        namespace = "scale"
        rest.request(api, "POST", "/api/v1/namespaces", body={
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        kubeconfig = service_account_kubeconfig(cluster, api, work / "sa.kubeconfig")
        op = OperatorProcess(kubeconfig, work, env={"COHABIT_RECONCILE_INTERVAL_S": "120"})
        op.start()
        core = client.CoreV1Api(api)
        custom = client.CustomObjectsApi(api)
        bound = Stamps(api, core.list_namespaced_pod, (namespace,),
                       lambda p: bool(p.spec.node_name))
        statuses = {plural: Stamps(api, custom.list_namespaced_custom_object,
                                   ("cohabit.io", "v1alpha1", namespace, plural),
                                   lambda o: bool((o.get("status") or {}).get(
                                       "observedGeneration")))
                    for plural in ("databaseworkloads", "gpuworkloads")}
        time.sleep(1.0)

        created_pod: dict[str, float] = {}
        created_wl: dict[str, float] = {}
        per = args.pods // args.workloads
        started = time.monotonic()
        for w in range(args.workloads):
            group = pods.iloc[w * per:(w + 1) * per]
            gpu = bool((group["num_gpu"] > 0).any())
            name = f"w{w:03d}"
            dep = rest.request(api, "POST", f"/apis/apps/v1/namespaces/{namespace}/deployments",
                               body={"apiVersion": "apps/v1", "kind": "Deployment",
                                     "metadata": {"name": name},
                                     "spec": {"replicas": per,
                                              "selector": {"matchLabels": {"app": name}},
                                              "template": {
                                                  "metadata": {"labels": {"app": name}},
                                                  "spec": {"schedulerName": "cohabit",
                                                           "containers": [{"name": "main",
                                                                           "image": "x"}]}}}})
            plural = "gpuworkloads" if gpu else "databaseworkloads"
            kind = "GpuWorkload" if gpu else "DatabaseWorkload"
            rest.request(api, "POST", workload_path(namespace, plural), body={
                "apiVersion": "cohabit.io/v1alpha1", "kind": kind, "metadata": {"name": name},
                "spec": {"targetRef": {"kind": "Deployment", "name": name},
                         "qos": {"metric": "p99LatencyMs", "target": 50, "query": "vector(1)"},
                         "placement": "managed"}})
            created_wl[name] = time.monotonic()
            for j, row in enumerate(group.itertuples()):
                pod_name = f"{name}-{j}"
                requests = {"cpu": f"{int(row.cpu_milli)}m", "memory": f"{int(row.memory_mib)}Mi"}
                ann = {}
                limits = {}
                if row.num_gpu > 0 and row.gpu_milli < 1000:
                    ann["cohabit.io/gpu-milli"] = str(int(row.gpu_milli))
                elif row.num_gpu > 0:
                    requests["nvidia.com/gpu"] = str(int(row.num_gpu))
                    limits["nvidia.com/gpu"] = str(int(row.num_gpu))
                spec_models = [m for m in row.gpu_spec.split("|") if m]
                if spec_models and set(spec_models) & models:
                    ann["cohabit.io/gpu-models"] = "|".join(spec_models)
                res = {"requests": requests}
                if limits:
                    res["limits"] = limits
                rest.request(api, "POST", f"/api/v1/namespaces/{namespace}/pods", body={
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": pod_name, "annotations": ann,
                                 "labels": {"app": name, "cohabit.io/workload": name},
                                 "ownerReferences": [{"apiVersion": "apps/v1",
                                                      "kind": "Deployment", "name": name,
                                                      "uid": dep["metadata"]["uid"],
                                                      "controller": True}]},
                    "spec": {"schedulerName": "cohabit",
                             "containers": [{"name": "main", "image": "x", "resources": res}]}})
                created_pod[pod_name] = time.monotonic()
        applied = time.monotonic() - started

        def done():
            st = sum(len(s.seen) for s in statuses.values())
            return len(bound.seen) >= len(created_pod) and st >= len(created_wl)

        try:
            wait_for(done, args.timeout, "all pods bound and all statuses written")
            timed_out = False
        except TimeoutError:
            timed_out = True
        finished = time.monotonic() - started
        seen_status = {**statuses["databaseworkloads"].seen, **statuses["gpuworkloads"].seen}
        bind_lat = [bound.seen[p] - t for p, t in created_pod.items() if p in bound.seen]
        status_lat = [seen_status[w] - t for w, t in created_wl.items() if w in seen_status]
        metrics = op.metrics()
        def metric(name: str, loop: str) -> float:
            return sum(v for (n, lab), v in metrics.items()
                       if n == name and ("loop", loop) in lab)

        passes = [metric("cohabit_reconcile_duration_seconds_count", "scheduling")]
        pass_s = metric("cohabit_reconcile_duration_seconds_sum", "scheduling")
        wl_n = metric("cohabit_reconcile_duration_seconds_count", "workload")
        wl_s = metric("cohabit_reconcile_duration_seconds_sum", "workload")
        summary = {
            "nodes": args.nodes, "gpu_nodes": int((nodes["gpu"] > 0).sum()),
            "pods": len(created_pod), "workloads": len(created_wl),
            "pods_bound": len(bind_lat), "workloads_with_status": len(status_lat),
            "timed_out": timed_out,
            "apply_s": round(applied, 1), "all_done_s": round(finished, 1),
            "apply_to_bound_p50_s": round(percentile(bind_lat, 50), 2),
            "apply_to_bound_p99_s": round(percentile(bind_lat, 99), 2),
            "apply_to_bound_max_s": round(max(bind_lat, default=float("nan")), 2),
            "apply_to_status_p50_s": round(percentile(status_lat, 50), 2),
            "apply_to_status_p99_s": round(percentile(status_lat, 99), 2),
            "apply_to_status_max_s": round(max(status_lat, default=float("nan")), 2),
            "scheduling_passes": int(passes[0]) if passes else 0,
            "scheduling_pass_mean_s": round(pass_s / passes[0], 3) if passes[0] else None,
            "workload_reconciles": int(wl_n),
            "workload_reconcile_mean_s": round(wl_s / wl_n, 3) if wl_n else None,
            "binds_done": int(op.actions("Bind", "done")),
            "bind_failures": int(op.actions("Bind", "failed")),
            "mean_bind_s": round(statistics.mean(bind_lat), 2) if bind_lat else None,
        }
        bound.stop.set()
        for s in statuses.values():
            s.stop.set()
        text = json.dumps(summary, indent=2)
        print(text)
        if args.out:
            args.out.write_text(text + "\n")
        return 0 if not timed_out else 1
    finally:
        if op is not None:
            op.stop()
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
