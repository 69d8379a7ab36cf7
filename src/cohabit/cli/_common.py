"""Helpers shared by the CLI command modules: input paths, option checks and errors (exit 2),
output written all or nothing, tables."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Annotated, Any, NoReturn

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cohabit.predictors.telemetry_data import TelemetryDataError

__all__ = [
    "EXECUTOR_HELP",
    "MAX_HORIZONS",
    "SCHEDULER_HELP",
    "ExecutorOption",
    "SchedulerOption",
    "active_resources",
    "check_horizons",
    "console",
    "data_dir",
    "execution",
    "fail",
    "fan_out_on",
    "genai_frame",
    "number",
    "out_dir",
    "port",
    "staged",
    "table",
]

MAX_HORIZONS = 10_000
"""Most horizons one pod's history may be cut into (its time span / ``--horizon-h``). The
rolling origin walks every horizon (an empty one costs a pass over the pod's samples, one
with samples refits every candidate operating point: the packaged data's 23 hourly horizons
per pod take about a minute on a 2-core machine), so a tiny horizon over a long span looks
like a hang."""

EXECUTOR_HELP = ("local: run the per-workload back-tests in this process (default); dask: on "
                 "the Dask cluster at --scheduler (dask.distributed), identical results.")
SCHEDULER_HELP = "--executor dask: the Dask scheduler's address, e.g. tcp://10.0.0.5:8786."

ExecutorOption = Annotated[str, typer.Option("--executor", help=EXECUTOR_HELP)]
"""``--executor`` of the back-testing commands (default ``"local"`` in the signature)."""
SchedulerOption = Annotated[str | None, typer.Option("--scheduler", help=SCHEDULER_HELP)]
"""``--scheduler`` of the back-testing commands (default ``None`` in the signature)."""


def data_dir(data: Path | None, packaged: Path) -> Path:
    """``data``, or the copy shipped in the package when ``data`` is None (said on stderr);
    exits 2 if neither exists."""
    if data is not None:
        return data
    if not packaged.exists():
        fail(f"no --data given and the packaged copy {packaged} is missing; pass --data DIR")
    Console(stderr=True).print(
        f"using the data shipped with cohabit: {packaged}", markup=False, highlight=False
    )
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


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr (the message verbatim: no markup, no wrapping)
    and exit with code 2 (bad input)."""
    Console(stderr=True, soft_wrap=True).print(
        f"[bold red]error:[/] {escape(message)}", highlight=False
    )
    raise typer.Exit(code=2)


def number(
    value: float,
    option: str,
    *,
    above: float | None = None,
    at_least: float | None = None,
    below: float | None = None,
    at_most: float | None = None,
) -> float:
    """``value`` of ``option`` if it is finite and within the bounds given; else exit 2.

    ``above``/``below`` are open bounds, ``at_least``/``at_most`` closed ones; the message
    names the option and the range, e.g.
    ``--start must be > 0 and < 1 (a finite number), got 2``.
    """
    parts = []
    if above is not None:
        parts.append(f"> {above:g}")
    if at_least is not None:
        parts.append(f">= {at_least:g}")
    if below is not None:
        parts.append(f"< {below:g}")
    if at_most is not None:
        parts.append(f"<= {at_most:g}")
    ok = math.isfinite(value)
    ok = ok and (above is None or value > above) and (at_least is None or value >= at_least)
    ok = ok and (below is None or value < below) and (at_most is None or value <= at_most)
    if not ok:
        bounds = " and ".join(parts) + " (a finite number)" if parts else "a finite number"
        fail(f"{option} must be {bounds}, got {value:g}")
    return value


def port(value: int | None, option: str) -> int | None:
    """``value`` of a TCP port ``option`` (None passes); exit 2 unless within 1..65535."""
    if value is not None and not 1 <= value <= 65535:
        fail(f"{option} must be a TCP port within 1..65535, got {value}")
    return value


