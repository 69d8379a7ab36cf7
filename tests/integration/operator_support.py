"""Support for the operator's integration tests (tests/integration/test_operator_*.py).

* :class:`OperatorProcess` -- ``cohabit operator`` as a real subprocess (so tests can SIGKILL
  it), authenticated as the chart's service account (real RBAC), with its ``/metrics``.
* :func:`materialize` -- create the pods a Deployment/StatefulSet would get (there is no
  controller-manager on the test API server), owned by the workload object.
* :class:`GenaiReplay` -- recorded Alibaba GenAI telemetry (``../shared/data/
  alibaba-genai-2026``) as Prometheus series under DCGM/cAdvisor names and a latency gauge:
  the past 22.8 h are backfilled into Prometheus' TSDB with ``promtool tsdb
  create-blocks-from openmetrics`` (shifted to end now) and an exporter keeps replaying the
  trace live, one trace sample per 57 s of wall time.
"""

from __future__ import annotations

import copy
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from kubernetes.client import ApiClient
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tests.integration.harness import binaries, rest
from tests.integration.harness.kube import service_account_token
from tests.integration.harness.procs import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
RELEASE_NAMESPACE = "cohabit-system"
COHABIT = Path(sys.executable).with_name("cohabit")
GENAI_STEP_S = 57.0


def wait_for(probe: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll ``probe`` until it returns something truthy (harness ``wait_until``)."""
    return wait_until(lambda: probe() or None, timeout=timeout, what=what)


class OperatorProcess:
    """``cohabit operator`` in a subprocess.

    Args:
        kubeconfig: kubeconfig it runs with (the chart's service account: see
            :func:`service_account_kubeconfig`).
        workdir: where its log goes.
        prometheus_url: ``--prometheus-url`` (``""`` = none).
        env: extra ``COHABIT_*`` settings.
        priority: kopf peering priority (a restarted instance takes a higher one so it does not
            wait for the killed one's peering record to expire).
    """

    def __init__(self, kubeconfig: Path, workdir: Path, prometheus_url: str = "",
                 env: dict[str, str] | None = None, priority: int = 0) -> None:
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.prometheus_url = prometheus_url
        self.env = env or {}
        self.priority = priority
        self.proc: subprocess.Popen | None = None
        self.metrics_port = 0
        self.liveness_port = 0
        self.starts = 0

    def start(self) -> OperatorProcess:
        self.metrics_port, self.liveness_port = free_port(), free_port()
        self.starts += 1
        log = open(self.workdir / f"operator-{self.starts}.log", "w")  # noqa: SIM115
        env = {k: v for k, v in os.environ.items() if not k.startswith("COHABIT_")}
        env.update({"COHABIT_RECONCILE_INTERVAL_S": "5", "COHABIT_SCHEDULER_INTERVAL_S": "1",
                    "COHABIT_PROMETHEUS_WINDOW_S": "86400", "COHABIT_PEERING": "cohabit",
                    **self.env})
        argv = [str(COHABIT), "operator", "--kubeconfig", str(self.kubeconfig),
                "--prometheus-url", self.prometheus_url,
                "--metrics-port", str(self.metrics_port),
                "--liveness-port", str(self.liveness_port),
                "--ledger-namespace", RELEASE_NAMESPACE, "--priority", str(self.priority)]
        self.proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        wait_for(self._healthy, 60, "operator /healthz")
        return self

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"operator exited with {self.proc.returncode}:\n{self.log()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness_port}/healthz",
                                        timeout=1) as resp:
                return resp.status == 200
        except urllib.error.HTTPError as exc:  # e.g. 500 while kopf starts: close its socket
            exc.close()
            return False
        except OSError:
            return False

    def log(self, lines: int = 60) -> str:
        path = self.workdir / f"operator-{self.starts}.log"
        return "\n".join(path.read_text().splitlines()[-lines:]) if path.exists() else ""

    def logs(self) -> str:
        """Every incarnation's log, concatenated."""
        return "\n".join((self.workdir / f"operator-{i}.log").read_text()
                         for i in range(1, self.starts + 1)
                         if (self.workdir / f"operator-{i}.log").exists())

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """The operator's ``/metrics`` as ``{(name, sorted labels): value}``."""
        from prometheus_client.parser import text_string_to_metric_families

        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                    timeout=5) as resp:
            text = resp.read().decode()
        out = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def actions(self, action: str, status: str) -> float:
        """``cohabit_actions_total{action, status}`` (0 when never counted)."""
        return self.metrics().get(
            ("cohabit_actions_total", (("action", action), ("status", status))), 0.0)

    def kill(self) -> None:
        """SIGKILL: no clean-up, as a crash or an OOM kill."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM and wait (kopf stops its handlers and daemons)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def service_account_kubeconfig(cluster: Any, api: ApiClient, path: Path,
                               account: str = "cohabit") -> Path:
    """A kubeconfig for the chart's service account (so the chart's RBAC is what is tested)."""
    token = service_account_token(api, RELEASE_NAMESPACE, account)
    return cluster.kubeconfig_for_token(token, path)


def materialize(api: ApiClient, namespace: str, owner: dict[str, Any], replicas: int | None = None,
                names: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Create the pods of a Deployment/StatefulSet (JSON as served) from its template, owned by
    it, as its controller would (the test API server runs no controllers)."""
    spec = owner["spec"]
    count = spec.get("replicas", 1) if replicas is None else replicas
    kind = owner["kind"]
    base = owner["metadata"]["name"]
    names = list(names) if names is not None else [
        f"{base}-{i}" if kind == "StatefulSet" else f"{base}-{i:05x}" for i in range(count)]
    created = []
    for name in names:
        template = copy.deepcopy(spec["template"])
        meta = template.get("metadata") or {}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "labels": meta.get("labels") or {},
                            "annotations": meta.get("annotations") or {},
                            "ownerReferences": [{
                                "apiVersion": owner["apiVersion"], "kind": kind, "name": base,
                                "uid": owner["metadata"]["uid"], "controller": True}]},
               "spec": template["spec"]}
        created.append(rest.request(api, "POST", f"/api/v1/namespaces/{namespace}/pods",
                                    body=pod))
    return created


