"""The files of a simulator matrix: tidy CSVs, ``summary.json`` and the PNG plots, written all
or nothing (staged in a hidden folder and moved in when every file was written)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from cohabit.simulator.report.summaries import (
    ALLOC,
    FIDELITY_RANGE,
    comparison,
    fgd_summary,
    max_deviation,
    pending_summary,
    published_curves,
    replay_summary,
)
from cohabit.simulator.results import SimulationMode

if TYPE_CHECKING:
    from cohabit.simulator.matrix import MatrixResult

__all__ = ["staged_dir", "write_outputs"]


def write_outputs(
    result: MatrixResult,
    out_dir: str | Path,
    *,
    meta: dict[str, Any] | None = None,
    published: pd.DataFrame | None = None,
    plots: bool = True,
) -> list[Path]:
    """Write a matrix's files into ``out_dir`` (created if needed).

    ``--mode fgd``: ``curves.csv`` (every run's curve, tidy,
    :data:`~cohabit.simulator.results.FGD_CURVE_COLUMNS`), ``runs.csv`` (one row per run),
    ``summary.csv`` (:func:`fgd_summary`), ``comparison.csv`` (:func:`comparison`, when a
    pod list was published), ``max_deviation.csv`` (:func:`max_deviation`), ``summary.json``
    and the PNGs of :func:`plot_fgd`.

    ``--mode replay``: ``series.csv`` (every run's samples,
    :data:`~cohabit.simulator.results.REPLAY_SERIES_COLUMNS`), ``pending.csv``,
    ``runs.csv``, ``summary.csv`` (:func:`replay_summary`), ``pending_summary.csv``,
    ``summary.json`` and the PNGs of :func:`plot_replay`.

    All files are written into a hidden staging folder inside ``out_dir`` first and moved
    into ``out_dir`` only when every one of them was written: a failure (a full disk, a plot
    that cannot be drawn) leaves nothing of this run behind.

    Args:
        meta: extra top-level entries for ``summary.json`` (command, trace summary, ...).

    Returns:
        Paths written (in ``out_dir``), in order.

    Raises:
        OSError: ``out_dir`` cannot be created or written (nothing of this run is left).
    """
    final = Path(out_dir)
    final.mkdir(parents=True, exist_ok=True)
    with staged_dir(final) as out:
        written = _write_all(result, out, meta=meta, published=published, plots=plots)
    return [final / p.name for p in written]


@contextlib.contextmanager
def staged_dir(out_dir: Path) -> Iterator[Path]:
    """A fresh hidden folder inside ``out_dir`` whose files are moved into ``out_dir`` when
    the block ends normally; on any exception the folder and its files are removed.

    Raises:
        OSError: the folder cannot be made, or a file cannot be moved.
    """
    stage = Path(tempfile.mkdtemp(prefix=".cohabit-partial-", dir=out_dir))
    try:
        yield stage
        for path in sorted(stage.iterdir()):
            os.replace(path, out_dir / path.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _write_all(
    result: MatrixResult,
    out: Path,
    *,
    meta: dict[str, Any] | None,
    published: pd.DataFrame | None,
    plots: bool,
) -> list[Path]:
    """Write every file of :func:`write_outputs` into ``out``; return their paths."""
    doc: dict[str, Any] = {"mode": result.mode, "workers": result.workers}
    doc["wall_s"] = round(float(result.wall_s), 4)
    if meta:
        doc.update(meta)
    if result.mode == SimulationMode.FGD:
        written = _fgd_files(result, out, doc, published=published, plots=plots)
    else:
        written = _replay_files(result, out, doc, plots=plots)
    json_path = out / "summary.json"
    doc["files"] = [p.name for p in written] + [json_path.name]
    json_path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return [*written, json_path]


def _fgd_files(
    result: MatrixResult,
    out: Path,
    doc: dict[str, Any],
    *,
    published: pd.DataFrame | None,
    plots: bool,
) -> list[Path]:
    """``--mode fgd``'s CSVs and plots into ``out``; fills ``doc``'s ``results`` and
    ``published_comparison``."""
    pub = published_curves() if published is None else published
    summary = fgd_summary(result, pub)
    cmp = comparison(result.curves, pub)
    worst = max_deviation(summary)
    written = [
        _csv(result.curves, out / "curves.csv"),
        _csv(result.runs, out / "runs.csv"),
        _csv(summary, out / "summary.csv"),
    ]
    if len(cmp):
        written.append(_csv(cmp, out / "comparison.csv"))
    if len(worst):
        written.append(_csv(worst, out / "max_deviation.csv", index=True))
    doc["results"] = _records(summary)
    if len(cmp):
        alloc = cmp[
            (cmp["metric"] == ALLOC) & cmp["arrived_gpu_demand_pct"].between(*FIDELITY_RANGE)
        ]
        doc["published_comparison"] = {
            "source": "cohabit/data/fgd-published/fgd_expected_results_summary.csv",
            "max_abs_deviation_gpu_alloc_pct_50_130": _rounded(alloc["deviation"].abs().max())
            if len(alloc)
            else None,
            "points": _records(cmp),
        }
    if plots:
        from cohabit.simulator.report.plots import plot_fgd

        written += plot_fgd(result.curves, out, pub)
    return written


def _replay_files(
    result: MatrixResult, out: Path, doc: dict[str, Any], *, plots: bool
) -> list[Path]:
    """``--mode replay``'s CSVs and plots into ``out``; fills ``doc``'s ``results`` and
    ``pending``."""
    summary = replay_summary(result)
    pend = pending_summary(result)
    written = [
        _csv(result.curves, out / "series.csv"),
        _csv(result.pending, out / "pending.csv"),
        _csv(result.runs, out / "runs.csv"),
        _csv(summary, out / "summary.csv"),
        _csv(pend, out / "pending_summary.csv"),
    ]
    doc["results"] = _records(summary)
    doc["pending"] = _records(pend)
    if plots:
        from cohabit.simulator.report.plots import plot_replay

        written += plot_replay(result.curves, out)
    return written


def _csv(df: pd.DataFrame, path: Path, *, index: bool = False) -> Path:
    df.to_csv(path, index=index)
    return path


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """``df``'s rows as JSON values: floats to 4 decimals, NaN and infinities as null."""
    return json.loads(df.to_json(orient="records", double_precision=4))


def _rounded(value: float) -> float | None:
    """``value`` to 4 decimals, None for NaN or an infinity (JSON has neither)."""
    v = float(value)
    return round(v, 4) if math.isfinite(v) else None
