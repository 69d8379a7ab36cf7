"""Property tests of the trace loaders: every generated file ends in a result or a clear error.

The files are built from cells that mix well-formed values with the shapes that used to be
loaded wrongly or crash (``0.0``, ``1e30``, ``inf``, empty, text, huge counts), around
header/row noise (spaces after commas, trailing commas, separator-only rows, blank lines,
quotes, missing or extra fields). For every file, :func:`cohabit.simulator.loaders.load_pods`
(and ``load_nodes``, ``load_trace``) either

* returns one object per data row, in order, whose numbers equal the numbers written (no
  silent conversion: ``num_gpu`` 0 exactly when ``gpu_milli`` 0, nothing above its bound), or
* raises :class:`~cohabit.simulator.loaders.TraceError` starting with the file's path, every
  problem at a line of the file (or the whole file) and a known field.

Nothing else (no other exception, no hang: the examples are small and bounded).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cohabit.model import MILLI_PER_GPU, GpuDevice, Node
from cohabit.simulator import loaders
from cohabit.simulator.loaders import TraceError

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

MODELS = ("V100M32", "T4")
NODES = [
    Node(f"n{i}", 64000, 262144, 64000, 262144,
         tuple(GpuDevice(j, MODELS[i % 2]) for j in range(8)))
    for i in range(2)
]

NUMBER_NOISE = st.sampled_from(
    ["0", "0.0", "-0", "1", "1.0", "2", "8", "460", "1000", "1001", "-1", "1.5", "1e3", "1e30",
     "100000000", "inf", "-inf", "nan", "", " ", "abc", "0x10", "1_000", "12 ", "1e400"]
)
WHOLE = st.integers(min_value=0, max_value=2_000_000).map(str)


def _numbers() -> st.SearchStrategy[str]:
    return st.one_of(WHOLE, NUMBER_NOISE, st.floats(allow_nan=True).map(repr))


def _text() -> st.SearchStrategy[str]:
    return st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)


# column -> (well-formed values, anything); a cell is noisy with probability 1/5
POD_CELLS = {
    "name": (st.from_regex(r"p[0-9]{1,3}", fullmatch=True), _text()),
    "cpu_milli": (WHOLE, _numbers()),
    "memory_mib": (WHOLE, _numbers()),
    "num_gpu": (st.just("0"), _numbers()),  # well-formed GPU pairs: see GPU_PAIRS
    "gpu_milli": (st.just("0"), _numbers()),
    "gpu_spec": (st.sampled_from(["", "V100M32", "T4|V100M32", "T4"]), _text()),
    "qos": (st.sampled_from(["LS", "BE", "Burstable", "Guaranteed"]), _text()),
    "pod_phase": (st.sampled_from(["Running", "Pending", "Failed", "Succeeded"]), _text()),
    "creation_time": (WHOLE, _numbers()),
    "deletion_time": (st.just(""), _numbers()),
    "scheduled_time": (st.one_of(st.just(""), WHOLE), _numbers()),
}
GPU_PAIRS = st.sampled_from(
    [("0", "0"), ("1", "460"), ("1", "1000"), ("2", "1000"), ("8", "1000"), ("0.0", "0.0")]
)
NODE_CELLS = {
    "sn": (st.from_regex(r"n[0-9]{1,3}", fullmatch=True), _text()),
    "cpu_milli": (WHOLE, _numbers()),
    "memory_mib": (WHOLE, _numbers()),
    "gpu": (st.sampled_from(["2", "8"]), st.one_of(st.just("100000000"), _numbers())),
    "model": (st.sampled_from(["T4", "V100M32"]), _text()),
}


@st.composite
def csv_files(draw, cells: dict, required: tuple[str, ...]):
    """``(text, columns, data rows as dicts)``: a CSV with optional columns dropped, the
    columns shuffled, and noise that must not change what is loaded."""
    optional = [c for c in cells if c not in required]
    if optional:
        columns = list(required) + draw(st.lists(st.sampled_from(optional), unique=True))
    else:
        columns = list(required)
    columns = draw(st.permutations(columns))
    rows = []
    for i in range(draw(st.integers(0, 6))):
        row = {c: draw(cells[c][draw(st.integers(0, 7)) == 0]) for c in columns}
        for name_col in ("name", "sn"):  # well-formed names are unique (repeats: noise)
            if name_col in row and draw(st.integers(0, 3)):
                row[name_col] = f"{name_col}-{i}"
        if "num_gpu" in row and draw(st.integers(0, 4)):
            row["num_gpu"], row["gpu_milli"] = draw(GPU_PAIRS)
        rows.append(row)
    spaced = draw(st.booleans())  # "name, cpu_milli, ..." as some tools write it
    trailing = draw(st.booleans())  # a trailing comma on every data row
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([(" " if spaced and i else "") + c for i, c in enumerate(columns)])
    for row in rows:
        if draw(st.integers(0, 3)) == 0:  # a blank line or a row of separators before it
            buf.write("\n" if draw(st.booleans()) else "," * (len(columns) - 1) + "\n")
        writer.writerow([row[c] for c in columns] + ([""] if trailing else []))
    if draw(st.booleans()):
        buf.write("," * (len(columns) - 1) + "\n")  # a trailing row of commas
    return buf.getvalue(), columns, rows


def _assert_clear(err: TraceError, path: Path, known: set[str]) -> None:
    event("clear error")
    text = path.read_text(encoding="utf-8", errors="replace")
    n_lines = text.count("\n") + 1
    assert str(err).startswith(str(path))
    assert err.problems
    for p in err.problems:
        assert p.line is None or 1 <= p.line <= n_lines, p
        assert p.field is None or p.field in known, p
        assert p.message


def _num(text: str) -> float:
    return float(text.strip())


def _data_rows(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The rows that carry data: a row of empty or blank cells is a blank line."""
    return [r for r in rows if any(v.strip() for v in r.values())]


