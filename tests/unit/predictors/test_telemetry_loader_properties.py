"""Property tests of the telemetry loaders (GenAI-schema CSV, Gavel JSON): every generated
file ends in a frame of finite, in-range numbers or a clear error naming the file.

``inf`` usage, negative usage and 1e300 used to pass the GenAI loader and end in a traceback
or a negative peak / a 2e301 request in ``cohabit recommend``; a malformed Gavel entry could
escape as ``AttributeError`` or ``OverflowError``.
"""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from cohabit.predictors.interference import load_gavel
from cohabit.predictors.telemetry_data import (
    GENAI_METRICS,
    MAX_TIME_S,
    TelemetryDataError,
    load_genai,
    load_metric,
)

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

VALUE = st.one_of(
    st.floats(min_value=0, max_value=100).map(repr),
    st.sampled_from(["0", "100", "100.5", "-0.1", "-50", "inf", "-inf", "nan", "1e300", "",
                     "abc", "1e400", " 7 "]),
    st.floats().map(repr),
)
TIME = st.one_of(
    st.integers(min_value=0, max_value=10**10).map(str),
    st.sampled_from(["", "inf", "1e13", "-1e13", "x", "nan"]),
)
POD = st.one_of(st.sampled_from(["a", "b", "", "None", "NULL"]), st.text(max_size=6))


@st.composite
def metric_files(draw):
    columns = draw(st.permutations(["timestamp_anon", "value", "container_ip"]))
    if draw(st.integers(0, 9)) == 0:
        columns = columns[:2]  # a required column missing
    cells = {"timestamp_anon": TIME, "value": VALUE, "container_ip": POD}
    rows = draw(st.lists(st.fixed_dictionaries({c: cells[c] for c in columns}), max_size=8))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        if draw(st.integers(0, 5)) == 0:
            buf.write("\n")
        writer.writerow([row[c] for c in columns])
    return buf.getvalue()


@SETTINGS
@given(metric_files())
def test_metric_files_give_finite_in_range_values_or_a_clear_error(tmp_path, text):
    path = tmp_path / "pod_gpu_duty_cycle_anon.csv"
    path.write_text(text, encoding="utf-8")
    try:
        frame = load_metric(path, "gpu_milli", 10.0, max_value=100.0)
    except TelemetryDataError as err:
        event("clear error")
        assert str(err).startswith(str(path))
        return
    event("loaded")
    assert list(frame.columns) == ["pod", "time", "gpu_milli"]
    assert np.isfinite(frame["time"]).all() and (frame["time"].abs() <= MAX_TIME_S).all()
    values = frame["gpu_milli"].to_numpy(float)
    assert np.isfinite(values).all() and (values >= 0).all() and (values <= 1000).all()


@SETTINGS
@given(metric_files(), metric_files())
def test_genai_directories_load_or_fail_naming_a_file(tmp_path, duty, memory):
    (tmp_path / f"{GENAI_METRICS[0].stem}.csv").write_text(duty, encoding="utf-8")
    (tmp_path / f"{GENAI_METRICS[1].stem}.csv").write_text(memory, encoding="utf-8")
    try:
        frame = load_genai(tmp_path)
    except TelemetryDataError as err:
        assert str(err).startswith(str(tmp_path))
        return
    for column in ("gpu_milli", "gpu_memory_mib"):
        values = frame[column].dropna().to_numpy(float)
        assert np.isfinite(values).all() and (values >= 0).all()


@SETTINGS
@given(st.binary(max_size=200), st.booleans())
def test_arbitrary_bytes_are_a_clear_error(tmp_path, data, gz):
    path = tmp_path / ("m.csv.gz" if gz else "m.csv")
    path.write_bytes(data)
    try:
        load_metric(path, "v")
    except TelemetryDataError as err:
        assert str(err).startswith(str(path))


JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=12,
)
GOOD_KEY = st.sampled_from(["('A', 1)", "('B', 1)", "('C (batch 16)', 1)", "('A', 2)"])
BAD_KEY = st.one_of(
    st.sampled_from(["('A', 0)", "('A', 1.5)", "(1, 1)", "('A',)", "[1]", "((((((",
                     "('A', 10**9999)", "('A', True)"]),
    st.text(max_size=10),
)
GOOD_TPUT = st.floats(min_value=0, max_value=1e3)
BAD_TPUT = st.one_of(st.floats(), st.integers(-5, 100), st.text(max_size=3), st.none(),
                     st.booleans())


@st.composite
def gavel_documents(draw):
    if draw(st.integers(0, 4)) == 0:
        return draw(JSON)

    def pick(good, bad):
        return draw(bad if draw(st.integers(0, 11)) == 0 else good)

    entries = {}
    for _ in range(draw(st.integers(1, 3))):
        entry = {"null": pick(GOOD_TPUT, BAD_TPUT)}
        for _ in range(draw(st.integers(0, 3))):
            pair = [pick(GOOD_TPUT, BAD_TPUT), pick(GOOD_TPUT, BAD_TPUT)]
            entry[pick(GOOD_KEY, BAD_KEY)] = pick(st.just(pair), JSON)
        entries[pick(GOOD_KEY, BAD_KEY)] = pick(st.just(entry), JSON)
    return {"v100": entries}


@SETTINGS
@given(gavel_documents())
@example({"v100": {"('A', 1)": {"null": 2.2250738585e-313, "('A', 1)": [1.0, 0.0]}}})
def test_gavel_documents_load_or_fail_clearly(tmp_path, doc):
    path = tmp_path / "physical_cluster_throughputs.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    try:
        pairs = load_gavel(path)
    except TelemetryDataError as err:
        event("clear error")
        assert str(err).startswith(str(path))
        return
    event("loaded")
    assert len(pairs) > 0
    assert all(math.isfinite(f) and f >= 0 for f in pairs["fraction"])
    assert (pairs["scale"] >= 1).all()
