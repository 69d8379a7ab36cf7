"""The database spec search (planner.dbspec): its grid, states, the bisection replayed against
a known monotone p99 surface with measured-size noise, and the choice on recorded real
points."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohabit.planner.dbspec import CostWeights, SearchSpace, SpecSearch
from cohabit.predictors.dbcurve import AllocationCurve

RECORDED = Path(__file__).parent / "data" / "tpcb_scale5_rate100_points.csv"


@pytest.mark.parametrize(
    ("space", "levels"),
    [
        (SearchSpace(), (128, 256, 512, 1024, 2048, 4096, 8192)),
        (SearchSpace(mem_lo=300, mem_hi=1000), (300, 600, 1000)),
        (SearchSpace(mem_lo=512, mem_hi=512), (512,)),
    ],
    ids=["default", "uneven", "single"],
)
def test_memory_ladder_doubles_up_to_the_ceiling(space: SearchSpace, levels: tuple) -> None:
    assert space.memory_levels() == levels


def test_cpu_grid_is_geometric_within_the_step() -> None:
    grid = SearchSpace(cpu_lo=100, cpu_hi=4000, cpu_step=0.1).cpu_grid()
    assert grid[0] == 100 and grid[-1] == 4000
    ratios = np.array(grid[1:]) / np.array(grid[:-1])
    assert ratios.max() <= 1.1 + 0.1 and ratios.min() > 1.0  # rounding to 10m
    assert 30 <= len(grid) <= 45


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cpu_lo": 5}, "CPU range"),
        ({"cpu_lo": 500, "cpu_hi": 400}, "CPU range"),
        ({"mem_lo": 8}, "memory range"),
        ({"cpu_step": 0.0}, "cpu_step"),
    ],
)
def test_search_space_rejects_bad_ranges(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SearchSpace(**kwargs)


def test_cost_uses_fargate_prices_per_core_and_gib() -> None:
    cost = CostWeights()
    assert cost.cost(1000, 0) == pytest.approx(0.04048)
    assert cost.cost(0, 1024) == pytest.approx(0.004445)
    assert "fargate" in cost.source.lower()


def _oracle(cpu: float, mem: float) -> float:
    """Median p99 (ms) of a database needing ~300m and a 600 MiB working set: latency
    explodes as the quota approaches the demand, and grows with cache misses."""
    demand = 300.0
    cpu_part = 8.0 * (1 + (demand / cpu) ** 4)
    miss = max(0.0, 600.0 - mem) / 600.0
    return cpu_part * (1 + 6 * miss)


def _replay(search: SpecSearch, sd: float, seed: int, oracle=_oracle):
    """Run the search against ``oracle`` with lognormal noise of ``sd``; returns the choice
    and the number of runs."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[int, int, float]] = []
    for _ in range(200):
        frame = pd.DataFrame(rows, columns=["cpu_milli", "memory_mib", "p99_ms"])
        summary = (AllocationCurve(ceiling_ms=5000)
                   .fit(frame[["cpu_milli", "memory_mib"]].to_numpy(float), frame["p99_ms"])
                   .summary(search.target_p99_ms, search.confidence)) if rows else frame
        step = search.next_step(summary)
        if step is None:
            return search.choose(summary), len(rows)
        for _ in range(step.runs):
            rows.append((step.cpu_milli, step.memory_mib,
                         oracle(step.cpu_milli, step.memory_mib) * math.exp(rng.normal(0, sd))))
    raise AssertionError("search did not end")


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_bisection_finds_the_boundary_with_few_runs(seed: int) -> None:
    search = SpecSearch(SearchSpace(), target_p99_ms=40.0, repeats=3, max_repeats=6)
    choice, runs = _replay(search, sd=0.15, seed=seed)
    assert choice.feasible and choice.confidence >= 0.9
    assert _oracle(choice.cpu_milli, choice.memory_mib) <= 40.0  # truly meets (median)
    space = search.space
    optimum = min(search.cost.cost(c, m) for c in space.cpu_grid()
                  for m in space.memory_levels() if _oracle(c, m) <= 40.0)
    assert choice.cost_per_hour <= 1.35 * optimum  # the noise margin costs a little
    full_grid = len(SearchSpace().cpu_grid()) * len(SearchSpace().memory_levels()) * 3
    assert runs <= 0.25 * full_grid, runs


def test_more_noise_costs_margin_not_correctness() -> None:
    quiet = _replay(SpecSearch(SearchSpace(), 40.0), sd=0.05, seed=7)[0]
    noisy = _replay(SpecSearch(SearchSpace(), 40.0), sd=0.35, seed=7)[0]
    assert quiet.feasible and noisy.feasible
    assert noisy.cost_per_hour >= quiet.cost_per_hour
    assert _oracle(noisy.cpu_milli, noisy.memory_mib) <= 40.0


def test_unreachable_target_stops_at_the_largest_spec_and_says_so() -> None:
    search = SpecSearch(SearchSpace(), target_p99_ms=2.0)
    choice, runs = _replay(search, sd=0.1, seed=1)
    assert not choice.feasible
    assert (choice.cpu_milli, choice.memory_mib) == (4000, 8192)
    assert runs == search.repeats  # one allocation measured, then stop
    assert "no allowed spec meets" in choice.why and "best point found" in choice.why


def test_uncertain_allocation_is_measured_again() -> None:
    summary = pd.DataFrame({"cpu_milli": [4000], "memory_mib": [8192], "n": [3],
                            "p_meet": [0.6]})
    step = SpecSearch(SearchSpace(), 40.0).next_step(summary)
    assert step is not None and step.phase == "repeat" and step.runs == 1
    exhausted = summary.assign(n=6)
    assert SpecSearch(SearchSpace(), 40.0).next_step(exhausted) is None  # counts as failing


def test_implied_states_follow_dominance() -> None:
    states = {(500, 512): "meets", (200, 1024): "fails"}
    implied = SpecSearch.implied
    assert implied(states, 800, 512) == "meets" and implied(states, 500, 4096) == "meets"
    assert implied(states, 100, 256) == "fails" and implied(states, 200, 512) == "fails"
    assert implied(states, 300, 2048) == "unknown"


def test_choice_on_recorded_real_points() -> None:
    points = pd.read_csv(RECORDED)
    search = SpecSearch(SearchSpace(), 100.0, repeats=2, max_repeats=4)
    summary = (AllocationCurve(ceiling_ms=1000)
               .fit(points[["cpu_milli", "memory_mib"]].to_numpy(float), points["p99_ms"])
               .summary(100.0, 0.9))
    assert search.next_step(summary) is None  # the recorded search had ended
    choice = search.choose(summary)
    assert choice.feasible and choice.confidence >= 0.9
    states = search.states(summary)
    cheaper = [k for k, s in states.items() if s == "meets"
               and search.cost.cost(*k) < choice.cost_per_hour]
    assert cheaper == []
    assert (choice.cpu_milli, choice.memory_mib) == (260, 2048)
