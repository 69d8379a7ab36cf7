"""What the openb pods *are* in a contended replay: a seeded, documented mapping.

The openb trace gives each pod its requests, QoS class and lifetime, not what runs inside.
A contended replay needs to know how co-located pods slow each other, so every pod gets:

* **a class**: ``LS`` and ``Guaranteed`` pods are latency-sensitive services (QoS judged per
  interval, fixed lifetime); ``BE`` and ``Burstable`` pods are batch jobs (their lifetime is
  their work at solo speed; slowed, they run longer);
* **a Gavel job type** (GPU pods; Narayanan et al., OSDI 2020,
  ``physical_cluster_throughputs.json``, V100, single-GPU jobs): the job types are ranked by
  how much they slow their co-runners on average (``1 - mean_b f(b | type)``, measured); a
  pod asking for ``q`` GPUs (``num * milli / 1000``, at most 1) draws uniformly among the
  types whose rank quantile lies within ``q +- MAPPING_WINDOW`` -- small GPU shares get
  lighter jobs, whole GPUs heavier ones. **This is a mapping, not a measurement**: results
  are reported over several mapping seeds;
* **an activity series** (LS pods): the GPU duty cycle of a GenAI serving pod
  (alibaba/clusterdata GenTD26, 57 s samples, 22.8 h), drawn uniformly among the series with
  at least :data:`MIN_SERIES` samples; the replay plays the *second half* of it from a
  uniformly drawn phase, tiled cyclically over the pod's life. Activity = duty cycle / 100,
  a fraction of the pod's own GPU request. Batch pods are busy all the time (activity 1);
* **a history** the schedulers may use (LS pods): the *first half* of its series, i.e. what
  the serving workload looked like before; Kube-Knots' correlation and peak forecast and
  cohabit's usage parts read only this, never the half that is replayed.

Every draw comes from ``numpy.random.default_rng(seed)`` (three uniform draws per pod, in
pod-list order): one seed, one mapping, independent of the placement policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cohabit.model import Pod, QosClass

__all__ = [
    "LATENCY_SENSITIVE",
    "MAPPING_WINDOW",
    "MIN_SERIES",
    "WorkloadMap",
    "gavel_type_order",
    "genai_duty_series",
    "map_workloads",
]

LATENCY_SENSITIVE = frozenset({QosClass.LS, QosClass.GUARANTEED})
"""QoS classes replayed as latency-sensitive services; the others are batch jobs."""

MAPPING_WINDOW = 0.25
"""Half-width of the rank-quantile window a pod's Gavel type is drawn from."""

MIN_SERIES = 1000
"""Shortest GenAI duty-cycle series (samples) an LS pod may be given."""

GENAI_STEP_S = 57.0
"""Sampling step of the GenAI series, seconds."""


@dataclass(frozen=True)
class WorkloadMap:
    """The mapping of one replay (see the module docstring); indexed like the pod list.

    Attributes:
        types: Gavel job type names (index = ``job[i]``).
        job: ``int[P]`` Gavel type of each pod (-1 for CPU-only pods).
        latency_sensitive: ``bool[P]``.
        series: ``float[P, L]``-like list: each LS pod's activity samples (0..1) from its
            phase on, one per :data:`GENAI_STEP_S`; ``None`` for batch pods (always 1).
        history: the first half of each LS pod's series (what a scheduler may know);
            empty for batch pods.
        seed: the mapping seed.
    """

    types: tuple[str, ...]
    job: np.ndarray
    latency_sensitive: np.ndarray
    series: list[np.ndarray | None]
    history: list[np.ndarray]
    seed: int

    def activity(self, i: int, age_s: float) -> float:
        """Activity (0..1) of pod ``i`` after ``age_s`` seconds of running."""
        s = self.series[i]
        if s is None:
            return 1.0
        return float(s[int(age_s // GENAI_STEP_S) % len(s)])


def gavel_type_order(pairs: pd.DataFrame) -> list[str]:
    """Single-GPU Gavel job types, lightest first: by ``1 - mean_b f(b | type)`` (what the
    type inflicts on the others, measured), ties by name."""
    one = pairs[pairs["scale"] == 1]
    inflicted = 1.0 - one.groupby("b")["fraction"].mean()
    return sorted(inflicted.index, key=lambda t: (float(inflicted[t]), t))


def genai_duty_series(data_dir: str | Path) -> list[np.ndarray]:
    """The GPU duty-cycle series (activity 0..1, time-ordered) of every GenAI pod with at
    least :data:`MIN_SERIES` samples, sorted by pod id.

    Raises:
        cohabit.predictors.TelemetryDataError: the file is missing or malformed.
    """
    from cohabit.predictors.telemetry_data import load_metric

    path = Path(data_dir) / "pod_gpu_duty_cycle_anon.csv.gz"
    if not path.is_file():
        path = Path(data_dir) / "pod_gpu_duty_cycle_anon.csv"
    frame = load_metric(path, "duty", 0.01)
    out = []
    for _, g in frame.groupby("pod", sort=True):
        if len(g) >= MIN_SERIES:
            out.append(np.clip(g.sort_values("time")["duty"].to_numpy(float), 0.0, 1.0))
    return out


def map_workloads(pods: Sequence[Pod], types: Sequence[str], series: Sequence[np.ndarray],
                  seed: int) -> WorkloadMap:
    """The seeded mapping of ``pods`` (see the module docstring).

    Args:
        pods: the replayed pods.
        types: Gavel job types, lightest first (:func:`gavel_type_order`).
        series: GenAI activity series (:func:`genai_duty_series`).
        seed: the mapping seed.

    Raises:
        ValueError: no types, or LS pods but no series.
    """
    if not types:
        raise ValueError("no Gavel job types to map pods to")
    n = len(types)
    quantile = (np.arange(n) + 0.5) / n
    job = np.full(len(pods), -1, np.int64)
    ls = np.array([p.qos in LATENCY_SENSITIVE for p in pods], bool)
    if ls.any() and not series:
        raise ValueError("latency-sensitive pods need GenAI activity series")
    out_series: list[np.ndarray | None] = []
    history: list[np.ndarray] = []
    halves = [(s[: len(s) // 2], s[len(s) // 2:]) for s in series]  # shared arrays
    draws = np.random.default_rng(seed).random((len(pods), 3))
    windows: dict[float, np.ndarray] = {}
    for i, p in enumerate(pods):
        if p.num_gpu:
            q = min(1.0, p.gpu_request_milli / 1000.0)
            window = windows.get(q)
            if window is None:
                window = np.flatnonzero(np.abs(quantile - q) <= MAPPING_WINDOW)
                if window.size == 0:
                    window = np.array([int(np.argmin(np.abs(quantile - q)))])
                windows[q] = window
            job[i] = int(window[int(draws[i, 0] * window.size)])
        if ls[i]:
            seen, judged = halves[int(draws[i, 1] * len(series))]
            phase = int(draws[i, 2] * len(judged))
            out_series.append(np.concatenate([judged[phase:], judged[:phase]]))
            history.append(seen)
        else:
            out_series.append(None)
            history.append(np.zeros(0))
    return WorkloadMap(tuple(types), job, ls, out_series, history, int(seed))
