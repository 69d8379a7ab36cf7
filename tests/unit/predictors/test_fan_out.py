"""The predictors' per-workload fan-out gives what one in-process call gives, in order.

Real executors (a process pool) on a real slice of the GenAI telemetry; a Dask cluster's
executor is exercised in tests/integration/test_dask_sweeps.py.
"""

from __future__ import annotations

import functools
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

from cohabit.predictors._common import fan_out
from cohabit.predictors.evaluation import evaluate_rightsizing
from cohabit.predictors.rolling_origin import RollingOrigin
from cohabit.predictors.selection import DEFAULT_GRID, judge_candidates
from cohabit.predictors.telemetry_data import load_genai


def _squares_tagged(tag: str, items: list[int]) -> list[tuple[str, int, int]]:
    return [(tag, i, i * i) for i in items]


@pytest.mark.parametrize("n", [0, 1, 2, 5, 31, 32, 33, 100], ids=lambda n: f"{n}-items")
@pytest.mark.parametrize("chunks", [1, 3, 32], ids=lambda c: f"{c}-chunks")
def test_fan_out_keeps_order_and_every_item(n, chunks):
    fn = functools.partial(_squares_tagged, "x")
    items = list(range(n))
    with ThreadPoolExecutor(3) as pool:
        assert fan_out(pool, fn, items, chunks=chunks) == fn(items)
    assert fan_out(None, fn, items, chunks=chunks) == fn(items)


def test_fan_out_cuts_at_most_chunks_tasks():
    calls: list[int] = []

    def record(items: list[int]) -> list[int]:
        calls.append(len(items))
        return items

    with ThreadPoolExecutor(2) as pool:
        assert fan_out(pool, record, list(range(10)), chunks=4) == list(range(10))
    assert len(calls) == 4 and sum(calls) == 10 and min(calls) >= 2


def _boom(items: list[int]) -> list[int]:
    if 7 in items:
        raise ValueError("pod 7 is bad")
    return items


def test_fan_out_raises_the_tasks_error():
    with ThreadPoolExecutor(2) as pool, pytest.raises(ValueError, match="pod 7 is bad"):
        fan_out(pool, _boom, list(range(20)), chunks=5)


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    import gzip

    import pandas as pd

    from cohabit.predictors.telemetry_data import PACKAGED_GENAI

    d = tmp_path_factory.mktemp("genai")
    keep = None
    for f in sorted(PACKAGED_GENAI.glob("*.csv.gz")):
        df = pd.read_csv(f)
        if keep is None:
            keep = sorted(df["container_ip"].dropna().unique())[:5]
        with gzip.open(d / f.name, "wt") as fh:
            df[df["container_ip"].isin(keep)].to_csv(fh, index=False)
    return load_genai(d)


def test_judge_candidates_in_worker_processes_equal_in_process(frame):
    splitter = RollingOrigin(0.5, 3600.0, 60)
    grid = DEFAULT_GRID[:6]
    here = judge_candidates(frame, "gpu_memory_mib", splitter, grid)
    with ProcessPoolExecutor(2) as pool:
        there = judge_candidates(frame, "gpu_memory_mib", splitter, grid, executor=pool)
    assert len(here) == len(there) > 10
    assert len({h.pod for h in here}) > 1
    for a, b in zip(here, there, strict=True):
        assert (a.pod, a.k, a.origin, a.intervals) == (b.pod, b.k, b.origin, b.intervals)
        np.testing.assert_array_equal(a.reserved, b.reserved)
        np.testing.assert_array_equal(a.under, b.under)


def test_rightsizing_evaluation_in_worker_processes_equals_in_process(frame):
    here = evaluate_rightsizing(frame, resources=("gpu_milli",))
    with ProcessPoolExecutor(2) as pool:
        there = evaluate_rightsizing(frame, resources=("gpu_milli",), executor=pool)
    assert len(here.results) > 5
    for name in ("results", "selection", "candidates"):
        assert getattr(here, name).equals(getattr(there, name)), name


def test_interference_evaluation_in_worker_processes_equals_in_process():
    from cohabit.predictors.interference import evaluate_interference, load_gavel
    from cohabit.predictors.telemetry_data import PACKAGED_GAVEL

    pairs = load_gavel(PACKAGED_GAVEL / "physical_cluster_throughputs.json", ["v100"])
    jobs = sorted(set(pairs["a"]))[::4]  # 7 real jobs: every fold of a small leave-one-out
    sub = pairs[pairs["a"].isin(jobs) & pairs["b"].isin(jobs)]
    here = evaluate_interference(sub, n_estimators=5)
    with ProcessPoolExecutor(2) as pool:
        there = evaluate_interference(sub, n_estimators=5, executor=pool)
    assert here[0]["held_out"].nunique() == len(jobs)
    assert here[0].equals(there[0]) and here[1].equals(there[1])
