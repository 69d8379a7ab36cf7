"""Where the idle GPU milli is at the end of a ``--mode fgd`` run (130 % arrived).

Runs one policy on one pod list and seed (optionally with simulate-then-rebind) and sorts
every idle milli of the end state into one category, first match wins:

1. ``CPU used up``: idle GPU milli on a node whose free CPU is below every typical GPU pod's
   CPU request (no typical GPU pod can land there whatever the GPUs);
2. ``sliver``: a GPU whose free milli is below every typical pod's share (no typical pod
   could ever use it);
3. ``fits only rare typical pods``: the typical pods that fit the GPU's free milli are less
   than :data:`RARE` of the typical GPU pods by frequency (e.g. 190 milli beside an
   810-milli pod: only the 110- and 160-milli shapes fit), split by the largest pod on it;
4. ``a common typical pod still fits``: the rest (arrivals stopped at 130 % first).

It also sorts the idle milli by the size of the free hole it sits in (per GPU, 100-milli
bins) and names the first arrival that fit nowhere.

Usage::

    .venv/bin/python benchmarks/idle_analysis.py --policy cohabit --seed 42 [--rebind]
"""

from __future__ import annotations

import argparse
import collections
import sys

import numpy as np

RARE = 0.05
"""Frequency share below which the typical pods that fit a GPU are "rare"."""


def analyse(policy: str, pods_spec: str | None, seed: int, rebind: bool) -> dict[str, float]:
    """Idle milli per category (and totals) at the end of one run."""
    from cohabit.engine.rebind import make_room
    from cohabit.engine.scheduling import schedule_pod
    from cohabit.placement import typical_pods
    from cohabit.simulator import loaders
    from cohabit.simulator.cluster import scoring_cluster, seed_tiebreak
    from cohabit.simulator.fgd import inflate_workload

    trace = loaders.load_trace(pods_spec, None)
    typical = typical_pods(trace.pods, spec_text=list(trace.gpu_spec_text))
    cluster = scoring_cluster(trace.nodes, trace.pods, typical)  # as run_fgd sets it up
    state = cluster.state
    rng = np.random.default_rng(seed)
    arrivals = inflate_workload(trace.pods, int(state.gpu_cnt.sum()) * 1000, 1.3, rng)
    seed_tiebreak(state, rng)
    policy_rng = np.random.default_rng([seed, 1])
    migrations = 0
    arrived = 0
    first_fail = None
    for k, pod in enumerate(arrivals):
        arrived += pod.gpu_request_milli
        res = schedule_pod(state, pod, policy=policy, rng=policy_rng, actuator=cluster)
        if res.bind is None and first_fail is None:
            first_fail = (k, 100.0 * arrived / (int(state.gpu_cnt.sum()) * 1000))
        if res.bind is None and rebind:
            move = make_room(state, pod, policy, rng=policy_rng)
            if move is not None:
                cluster.apply_move(move, pod)
                migrations += len(move.victims)
    gpu_typ = [t for t in typical.pods if t.milli > 0]
    total_freq = sum(t.freq for t in gpu_typ)
    min_cpu = min(t.cpu for t in gpu_typ)
    on_gpu: dict[tuple[int, int], list[int]] = collections.defaultdict(list)
    for b in state.bound.values():
        for g in b.gpus:
            on_gpu[(b.node, g)].append(b.req.milli)
    cats: collections.Counter[str] = collections.Counter()
    holes: collections.Counter[str] = collections.Counter()
    for i in range(state.n_nodes):
        model = state.model_names[int(state.model_id[i])]
        for g in range(int(state.gpu_cnt[i])):
            free = int(state.gpu_free[i, g])
            if not free:
                continue
            if state.cpu_free[i] < min_cpu:
                cats["CPU used up"] += free
                continue
            # share of the typical GPU pods (by frequency) that fit this GPU's free milli
            fit = sum(t.freq for t in gpu_typ if t.num == 1 and t.milli <= free
                      and (not t.spec or model in t.spec)) / total_freq
            held = on_gpu.get((i, g), [])
            beside = f" (beside a {max(held)}-milli pod)" if held else " (empty GPU)"
            if fit == 0:
                cats["sliver: no typical pod fits"] += free
            elif fit < RARE:
                cats[f"fits only rare typical pods (< {RARE:.0%}){beside}"] += free
            else:
                cats["a common typical pod still fits"] += free
    cap = float(state.gpu_cnt.sum() * 1000)
    for i in range(state.n_nodes):  # idle milli by the size of the hole it is in
        for g in range(int(state.gpu_cnt[i])):
            free = int(state.gpu_free[i, g])
            if free:
                low = min(free // 100 * 100, 1000)
                holes[f"hole {low}-{low + 99 if low < 1000 else 1000} milli"] += free
    out = {k: 100.0 * v / cap for k, v in cats.items()}
    out.update({k: 100.0 * v / cap for k, v in holes.items()})
    if first_fail is not None:
        out["first failure: arrival"], out["first failure: % arrived"] = first_fail
    out["idle total"] = 100.0 * float(state.total_free.sum()) / cap
    out["allocation"] = 100.0 - out["idle total"]
    out["migrations"] = float(migrations)
    out["pods placed"] = float(len(state.bound))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default="cohabit")
    ap.add_argument("--pods", default=None)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--rebind", action="store_true")
    a = ap.parse_args()
    res = analyse(a.policy, a.pods, a.seed, a.rebind)
    print(f"| category ({a.policy}, seed {a.seed}{', rebind' if a.rebind else ''}) "
          f"| % of cluster GPU milli |")
    print("|---|---:|")
    for k, v in sorted(res.items(), key=lambda kv: -kv[1]):
        if k in ("migrations", "pods placed") or k.startswith(("first", "hole")):
            continue
        print(f"| {k} | {v:.2f} |")
    for k in sorted(k for k in res if k.startswith("hole")):
        print(f"| idle in a {k} | {res[k]:.2f} |")
    if "first failure: arrival" in res:
        print(f"| first pod that fits nowhere: arrival {res['first failure: arrival']:.0f} "
              f"at {res['first failure: % arrived']:.2f} % arrived | |")
    share = 100 * res["migrations"] / res["pods placed"]
    print(f"| migrations | {res['migrations']:.0f} ({share:.2f} % of "
          f"{res['pods placed']:.0f} pods placed) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
