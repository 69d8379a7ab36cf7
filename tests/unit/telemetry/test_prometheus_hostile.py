"""Hostile Prometheus answers end as ``TelemetryUnavailable`` with a reason, and through the
engine as a low-confidence assessment, never as an exception or a hang (regressions of
issue 9: a +Inf QoS series made the estimator's fit raise; ``{"status":"success"}`` without
data, a JSON list and 3-element values raised KeyError/TypeError/ValueError; an answer
trickled one byte every 2 s ignored the 3 s timeout).

The server is a real socket on loopback that writes whatever bytes a test scripts.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable

import pytest

from cohabit.engine.reconcile import assess
from cohabit.model import Pod, QosTarget, Snapshot, Workload, WorkloadKind
from cohabit.telemetry import TelemetryUnavailable
from cohabit.telemetry.prometheus import PrometheusUsageSource


class ScriptedServer:
    """Accepts connections; ``script(conn)`` writes the answer (bytes, delays, nothing)."""

    def __init__(self, script: Callable[[socket.socket], None]):
        self.script = script
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            conn.settimeout(5)
            try:
                _read_request(conn)
                self.script(conn)
            except OSError:
                pass  # the client gave up (deadline): expected

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


def _read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length")), 0)
    while len(body) < length:
        body += conn.recv(65536)


def answer(body: bytes | str, status: str = "200 OK", length: int | None = None):
    data = body.encode() if isinstance(body, str) else body

    def script(conn):
        n = len(data) if length is None else length
        conn.sendall(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {n}\r\nConnection: close\r\n\r\n".encode() + data)
    return script


def matrix(values, metric=None):
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": metric or {"job": "web"}, "values": values}]}})


@pytest.fixture
def serve():
    servers = []

    def start(script):
        server = ScriptedServer(script)
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.close()


WL = Workload("web", WorkloadKind.GPU_INFERENCE, QosTarget("p99_latency_ms", 20, "lat"), "ns")


@pytest.mark.parametrize(
    ("script", "reason"),
    [(answer(matrix([[100, "+Inf"], [160, "12"]])), "infinite.*Inf bucket"),
     (answer(matrix([[100, "-5"]])), "negative"),
     (answer(matrix([[100, "1e300"]])), "above"),
     (answer('{"status":"success"}'), "no data object"),
     (answer("[]"), "JSON list"),
     (answer('{"status":"success","data":{"resultType":"vector","result":[]}}'), "vector"),
     (answer(matrix([[100, "1", "2"]])), r"values\[0\] is not a \[time, value\] pair"),
     (answer(matrix([["soon", "1"]])), "time is 'soon'"),
     (answer(matrix([[100, None]])), "value is None"),
     (answer(matrix([[100, "1"]], metric={"job": 3})), "label strings"),
     (answer("<html>not json</html>"), "not JSON"),
     (answer('{"status":"error","errorType":"timeout","error":"query timed out"}',
             "503 Service Unavailable"), "timeout: query timed out"),
     (answer("", length=10**10), "byte limit"),
     (answer(b'{"status":"succ'), "IncompleteRead|not JSON"),
     (answer(b"[" * 200_000 + b"]" * 200_000), "not JSON")],
    ids=["plus-inf", "negative", "absurd", "no-data", "json-list", "vector", "three-values",
         "bad-time", "null-value", "bad-labels", "html", "error-answer", "huge", "cut-short",
         "deep-nesting"],
)
def test_hostile_answer_is_unavailable_with_reason(serve, script, reason):
    src = PrometheusUsageSource(serve(script), timeout_s=3)
    with pytest.raises(TelemetryUnavailable, match=reason):
        src.qos(WL, 0, 200)


def test_nan_samples_are_gaps(serve):
    with PrometheusUsageSource(serve(answer(matrix([[100, "NaN"], [160, "12"]])))) as src:
        assert src.qos(WL, 0, 200).to_dict("list") == {"time": [160.0], "value": [12.0]}


def trickle(head_too: bool):
    body = matrix([[100, "1"]]).encode()
    head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()

    def script(conn):
        if not head_too:
            conn.sendall(head)
        for byte in (head if head_too else b"") + body:
            conn.sendall(bytes([byte]))
            time.sleep(2.0)
    return script


@pytest.mark.parametrize("head_too", [False, True], ids=["body", "headers"])
def test_trickled_answer_is_cut_at_the_total_deadline(serve, head_too):
    """One byte every 2 s never trips a 3 s per-read timeout; the total deadline does."""
    with PrometheusUsageSource(serve(trickle(head_too)), timeout_s=3) as src:
        started = time.monotonic()
        with pytest.raises(TelemetryUnavailable, match="3 s deadline"):
            src.qos(WL, 0, 200)
        assert time.monotonic() - started < 4.5


def test_silent_server_is_cut_at_the_deadline(serve):
    with PrometheusUsageSource(serve(lambda conn: time.sleep(10)), timeout_s=1) as src:
        started = time.monotonic()
        assert not src.healthy()
        assert time.monotonic() - started < 2.5


def test_hostile_qos_gives_low_confidence_through_the_engine(serve):
    """What reconcile sees: an assessment with the reason, never an exception."""
    usage = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"namespace": "ns", "pod": "web-0", "container": "server"},
         "values": [[t, "100"] for t in range(0, 7200, 60)]}]}})
    qos = matrix([[t, "+Inf"] for t in range(0, 7200, 60)])

    def script(conn):  # the QoS query is the one that is not a cAdvisor/DCGM query
        answer(qos if script.calls >= 4 else usage)(conn)
        script.calls += 1
    script.calls = 0
    snapshot = Snapshot(7200, (), (Pod("web-0", 1000, 1024, namespace="ns", node="n1",
                                       workload="web"),))
    with PrometheusUsageSource(serve(script)) as src:
        result = assess(WL, snapshot, src, 7200.0, window_s=7200)
    assert result.low_confidence and "Inf bucket" in result.reason
