"""Right-sizing on small known series (constant, step, daily cycle, OOM) and on real GenAI pods."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from cohabit.model import QosTarget, Recommendation, Resources
from cohabit.predictors import (
    JustEnoughEstimator,
    TelemetryDataError,
    VpaRecommender,
    load_genai,
    recommend,
)
from cohabit.predictors.evaluation import evaluate_rightsizing, summarize_rightsizing
from cohabit.predictors.vpa import ExponentialHistogram, vpa_confidence

MINUTE = 60.0
DAY = 86400.0


def _times(days: float, step: float = MINUTE) -> np.ndarray:
    return np.arange(0.0, days * DAY, step)


def constant(days=2.0, value=500.0):
    t = _times(days)
    return t, np.full(len(t), value)


def step(days=2.0, low=200.0, high=800.0, recent_h=6.0):
    t = _times(days)
    return t, np.where(t < t[-1] - recent_h * 3600, low, high)


def daily_cycle(days=3.0, base=400.0, amp=300.0):
    t = _times(days)
    return t, base + amp * np.sin(2 * np.pi * t / DAY)


# --- VPA ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "first"),
    [(0.0, 0), (0.009, 0), (0.0105, 1), (1.0, None)],
    ids=["zero", "inside-first", "second", "one-core"],
)
def test_vpa_bucket_layout(value, first):
    hist = ExponentialHistogram(1000.0, 0.01, 1.05)
    b = int(hist.find_bucket(np.array([value]))[0])
    if first is not None:
        assert b == first
    assert hist.bucket_start(b) <= value < hist.bucket_start(b + 1) or value == 0.0


def test_vpa_constant_cpu_is_bucket_end_plus_margin():
    t, y = constant(value=500.0)
    m = VpaRecommender("cpu_milli").fit(t[:, None], y)
    hist = ExponentialHistogram(1000.0, 0.01, 1.05)
    b = int(hist.find_bucket(np.array([0.5]))[0])
    expected = float(hist.bucket_start(b + 1)) * 1.15 * 1000
    assert m.target_ == pytest.approx(expected)
    assert 500 < m.target_ < 500 * 1.15 * 1.06
    # 2 days of history: upper bound x (1 + 1/2), lower bound ~ x1.
    assert m.confidence_ == pytest.approx(2.0, abs=0.01)
    assert m.upper_ == pytest.approx(m.target_ * 1.5, rel=0.01)  # p95 and p90 share the bucket
    assert m.lower_ == pytest.approx(m.target_, rel=0.01)


@pytest.mark.parametrize(
    ("resource", "minimum"), [("cpu_milli", 25.0), ("memory_mib", 250.0)], ids=["cpu", "memory"]
)
def test_vpa_minimums(resource, minimum):
    t, y = constant(value=1.0)
    assert VpaRecommender(resource).fit(t[:, None], y).target_ == minimum


def test_vpa_memory_uses_daily_peaks_and_oom_bump():
    t, y = daily_cycle(days=3.0, base=1000.0, amp=200.0)
    m = VpaRecommender("memory_mib").fit(t[:, None], y)
    # Every daily peak is ~1200 MiB: target = bucket end of the peak x 1.15.
    assert 1200 * 1.15 <= m.target_ <= 1200 * 1.15 * 1.06
    before = m.target_
    m.record_oom(t[-1], 1500.0)
    assert m.target_ >= 1500 * 1.2 * 1.15 * 0.99
    assert m.target_ > before


def test_vpa_recent_step_is_followed_through_decay():
    t, y = step(days=8.0, low=200.0, high=800.0, recent_h=2.0)
    short = VpaRecommender("cpu_milli", half_life_s=3600.0).fit(t[:, None], y)
    default = VpaRecommender("cpu_milli").fit(t[:, None], y)
    assert short.target_ > 800  # 2 h of new level outweigh 8 days with a 1 h half-life
    # With the 24 h half-life the last 2 h carry ~6 % of the weight: p90 stays on the old level.
    assert default.target_ < 300


def test_vpa_confidence_counts_days():
    assert vpa_confidence(_times(0.5)) == pytest.approx(0.5, abs=0.01)
    assert vpa_confidence(_times(3.0, step=600.0)) == pytest.approx(3 * 144 / 1440, abs=0.01)


def test_vpa_record_oom_rejects_cpu():
    t, y = constant()
    with pytest.raises(ValueError, match="memory"):
        VpaRecommender("cpu_milli").fit(t[:, None], y).record_oom(0.0, 1.0)


# --- JustEnough --------------------------------------------------------------------------


def test_just_enough_constant_is_tight_and_confident():
    t, y = constant(days=2.0, value=500.0)
    m = JustEnoughEstimator("cpu_milli").fit(t[:, None], y)
    assert m.target_ == pytest.approx(500.0)
    assert m.confidence_ == pytest.approx(1.0)
    assert not m.low_confidence_


def test_just_enough_follows_a_step_up_faster_than_vpa():
    t, y = step(days=2.0, low=200.0, high=800.0, recent_h=1.5)
    ours = JustEnoughEstimator("cpu_milli").fit(t[:, None], y)
    vpa = VpaRecommender("cpu_milli").fit(t[:, None], y)
    assert ours.target_ >= 800.0
    assert vpa.target_ < 800.0


def test_just_enough_daily_cycle_covers_recent_peak():
    t, y = daily_cycle(days=3.0)
    m = JustEnoughEstimator("cpu_milli", half_life_s=12 * 3600).fit(t[:, None], y)
    assert np.quantile(y, 0.9) <= m.target_ <= y.max()


@pytest.mark.parametrize(
    ("resource", "used", "expected"),
    [
        ("gpu_memory_mib", 1000.0, 1200.0),
        ("gpu_memory_mib", 100.0, 200.0),
        ("gpu_milli", 500.0, 600.0),
    ],
    ids=["memory-x1.2", "memory-+100MiB", "gpu-share-x1.2"],
)
def test_just_enough_oom_bump(resource, used, expected):
    t, y = constant(days=1.0, value=50.0)
    m = JustEnoughEstimator(resource).fit(t[:, None], y)
    assert m.bump(used) == pytest.approx(expected)


def test_just_enough_short_history_is_low_confidence():
    t, y = constant(days=0.02, value=10.0)
    m = JustEnoughEstimator("gpu_milli").fit(t[:, None], y)
    assert m.low_confidence_
    assert 0.0 <= m.confidence_ < 0.5


def test_just_enough_qos_model_raises_allocation_when_latency_grows_with_usage():
    rng = np.random.default_rng(0)
    t = _times(1.0)
    u = rng.uniform(100, 900, len(t))
    lat = 1000 + 10 * u + rng.normal(0, 50, len(t))
    X = np.column_stack([t, lat])
    plain = JustEnoughEstimator("gpu_milli", coverage=0.5).fit(t[:, None], u)
    qos = JustEnoughEstimator(
        "gpu_milli", coverage=0.5, latency_column=1, latency_target_ms=float(np.quantile(lat, 0.99))
    ).fit(X, u)
    assert qos.qos_model_ is not None and qos.qos_model_.slope > 5
    assert qos.target_ > plain.target_


def test_just_enough_rejects_bad_coverage():
    t, y = constant()
    with pytest.raises(ValueError, match="coverage"):
        JustEnoughEstimator(coverage=1.0).fit(t[:, None], y)


# --- recommend() -------------------------------------------------------------------------


def test_recommend_returns_model_types_with_bounds():
    t, y = constant(days=1.0, value=300.0)
    frame = pd.DataFrame({"time": t, "gpu_milli": y, "gpu_memory_mib": y * 10})
    rec = recommend(frame, bounds=(Resources(gpu_milli=400), Resources(gpu_memory_mib=2000)))
    assert isinstance(rec, Recommendation)
    assert rec.target.gpu_milli == 400  # clamped up to the minimum
    assert rec.target.gpu_memory_mib == 2000  # clamped down to the maximum
    assert 0.0 <= rec.confidence <= 1.0


def test_recommend_without_resources_fails():
    with pytest.raises(ValueError, match="no samples"):
        recommend(pd.DataFrame({"time": [0.0, 1.0], "gpu_milli": [np.nan, np.nan]}))


# --- data loading ------------------------------------------------------------------------


def _write(path, text):
    with gzip.open(path, "wt") as fh:
        fh.write(text)


def test_loader_reads_columns_by_name_and_names_bad_cells(tmp_path):
    _write(
        tmp_path / "pod_gpu_duty_cycle_anon.csv.gz",
        "value,timestamp_anon,container_ip\n5,0,a\n7,57,a\n",
    )
    _write(
        tmp_path / "pod_gpu_memory_used_bytes_anon.csv.gz",
        "timestamp_anon,value,container_ip\n0,1048576,a\n57,2097152,a\n",
    )
    frame = load_genai(tmp_path)
    assert frame["gpu_milli"].tolist() == [50.0, 70.0]
    assert frame["gpu_memory_mib"].tolist() == [1.0, 2.0]
    _write(tmp_path / "qps.csv.gz", "timestamp_anon,value,container_ip\n0,x,a\n")
    with pytest.raises(TelemetryDataError, match=r"qps.csv.gz: line 2, column 'value'"):
        load_genai(tmp_path)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "required metric file pod_gpu_duty_cycle_anon"),
        ({"pod_gpu_duty_cycle_anon.csv.gz": "time,value\n0,1\n"}, "missing column"),
    ],
    ids=["missing-file", "missing-column"],
)
def test_loader_errors(tmp_path, files, message):
    for name, text in files.items():
        _write(tmp_path / name, text)
    with pytest.raises(TelemetryDataError, match=message):
        load_genai(tmp_path)


def test_loader_missing_dir(tmp_path):
    with pytest.raises(TelemetryDataError, match="does not exist"):
        load_genai(tmp_path / "nope")


# --- real data ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def genai(shared_data):
    frame = load_genai(shared_data / "alibaba-genai-2026")
    pods = sorted(frame["pod"].unique())[:12]
    return frame[frame["pod"].isin(pods)]


def test_real_genai_loader_shapes(genai):
    assert genai["time"].diff().dropna().abs().min() >= 0
    assert genai["gpu_milli"].between(0, 1000).all() or genai["gpu_milli"].isna().any()
    assert (genai["gpu_memory_mib"].dropna() < 81920).all()  # below an 80 GiB GPU


def test_real_genai_rightsizing_beats_static_and_meets_shortfall_budget(genai):
    results = evaluate_rightsizing(genai, horizon_s=3 * 3600).results
    summary = summarize_rightsizing(results).set_index(["resource", "method"])
    for resource, budget in (("gpu_milli", 0.02), ("gpu_memory_mib", 0.01)):
        ours = summary.loc[(resource, "just-enough")]
        assert ours["saving"] > 0.1
        assert ours["under_share"] <= budget
    # VPA's memory target is the daily peak x 1.15: above the static request.
    assert summary.loc[("gpu_memory_mib", "vpa"), "saving"] < 0


def test_recommend_on_real_pod_with_latency_slo(genai):
    pod = genai[genai["latency_ms"].notna()]["pod"].iloc[0]
    frame = genai[genai["pod"] == pod]
    slo = QosTarget("p99_latency_ms", float(frame["latency_ms"].quantile(0.99)))
    plain, qos = recommend(frame), recommend(frame, slo)
    assert qos.target.gpu_milli >= plain.target.gpu_milli
    assert qos.target.gpu_memory_mib == plain.target.gpu_memory_mib


# --- a-priori defaults, shared interval code, peak growth ---------------------------------


@pytest.mark.parametrize(
    ("resource", "coverage"),
    [("gpu_milli", 0.99), ("cpu_milli", 0.99), ("gpu_memory_mib", 0.995), ("memory_mib", 0.995)],
    ids=["gpu-share", "cpu", "gpu-memory", "memory"],
)
def test_default_coverage_is_one_minus_the_shortfall_budget(resource, coverage):
    rng = np.random.default_rng(4)
    t = _times(2.0)
    y = rng.uniform(0.0, 1000.0, len(t))
    m = JustEnoughEstimator(resource).fit(t[:, None], y)
    assert m._coverage() == pytest.approx(coverage)
    # Uniform usage: the allocation sits at or a little above the coverage quantile.
    assert np.quantile(y, coverage) - 5 <= m.target_ <= np.quantile(y, min(1.0, coverage + 0.005))


@pytest.mark.parametrize("half_life_h", [1.0, 6.0, 24.0], ids=["1h", "6h", "24h"])
def test_interval_uppers_is_what_the_estimator_learns(genai, half_life_h):
    from cohabit.predictors.rightsizing import interval_uppers

    pod = sorted(genai["pod"].unique())[0]
    g = genai[(genai["pod"] == pod) & genai["gpu_milli"].notna()]
    t, y = g["time"].to_numpy(float), g["gpu_milli"].to_numpy(float)
    points = [(0.9, 0.5), (0.99, 0.8), (0.999, 0.95)]
    ups, _ = interval_uppers(t, y, half_life_h * 3600, points)
    for (c, ic), up in zip(points, ups, strict=True):
        m = JustEnoughEstimator("gpu_milli", coverage=c, interval_confidence=ic,
                                half_life_s=half_life_h * 3600).fit(t[:, None], y)
        assert m.target_ == pytest.approx(up)


def test_peak_rises_on_a_step_and_against_brute_force():
    from cohabit.predictors.rightsizing import peak_rises

    t = np.arange(0.0, 10 * 3600, 60.0)
    y = np.where(t < 5 * 3600, 1000.0, 1500.0)
    rt, rises = peak_rises(t, y, 3600.0)
    assert rises.max() == 500.0
    assert np.all(rt[rises > 0] < 5 * 3600) and np.all(rt[rises > 0] >= 4 * 3600 - 60)
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.uniform(30, 90, 400))
    y = rng.normal(size=400).cumsum()
    rt, rises = peak_rises(t, y, 1800.0)
    brute = [max(y[(t > s) & (t <= s + 1800)].max() - y[(t > s - 1800) & (t <= s)].max(), 0)
             for s in t if s - 1800 >= t[0] and s + 1800 <= t[-1]]
    assert np.allclose(rises, brute)
    assert peak_rises(t[:5], y[:5], 1800.0)[0].size == 0


def test_growth_term_covers_a_recurring_jump_that_a_quantile_misses():
    # GPU memory that climbs by 2 GiB every 3 h (a model loaded per period): the quantile of
    # the history never reaches above the current peak; the learned peak growth does.
    t = _times(1.0)
    y = 10000.0 + 2048.0 * np.floor(t / (3 * 3600))
    fit = t < 20 * 3600
    plain = JustEnoughEstimator("gpu_memory_mib").fit(t[fit][:, None], y[fit])
    grow = JustEnoughEstimator("gpu_memory_mib", growth_horizon_s=3600.0).fit(
        t[fit][:, None], y[fit])
    nxt = y[(t >= 21 * 3600) & (t < 22 * 3600)].max()
    assert plain.target_ < nxt <= grow.target_
    assert grow.growth_ == pytest.approx(2048.0)
    with pytest.raises(ValueError, match="growth_horizon_s"):
        JustEnoughEstimator("gpu_memory_mib", growth_horizon_s=0.0).fit(t[:, None], y)


def test_relative_peak_rises_and_fleet_headroom():
    from cohabit.predictors.rightsizing import fleet_headroom, interval_level, peak_rises

    t = np.arange(0.0, 10 * 3600, 60.0)
    y = np.where(t < 5 * 3600, 1000.0, 1500.0)
    _, rel = peak_rises(t, y, 3600.0, relative=True)
    assert rel.max() == pytest.approx(0.5)
    # A last peak of 0 has no relative rise: those times are left out, not divided by 0.
    z = np.where(t < 5 * 3600, 0.0, 100.0)
    rt, rel = peak_rises(t, z, 3600.0, relative=True)
    assert np.all(rt >= 5 * 3600) and np.all(rel == 0.0)
    rises = np.random.default_rng(1).exponential(0.1, 5000)
    points = [(0.9, 0.5), (0.99, 0.8), (0.999, 0.95)]
    head = fleet_headroom(rises, points)
    for (c, ic), h in zip(points, head, strict=True):
        level = interval_level(c, ic, len(rises))
        assert h == pytest.approx(np.quantile(rises, level, method="inverted_cdf"))
    assert np.all(np.diff(head) > 0)
    assert fleet_headroom(np.empty(0), points).tolist() == [0.0, 0.0, 0.0]


def test_fleet_growth_covers_a_jump_the_pod_never_made(genai):
    # Real fleet: the relative one-hour peak rises of the GenAI pods' GPU memory. A pod that
    # has been flat all along learns no growth of its own; the fleet's rises size it above
    # its peak by their quantile.
    from cohabit.predictors.rightsizing import OperatingPoint, fleet_headroom, peak_rises

    rises = np.concatenate([
        peak_rises(g["time"].to_numpy(float), g["gpu_memory_mib"].to_numpy(float), 3600.0,
                   relative=True)[1]
        for _, g in genai[genai["gpu_memory_mib"].notna()].groupby("pod")
    ])
    assert len(rises) > 1000 and rises.max() > 0
    t = _times(6.0)
    y = np.full(len(t), 10000.0)
    own = JustEnoughEstimator("gpu_memory_mib", growth_horizon_s=3600.0).fit(t[:, None], y)
    fleet = JustEnoughEstimator("gpu_memory_mib", growth_horizon_s=3600.0,
                                fleet_rises=rises).fit(t[:, None], y)
    assert own.target_ == pytest.approx(10000.0) and own.growth_ == 0.0
    head = fleet_headroom(rises, [(0.995, 0.9)])[0]
    assert head > 0 and fleet.fleet_growth_ == pytest.approx(head)
    assert fleet.target_ == pytest.approx(10000.0 * (1 + head))
    with pytest.raises(ValueError, match="needs growth_horizon_s"):
        JustEnoughEstimator("gpu_memory_mib", fleet_rises=rises).fit(t[:, None], y)
    with pytest.raises(ValueError, match="fractions >= 0"):
        JustEnoughEstimator("gpu_memory_mib", growth_horizon_s=3600.0,
                            fleet_rises=np.array([0.1, -0.2])).fit(t[:, None], y)
    point = OperatingPoint(0.995, 0.9, 6 * 3600.0, growth=True, fleet=True)
    with pytest.raises(ValueError, match="needs fleet_rises"):
        point.estimator("gpu_memory_mib", 3600.0)
    assert point.estimator("gpu_memory_mib", 3600.0, fleet_rises=rises).fit(
        t[:, None], y).target_ == pytest.approx(fleet.target_)


def test_bad_interval_confidence_is_rejected():
    t, y = constant()
    with pytest.raises(ValueError, match="interval_confidence"):
        JustEnoughEstimator(interval_confidence=1.0).fit(t[:, None], y)


# --- one kernel: what the evaluation judges is what the estimator fits ------------------------


@pytest.mark.parametrize("resource", ["gpu_milli", "gpu_memory_mib"])
def test_usage_targets_are_exactly_what_the_estimator_learns(genai, resource):
    from cohabit.predictors.rightsizing import (
        fleet_headroom,
        gpu_share_cap,
        peak_rises,
        usage_targets,
    )
    from cohabit.predictors.selection import DEFAULT_GRID

    pods = sorted(genai["pod"].unique())
    rows = genai[genai[resource].notna()]
    rises = np.concatenate([
        peak_rises(g["time"].to_numpy(float), g[resource].to_numpy(float), 3600.0,
                   relative=True)[1]
        for _, g in rows[rows["pod"] != pods[1]].groupby("pod")
    ])
    g = rows[rows["pod"] == pods[1]]
    t, y = g["time"].to_numpy(float), g[resource].to_numpy(float)
    cut = t < t[0] + 0.6 * (t[-1] - t[0])
    cap = gpu_share_cap(resource, y[cut])
    grid = DEFAULT_GRID[::7]  # 45 points: every coverage, confidence, half-life, growth kind
    assert {(p.growth, p.fleet) for p in grid} == {(False, False), (True, False), (True, True)}
    head = fleet_headroom(rises, [(p.coverage, p.interval_confidence) for p in grid])
    got = usage_targets(t[cut], y[cut], grid, horizon_s=3600.0, fleet_growth=head,
                        max_value=cap)
    # The evaluation passes the rises of the whole history; only those complete count.
    longer = usage_targets(t[cut], y[cut], grid, horizon_s=3600.0, fleet_growth=head,
                           max_value=cap, rises=peak_rises(t, y, 3600.0))
    assert np.array_equal(got.target, longer.target)
    for point, target, growth in zip(grid, got.target, got.growth, strict=True):
        est = point.estimator(resource, 3600.0, fleet_rises=rises, max_value=cap)
        est.fit(t[cut][:, None], y[cut])
        assert target == est.target_ and growth == est.growth_, point.label()
    assert len(set(got.target.tolist())) > 10  # the points do differ


@pytest.mark.parametrize(
    ("resource", "used", "expected"),
    [("gpu_memory_mib", 50.0, 100.0), ("gpu_memory_mib", 1000.0, 1500.0),
     ("gpu_milli", 400.0, 600.0), ("gpu_milli", 900.0, 1000.0)],
    ids=["memory-min-step", "memory-ratio", "share-ratio", "share-capped"],
)
def test_bump_follows_the_estimators_parameters(resource, used, expected):
    from cohabit.predictors.rightsizing import BumpRule

    t = _times(0.5)
    est = JustEnoughEstimator(resource, oom_ratio=1.5, oom_min_bump_mib=50.0,
                              max_value=1000.0 if resource == "gpu_milli" else None)
    est.fit(t[:, None], np.full(len(t), 10.0))
    assert est.bump_rule == BumpRule(resource, 1.5, 50.0, est.max_value)
    assert est.bump(used) == expected
    assert est.bump(1.0) == expected  # never lowers