def get(api: ApiClient, path: str) -> dict[str, Any]:
    return rest.request(api, "GET", path)


def workload_path(namespace: str, plural: str, name: str = "") -> str:
    tail = f"/{name}" if name else ""
    return f"/apis/cohabit.io/v1alpha1/namespaces/{namespace}/{plural}{tail}"


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return c
    return None


# -- the GenAI replay ---------------------------------------------------------------------------

def genai_histories(shared_data: Path, count: int) -> list[pd.DataFrame]:
    """``count`` pods of the GenAI trace with the longest latency history, each a frame with
    ``time`` (trace seconds), ``gpu_milli``, ``gpu_memory_mib``, ``memory_pct``,
    ``latency_ms``."""
    from cohabit.predictors import load_genai

    frame = load_genai(shared_data / "alibaba-genai-2026")
    ranked = (frame.dropna(subset=["latency_ms"]).groupby("pod").size()
              .sort_values(ascending=False).index[:count])
    return [frame[frame.pod == p].sort_values("time").reset_index(drop=True) for p in ranked]


class GenaiReplay(Collector):
    """Serves and backfills GenAI telemetry for ``pods`` of ``namespace`` (one history each).

    Series: ``DCGM_FI_DEV_GPU_UTIL`` (%), ``DCGM_FI_DEV_FB_USED`` (MiB) with ``namespace``,
    ``pod``, ``gpu``; ``container_memory_working_set_bytes`` with ``container`` (the trace's
    memory utilisation % of ``memory_limit_mib``, an assumption: the trace does not say of
    what); ``genai_pipeline_inference_latency_ms{service}`` (end-to-end latency).
    """

    def __init__(self, histories: list[pd.DataFrame], namespace: str, pods: list[str],
                 container: str, service: str, memory_limit_mib: float = 32768.0) -> None:
        self.histories = histories
        self.namespace = namespace
        self.pods = pods
        self.container = container
        self.service = service
        self.memory_limit_mib = memory_limit_mib
        self.t0 = time.time()

    def _series(self, row: pd.Series, pod: str) -> list[tuple[str, dict[str, str], float]]:
        lab = {"namespace": self.namespace, "pod": pod, "gpu": "0"}
        out = []
        if pd.notna(row["gpu_milli"]):
            out.append(("DCGM_FI_DEV_GPU_UTIL", lab, float(row["gpu_milli"]) / 10.0))
        if pd.notna(row["gpu_memory_mib"]):
            out.append(("DCGM_FI_DEV_FB_USED", lab, float(row["gpu_memory_mib"])))
        if pd.notna(row["memory_pct"]):
            out.append(("container_memory_working_set_bytes",
                        {"namespace": self.namespace, "pod": pod, "container": self.container},
                        float(row["memory_pct"]) / 100.0 * self.memory_limit_mib * 2**20))
        if pd.notna(row["latency_ms"]):  # scraped in the workload's namespace, as
            # Kubernetes service discovery labels it: the confined QoS query reads it
            out.append(("genai_pipeline_inference_latency_ms",
                        {"service": self.service, "namespace": self.namespace},
                        float(row["latency_ms"])))
        return out

    def collect(self):
        index = int((time.time() - self.t0) / GENAI_STEP_S)
        fams: dict[str, GaugeMetricFamily] = {}
        seen: set[tuple] = set()
        for hist, pod in zip(self.histories, self.pods, strict=False):
            row = hist.iloc[index % len(hist)]
            for name, labels, value in self._series(row, pod):
                key = (name, tuple(sorted(labels.items())))
                if key in seen:
                    continue
                seen.add(key)
                fam = fams.setdefault(name, GaugeMetricFamily(name, name,
                                                              labels=sorted(labels)))
                fam.add_metric([labels[k] for k in sorted(labels)], value)
        yield from fams.values()

    def openmetrics(self, end: float) -> str:
        """The whole history as OpenMetrics text with timestamps, shifted to end at ``end``."""
        by_series: dict[tuple, list[tuple[float, float]]] = {}
        for hist, pod in zip(self.histories, self.pods, strict=False):
            shift = end - hist["time"].max()
            for row in hist.itertuples(index=False):
                r = pd.Series(row._asdict())
                for name, labels, value in self._series(r, pod):
                    key = (name, tuple(sorted(labels.items())))
                    by_series.setdefault(key, []).append((float(row.time) + shift, value))
        lines: list[str] = []
        for name in sorted({k[0] for k in by_series}):
            lines.append(f"# TYPE {name} gauge")
            for key in sorted(k for k in by_series if k[0] == name):
                labels = ",".join(f'{k}="{v}"' for k, v in key[1])
                last = None
                for t, v in sorted(by_series[key]):
                    if last is not None and t <= last:
                        continue  # duplicate timestamp (the service series of two pods)
                    last = t
                    lines.append(f"{name}{{{labels}}} {v} {t:.3f}")
        lines.append("# EOF")
        return "\n".join(lines) + "\n"

    def backfill(self, data_dir: Path, end: float) -> None:
        """Write the shifted history as TSDB blocks into ``data_dir`` (Prometheus' storage
        path, before it starts) with ``promtool tsdb create-blocks-from openmetrics``."""
        promtool = binaries.require("prometheus").with_name("promtool")
        data_dir.mkdir(parents=True, exist_ok=True)
        src = data_dir.parent / "backfill.om"
        src.write_text(self.openmetrics(end))
        subprocess.run([str(promtool), "tsdb", "create-blocks-from", "openmetrics", str(src),
                        str(data_dir)], check=True, capture_output=True, timeout=300)


