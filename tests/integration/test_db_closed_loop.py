"""The closed loop on a real PostgreSQL, short: a varying pgbench load, a real Prometheus
scraping a real prometheus-postgres-exporter and cohabit's cAdvisor-named cgroup exporter,
the online planner's decisions (the operator's code) carried out by the local cgroup
actuator. The full day is ``benchmarks/db_closed_loop.py``."""

from __future__ import annotations

import math
import shutil
import time

import pytest
from prometheus_client import CollectorRegistry

from cohabit.actuator.cgroup import LocalCgroupActuator
from cohabit.engine.dbclosedloop import LoadShape, run_closed_loop, slo_minutes
from cohabit.engine.dbonline import OnlineDatabasePlanner
from cohabit.model import Resize, Resources
from cohabit.planner.dbonline import OnlineSettings
from cohabit.profiling import DatabaseSession, LoadSpec
from cohabit.profiling.metrics import CgroupCollector, LoadMetrics, PostgresExporter
from cohabit.telemetry.dbsignals import DatabaseQueries, PrometheusDatabaseSignals
from tests.integration.harness.binaries import need
from tests.integration.harness.prometheus import serve_registry, start_prometheus

SELECTOR = 'namespace="t",pod="pg-0",container="postgres"'


@pytest.fixture(scope="module")
def tools() -> None:
    for binary, package in (("prometheus", "prometheus"),
                            ("prometheus-postgres-exporter", "prometheus-postgres-exporter")):
        if shutil.which(binary) is None:
            need(f"{binary} missing: apt-get install {package}")


@pytest.mark.usefixtures("prerequisites", "tools")
def test_closed_loop_resizes_a_live_database() -> None:
    w = '{workload="db"}'
    queries = DatabaseQueries.cadvisor(
        SELECTOR, window="10s",
        p99_ms=("histogram_quantile(0.99, sum by (le) (rate(pgbench_latency_seconds_bucket"
                f"{w}[10s]))) * 1000"),
        offered_tps=f"pgbench_offered_tps{w}")
    shape = LoadShape((40.0, 60.0, 80.0, 60.0, 40.0, 30.0) * 2, 5.0)
    start = (1500, 512)
    load = LoadSpec.of(builtin="select-only", scale=1, clients=2, rate_tps=40)
    with DatabaseSession(load, name="itest-loop") as session:
        session.prepare()
        actuator = LocalCgroupActuator({"db": session.cgroup})
        actuator.apply([Resize("db", "postgres", Resources(*start))])
        session.start(start[1])
        registry = CollectorRegistry()
        registry.register(CgroupCollector(session.cgroup, namespace="t", pod="pg-0",
                                          container="postgres"))
        metrics = LoadMetrics(registry, "db")
        exporter = serve_registry(registry)
        with PostgresExporter(session.server) as pgexp:
            prom = start_prometheus({"c": [exporter.target], "pg": [pgexp.target]},
                                    scrape_interval="2s")
            try:
                planner = OnlineDatabasePlanner(
                    "db", OnlineSettings(target_p99_ms=500.0, cpu_lo=100, cpu_hi=2000,
                                         mem_lo=256, mem_hi=512, min_confidence=0.3,
                                         settle_windows=1),
                    start, horizon_s=20, lookback_s=40, min_windows_to_fit=3,
                    full_confidence_windows=4)
                with PrometheusDatabaseSignals(prom.url, timeout_s=5) as source:
                    signals = source.window(queries, 0, 1, 1)  # the frame's shape
                    result = run_closed_loop(session, actuator, planner, source, queries,
                                             metrics, shape, decision_s=10,
                                             latency_limit_ms=2000, log=lambda m: None)
                    now = time.time()
                    live = source.window(queries, now - 20, now, 2)
            finally:
                prom.stop()
                exporter.stop()
        limits = session.cgroup.limits()
    assert list(signals.columns)[0] == "time"
    for col in ("p99_ms", "offered_tps", "throttled_ratio", "hit_ratio", "cpu_limit_milli",
                "memory_limit_mib", "memory_mib", "cpu_milli"):
        assert live[col].notna().any(), col  # every signal reached Prometheus
    dec = result.decisions
    assert len(dec) >= 4 and set(dec["kind"]) <= {"hold", "step-down", "step-up", "back-off",
                                                   "no-data"}
    changed = dec[dec["outcome"] == "done"]
    assert not changed.empty, dec[["kind", "reason"]].to_string()
    last = changed.iloc[-1]
    assert (limits[0], limits[2]) == (last["cpu_milli"], last["memory_mib"])  # applied
    assert last["cpu_milli"] < start[0]  # the planner walked down from the generous start
    slo = slo_minutes(result, 500.0)
    assert len(slo) >= 1 and slo["transactions"].sum() > 300
    assert not math.isnan(slo["p99_ms"].iloc[0])
