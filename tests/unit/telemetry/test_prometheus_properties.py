"""Property tests (Hypothesis, bounded) on what cohabit reads from Prometheus: any JSON answer
and any sample value end in series or a ``TelemetryUnavailable`` with a reason, never another
exception; through the usage source and the engine they end in an assessment (possibly
low-confidence), never a traceback or a hang; a confined QoS query never reads another
namespace."""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cohabit.engine.reconcile import assess
from cohabit.model import Pod, QosTarget, Snapshot, Workload, WorkloadKind
from cohabit.telemetry import TelemetryUnavailable
from cohabit.telemetry.prometheus import MAX_PLAUSIBLE, PrometheusUsageSource, check_samples
from cohabit.telemetry.prometheus_api import parse_matrix
from cohabit.telemetry.promql import PromqlRefused, confine, selectors

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=20)
VALUE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["NaN", "+Inf", "-Inf", "1e400", "-0", "", "abc", "1_000", " 5 "]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(10**20), 10**20), st.none(), st.booleans(), st.just([1]))
TIME = st.one_of(st.floats(0, 2e9), st.integers(0, 2_000_000_000), st.just("1e309"),
                 st.just("x"), st.none())
SERIES = st.fixed_dictionaries(
    {"metric": st.one_of(st.dictionaries(st.text(max_size=5), st.text(max_size=5),
                                         max_size=3), JSON),
     "values": st.lists(st.one_of(st.tuples(TIME, VALUE).map(list),
                                  st.lists(VALUE, max_size=3)), max_size=8)})
MATRIX = st.fixed_dictionaries({
    "status": st.sampled_from(["success", "success", "error", None]),
    "data": st.one_of(st.fixed_dictionaries({
        "resultType": st.sampled_from(["matrix", "matrix", "vector", "scalar"]),
        "result": st.one_of(st.lists(SERIES, max_size=3), JSON)}), JSON)})


@settings(max_examples=300, deadline=None)
@given(answer=st.one_of(JSON, MATRIX))
def test_any_answer_is_series_or_unavailable(answer):
    try:
        series = check_samples(parse_matrix(answer, "query 'q'"), "query 'q'")
    except TelemetryUnavailable as exc:
        assert str(exc)
        return
    for labels, samples in series:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())
        for t, v in samples:
            assert math.isfinite(t) and math.isfinite(v) and 0 <= v <= MAX_PLAUSIBLE


class Body(BaseHTTPRequestHandler):
    answers: list[bytes] = [b"{}"]
    served = 0

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        data = Body.answers[Body.served % len(Body.answers)]
        Body.served += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Body)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


WL = Workload("web", WorkloadKind.GPU_INFERENCE, QosTarget("p99_latency_ms", 50, "lat"), "ns")
SNAP = Snapshot(7200, (), (Pod("web-0", 1000, 1024, namespace="ns", node="n1",
                               workload="web"),))
SAMPLES = st.lists(st.tuples(st.integers(0, 7200), st.one_of(
    st.floats(0, 1e13), st.sampled_from(["NaN", "+Inf", "-1", "0"]))), min_size=0,
    max_size=40)


def _matrix(samples, metric):
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": metric, "values": [[t, str(v)] for t, v in samples]}]}}).encode()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(usage=SAMPLES, qos=SAMPLES, hostile=st.one_of(st.none(), JSON.map(
    lambda j: json.dumps(j).encode())))
def test_usage_source_and_engine_never_raise(server, usage, qos, hostile):
    """Generated answers through the real HTTP source into ``assess``: an assessment always
    comes back (low-confidence with a reason when the telemetry is unusable)."""
    labels = {"namespace": "ns", "pod": "web-0", "container": "server"}
    answers = [_matrix(usage, labels)] * 4 + [_matrix(qos, {"job": "web"})]
    if hostile is not None:
        answers[len(usage) % 5] = hostile
    Body.answers, Body.served = answers, 0
    with PrometheusUsageSource(server, timeout_s=5) as src:
        result = assess(WL, SNAP, src, 7200.0, window_s=7200)
    if result.low_confidence:
        assert result.reason
    for rec in result.recommendations:
        for value in (rec.target.cpu_milli, rec.target.memory_mib, rec.target.gpu_milli):
            assert 0 <= value <= 10 * MAX_PLAUSIBLE


# -- PromQL confinement ----------------------------------------------------------------------

NAME = st.sampled_from(["up", "http_requests_total", "lat_bucket", "namespace", "x"])
LABEL = st.sampled_from(["job", "namespace", "le", "pod", "__name__"])
LVALUE = st.text(alphabet='ab"\\\n.*|{}=~,', max_size=6)
MATCHER = st.tuples(LABEL, st.sampled_from(["=", "!=", "=~", "!~"]), LVALUE).map(
    lambda m: f'{m[0]}{m[1]}"{m[2]}"')
SELECTOR = st.tuples(NAME, st.lists(MATCHER, max_size=3)).map(
    lambda s: f"{s[0]}{{{','.join(s[1])}}}" if s[1] else s[0])
EXPR = st.recursive(
    SELECTOR | st.sampled_from(["1", "vector(5)", '"s"']),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "/", " and ", " or ", " > bool "]), inner).map(
            lambda t: f"({t[0]}){t[1]}({t[2]})"),
        inner.map(lambda e: f"sum by (le) ({e})"),
        SELECTOR.map(lambda s: f"rate({s}[5m])"),
        inner.map(lambda e: f"max_over_time(({e})[1h:5m])"),
        st.tuples(inner, LVALUE).map(lambda t: f'label_replace({t[0]}, "a", "{t[1]}", "", "")'),
    ), max_leaves=6)


@settings(max_examples=300, deadline=None)
@given(query=st.one_of(EXPR, st.text(max_size=30)))
def test_confined_queries_read_only_their_namespace(query):
    try:
        out = confine(query, "shop")
    except PromqlRefused as exc:
        assert str(exc)
        return
    found = selectors(out)
    for _name, matchers in found:
        assert ("MatchOp.Equal", "namespace", "shop") in matchers
        assert not any(op == "MatchOp.Equal" and n == "namespace" and v != "shop"
                       for op, n, v in matchers)
    assert len(found) == len(selectors(query))
