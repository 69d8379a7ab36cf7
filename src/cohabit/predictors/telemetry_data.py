"""Load per-pod telemetry in the Alibaba GenAI 2026 schema (GenTD26) into one wide frame.

Source: alibaba/clusterdata ``cluster-trace-v2026-GenAI/`` (Lin et al., "Understanding
Diffusion Model Serving in Production", SoCC '25). Every metric file holds rows
``timestamp_anon, value, container_ip`` (column order varies, so columns are read by name);
``container_ip`` (an MD5 hash) identifies the pod and joins the files. Samples are 57 s apart.

The loader returns a long-by-pod, wide-by-metric :class:`pandas.DataFrame` with columns

* ``pod`` (str), ``time`` (float, seconds),
* ``gpu_milli`` (GPU duty cycle in milli-GPU: percent x 10),
* ``gpu_memory_mib`` (GPU memory used, MiB),
* ``memory_pct`` (container memory utilisation, percent of its limit),
* ``latency_ms`` (end-to-end pipeline inference latency, ms), ``qps`` (requests/s),

a metric being NaN where its file has no sample for that pod and time. The same loader reads
any directory holding files of the same schema (plain ``.csv`` or ``.csv.gz``), so the
evaluation runs unchanged on other telemetry.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "GENAI_METRICS",
    "MetricFile",
    "TelemetryDataError",
    "load_genai",
    "load_metric",
]

PACKAGED_GENAI = Path(__file__).resolve().parents[1] / "data" / "alibaba-genai-2026"
"""The GenAI subset shipped inside the package (GPU duty, GPU memory, latency, QPS)."""

PACKAGED_GAVEL = Path(__file__).resolve().parents[1] / "data" / "gavel"
"""Gavel's co-location throughputs shipped inside the package."""

STEP_SECONDS = 57.0
"""Sampling step of the GenAI trace."""


MAX_TIME_S = 1e12
"""Largest ``|timestamp_anon|`` accepted (about 31,700 years in seconds): beyond it a float
second is no longer exact to the millisecond and the rolling-origin loops, which step by
the horizon, would not end."""


class TelemetryDataError(ValueError):
    """A telemetry file is missing, unreadable, lacks a required column or holds a value
    that is not a finite number in its range (the message names the file, line and column)."""


@dataclass(frozen=True, slots=True)
class MetricFile:
    """One metric of the schema.

    Attributes:
        column: output column name.
        stem: file name without ``.csv``/``.csv.gz``.
        scale: factor applied to ``value`` (e.g. bytes -> MiB).
        required: the loader fails when the file is absent.
        max_value: largest ``value`` accepted, in the file's unit (before ``scale``); every
            value must also be finite and >= 0.
    """

    column: str
    stem: str
    scale: float
    required: bool
    max_value: float = 1e12


GENAI_METRICS: tuple[MetricFile, ...] = (
    MetricFile("gpu_milli", "pod_gpu_duty_cycle_anon", 10.0, True, max_value=100.0),
    MetricFile(
        "gpu_memory_mib", "pod_gpu_memory_used_bytes_anon", 1.0 / 2**20, True,
        max_value=float(2**50),
    ),
    MetricFile("memory_pct", "pod_memory_util_anon", 100.0, False, max_value=100.0),
    MetricFile("latency_ms", "pipeline_inference_data_anon", 1.0, False, max_value=1e9),
    MetricFile("qps", "qps", 1.0, False, max_value=1e9),
)
"""The metric files :func:`load_genai` reads, with their unit conversions and ranges: GPU
duty cycle 0..100 %, GPU memory up to 1 PiB, memory utilisation 0..100, latency up to
1e9 ms (11.6 days), QPS up to 1e9."""

_REQUIRED_COLUMNS = ("timestamp_anon", "value", "container_ip")


def _find(data_dir: Path, stem: str) -> Path | None:
    for suffix in (".csv.gz", ".csv"):
        path = data_dir / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None


