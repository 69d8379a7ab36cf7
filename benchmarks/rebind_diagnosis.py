"""Why simulate-then-rebind finds few moves at 130 % arrived (``--mode fgd``, one seed).

Replays the ``--rebind`` loop of :func:`cohabit.simulator.fgd.run_fgd` and counts, for the
pods that fit nowhere: candidate nodes examined, victim sets the planner proposes, moves
replayed and kept; and, for the failures among every ``--sample``-th arrival, why the best
candidate node refuses (GPU or CPU deficit) and how many of the pods bound there could be
placed anywhere else at that moment.

Usage::

    .venv/bin/python benchmarks/rebind_diagnosis.py --policy cohabit --seed 42
"""

from __future__ import annotations

import argparse
import collections
import sys

import numpy as np


def diagnose(policy: str, seed: int, sample: int) -> collections.Counter:
    """Counters of one run (see the module docstring)."""
    import cohabit.engine.rebind as rebind
    from cohabit.engine.scheduling import schedule_pod
    from cohabit.placement import typical_pods
    from cohabit.placement.state import pod_request
    from cohabit.simulator import loaders
    from cohabit.simulator.cluster import scoring_cluster, seed_tiebreak
    from cohabit.simulator.fgd import inflate_workload

    c: collections.Counter = collections.Counter()
    room_victims, attempt = rebind.room_victims, rebind._Search._attempt

    def counted_victims(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        out = room_victims(*args, **kwargs)
        c["nodes examined"] += 1
        c["victim sets"] += len(out)
        return out

    def counted_attempt(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        ok = attempt(*args, **kwargs)
        c["moves replayed"] += 1
        c["moves kept"] += ok
        return ok

    rebind.room_victims, rebind._Search._attempt = counted_victims, counted_attempt
    try:
        trace = loaders.load_trace(None, None)
        typical = typical_pods(trace.pods, spec_text=list(trace.gpu_spec_text))
        cluster = scoring_cluster(trace.nodes, trace.pods, typical)  # as run_fgd sets it up
        state = cluster.state
        rng = np.random.default_rng(seed)
        arrivals = inflate_workload(trace.pods, int(state.gpu_cnt.sum()) * 1000, 1.3, rng)
        seed_tiebreak(state, rng)
        policy_rng = np.random.default_rng([seed, 1])
        for n, pod in enumerate(arrivals):
            if schedule_pod(state, pod, policy=policy, rng=policy_rng,
                            actuator=cluster).bind is not None:
                continue
            c["failed arrivals"] += 1
            if n % sample == 0:
                _why(state, pod_request(pod), c)
            move = rebind.make_room(state, pod, policy, rng=policy_rng)
            if move is not None:
                cluster.apply_move(move, pod)
    finally:
        rebind.room_victims, rebind._Search._attempt = room_victims, attempt
    return c


def _why(state, req, c: collections.Counter) -> None:  # noqa: ANN001
    """Classify the best candidate node of a sampled failure."""
    from cohabit.engine.rebind import candidate_nodes

    nodes = candidate_nodes(state, req, 1)
    if not nodes.size:
        c["sampled: no candidate node"] += 1
        return
    i = int(nodes[0])
    kind = "cpu-only" if not req.num else ("sharing" if req.is_share else "whole-GPU")
    gpu_short = bool(req.num) and (req.milli > state.max_free[i] if req.is_share
                                   else req.num > state.full_free[i])
    cpu_short = req.cpu > state.cpu_free[i]
    why = "GPU short" if gpu_short else "CPU short" if cpu_short else "GPU and CPU room"
    c[f"sampled {kind}: {why}"] += 1
    here = [b for b in state.bound.values() if b.node == i]
    c["sampled: pods on those nodes"] += len(here)
    c["sampled: of them CPU-only"] += sum(1 for b in here if not b.req.num)
    c["sampled: of them placeable elsewhere now"] += sum(
        1 for b in here if state.feasible(b.req).size)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default="cohabit")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--sample", type=int, default=10)
    a = ap.parse_args()
    for k, v in diagnose(a.policy, a.seed, a.sample).items():
        print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
