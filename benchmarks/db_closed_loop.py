"""Closed loop on a real PostgreSQL: the online planner resizes a live database under a daily
load cycle, through a real Prometheus.

* **Database**: ``tpcb-like`` at scale 10 (~160 MiB) in its own cgroup, started at the careful
  tenant's spec (read from ``benchmarks/results/db_profile/tpcb-s10/result.json``; fallback
  1000 m / 1024 MiB); ``shared_buffers`` stays 25 % of that starting memory, so the planner's
  memory floor is twice it.
* **Load**: one day of the Alibaba 2018 cluster's CPU utilisation
  (``../shared/data/datacenter-aggregates/alibaba2018``, 5-min steps, day 2), smoothed over
  30 min, mapped linearly onto 40-200 TPS and compressed 30x (a 5-min step lasts 10 s: the
  day takes 48 min); pgbench runs 10-s segments at the step's rate.
* **Telemetry**: a real Prometheus (Debian's 2.42, 5-s scrapes) scraping a real
  ``prometheus-postgres-exporter`` and cohabit's exporter of the cgroup under cAdvisor's
  metric names plus the load generator's latency histogram and offered load.
* **Decisions**: every 30 s, :func:`cohabit.engine.dbonline.control_once` -- the
  operator's online planner (:class:`cohabit.engine.dbonline.OnlineDatabasePlanner`) -- on
  the last 30 s of Prometheus data; resizes go through the local cgroup actuator.

Judged: the share of 1-minute intervals whose p99 (every transaction that started in it,
from pgbench's logs, not from Prometheus) meets the target; CPU-time and memory-time reserved
against the careful tenant's static spec and against the VPA recommender
(:class:`cohabit.predictors.VpaRecommender`, fed the same cgroup's 1-s usage samples)
re-applied every compressed hour; a plot of load, p99, limits and every resize/back-off.

    .venv/bin/python benchmarks/db_closed_loop.py                 # the day (about 50 min)
    .venv/bin/python benchmarks/db_closed_loop.py --step-seconds 5  # compressed 60x (25 min)

Results in ``benchmarks/results/db_closed_loop/`` (report.json, closed_loop.png, CSVs).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cohabit.actuator.cgroup import LocalCgroupActuator
from cohabit.engine.dbclosedloop import LoadShape, run_closed_loop, slo_minutes
from cohabit.engine.dbonline import OnlineDatabasePlanner
from cohabit.model import Resize, Resources
from cohabit.planner.dbonline import OnlineSettings
from cohabit.predictors import VpaRecommender
from cohabit.profiling import DatabaseSession, LoadSpec, shared_buffers_mib
from cohabit.profiling.metrics import CgroupCollector, LoadMetrics, PostgresExporter
from cohabit.telemetry.dbsignals import DatabaseQueries, PrometheusDatabaseSignals

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))  # the loopback Prometheus harness
from harness.prometheus import serve_registry, start_prometheus  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402

RESULTS = HERE / "results" / "db_closed_loop"
TRACE = (REPO.parent / "shared" / "data" / "datacenter-aggregates" / "alibaba2018"
         / "machine_usage_days_1_to_8_grouped_300_seconds.csv")
SELECTOR = 'namespace="bench",pod="pg-0",container="postgres"'
FALLBACK_TENANT = (1000, 1024)


def daily_shape(path: Path, *, day: int, step_s: float, lo: float, hi: float,
                steps: int | None = None) -> LoadShape:
    """One day (288 five-minute samples) of ``cpu_util_percent``, smoothed over 30 min,
    mapped onto ``[lo, hi]`` TPS, each sample lasting ``step_s`` real seconds."""
    frame = pd.read_csv(path)
    day_rows = frame["cpu_util_percent"].iloc[288 * day: 288 * (day + 1)]
    smooth = day_rows.rolling(6, center=True, min_periods=1).mean().to_numpy(float)
    x = (smooth - smooth.min()) / max(1e-9, smooth.max() - smooth.min())
    rates = lo + (hi - lo) * x
    if steps is not None:
        rates = rates[:steps]
    return LoadShape(tuple(float(r) for r in rates), step_s)


def tenant_spec() -> tuple[tuple[int, int], str]:
    path = HERE / "results" / "db_profile" / "tpcb-s10" / "result.json"
    if path.exists():
        spec = (json.loads(path.read_text()).get("tenant") or {}).get("spec")
        if spec:
            return (int(spec[0]), int(spec[1])), "careful tenant of benchmarks/db_profile.py"
    return FALLBACK_TENANT, "fallback (no db_profile result)"


def queries(window: str) -> DatabaseQueries:
    w = '{workload="db"}'
    return DatabaseQueries.cadvisor(
        SELECTOR, window=window,
        p99_ms=("histogram_quantile(0.99, sum by (le) (rate(pgbench_latency_seconds_bucket"
                f"{w}[{window}]))) * 1000"),
        offered_tps=f"pgbench_offered_tps{w}",
        tps=f"rate(pgbench_transactions_total{w}[{window}])")


def vpa_hourly(usage: pd.DataFrame, hour_s: float, duration_s: float, t0: float,
               start: tuple[int, int]) -> pd.DataFrame:
    """VPA's target re-applied every ``hour_s``, fitted on the samples before each hour
    (the first hour keeps ``start``)."""
    rows = []
    for h in range(int(math.ceil(duration_s / hour_s))):
        begin = t0 + h * hour_s
        seen = usage[usage["time"] < begin]
        if len(seen) < 10:
            cpu, mem = start
        else:
            t = seen["time"].to_numpy(float).reshape(-1, 1)
            cpu = int(math.ceil(VpaRecommender("cpu_milli").fit(
                t, seen["cpu_milli"].to_numpy(float)).target_))
            mem = int(math.ceil(VpaRecommender("memory_mib").fit(
                t, seen["memory_mib"].to_numpy(float)).target_))
        rows.append({"hour": h, "start": h * hour_s, "end": min(duration_s, (h + 1) * hour_s),
                     "cpu_milli": cpu, "memory_mib": mem})
    return pd.DataFrame(rows)


def plot(result, vpa: pd.DataFrame, tenant: tuple[int, int], target: float, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seg, dec, use = result.segments, result.decisions, result.usage
    t_use = use["time"] - use["time"].min() if not use.empty else use["time"]
    fig, axes = plt.subplots(4, 1, figsize=(11, 11), sharex=True)
    axes[0].step(seg["start"] / 60, seg["rate_tps"], where="post", label="offered TPS")
    axes[0].plot(seg["start"] / 60, seg["tps"], ".", ms=3, label="served TPS")
    axes[0].set_ylabel("TPS")
    p99 = seg["p99_ms"].replace(np.inf, np.nan)
    length = float((seg["end"] - seg["start"]).median()) if len(seg) else 0.0
    axes[1].plot(seg["start"] / 60, p99, ".", ms=4, label=f"p99 per {length:.0f}-s segment")
    axes[1].axhline(target, color="crimson", ls="--", label=f"target {target:g} ms")
    axes[1].set_yscale("log")
    axes[1].set_ylabel("p99 (ms)")
    for ax, col, ucol, tcol, label in ((axes[2], "cpu_milli", "cpu_milli", 0, "CPU (m)"),
                                       (axes[3], "memory_mib", "memory_mib", 1, "memory (MiB)")):
        ax.step(seg["start"] / 60, seg[col], where="post", label="cohabit limit")
        ax.step(vpa["start"] / 60, vpa[col], where="post", ls=":", label="VPA hourly")
        ax.axhline(tenant[tcol], color="grey", ls="--", label="careful tenant")
        if not use.empty:
            ax.plot(t_use / 60, use[ucol], lw=0.6, alpha=0.6, label="usage")
        ax.set_ylabel(label)
    for kind, marker, colour in (("step-down", "v", "tab:green"), ("step-up", "^", "tab:blue"),
                                 ("back-off", "X", "crimson")):
        d = dec[dec["kind"] == kind]
        axes[2].scatter(d["time"] / 60, d["cpu_milli"], marker=marker, color=colour, s=40,
                        zorder=5, label=kind)
    for ax in axes:
        ax.legend(fontsize=7, loc="upper right")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("minutes (one compressed day)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step-seconds", type=float, default=10.0,
                        help="real seconds per 5-min trace step")
    parser.add_argument("--decision-seconds", type=float, default=30.0)
    parser.add_argument("--p99-ms", type=float, default=100.0)
    parser.add_argument("--steps", type=int, default=None, help="use only the first N steps")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    shape = daily_shape(TRACE, day=1, step_s=args.step_seconds, lo=40, hi=200,
                        steps=args.steps)
    tenant, tenant_from = tenant_spec()
    print(f"load: {len(shape.rates)} steps of {shape.step_s:g} s "
          f"({shape.duration_s / 60:.0f} min), {min(shape.rates):.0f}-"
          f"{max(shape.rates):.0f} TPS; start at {tenant} ({tenant_from}); "
          f"load average {os.getloadavg()}", flush=True)
    load = LoadSpec.of(builtin="tpcb-like", scale=10, clients=8, rate_tps=shape.rates[0])
    report: dict = {"load_before": os.getloadavg(), "tenant": tenant,
                    "tenant_from": tenant_from, "target_p99_ms": args.p99_ms,
                    "step_seconds": args.step_seconds, "steps": len(shape.rates)}
    with DatabaseSession(load, name="closed-loop") as session:
        session.prepare()
        actuator = LocalCgroupActuator({"db": session.cgroup})  # type: ignore[dict-item]
        actuator.apply([Resize("db", "postgres", Resources(*tenant), reason="start")])
        session.start(tenant[1])
        registry = CollectorRegistry()
        registry.register(CgroupCollector(session.cgroup, namespace="bench",  # type: ignore
                                          pod="pg-0", container="postgres"))
        metrics = LoadMetrics(registry, "db")
        exporter = serve_registry(registry)
        with PostgresExporter(session.server) as pgexp:  # type: ignore[arg-type]
            prom = start_prometheus({"cohabit": [exporter.target],
                                     "postgres": [pgexp.target]}, scrape_interval="5s")
            try:
                settings = OnlineSettings(
                    target_p99_ms=args.p99_ms, cpu_lo=100, cpu_hi=2000,
                    mem_lo=2 * shared_buffers_mib(tenant[1]), mem_hi=tenant[1])
                planner = OnlineDatabasePlanner(
                    "db", settings, tenant, horizon_s=6 * args.step_seconds,
                    lookback_s=18 * args.step_seconds, min_windows_to_fit=6)
                with PrometheusDatabaseSignals(prom.url, timeout_s=5) as source:
                    result = run_closed_loop(
                        session, actuator, planner, source,
                        queries(f"{int(args.decision_seconds)}s"), metrics, shape,
                        decision_s=args.decision_seconds, latency_limit_ms=2000,
                        segment_s=args.step_seconds, log=lambda m: print(m, flush=True))
            finally:
                prom.stop()
                exporter.stop()
    report["load_after"] = os.getloadavg()
    return summarise(result, report, tenant, args.p99_ms, args.step_seconds, out)


def summarise(result, report: dict, tenant: tuple[int, int], target: float, step_s: float,
              out: Path) -> int:
    """Write the raw tables first, then the SLO, reserved resources, VPA and the plot."""
    result.segments.to_csv(out / "segments.csv", index=False)
    result.decisions.to_csv(out / "decisions.csv", index=False)
    result.usage.to_csv(out / "usage.csv", index=False)
    slo = slo_minutes(result, target)
    seg = result.segments
    duration = float(seg["end"].max())
    dt = (seg["end"] - seg["start"]).to_numpy(float)
    reserved = {"cohabit": {"cpu_core_s": float((seg["cpu_milli"] / 1000 * dt).sum()),
                            "memory_gib_s": float((seg["memory_mib"] / 1024 * dt).sum())},
                "tenant": {"cpu_core_s": tenant[0] / 1000 * duration,
                           "memory_gib_s": tenant[1] / 1024 * duration}}
    t0 = float(result.usage["time"].min()) if not result.usage.empty else 0.0
    vpa = vpa_hourly(result.usage, 12 * step_s, duration, t0, tenant)
    vdt = (vpa["end"] - vpa["start"]).to_numpy(float)
    reserved["vpa_hourly"] = {"cpu_core_s": float((vpa["cpu_milli"] / 1000 * vdt).sum()),
                              "memory_gib_s": float((vpa["memory_mib"] / 1024 * vdt).sum())}
    for who in ("tenant", "vpa_hourly"):
        for k in ("cpu_core_s", "memory_gib_s"):
            reserved[f"cohabit_vs_{who}_{k}"] = 1 - reserved["cohabit"][k] / reserved[who][k]
    kinds = result.decisions["kind"].value_counts().to_dict() if not result.decisions.empty \
        else {}
    report.update(
        slo_minutes=len(slo), slo_met=int(slo["met"].sum()),
        slo_share=float(slo["met"].mean()) if len(slo) else float("nan"),
        reserved=reserved, decisions=kinds, duration_s=duration,
        segments_p99_over_target=int((seg["p99_ms"] > target).sum()),
        segments=len(seg))
    slo.to_csv(out / "slo_minutes.csv", index=False)
    vpa.to_csv(out / "vpa_hourly.csv", index=False)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    plot(result, vpa, tenant, target, out / "closed_loop.png")
    print(json.dumps({k: report[k] for k in ("slo_minutes", "slo_met", "slo_share",
                                              "decisions", "reserved")}, indent=1,
                     default=str))
    return 0


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt  # unwinds through the session's cleanup


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    start = time.time()
    rc = main()
    print(f"took {time.time() - start:.0f} s")
    sys.exit(rc)
