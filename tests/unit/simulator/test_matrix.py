"""The parallel matrix: worker processes give the same results as running in-process.

Runs the real ``--mode fgd`` loop on a small slice of the real openb trace.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cohabit.simulator import loaders, matrix

OPENB = "alibaba-gpu-2023"


@pytest.fixture(scope="module")
def small_trace(package_data: Path, tmp_path_factory):
    d = tmp_path_factory.mktemp("matrix")
    for src, dst, n in (
        ("openb_node_list_gpu_node.csv", "nodes.csv", 40),
        ("openb_pod_list_default.csv", "pods.csv", 250),
    ):
        lines = (package_data / OPENB / src).read_text().splitlines(keepends=True)
        (d / dst).write_text("".join(lines[: n + 1]))
    trace = loaders.load_trace(d / "pods.csv", d / "nodes.csv")
    return {trace.workload: (trace.nodes, trace.pods)}


def test_cells_are_the_full_product():
    c = matrix.cells("fgd", ["a", "b"], ["fgd", "random"], [1, 2, 3], tune=1.1)
    assert len(c) == 12
    assert len(set(c)) == 12
    assert {x.tune for x in c} == {1.1}
    assert c[0].label == "fgd · a · seed 1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("live", ["a"], ["fgd"], [1]), "mode must be one of"),
        (("fgd", [], ["fgd"], [1]), "no workloads"),
        (("fgd", ["a"], [], [1]), "no policies"),
        (("fgd", ["a"], ["fgd"], []), "no seeds"),
    ],
    ids=["mode", "workloads", "policies", "seeds"],
)
def test_cells_reject_bad_axes(args, message):
    with pytest.raises(ValueError, match=message):
        matrix.cells(*args)


def test_cell_mode_is_a_simulation_mode():
    from cohabit.simulator.results import SimulationMode

    assert matrix.MODES == ("fgd", "replay")
    cell = matrix.Cell("replay", "a", "fgd", 1)
    assert cell.mode is SimulationMode.REPLAY and f"{cell.mode}" == "replay"
    with pytest.raises(ValueError, match="Cell.mode: 'live' is not one of 'fgd', 'replay'"):
        matrix.Cell("live", "a", "fgd", 1)


def test_workers_match_in_process(small_trace):
    (name,) = small_trace
    cells = matrix.cells("fgd", [name], ["fgd", "best-fit", "random"], [42, 43])
    serial = matrix.run_matrix(cells, small_trace, workers=1, progress=False)
    parallel = matrix.run_matrix(cells, small_trace, workers=2, progress=False)
    assert serial.workers == 1 and parallel.workers == 2
    pd.testing.assert_frame_equal(serial.curves, parallel.curves)
    cols = ["workload", "policy", "seed", "arrivals", "failed_pods"]
    pd.testing.assert_frame_equal(serial.runs[cols], parallel.runs[cols])
    assert len(serial.runs) == 6
    # sorted by workload, policy, seed whatever the completion order
    keys = list(zip(serial.runs["policy"], serial.runs["seed"], strict=True))
    assert keys == sorted(keys)
    # the arrival sequence depends on the seed only, not on the policy
    r = serial.runs.set_index(["policy", "seed"])["arrivals"]
    for seed in (42, 43):
        assert r.loc["random", seed] == r.loc["fgd", seed] == r.loc["best-fit", seed]
    # and the two seeds really are different runs
    c = serial.curves[serial.curves["policy"] == "random"]
    a = c[c["seed"] == 42]["gpu_alloc_ratio_pct"].to_numpy()
    b = c[c["seed"] == 43]["gpu_alloc_ratio_pct"].to_numpy()
    assert len(a) == len(b) and (a != b).any()


def test_a_failing_run_names_its_cell(small_trace):
    (name,) = small_trace
    cells = matrix.cells("fgd", [name], ["fgd", "no-such-policy"], [42])
    with pytest.raises(matrix.MatrixError, match="run no-such-policy · pods · seed 42 failed"):
        matrix.run_matrix(cells, small_trace, workers=2, progress=False)


def test_missing_trace_and_bad_workers(small_trace):
    cells = matrix.cells("fgd", ["other"], ["fgd"], [42])
    with pytest.raises(ValueError, match="no trace loaded for workload"):
        matrix.run_matrix(cells, small_trace, progress=False)
    (name,) = small_trace
    with pytest.raises(ValueError, match="workers must be >= 1"):
        matrix.run_matrix(
            matrix.cells("fgd", [name], ["fgd"], [42]), small_trace, workers=0, progress=False
        )


def test_each_cell_is_handed_on_as_it_finishes_not_at_the_end():
    # The progress bar and --executor local's on_result see a cell when it finishes: the
    # slow cell only finishes after ``done`` has been called for the fast one (it would wait
    # out its 30-s timeout if _drain waited for every future first).
    from concurrent.futures import ThreadPoolExecutor
    from threading import Event

    seen, release = [], Event()
    cells = matrix.cells("fgd", ["a"], ["fgd", "random"], [1])

    def slow() -> str:
        return "slow" if release.wait(timeout=30) else "timed out"

    def done(cell, res):
        seen.append(res)
        release.set()

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {pool.submit(lambda: "fast"): cells[0], pool.submit(slow): cells[1]}
        matrix._drain(futures, done)
    assert seen == ["fast", "slow"]
