"""Interference (Gavel, real data), peak and correlation predictors, and the evaluate CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cohabit.cli.main import app
from cohabit.model import InterferenceProfile
from cohabit.predictors.interference import (
    InterferenceModel,
    choose_probes,
    evaluate_interference,
    load_gavel,
    pair_features,
    probe_profile,
)
from cohabit.predictors.peaks import (
    colocation_score,
    correlation_matrix,
    evaluate_correlation,
    lag_features,
    pp_forecast,
)
from cohabit.predictors.telemetry_data import PACKAGED_GAVEL, TelemetryDataError


@pytest.fixture(scope="module")
def gavel():
    return load_gavel(PACKAGED_GAVEL / "physical_cluster_throughputs.json", ["v100"])


# --- interference ------------------------------------------------------------------------


def test_gavel_loader_fractions(gavel):
    assert set(gavel["gpu"]) == {"v100"}
    assert gavel["fraction"].between(0.0, 1.05).all()
    assert (gavel["fraction"] == 0).mean() > 0.3  # many pairs cannot share a GPU at all
    same = gavel[gavel["a"] == gavel["b"]]
    # A job next to a copy of itself typically runs at about half speed or less.
    assert same["fraction"].median() <= 0.6


@pytest.mark.parametrize(
    ("content", "message"),
    [("not json", "cannot read"), ('{"v100": {"bad key": {"null": 1}}}', "bad entry")],
    ids=["not-json", "bad-key"],
)
def test_gavel_loader_errors(tmp_path, content, message):
    path = tmp_path / "t.json"
    path.write_text(content)
    with pytest.raises(TelemetryDataError, match=message):
        load_gavel(path)


def test_choose_probes_are_distinct_complete_jobs(gavel):
    probes = choose_probes(gavel, 3)
    assert len(set(probes)) == 3
    assert all(p in set(gavel["b"]) for p in probes)


def test_probe_profile_matches_measured_fractions(gavel):
    probes = choose_probes(gavel, 3)
    job = sorted(set(gavel["a"]) - set(probes))[0]
    prof = probe_profile(gavel, job, 1, probes)
    row = gavel[(gavel["a"] == job) & (gavel["b"] == probes[0]) & (gavel["scale"] == 1)]
    assert prof.sensitivity[0][1] == pytest.approx(1 - row["fraction"].iloc[0])
    assert len(prof.pressure) == 3


def test_held_out_job_is_predicted_far_better_than_mean_fraction(gavel):
    jobs = sorted(set(gavel["a"]))
    held = jobs[5]
    train = gavel[(gavel["a"] != held) & (gavel["b"] != held)]
    test = gavel[((gavel["a"] == held) | (gavel["b"] == held)) & (gavel["a"] != gavel["b"])]
    probes = choose_probes(train, 3)
    model = InterferenceModel(n_estimators=50).fit(pair_features(train, probes), train["fraction"])
    pred = model.predict(pair_features(test, probes, measured=gavel))
    mae = np.abs(pred - test["fraction"]).mean()
    mean_mae = np.abs(train["fraction"].mean() - test["fraction"]).mean()
    assert mae < 0.1
    assert mae < mean_mae / 2
    # The plain callable gives the same answer from model.InterferenceProfile values.
    fn = model.as_callable()
    a, b = test.iloc[0]["a"], test.iloc[0]["b"]
    s = int(test.iloc[0]["scale"])
    got = fn(probe_profile(gavel, a, s, probes), probe_profile(gavel, b, s, probes))
    assert got == pytest.approx(pred[0])
    with pytest.raises(ValueError, match="features"):
        fn(InterferenceProfile(), InterferenceProfile())


@pytest.mark.slow
def test_evaluate_interference_meets_target_on_v100(gavel):
    _, summary = evaluate_interference(gavel, n_probes=3, n_estimators=50)
    by = summary.set_index("method")
    assert by.loc["probe-profile", "mae"] <= 0.04
    assert by.loc["mean-fraction", "mae"] > 0.2
    assert by.loc["probe-profile", "mae"] < by.loc["no-profile", "mae"]


# --- peaks and correlation ---------------------------------------------------------------


def test_pp_uses_ar1_on_autocorrelated_series_and_peak_otherwise():
    rng = np.random.default_rng(1)
    ar = np.zeros(600)
    for i in range(1, 600):
        ar[i] = 0.95 * ar[i - 1] + rng.normal()
    hist, fut = ar[:400], ar[400:]
    pred = pp_forecast(hist, fut)
    assert np.mean(np.abs(pred - fut)) < 1.5  # one-step AR(1) error ~ noise sd
    noise = rng.normal(size=600)
    flat = pp_forecast(noise[:400], noise[400:])
    assert np.all(flat == noise[:400].max())


@pytest.mark.parametrize(
    ("corr", "expected"),
    [(-1.0, 1.0), (0.0, 0.5), (0.49, 0.255), (0.5, 0.0), (np.nan, 0.0)],
    ids=["anti", "uncorrelated", "just-below", "threshold", "unknown"],
)
def test_colocation_score(corr, expected):
    assert colocation_score(corr) == pytest.approx(expected)


def test_lag_features_use_only_the_past():
    y = np.arange(10.0)
    X = lag_features(y, np.arange(10.0) * 60)
    assert X[5, 0] == 4.0  # value at i-1
    assert X[5, 3] == 4.0  # max of the last 5 known values


def test_correlation_on_synthetic_pods():
    t = np.arange(200) * 57.0
    wave = np.sin(t / 600)
    frame = pd.concat(
        [
            pd.DataFrame({"pod": p, "time": t, "gpu_milli": v})
            for p, v in (("a", 500 + 400 * wave), ("b", 500 - 400 * wave), ("c", 500 + 390 * wave))
        ]
    )
    corr = correlation_matrix(frame)
    assert corr.loc["a", "b"] == pytest.approx(-1.0)
    pairs = evaluate_correlation(frame).set_index(["a", "b"])
    assert pairs.loc[("a", "b"), "colocate"] and not pairs.loc[("a", "c"), "colocate"]
    assert pairs.loc[("a", "b"), "peak_ratio"] < pairs.loc[("a", "c"), "peak_ratio"]


# --- CLI ----------------------------------------------------------------------------------


def test_cli_unreadable_input_exits_non_zero(tmp_path):
    runner = CliRunner()
    res = runner.invoke(
        app, ["evaluate", "rightsizing", "--data", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 2
    assert "pod_gpu_duty_cycle_anon" in res.output
    bad = tmp_path / "g.json"
    bad.write_text(json.dumps({"v100": {"('x', 1)": {}}}))
    res = runner.invoke(
        app, ["evaluate", "interference", "--data", str(bad), "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 2
    assert "bad entry" in res.output


@pytest.mark.slow
def test_cli_rightsizing_on_packaged_slice(tmp_path, genai_slice):
    # A real slice: the first 8 pods of the shipped GenAI subset, files in the same schema.
    data = genai_slice(8)
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app, ["evaluate", "rightsizing", "--data", str(data), "--out", str(out), "--horizon-h", "3"]
    )
    assert res.exit_code == 0, res.output
    summary = pd.read_csv(out / "rightsizing_summary.csv")
    assert {"static-peak", "vpa", "just-enough"} <= set(summary["method"])
    assert (out / "rightsizing_per_pod.png").stat().st_size > 1000


def test_interference_predictor_plain_callable(gavel):
    from cohabit.predictors import interference_predictor

    predict = interference_predictor(gpu="v100")
    assert len(predict.probes) == 3
    a, b = "ResNet-18 (batch size 16)", "Transformer (batch size 256)"
    pa = probe_profile(gavel, a, 1, predict.probes)
    pb = probe_profile(gavel, b, 1, predict.probes)
    suffered, inflicted = predict(pa, pb), predict(pb, pa)
    assert 0.0 <= suffered <= 1.0 and 0.0 <= inflicted <= 1.0
    measured = gavel[(gavel["a"] == a) & (gavel["b"] == b) & (gavel["scale"] == 1)]["fraction"]
    assert suffered == pytest.approx(measured.iloc[0], abs=0.1)  # a training pair
    with pytest.raises(ValueError, match="n_probes"):
        interference_predictor(n_probes=4)


def test_probe_choice_scores_only_shared_pairs(gavel):
    # Multi-GPU pairs are all 0 in Gavel; scoring on them changes the choice, and the probes
    # chosen on 1-GPU pairs are the ones that explain most 1-GPU variance.
    shared = choose_probes(gavel, 3)
    assert shared == choose_probes(gavel[gavel["scale"] == 1], 3, shared_only=False)
    wide = gavel[gavel["scale"] == 1].pivot_table(index="a", columns="b", values="fraction")
    first_var = wide[shared[0]].var()
    assert first_var >= wide.var().max() - 1e-12


def test_pressure_sensitivity_products_need_full_profiles(gavel):
    probes = choose_probes(gavel, 3)
    X = pair_features(gavel, probes)
    model = InterferenceModel(n_estimators=10, n_probes=3).fit(X, gavel["fraction"])
    assert model.forest_.n_features_in_ == 12 + 9  # profiles + sensitivity_a x pressure_b
    assert model.predict(X[:5]).shape == (5,)
    with pytest.raises(ValueError, match="n_probes=3"):
        InterferenceModel(n_probes=3).fit(X[:, :6], gavel["fraction"])


def _relabelled_gavel(tmp_path, types: dict[str, tuple[str, int]]):
    """A Gavel file whose GPU types are ``types`` (new name -> (packaged type, jobs kept)):
    the real measurements of the first ``jobs`` job names, under another type's name."""
    raw = json.loads((PACKAGED_GAVEL / "physical_cluster_throughputs.json").read_text())
    out = {}
    for new, (old, jobs) in types.items():
        names = sorted({eval(k)[0] for k in raw[old]})[:jobs]  # noqa: S307 - test data keys
        keep = {k: v for k, v in raw[old].items() if eval(k)[0] in names}  # noqa: S307
        out[new] = {k: {o: t for o, t in v.items() if o == "null" or eval(o)[0] in names}  # noqa: S307
                    for k, v in keep.items()}
    path = tmp_path / "throughputs.json"
    path.write_text(json.dumps(out))
    return path


@pytest.mark.slow
def test_cli_interference_judges_every_gpu_type_the_file_holds(tmp_path):
    path = _relabelled_gavel(tmp_path, {"a100": ("v100", 6), "k80": ("p100", 6),
                                        "t4": ("v100", 3)})
    out = tmp_path / "o"
    res = CliRunner().invoke(app, ["evaluate", "interference", "--data", str(path),
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    summary = pd.read_csv(out / "interference_summary.csv")
    assert set(summary["gpu"]) == {"a100", "k80"}  # no p100/v100 assumed
    assert "skipped GPU type t4" in res.output  # 3 jobs: too few to choose 3 probes
    preds = pd.read_csv(out / "interference_predictions.csv")
    assert preds.groupby("gpu")["held_out"].nunique().to_dict() == {"a100": 6, "k80": 6}
    # --gpu still narrows it; a type the file lacks is named with those it holds
    res = CliRunner().invoke(app, ["evaluate", "interference", "--data", str(path), "--gpu",
                                   "h100", "--out", str(tmp_path / "o2")])
    assert res.exit_code == 2
    assert "no GPU type h100 (the file holds a100, k80, t4)" in res.output