# -- documented commands ------------------------------------------------------------------------

def documented_blocks(path: Path, heading: str | None = None) -> list[list[str]]:
    """The shell commands of each fenced code block of a Markdown file (below ``heading``
    up to the next heading of the same level, when given), backslash continuations joined,
    exactly as printed otherwise."""
    lines = path.read_text().splitlines()
    if heading is not None:
        start = lines.index(heading)
        level = heading.split(" ", 1)[0]
        end = next((i for i in range(start + 1, len(lines))
                    if lines[i].startswith(level + " ")), len(lines))
        lines = lines[start:end]
    blocks: list[list[str]] = []
    inside = False
    for line in lines:
        if line.startswith("```"):
            inside = not inside
            if inside:
                blocks.append([])
            continue
        if not inside:
            continue
        if blocks[-1] and blocks[-1][-1].endswith("\\"):
            blocks[-1][-1] = blocks[-1][-1][:-1] + line.strip()
        elif line.strip():
            blocks[-1].append(line)
    return blocks


def bare(command: str) -> str:
    """A documented command without its trailing ``  # comment``."""
    return command.split("  #", 1)[0].strip()


def translate_for_server(text: str, version: tuple[int, int]) -> str:
    """Example YAML for an older test server: before 1.21 PodDisruptionBudget is served as
    ``policy/v1beta1`` only (the examples ship ``policy/v1``, what current clusters serve)."""
    if version >= (1, 21):
        return text
    return text.replace("apiVersion: policy/v1 ", "apiVersion: policy/v1beta1 ").replace(
        "apiVersion: policy/v1\n", "apiVersion: policy/v1beta1\n")


