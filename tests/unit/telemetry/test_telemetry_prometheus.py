"""The Prometheus usage source against a loopback HTTP server answering the Prometheus HTTP
API (the integration tier uses a real Prometheus), and against hostile answers: +Inf/NaN
samples, HTTP 200 bodies of the wrong shape, a trickled answer, a server that never answers.
Every one ends as ``TelemetryUnavailable`` naming the cause (``LowConfidence`` upstream)."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from cohabit.model import QosTarget, Workload, WorkloadKind
from cohabit.telemetry import USAGE_COLUMNS, TelemetryUnavailable
from cohabit.telemetry.prometheus import PrometheusUsageSource, usage_queries


def _matrix(labels, values):
    return {"metric": labels, "values": [[t, str(v)] for t, v in values]}


class Api(BaseHTTPRequestHandler):
    seen: list[str] = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        self.answer(form.get("query", [""])[0])

    def do_GET(self):
        url = urlparse(self.path)
        self.answer(parse_qs(url.query).get("query", [""])[0])

    def answer(self, q):
        Api.seen.append(q)
        if "syntax error" in q:
            body = {"status": "error", "errorType": "bad_data", "error": "parse error"}
            code = 400
        else:
            code = 200
            lab = {"namespace": "ns", "pod": "web-0"}
            if q.startswith("rate(container_cpu"):
                result = [_matrix({**lab, "container": "server"}, [(100, 250), (160, 300)])]
            elif q.startswith("container_memory"):
                result = [_matrix({**lab, "container": "server"}, [(100, 512), (160, "NaN")])]
            elif q.startswith("DCGM_FI_DEV_GPU_UTIL"):
                result = [_matrix(lab, [(100, 580)])]
            elif q.startswith("DCGM_FI_DEV_FB_USED"):
                result = []
            else:  # the QoS query: two series, averaged
                result = [_matrix({"i": "a"}, [(100, 10), (160, 30)]),
                          _matrix({"i": "b"}, [(100, 20)])]
            body = {"status": "success", "data": {"resultType": "matrix", "result": result}}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def prom():
    server = HTTPServer(("127.0.0.1", 0), Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Api.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def wl(query="p99_latency{job=\"web\"}"):
    return Workload("web", WorkloadKind.GPU_INFERENCE, QosTarget("p99_latency_ms", 20, query),
                    "ns")


def test_usage_frame(prom):
    with PrometheusUsageSource(prom, step_s=60) as src:
        frame = src.usage("ns", ["web-0"], 0, 200)
    assert tuple(frame.columns) == USAGE_COLUMNS
    got = {(r.resource, r.time): r.value for r in frame.itertuples()}
    assert got == {("cpu_milli", 100.0): 250.0, ("cpu_milli", 160.0): 300.0,
                   ("memory_mib", 100.0): 512.0, ("gpu_milli", 100.0): 580.0}
    assert set(frame.loc[frame.resource == "gpu_milli", "container"]) == {""}
    assert any('pod=~"web\\\\-0"' in q for q in Api.seen)


def test_qos_frame_averages_series(prom):
    with PrometheusUsageSource(prom) as src:
        frame = src.qos(wl(), 0, 200)
    assert frame.to_dict("list") == {"time": [100.0, 160.0], "value": [15.0, 30.0]}


def test_bad_query_is_unavailable(prom):
    with PrometheusUsageSource(prom) as src:
        with pytest.raises(TelemetryUnavailable, match="not valid PromQL"):
            src.qos(wl("syntax error"), 0, 200)  # refused before it is sent
        with pytest.raises(TelemetryUnavailable, match="bad_data: parse error"):
            src.qos(wl('up{x="syntax error"}'), 0, 200)  # Prometheus' own error answer


def test_down_prometheus_is_unavailable():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with PrometheusUsageSource(f"http://127.0.0.1:{port}", timeout_s=2) as src:
        assert not src.healthy()
        with pytest.raises(TelemetryUnavailable, match="Prometheus"):
            src.usage("ns", ["web-0"], 0, 200)


def test_no_url_is_unavailable():
    with pytest.raises(TelemetryUnavailable, match="no URL"):
        PrometheusUsageSource("")


def test_queries_use_cadvisor_and_dcgm_names():
    q = usage_queries("db", ["pg-0"], "2m")
    assert q["cpu_milli"].startswith("rate(container_cpu_usage_seconds_total{")
    assert "[2m]" in q["cpu_milli"] and 'container!="POD"' in q["memory_mib"]
    assert q["gpu_milli"].startswith("DCGM_FI_DEV_GPU_UTIL{") and q["gpu_milli"].endswith("* 10")
    assert q["gpu_memory_mib"].startswith("DCGM_FI_DEV_FB_USED{")


def test_qos_query_is_confined_to_the_namespace(prom):
    with PrometheusUsageSource(prom) as src:
        src.qos(wl('histogram_quantile(0.99, rate(lat_bucket{job="web"}[5m]))'), 0, 200)
        assert Api.seen[-1] == ('histogram_quantile(0.99, rate(lat_bucket{job="web",'
                                'namespace="ns"}[5m]))')
        with pytest.raises(TelemetryUnavailable, match="may only read its own"):
            src.qos(wl('secret{namespace="kube-system"}'), 0, 200)
    with PrometheusUsageSource(prom, unconfined={"ns"}) as src:  # the admin's opt-in
        src.qos(wl('up{job="web"}'), 0, 200)
        assert Api.seen[-1] == 'up{job="web"}'