def load_metric(
    path: Path, column: str, scale: float = 1.0, max_value: float = 1e12
) -> pd.DataFrame:
    """Read one metric file into ``pod, time, <column>`` rows.

    Args:
        path: a CSV (optionally gzipped) with columns ``timestamp_anon``, ``value`` and
            ``container_ip`` in any order (extra columns are ignored).
        column: name of the output value column.
        scale: factor applied to ``value``.
        max_value: largest ``value`` accepted (file units).

    Returns:
        Frame with columns ``pod`` (str), ``time`` (float s), ``column`` (float); rows without a
        pod id (``None``/``NULL``/empty) are dropped because they belong to no pod; duplicated
        ``(pod, time)`` samples are averaged.

    Raises:
        TelemetryDataError: the file cannot be parsed, a required column is missing, a
            ``timestamp_anon``/``value`` cell is not a number, not finite, a timestamp
            beyond :data:`MAX_TIME_S`, or a value negative or above ``max_value`` (the
            message names file, line and column, and how many more cells are bad).
    """
    try:
        frame = pd.read_csv(path, dtype={"container_ip": "string"}, skip_blank_lines=False)
    except (OSError, ValueError, pd.errors.ParserError, EOFError, zlib.error) as exc:
        raise TelemetryDataError(f"{path}: cannot read as CSV: {exc}") from exc
    missing = [c for c in _REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise TelemetryDataError(
            f"{path}: missing column(s) {', '.join(missing)} "
            f"(has: {', '.join(map(str, frame.columns))})"
        )
    for name, lo, hi in (("timestamp_anon", -MAX_TIME_S, MAX_TIME_S), ("value", 0.0, max_value)):
        frame[name] = _checked_numbers(path, frame[name], name, lo, hi)
    pods = frame["container_ip"].astype("string").str.strip()
    keep = pods.notna() & ~pods.isin(["", "None", "NULL", "null", "nan"])
    keep &= frame["timestamp_anon"].notna() & frame["value"].notna()
    out = pd.DataFrame(
        {
            "pod": pods[keep].astype(str).to_numpy(),
            "time": frame.loc[keep, "timestamp_anon"].to_numpy(dtype=float),
            column: frame.loc[keep, "value"].to_numpy(dtype=float) * scale,
        }
    )
    return out.groupby(["pod", "time"], as_index=False, sort=True)[column].mean()


def _checked_numbers(path: Path, cells: pd.Series, name: str, lo: float, hi: float) -> pd.Series:
    """``cells`` as floats (empty cells NaN); raise naming the first bad cell's line.

    Line numbers count the header as line 1 (blank lines are kept as rows when reading, so
    they stay exact).
    """
    numeric = pd.to_numeric(cells, errors="coerce").astype(float)
    checks = (
        (numeric.isna() & cells.notna(), "not a number"),
        (numeric.notna() & ~np.isfinite(numeric), "not a finite number"),
        (np.isfinite(numeric) & ((numeric < lo) | (numeric > hi)), f"outside {lo:g}..{hi:g}"),
    )
    for bad, what in checks:
        if bad.any():
            rows = np.flatnonzero(bad.to_numpy())
            more = f" (and {len(rows) - 1} more such cells)" if len(rows) > 1 else ""
            cell = cells.iloc[int(rows[0])]
            shown = f"{cell:g}" if isinstance(cell, (float, np.floating)) else repr(str(cell))
            raise TelemetryDataError(
                f"{path}: line {int(rows[0]) + 2}, column {name!r}: {what}: {shown}{more}"
            )
    return numeric


def load_genai(
    data_dir: str | Path,
    metrics: Iterable[MetricFile] = GENAI_METRICS,
) -> pd.DataFrame:
    """Load a GenAI-schema telemetry directory into one frame (see the module docstring).

    Args:
        data_dir: directory holding the metric files (``<stem>.csv`` or ``<stem>.csv.gz``).
        metrics: which metric files to read.

    Returns:
        Frame sorted by ``pod, time`` with ``pod``, ``time`` and one column per metric; pods
        are those with at least one sample of a required metric.

    Raises:
        TelemetryDataError: ``data_dir`` is not a directory, a required metric file is absent,
            or a file is malformed (see :func:`load_metric`).
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise TelemetryDataError(f"{data_dir}: telemetry directory does not exist")
    merged: pd.DataFrame | None = None
    optional: list[pd.DataFrame] = []
    for metric in metrics:
        path = _find(data_dir, metric.stem)
        if path is None:
            if metric.required:
                raise TelemetryDataError(
                    f"{data_dir}: required metric file {metric.stem}.csv[.gz] not found "
                    f"(column {metric.column!r})"
                )
            continue
        part = load_metric(path, metric.column, metric.scale, metric.max_value)
        if metric.required:
            merged = part if merged is None else merged.merge(part, on=["pod", "time"], how="outer")
        else:
            optional.append(part)
    if merged is None:
        raise TelemetryDataError(f"{data_dir}: no required metric given")
    for part in optional:
        merged = merged.merge(part, on=["pod", "time"], how="left")
    for metric in metrics:
        if metric.column not in merged.columns:
            merged[metric.column] = np.nan
    return merged.sort_values(["pod", "time"], kind="stable").reset_index(drop=True)

