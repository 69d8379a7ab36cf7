"""Simulate-then-rebind variants on one seed of ``--mode fgd`` (default list, tune 1.3).

Runs :func:`cohabit.simulator.fgd.run_fgd` with ``rebind=True`` and keyword overrides of
:func:`cohabit.engine.rebind.make_room` (e.g. the chain ``depth``) and of the
defragmentation pass (``defrag_every_pct``; ``null`` turns it off; ``--defrag`` overrides
:func:`cohabit.engine.rebind.defragment`'s keywords), and prints the GPU
allocation at 90..130 % arrived, the moves and migrations, failed pods and wall time. The
CLI (``cohabit simulate --rebind``) runs the defaults; this is how the variants in
docs/benchmarks.md ("Simulate-then-rebind") were compared.

Usage::

    .venv/bin/python benchmarks/rebind_variants.py --seed 42 --make-room '{"depth": 1}' \\
        --defrag-every-pct null
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time


def run(seed: int, policy: str, make_room_kw: dict, defrag_every_pct: float | None,
        defrag_kw: dict | None = None) -> dict:
    """One run; a dict of what :func:`main` prints."""
    import cohabit.simulator.fgd as fgd
    from cohabit.engine import rebind
    from cohabit.placement import typical_pods
    from cohabit.simulator import loaders

    trace = loaders.load_trace(None, None)
    typical = typical_pods(trace.pods, spec_text=list(trace.gpu_spec_text))
    original, original_defrag = fgd.make_room, fgd.defragment
    fgd.make_room = functools.partial(rebind.make_room, **make_room_kw)
    fgd.defragment = functools.partial(rebind.defragment, **(defrag_kw or {}))
    try:
        t0 = time.perf_counter()
        res = fgd.run_fgd(trace.nodes, trace.pods, policy=policy, seed=seed, typical=typical,
                          rebind=True, defrag_every_pct=defrag_every_pct)
        wall = time.perf_counter() - t0
    finally:
        fgd.make_room, fgd.defragment = original, original_defrag
    curve = res.curve.set_index("arrived_gpu_demand_pct")["gpu_alloc_ratio_pct"]
    return {"alloc": {int(k): round(float(curve[k]), 2) for k in (90, 95, 96, 100, 110, 130)
                      if k in curve.index},
            "moves": res.extra["moves"], "migrations": res.extra["migrations"],
            "placed": res.arrivals - res.failed_pods, "failed": res.failed_pods,
            "wall_s": round(wall, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--policy", default="cohabit")
    ap.add_argument("--make-room", default="{}", help="JSON keyword overrides of make_room")
    ap.add_argument("--defrag-every-pct", default="1.0", help="a number or null")
    ap.add_argument("--defrag", default="{}", help="JSON keyword overrides of defragment")
    a = ap.parse_args()
    every = json.loads(a.defrag_every_pct)
    out = run(a.seed, a.policy, json.loads(a.make_room), every, json.loads(a.defrag))
    print(json.dumps({"seed": a.seed, "make_room": json.loads(a.make_room),
                      "defrag_every_pct": every, "defrag": json.loads(a.defrag), **out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
