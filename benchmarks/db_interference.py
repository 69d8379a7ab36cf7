"""Interference between real PostgreSQL databases: profiles, pair prediction, fair placement.

Uses the workloads of ``benchmarks/db_profile.py`` at cohabit's just-enough specs (read from
``benchmarks/results/db_profile/<workload>/result.json``; without one, the spec that the
profile benchmark recommended in its documented run, :data:`DOCUMENTED_SPECS`, said in the
output). Every contended run is bracketed by solo runs (the protocol of
:mod:`cohabit.engine.dbinterference`), so the host's drift cancels.

1. **Probes**: each stress-ng probe's slowdown per stressor core on the shared CPU
   (:func:`cohabit.engine.dbinterference.calibrate_probes`).
2. **Profiles**: every database, pinned to CPU 1 at its spec, beside a stress-ng stressor in
   a sibling cgroup on the same CPU (CPU, memory bandwidth, disk with fsync) at 2 intensities
   -> sensitivity; the probes beside the database -> pressure
   (:func:`~cohabit.engine.dbinterference.measure_interference`).
3. **Pairs**: every pair of databases on CPU 1 together, each with its own load, between
   solo runs (the two alone on CPU 0 and CPU 1 at once, alternating):
   measured slowdown ``1 - p99_solo / p99_co`` of each side vs the slowdown placement
   predicts from the two profiles (:func:`cohabit.placement.pressure_sensitivity_slowdown`):
   MAE and Spearman's rho (:func:`~cohabit.engine.dbinterference.measure_pairs`).
4. **Node co-runs** (``--node-partitions``, :func:`node_step`): partitions of the six
   databases into three per node, both nodes loaded at once, each co-run between solo
   blocks (``--node-repeats`` co-runs, medians), the CPU usage of every run read from the
   server's cgroup; the node-level model
   (:func:`cohabit.predictors.dbinterference.node_slowdown`: each database's CPU
   sensitivity curve at its co-runners' summed measured CPU usage) judged by MAE and
   Spearman's rho, beside its CFS-quota variant and the pair models composed per node
   (:func:`~cohabit.engine.dbinterference.measure_nodes`).
5. **Fair placement**: the six databases onto two "nodes" (CPU 0 and CPU 1, one cpuset each,
   1000 m and 8 GiB allocatable) by LeastRequestedPriority and by the fair policy
   (:func:`cohabit.placement.fairness.place_fair_nodes` with the node model and its residuals
   from step 4 as its evidence; without step 4, :func:`~cohabit.placement.fairness.place_fair`
   with the pair model's residuals from step 3), bound through the local actuator, all six
   loads run together; each instance's p99 and TPS against its solo runs (alone on a node)
   just before and after, and the unfairness (coefficient of variation of
   ``p99_solo / p99_co``) per policy; the policies alternate over ``--repeats`` rounds
   (:func:`~cohabit.engine.dbinterference.measure_placement`). Beside them, the placement
   the fair policy would make if it trusted its model as exact (``model-trusted``, the
   policy before evidence was required) is measured too; a placement equal to another one
   is run once.

Results in ``benchmarks/results/db_interference/``; the host's 1-minute load average is
recorded beside every run. ``--plan`` prints the estimated duration of each step first.

    .venv/bin/python benchmarks/db_interference.py --plan     # estimate only (~60 min)
    .venv/bin/python benchmarks/db_interference.py            # all steps
    .venv/bin/python benchmarks/db_interference.py --placement-only   # step 5 from saved CSVs
    .venv/bin/python benchmarks/db_interference.py --reuse DIR   # steps 4-5, profiles from DIR
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
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
    curve_model,
    measure_nodes,
    measure_pairs,
    measure_placement,
    measure_pressures,
    measure_sensitivity,
    pair_model_on_nodes,
    place,
    predict_nodes,
    predict_pairs,
    solo_block,
    solo_cpu_demand,
)
from cohabit.model import InterferenceProfile, Resize, Resources
from cohabit.placement.fairness import (
    place_fair,
    place_fair_nodes,
    predicted_np,
    predicted_np_nodes,
    unfairness,
)
from cohabit.placement.interference import pressure_sensitivity_slowdown
from cohabit.predictors.dbinterference import (
    database_profile,
    dominant_slowdown,
    sensitivity_curves,
    sensitivity_slope,
)
from cohabit.profiling import DatabaseSession, LoadSpec
from db_profile import RESULTS as PROFILE_RESULTS
from db_profile import WORKLOADS

RESULTS = Path(__file__).resolve().parent / "results" / "db_interference"
DOCUMENTED_SPECS = {
    "tpcb-s10": Resources(230, 128), "simple-update-s10": Resources(260, 256),
    "select-only-s30": Resources(380, 256), "account-report-s10": Resources(180, 256),
    "lookup-update-s60": Resources(150, 256), "tpcb-s30": Resources(260, 128),
}
"""cohabit's specs from the profile benchmark's documented run (docs/benchmarks.md, runs of
2026-11-29 13:48-15:55 UTC), used when its result files are not on this machine."""
NODES = {"node-a": "0", "node-b": "1"}
NODE_CAPACITY = Resources(1000, 8192)
RUN_OVERHEAD_S = 0.7
"""Estimated seconds each pgbench run or probe adds to its length (start, connect, parse):
0.3-0.5 s in a smoke run of this benchmark at load average 7, rounded up."""
SETUP_S_PER_SCALE = 1.0
"""Estimated seconds of initdb + ``pgbench -i`` + prewarm per unit of scale."""


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.2f}] {text}", flush=True)


def spec_of(name: str) -> tuple[Resources, str]:
    path = PROFILE_RESULTS / name / "result.json"
    if path.exists():
        co = json.loads(path.read_text()).get("cohabit") or {}
        if co:
            return Resources(co["cpu_milli"], co["memory_mib"]), "cohabit profile"
    return DOCUMENTED_SPECS[name], "documented profile run"


def plan(names: list[str], settings: InterferenceSettings, corun_s: float,
         rounds: int, node_partitions: int = 0, node_repeats: int = 2,
         reuse: bool = False) -> dict[str, float]:
    """Estimated seconds of each step (runs x (length + :data:`RUN_OVERHEAD_S`))."""
    o, r, i = RUN_OVERHEAD_S, len(settings.resources), len(settings.intensities)
    probe = settings.probe_seconds + o
    run = settings.seconds + o
    reps = settings.probe_repeats
    slots = math.ceil(len(names) / len(NODES))
    steps = {
        "setup": SETUP_S_PER_SCALE * sum(WORKLOADS[n]["scale"] for n in names) + 10 * len(names),
        "probes": r * (2 + i) * probe,
        "profiles": len(names) * (r + 2 + r * i) * run
        + r * ((len(names) * reps + 1) * probe + len(names) * reps * (probe + 2)),
        "pairs": math.comb(len(names), 2) * (2 * settings.pair_repeats + 1) * run,
        "nodes": node_partitions * ((node_repeats + 1) * slots + node_repeats) * run,
        "placement": ((rounds + 1) * slots + 3 * rounds) * (corun_s + o),  # <= 3 policies
    }
    if reuse:
        steps.update(probes=0.0, profiles=0.0, pairs=0.0)
    steps["total"] = sum(steps.values())
    return steps


def _profile_dict(p: InterferenceProfile) -> dict:
    return {"pressure": dict(p.pressure), "sensitivity": dict(p.sensitivity)}


def saved_profiles(source: Path = RESULTS) -> tuple[dict[str, float],
                                                   dict[str, InterferenceProfile],
                                                   pd.DataFrame, pd.DataFrame]:
    """Probe sensitivities, profiles, measured pairs and the sensitivity rows rebuilt from
    an earlier run's CSVs in ``source`` (``probes.csv``, ``sensitivity.csv``,
    ``pressure.csv``, ``pairs_runs.csv``)."""
    calib = pd.read_csv(source / "probes.csv")
    probe_k = {r: sensitivity_slope(list(g["intensity"]),
                                    list((1.0 - g["probe_co"] / g["probe_solo"]).clip(0.0)))
               for r, g in calib.groupby("resource")}
    sens = pd.read_csv(source / "sensitivity.csv")
    press = pd.read_csv(source / "pressure.csv")
    profiles = {n: database_profile(sens[sens["workload"] == n], press[press["workload"] == n],
                                    probe_k) for n in sens["workload"].unique()}
    pairs = pd.read_csv(source / "pairs_runs.csv")
    log(f"reused: probes, profiles and {len(pairs)} pair rows from {source}")
    return probe_k, profiles, pairs, sens


def start_sessions(stack: ExitStack, names: list[str], settings: InterferenceSettings
                   ) -> tuple[dict[str, DatabaseSession], LocalCgroupActuator]:
    """Every database loaded, at its spec, started; the actuator that binds them."""
    sessions: dict[str, DatabaseSession] = {}
    for n in names:
        load = LoadSpec.of(**{k: v for k, v in WORKLOADS[n].items() if k != "p99_ms"})
        s = stack.enter_context(DatabaseSession(load, name=f"intf-{n}", cpuset="0-1"))
        s.prepare()
        sessions[n] = s
    actuator = LocalCgroupActuator({n: s.cgroup for n, s in sessions.items()},  # type: ignore
                                   nodes={**NODES, "shared": settings.cpus})
    for n, s in sessions.items():
        spec, source = spec_of(n)
        actuator.apply([Resize(n, "postgres", spec, reason="just-enough spec")])
        s.start(spec.memory_mib)
        log(f"{n}: {spec.cpu_milli}m/{spec.memory_mib}MiB ({source})")
    return sessions, actuator


def measure_profiles(sessions, actuator, tree, probe_k, settings
                     ) -> tuple[dict[str, InterferenceProfile], pd.DataFrame]:
    """Sensitivity of each database in turn, then the pressures of all (on CPU 1)."""
    frames = []
    for n, s in sessions.items():
        bind_all(actuator, {n: "shared"})
        frames.append(measure_sensitivity(s, tree, settings, log=log).assign(workload=n))
        pd.concat(frames).to_csv(RESULTS / "sensitivity.csv", index=False)
    sens = pd.concat(frames)
    press = measure_pressures(sessions, tree, settings, log=log)
    press.to_csv(RESULTS / "pressure.csv", index=False)
    profiles = {n: database_profile(sens[sens["workload"] == n],
                                    press[press["workload"] == n], probe_k) for n in sessions}
    for n, prof in profiles.items():
        log(f"{n}: {_profile_dict(prof)}")
    return profiles, sens


MODELS = {"linear": pressure_sensitivity_slowdown, "dominant": dominant_slowdown}
"""Pair models judged on the measured pairs (both fixed before the measurement); the one
with the higher Spearman rho (ties: the linear default) is the placement's model."""


