"""Interference between real PostgreSQL databases: profiles, pair prediction, fair placement.

Uses the workloads of ``benchmarks/db_profile.py`` at cohabit's just-enough specs (read from
``benchmarks/results/db_profile/<workload>/result.json``; a workload without a result uses
the fallback spec below, said in the output).

1. **Probes**: each stress-ng probe's slowdown per stressor core on the shared CPU
   (:func:`cohabit.engine.dbinterference.calibrate_probes`).
2. **Profiles**: every database, pinned to CPU 1 at its spec, beside a stress-ng stressor in
   a sibling cgroup on the same CPU (CPU, memory bandwidth, disk with fsync) at 2 intensities
   -> sensitivity; the probes beside the database -> pressure
   (:func:`~cohabit.engine.dbinterference.measure_interference`).
3. **Pairs**: every pair of databases on CPU 1 together, each with its own load, against
   each alone just before: measured slowdown ``1 - p99_solo / p99_co`` of each side vs the
   slowdown placement predicts from the two profiles
   (:func:`cohabit.placement.pressure_sensitivity_slowdown`): MAE and Spearman's rho.
4. **Fair placement**: the six databases onto two "nodes" (CPU 0 and CPU 1, one cpuset each,
   1000 m and 8 GiB allocatable) by LeastRequestedPriority and by the fair policy
   (:mod:`cohabit.placement.fairness`), bound through the local actuator, all six loads run
   together; each instance's p99 and TPS against its solo run (alone on its node), and the
   unfairness (coefficient of variation of ``p99_solo / p99_co``) per policy; the policies
   alternate over ``--repeats`` rounds so the host's drift hits both alike.

Results in ``benchmarks/results/db_interference/``; the host's 1-minute load average is
recorded beside every run.

    .venv/bin/python benchmarks/db_interference.py             # all steps (about 45 min)
    .venv/bin/python benchmarks/db_interference.py --seconds 6 --corun-seconds 20 \
        --probe-seconds 4 --probe-repeats 1 --repeats 2                   # about 30 min
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pandas as pd

from cohabit.actuator.cgroup import LocalCgroupActuator
from cohabit.cgroup import detect
from cohabit.engine.dbinterference import (
    InterferenceSettings,
    bind_all,
    calibrate_probes,
    corun,
    measure_interference,
    measured_unfairness,
    place,
    predict_pairs,
)
from cohabit.model import InterferenceProfile, Resize, Resources
from cohabit.placement.fairness import predicted_np, unfairness
from cohabit.placement.interference import pressure_sensitivity_slowdown
from cohabit.predictors.dbinterference import (
    database_profile,
    normalised_performance,
    sensitivity_slope,
    slowdown,
)
from cohabit.profiling import DatabaseSession, LoadSpec
from db_profile import RESULTS as PROFILE_RESULTS
from db_profile import WORKLOADS

RESULTS = Path(__file__).resolve().parent / "results" / "db_interference"
FALLBACK = Resources(500, 512)
NODES = {"node-a": "0", "node-b": "1"}
NODE_CAPACITY = Resources(1000, 8192)


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] {text}", flush=True)


def spec_of(name: str) -> tuple[Resources, str]:
    path = PROFILE_RESULTS / name / "result.json"
    if path.exists():
        co = json.loads(path.read_text()).get("cohabit") or {}
        if co:
            return Resources(co["cpu_milli"], co["memory_mib"]), "cohabit profile"
    return FALLBACK, "fallback (no profile result)"


def _profile_dict(p: InterferenceProfile) -> dict:
    return {"pressure": dict(p.pressure), "sensitivity": dict(p.sensitivity)}


def saved_profiles(settings: InterferenceSettings
                   ) -> tuple[dict[str, float], tuple[dict[str, InterferenceProfile],
                                                      pd.DataFrame]]:
    """Probe sensitivities, profiles and measured pairs rebuilt from an earlier run's CSVs
    (``probes.csv``, ``sensitivity.csv``, ``pressure.csv``, ``pairs.csv``)."""
    calib = pd.read_csv(RESULTS / "probes.csv")
    probe_k = {r: sensitivity_slope(list(g["intensity"]),
                                    list((1.0 - g["probe_co"] / g["probe_solo"]).clip(0.0)))
               for r, g in calib.groupby("resource")}
    sens = pd.read_csv(RESULTS / "sensitivity.csv")
    press = pd.read_csv(RESULTS / "pressure.csv")
    profiles = {n: database_profile(sens[sens["workload"] == n], press[press["workload"] == n],
                                    probe_k) for n in sens["workload"].unique()}
    pairs = pd.read_csv(RESULTS / "pairs.csv").drop(columns=["predicted"], errors="ignore")
    log(f"placement only: probes, profiles and {len(pairs)} pair rows from {RESULTS}")
    return probe_k, (profiles, pairs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="pgbench run length")
    parser.add_argument("--corun-seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3, help="placement rounds")
    parser.add_argument("--intensities", type=float, nargs="+", default=[0.3, 0.8],
                        help="stressor intensities (cores)")
    parser.add_argument("--probe-seconds", type=float, default=8.0)
    parser.add_argument("--probe-repeats", type=int, default=2,
                        help="alternated alone/beside probe pairs per resource (pressure)")
    parser.add_argument("--only", nargs="+", choices=sorted(WORKLOADS))
    parser.add_argument("--placement-only", action="store_true",
                        help="rebuild probes, profiles and pairs from the CSVs of an earlier "
                        "run; measure only the fair-placement step")
    args = parser.parse_args()
    names = args.only or list(WORKLOADS)
    RESULTS.mkdir(parents=True, exist_ok=True)
    settings = InterferenceSettings(cpus="1", intensities=tuple(args.intensities),
                                    seconds=args.seconds, probe_seconds=args.probe_seconds,
                                    probe_repeats=args.probe_repeats)
    tree = detect()
    report: dict = {"load_before": os.getloadavg(), "settings": settings.__dict__}

    if args.placement_only:
        probe_k, saved = saved_profiles(settings)
    else:
        log("calibrating probes")
        probe_k, calib = calibrate_probes(tree, settings, log=log)
        calib.to_csv(RESULTS / "probes.csv", index=False)
    report["probe_sensitivity"] = probe_k

    specs = {n: spec_of(n) for n in names}
    with ExitStack() as stack:
        sessions: dict[str, DatabaseSession] = {}
        for n in names:
            load = LoadSpec.of(**{k: v for k, v in WORKLOADS[n].items() if k != "p99_ms"})
            s = stack.enter_context(DatabaseSession(load, name=f"intf-{n}", cpuset="0-1"))
            s.prepare()
            sessions[n] = s
        actuator = LocalCgroupActuator({n: s.cgroup for n, s in sessions.items()},  # type: ignore
                                       nodes={**NODES, "shared": settings.cpus})
        for n, s in sessions.items():
            spec = specs[n][0]
            actuator.apply([Resize(n, "postgres", spec, reason="just-enough spec")])
            s.start(spec.memory_mib)
            log(f"{n}: {spec.cpu_milli}m/{spec.memory_mib}MiB ({specs[n][1]})")

        # 2. profiles, one database at a time on the shared CPU
        profiles: dict[str, InterferenceProfile] = {}
        sens_frames, press_frames = [], []
        for n, s in sessions.items():
            if args.placement_only:
                break
            bind_all(actuator, {n: "shared"})
            prof, sens, press = measure_interference(s, tree, probe_k, settings, log=log)
            profiles[n] = prof
            sens_frames.append(sens.assign(workload=n))
            press_frames.append(press.assign(workload=n))
            log(f"{n}: {_profile_dict(prof)}")
        if args.placement_only:
            profiles = {n: saved[0][n] for n in names}
        else:
            pd.concat(sens_frames).to_csv(RESULTS / "sensitivity.csv", index=False)
            pd.concat(press_frames).to_csv(RESULTS / "pressure.csv", index=False)
        report["profiles"] = {n: _profile_dict(p) for n, p in profiles.items()}

        # 3. pairs on the shared CPU
        pair_rows = []
        for a, b in itertools.combinations(names, 2):
            if args.placement_only:
                pair_rows = saved[1].to_dict("records")
                break
            bind_all(actuator, {a: "shared", b: "shared"})
            solo = {n: corun([sessions[n]], args.seconds, settings.latency_limit_ms)[0]
                    for n in (a, b)}
            co = dict(zip((a, b), corun([sessions[a], sessions[b]], args.seconds,
                                        settings.latency_limit_ms), strict=True))
            for v, g in ((a, b), (b, a)):
                pair_rows.append({"victim": v, "aggressor": g, "p99_solo_ms": solo[v].p99_ms,
                                  "p99_co_ms": co[v].p99_ms, "tps_solo": solo[v].tps,
                                  "tps_co": co[v].tps,
                                  "slowdown": slowdown(solo[v].p99_ms, co[v].p99_ms),
                                  "load1": os.getloadavg()[0]})
            log(f"pair {a}+{b}: {a} {solo[a].p99_ms:.1f}->{co[a].p99_ms:.1f}, "
                f"{b} {solo[b].p99_ms:.1f}->{co[b].p99_ms:.1f}")
        pairs, err = predict_pairs(profiles, pd.DataFrame(pair_rows))
        pairs.to_csv(RESULTS / "pairs.csv", index=False)
        report["pairs"] = err
        log(f"pair prediction: {err}")

        # 4. fair placement vs LeastRequestedPriority on two cpuset nodes
        requests = {n: specs[n][0] for n in names}
        capacity = {node: NODE_CAPACITY for node in NODES}
        placements = {}
        for policy in ("least-requested", "fair"):
            try:
                placements[policy] = place(policy, names, requests, capacity, profiles)
            except ValueError as exc:
                log(f"{policy}: {exc}; requests scaled to fit two 1000m nodes")
                total = sum(r.cpu_milli for r in requests.values())
                scale = 1900 / total
                requests = {n: Resources(int(r.cpu_milli * scale), r.memory_mib)
                            for n, r in requests.items()}
                placements[policy] = place(policy, names, requests, capacity, profiles)
        report["placements"] = placements
        report["predicted_unfairness"] = {
            p: unfairness(list(predicted_np(a, profiles, pressure_sensitivity_slowdown)
                               .values())) for p, a in placements.items()}
        log(f"placements: {placements}; predicted unfairness "
            f"{report['predicted_unfairness']}")
        solo_rows = []
        for n in names:  # solo: each alone on a node (all others idle)
            bind_all(actuator, {n: "node-b"})
            run = corun([sessions[n]], args.corun_seconds, settings.latency_limit_ms)[0]
            solo_rows.append({"workload": n, "p99_ms": run.p99_ms, "tps": run.tps,
                              "load1": os.getloadavg()[0]})
            log(f"solo {n}: p99 {run.p99_ms:.1f} tps {run.tps:.1f}")
        solo = pd.DataFrame(solo_rows).set_index("workload")
        rows = []
        for rnd in range(args.repeats):
            for policy in (("least-requested", "fair") if rnd % 2 == 0
                           else ("fair", "least-requested")):
                bind_all(actuator, placements[policy])
                runs = corun([sessions[n] for n in names], args.corun_seconds,
                             settings.latency_limit_ms)
                co = {n: r.p99_ms for n, r in zip(names, runs, strict=True)}
                u = measured_unfairness(solo["p99_ms"].to_dict(), co)
                for n, r in zip(names, runs, strict=True):
                    rows.append({"round": rnd, "policy": policy, "workload": n,
                                 "node": placements[policy][n], "p99_solo_ms":
                                 solo.loc[n, "p99_ms"], "p99_ms": r.p99_ms,
                                 "tps_solo": solo.loc[n, "tps"], "tps": r.tps,
                                 "np": normalised_performance(solo.loc[n, "p99_ms"], r.p99_ms),
                                 "unfairness": u, "load1": os.getloadavg()[0]})
                log(f"round {rnd} {policy}: unfairness {u:.3f} "
                    f"{ {n: round(v, 1) for n, v in co.items()} }")
        runs = pd.DataFrame(rows)
        runs.to_csv(RESULTS / "placement.csv", index=False)
        per = runs.groupby(["policy", "round"])["unfairness"].first().groupby("policy")
        report["unfairness"] = {p: {"median": float(g.median()), "rounds": list(g)}
                                for p, g in per}
        lr = report["unfairness"]["least-requested"]["median"]
        fair = report["unfairness"]["fair"]["median"]
        report["fair_over_least_requested"] = fair / lr if lr > 0 else float("nan")
        log(f"unfairness median: fair {fair:.3f}, least-requested {lr:.3f}, "
            f"ratio {report['fair_over_least_requested']:.2f}")
    report["load_after"] = os.getloadavg()
    (RESULTS / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt  # unwinds through every session's cleanup


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(main())
