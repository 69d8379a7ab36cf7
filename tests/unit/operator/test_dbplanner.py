"""The online capacity planner in the operator (operator.dbplanner): a ``DatabaseWorkload``
with ``spec.qos.offeredLoadQuery`` is sized by the same ``control_once`` the closed-loop
benchmark judges; status.capacityPlanner says what it decided and why. The signal source is a
recorded window (the shape :class:`PrometheusDatabaseSignals` returns); Prometheus itself is
exercised in the integration tier (tests/integration/test_db_closed_loop.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from cohabit.model import Resize
from cohabit.operator import handlers
from cohabit.telemetry import TelemetryUnavailable
from cohabit.telemetry.dbsignals import DB_SIGNAL_COLUMNS, workload_queries
from tests.helpers.operator_factories import NOW, RecordingActuator, memo

OFFERED = 'sum(rate(pgbench_offered_transactions_total[1m]))'


class RecordedSignals:
    """A database signal source answering one recorded window (or raising what it is given)."""

    def __init__(self, frame: pd.DataFrame | Exception):
        self.frame = frame
        self.asked: list = []

    def window(self, queries, start, end, step_s):
        self.asked.append((queries, start, end, step_s))
        if isinstance(self.frame, Exception):
            raise self.frame
        return self.frame


def _window(p99_ms: float, throttled: float, cpu_used: float) -> pd.DataFrame:
    """Four 15-s samples of a server limited to 4 cores / 16 GiB (the target's requests)."""
    row = {"p99_ms": p99_ms, "offered_tps": 200.0, "tps": 200.0, "cpu_milli": cpu_used,
           "throttled_ratio": throttled, "memory_mib": 900.0, "hit_ratio": 0.99,
           "cpu_limit_milli": 4000.0, "memory_limit_mib": 16384.0}
    frame = pd.DataFrame([{**row, "time": NOW - 60 + 15 * i} for i in range(4)])
    return frame[list(DB_SIGNAL_COLUMNS)]


def _db_spec(mode: str = "Apply") -> dict:
    return {"targetRef": {"kind": "Deployment", "name": "sd"},
            "qos": {"metric": "p99LatencyMs", "target": 100, "query": "pg_p99_ms",
                    "offeredLoadQuery": OFFERED},
            "bounds": {"min": {"cpu": "100m", "memory": "256Mi"},
                       "max": {"cpu": "6", "memory": "32Gi"}},
            "mode": mode}


def _call(runtime, spec: dict) -> dict:
    patch = SimpleNamespace(status={})
    handlers.workload_changed(
        body={"kind": "DatabaseWorkload"}, spec=spec, name="sd", namespace="ns",
        meta={"generation": 1}, status={}, patch=patch, memo=memo(runtime), logger=None,
        reason="create", diff=(), old=None, new=None)
    return patch.status


def test_starved_database_backs_off_at_once_in_apply_mode(cluster_api, make_runtime):
    actuator = RecordingActuator()
    rt = make_runtime(actuator=actuator)
    rt.db_signals = RecordedSignals(_window(p99_ms=400.0, throttled=0.6, cpu_used=3900.0))
    status = _call(rt, _db_spec("Apply"))
    planner = status["capacityPlanner"]
    assert planner["decision"] == "back-off" and "throttled" in planner["why"]
    [action] = actuator.applied
    assert isinstance(action, Resize) and action.requests.cpu_milli > 4000
    assert action.container == "server"
    assert planner["chosen"]["cpu"] == f"{action.requests.cpu_milli}m"
    assert planner["lastOutcome"].startswith("done")
    queries = rt.db_signals.asked[0][0]
    assert 'namespace="ns"' in queries.offered_tps and 'pod=~"sd-0|sd-1"' in queries.cpu_milli


def test_recommend_mode_decides_but_changes_nothing(cluster_api, make_runtime):
    actuator = RecordingActuator()
    rt = make_runtime(actuator=actuator)
    rt.db_signals = RecordedSignals(_window(p99_ms=400.0, throttled=0.6, cpu_used=3900.0))
    planner = _call(rt, _db_spec("Recommend"))["capacityPlanner"]
    assert planner["decision"] == "back-off"
    assert actuator.applied == []
    assert planner["chosen"] == {"cpu": "4000m", "memory": "16384Mi"}  # still in force


def test_slow_but_not_starved_holds(cluster_api, make_runtime):
    actuator = RecordingActuator()
    rt = make_runtime(actuator=actuator)
    rt.db_signals = RecordedSignals(_window(p99_ms=400.0, throttled=0.0, cpu_used=500.0))
    planner = _call(rt, _db_spec())["capacityPlanner"]
    assert planner["decision"] == "hold" and "not starved" in planner["why"]
    assert actuator.applied == []


@pytest.mark.parametrize(
    ("source", "why"),
    [(None, "COHABIT_PROMETHEUS_URL"),
     (RecordedSignals(TelemetryUnavailable("connection refused")), "no p99")],
    ids=["no-prometheus", "prometheus-down"])
def test_missing_telemetry_is_no_data_and_no_action(cluster_api, make_runtime, source, why):
    actuator = RecordingActuator()
    rt = make_runtime(actuator=actuator)
    rt.db_signals = source
    planner = _call(rt, _db_spec())["capacityPlanner"]
    assert planner["decision"] == "no-data" and why in planner["why"]
    assert actuator.applied == [] and planner["confidence"] == 0


def test_planner_state_is_kept_between_passes_and_forgotten_with_the_workload(
        cluster_api, make_runtime):
    rt = make_runtime()
    rt.db_signals = RecordedSignals(_window(p99_ms=40.0, throttled=0.0, cpu_used=300.0))
    _call(rt, _db_spec())
    status = _call(rt, _db_spec())
    assert status["capacityPlanner"]["windows"] == 2
    rt.forget("ns/sd")
    assert "ns/sd" not in rt.db_planners


def test_workload_queries_are_confined_to_the_namespace():
    q = workload_queries("shop", ["pg-0", "pg.1"], "postgres", p99_query="lat_p99",
                         offered_query=OFFERED)
    assert 'namespace="shop"' in q.p99_ms and 'namespace="shop"' in q.hit_ratio
    assert 'pod=~"pg-0|pg\\\\.1"' in q.memory_mib  # a regex, escaped for PromQL
    with pytest.raises(TelemetryUnavailable, match="spec.qos"):
        workload_queries("shop", ["pg-0"], "postgres", p99_query='x{namespace="other"}',
                         offered_query=OFFERED)
    with pytest.raises(TelemetryUnavailable, match="no pods"):
        workload_queries("shop", [], "postgres", p99_query="x", offered_query=OFFERED)
    open_q = workload_queries("shop", ["pg-0"], "postgres", p99_query="x",
                              offered_query=OFFERED, confined=False)
    assert open_q.p99_ms == "x" and "namespace" not in open_q.hit_ratio
