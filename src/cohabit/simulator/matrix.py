"""Run the policy x trace x seed matrix of simulator experiments in parallel worker processes.

Each cell is one independent run of an experiment loop
(:func:`cohabit.simulator.fgd.run_fgd` for ``--mode fgd``,
:func:`cohabit.simulator.replay.run_replay` for ``--mode replay``). Cells go to a
:class:`concurrent.futures.ProcessPoolExecutor` (one process per core by default); the
traces are shipped to each worker once, through the pool initializer, not with every cell.
A rich progress bar follows the cells as they finish. Results come back as tidy frames
(see :mod:`cohabit.simulator.results`) concatenated over all cells, sorted by workload,
policy and seed so the output does not depend on completion order.

With ``execution=Execution("dask", "tcp://HOST:8786")`` (``--executor dask``) the cells go to
a Dask cluster through ``dask.distributed`` instead: each workload's trace is scattered to
every worker once (``Client.scatter(broadcast=True)``), each cell is one task, and a cell
whose worker dies is re-run by the scheduler on another worker. The cells run the same
function with the same inputs, so the frames are identical to a local run's.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cohabit.execution import Execution, ExecutionError, dask_client, dask_workers
from cohabit.model import Node, Pod
from cohabit.placement import TypicalPods, typical_pods
from cohabit.simulator.results import (
    CONTENDED_SERIES_COLUMNS,
    FGD_CURVE_COLUMNS,
    PENDING_COLUMNS,
    REPLAY_SERIES_COLUMNS,
    FgdRunResult,
    ReplayRunResult,
    SimulationMode,
)

if TYPE_CHECKING:  # imported lazily where contended cells run
    from cohabit.simulator.contended import ContendedSetup

__all__ = ["MODES", "Cell", "MatrixError", "MatrixResult", "cells", "run_matrix"]

MODES = tuple(m.value for m in SimulationMode)
"""Experiment modes (:class:`~cohabit.simulator.results.SimulationMode` values): the FGD
paper's one-pass inflation method, or time-driven replay."""


@dataclass(frozen=True)
class Cell:
    """One run of the matrix.

    Attributes:
        mode: :class:`~cohabit.simulator.results.SimulationMode` (``"fgd"`` or ``"replay"``;
            a plain string of its value is converted).
        workload: pod list name; a key of the ``traces`` given to :func:`run_matrix`.
        policy: placement policy registry name (``cohabit.placement.POLICIES``).
        seed: random seed of the run.
        tune: inflation factor of ``--mode fgd`` (ignored by replay).
        sample_every_s: replay sampling period, seconds (``None``: the loop's default).
        rebind: simulate-then-rebind (``--rebind``): pods that fit nowhere get a move.
        contention: replay with contention (``--contention``; ``None`` = none).
        slice_n, slice_offset: replay on ``nodes[slice_offset::slice_n]`` (contended runs).
        compress: replay time compression (arrivals at ``creation_time / compress``).

    Raises:
        ValueError: ``mode`` is not a :class:`SimulationMode` value.
    """

    mode: SimulationMode
    workload: str
    policy: str
    seed: int
    tune: float = 1.3
    sample_every_s: float | None = None
    rebind: bool = False
    contention: str | None = None
    slice_n: int = 1
    slice_offset: int = 0
    compress: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", SimulationMode.coerce(self.mode, "Cell.mode"))

    @property
    def label(self) -> str:
        """Short text for the progress bar, e.g. ``"fgd · default · seed 42"``."""
        short = self.workload.removeprefix("openb_pod_list_")
        return f"{self.policy} · {short} · seed {self.seed}"


