"""The contention model a contended replay asks: what fraction of solo speed does each pod
get now?

:class:`GavelContention` answers from measured co-location throughputs (Gavel, Narayanan et
al., OSDI 2020, ``physical_cluster_throughputs.json``, V100, single-GPU jobs):

* **GPU sharing.** Pod ``i`` sharing a GPU with pods ``j`` runs at
  ``prod_j (1 - a_j * (1 - F[i, j]))``, where ``F[i, j]`` is the measured throughput
  fraction of ``i``'s job type next to ``j``'s (the interference model's prediction where the
  pair was not measured) and ``a_j`` the co-runner's current activity (1 for a batch job, its
  duty cycle for a serving pod, less when throttled). Gavel measured pairs at full load; the
  product assumes independent slowdowns for more than two co-runners. A pair Gavel could not
  run together (fraction 0, out of GPU memory) is replayed as an even time split
  (:data:`ZERO_PAIR_FRACTION`): on openb's shared GPUs each pod's memory is its own share.
* **Oversubscription.** When the activity-weighted requests of a GPU's pods exceed the GPU
  (possible only when a policy resizes pods below their requests, as Kube-Knots does),
  every pod on it is scaled by ``1000 / demand``.
* **Host.** Pods on the same node slow each other through CPU and memory bandwidth:
  ``1 - NODE_BETA * min(1, sum_j a_j * cpu_j / node CPU)`` over the node's other pods. The
  factor is an assumption of this model (a fully busy host costs 10 %), not a measurement.

The same model object hands placement its view (:meth:`GavelContention.slowdown`, ``1 - F``
by job type), so placement scores, replay accounting and rebinding's check use one model;
what the schedulers are *given*, though, is the prediction from probe profiles
(:func:`cohabit.engine.contention.gavel_profiles`), never the measured table the replay
judges with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cohabit.model import MILLI_PER_GPU

__all__ = ["CONTENTION_MODELS", "NODE_BETA", "ZERO_PAIR_FRACTION", "GavelContention"]

CONTENTION_MODELS = ("gavel",)
"""Names ``--contention`` accepts."""

NODE_BETA = 0.1
"""Slowdown of a pod whose node's other pods keep all its CPU busy (host contention)."""

ZERO_PAIR_FRACTION = 0.5
"""Fraction replayed for a pair Gavel measured as unable to co-run (an even time split)."""


@dataclass(frozen=True)
class GavelContention:
    """Pairwise GPU contention from Gavel, plus host contention (module docstring).

    Attributes:
        types: job type names (index order of :attr:`fraction`).
        fraction: ``float[T, T]``, ``fraction[a, b]`` = throughput of ``a`` next to ``b``
            over ``a`` alone.
        measured: ``bool[T, T]``: the pair was measured (else predicted).
        node_beta: host contention factor.
    """

    types: tuple[str, ...]
    fraction: np.ndarray
    measured: np.ndarray
    node_beta: float = NODE_BETA

    @classmethod
    def from_pairs(cls, pairs: pd.DataFrame, types: Sequence[str],
                   predicted: np.ndarray | None = None,
                   node_beta: float = NODE_BETA) -> GavelContention:
        """The model of ``types`` from Gavel ``pairs`` (:func:`cohabit.predictors.interference.
        load_gavel` rows of one GPU type, scale 1); ``predicted[a, b]`` fills the pairs
        not measured (1.0, no interference, when not given).

        Raises:
            ValueError: ``predicted`` of the wrong shape.
        """
        t = len(types)
        index = {name: i for i, name in enumerate(types)}
        frac = np.full((t, t), np.nan)
        one = pairs[pairs["scale"] == 1]
        for a, b, f in zip(one["a"], one["b"], one["fraction"], strict=True):
            if a in index and b in index:
                frac[index[a], index[b]] = float(f)
        measured = ~np.isnan(frac)
        if predicted is not None:
            if predicted.shape != (t, t):
                raise ValueError(f"predicted fractions must be {t}x{t}")
            frac = np.where(measured, frac, predicted)
        frac = np.where(np.isnan(frac), 1.0, frac)
        frac = np.where(frac <= 0.0, ZERO_PAIR_FRACTION, np.clip(frac, 0.0, 1.0))
        return cls(tuple(types), frac, measured, node_beta)

    @classmethod
    def from_file(cls, path: str | Path, types: Sequence[str] | None = None,
                  gpu: str = "v100", node_beta: float = NODE_BETA) -> GavelContention:
        """:meth:`from_pairs` on a Gavel ``physical_cluster_throughputs.json`` (all
        single-GPU job types of ``gpu`` when ``types`` is None)."""
        from cohabit.predictors.interference import load_gavel

        pairs = load_gavel(path, [gpu])
        if types is None:
            types = sorted(set(pairs.loc[pairs["scale"] == 1, "a"]))
        return cls.from_pairs(pairs, types, node_beta=node_beta)

    def slowdown(self, victim: int, aggressor: int) -> float:
        """``1 - fraction[victim, aggressor]`` (job type indices)."""
        return float(1.0 - self.fraction[victim, aggressor])

    def fractions(
        self,
        job: np.ndarray,
        activity: np.ndarray,
        group: np.ndarray,
        node: np.ndarray,
        cpu_share: np.ndarray,
        request: np.ndarray,
        pair_i: np.ndarray,
        pair_j: np.ndarray,
    ) -> np.ndarray:
        """Fraction of solo speed of ``R`` running pods now.

        Args:
            job: ``int[R]`` job type (-1: none, a CPU-only pod).
            activity: ``float[R]`` current activity (after throttling).
            group: ``int[R]`` id of the shared GPU a sharing pod is on (-1: not sharing).
            node: ``int[R]`` node index.
            cpu_share: ``float[R]`` CPU request / node CPU.
            request: ``float[R]`` GPU milli the pod asked for (per GPU).
            pair_i, pair_j: ordered pairs of pods on the same shared GPU (``i != j``).

        Returns:
            ``float[R]`` in (0, 1].
        """
        r = job.size
        log_f = np.zeros(r)
        if pair_i.size:
            s = 1.0 - self.fraction[job[pair_i], job[pair_j]]
            log_f += np.bincount(pair_i, np.log1p(-activity[pair_j] * s), minlength=r)
        if r:
            load = activity * cpu_share
            per_node = np.bincount(node, load, minlength=int(node.max()) + 1)
            host = np.minimum(1.0, per_node[node] - load)
            log_f += np.log1p(-self.node_beta * host)
            shared = group >= 0
            if shared.any():
                g = group[shared]
                demand = np.bincount(g, activity[shared] * request[shared])
                over = np.maximum(demand / MILLI_PER_GPU, 1.0)
                log_f[shared] -= np.log(over[g])
        return np.exp(log_f)
