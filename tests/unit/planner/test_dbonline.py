"""The online search's decisions (planner.dbonline), table-driven, and the engine's planner
driven by a synthetic database (a p99 surface with noise), including the back-off."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cohabit.engine.dbonline import OnlineDatabasePlanner, observe
from cohabit.planner.dbonline import Observation, OnlineSettings, decide, recommend

S = OnlineSettings(target_p99_ms=100.0, cpu_lo=100, cpu_hi=2000, mem_lo=256, mem_hi=2048)


def _truth(cpu, mem, load):
    """p99 of a database needing 1 m per TPS of CPU: grows as the quota nears demand
    (elementwise over arrays, or on floats)."""
    rho = np.minimum(0.99, np.asarray(load, dtype=float) / np.asarray(cpu, dtype=float))
    return 10.0 / (1 - rho) ** 2


@pytest.mark.parametrize(
    ("obs", "kind", "new_cpu"),
    [
        (Observation(math.nan, 100.0), "no-data", 1000),
        (Observation(150.0, 100.0, throttled_ratio=0.3, cpu_milli=500), "back-off", 1500),
        (Observation(150.0, 100.0, throttled_ratio=0.0, cpu_milli=200, memory_mib=300),
         "hold", 1000),
        (Observation(40.0, 100.0), "hold", 1000),  # no model: hold
    ],
    ids=["no-data", "starved-backs-off", "busy-not-starved-holds", "no-model-holds"],
)
def test_decisions_without_a_model(obs: Observation, kind: str, new_cpu: int) -> None:
    d = decide((1000, 1024), obs, S)
    assert d.kind == kind and d.cpu_milli == new_cpu
    assert d.reason


def test_back_off_returns_to_the_last_good_allocation() -> None:
    obs = Observation(300.0, 100.0, throttled_ratio=0.5, cpu_milli=400)
    d = decide((400, 1024), obs, S, last_good=(900, 1024))
    assert d.kind == "back-off" and d.cpu_milli == 900


def test_step_down_is_bounded_and_waits_for_settling() -> None:
    obs = Observation(30.0, 100.0)
    args = dict(predict=_truth, confidence=0.9, peak_tps=100.0)
    settled = decide((1000, 1024), obs, S, windows_since_change=5, **args)
    assert settled.kind == "step-down" and settled.cpu_milli == 850  # -15 %
    assert settled.recommended is not None and settled.recommended[0] < 850
    waiting = decide((1000, 1024), obs, S, windows_since_change=1, **args)
    assert waiting.kind == "hold" and "settling" in waiting.reason


def test_rising_forecast_steps_up_at_once() -> None:
    d = decide((200, 1024), Observation(60.0, 150.0), S, predict=_truth, confidence=0.9,
               peak_tps=400.0)
    assert d.kind == "step-up" and d.cpu_milli >= 400 / (1 - math.sqrt(0.1))


def test_recommendation_is_the_cheapest_meeting_point() -> None:
    rec = recommend(_truth, 100.0, S, (256, 1024))
    assert rec is not None and rec[1] == 256  # memory does not matter to _truth
    assert _truth(rec[0], 256, 100) <= 100 < _truth(rec[0] * 0.94, 256, 100)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        OnlineSettings(target_p99_ms=-1)
    with pytest.raises(ValueError):
        OnlineSettings(target_p99_ms=10, backoff=1.0)


def test_observe_reduces_a_window() -> None:
    frame = pd.DataFrame({"time": [1.0, 2.0], "p99_ms": [10.0, 12.0],
                          "offered_tps": [100.0, 120.0], "throttled_ratio": [0.0, 0.2]})
    obs = observe(frame)
    assert obs.p99_ms == 12.0 and obs.offered_tps == 110.0 and obs.throttled_ratio == 0.1
    assert math.isnan(observe(frame.iloc[0:0]).p99_ms)


def test_closed_loop_on_a_synthetic_database_walks_down_and_backs_off() -> None:
    rng = np.random.default_rng(0)
    planner = OnlineDatabasePlanner("db", S, (2000, 1024), horizon_s=120, lookback_s=240,
                                    min_windows_to_fit=6)
    cpu, mem = 2000, 1024
    kinds, violations = [], 0
    for k in range(60):
        load = 150 + 100 * math.sin(k / 12)  # a compressed daily cycle
        p99 = _truth(cpu, mem, load) * math.exp(rng.normal(0, 0.1))
        throttled = 0.5 if load / cpu > 0.8 else 0.0
        violations += p99 > 100
        frame = pd.DataFrame({"time": [k * 30.0], "p99_ms": [p99], "offered_tps": [load],
                              "throttled_ratio": [throttled], "cpu_milli": [min(cpu, load)],
                              "cpu_limit_milli": [cpu], "memory_limit_mib": [mem]})
        d = planner.step(frame, now=k * 30.0)
        kinds.append(d.kind)
        cpu, mem = d.cpu_milli, d.memory_mib
    assert "step-down" in kinds
    assert min(planner.history_frame()["cpu_milli"]) < 1000  # walked far below the start
    assert violations <= 8  # every violation was starved and backed off from at once
    assert all(k in ("hold", "step-down", "step-up", "back-off") for k in kinds)
