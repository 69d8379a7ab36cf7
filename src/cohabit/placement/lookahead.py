"""Look-ahead fragmentation: how much of a node's idle GPU the typical pods could still use.

FGD (Weng et al., USENIX ATC 2023; :mod:`cohabit.placement.frag`) asks, per typical pod,
whether *one* more such pod fits on the node: if it does, only the GPUs too small for it
count as fragment; if not (too few GPUs, or too little CPU left) all idle GPU does. That is
a one-pod look-ahead. On the openb trace it misses two things the end states of FGD runs
show (``docs/benchmarks.md``, "cohabit placement"):

* **CPU that runs out before the GPUs do.** A G2 node has 96 cores for 8 GPUs; pods asking
  for 11-19 cores per whole GPU use the CPU up with GPUs still idle. FGD notices only when
  the free CPU falls below a typical pod's request, by then the GPUs are stranded (1.5 % of
  the cluster's GPU milli at the end of an FGD run on the default list).
* **Remainders inside a GPU.** Two 470-milli pods fit in one GPU, a third does not: a GPU
  with 1000 free milli holds ``floor(1000 / 470) = 2`` of them and 60 milli are lost.

The look-ahead fragment of a node for typical pod ``t`` counts the idle GPU milli that
``t``-pods could not use *even if only t-pods kept arriving*:

``n_t = min(GPU slots, CPU slots)``, GPU slots ``sum_g floor(free_g / milli_t)`` for a
sharing pod and ``floor(whole free GPUs / num_t)`` for a whole/multi-GPU pod, CPU slots
``floor(cpu_free / cpu_t)``; fragment ``idle - n_t * milli_t * num_t``; for a CPU-only
typical pod or a GPU model the pod does not accept, all idle milli (as FGD). The node's
look-ahead fragment is the weighted sum over typical pods, with FGD's frequencies
(``weighting="count"``) or by each shape's share of GPU demand (``weighting="demand"``:
a node's idle GPU is consumed by GPU milli, so an 8-GPU pod weighs as much as eight
one-GPU pods; CPU-only pods keep their count share). Memory is not looked at, as in FGD.

Everything is vectorised with numpy over node states x GPUs x typical pods, so the
fragment of hundreds of states (and of every GPU a sharing pod could take) costs one call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cohabit.model import MILLI_PER_GPU
from cohabit.placement.frag import TypicalPods

__all__ = ["LOOKAHEAD_WEIGHTINGS", "LookAheadFrag"]

LOOKAHEAD_WEIGHTINGS = ("count", "demand")
"""How typical pods are weighted in the look-ahead fragment (see the module docstring)."""

StateKey = tuple[int, int, tuple[int, ...]]


class LookAheadFrag:
    """Look-ahead fragment of node states under one typical-pod distribution.

    Args:
        typical: the typical pods (FGD's distribution, from the workload's history).
        model_names: GPU model of each model id (``''`` = CPU-only node).
        weighting: ``"count"`` (FGD's frequencies) or ``"demand"`` (share of GPU milli).

    Raises:
        ValueError: an unknown ``weighting``.
    """

    def __init__(self, typical: TypicalPods, model_names: Sequence[str],
                 weighting: str = "demand") -> None:
        if weighting not in LOOKAHEAD_WEIGHTINGS:
            raise ValueError(f"look-ahead weighting must be one of {LOOKAHEAD_WEIGHTINGS}, "
                             f"not {weighting!r}")
        pods = typical.pods
        self.cpu = np.array([max(t.cpu, 1) for t in pods], np.int64)
        self.milli = np.array([t.milli for t in pods], np.int64)
        self.num = np.array([t.num for t in pods], np.int64)
        freq = np.array([t.freq for t in pods], np.float64)
        gpu = self.milli > 0
        if weighting == "demand" and gpu.any():
            demand = freq * self.milli * self.num
            w = np.where(gpu, demand / demand[gpu].sum() * freq[gpu].sum(), freq)
        else:
            w = freq
        self.weight = w
        self.share = gpu & (self.milli < MILLI_PER_GPU)
        self.whole = self.milli >= MILLI_PER_GPU
        # access[m, t]: typical pod t accepts GPU model m (CPU-only pods: irrelevant)
        self.access = np.array(
            [[gpu[i] and ((not t.spec) or (name != "" and name in t.spec))
              for i, t in enumerate(pods)] for name in model_names], bool
        ).reshape(len(model_names), len(pods))
        share_milli = np.where(self.share, self.milli, MILLI_PER_GPU * 2)
        # slots[g, t]: sharing pods of type t a GPU with g milli free holds (0 for others)
        self._slots = (np.arange(MILLI_PER_GPU + 1)[:, None] // share_milli).astype(np.int64)
        self._wsum = float(self.weight.sum())
        self._mt = self.milli * self.num
        self._memo: dict[StateKey, float] = {}

    # ------------------------------------------------------------------ core

    def _frag(self, model: np.ndarray, cpu: np.ndarray, total: np.ndarray,
              slots_share: np.ndarray, full: np.ndarray) -> np.ndarray:
        """Fragment of ``K`` states from their parts: ``model[K]``, ``cpu[K]``, ``total[K]``
        idle milli, ``slots_share[K, T]`` (sum_g floor(free_g / milli_t)), ``full[K]``."""
        gpu_slots = np.where(self.share, slots_share,
                             full[:, None] // np.maximum(self.num, 1))
        n = np.minimum(gpu_slots, np.maximum(cpu, 0)[:, None] // self.cpu)
        usable = np.where(self.access[model], n * self._mt, 0)
        # usable never exceeds the idle milli: slots come from the idle GPUs themselves
        return total * self._wsum - usable @ self.weight

    def _parts(self, gpus: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``total[K]``, ``slots_share[K, T]``, ``full[K]`` of per-GPU free milli ``[K, G]``."""
        total = gpus.sum(axis=1)
        full = (gpus >= MILLI_PER_GPU).sum(axis=1)
        slots = self._slots[gpus].sum(axis=1)
        return total, slots, full

    # ------------------------------------------------------------------ API

    def frag(self, model: np.ndarray, cpu: np.ndarray, gpus: np.ndarray) -> np.ndarray:
        """Look-ahead fragment (milli, weighted) of ``K`` node states.

        Args:
            model: ``int[K]`` model ids; cpu: ``int[K]`` free CPU milli;
            gpus: ``int[K, G]`` free milli per GPU (0-padded).
        """
        total, slots, full = self._parts(gpus)
        return self._frag(model, cpu, total, slots, full)

    def frag_keys(self, keys: Sequence[StateKey]) -> np.ndarray:
        """:meth:`frag` of state keys ``(model, cpu_free, sorted GPU free)``, memoised per
        key (the states not seen before are computed in one vectorised batch)."""
        memo = self._memo
        out = np.empty(len(keys))
        miss_at: list[int] = []
        miss: list[StateKey] = []
        for i, k in enumerate(keys):
            v = memo.get(k)
            if v is None:
                miss_at.append(i)
                miss.append(k)
            else:
                out[i] = v
        if miss:
            vals = self.frag(*_arrays(miss))
            out[miss_at] = vals
            memo.update(zip(miss, vals.tolist(), strict=True))
        return out

    def gain_exclusive(self, keys: Sequence[StateKey], cpu_req: int, num: int) -> np.ndarray:
        """``frag(before) - frag(after)`` for a CPU-only (``num == 0``) or whole/multi-GPU
        pod taking ``cpu_req`` CPU and ``num`` whole free GPUs, per state (``float[K]``).
        A state the pod does not fit gives 0."""
        after = []
        for key in keys:
            model, cpu, gpus = key
            if num:
                full = [i for i, g in enumerate(gpus) if g >= MILLI_PER_GPU]
                if len(full) < num:
                    after.append(key)
                    continue
                row = list(gpus)
                for i in full[:num]:
                    row[i] = 0
                after.append((model, cpu - cpu_req, tuple(sorted(row))))
            else:
                after.append((model, cpu - cpu_req, gpus))
        both = self.frag_keys(list(keys) + after)
        return both[: len(keys)] - both[len(keys):]

    def gain_share(self, keys: Sequence[StateKey], cpu_req: int,
                   milli: int) -> list[dict[int, float]]:
        """``frag(before) - frag(after)`` for a sharing pod of ``milli`` on each GPU of each
        state, keyed by the GPU's free milli (only GPUs that fit; equal free milli, equal
        gain)."""
        after: list[StateKey] = []
        owner: list[tuple[int, int]] = []
        for i, (model, cpu, gpus) in enumerate(keys):
            seen: set[int] = set()
            for j, g in enumerate(gpus):
                if g < milli or g in seen:
                    continue
                seen.add(g)
                row = list(gpus)
                row[j] = g - milli
                after.append((model, cpu - cpu_req, tuple(sorted(row))))
                owner.append((i, g))
        vals = self.frag_keys(list(keys) + after)
        before = vals[: len(keys)]
        out: list[dict[int, float]] = [{} for _ in keys]
        for (i, g), v in zip(owner, vals[len(keys):].tolist(), strict=True):
            out[i][g] = float(before[i]) - v
        return out


def _arrays(keys: Sequence[StateKey]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    width = max((len(k[2]) for k in keys), default=0)
    width = max(width, 1)
    gpus = np.zeros((len(keys), width), np.int64)
    for i, (_, _, row) in enumerate(keys):
        gpus[i, : len(row)] = row
    model = np.fromiter((k[0] for k in keys), np.int64, len(keys))
    cpu = np.fromiter((k[1] for k in keys), np.int64, len(keys))
    return model, cpu, gpus
