"""Report formatting: summaries, deviations from the published curves, files and plots.

The matrix results here are built from the real published curves with known offsets per
seed (a stand-in for the experiment loop, used only to check the report's arithmetic and
files); the end-to-end path through the real loop is in ``test_simulate_cli.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from cohabit.simulator import report
from cohabit.simulator.matrix import MatrixResult
from cohabit.simulator.results import FGD_CURVE_COLUMNS, PENDING_COLUMNS, REPLAY_SERIES_COLUMNS

WL = "openb_pod_list_default"
OFFSETS = {42: 0.1, 43: 0.3}  # per-seed offset added to the published curve -> mean +0.2


@pytest.fixture(scope="module")
def published() -> pd.DataFrame:
    return report.published_curves()


def _curve_from_published(pub, workload, policy, seed, offset, tune=1.3):
    """A curve through the published means (linear between steps) plus ``offset``."""
    xs = np.arange(0, round(100 * tune) + 1)
    out = {"arrived_gpu_demand_pct": xs}
    for metric in report.PUBLISHED_METRICS:
        p = pub[(pub["workload"] == workload) & (pub["policy"] == policy)]
        p = p[p["metric"] == metric].sort_values("arrived_gpu_demand_pct")
        x = np.r_[0, p["arrived_gpu_demand_pct"].to_numpy()]
        y = np.r_[0, p["mean"].to_numpy()]
        out[metric] = np.interp(xs, x, y) + offset
    df = pd.DataFrame(out)
    df["workload"], df["policy"], df["seed"], df["tune"] = workload, policy, seed, tune
    df["cpu_alloc_ratio_pct"] = df["arrived_gpu_demand_pct"] * 0.5
    df["memory_alloc_ratio_pct"] = df["arrived_gpu_demand_pct"] * 0.4
    df["failed_pods"] = np.maximum(0, xs - 90) * seed
    return df[list(FGD_CURVE_COLUMNS)]


def _fgd_result(pub, workloads=(WL,), policies=("best-fit", "fgd"), tune=1.3):
    curves, runs = [], []
    for w in workloads:
        for p in policies:
            for s, off in OFFSETS.items():
                c = _curve_from_published(pub, w, p, s, off, tune)
                curves.append(c)
                runs.append(
                    {
                        "workload": w,
                        "policy": p,
                        "seed": s,
                        "tune": tune,
                        "wall_s": s / 100,
                        "arrivals": 10000 + s,
                        "failed_pods": int(c["failed_pods"].iloc[-1]),
                    }
                )
    return MatrixResult(
        "fgd", pd.concat(curves, ignore_index=True), pd.DataFrame(), pd.DataFrame(runs), 1.0, 2
    )


def test_published_names_map_to_registry(published):
    assert set(published["policy"]) == set(report.POLICY_ORDER)
    v = published[
        (published["workload"] == WL)
        & (published["policy"] == "fgd")
        & (published["metric"] == report.ALLOC)
        & (published["arrived_gpu_demand_pct"] == 130)
    ]["mean"]
    assert v.tolist() == [95.39]  # the README's headline number


def test_summary_means_and_deviations(published):
    res = _fgd_result(published)
    s = report.fgd_summary(res, published).set_index("policy")
    assert list(s.index) == ["best-fit", "fgd"]  # paper order
    assert s.loc["fgd", "gpu_alloc_pct_at_130"] == pytest.approx(95.39 + 0.2)
    assert s.loc["best-fit", "published_gpu_alloc_pct_at_130"] == pytest.approx(93.08)
    for col in ("dev_gpu_alloc_pct_at_100", "dev_gpu_alloc_pct_at_130", "dev_frag_ratio_pct_at_90"):
        assert s[col].to_numpy() == pytest.approx([0.2, 0.2])
    assert s["max_abs_dev_gpu_alloc_50_130"].to_numpy() == pytest.approx([0.2, 0.2])
    assert s.loc["fgd", "gpu_alloc_pct_at_130_std"] == pytest.approx(np.std([0.1, 0.3], ddof=1))
    assert s.loc["fgd", "seeds"] == 2
    assert s.loc["fgd", "failed_pods"] == pytest.approx(np.mean([40 * 42, 40 * 43]))
    assert s.loc["fgd", "wall_s"] == pytest.approx(0.425)


def test_largest_deviation_found_where_it_is(published):
    res = _fgd_result(published)
    c = res.curves
    c.loc[(c["policy"] == "fgd") & (c["arrived_gpu_demand_pct"] == 110), report.ALLOC] -= 1.0
    s = report.fgd_summary(res, published).set_index("policy")
    assert s.loc["fgd", "max_abs_dev_gpu_alloc_50_130"] == pytest.approx(0.8)
    assert s.loc["fgd", "max_abs_dev_at_pct"] == 110
    assert s.loc["best-fit", "max_abs_dev_gpu_alloc_50_130"] == pytest.approx(0.2)


def test_unpublished_workload_has_no_deviation(published):
    res = _fgd_result(published)
    res.curves["workload"] = "my_pods"
    res.runs["workload"] = "my_pods"
    s = report.fgd_summary(res, published)
    assert s["gpu_alloc_pct_at_130"].notna().all()
    assert s["dev_gpu_alloc_pct_at_130"].isna().all()
    assert report.comparison(res.curves, published).empty
    table = report.fgd_tables(s, tune=1.3)[0]
    assert "Δ @130" not in [c.header for c in table.columns]


def test_low_tune_leaves_130_empty(published):
    res = _fgd_result(published, tune=1.0)
    s = report.fgd_summary(res, published)
    assert s["gpu_alloc_pct_at_130"].isna().all()
    assert s["gpu_alloc_pct_at_100"].notna().all()
    text = _render(report.fgd_tables(s, tune=1.0))
    assert "–" in text


def _render(tables) -> str:
    console = Console(width=200, record=True, color_system=None)
    for t in tables:
        console.print(t)
    return console.export_text()


def test_table_shows_policies_and_flags_large_deviation(published):
    res = _fgd_result(published)
    res.curves.loc[res.curves["policy"] == "best-fit", report.ALLOC] += 0.5
    s = report.fgd_summary(res, published)
    tables = report.fgd_tables(s, tune=1.3)
    text = _render(tables)
    assert "fgd" in text and "best-fit" in text
    assert "95.59" in text and "+0.70" in text and "+0.20" in text
    row = next(r for r in tables[0].columns[8]._cells if "0.70" in r)
    assert "red" in row  # beyond the 0.3-point bar


def test_write_fgd_outputs(tmp_path, published):
    res = _fgd_result(published, workloads=(WL, "openb_pod_list_gpushare40"))
    paths = report.write_outputs(
        res, tmp_path / "out", meta={"command": "test"}, published=published
    )
    names = {p.name for p in paths}
    assert {
        "curves.csv",
        "runs.csv",
        "summary.csv",
        "comparison.csv",
        "summary.json",
        "alloc_default.png",
        "frag_default.png",
        "alloc_gpushare40.png",
        "max_deviation.csv",
    } <= names
    curves = pd.read_csv(tmp_path / "out" / "curves.csv")
    assert list(curves.columns) == list(FGD_CURVE_COLUMNS)
    assert len(curves) == len(res.curves)
    doc = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert doc["mode"] == "fgd" and doc["command"] == "test"
    assert len(doc["results"]) == 4
    assert doc["published_comparison"]["max_abs_deviation_gpu_alloc_pct_50_130"] == pytest.approx(
        0.2
    )
    assert set(doc["files"]) == names
    cmp = pd.read_csv(tmp_path / "out" / "comparison.csv")
    assert set(cmp["arrived_gpu_demand_pct"]) == {50, 60, 70, 80, 90, 95, 100, 110, 120, 130}
    for p in paths:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert p.stat().st_size > 10_000


def _replay_result() -> MatrixResult:
    rows, pend, runs = [], [], []
    for policy in ("best-fit", "fgd"):
        for seed in (42, 43):
            for i, t in enumerate(range(0, 7 * 86400, 3600)):
                unsched = (i % 24) // (2 if policy == "fgd" else 1)
                rows.append(
                    (
                        WL,
                        policy,
                        seed,
                        float(t),
                        100,
                        unsched + 3,
                        unsched,
                        50.0 + i % 10,
                        40.0,
                        30.0,
                        20.0,
                    )
                )
            for qos, p50 in (("LS", 1.0), ("BE", 30.0)):
                pend.append((WL, policy, seed, qos, 10, p50 * seed, p50 * 10 * seed))
            runs.append(
                {
                    "workload": WL,
                    "policy": policy,
                    "seed": seed,
                    "tune": 1.3,
                    "wall_s": 0.5,
                    "never_placed": seed - 40,
                }
            )
    return MatrixResult(
        "replay",
        pd.DataFrame(rows, columns=list(REPLAY_SERIES_COLUMNS)),
        pd.DataFrame(pend, columns=list(PENDING_COLUMNS)),
        pd.DataFrame(runs),
        1.0,
        1,
    )


def test_replay_summaries_and_files(tmp_path):
    res = _replay_result()
    s = report.replay_summary(res).set_index("policy")
    assert s.loc["best-fit", "peak_unschedulable_pods"] == 23
    assert s.loc["fgd", "peak_unschedulable_pods"] == 11
    assert s.loc["fgd", "never_placed"] == pytest.approx(2.5)
    assert s.loc["fgd", "mean_gpu_alloc_pct"] == pytest.approx(
        np.mean([50.0 + i % 10 for i in range(7 * 24)])
    )
    p = report.pending_summary(res)
    ls = p[(p["policy"] == "fgd") & (p["qos"] == "LS")].iloc[0]
    assert ls["p50_pending_s"] == pytest.approx(42.5)
    assert ls["p99_pending_s"] == pytest.approx(425.0)
    text = _render(report.replay_tables(report.replay_summary(res), p))
    assert "pending time per QoS class" in text and "425.0" in text
    paths = report.write_outputs(res, tmp_path)
    names = {x.name for x in paths}
    assert {"series.csv", "pending.csv", "summary.json", "unschedulable_default.png"} <= names
    doc = json.loads((tmp_path / "summary.json").read_text())
    assert doc["mode"] == "replay" and len(doc["pending"]) == 4


def test_max_deviation_pivot_per_pod_list_and_policy(published):
    res = _fgd_result(published, workloads=(WL, "openb_pod_list_gpushare40"))
    c = res.curves
    hit = (c["workload"] == WL) & (c["policy"] == "best-fit") & (c["arrived_gpu_demand_pct"] == 60)
    c.loc[hit, report.ALLOC] += 0.6
    piv = report.max_deviation(report.fgd_summary(res, published))
    assert list(piv.columns) == ["best-fit", "fgd"]
    assert piv.loc[WL, "best-fit"] == pytest.approx(0.8)
    assert piv.loc["openb_pod_list_gpushare40", "best-fit"] == pytest.approx(0.2)
    text = _render([report.fidelity_table(report.fgd_summary(res, published))])
    assert "gpushare40" in text and "0.80" in text
