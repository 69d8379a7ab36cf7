"""FleetTuner: per-workload operating points re-chosen for the fleet, on real GenAI pods."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from cohabit.config import OperatorSettings
from cohabit.engine.reconcile import predictors_recommender, wide_usage
from cohabit.engine.tuning import FleetTuner
from cohabit.model import QosTarget, Resources, Workload, WorkloadKind
from cohabit.predictors import load_genai, recommend

RESOURCES = ("gpu_milli", "gpu_memory_mib")


def _workload(name: str) -> Workload:
    return Workload(name, WorkloadKind.GPU_INFERENCE, QosTarget("throughput", 1.0, "q"),
                    "ns", Resources(), Resources(), "Recommend", "managed", "Deployment", name)


@pytest.fixture(scope="module")
def fleet(shared_data):
    """Six real GenAI pods as six workloads: long usage rows as a UsageSource returns them."""
    frame = load_genai(shared_data / "alibaba-genai-2026")
    out = {}
    for pod in sorted(frame["pod"].unique())[:6]:
        g = frame[frame["pod"] == pod]
        rows = [g[["time", r]].dropna().rename(columns={r: "value"}).assign(
            namespace="ns", pod=f"{pod[:8]}-0", container="main", resource=r) for r in RESOURCES]
        out[pod[:8]] = pd.concat(rows, ignore_index=True)[
            ["time", "namespace", "pod", "container", "resource", "value"]]
    return out


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_selects_at_most_every_interval_with_every_history_seen(fleet):
    calls = []
    clock = Clock()
    tuner = FleetTuner(interval_s=3600, clock=clock, background=False,
                       select=lambda frame, resources: calls.append(
                           (sorted(frame["pod"].unique()), resources)))
    names = sorted(fleet)
    empty = pd.DataFrame(columns=fleet[names[0]].columns)
    tuner.recommender(_workload(names[0]), "main", empty, pd.DataFrame())
    assert calls == []  # nothing observed yet: nothing to select from
    for name in names:
        tuner.recommender(_workload(name), "main", fleet[name], pd.DataFrame())
    assert len(calls) == 1 and calls[0][0] == [f"ns/{names[0]}/main"]
    clock.now = 3599.0
    tuner.recommender(_workload(names[1]), "main", fleet[names[1]], pd.DataFrame())
    assert len(calls) == 1
    clock.now = 3600.0
    tuner.recommender(_workload(names[1]), "main", fleet[names[1]], pd.DataFrame())
    assert len(calls) == 2
    assert calls[1] == ([f"ns/{n}/main" for n in names], RESOURCES)


def test_recommends_with_the_fleet_selection(fleet):
    tuner = FleetTuner(interval_s=1.0, clock=Clock(), background=False)
    names = sorted(fleet)
    for name in names:  # observe every history, then select once for all of them
        tuner.observe(FleetTuner.key(_workload(name), "main"), wide_usage(fleet[name]))
    assert tuner.maybe_retune() and tuner.selections == 1
    selection = tuner.current()
    assert set(selection.points) == {f"ns/{n}/main" for n in names}
    differs = 0
    for name in names:
        w = _workload(name)
        rec = tuner.recommender(w, "main", fleet[name], pd.DataFrame())
        wide = wide_usage(fleet[name])
        assert rec.target == recommend(wide, w.qos_target, None, "main", selection=selection,
                                       workload=f"ns/{name}/main").target
        differs += rec.target != predictors_recommender(w, "main", fleet[name],
                                                        pd.DataFrame()).target
    assert differs > 0  # the chosen points are not all the a-priori defaults


def test_a_failed_selection_keeps_the_previous_and_is_logged(fleet, caplog):
    def broken(frame, resources):
        raise RuntimeError("boom")

    tuner = FleetTuner(interval_s=1.0, clock=Clock(), background=False, select=broken)
    name = sorted(fleet)[0]
    with caplog.at_level(logging.ERROR, logger="cohabit.engine.tuning"):
        rec = tuner.recommender(_workload(name), "main", fleet[name], pd.DataFrame())
    assert tuner.current() is None and tuner.selections == 0
    assert "fleet tuning failed" in caplog.text
    # The recommendation falls back to the a-priori defaults.
    assert rec == predictors_recommender(_workload(name), "main", fleet[name], pd.DataFrame())
    assert not tuner._running


def test_bad_interval_and_the_setting():
    with pytest.raises(ValueError, match="interval_s"):
        FleetTuner(interval_s=0)
    settings = OperatorSettings.from_env({"COHABIT_RECONCILE_TUNE_INTERVAL_S": "1800"})
    assert settings.reconcile.tune_interval_s == 1800.0
    assert OperatorSettings().reconcile.tune_interval_s == 0.0
