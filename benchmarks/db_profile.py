"""Database profiles on a real PostgreSQL: cohabit's just-enough spec against the careful
tenant and the VPA, validated by fresh runs.

For each workload (builtin and custom pgbench scripts, data sets that fit in memory and ones
that do not, several p99 targets):

1. **cohabit**: :func:`cohabit.engine.dbprofile.profile_database` (the code of
   ``cohabit profile database``) with its defaults (10 s runs, 3 repeats, confidence 0.9,
   10-min budget), timed (``profile_s``, and without the one-off data load).
2. **validation**: fresh runs at cohabit's spec: server restarted at the spec, 20 s warm-up,
   5 runs of 30 s; the target is met when at least 4 of 5 runs have p99 <= target.
3. **careful tenant**: the cheapest spec on the cloud ladder {0.5, 1, 2, 4 cores} x
   {1, 2, 4, 8 GiB} meeting the same target measured the same way (5 x 30 s, 4 of 5),
   walked in cost order, skipping specs dominated by one that failed.
4. **VPA**: the project's :class:`cohabit.predictors.VpaRecommender` (upstream defaults:
   p90 CPU, peak memory, +15 %, 25 m / 250 MiB minimums) fed the cgroup's 1-s CPU-rate and
   working-set samples of the careful tenant's validation runs, its target applied as
   requests = limits, then measured the same way.

Results: ``benchmarks/results/db_profile/<workload>/`` (points.csv, curve.png,
validation.csv, tenant.csv, vpa.csv, result.json) and ``summary.json``; a finished
workload is not re-run unless ``--force``. The host's 1-minute load average is recorded beside
every run.

    .venv/bin/python benchmarks/db_profile.py                  # all workloads (about 2-3 h)
    .venv/bin/python benchmarks/db_profile.py --only tpcb-s10  # one
    .venv/bin/python benchmarks/db_profile.py --summary        # aggregate what exists
    .venv/bin/python benchmarks/db_profile.py --only tpcb-s30 --validate 260:128
        # re-validate a spec only (5 x 30 s after the 20-s warm-up), no profile: ~4 min
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
from cohabit.cli._dbplots import curve_png
from cohabit.engine.dbprofile import ProfileSettings, measure_spec, profile_database
from cohabit.planner.dbspec import CostWeights, SearchSpace, SpecSearch
from cohabit.predictors import VpaRecommender
from cohabit.profiling import DatabaseSession, LoadSpec

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "db_profile"
SCRIPTS = HERE / "db_workloads"

WORKLOADS = {
    "tpcb-s10": dict(builtin="tpcb-like", scale=10, rate_tps=100, clients=4, p99_ms=100),
    "simple-update-s10": dict(builtin="simple-update", scale=10, rate_tps=200, clients=8,
                              p99_ms=100),
    "select-only-s30": dict(builtin="select-only", scale=30, rate_tps=1200, clients=8,
                            p99_ms=50),
    "account-report-s10": dict(script=SCRIPTS / "account_report.sql", scale=10,
                               rate_tps=100, clients=4, p99_ms=50),
    "lookup-update-s60": dict(script=SCRIPTS / "lookup_update.sql", scale=60, rate_tps=100,
                              clients=8, p99_ms=150),
    "tpcb-s30": dict(builtin="tpcb-like", scale=30, rate_tps=150, clients=8, p99_ms=150),
}
"""Workload name -> load and p99 target (ms). Data sizes: scale 10 ~160 MiB, 30 ~460 MiB,
60 ~910 MiB (``pgbench -i``); the memory ladder starts at 128 MiB. Targets: 50, 100 and
150 ms, above what the shared host's load bursts do to p99 at a generous spec."""

LADDER_CPU = (500, 1000, 2000, 4000)
LADDER_MEM = (1024, 2048, 4096, 8192)
VALIDATION_RUNS = 5
VALIDATION_SECONDS = 30.0
VALIDATION_WARMUP_S = 20.0
MEETS_OF = 4


def _met(frame: pd.DataFrame, target: float) -> int:
    return int((frame["p99_ms"] <= target).sum())


def _careful_tenant(session, actuator, target, limit_ms, out: Path, log) -> dict:
    cost = CostWeights()
    ladder = sorted(((c, m) for c in LADDER_CPU for m in LADDER_MEM),
                    key=lambda k: (cost.cost(*k), k))
    failed: list[tuple[int, int]] = []
    frames = []
    chosen = None
    samples = pd.DataFrame()
    for cpu, mem in ladder:
        if any(cpu <= c and mem <= m for c, m in failed):
            continue
        runs, usage = measure_spec(session, actuator, cpu, mem, runs=VALIDATION_RUNS,
                                   seconds=VALIDATION_SECONDS, latency_limit_ms=limit_ms,
                                   warmup_seconds=VALIDATION_WARMUP_S, sample_interval_s=1.0,
                                   label=f"tenant {cpu}m/{mem}MiB")
        frames.append(runs)
        met = _met(runs, target)
        log(f"  tenant {cpu}m/{mem}MiB: p99 {list(runs['p99_ms'].round(1))} met {met}/5")
        if met >= MEETS_OF:
            chosen = (cpu, mem)
            samples = usage
            break
        failed.append((cpu, mem))
    pd.concat(frames).to_csv(out / "tenant.csv", index=False)
    samples.to_csv(out / "tenant_usage.csv", index=False)
    return {"spec": chosen, "candidates": len(frames), "samples": samples}


