"""Trace loaders: real shipped files load; each kind of bad row is reported with file/line/field.

Bad files are small CSVs in ``tmp_path`` made from the first real rows of the shipped openb
default pod list and GPU node list, with one field changed.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cohabit.model import GpuDevice, QosClass
from cohabit.simulator import loaders
from cohabit.simulator.loaders import TraceError

OPENB = "alibaba-gpu-2023"
N_ROWS = 6  # real rows copied into each small file


def _rows(path: Path, n: int = N_ROWS) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        rows = [row for _, row in zip(range(n), reader, strict=False)]
        return list(reader.fieldnames or []), rows


def _write(path: Path, header: list[str], rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def real_nodes(package_data: Path):
    return loaders.load_nodes(package_data / OPENB / "openb_node_list_gpu_node.csv")


@pytest.fixture()
def pod_rows(package_data: Path) -> tuple[list[str], list[dict[str, str]]]:
    return _rows(package_data / OPENB / "openb_pod_list_default.csv")


@pytest.fixture()
def node_rows(package_data: Path) -> tuple[list[str], list[dict[str, str]]]:
    return _rows(package_data / OPENB / "openb_node_list_gpu_node.csv")


# ----------------------------------------------------------------------- real files load


def test_default_trace_matches_documented_counts():
    trace = loaders.default_trace()
    s = loaders.summarize(trace.nodes, trace.pods)
    assert (s.nodes, s.gpus, s.pods) == (1213, 6212, 8152)
    assert sum(s.pods_by_kind.values()) == s.pods
    assert sum(s.pods_by_qos.values()) == s.pods
    assert s.pods_by_kind["cpu-only"] == sum(1 for p in trace.pods if p.num_gpu == 0)
    assert trace.workload == "openb_pod_list_default"
    assert trace.has_times


@pytest.mark.parametrize("name", loaders.packaged_pod_lists())
def test_every_shipped_pod_list_loads_completely(name: str, package_data: Path, real_nodes):
    path = package_data / OPENB / f"{name}.csv"
    pods = loaders.load_pods(path, real_nodes)
    with open(path) as fh:
        data_lines = sum(1 for line in fh if line.strip()) - 1
    assert len(pods) == data_lines  # nothing dropped
    assert len({p.name for p in pods}) == len(pods)
    for p in pods:
        assert 0 <= p.gpu_milli <= 1000
        assert p.num_gpu <= 1 or p.gpu_milli == 1000


def test_node_row_becomes_node_with_indexed_gpus(node_rows, tmp_path):
    header, rows = node_rows
    nodes = loaders.load_nodes(_write(tmp_path / "n.csv", header, rows))
    first = rows[0]
    n = nodes[0]
    assert n.name == first["sn"]
    assert n.cpu_milli == n.cpu_free_milli == int(first["cpu_milli"])
    assert n.memory_mib == n.memory_free_mib == int(first["memory_mib"])
    assert n.gpus == tuple(
        GpuDevice(index=i, model=first["model"]) for i in range(int(first["gpu"]))
    )


def test_pod_fields_are_converted(pod_rows, real_nodes, tmp_path):
    header, rows = pod_rows
    rows[1]["gpu_spec"] = "T4|V100M16|T4"
    rows[1]["qos"] = "Guaranteed"
    rows[2]["deletion_time"] = ""
    pods = loaders.load_pods(_write(tmp_path / "p.csv", header, rows), real_nodes)
    assert pods[1].gpu_spec == frozenset({"T4", "V100M16"})
    assert pods[1].qos is QosClass.GUARANTEED
    assert pods[0].gpu_spec == frozenset()
    assert pods[2].deletion_time is None
    assert pods[1].creation_time == float(rows[1]["creation_time"])
    assert [p.name for p in pods] == [r["name"] for r in rows]


def test_column_order_does_not_matter_and_optional_columns_default(pod_rows, real_nodes, tmp_path):
    header, rows = pod_rows
    five = ["gpu_milli", "num_gpu", "memory_mib", "cpu_milli", "name"]
    pods = loaders.load_pods(_write(tmp_path / "p.csv", five, rows), real_nodes)
    assert [(p.cpu_milli, p.gpu_milli) for p in pods] == [
        (int(r["cpu_milli"]), int(r["gpu_milli"])) for r in rows
    ]
    assert all(p.qos is QosClass.BE and p.creation_time == 0.0 for p in pods)
    with pytest.raises(TraceError, match="creation_time.*replay"):
        loaders.load_pods(tmp_path / "p.csv", real_nodes, require_times=True)


def test_blank_lines_keep_line_numbers(pod_rows, real_nodes, tmp_path):
    header, rows = pod_rows
    rows[3]["cpu_milli"] = "-5"
    path = _write(tmp_path / "p.csv", header, rows)
    lines = path.read_text().splitlines()
    lines.insert(2, "")  # blank line 3: row 3 (0-based) moves from line 5 to line 6
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TraceError) as err:
        loaders.load_pods(path, real_nodes)
    assert [(p.line, p.field) for p in err.value.problems] == [(6, "cpu_milli")]
    assert lines[5].startswith(rows[3]["name"])


# ---------------------------------------------------------------------- bad pod rows

# (row index to change, {field: new value}, expected field, message fragment)
BAD_POD_ROWS = [
    pytest.param(0, {"cpu_milli": "12x"}, "cpu_milli", "not a number", id="non-numeric-cpu"),
    pytest.param(1, {"memory_mib": "-1024"}, "memory_mib", "negative", id="negative-memory"),
    pytest.param(2, {"cpu_milli": "1.5"}, "cpu_milli", "whole number", id="fractional-cpu"),
    pytest.param(1, {"gpu_milli": "1001"}, "gpu_milli", "outside 0..1000", id="gpu-milli-high"),
    pytest.param(1, {"gpu_milli": "-460"}, "gpu_milli", "negative", id="gpu-milli-negative"),
    pytest.param(
        1, {"num_gpu": "2", "gpu_milli": "460"}, "gpu_milli", "partial share", id="multi-partial"
    ),
    pytest.param(1, {"gpu_milli": "0"}, "gpu_milli", "num_gpu is 1", id="gpu-pod-zero-share"),
    pytest.param(1, {"num_gpu": "0"}, "num_gpu", "gpu_milli is 460", id="share-without-gpu"),
    pytest.param(0, {"num_gpu": ""}, "num_gpu", "empty value", id="empty-num-gpu"),
    pytest.param(0, {"gpu_spec": "H100"}, "gpu_spec", "H100 is on no node", id="unknown-model"),
    pytest.param(0, {"gpu_spec": "T4|H100"}, "gpu_spec", "H100", id="unknown-model-in-list"),
    pytest.param(0, {"gpu_spec": "T4|"}, "gpu_spec", "empty model", id="empty-model-in-list"),
    pytest.param(0, {"qos": "Gold"}, "qos", "not one of", id="unknown-qos"),
    pytest.param(2, {"creation_time": "soon"}, "creation_time", "not a number", id="bad-time"),
    pytest.param(
        2, {"deletion_time": "1"}, "deletion_time", "before creation_time", id="deleted-early"
    ),
    pytest.param(3, {"scheduled_time": "-3"}, "scheduled_time", "negative", id="bad-scheduled"),
    pytest.param(4, {"cpu_milli": "inf"}, "cpu_milli", "finite", id="infinite"),
    pytest.param(4, {"name": ""}, "name", "empty name", id="empty-name"),
    pytest.param(
        4,
        {"name": "openb-pod-0001"},
        "name",
        "duplicate name 'openb-pod-0001' (first on line 3)",
        id="duplicate-name",
    ),
]


@pytest.mark.parametrize(("row", "change", "field", "fragment"), BAD_POD_ROWS)
def test_bad_pod_row_names_file_line_field(
    pod_rows, real_nodes, tmp_path, row, change, field, fragment
):
    header, rows = pod_rows
    rows[row].update(change)
    path = _write(tmp_path / "pods.csv", header, rows)
    with pytest.raises(TraceError) as err:
        loaders.load_pods(path, real_nodes)
    e = err.value
    assert isinstance(e, ValueError)
    assert [(p.line, p.field) for p in e.problems] == [(row + 2, field)]
    assert fragment in e.problems[0].message
    assert e.headline.startswith(f"{path}: line {row + 2}, field {field}: ")


def test_all_bad_rows_are_reported_in_one_error(pod_rows, real_nodes, tmp_path):
    header, rows = pod_rows
    rows[0]["gpu_milli"] = "2000"
    rows[2]["memory_mib"] = "lots"
    rows[5]["qos"] = "??"
    path = _write(tmp_path / "pods.csv", header, rows)
    with pytest.raises(TraceError) as err:
        loaders.load_pods(path, real_nodes)
    assert [(p.line, p.field) for p in err.value.problems] == [
        (2, "gpu_milli"),
        (4, "memory_mib"),
        (7, "qos"),
    ]
    assert "(and 2 more problems)" in err.value.headline
    assert len(str(err.value).splitlines()) == 4


def test_long_error_lists_are_capped(pod_rows, real_nodes, tmp_path, package_data):
    header, rows = _rows(package_data / OPENB / "openb_pod_list_default.csv", 60)
    for r in rows:
        r["gpu_milli"] = "abc"
    path = _write(tmp_path / "pods.csv", header, rows)
    with pytest.raises(TraceError) as err:
        loaders.load_pods(path, real_nodes)
    assert len(err.value.problems) == 60
    text = str(err.value).splitlines()
    assert len(text) == 1 + loaders.MAX_LISTED_PROBLEMS + 1
    assert text[-1].strip() == f"... {60 - loaders.MAX_LISTED_PROBLEMS} more not listed"


@pytest.mark.parametrize("column", ["name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli"])
def test_missing_pod_column(pod_rows, real_nodes, tmp_path, column):
    header, rows = pod_rows
    header.remove(column)
    path = _write(tmp_path / "pods.csv", header, rows)
    with pytest.raises(TraceError) as err:
        loaders.load_pods(path, real_nodes)
    assert [(p.line, p.field) for p in err.value.problems] == [(1, column)]
    assert "missing column" in str(err.value)


def test_gpu_spec_checked_against_the_given_cluster(pod_rows, tmp_path, real_nodes):
    header, rows = pod_rows
    rows[0]["gpu_spec"] = "P100"
    path = _write(tmp_path / "pods.csv", header, rows)
    assert loaders.load_pods(path, real_nodes)[0].gpu_spec == frozenset({"P100"})
    t4_only = [n for n in real_nodes if n.gpu_model == "T4"][:3]
    with pytest.raises(TraceError, match="P100 is on no node.*cluster has: T4"):
        loaders.load_pods(path, t4_only)


# --------------------------------------------------------------------- bad node rows

BAD_NODE_ROWS = [
    pytest.param(0, {"cpu_milli": "lots"}, "cpu_milli", "not a number", id="non-numeric"),
    pytest.param(1, {"memory_mib": "-1"}, "memory_mib", "negative", id="negative"),
    pytest.param(2, {"gpu": "2.5"}, "gpu", "whole number", id="fractional-gpus"),
    pytest.param(3, {"model": ""}, "model", "empty for a node with", id="gpus-without-model"),
    pytest.param(3, {"gpu": "0"}, "model", "0 GPUs", id="model-without-gpus"),
    pytest.param(4, {"sn": "openb-node-0000"}, "sn", "duplicate name", id="duplicate-sn"),
]


@pytest.mark.parametrize(("row", "change", "field", "fragment"), BAD_NODE_ROWS)
def test_bad_node_row_names_file_line_field(node_rows, tmp_path, row, change, field, fragment):
    header, rows = node_rows
    rows[row].update(change)
    path = _write(tmp_path / "nodes.csv", header, rows)
    with pytest.raises(TraceError) as err:
        loaders.load_nodes(path)
    assert [(p.line, p.field) for p in err.value.problems] == [(row + 2, field)]
    assert fragment in err.value.problems[0].message


@pytest.mark.parametrize("column", list(loaders.NODE_COLUMNS))
def test_missing_node_column(node_rows, tmp_path, column):
    header, rows = node_rows
    header.remove(column)
    with pytest.raises(TraceError, match=f"field {column}: missing column"):
        loaders.load_nodes(_write(tmp_path / "nodes.csv", header, rows))


# ------------------------------------------------------------------ unreadable files

UNREADABLE = [
    pytest.param("", "file is empty", id="empty-file"),
    pytest.param("sn,cpu_milli,memory_mib,gpu,model\n", "no data rows", id="header-only"),
    pytest.param(
        "sn,cpu_milli,memory_mib,gpu,model\nopenb-node-0000,64000,262144,2,P100,extra\n"
        "openb-node-0001,64000,262144,2,P100\nopenb-node-0002,1,2,3,P100,x,y\n",
        "line 2: 6 fields where the header has 5",
        id="too-many-fields",
    ),
    pytest.param(b"\xff\xfe\x00\x81binary", "not a UTF-8 text file", id="binary"),
]


@pytest.mark.parametrize(("content", "fragment"), UNREADABLE)
def test_unreadable_files(tmp_path, content, fragment):
    path = tmp_path / "nodes.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(TraceError) as err:
        loaders.load_nodes(path)
    assert str(err.value).startswith(str(path))
    assert fragment in str(err.value)


def test_too_many_fields_reports_every_line(tmp_path):
    path = tmp_path / "nodes.csv"
    path.write_text(
        "sn,cpu_milli,memory_mib,gpu,model\nopenb-node-0000,64000,262144,2,P100,extra\n"
        "openb-node-0001,64000,262144,2,P100\nopenb-node-0002,1,2,3,P100,x,y\n"
    )
    with pytest.raises(TraceError) as err:
        loaders.load_nodes(path)
    assert [p.line for p in err.value.problems] == [2, 4]


def test_missing_file(tmp_path):
    with pytest.raises(TraceError, match="no such file"):
        loaders.load_nodes(tmp_path / "absent.csv")


# ------------------------------------------------------------------ named pod lists


@pytest.mark.parametrize(
    "spec",
    ["gpushare40", "openb_pod_list_gpushare40", "openb_pod_list_gpushare40.csv"],
)
def test_shipped_pod_list_by_name(spec):
    assert loaders.resolve_pods(spec) == ("packaged", "openb_pod_list_gpushare40")


def test_file_path_wins_over_shipped_name(pod_rows, tmp_path, monkeypatch):
    header, rows = pod_rows
    _write(tmp_path / "default", header, rows)
    monkeypatch.chdir(tmp_path)
    assert loaders.resolve_pods("default") == ("file", "default")


def test_unknown_pod_list_name_lists_shipped_names():
    with pytest.raises(TraceError, match="not a shipped pod list.*gpushare40"):
        loaders.resolve_pods("gpushare99")


def test_load_trace_named_lists():
    trace = loaders.load_trace("multigpu20", "all_node")
    s = loaders.summarize(trace.nodes, trace.pods)
    assert trace.workload == "openb_pod_list_multigpu20"
    assert not trace.has_times
    assert s.nodes == 1523 and s.cpu_only_nodes == 310
    assert s.pods_by_kind["multi-GPU"] > 75  # more multi-GPU pods than the default list
    assert any("GPUs: 6212" in line for line in s.lines())


def test_trace_keeps_raw_gpu_spec_text_per_pod():
    """The raw gpu_spec text rides along in pod order (the paper groups typical pods by it)."""
    trace = loaders.load_trace("gpuspec25")
    assert len(trace.gpu_spec_text) == len(trace.pods)
    for pod, text in zip(trace.pods, trace.gpu_spec_text, strict=True):
        assert frozenset(t for t in text.split("|") if t) == pod.gpu_spec
    # some rows repeat a model in their text: the set loses that, the text keeps it
    assert any(len(t.split("|")) != len(set(t.split("|"))) for t in trace.gpu_spec_text if t)