def cells(
    mode: SimulationMode | str,
    workloads: Sequence[str],
    policies: Sequence[str],
    seeds: Sequence[int],
    *,
    tune: float = 1.3,
    sample_every_s: float | None = None,
    **options: object,
) -> list[Cell]:
    """The full matrix, workload-major then policy then seed (``options``: the other
    :class:`Cell` fields, the same for every cell).

    Raises:
        ValueError: unknown mode, or an empty axis.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    for axis, values in (("workloads", workloads), ("policies", policies), ("seeds", seeds)):
        if not values:
            raise ValueError(f"no {axis} to run")
    return [
        Cell(mode, w, p, s, tune, sample_every_s, **options)  # type: ignore[arg-type]
        for w, p, s in itertools.product(workloads, policies, seeds)
    ]


@dataclass(frozen=True)
class MatrixResult:
    """Everything one matrix produced.

    Attributes:
        mode: :class:`~cohabit.simulator.results.SimulationMode` of the matrix's cells.
        curves: ``fgd``: :data:`~cohabit.simulator.results.FGD_CURVE_COLUMNS` rows of every
            run; ``replay``: :data:`~cohabit.simulator.results.REPLAY_SERIES_COLUMNS` rows.
        pending: ``replay``: :data:`~cohabit.simulator.results.PENDING_COLUMNS` rows (empty
            for ``fgd``).
        runs: one row per run: ``workload, policy, seed, tune, wall_s`` and, for ``fgd``,
            ``arrivals, failed_pods``; for ``replay``, ``never_placed`` and the run's
            ``extra`` metrics.
        wall_s: wall time of the whole matrix, seconds.
        workers: worker processes used (1 = ran in this process); on Dask, the cluster's
            worker threads when the matrix started.
        executor: :attr:`cohabit.execution.Execution.label` (``local`` or
            ``dask tcp://HOST:PORT``).
    """

    mode: SimulationMode
    curves: pd.DataFrame
    pending: pd.DataFrame
    runs: pd.DataFrame
    wall_s: float
    workers: int
    executor: str = "local"


TraceInput = (
    tuple[Sequence[Node], Sequence[Pod]] | tuple[Sequence[Node], Sequence[Pod], Sequence[str]]
)
"""``(nodes, pods)`` or ``(nodes, pods, gpu_spec_text)``: one workload of the matrix."""


class MatrixError(RuntimeError):
    """A run of the matrix raised; the message names the cell and the original error."""


# ---------------------------------------------------------------------- worker side

_TRACES: dict[str, tuple[list[Node], list[Pod], TypicalPods]] = {}
_TRACES_LOCK = threading.Lock()
_SETUPS: dict[tuple, ContendedSetup] = {}
"""The contended set-up of the last (workload, seed, compress, model) this worker ran."""
_PRELOAD = ("cohabit.simulator.matrix", "cohabit.simulator.fgd", "cohabit.simulator.replay",
            "cohabit.simulator.contended")


def _prepare(trace: TraceInput) -> tuple[list[Node], list[Pod], TypicalPods]:
    nodes, pods = list(trace[0]), list(trace[1])
    spec_text = trace[2] if len(trace) > 2 else ()
    typical = typical_pods(pods, spec_text=list(spec_text) if spec_text else None)
    return nodes, pods, typical


def _init_worker(traces: dict[str, TraceInput]) -> None:
    _TRACES.clear()
    for name, trace in traces.items():
        _TRACES[name] = _prepare(trace)


def _run_cell_dask(cell: Cell, token: str, trace: TraceInput) -> FgdRunResult | ReplayRunResult:
    """One cell on a Dask worker: ``trace`` is the scattered workload (resolved by Dask),
    prepared once per worker process and sweep (``token``)."""
    key = f"{token}/{cell.workload}"
    with _TRACES_LOCK:  # a worker may run several tasks in threads
        if key not in _TRACES:
            for old in [k for k in _TRACES if not k.startswith(f"{token}/")]:
                del _TRACES[old]  # an earlier sweep's traces
            _TRACES[key] = _prepare(trace)
    return _run_cell(cell, key)


def _run_cell(cell: Cell, key: str | None = None) -> FgdRunResult | ReplayRunResult:
    nodes, pods, typical = _TRACES[key or cell.workload]
    if cell.mode == SimulationMode.FGD:
        from cohabit.simulator.fgd import run_fgd

        return run_fgd(
            nodes,
            pods,
            policy=cell.policy,
            seed=cell.seed,
            tune=cell.tune,
            workload=cell.workload,
            typical=typical,
            rebind=cell.rebind,
        )
    if cell.contention is not None:
        from cohabit.simulator.contended import build_setup, run_contended

        setup = _SETUPS.get((cell.workload, cell.seed, cell.compress, cell.contention))
        if setup is None:
            setup = build_setup(pods, seed=cell.seed, compress=cell.compress,
                                model=cell.contention)
            _SETUPS.clear()  # one at a time: a set-up holds every pod's series
            _SETUPS[(cell.workload, cell.seed, cell.compress, cell.contention)] = setup
        return run_contended(nodes[cell.slice_offset::cell.slice_n], pods, setup,
                             policy=cell.policy, seed=cell.seed, workload=cell.workload,
                             rebind=cell.rebind)
    from cohabit.simulator.replay import run_replay

    kwargs = {} if cell.sample_every_s is None else {"sample_every_s": cell.sample_every_s}
    return run_replay(
        nodes, pods, policy=cell.policy, seed=cell.seed, workload=cell.workload, **kwargs
    )


# ---------------------------------------------------------------------- driver side


def _progress(console: Console | None, enabled: bool) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(compact=True),
        TextColumn("{task.fields[last]}", style="dim"),
        console=console or Console(stderr=True),
        disable=not enabled,
        transient=False,
    )


def _default_workers() -> int:
    return os.cpu_count() or 1


def run_matrix(
    matrix: Sequence[Cell],
    traces: dict[str, TraceInput],
    *,
    workers: int | None = None,
    progress: bool = True,
    console: Console | None = None,
    on_result: Callable[[Cell, FgdRunResult | ReplayRunResult], None] | None = None,
    execution: Execution | None = None,
) -> MatrixResult:
    """Run every cell, in parallel worker processes or on a Dask cluster, with a progress bar.

    Args:
        matrix: cells from :func:`cells` (all of one mode).
        traces: ``{workload: (nodes, pods)}`` or ``{workload: (nodes, pods, gpu_spec_text)}``
            for every workload the cells name; with the raw ``gpu_spec`` text per pod,
            typical pods are grouped by it as in the FGD paper (see
            :attr:`cohabit.simulator.loaders.Trace.gpu_spec_text`).
        workers: worker processes (default ``os.cpu_count()``; capped at the number of
            cells). ``1`` runs the cells one after another in this process. Ignored on Dask
            (the cluster's workers run the cells).
        progress: show the rich progress bar (on ``console``, default stderr).
        on_result: called in this process with each finished cell and its result.
        execution: where the cells run (default: this host,
            :class:`~cohabit.execution.Execution` ``("local")``).

    Returns:
        :class:`MatrixResult` with frames concatenated over cells, sorted by
        workload, policy, seed (and the curve's own x column).

    Raises:
        ValueError: empty matrix, mixed modes, a workload missing from ``traces``,
            ``workers < 1``.
        MatrixError: a run raised (or, on Dask, was lost with its worker more often than
            the scheduler allows); the remaining runs are cancelled.
        cohabit.execution.ExecutionError: the Dask scheduler is unreachable, or has no
            worker for ``execution.timeout`` seconds.
    """
    if not matrix:
        raise ValueError("empty matrix: nothing to run")
    modes = {c.mode for c in matrix}
    if len(modes) != 1:
        raise ValueError(f"one mode per matrix, got {sorted(m.value for m in modes)}")
    missing = sorted({c.workload for c in matrix} - set(traces))
    if missing:
        raise ValueError(f"no trace loaded for workload(s) {', '.join(missing)}")
    n_workers = _default_workers() if workers is None else workers
    if n_workers < 1:
        raise ValueError(f"workers must be >= 1, not {n_workers}")
    n_workers = min(n_workers, len(matrix))
    mode = matrix[0].mode
    needed = {c.workload: traces[c.workload] for c in matrix}
    execution = Execution() if execution is None else execution

    results: dict[Cell, FgdRunResult | ReplayRunResult] = {}
    t0 = time.perf_counter()
    where = " on Dask" if execution.distributed else ""
    with _progress(console, progress) as bar:
        task = bar.add_task(f"{mode} runs{where}", total=len(matrix), last="")

        def done(cell: Cell, res: FgdRunResult | ReplayRunResult) -> None:
            results[cell] = res
            bar.update(task, advance=1, last=f"{cell.label}: {res.wall_s:.1f} s")
            if on_result is not None:
                on_result(cell, res)

        if execution.distributed:
            n_workers = _run_on_dask(matrix, needed, execution, done)
        elif n_workers == 1:
            _run_in_process(matrix, needed, done)
        else:
            _run_on_pool(matrix, needed, n_workers, done)
    wall = time.perf_counter() - t0
    return _collect(mode, matrix, results, wall, n_workers, execution.label)


def _run_in_process(matrix: Sequence[Cell], traces: dict[str, TraceInput],
                    done: Callable[[Cell, FgdRunResult | ReplayRunResult], None]) -> None:
    """Every cell in this process, in order (``workers=1``)."""
    _init_worker(traces)
    try:
        for cell in matrix:
            try:
                res = _run_cell(cell)
            except Exception as exc:
                raise MatrixError(f"run {cell.label} failed: {exc!r}") from exc
            done(cell, res)
    finally:
        _TRACES.clear()


def _run_on_pool(matrix: Sequence[Cell], traces: dict[str, TraceInput], n_workers: int,
                 done: Callable[[Cell, FgdRunResult | ReplayRunResult], None]) -> None:
    """The cells on a local process pool of ``n_workers``."""
    # forkserver/spawn, not fork: the progress bar's refresh thread is running.
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload(list(_PRELOAD))  # import once, fork per worker
    with ProcessPoolExecutor(
        max_workers=n_workers,
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(traces,),
    ) as pool:
        _drain({pool.submit(_run_cell, c): c for c in matrix}, done)


def _run_on_dask(
    matrix: Sequence[Cell],
    traces: dict[str, TraceInput],
    execution: Execution,
    done: Callable[[Cell, FgdRunResult | ReplayRunResult], None],
) -> int:
    """Submit every cell to the Dask cluster and hand each result to ``done`` as it comes.

    Returns:
        the cluster's worker threads when the matrix started.
    """
    token = uuid.uuid4().hex
    with dask_client(execution) as client:
        n_workers = dask_workers(client)
        # scatter([x]) ships x as one object (a bare tuple would be scattered per element)
        shared = {name: client.scatter([trace], broadcast=True, hash=False)[0]
                  for name, trace in traces.items()}
        pool = client.get_executor(pure=False)
        futures = {pool.submit(_run_cell_dask, c, token, shared[c.workload]): c for c in matrix}
        _drain(futures, done, idle=lambda since: _check_workers(client, execution, since))
    return n_workers


def _drain(
    futures: dict[Future, Cell],
    done: Callable[[Cell, FgdRunResult | ReplayRunResult], None],
    idle: Callable[[float | None], float | None] | None = None,
) -> None:
    """Hand each finished cell to ``done`` in completion order; on the first failure cancel
    the rest and raise :class:`MatrixError`. ``idle`` (if given) is called every
    :data:`_POLL_S` seconds without a finished cell, with the time it last reported trouble
    (``None``: none); it returns the new time or raises."""
    pending = set(futures)
    since: float | None = None
    try:
        while pending:
            finished, pending = wait(pending, timeout=_POLL_S if idle else None,
                                     return_when=FIRST_COMPLETED)
            if not finished and idle is not None:
                since = idle(since)
                continue
            for fut in finished:
                cell = futures[fut]
                exc = fut.exception()
                if exc is not None:
                    raise MatrixError(f"run {cell.label} failed: {exc!r}") from exc
                done(cell, fut.result())
    finally:
        for other in pending:
            other.cancel()


_POLL_S = 2.0
"""Seconds between checks that a Dask cluster still has workers while nothing finishes."""


def _check_workers(client, execution: Execution, since: float | None) -> float | None:
    """``None`` while the cluster has workers; else when it was first seen without any.

    Raises:
        ExecutionError: no worker for ``execution.timeout`` seconds (else it would wait forever).
    """
    if dask_workers(client) > 0:
        return None
    now = time.monotonic()
    if since is not None and now - since > execution.timeout:
        raise ExecutionError(
            f"--scheduler {execution.scheduler}: no Dask worker left for "
            f"{execution.timeout:g} s; the sweep cannot finish")
    return now if since is None else since


def _sort(df: pd.DataFrame, extra: str | None) -> pd.DataFrame:
    keys = [k for k in ("workload", "policy", "seed", "qos", extra) if k and k in df.columns]
    return df.sort_values(keys, kind="stable").reset_index(drop=True) if keys else df


def _collect(
    mode: SimulationMode,
    matrix: Sequence[Cell],
    results: dict[Cell, FgdRunResult | ReplayRunResult],
    wall_s: float,
    workers: int,
    executor: str = "local",
) -> MatrixResult:
    rows = []
    curves, pending = [], []
    for cell in matrix:
        res = results[cell]
        row: dict[str, object] = {
            "workload": cell.workload,
            "policy": cell.policy,
            "seed": cell.seed,
            "tune": cell.tune,
            "wall_s": res.wall_s,
        }
        if isinstance(res, FgdRunResult):
            row.update(arrivals=res.arrivals, failed_pods=res.failed_pods, **res.extra)
            curves.append(res.curve)
        else:
            row.update(never_placed=res.never_placed, **res.extra)
            curves.append(res.series)
            pending.append(res.pending)
        rows.append(row)
    if mode == SimulationMode.FGD:
        curve_df = _concat(curves, FGD_CURVE_COLUMNS)
        curve_df = _sort(curve_df, "arrived_gpu_demand_pct")
        pending_df = pd.DataFrame(columns=list(PENDING_COLUMNS))
    else:
        contended = any(c.contention for c in matrix)
        columns = CONTENDED_SERIES_COLUMNS if contended else REPLAY_SERIES_COLUMNS
        curve_df = _sort(_concat(curves, columns), "time_s")
        pending_df = _sort(_concat(pending, PENDING_COLUMNS), None)
    runs = _sort(pd.DataFrame(rows), None)
    return MatrixResult(mode, curve_df, pending_df, runs, wall_s, workers, executor)


def _concat(frames: list[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=list(columns))
    df = pd.concat(frames, ignore_index=True)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise MatrixError(f"experiment loop returned a frame without columns {missing}")
    return df