def judge_pair_models(profiles, pair_runs, report) -> tuple[str, pd.DataFrame]:
    """Every model's predictions beside the measured pairs (``pairs.csv``); the chosen one."""
    judged = {m: predict_pairs(profiles, pair_runs, f) for m, f in MODELS.items()}
    report["pairs"] = {m: err for m, (_, err) in judged.items()}
    for m, (_, err) in judged.items():
        log(f"pair prediction ({m}): {err}")

    def rho(m: str) -> float:
        value = judged[m][1]["spearman"]
        return -math.inf if math.isnan(value) else value

    chosen = max(MODELS, key=lambda m: (rho(m), m == "linear"))
    report["pair_model"] = chosen
    table = judged["linear"][0].rename(columns={"predicted": "predicted_linear",
                                                 "residual": "residual_linear"})
    table["predicted_dominant"] = judged["dominant"][0]["predicted"].to_numpy()
    table["residual_dominant"] = judged["dominant"][0]["residual"].to_numpy()
    table.to_csv(RESULTS / "pairs.csv", index=False)
    log(f"placement's pair model: {chosen}")
    return chosen, judged[chosen][0]


def node_partitions(names: list[str], k: int) -> list[dict[str, str]]:
    """``k`` partitions of the databases into equal groups, one per node, spread over the
    CPU-quota imbalance between the nodes: all partitions (the first database on the first
    node) sorted by ``|quota difference|``, then ``k`` evenly spaced from the most balanced
    to the most imbalanced; LeastRequested's placement is always among them."""
    requests = {n: spec_of(n)[0] for n in names}
    nodes = list(NODES)
    size = len(names) // len(nodes)
    rest = names[1:]
    parts = []
    for group in itertools.combinations(rest, size - 1):
        first = {names[0], *group}
        parts.append({n: nodes[0] if n in first else nodes[1] for n in names})

    def imbalance(a: dict[str, str]) -> tuple[int, list[str]]:
        quota = [sum(requests[n].cpu_milli for n in names if a[n] == node) for node in nodes]
        return abs(quota[0] - quota[1]), sorted(n for n in names if a[n] == nodes[0])

    parts.sort(key=imbalance)
    pick = sorted({round(i * (len(parts) - 1) / max(1, k - 1)) for i in range(k)})
    chosen = [parts[i] for i in pick]
    lr = place(  # LeastRequested's placement, with the node names of NODES
        "least-requested", names, requests, {node: NODE_CAPACITY for node in NODES}, {}
    ).assignment
    same_as_lr = [a for a in parts if {n for n in names if a[n] == nodes[0]}
                  in ({n for n in names if lr[n] == nodes[0]},
                      {n for n in names if lr[n] == nodes[1]})]
    if same_as_lr and same_as_lr[0] not in chosen:
        chosen[-2 if len(chosen) > 1 else 0] = same_as_lr[0]
    return chosen


