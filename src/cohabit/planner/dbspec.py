"""Choosing a database's just-enough spec: which allocation to measure next, and the
cheapest one whose p99 meets the target with confidence.

URSA's capacity planner (Zheng, Chen et al., ICPP 2020, arXiv 1912.11963) searches the
allocation space of a database for the smallest spec that meets its performance target,
using the monotonicity of performance in resources instead of measuring a full grid. Here
the space is ``(cpu_milli, memory_mib)``; the search is pure (no I/O, no clock), a function
of the allocations measured so far, summarised by the predictor
(:meth:`cohabit.predictors.dbcurve.AllocationCurve.summary`: runs ``n`` and
``p_meet`` = P(a fresh run meets the target) per allocation), so it can be replayed on
recorded points.

**States.** A measured allocation *meets* when ``p_meet >= confidence``, *fails* when
``p_meet < 1/2`` (a fresh run more likely misses than meets: not worth more runs) or when it
stayed below ``confidence`` after ``max_repeats`` runs (not confirmed, so not claimed), and
is *uncertain* otherwise (likely but not yet confidently meeting): it is measured again.
Only the claim "meets" needs confidence; calling a likely miss a miss early costs at most
some resource, never the target. An
unmeasured allocation is implied to meet when a measured meeting allocation is no larger in
both resources, and implied to fail when a measured failing one is no smaller in both
(monotonicity).

**Search.**

1. *Memory*: at the CPU ceiling, bisect the memory ladder (:meth:`SearchSpace.memory_levels`,
   doubling from the floor) for the smallest level that meets; if the largest allocation
   fails, no allowed spec meets the target.
2. *CPU*: at that level, bisect the CPU grid (geometric, ``cpu_step`` apart) between the
   largest failing and the smallest meeting quota.
3. *Trade-off*: at each larger memory level whose cheapest spec could still undercut the best
   cost found, bisect the CPU grid below the cost of the best; stop at the first level that
   does not improve it (more memory bought less CPU before, and stops doing so).

The search ends when every bisection interval is one grid step wide: the boundary is then
known to the grid's resolution, each side at the stated confidence.

**Cost.** ``cost = cores x price per vCPU-hour + GiB x price per GB-hour``, by default AWS
Fargate's on-demand Linux/x86 prices in us-east-1 (https://aws.amazon.com/fargate/pricing/:
$0.04048 per vCPU per hour, $0.004445 per GB per hour, as listed in 2025).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

__all__ = ["Choice", "CostWeights", "SearchSpace", "SpecSearch", "Step"]


@dataclass(frozen=True)
class CostWeights:
    """Price of a spec per hour.

    Attributes:
        per_core_hour: per vCPU (1000 millicores) per hour.
        per_gib_hour: per GiB of memory per hour.
        source: where the prices come from.
    """

    per_core_hour: float = 0.04048
    per_gib_hour: float = 0.004445
    source: str = ("AWS Fargate on-demand, us-east-1, Linux/x86 "
                   "(https://aws.amazon.com/fargate/pricing/)")

    def __post_init__(self) -> None:
        if not (self.per_core_hour >= 0 and self.per_gib_hour >= 0):
            raise ValueError("cost weights must be >= 0")
        if self.per_core_hour == 0 and self.per_gib_hour == 0:
            raise ValueError("at least one cost weight must be > 0")

    def cost(self, cpu_milli: float, memory_mib: float) -> float:
        """Price per hour of ``cpu_milli`` millicores and ``memory_mib`` MiB."""
        return cpu_milli / 1000.0 * self.per_core_hour + memory_mib / 1024.0 * self.per_gib_hour


@dataclass(frozen=True)
class SearchSpace:
    """The allocations a search may choose.

    Attributes:
        cpu_lo, cpu_hi: CPU quota range, millicores (>= 10; the kernel's minimum quota is
            1 ms per 100 ms period).
        mem_lo, mem_hi: memory limit range, MiB.
        cpu_step: relative step of the CPU grid (0.1 = 10 % apart).
        cpu_round: CPU grid values are multiples of this (millicores).

    Raises (from ``__post_init__``):
        ValueError: empty or inverted ranges, a step outside (0, 1].
    """

    cpu_lo: int = 100
    cpu_hi: int = 4000
    mem_lo: int = 128
    mem_hi: int = 8192
    cpu_step: float = 0.10
    cpu_round: int = 10

    def __post_init__(self) -> None:
        if not 10 <= self.cpu_lo <= self.cpu_hi:
            raise ValueError(f"CPU range must satisfy 10 <= lo <= hi, got {self.cpu_lo}:"
                             f"{self.cpu_hi}")
        if not 16 <= self.mem_lo <= self.mem_hi:
            raise ValueError(f"memory range must satisfy 16 <= lo <= hi MiB, got "
                             f"{self.mem_lo}:{self.mem_hi}")
        if not 0 < self.cpu_step <= 1:
            raise ValueError(f"cpu_step must be in (0, 1], got {self.cpu_step}")
        if self.cpu_round < 1:
            raise ValueError(f"cpu_round must be >= 1, got {self.cpu_round}")

    def memory_levels(self) -> tuple[int, ...]:
        """``mem_lo, 2 mem_lo, 4 mem_lo, ...`` below ``mem_hi``, then ``mem_hi``."""
        out = []
        m = self.mem_lo
        while m < self.mem_hi:
            out.append(m)
            m *= 2
        out.append(self.mem_hi)
        return tuple(out)

    def cpu_grid(self) -> tuple[int, ...]:
        """Geometric CPU values from ``cpu_lo`` to ``cpu_hi`` (both included)."""
        if self.cpu_lo == self.cpu_hi:
            return (self.cpu_lo,)
        k = math.ceil(math.log(self.cpu_hi / self.cpu_lo) / math.log1p(self.cpu_step))
        raw = (self.cpu_lo * (self.cpu_hi / self.cpu_lo) ** (i / k) for i in range(k + 1))
        values = {self.cpu_lo, self.cpu_hi}
        for v in raw:
            r = int(round(v / self.cpu_round)) * self.cpu_round
            values.add(min(self.cpu_hi, max(self.cpu_lo, r)))
        return tuple(sorted(values))


@dataclass(frozen=True)
class Step:
    """The next measurement: ``runs`` more runs at ``(cpu_milli, memory_mib)``; ``phase`` is
    ``"repeat"``, ``"memory"``, ``"cpu"`` or ``"trade-off"``; ``why`` says why."""

    cpu_milli: int
    memory_mib: int
    runs: int
    phase: str
    why: str


@dataclass(frozen=True)
class Choice:
    """The outcome of a search.

    Attributes:
        feasible: True when some measured allocation meets the target with confidence.
        cpu_milli, memory_mib: the chosen allocation (the best one found when infeasible).
        p99_ms_expected: the model's p99 there (ms).
        p99_upper_ms: the p99 a fresh run stays under at the stated confidence (ms).
        confidence: P(a fresh run meets the target) there.
        cost_per_hour: its price per hour.
        runs: runs measured there.
        why: one sentence: why this point.
    """

    feasible: bool
    cpu_milli: int
    memory_mib: int
    p99_ms_expected: float
    p99_upper_ms: float
    confidence: float
    cost_per_hour: float
    runs: int
    why: str


@dataclass(frozen=True)
class SpecSearch:
    """The search of the module docstring for one workload and target.

    Attributes:
        space: allowed allocations.
        target_p99_ms: the p99 target (ms).
        confidence: required P(a fresh run meets the target), e.g. 0.9.
        repeats: runs per newly measured allocation (>= 2, so the spread is measured).
        max_repeats: runs after which an uncertain allocation counts as failing.
        cost: prices.
    """

    space: SearchSpace
    target_p99_ms: float
    confidence: float = 0.9
    repeats: int = 3
    max_repeats: int = 6
    cost: CostWeights = CostWeights()

    def __post_init__(self) -> None:
        if not (self.target_p99_ms > 0 and math.isfinite(self.target_p99_ms)):
            raise ValueError(f"target p99 must be a positive number of ms, got "
                             f"{self.target_p99_ms}")
        if not 0.5 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0.5, 1), got {self.confidence}")
        if not 2 <= self.repeats <= self.max_repeats:
            raise ValueError(f"need 2 <= repeats <= max_repeats, got {self.repeats}, "
                             f"{self.max_repeats}")

    # ------------------------------------------------------------------ states

    def states(self, summary: pd.DataFrame) -> dict[tuple[int, int], str]:
        """``(cpu_milli, memory_mib) -> "meets" | "fails" | "uncertain"`` per measured
        allocation of ``summary`` (columns ``cpu_milli``, ``memory_mib``, ``n``,
        ``p_meet``)."""
        out = {}
        for r in summary.itertuples(index=False):
            key = (int(r.cpu_milli), int(r.memory_mib))
            if r.p_meet >= self.confidence:
                out[key] = "meets"
            elif r.p_meet < 0.5 or r.n >= self.max_repeats:
                out[key] = "fails"
            else:
                out[key] = "uncertain"
        return out

    @staticmethod
    def implied(states: dict[tuple[int, int], str], cpu: int, mem: int) -> str:
        """State of ``(cpu, mem)`` by monotonicity: its own if measured and not uncertain,
        else ``meets`` when dominated by a meeting allocation, ``fails`` when dominating a
        failing one, else ``unknown``."""
        own = states.get((cpu, mem))
        if own in ("meets", "fails"):
            return own
        if any(s == "meets" and c <= cpu and m <= mem for (c, m), s in states.items()):
            return "meets"
        if any(s == "fails" and c >= cpu and m >= mem for (c, m), s in states.items()):
            return "fails"
        return "unknown"

    def _best(self, states: dict[tuple[int, int], str]) -> tuple[int, int] | None:
        meets = [k for k, s in states.items() if s == "meets"]
        return min(meets, key=lambda k: (self.cost.cost(*k), k)) if meets else None

    # ------------------------------------------------------------------ the search

    def next_step(self, summary: pd.DataFrame) -> Step | None:
        """The next measurement, or None when the search is over (see :meth:`choose`)."""
        states = self.states(summary)
        runs = {(int(r.cpu_milli), int(r.memory_mib)): int(r.n)
                for r in summary.itertuples(index=False)}
        best = self._best(states)
        best_cost = self.cost.cost(*best) if best else math.inf
        uncertain = [k for k, s in states.items()
                     if s == "uncertain" and self.cost.cost(*k) < best_cost]
        if uncertain:
            k = min(uncertain, key=lambda k: (self.cost.cost(*k), k))
            return Step(k[0], k[1], 1, "repeat",
                        f"p99 at {k[0]}m/{k[1]}MiB is not yet known to meet or miss the "
                        f"target at {self.confidence:.0%} after {runs[k]} runs")
        step = self._memory_step(states)
        if step is not None or self._min_meeting_level(states) is None:
            return step
        return self._cpu_steps(states)

    def _min_meeting_level(self, states: dict[tuple[int, int], str]) -> int | None:
        levels = self.space.memory_levels()
        hi = self.space.cpu_hi
        meeting = [i for i, m in enumerate(levels) if self.implied(states, hi, m) == "meets"]
        return min(meeting) if meeting else None

    def _memory_step(self, states: dict[tuple[int, int], str]) -> Step | None:
        levels = self.space.memory_levels()
        hi_cpu = self.space.cpu_hi
        implied = [self.implied(states, hi_cpu, m) for m in levels]
        top = len(levels) - 1
        if "meets" not in implied:
            if implied[top] == "fails":
                return None  # infeasible: the largest allocation misses the target
            return Step(hi_cpu, levels[top], self.repeats, "memory",
                        "the largest allowed allocation first: is the target reachable?")
        hi = implied.index("meets")
        lo = max((i for i, s in enumerate(implied) if s == "fails" and i < hi), default=-1)
        if hi - lo <= 1:
            return None
        mid = (lo + hi) // 2
        return Step(hi_cpu, levels[mid], self.repeats, "memory",
                    f"bisecting memory between {levels[lo] if lo >= 0 else 0} MiB (misses) "
                    f"and {levels[hi]} MiB (meets) at the CPU ceiling")

    def _cpu_steps(self, states: dict[tuple[int, int], str]) -> Step | None:
        levels = self.space.memory_levels()
        grid = self.space.cpu_grid()
        first = self._min_meeting_level(states)
        assert first is not None
        for j in range(first, len(levels)):
            mem = levels[j]
            best = self._best(states)
            best_cost = self.cost.cost(*best) if best else math.inf
            if j > first and self.cost.cost(grid[0], mem) >= best_cost:
                return None
            cap = max((i for i, c in enumerate(grid) if self.cost.cost(c, mem) < best_cost),
                      default=-1) if j > first else len(grid) - 1
            if cap < 0:
                return None
            implied = [self.implied(states, c, mem) for c in grid[:cap + 1]]
            hi = implied.index("meets") if "meets" in implied else cap + 1
            lo = max((i for i, s in enumerate(implied) if s == "fails" and i < hi), default=-1)
            if hi - lo > 1:
                mid = (lo + hi) // 2
                phase = "cpu" if j == first else "trade-off"
                upper = f"{grid[hi]}m (meets)" if hi <= cap else (
                    f"the cost of the best spec so far ({best[0]}m/{best[1]}MiB)"
                    if best else "the ceiling")
                return Step(grid[mid], mem, self.repeats, phase,
                            f"bisecting CPU at {mem} MiB between "
                            f"{grid[lo] if lo >= 0 else 0}m (misses) and {upper}")
            if j > first and hi > cap:
                return None  # this level could not beat the best: more memory stops paying
        return None

    # ------------------------------------------------------------------ the choice

    def choose(self, summary: pd.DataFrame) -> Choice:
        """The cheapest measured allocation that meets the target with confidence; when
        none does, the most promising one measured (highest ``p_meet``, then lowest p99)
        with ``feasible=False``.

        Raises:
            ValueError: ``summary`` is empty.
        """
        if summary.empty:
            raise ValueError("no allocation was measured")
        states = self.states(summary)
        rows = {(int(r.cpu_milli), int(r.memory_mib)): r
                for r in summary.itertuples(index=False)}
        best = self._best(states)
        if best is not None:
            r = rows[best]
            cheaper_fail = [k for k, s in states.items()
                            if s == "fails" and k[1] == best[1] and k[0] < best[0]]
            edge = (f"; {max(cheaper_fail)[0]}m at the same memory misses it"
                    if cheaper_fail else "")
            why = (f"cheapest measured spec whose p99 meets {self.target_p99_ms:g} ms with "
                   f"P={r.p_meet:.2f} >= {self.confidence:.2f} over {r.n} runs{edge}")
            return Choice(True, best[0], best[1], float(r.p99_ms), float(r.p99_upper_ms),
                          float(r.p_meet), self.cost.cost(*best), int(r.n), why)
        top = summary.sort_values(["p_meet", "p99_ms"], ascending=[False, True]).iloc[0]
        why = (f"no allowed spec meets p99 <= {self.target_p99_ms:g} ms with confidence "
               f"{self.confidence:.2f}: the best point found, {int(top.cpu_milli)}m/"
               f"{int(top.memory_mib)}MiB, has p99 {top.p99_ms:.1f} ms (P(meet)="
               f"{top.p_meet:.2f})")
        return Choice(False, int(top.cpu_milli), int(top.memory_mib), float(top.p99_ms),
                      float(top.p99_upper_ms), float(top.p_meet),
                      self.cost.cost(top.cpu_milli, top.memory_mib), int(top.n), why)
