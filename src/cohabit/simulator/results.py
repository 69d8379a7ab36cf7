"""Result types shared by the simulator's experiment loops, reports and CLI.

The experiment loops (:mod:`cohabit.simulator.fgd`, :mod:`cohabit.simulator.replay`) produce
these; :mod:`cohabit.simulator.report` and the CLI consume them. Curves are tidy pandas
frames so that many runs concatenate into one table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from cohabit.model import TextEnum


class SimulationMode(TextEnum):
    """What a simulator run measures (``cohabit simulate --mode``)."""

    FGD = "fgd"  # the FGD paper's experiment: allocation/fragmentation vs arrived GPU demand
    REPLAY = "replay"  # the trace replayed over time: pending time, unschedulable pods


FGD_CURVE_COLUMNS = (
    "workload",  # pod list name, e.g. "openb_pod_list_default"
    "policy",  # registry name, e.g. "fgd"
    "seed",  # int
    "tune",  # float, e.g. 1.3
    "arrived_gpu_demand_pct",  # int step 0..round(100*tune) (the paper's reporting rule)
    "gpu_alloc_ratio_pct",  # allocated GPU milli / cluster GPU milli, %
    "frag_ratio_pct",  # fragment milli / idle milli, %
    "frag_amount_pct_of_cluster_gpus",  # fragment milli / cluster GPU milli, %
    "cpu_alloc_ratio_pct",  # allocated CPU milli / cluster CPU milli, %
    "memory_alloc_ratio_pct",  # allocated memory MiB / cluster memory MiB, %
    "failed_pods",  # pods that fit nowhere so far (cumulative)
)
"""Columns of :attr:`FgdRunResult.curve`, one row per 1% step of arrived GPU demand."""


@dataclass(frozen=True)
class FgdRunResult:
    """One ``--mode fgd`` run: one policy, one pod list, one seed.

    Attributes:
        curve: frame with :data:`FGD_CURVE_COLUMNS`.
        arrivals: pods that arrived (after inflation).
        failed_pods: pods that could not be placed.
        wall_s: wall time of the run, seconds.
        extra: further counters (``migrations``: pods moved by rebinding; ``moves``).
    """

    curve: pd.DataFrame
    arrivals: int
    failed_pods: int
    wall_s: float
    extra: dict[str, float] = field(default_factory=dict)


REPLAY_SERIES_COLUMNS = (
    "workload",
    "policy",
    "seed",
    "time_s",  # trace time, seconds
    "running_pods",
    "pending_pods",
    "unschedulable_pods",  # pending pods that fit no node even when empty of others' pods
    "gpu_alloc_ratio_pct",
    "frag_ratio_pct",
    "cpu_alloc_ratio_pct",
    "memory_alloc_ratio_pct",
)
"""Columns of :attr:`ReplayRunResult.series`, one row per sample time."""

CONTENDED_SERIES_COLUMNS = (
    "workload",
    "policy",
    "seed",
    "time_s",  # replay time (compressed trace seconds)
    "running_pods",
    "pending_pods",
    "gpu_alloc_ratio_pct",  # GPU requests (as asked) of running pods / slice GPU milli
    "cpu_alloc_ratio_pct",
    "ls_violation_intervals",  # cumulative
)
"""Columns of a contended replay's :attr:`ReplayRunResult.series`, one row per hour."""

PENDING_COLUMNS = ("workload", "policy", "seed", "qos", "pods", "p50_pending_s", "p99_pending_s")
"""Columns of :attr:`ReplayRunResult.pending`, one row per QoS class."""


@dataclass(frozen=True)
class ReplayRunResult:
    """One ``--mode replay`` run: arrivals and departures in trace time.

    Attributes:
        series: frame with :data:`REPLAY_SERIES_COLUMNS`.
        pending: frame with :data:`PENDING_COLUMNS`.
        never_placed: pods still pending at the end of the trace.
        wall_s: wall time of the run, seconds.
    """

    series: pd.DataFrame
    pending: pd.DataFrame
    never_placed: int
    wall_s: float
    extra: dict[str, float] = field(default_factory=dict)
