"""Helpers shared by the CLI command modules: input paths, errors (exit 2), output, tables."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import Executor
from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from cohabit.predictors.telemetry_data import TelemetryDataError

__all__ = [
    "EXECUTOR_HELP",
    "SCHEDULER_HELP",
    "console",
    "data_dir",
    "fail",
    "fan_out_on",
    "genai_frame",
    "out_dir",
    "table",
]

EXECUTOR_HELP = ("local: run the per-workload back-tests in this process (default); dask: on "
                 "the Dask cluster at --scheduler (dask.distributed), identical results.")
SCHEDULER_HELP = "--executor dask: the Dask scheduler's address, e.g. tcp://10.0.0.5:8786."


def data_dir(data: Path | None, packaged: Path) -> Path:
    """``data``, or the copy shipped in the package when ``data`` is None (said on stderr);
    exits 2 if neither exists."""
    if data is not None:
        return data
    if not packaged.exists():
        fail(f"no --data given and the packaged copy {packaged} is missing; pass --data DIR")
    Console(stderr=True).print(f"using the data shipped with cohabit: {packaged}")
    return packaged


def genai_frame(data: Path) -> pd.DataFrame:
    """The GenAI telemetry frame of ``data``; exits 2 with the loader's message (file, line,
    field) when it cannot be read."""
    from cohabit.predictors.telemetry_data import load_genai

    try:
        return load_genai(data)
    except TelemetryDataError as exc:
        fail(str(exc))


def console() -> Console:
    """A console for tables: the terminal's width, or 180 columns when piped."""
    out = Console()
    return out if out.is_terminal else Console(width=180)


def fail(message: str) -> None:
    """Print ``error: message`` on stderr and exit with code 2 (bad input)."""
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code=2)


def out_dir(out: Path) -> Path:
    """Create ``out`` (and parents) or exit 2 naming it."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create output directory {out}: {exc}")
    return out


def table(title: str, frame: pd.DataFrame, columns: list[str], fmt: dict[str, str]) -> Table:
    """A rich table of ``frame[columns]``; ``fmt`` maps a column to a format spec (NaN as is)."""
    out = Table(title=title)
    for c in columns:
        left = c in ("resource", "method", "gpu", "series", "pod")
        out.add_column(c, justify="left" if left else "right")
    for _, row in frame.iterrows():
        cells = []
        for c in columns:
            v = row[c]
            cells.append(format(v, fmt[c]) if c in fmt and v == v else str(v))
        out.add_row(*cells)
    return out


@contextlib.contextmanager
def fan_out_on(executor: str, scheduler: str | None) -> Iterator[Executor | None]:
    """The executor of ``--executor``/``--scheduler`` (:func:`cohabit.execution.executor`):
    ``None`` for local; exits 2 on a bad combination and 1 when the Dask cluster cannot be
    used (unreachable, no worker)."""
    from cohabit.execution import Execution, ExecutionError
    from cohabit.execution import executor as open_executor

    try:
        execution = Execution(executor, scheduler)
    except ValueError as exc:
        fail(str(exc))
    try:
        with open_executor(execution) as pool:
            yield pool
    except ExecutionError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=1) from None
