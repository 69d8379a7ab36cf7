"""Operating points chosen for a fleet now (select_operating_points), recommend() with them,
and the ``cohabit recommend`` command, on real GenAI telemetry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cohabit.cli.main import app
from cohabit.predictors import FleetSelection, recommend, select_operating_points
from cohabit.predictors.selection import DEFAULT_GRID
from cohabit.predictors.telemetry_data import load_genai

RESOURCES = ("gpu_milli", "gpu_memory_mib")


@pytest.fixture(scope="module")
def fleet(shared_data):
    frame = load_genai(shared_data / "alibaba-genai-2026")
    pods = sorted(frame["pod"].unique())[:10]
    return frame[frame["pod"].isin(pods)]


@pytest.fixture(scope="module")
def selection(fleet) -> FleetSelection:
    return select_operating_points(fleet, RESOURCES)


def _requests(fleet, selection, resource):
    return sum(
        getattr(recommend(g[["time", *RESOURCES]], selection=selection,
                          workload=str(pod)).target, resource)
        for pod, g in fleet.groupby("pod")
    )


def test_every_pod_gets_a_point_of_the_grid(fleet, selection):
    assert set(selection.points) == set(fleet["pod"].unique())
    for points in selection.points.values():
        assert set(points) == set(RESOURCES)
        assert all(p in DEFAULT_GRID for p in points.values())
    assert {h for d in selection.how.values() for h in d.values()} == {"selected"}
    # The fleet's relative peak rises are there for +fleet points, all complete fractions.
    for resource in RESOURCES:
        rises = selection.fleet_rises[resource]
        assert len(rises) > 100 and np.all(rises >= 0)


@pytest.mark.parametrize("resource", RESOURCES)
def test_recommend_with_a_selection_fits_the_chosen_point(fleet, selection, resource):
    pod = sorted(selection.points)[0]
    g = fleet[fleet["pod"] == pod]
    rec = recommend(g[["time", *RESOURCES]], selection=selection, workload=pod)
    point = selection.points[pod][resource]
    ok = g[resource].notna()
    t, y = g["time"].to_numpy(float)[ok], g[resource].to_numpy(float)[ok]
    cap = 1000.0 * max(1.0, np.ceil(y.max() / 1000.0)) if resource == "gpu_milli" else None
    est = point.estimator(resource, selection.horizon_s,
                          fleet_rises=selection.fleet_rises[resource], max_value=cap)
    assert getattr(rec.target, resource) == int(np.ceil(est.fit(t[:, None], y).target_))


def test_a_stricter_budget_never_requests_less(fleet):
    strict = select_operating_points(fleet, ("gpu_milli",), budgets={"gpu_milli": 0.001},
                                     min_validation_intervals=100)
    loose = select_operating_points(fleet, ("gpu_milli",), budgets={"gpu_milli": 0.1},
                                    min_validation_intervals=100)
    assert _requests(fleet, strict, "gpu_milli") > _requests(fleet, loose, "gpu_milli")


def test_recommend_needs_the_workload_with_a_selection(fleet, selection):
    with pytest.raises(ValueError, match="workload"):
        recommend(fleet[["time", *RESOURCES]], selection=selection)
    # A workload the selection has no point for keeps the a-priori defaults.
    g = fleet[fleet["pod"] == sorted(selection.points)[0]][["time", *RESOURCES]]
    assert recommend(g, selection=selection, workload="unknown") == recommend(g)


@pytest.mark.slow
def test_cli_recommend_on_a_packaged_slice(tmp_path, genai_slice):
    data = genai_slice(6)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["recommend", "--data", str(data), "--out", str(out)])
    assert res.exit_code == 0, res.output
    rec = pd.read_csv(out / "recommendations.csv")
    assert set(rec["resource"]) == set(RESOURCES) and rec["pod"].nunique() == 6
    assert (rec["request"] >= 0).all() and rec["operating_point"].notna().all()
    assert "below the pods' peaks" in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--horizon-h", "0"], "--horizon-h must be > 0"),
     (["--evidence-half-life-h", "-1"], "--evidence-half-life-h must be >= 0")],
    ids=["horizon", "half-life"],
)
def test_cli_recommend_rejects_bad_options(args, message):
    res = CliRunner().invoke(app, ["recommend", *args])
    assert res.exit_code == 2 and message in res.output


def test_cli_recommend_unreadable_input_exits_2(tmp_path):
    res = CliRunner().invoke(app, ["recommend", "--data", str(tmp_path)])
    assert res.exit_code == 2 and "pod_gpu_duty_cycle_anon" in res.output