@SETTINGS
@given(csv_files(POD_CELLS, loaders.POD_COLUMNS))
def test_pod_lists_load_exactly_or_fail_clearly(tmp_path, generated):
    text, columns, rows = generated
    path = tmp_path / "pods.csv"
    path.write_text(text, encoding="utf-8")
    try:
        pods = loaders.load_pods(path, NODES)
    except TraceError as err:
        _assert_clear(err, path, set(POD_CELLS))
        return
    rows = _data_rows(rows)
    event("loaded")
    assert [p.name for p in pods] == [r["name"].strip() for r in rows]
    for pod, row in zip(pods, rows, strict=True):
        assert (pod.cpu_milli, pod.memory_mib) == (_num(row["cpu_milli"]),
                                                   _num(row["memory_mib"]))
        assert (pod.num_gpu, pod.gpu_milli) == (_num(row["num_gpu"]), _num(row["gpu_milli"]))
        assert (pod.num_gpu == 0) == (pod.gpu_milli == 0)
        assert pod.num_gpu <= 1 or pod.gpu_milli == MILLI_PER_GPU
        assert pod.cpu_milli <= loaders.MAX_CPU_MILLI
        assert pod.num_gpu <= loaders.MAX_GPUS_PER_NODE
        assert pod.gpu_spec <= set(MODELS)
        if "pod_phase" in columns:
            assert row["pod_phase"].strip() in loaders.POD_PHASES


@settings(SETTINGS, max_examples=30)
@given(csv_files(POD_CELLS, loaders.POD_COLUMNS))
def test_trace_spec_text_is_one_entry_per_loaded_pod(tmp_path, generated):
    text, columns, rows = generated
    (tmp_path / "nodes.csv").write_text(
        "sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,8,V100M32\nn1,64000,262144,8,T4\n"
    )
    path = tmp_path / "pods.csv"
    path.write_text(text, encoding="utf-8")
    try:
        trace = loaders.load_trace(path, tmp_path / "nodes.csv")
    except TraceError as err:
        _assert_clear(err, path, set(POD_CELLS))
        return
    event("loaded")
    expected = [r.get("gpu_spec", "").strip() for r in _data_rows(rows)]
    assert list(trace.gpu_spec_text) == expected
    assert loaders.raw_gpu_spec_text(path) == expected


@SETTINGS
@given(csv_files(NODE_CELLS, loaders.NODE_COLUMNS))
def test_node_lists_load_exactly_or_fail_clearly(tmp_path, generated):
    text, _columns, rows = generated
    path = tmp_path / "nodes.csv"
    path.write_text(text, encoding="utf-8")
    try:
        nodes = loaders.load_nodes(path)
    except TraceError as err:
        _assert_clear(err, path, set(NODE_CELLS))
        return
    rows = _data_rows(rows)
    event("loaded")
    assert [n.name for n in nodes] == [r["sn"].strip() for r in rows]
    for node, row in zip(nodes, rows, strict=True):
        assert node.cpu_milli == _num(row["cpu_milli"]) <= loaders.MAX_CPU_MILLI
        assert node.memory_mib == _num(row["memory_mib"]) <= loaders.MAX_MEMORY_MIB
        assert len(node.gpus) == _num(row["gpu"]) <= loaders.MAX_GPUS_PER_NODE
        assert node.gpu_model == row["model"].strip()


@SETTINGS
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_escape_as_another_exception(tmp_path, data):
    path = tmp_path / "pods.csv"
    path.write_bytes(b"name,cpu_milli,memory_mib,num_gpu,gpu_milli\n" + data)
    for load in (lambda: loaders.load_pods(path, NODES), lambda: loaders.load_nodes(path)):
        try:
            load()
        except TraceError as err:
            assert str(err).startswith(str(path))


@pytest.mark.parametrize("noise", ["", "\x00", '"open quote', "a" * 200_000])
def test_unparseable_text_is_a_trace_error(tmp_path, noise):
    path = tmp_path / "nodes.csv"
    path.write_text(f"sn,cpu_milli,memory_mib,gpu,model\nn0,1,1,0,\n{noise}\n")
    try:
        loaders.load_nodes(path)
    except TraceError as err:
        assert str(err).startswith(str(path))