def node_step(sessions, actuator, names, settings, profiles, sens, args, report):
    """Step 4: node co-runs (``--node-partitions`` partitions, ``--node-repeats`` each);
    the node-level model (fixed before: each database's CPU sensitivity curve at its
    co-runners' summed measured solo CPU usage) judged beside the quota variant and the
    pair models composed per node. Returns ``(node model, its residuals)``."""
    parts = node_partitions(names, args.node_partitions)
    report["node_partitions"] = parts
    solo_block(sessions, actuator, list(NODES), settings.seconds, settings.latency_limit_ms)
    log("warm-up solo block done (not used): freshly started servers serve their first "
        "runs slowly")
    runs = measure_nodes(sessions, actuator, parts, settings, solo_nodes=list(NODES),
                         repeats=args.node_repeats, log=log)
    runs.to_csv(RESULTS / "nodes_runs.csv", index=False)
    curves = sensitivity_curves(sens, "cpu")
    usage = solo_cpu_demand(runs)
    quota = {n: spec_of(n)[0].cpu_milli / 1000 for n in names}
    report["sensitivity_curves"] = {n: [list(p) for p in c] for n, c in curves.items()}
    report["solo_cpu_cores"] = usage
    variants = {"curve-usage": curve_model(curves, usage),
                "curve-quota": curve_model(curves, quota),
                **{f"pair-{m}": pair_model_on_nodes(profiles, f) for m, f in MODELS.items()}}
    judged = {v: predict_nodes(m, runs) for v, m in variants.items()}
    report["nodes"] = {v: err for v, (_, err) in judged.items()}
    table = judged["curve-usage"][0]
    for v, (t, _) in judged.items():
        table[f"predicted_{v}"] = t["predicted"].to_numpy()
    table.to_csv(RESULTS / "nodes.csv", index=False)
    for v, (_, err) in judged.items():
        log(f"node prediction ({v}): {err}")
    return variants["curve-usage"], list(judged["curve-usage"][0]["residual"])


