"""Fair placement (URSA-style unfairness) against LeastRequestedPriority, table-driven."""

from __future__ import annotations

import pytest

from cohabit.model import InterferenceProfile, Resources
from cohabit.placement.fairness import (
    least_requested_score,
    place_fair,
    place_least_requested,
    predicted_np,
    unfairness,
)
from cohabit.placement.interference import pressure_sensitivity_slowdown as linear

NODES = {"a": Resources(1000, 8192), "b": Resources(1000, 8192)}


def _p(pressure: float, sensitivity: float) -> InterferenceProfile:
    return InterferenceProfile(pressure=(("cpu", pressure),), sensitivity=(("cpu", sensitivity),))


@pytest.mark.parametrize(
    ("values", "expected"),
    [([1.0, 1.0], 0.0), ([1.0], 0.0), ([0.5, 1.0], 0.25 / 0.75), ([0.8, 0.8, 0.8], 0.0)],
)
def test_unfairness_is_the_coefficient_of_variation(values, expected) -> None:
    assert unfairness(values) == pytest.approx(expected)


def test_unfairness_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        unfairness([1.2, 0.5])


def test_least_requested_score_matches_kubernetes() -> None:
    # (1000-250)*10/1000 = 7.5 for CPU, (8192-2048)*10/8192 = 7.5 for memory.
    assert least_requested_score(Resources(250, 2048), Resources(1000, 8192)) == 7.5
    assert least_requested_score(Resources(1200, 0), Resources(1000, 8192)) == 5.0


def test_least_requested_spreads_by_requests_and_ignores_interference() -> None:
    req = {"x": Resources(300, 512), "y": Resources(300, 512), "z": Resources(300, 512)}
    got = place_least_requested(["x", "y", "z"], req, NODES)
    assert got == {"x": "a", "y": "b", "z": "a"}


def test_fair_keeps_the_aggressor_away_from_the_sensitive() -> None:
    # Requests alone would put bully and victim together (LeastRequested does); fair does not.
    req = {"bully": Resources(300, 512), "calm": Resources(300, 512),
           "victim": Resources(300, 512), "other": Resources(300, 512)}
    prof = {"bully": _p(0.9, 0.05), "calm": _p(0.05, 0.05), "victim": _p(0.1, 0.8),
            "other": _p(0.1, 0.1)}
    order = ["bully", "calm", "victim", "other"]
    lr = place_least_requested(order, req, NODES)
    fair = place_fair(order, req, NODES, prof, linear)
    assert lr["bully"] == lr["victim"]
    assert fair["bully"] != fair["victim"]
    u = {name: unfairness(list(predicted_np(a, prof, linear).values()))
         for name, a in (("lr", lr), ("fair", fair))}
    assert u["fair"] < u["lr"]


def test_fair_respects_capacity() -> None:
    req = {f"w{i}": Resources(600, 512) for i in range(2)}
    fair = place_fair(["w0", "w1"], req, NODES, {k: _p(0.0, 0.0) for k in req}, linear)
    assert fair["w0"] != fair["w1"]
    with pytest.raises(ValueError, match="fits on no node"):
        place_fair(["w0", "w1", "w2"], {**req, "w2": Resources(600, 512)}, NODES, {}, linear)


def test_neighbours_compose_multiplicatively_and_never_all_saturate() -> None:
    # Profiles as measured on the shared 2-core host: sensitivities above 1 per core make
    # each pair's predicted slowdown large; three per node must still be told apart.
    prof = {f"db{i}": _p(0.3 + 0.1 * i, 1.0 + 0.1 * i) for i in range(6)}
    requests = {n: Resources(250, 256) for n in prof}
    three = {n: ("a" if i < 3 else "b") for i, n in enumerate(prof)}
    np_ = predicted_np(three, prof, linear)
    alone = 1 - min(1.0, linear(prof["db0"], prof["db1"]))
    both = alone * (1 - min(1.0, linear(prof["db0"], prof["db2"])))
    assert np_["db0"] == pytest.approx(both) and 0 < both < alone
    placed = place_fair(list(prof), requests, NODES, prof, linear)
    assert set(placed.values()) == {"a", "b"}
    fair = unfairness(list(predicted_np(placed, prof, linear).values()))
    lr = unfairness(list(predicted_np(place_least_requested(list(prof), requests, NODES),
                                      prof, linear).values()))
    assert fair <= lr
