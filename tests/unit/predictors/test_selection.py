"""Choosing operating points from validation sums, and the evidence they are chosen on."""

from __future__ import annotations

import numpy as np
import pytest

from cohabit.predictors.judging import HorizonTotals
from cohabit.predictors.selection import (
    EvidenceTable,
    select_operating_point,
    select_per_workload,
)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"budget": 0.01}, 1),  # candidates 1 and 2 within 1 % of 1000: 1 reserves less
        ({"budget": 0.001}, 2),  # none within 1 shortfall: the fewest shortfalls
        ({"cost_cap": 90.0}, 1),  # fewest shortfalls among reserved <= 90 (0 and 1)
        ({"cost_cap": 10.0}, 0),  # none that cheap: the least reserved
        ({"under_cap": 30}, 0),  # least reserved with <= 30 shortfalls
        ({"under_cap": 3}, 2),
    ],
    ids=["budget", "budget-unreachable", "cost-cap", "cost-cap-unreachable", "under-cap",
         "under-cap-tight"],
)
def test_select_operating_point(kwargs, expected):
    reserved = np.array([50.0, 80.0, 120.0])
    under = np.array([30, 8, 5])
    assert select_operating_point(reserved, under, 1000, **kwargs) == expected


# Two workloads, three candidates each. Removing workload 0's shortfalls is cheap first
# (c0 -> c1: 10 reserved for 8 shortfalls), workload 1's only by jumping to c2 (50 for 10).
_RES = np.array([[50.0, 60.0, 100.0], [50.0, 90.0, 100.0]])
_UND = np.array([[10.0, 2.0, 0.0], [10.0, 8.0, 0.0]])


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"under_limit": 20}, [0, 0]),  # the cheapest choices are already within
        ({"under_limit": 12}, [1, 0]),  # the fleet's shortfalls go where they save most
        ({"under_limit": 2}, [1, 2]),
        ({"under_limit": 0}, [2, 2]),
        ({"under_limit": -1}, [2, 2]),  # unreachable: the fewest shortfalls
        ({"reserved_limit": 160}, [1, 2]),  # fewest shortfalls within 160 reserved
        ({"reserved_limit": 100}, [0, 0]),
        ({"reserved_limit": 50}, [0, 0]),  # unreachable: the least reserved
    ],
    ids=["loose", "spend-on-cheapest", "tight", "zero", "unreachable", "cost-160", "cost-100",
         "cost-unreachable"],
)
def test_select_per_workload(kwargs, expected):
    assert select_per_workload(_RES, _UND, **kwargs).tolist() == expected


def test_select_per_workload_checks_its_arguments():
    with pytest.raises(ValueError, match="exactly one"):
        select_per_workload(_RES, _UND)
    with pytest.raises(ValueError, match="must be equal"):
        select_per_workload(_RES, _UND[:, :2], under_limit=1)


def test_select_operating_point_needs_one_objective():
    with pytest.raises(ValueError, match="exactly one"):
        select_operating_point(np.ones(2), np.ones(2), 10)
    with pytest.raises(ValueError, match="exactly one"):
        select_operating_point(np.ones(2), np.ones(2), 10, budget=0.1, cost_cap=1.0)



def _horizon(pod, end, reserved, under, intervals=10):
    return HorizonTotals(pod, -1, end - 100.0, end, intervals, np.asarray(reserved, float),
                         np.asarray(under, int), 50.0, 40.0, 1, np.zeros(2, int), 0)


def test_evidence_is_what_ended_by_the_origin_decayed_by_age():
    table = EvidenceTable([_horizon("a", 1000.0, [1.0, 2.0], [3, 0]),
                           _horizon("b", 2000.0, [4.0, 8.0], [1, 1]),
                           _horizon("a", 3000.0, [5.0, 5.0], [0, 0])], 1000.0)
    e = table.at(2000.0)  # the third horizon ends later: not seen
    assert e.intervals == 20.0
    assert e.reserved.tolist() == [[0.5, 1.0], [4.0, 8.0]]  # a's ended 1000 s (a half-life) ago
    assert e.under.tolist() == [[1.5, 0.0], [1.0, 1.0]]
    assert e.workload_intervals.tolist() == [5.0, 10.0]
    assert (e.static, e.vpa_reserved, e.vpa_under) == (75.0, 60.0, 1.5)
    assert table.at(2000.0) is e  # cached per origin
    assert EvidenceTable([_horizon("a", 1000.0, [1.0], [0])], None).at(5000.0).reserved[0, 0] == 1
    nothing = table.at(10.0)
    assert nothing.intervals == 0.0 and not nothing.reserved.any()