def _vpa(samples: pd.DataFrame) -> tuple[int, int]:
    t = samples["time"].to_numpy(float).reshape(-1, 1)
    cpu = VpaRecommender("cpu_milli").fit(t, samples["cpu_milli"].to_numpy(float))
    mem = VpaRecommender("memory_mib").fit(t, samples["memory_mib"].to_numpy(float))
    return int(math.ceil(cpu.target_)), int(math.ceil(mem.target_))


def run_workload(name: str, spec: dict, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []

    def log(text: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] {name}: {text}"
        print(line, flush=True)
        lines.append(line)

    target = spec["p99_ms"]
    load = LoadSpec.of(**{k: v for k, v in spec.items() if k != "p99_ms"})
    search = SpecSearch(SearchSpace(), target, confidence=0.9, repeats=3, max_repeats=6)
    settings = ProfileSettings()
    limit_ms = settings.limit_ms(target)
    result: dict = {"workload": name, "target_p99_ms": target, "rate_tps": load.rate_tps,
                    "clients": load.clients, "scale": load.scale,
                    "script": load.builtin or load.script.name,  # type: ignore[union-attr]
                    "load_before": os.getloadavg()}
    with DatabaseSession(load, name=f"bench-{name}") as session:
        actuator = LocalCgroupActuator({session.name: session.cgroup})  # type: ignore
        log("profiling")
        t0 = time.monotonic()
        prof = profile_database(session, actuator, search, settings,
                                progress=lambda e, i: e == "run" and log(
                                    f"  {i['cpu_milli']}m/{i['memory_mib']}MiB p99 "
                                    f"{i['p99_ms']:.1f}"))
        profile_s = time.monotonic() - t0
        prof.points.to_csv(out / "points.csv", index=False)
        choice = prof.choice
        curve_png(prof.points, prof.curve, target, out / "curve.png",
                  chosen=(choice.cpu_milli, choice.memory_mib) if choice and choice.feasible
                  else None, title=f"{name}: p99 target {target:g} ms",
                  ceiling_ms=limit_ms)
        result.update(
            profile_s=profile_s, load_s=prof.load_seconds, data_mib=prof.data_mib,
            profile_runs=len(prof.points), profile_allocations=len(prof.summary),
            profile_stopped=prof.stopped,
            feasible=bool(choice and choice.feasible),
            cohabit={"cpu_milli": choice.cpu_milli, "memory_mib": choice.memory_mib,
                     "confidence": choice.confidence, "p99_expected": choice.p99_ms_expected,
                     "why": choice.why} if choice else None,
            profile_load1_mean=float(prof.points["load1"].mean()))
        log(f"profile done in {profile_s:.0f} s ({len(prof.points)} runs): "
            f"{choice.cpu_milli if choice else '-'}m/{choice.memory_mib if choice else '-'}MiB")
        if choice is not None and choice.feasible:
            val, _ = measure_spec(session, actuator, choice.cpu_milli, choice.memory_mib,
                                  runs=VALIDATION_RUNS, seconds=VALIDATION_SECONDS,
                                  latency_limit_ms=limit_ms,
                                  warmup_seconds=VALIDATION_WARMUP_S, label="cohabit")
            val.to_csv(out / "validation.csv", index=False)
            result["validation"] = {"p99": list(val["p99_ms"]), "met": _met(val, target),
                                    "load1": list(val["load1"])}
            log(f"validation p99 {list(val['p99_ms'].round(1))} met {_met(val, target)}/5")
        tenant = _careful_tenant(session, actuator, target, limit_ms, out, log)
        result["tenant"] = {"spec": tenant["spec"], "candidates": tenant["candidates"]}
        if tenant["spec"] is not None and not tenant["samples"].empty:
            vcpu, vmem = _vpa(tenant["samples"])
            vpa, _ = measure_spec(session, actuator, vcpu, vmem, runs=VALIDATION_RUNS,
                                  seconds=VALIDATION_SECONDS, latency_limit_ms=limit_ms,
                                  warmup_seconds=VALIDATION_WARMUP_S, label="vpa")
            vpa.to_csv(out / "vpa.csv", index=False)
            result["vpa"] = {"spec": (vcpu, vmem), "p99": list(vpa["p99_ms"]),
                             "met": _met(vpa, target), "load1": list(vpa["load1"])}
            log(f"VPA {vcpu}m/{vmem}MiB p99 {list(vpa['p99_ms'].round(1))} "
                f"met {_met(vpa, target)}/5")
    result["load_after"] = os.getloadavg()
    (out / "result.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    (out / "log.txt").write_text("\n".join(lines) + "\n")
    return result


def revalidate(name: str, spec: dict, cpu_milli: int, memory_mib: int, out: Path) -> dict:
    """Step 2 alone for a given spec: fresh 5 x 30 s runs (after the 20-s warm-up), written
    to ``out/revalidation-<cpu>m-<mem>MiB.{csv,json}``."""
    out.mkdir(parents=True, exist_ok=True)
    target = spec["p99_ms"]
    load = LoadSpec.of(**{k: v for k, v in spec.items() if k != "p99_ms"})
    limit_ms = ProfileSettings().limit_ms(target)
    result: dict = {"workload": name, "spec": [cpu_milli, memory_mib], "target_p99_ms": target,
                    "load_before": os.getloadavg()}
    with DatabaseSession(load, name=f"bench-{name}") as session:
        session.prepare()
        actuator = LocalCgroupActuator({session.name: session.cgroup})  # type: ignore
        val, _ = measure_spec(session, actuator, cpu_milli, memory_mib, runs=VALIDATION_RUNS,
                              seconds=VALIDATION_SECONDS, latency_limit_ms=limit_ms,
                              warmup_seconds=VALIDATION_WARMUP_S, label="revalidation")
    stem = out / f"revalidation-{cpu_milli}m-{memory_mib}MiB"
    val.to_csv(stem.with_suffix(".csv"), index=False)
    result.update(p99=list(val["p99_ms"]), met=_met(val, target), load1=list(val["load1"]),
                  load_after=os.getloadavg())
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(f"{name} at {cpu_milli}m/{memory_mib}MiB: p99 {list(val['p99_ms'].round(1))} ms, "
          f"met {result['met']}/{VALIDATION_RUNS} (target {target} ms); load1 "
          f"{result['load_before'][0]:.2f} -> {result['load_after'][0]:.2f}")
    return result


def summary(names: list[str]) -> dict:
    rows = []
    for name in names:
        path = RESULTS / name / "result.json"
        if path.exists():
            rows.append(json.loads(path.read_text()))
    table = []
    for r in rows:
        co, te, vp = r.get("cohabit") or {}, r.get("tenant", {}).get("spec"), r.get("vpa", {})
        table.append({
            "workload": r["workload"], "target": r["target_p99_ms"], "data_mib": r["data_mib"],
            "profile_min": r["profile_s"] / 60, "profile_min_no_load":
                (r["profile_s"] - r["load_s"]) / 60, "runs": r["profile_runs"],
            "stopped": r.get("profile_stopped", ""),
            "cohabit_cpu": co.get("cpu_milli"), "cohabit_mem": co.get("memory_mib"),
            "validated": r.get("validation", {}).get("met"),
            "tenant_cpu": te[0] if te else None, "tenant_mem": te[1] if te else None,
            "vpa_cpu": (vp.get("spec") or [None, None])[0],
            "vpa_mem": (vp.get("spec") or [None, None])[1], "vpa_met": vp.get("met"),
            "load1": r.get("profile_load1_mean"),
        })
    frame = pd.DataFrame(table)
    out: dict = {"workloads": table}
    both = frame.dropna(subset=["cohabit_cpu", "tenant_cpu"]) if not frame.empty else frame
    if not both.empty:
        out["cpu_saving_vs_tenant"] = 1 - both["cohabit_cpu"].sum() / both["tenant_cpu"].sum()
        out["mem_saving_vs_tenant"] = 1 - both["cohabit_mem"].sum() / both["tenant_mem"].sum()
        out["validated_4_of_5"] = int((both["validated"] >= MEETS_OF).sum())
        out["workloads_compared"] = len(both)
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    for k in ("cpu_saving_vs_tenant", "mem_saving_vs_tenant", "validated_4_of_5"):
        if k in out:
            print(f"{k}: {out[k]:.3f}" if isinstance(out[k], float) else f"{k}: {out[k]}")
    (RESULTS / "summary.json").write_text(json.dumps(out, indent=2, default=float) + "\n")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(WORKLOADS))
    parser.add_argument("--force", action="store_true", help="re-run finished workloads")
    parser.add_argument("--summary", action="store_true", help="only aggregate results")
    parser.add_argument("--validate", metavar="CPU_MILLI:MEMORY_MIB",
                        help="only re-validate this spec (5 x 30 s) for the --only workloads")
    args = parser.parse_args()
    names = args.only or list(WORKLOADS)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.validate:
        cpu, mem = (int(v) for v in args.validate.split(":"))
        for name in names:
            revalidate(name, WORKLOADS[name], cpu, mem, RESULTS / name)
        return 0
    if not args.summary:
        for name in names:
            out = RESULTS / name
            if (out / "result.json").exists() and not args.force:
                print(f"{name}: done before (use --force to re-run)")
                continue
            run_workload(name, WORKLOADS[name], out)
    summary(names)
    return 0


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt  # unwinds through every session's cleanup


if __name__ == "__main__":
    np.seterr(all="ignore")
    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(main())