class ShellOperator(OperatorProcess):
    """A documented ``cohabit operator ...`` line run by bash exactly as printed, in ``cwd``
    with ``env`` (the ``COHABIT_*`` settings ride in the environment, as the README says;
    ``/metrics`` and ``/healthz`` get free ports that way)."""

    def __init__(self, command: str, cwd: Path, env: dict[str, str], workdir: Path) -> None:
        super().__init__(Path("-"), workdir)
        self.command = command
        self.cwd = cwd
        self.base_env = env

    def start(self) -> ShellOperator:
        self.metrics_port, self.liveness_port = free_port(), free_port()
        self.starts += 1
        log = open(self.workdir / f"operator-{self.starts}.log", "w")  # noqa: SIM115
        env = {**self.base_env, "COHABIT_METRICS_PORT": str(self.metrics_port),
               "COHABIT_METRICS_LIVENESS_PORT": str(self.liveness_port)}
        self.proc = subprocess.Popen(["bash", "-c", self.command], cwd=self.cwd, env=env,
                                     stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        wait_for(self._healthy, 60, "operator /healthz")
        return self

    def health(self) -> dict[str, Any]:
        """``/healthz`` as JSON (kopf's probe results: ``{"state": {...}}``)."""
        import json

        with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness_port}/healthz",
                                    timeout=5) as resp:
            return json.loads(resp.read().decode())


def kubectl_table(text: str) -> list[list[dict[str, str]]]:
    """``kubectl get`` output as tables (one per resource kind) of rows keyed by column
    header; cells are cut at the header's column offsets (cells may hold spaces)."""
    tables: list[list[dict[str, str]]] = []
    header: list[tuple[str, int]] = []
    for line in text.splitlines():
        if not line.strip():
            header = []
            continue
        if not header:
            header = [(m.group(0), m.start()) for m in re.finditer(r"\S+(?: \S+)*", line)]
            tables.append([])
            continue
        row = {}
        for i, (name, start) in enumerate(header):
            end = header[i + 1][1] if i + 1 < len(header) else len(line)
            row[name] = line[start:end].strip()
        tables[-1].append(row)
    return tables


def described_events(text: str) -> list[dict[str, str]]:
    """The ``Events:`` table of ``kubectl describe`` output as rows (Type, Reason, Age, From,
    Message)."""
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("Events:"))
    except StopIteration:
        return []
    body = [line[2:] for line in lines[start + 1:] if line.startswith("  ")]
    body = [line for line in body if not set(line.strip()) <= {"-", " "}]
    tables = kubectl_table("\n".join(body))
    return tables[0] if tables else []


def start_genai_prometheus(shared_data: Path, exporter: Callable[..., Any], workdir: Path,
                           namespace: str, pods: list[str], container: str, service: str,
                           port: int | None = None) -> Any:
    """A real Prometheus whose TSDB holds 22.8 h of backfilled GenAI telemetry for ``pods``
    (:class:`GenaiReplay`) and which scrapes an exporter replaying it live; returns the
    :class:`harness.prometheus.PrometheusServer` once the history is queryable."""
    from prometheus_client import CollectorRegistry

    from tests.integration.harness.prometheus import start_prometheus

    replay = GenaiReplay(genai_histories(shared_data, len(pods)), namespace, pods, container,
                         service)
    registry = CollectorRegistry()
    registry.register(replay)
    exp = exporter(registry)
    replay.backfill(workdir / "data", end=time.time() - 120)
    server = start_prometheus([exp.target], workdir=workdir, port=port)
    try:
        server.wait_for(f'DCGM_FI_DEV_GPU_UTIL{{namespace="{namespace}"}}', timeout=30)
        server.wait_for(f'count_over_time(DCGM_FI_DEV_FB_USED{{namespace="{namespace}"}}[1d])'
                        " > 1000", timeout=60)
    except BaseException:
        server.stop()
        raise
    return server
