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
    "pod_series",
]

PACKAGED_GENAI = Path(__file__).resolve().parents[1] / "data" / "alibaba-genai-2026"
"""The GenAI subset shipped inside the package (GPU duty, GPU memory, latency, QPS)."""

PACKAGED_GAVEL = Path(__file__).resolve().parents[1] / "data" / "gavel"
"""Gavel's co-location throughputs shipped inside the package."""

STEP_SECONDS = 57.0
"""Sampling step of the GenAI trace."""


class TelemetryDataError(ValueError):
    """A telemetry file is missing, unreadable or lacks a required column (message names it)."""


@dataclass(frozen=True, slots=True)
class MetricFile:
    """One metric of the schema.

    Attributes:
        column: output column name.
        stem: file name without ``.csv``/``.csv.gz``.
        scale: factor applied to ``value`` (e.g. bytes -> MiB).
        required: the loader fails when the file is absent.
    """

    column: str
    stem: str
    scale: float
    required: bool


GENAI_METRICS: tuple[MetricFile, ...] = (
    MetricFile("gpu_milli", "pod_gpu_duty_cycle_anon", 10.0, True),
    MetricFile("gpu_memory_mib", "pod_gpu_memory_used_bytes_anon", 1.0 / 2**20, True),
    MetricFile("memory_pct", "pod_memory_util_anon", 100.0, False),
    MetricFile("latency_ms", "pipeline_inference_data_anon", 1.0, False),
    MetricFile("qps", "qps", 1.0, False),
)
"""The metric files :func:`load_genai` reads, with their unit conversions."""

_REQUIRED_COLUMNS = ("timestamp_anon", "value", "container_ip")


def _find(data_dir: Path, stem: str) -> Path | None:
    for suffix in (".csv.gz", ".csv"):
        path = data_dir / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None


def load_metric(path: Path, column: str, scale: float = 1.0) -> pd.DataFrame:
    """Read one metric file into ``pod, time, <column>`` rows.

    Args:
        path: a CSV (optionally gzipped) with columns ``timestamp_anon``, ``value`` and
            ``container_ip`` in any order (extra columns are ignored).
        column: name of the output value column.
        scale: factor applied to ``value``.

    Returns:
        Frame with columns ``pod`` (str), ``time`` (float s), ``column`` (float); rows without a
        pod id (``None``/``NULL``/empty) are dropped because they belong to no pod; duplicated
        ``(pod, time)`` samples are averaged.

    Raises:
        TelemetryDataError: the file cannot be parsed, a required column is missing, or a
            ``timestamp_anon``/``value`` cell is not a number (the message names file, line and
            column).
    """
    try:
        frame = pd.read_csv(path, dtype={"container_ip": "string"})
    except (OSError, ValueError, pd.errors.ParserError, EOFError) as exc:
        raise TelemetryDataError(f"{path}: cannot read as CSV: {exc}") from exc
    missing = [c for c in _REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise TelemetryDataError(
            f"{path}: missing column(s) {', '.join(missing)} "
            f"(has: {', '.join(map(str, frame.columns))})"
        )
    for name in ("timestamp_anon", "value"):
        numeric = pd.to_numeric(frame[name], errors="coerce")
        bad = numeric.isna() & frame[name].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise TelemetryDataError(
                f"{path}: line {row + 2}, column {name!r}: not a number: {frame[name].iloc[row]!r}"
            )
        frame[name] = numeric
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
        part = load_metric(path, metric.column, metric.scale)
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


def pod_series(frame: pd.DataFrame, column: str) -> dict[str, pd.DataFrame]:
    """Split a :func:`load_genai` frame into one time-sorted frame per pod.

    Pods whose ``column`` is entirely NaN are left out.

    Raises:
        TelemetryDataError: ``column`` is not in the frame.
    """
    if column not in frame.columns:
        raise TelemetryDataError(f"telemetry frame has no column {column!r}")
    out: dict[str, pd.DataFrame] = {}
    for pod, group in frame.groupby("pod", sort=True):
        if group[column].notna().any():
            out[str(pod)] = group.reset_index(drop=True)
    return out