def rounds_that_fit(args, n_names: int, n_policies: int) -> int:
    """``--repeats``, fewer when ``--finish-by`` (UTC HH:MM) would be passed (at least 1)."""
    if not args.finish_by:
        return args.repeats
    hh, mm = (int(v) for v in args.finish_by.split(":"))
    now = time.gmtime()
    left = (hh * 3600 + mm * 60) - (now.tm_hour * 3600 + now.tm_min * 60 + now.tm_sec)
    run = args.corun_seconds + RUN_OVERHEAD_S
    block = math.ceil(n_names / len(NODES)) * run
    fit = int((left - block) // (block + n_policies * run))
    if fit < args.repeats:
        log(f"--finish-by {args.finish_by}: {max(1, fit)} placement round(s) instead of "
            f"{args.repeats}")
    return max(1, min(args.repeats, fit))


def dedupe(placements: dict[str, dict[str, str]]) -> dict[str, str]:
    """Policy -> the first policy (in order) with the same assignment (measured once)."""
    out: dict[str, str] = {}
    for policy, assignment in placements.items():
        out[policy] = next(p for p, a in placements.items() if a == assignment)
    return out


def placement_step(sessions, actuator, names, profiles, model, residuals, args,
                   report, node_model=None) -> None:
    """Step 5: LeastRequested, fair (with ``node_model`` and its node residuals when the
    node step ran, else the pair ``model``) and the model trusted as exact, measured."""
    requests = {n: spec_of(n)[0] for n in names}
    capacity = {node: NODE_CAPACITY for node in NODES}
    decided = {p: place(p, names, requests, capacity, profiles, model, residuals=residuals,
                        node_model=node_model)
               for p in ("least-requested", "fair")}
    if node_model is not None:
        exact = place_fair_nodes(names, requests, capacity, node_model, residuals=[0.0])
    else:
        exact = place_fair(names, requests, capacity, profiles, model, residuals=[0.0])
    placements = {p: d.assignment for p, d in decided.items()}
    report["placements"] = placements
    report["fair_reason"] = {"moves": list(decided["fair"].moves),
                             "reason": decided["fair"].reason}
    report["if_model_trusted_exact"] = {"assignment": exact.assignment,
                                        "moves": list(exact.moves)}
    report["predicted_unfairness"] = {
        p: unfairness(list((predicted_np_nodes(a, node_model) if node_model is not None
                            else predicted_np(a, profiles, model)).values()))
        for p, a in {**placements, "model-trusted": exact.assignment}.items()}
    log(f"placements: {placements}; fair: {decided['fair'].reason} {decided['fair'].moves}; "
        f"if trusted exact: {exact.assignment}")
    measured = dedupe({**placements, "model-trusted": exact.assignment})
    report["measured_as"] = measured
    log(f"measured placements (the same assignment is run once): {measured}")
    placements = {p: a for p, a in {**placements, "model-trusted": exact.assignment}.items()
                  if measured[p] == p}
    rounds = rounds_that_fit(args, len(names), len(placements))
    report["placement_rounds"] = rounds
    runs = measure_placement(sessions, actuator, placements, solo_nodes=list(NODES),
                             seconds=args.corun_seconds, rounds=rounds,
                             latency_limit_ms=5000.0, log=log)
    runs.to_csv(RESULTS / "placement.csv", index=False)
    per = runs.groupby(["policy", "round"])["unfairness"].first().groupby("policy")
    report["unfairness"] = {p: {"median": float(g.median()), "rounds": list(g)}
                            for p, g in per}
    lr = report["unfairness"]["least-requested"]["median"]
    for policy in ("fair", "model-trusted"):
        value = report["unfairness"][measured[policy]]["median"]
        ratio = value / lr if lr > 0 else float("nan")
        report[f"{policy}_over_least_requested"] = ratio
        log(f"unfairness median: {policy} {value:.3f} (as {measured[policy]}), "
            f"least-requested {lr:.3f}, ratio {ratio:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="pgbench run length")
    parser.add_argument("--corun-seconds", type=float, default=20.0,
                        help="placement step: length of every solo and co-run")
    parser.add_argument("--repeats", type=int, default=3, help="placement rounds")
    parser.add_argument("--intensities", type=float, nargs="+", default=[0.3, 0.8],
                        help="stressor intensities (cores)")
    parser.add_argument("--probe-seconds", type=float, default=8.0)
    parser.add_argument("--probe-repeats", type=int, default=1,
                        help="probe runs beside each database per resource (bracketed)")
    parser.add_argument("--pair-repeats", type=int, default=1,
                        help="co-runs per pair (bracketed by solo runs)")
    parser.add_argument("--only", nargs="+", choices=sorted(WORKLOADS))
    parser.add_argument("--plan", action="store_true", help="print the estimate and stop")
    parser.add_argument("--finish-by", metavar="HH:MM",
                        help="UTC time by which the placement step must end: fewer rounds")
    parser.add_argument("--no-placement", action="store_true", help="stop after the pairs")
    parser.add_argument("--reuse", type=Path, metavar="DIR",
                        help="rebuild probes, profiles and pairs from an earlier run's CSVs "
                        "in DIR (probes/sensitivity/pressure/pairs_runs.csv); measure the "
                        "node co-runs and the placement only")
    parser.add_argument("--node-partitions", type=int, default=6,
                        help="node co-run step: partitions of the databases over the nodes "
                        "(0: skip the step; the placement then uses the pair model)")
    parser.add_argument("--node-repeats", type=int, default=3,
                        help="co-runs per partition (bracketed by solo blocks)")
    parser.add_argument("--placement-only", action="store_true",
                        help="rebuild probes, profiles and pairs from the CSVs of an earlier "
                        "run; measure only the fair-placement step")
    args = parser.parse_args()
    names = args.only or list(WORKLOADS)
    settings = InterferenceSettings(cpus="1", intensities=tuple(args.intensities),
                                    seconds=args.seconds, probe_seconds=args.probe_seconds,
                                    probe_repeats=args.probe_repeats,
                                    pair_repeats=args.pair_repeats)
    reuse = args.reuse or (RESULTS if args.placement_only else None)
    if args.placement_only:
        args.node_partitions = 0
    estimate = plan(names, settings, args.corun_seconds, args.repeats, args.node_partitions,
                    args.node_repeats, reuse=reuse is not None)
    print("estimate (min): " + ", ".join(f"{k} {v / 60:.1f}" for k, v in estimate.items()))
    if args.plan:
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    tree = detect()
    report: dict = {"load_before": os.getloadavg(), "settings": settings.__dict__,
                    "estimate_s": estimate, "started": time.strftime("%H:%M:%S")}
    with ExitStack() as stack:
        if reuse is not None:
            probe_k, profiles, pair_runs, sens = saved_profiles(reuse)
            profiles = {n: profiles[n] for n in names}
            pair_runs = pair_runs[pair_runs["victim"].isin(names)
                                  & pair_runs["aggressor"].isin(names)]
            sens = sens[sens["workload"].isin(names)]
            report["reused"] = str(reuse)
        else:
            log("calibrating probes")
            probe_k, calib = calibrate_probes(tree, settings, log=log)
            calib.to_csv(RESULTS / "probes.csv", index=False)
        report["probe_sensitivity"] = probe_k
        sessions, actuator = start_sessions(stack, names, settings)
        report["setup_done"] = time.strftime("%H:%M:%S")
        if reuse is None:
            profiles, sens = measure_profiles(sessions, actuator, tree, probe_k, settings)
            report["profiles_done"] = time.strftime("%H:%M:%S")
            pair_runs = measure_pairs(sessions, actuator, list(itertools.combinations(names, 2)),
                                      settings, solo_nodes=list(NODES), shared="shared",
                                      log=log)
            pair_runs.to_csv(RESULTS / "pairs_runs.csv", index=False)
            report["pairs_done"] = time.strftime("%H:%M:%S")
        report["profiles"] = {n: _profile_dict(p) for n, p in profiles.items()}
        model, pairs = judge_pair_models(profiles, pair_runs, report)
        residuals, node_model = list(pairs["residual"]), None
        if args.node_partitions > 0:
            node_model, residuals = node_step(sessions, actuator, names, settings, profiles,
                                              sens, args, report)
            report["nodes_done"] = time.strftime("%H:%M:%S")
        if not args.no_placement:
            placement_step(sessions, actuator, names, profiles, MODELS[model], residuals,
                           args, report, node_model=node_model)
            report["placement_done"] = time.strftime("%H:%M:%S")
    report["load_after"] = os.getloadavg()
    (RESULTS / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt  # unwinds through every session's cleanup


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(main())
