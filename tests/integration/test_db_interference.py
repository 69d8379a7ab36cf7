"""Interference on real processes: a stress-ng stressor in a sibling cgroup on the same CPU
slows a probe and a real PostgreSQL, and the measured profile has the placement model's
shape. Short runs; the full measurement is ``benchmarks/db_interference.py``."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator

import pytest

from cohabit.actuator.cgroup import LocalCgroupActuator
from cohabit.cgroup import detect
from cohabit.engine.dbinterference import (
    InterferenceSettings,
    bind_all,
    measure_interference,
    measure_nodes,
    measure_pairs,
    solo_cpu_demand,
)
from cohabit.model import Resize, Resources
from cohabit.profiling import DatabaseSession, LoadSpec
from cohabit.profiling.stress import Stressor, run_probe
from tests.integration.harness.binaries import need


@pytest.fixture(scope="module")
def stress_ng() -> None:
    if shutil.which("stress-ng") is None:
        need("stress-ng missing: apt-get install stress-ng")


@pytest.mark.usefixtures("prerequisites", "stress_ng")
def test_a_cpu_stressor_on_the_same_cpu_slows_the_probe() -> None:
    tree = detect()
    alone = run_probe(tree, "cpu", 3, cpus="1")
    with Stressor(tree, "cpu", 0.9, cpus="1") as stressor:
        group = stressor.group
        beside = run_probe(tree, "cpu", 3, cpus="1")
    assert beside < alone  # the probe lost CPU to its neighbour
    assert group is not None and not group.exists()


@pytest.mark.usefixtures("prerequisites", "stress_ng")
def test_measured_profile_of_a_real_database() -> None:
    tree = detect()
    settings = InterferenceSettings(cpus="1", resources=("cpu",), intensities=(0.8,),
                                    seconds=4, probe_seconds=3, probe_repeats=1)
    load = LoadSpec.of(builtin="select-only", scale=1, clients=2, rate_tps=200)
    with DatabaseSession(load, name="itest-intf", cpuset="0-1") as session:
        session.prepare()
        actuator = LocalCgroupActuator({"db": session.cgroup}, nodes={"one": "1"})
        actuator.apply([Resize("db", "postgres", Resources(200, 256))])
        bind_all(actuator, {"db": "one"})
        session.start(256)
        assert (session.cgroup.dirs["cpuset"] / "cpuset.cpus").read_text().strip() == "1"
        profile, sens, press = measure_interference(session, tree, {"cpu": 0.5}, settings,
                                                    log=lambda m: None)
    assert dict(profile.sensitivity).keys() == {"cpu"} and dict(profile.pressure).keys() == {
        "cpu"}
    assert sens["p99_ms"].iloc[0] > 0 and press["probe_solo"].iloc[0] > 0
    assert all(v >= 0 for _, v in profile.sensitivity + profile.pressure)


@contextlib.contextmanager
def _two_servers(prefix: str, nodes: dict[str, str]
                 ) -> Iterator[tuple[dict[str, DatabaseSession], LocalCgroupActuator]]:
    """Two real select-only servers ``a`` and ``b`` (scale 1, 200 TPS), loaded, under a
    local cgroup actuator over ``nodes`` (node -> cpuset), each at 300 m / 256 MiB."""
    load = LoadSpec.of(builtin="select-only", scale=1, clients=2, rate_tps=200)
    with DatabaseSession(load, name=f"{prefix}a", cpuset="0-1") as a, \
            DatabaseSession(load, name=f"{prefix}b", cpuset="0-1") as b:
        sessions = {"a": a, "b": b}
        for s in sessions.values():
            s.prepare()
        actuator = LocalCgroupActuator({n: s.cgroup for n, s in sessions.items()}, nodes=nodes)
        for n, s in sessions.items():
            actuator.apply([Resize(n, "postgres", Resources(300, 256))])
            s.start(256)
        yield sessions, actuator


@pytest.mark.usefixtures("prerequisites", "stress_ng")
def test_a_measured_pair_is_bracketed_by_parallel_solo_runs() -> None:
    # Two real servers: solo runs on CPU 0 and CPU 1 at once (swapped the second time), the
    # co-run on CPU 1 together; one row per side with both solo p99s around the co-run.
    settings = InterferenceSettings(cpus="1", seconds=3, pair_repeats=1)
    with _two_servers("itest-p", {"n0": "0", "n1": "1", "shared": "1"}) as (sessions,
                                                                          actuator):
        rows = measure_pairs(sessions, actuator, [("a", "b")], settings,
                             solo_nodes=["n0", "n1"], shared="shared", log=lambda m: None)
        cpus = {n: (s.cgroup.dirs["cpuset"] / "cpuset.cpus").read_text().strip()
                for n, s in sessions.items()}
    assert cpus == {"a": "1", "b": "0"}  # the last solo block had them swapped
    assert list(rows["victim"]) == ["a", "b"] and list(rows["aggressor"]) == ["b", "a"]
    assert (rows["p99_solo_before_ms"] > 0).all() and (rows["p99_solo_after_ms"] > 0).all()
    assert ((rows["slowdown"] >= 0) & (rows["slowdown"] < 1)).all()
    ref = (rows["p99_solo_before_ms"] * rows["p99_solo_after_ms"]) ** 0.5
    assert (abs(rows["p99_solo_ms"] - ref) < 1e-9 * ref).all()


@pytest.mark.usefixtures("prerequisites")
def test_a_node_corun_records_co_runners_and_cgroup_cpu_usage() -> None:
    # Two real servers on one node together, bracketed by solo blocks; each run's CPU
    # usage comes from the server's cgroup and stays under its CFS quota (300 m).
    settings = InterferenceSettings(cpus="1", seconds=3)
    with _two_servers("itest-n", {"n0": "0", "n1": "1"}) as (sessions, actuator):
        rows = measure_nodes(sessions, actuator, [{"a": "n1", "b": "n1"}], settings,
                             solo_nodes=["n0", "n1"], repeats=1, log=lambda m: None)
    assert list(rows["workload"]) == ["a", "b"] and list(rows["co_runners"]) == ["b", "a"]
    assert (rows["node"] == "n1").all()
    for column in ("cpu_cores_solo", "cpu_cores_co"):
        assert ((rows[column] > 0) & (rows[column] < 0.3 * 1.15)).all(), rows[column]
    assert set(solo_cpu_demand(rows)) == {"a", "b"}
    assert ((rows["slowdown"] >= 0) & (rows["slowdown"] < 1)).all()