def check_horizons(frame: pd.DataFrame, horizon_s: float, option: str = "--horizon-h") -> None:
    """Exit 2 when some pod's history spans more than :data:`MAX_HORIZONS` horizons."""
    if frame.empty:
        return
    span = frame.groupby("pod")["time"].agg(lambda t: float(t.max() - t.min()))
    longest = float(span.max())
    if longest / horizon_s > MAX_HORIZONS:
        fail(
            f"{option} {horizon_s / 3600:g}: pod {span.idxmax()}'s history spans "
            f"{longest / 3600:,.1f} h, {longest / horizon_s:,.0f} horizons (at most "
            f"{MAX_HORIZONS:,}, each refits every candidate); use {option} "
            f"{longest / MAX_HORIZONS / 3600:.3g} or more"
        )


def active_resources(frame: pd.DataFrame, resources: Sequence[str]) -> list[str]:
    """The ``resources`` with at least one sample above 0; says on stderr which are left
    out (an idle fleet: every sample 0 or missing) and exits 2 when none is left."""
    active = [r for r in resources if r in frame.columns and bool((frame[r] > 0).any())]
    idle = [r for r in resources if r not in active]
    if not active:
        fail(
            f"every sample of {', '.join(resources)} is 0 or missing (an idle fleet): "
            "nothing to size"
        )
    for r in idle:
        Console(stderr=True).print(
            f"note: every sample of {r} is 0 or missing (idle): left out", markup=False,
            highlight=False,
        )
    return active


def out_dir(out: Path) -> Path:
    """Create ``out`` (and parents) or exit 2 naming it."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create output directory {out}: {exc}")
    return out


@contextlib.contextmanager
def staged(out: Path) -> Iterator[Path]:
    """Write a command's files into a staging folder inside ``out``; they move into ``out``
    only when the block ends normally, so a failure leaves no partial result. An
    ``OSError`` (full disk, no permission) exits 1 saying nothing was written."""
    from cohabit.simulator.report import staged_dir

    try:
        with staged_dir(out_dir(out)) as stage:
            yield stage
    except OSError as exc:
        Console(stderr=True, soft_wrap=True).print(
            f"[bold red]error:[/] cannot write to {escape(str(out))} ({escape(str(exc))}); "
            "nothing written", highlight=False,
        )
        raise typer.Exit(code=1) from None


def table(title: str, frame: pd.DataFrame, columns: list[str], fmt: dict[str, str]) -> Table:
    """A rich table of ``frame[columns]``; ``fmt`` maps a column to a format spec (NaN as is).
    Cell text is escaped: a pod name such as ``[red]`` is shown, not read as markup."""
    out = Table(title=title)
    for c in columns:
        left = c in ("resource", "method", "gpu", "series", "pod")
        out.add_column(c, justify="left" if left else "right")
    for _, row in frame.iterrows():
        cells = []
        for c in columns:
            v = row[c]
            cells.append(format(v, fmt[c]) if c in fmt and v == v else escape(str(v)))
        out.add_row(*cells)
    return out


def execution(executor: str, scheduler: str | None):
    """The :class:`cohabit.execution.Execution` of ``--executor``/``--scheduler``; exits 2
    naming the option on a bad combination (checked before any data is read)."""
    from cohabit.execution import Execution

    try:
        return Execution(executor, scheduler)
    except ValueError as exc:
        fail(str(exc))


@contextlib.contextmanager
def fan_out_on(run_on: Any) -> Iterator[Executor | None]:
    """The executor the back-tests fan out on (:func:`cohabit.execution.executor`): ``None``
    for local; exits 1 when the Dask cluster cannot be used (unreachable, no worker)."""
    from cohabit.execution import ExecutionError
    from cohabit.execution import executor as open_executor

    try:
        with open_executor(run_on) as pool:
            yield pool
    except ExecutionError as exc:
        Console(stderr=True, soft_wrap=True).print(
            f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(code=1) from None
