"""``cohabit simulate``: replay an openb trace through placement policies, offline.

Runs the policy x trace x seed matrix of :mod:`cohabit.simulator.matrix` and prints the
summary of :mod:`cohabit.simulator.report`; with ``--out`` it also writes tidy CSV, a JSON
summary and PNG plots.

Defaults (the plain ``cohabit simulate``): the embedded openb trace (1,213 GPU nodes, the
default pod list of 8,152 pods), ``--mode fgd`` (the FGD paper's method: seeded shuffle,
inflate to 1.3 x GPU capacity, one pass, no departures), all six policies, seed 42, one
worker process per core. That is six runs, and the table compares each policy with the
paper's published curve.

Bad input (a trace file's bad rows, an unknown policy, a malformed ``--seeds``) is reported
in one line naming the file, line and field (plus a list when there are several problems)
and exits with code 2, without a traceback.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from cohabit.execution import Execution, ExecutionError
from cohabit.simulator import checks, loaders, matrix, report
from cohabit.simulator.results import SimulationMode

__all__ = [
    "SimulateRequest",
    "parse_mode",
    "parse_policies",
    "parse_pods",
    "parse_seeds",
    "parse_slice",
    "register",
    "simulate",
]

DEFAULT_SEEDS = "42"
MAX_SEEDS = 10_000
"""Most seeds one ``--seeds`` may name (a range or a comma list)."""
DEFAULT_POLICIES = "paper"
PUBLISHED_ALIAS = "published"
"""``--pods published``: every pod list the FGD paper published curves for."""


class UsageError(ValueError):
    """A command-line value is malformed; the message names the option."""


def parse_seeds(text: str) -> list[int]:
    """``"42"``, ``"42-51"``, ``"42,45,50-52"`` -> seeds in the given order, duplicates dropped.

    Linear in the length of ``text`` (a set of the seeds seen, not a list search).

    Raises:
        UsageError: a part is not a non-negative integer (at most 2**32 - 1, numpy's seed
            range) or an ascending ``a-b`` range, or more than :data:`MAX_SEEDS` seeds.
    """
    seeds: dict[int, None] = {}
    for part in (p.strip() for p in text.split(",")):
        m = re.fullmatch(r"(\d{1,10})(?:\s*-\s*(\d{1,10}))?", part)
        if not m:
            raise UsageError(
                f"--seeds: {part[:40]!r} is not a seed or a range "
                "(examples: 42, 42-51, 42,43,50-52)"
            )
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi >= 2**32:
            raise UsageError(f"--seeds: {hi} is above the largest seed, {2**32 - 1}")
        if hi < lo:
            raise UsageError(f"--seeds: range {part!r} runs backwards")
        if hi - lo >= MAX_SEEDS:
            raise UsageError(f"--seeds: more than {MAX_SEEDS:,} seeds")
        seeds.update(dict.fromkeys(range(lo, hi + 1)))
        if len(seeds) > MAX_SEEDS:
            raise UsageError(f"--seeds: more than {MAX_SEEDS:,} seeds")
    return list(seeds)


def parse_policies(text: str, known: list[str]) -> list[str]:
    """``"fgd,best-fit"``, ``"paper"`` or ``"all"`` -> registry names.

    ``paper`` is the FGD paper's six policies (random, dot-product, gpu-clustering,
    gpu-packing, best-fit, fgd); ``all`` is every registered policy (adds ``cohabit`` and the
    other baselines).

    Raises:
        UsageError: an unknown name (the message lists the known ones) or an empty list.
    """
    names = [p.strip() for p in text.split(",") if p.strip()]
    if not names:
        raise UsageError("--policy: empty list")
    if names == ["all"]:
        return list(known)
    if names == ["paper"]:
        return [p for p in report.POLICY_ORDER if p in known]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(
            f"--policy: unknown policy {', '.join(unknown)} (known: {', '.join(known)}, paper, all)"
        )
    return list(dict.fromkeys(names))


def parse_pods(text: str | None) -> list[str | None]:
    """``--pods``: one path or shipped name, a comma list of them, or ``published``.

    Returns:
        Specs for :func:`cohabit.simulator.loaders.load_trace` (``[None]`` = the default).
    """
    if text is None:
        return [None]
    if Path(text).is_file():
        return [text]
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if parts == [PUBLISHED_ALIAS]:
        pub = report.published_curves()
        return sorted(pub["workload"].unique())
    if not parts:
        raise UsageError("--pods: empty")
    return list(dict.fromkeys(parts))


def _print_migrations(console: Console, result: matrix.MatrixResult) -> None:
    """``--rebind``: migrations per run, as a share of the pods placed."""
    runs = result.runs
    if "migrations" not in runs.columns:
        return
    for (workload, policy), g in runs.groupby(["workload", "policy"], sort=False):
        placed = (g["arrivals"] - g["failed_pods"]) if "arrivals" in g else g.get("placed")
        share = 100.0 * g["migrations"].sum() / max(float(placed.sum()), 1.0)
        console.print(f"{workload} {policy}: {g['migrations'].mean():.1f} migrations per run "
                      f"({share:.2f} % of pods placed), mean over {len(g)} run(s)")


def parse_slice(text: str) -> tuple[int, int]:
    """``--slice``: ``"22"`` or ``"22:3"`` -> ``(N, offset)`` with ``0 <= offset < N``.

    Raises:
        UsageError: not of that form.
    """
    m = re.fullmatch(r"\s*(\d+)\s*(?::\s*(\d+))?\s*", text)
    if not m or int(m.group(1)) < 1:
        raise UsageError(f"--slice: {text!r} is not N or N:OFFSET with N >= 1 (e.g. 22, 22:3)")
    n = int(m.group(1))
    off = int(m.group(2)) if m.group(2) is not None else 0
    if off >= n:
        raise UsageError(f"--slice: offset {off} must be below N={n}")
    return n, off


def _check_contention(model: str | None, mode: SimulationMode) -> str | None:
    """``--contention`` checked against ``--mode`` and the known models (``None``: off).

    Raises:
        UsageError: given without ``--mode replay``, or an unknown model.
    """
    if model is None:
        return None
    from cohabit.simulator.contention import CONTENTION_MODELS

    if mode != SimulationMode.REPLAY:
        raise UsageError("--contention needs --mode replay")
    if model not in CONTENTION_MODELS:
        raise UsageError(f"--contention: {model!r} is not one of {', '.join(CONTENTION_MODELS)}")
    return model


def _known_policies() -> list[str]:
    from cohabit.placement import POLICIES

    return report.policy_order(POLICIES)


def _check_runs(
    traces: dict[str, loaders.Trace], mode: SimulationMode, tune: float, sample_every: float | None
) -> list[str]:
    """Stop (exit 2, saying why) when a run could not measure anything or would not end;
    return notes on pods that fit on no node (they will count as failed or never placed)."""
    notes = []
    for trace in traces.values():
        if mode == SimulationMode.FGD:
            problem = checks.fgd_problem(trace, tune)
        else:
            problem = checks.replay_problem(trace, sample_every)
        if problem:
            raise _fail(f"{trace.pods_source}: {problem}")
        note = checks.unplaceable_note(trace, mode)
        if note:
            notes.append(note)
    return notes


def _stdout() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=max(console.width, 160))
    return console


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


_PodsOption = Annotated[str | None, typer.Option(
    "--pods",
    help="Pod list: a CSV file, a shipped list's name (default, gpushare40, multigpu20, "
    "cpu050, ...), a comma list of them, or 'published' (every list the FGD paper "
    "published). Default: the embedded openb default list.",
)]
_NodesOption = Annotated[str | None, typer.Option(
    "--nodes",
    help="Node list: a CSV file or a shipped name (gpu_node, all_node). Default: gpu_node "
    "(1,213 GPU nodes, 6,212 GPUs).",
)]
_PolicyOption = Annotated[str, typer.Option(
    "--policy",
    help="Comma list of placement policies, 'paper' (default: the FGD paper's random, "
    "dot-product, gpu-clustering, gpu-packing, best-fit, fgd) or 'all' (adds cohabit, "
    "kube-default, kube-knots, load-aware).",
)]
_SeedsOption = Annotated[str, typer.Option(
    "--seeds", help="Seeds: 42, 42-51 or 42,45,50-52 (the paper uses 42-51)."
)]
_TuneOption = Annotated[float, typer.Option(
    "--tune",
    max=10.0,
    help="--mode fgd: inflate the pod list to tune x cluster GPU capacity "
    "(0.9 to 10: the summary reports 90%, 100% and 130% arrived GPU demand).",
)]
_ModeOption = Annotated[str, typer.Option(
    "--mode",
    help="fgd: the paper's one-pass method; replay: arrivals and departures in trace time.",
)]
_OutOption = Annotated[Path | None, typer.Option(
    "--out",
    help="Directory for curves/series CSV, summary.json and PNG plots (created).",
)]
_WorkersOption = Annotated[int | None, typer.Option(
    "--workers", min=1, help="Worker processes (default: one per CPU core)."
)]
_SampleEveryOption = Annotated[float | None, typer.Option(
    "--sample-every", min=1.0, help="--mode replay: sampling period, seconds."
)]
_ProgressOption = Annotated[bool, typer.Option(
    "--progress/--no-progress", help="Show a progress bar."
)]
_ExecutorOption = Annotated[str, typer.Option(
    "--executor",
    help="local: a process pool on this host (default); dask: the Dask cluster at "
    "--scheduler (dask.distributed).",
)]
_SchedulerOption = Annotated[str | None, typer.Option(
    "--scheduler", help="--executor dask: the scheduler's address, e.g. tcp://10.0.0.5:8786."
)]
_RebindOption = Annotated[bool, typer.Option(
    "--rebind/--no-rebind",
    help="Simulate-then-rebind: a pod that fits nowhere gets a move (at most 2 pods off "
    "one node, a chain of two levels; each move replayed first and kept only if it pays); "
    "--mode fgd also defragments once per 1 % of capacity arrived; migrations are "
    "counted. Without it no pod ever moves.",
)]
_ContentionOption = Annotated[str | None, typer.Option(
    "--contention",
    help="--mode replay: co-located pods slow each other under this model ('gavel': "
    "measured Gavel co-location throughputs, GenAI activity for LS pods).",
)]
_SliceOption = Annotated[str, typer.Option(
    "--slice", help="--contention: replay on every N-th node, 'N' or 'N:OFFSET' (e.g. 22)."
)]
_CompressOption = Annotated[float, typer.Option(
    "--compress", min=0.001, help="--contention: time compression of arrivals."
)]


@dataclass(frozen=True)
class SimulateRequest:
    """``cohabit simulate``'s options, parsed and checked (built by :func:`simulate`).

    Attributes:
        mode: the simulation method (``fgd`` one pass, or ``replay`` in trace time).
        seeds: seeds in the order given, no duplicates.
        policies: placement registry names, in the order given.
        pod_specs: pod lists for :func:`cohabit.simulator.loaders.load_trace` (``None`` =
            the embedded default list).
        nodes: node list (a CSV path or shipped name; ``None`` = ``gpu_node``).
        tune: ``--mode fgd`` inflation, multiples of the cluster's GPU capacity.
        node_slice: ``--contention``'s node slice ``(N, offset)``: every N-th node from
            ``offset``.
        contention: contention model name, or ``None``.
        out: output directory (created before anything runs), or ``None``.
        workers: worker processes (``None`` = one per core).
        sample_every: ``--mode replay`` sampling period, seconds (``None`` = the default).
        progress, rebind: ``--progress`` and ``--rebind``.
        compress: ``--contention`` time compression of arrivals.
        execution: where the runs go (this host's process pool or a Dask cluster).
    """

    mode: SimulationMode
    seeds: list[int]
    policies: list[str]
    pod_specs: list[str | None]
    nodes: str | None
    tune: float
    node_slice: tuple[int, int]
    contention: str | None
    out: Path | None
    workers: int | None
    sample_every: float | None
    progress: bool
    rebind: bool
    compress: float
    execution: Execution


def parse_mode(text: str) -> SimulationMode:
    """``--mode`` as a :class:`SimulationMode`.

    Raises:
        UsageError: not one of :data:`cohabit.simulator.matrix.MODES`.
    """
    if text not in matrix.MODES:
        raise UsageError(f"--mode: {text!r} is not one of {', '.join(matrix.MODES)}")
    return SimulationMode(text)


def simulate(
    pods: _PodsOption = None,
    nodes: _NodesOption = None,
    policy: _PolicyOption = DEFAULT_POLICIES,
    seeds: _SeedsOption = DEFAULT_SEEDS,
    tune: _TuneOption = 1.3,
    mode: _ModeOption = "fgd",
    out: _OutOption = None,
    workers: _WorkersOption = None,
    sample_every: _SampleEveryOption = None,
    progress: _ProgressOption = True,
    executor: _ExecutorOption = "local",
    scheduler: _SchedulerOption = None,
    rebind: _RebindOption = False,
    contention: _ContentionOption = None,
    slice_spec: _SliceOption = "1",
    compress: _CompressOption = 1.0,
) -> None:
    """Simulate placement policies on an openb trace and compare them (and the FGD paper)."""
    console = _stdout()
    execution = _execution(executor, scheduler)
    try:
        run_mode = parse_mode(mode)
        request = SimulateRequest(
            mode=run_mode,
            seeds=parse_seeds(seeds),
            policies=parse_policies(policy, _known_policies()),
            pod_specs=parse_pods(pods),
            nodes=nodes,
            tune=tune,
            node_slice=parse_slice(slice_spec),
            contention=_check_contention(contention, run_mode),
            out=out, workers=workers, sample_every=sample_every, progress=progress,
            rebind=rebind, compress=compress, execution=execution,
        )
    except UsageError as exc:
        raise _fail(str(exc)) from None
    _make_out_dir(request.out)
    t0 = time.perf_counter()
    traces = _load_traces(request)
    notes = _check_runs(traces, request.mode, request.tune, request.sample_every)
    summaries = _print_traces(console, traces, notes, load_s=time.perf_counter() - t0)
    cells = _cells(request, traces)
    result = _run(console, request, traces, cells)
    _print_results(console, request, traces, result, n_runs=len(cells))
    _write_results(console, request, traces, summaries, result)


def _execution(executor: str, scheduler: str | None) -> Execution:
    """``--executor``/``--scheduler`` as an :class:`Execution`; exits 2 when they disagree."""
    try:
        return Execution(executor, scheduler)
    except ValueError as exc:
        raise _fail(str(exc)) from None


def _make_out_dir(out: Path | None) -> None:
    """Create ``--out`` (and its parents) before anything runs; exits 2 when it cannot."""
    if out is None:
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail(f"--out: cannot create directory {out}: {exc.strerror or exc}") from None


def _load_traces(request: SimulateRequest) -> dict[str, loaders.Trace]:
    """Every ``--pods`` list on the ``--nodes`` list, by workload name; exits 2 with the
    loader's message (file, line, field) or when two lists share a name."""
    traces: dict[str, loaders.Trace] = {}
    try:
        for spec in request.pod_specs:
            trace = loaders.load_trace(spec, request.nodes,
                                       require_times=(request.mode == SimulationMode.REPLAY))
            if trace.workload in traces:
                raise _fail(f"--pods: two pod lists are both named {trace.workload!r}")
            traces[trace.workload] = trace
    except loaders.TraceError as exc:
        raise _fail(str(exc)) from None
    return traces


def _print_traces(
    console: Console, traces: dict[str, loaders.Trace], notes: list[str], *, load_s: float
) -> dict[str, loaders.LoadSummary]:
    """Print each trace's summary, the load time (seconds) and, on stderr, the notes on pods
    that fit on no node; return the summaries by workload name."""
    summaries = {}
    for name, trace in traces.items():
        summary = loaders.summarize(trace.nodes, trace.pods)
        summaries[name] = summary
        console.print(
            f"[bold]{escape(name)}[/] ({escape(trace.pods_source)}; "
            f"nodes {escape(trace.nodes_source)})"
        )
        for line in summary.lines():
            console.print(f"  {line}", markup=False)
    console.print(f"  loaded in {load_s:.2f} s", style="dim")
    for note in notes:
        typer.echo(note, err=True)
    return summaries


def _cells(request: SimulateRequest, traces: dict[str, loaders.Trace]) -> list[matrix.Cell]:
    """The policy x pod list x seed runs of ``request``."""
    slice_n, slice_offset = request.node_slice
    return matrix.cells(
        request.mode, list(traces), request.policies, request.seeds, tune=request.tune,
        sample_every_s=request.sample_every, rebind=request.rebind,
        contention=request.contention, slice_n=slice_n, slice_offset=slice_offset,
        compress=request.compress,
    )


def _run(
    console: Console,
    request: SimulateRequest,
    traces: dict[str, loaders.Trace],
    cells: list[matrix.Cell],
) -> matrix.MatrixResult:
    """Say what runs where, then run ``cells``; exits 1 when a run or the executor fails,
    130 on Ctrl-C."""
    execution = request.execution
    n_workers = min(request.workers or os.cpu_count() or 1, len(cells))
    console.print(
        f"running {len(cells)} run(s): {len(request.policies)} policies x {len(traces)} pod "
        f"list(s) x {len(request.seeds)} seed(s), --mode {request.mode.value}"
        + (f", tune {request.tune:g}" if request.mode == SimulationMode.FGD else "")
        + (f", on {execution.label}" if execution.distributed else f", {n_workers} worker(s)")
    )
    try:
        return matrix.run_matrix(
            cells,
            {k: (t.nodes, t.pods, t.gpu_spec_text) for k, t in traces.items()},
            workers=n_workers,
            progress=request.progress,
            execution=execution,
        )
    except (matrix.MatrixError, ExecutionError) as exc:
        raise _fail(str(exc), code=1) from None
    except KeyboardInterrupt:
        raise _fail("interrupted", code=130) from None


def _print_results(
    console: Console,
    request: SimulateRequest,
    traces: dict[str, loaders.Trace],
    result: matrix.MatrixResult,
    *,
    n_runs: int,
) -> None:
    """The mode's summary tables, ``--rebind``'s migrations and the wall time; exits 2 when
    an ``fgd`` run measured nothing (before anything is written)."""
    if request.mode == SimulationMode.FGD:
        _print_fgd(console, request, result, several_traces=len(traces) > 1)
    elif request.contention is not None:
        from cohabit.simulator import contended_report

        summary = contended_report.contended_summary(result)
        for table in contended_report.contended_tables(summary):
            console.print(table)
    else:
        summary = report.replay_summary(result)
        for table in report.replay_tables(summary, report.pending_summary(result)):
            console.print(table)
    if request.rebind:
        _print_migrations(console, result)
    execution = request.execution
    console.print(
        f"{n_runs} run(s) in {result.wall_s:.1f} s wall on {result.workers} worker(s)"
        + (f" of {execution.label}" if execution.distributed else ""),
        style="dim",
    )


def _print_fgd(
    console: Console, request: SimulateRequest, result: matrix.MatrixResult, *,
    several_traces: bool,
) -> None:
    """``--mode fgd``'s tables (and the fidelity table for several pod lists); exits 2 with
    the reason when nothing was measured."""
    summary = report.fgd_summary(result)
    if checks.nothing_measured(summary):
        raise _fail(
            "nothing measured: "
            f"{checks.why_nothing_measured(summary, result.curves, request.tune)}"
            + ("; nothing written to --out" if request.out is not None else "")
        )
    for table in report.fgd_tables(summary, tune=request.tune):
        console.print(table)
    if several_traces:
        fidelity = report.fidelity_table(summary)
        if fidelity is not None:
            console.print(fidelity)


def _write_results(
    console: Console,
    request: SimulateRequest,
    traces: dict[str, loaders.Trace],
    summaries: dict[str, loaders.LoadSummary],
    result: matrix.MatrixResult,
) -> None:
    """With ``--out``: the tidy CSVs, ``summary.json`` and plots (exits 1, nothing written,
    when they cannot be written); without it, a hint."""
    out = request.out
    if out is None:
        console.print("add --out DIR for tidy CSV, a JSON summary and PNG plots", style="dim")
        return
    try:
        if request.contention is not None:
            from cohabit.simulator import contended_report

            written = contended_report.write_contended(result, out)
        else:
            written = report.write_outputs(result, out, meta=_run_meta(request, traces,
                                                                       summaries))
    except (OSError, ValueError) as exc:
        raise _fail(f"--out: cannot write the results to {out} ({exc}); nothing written",
                    code=1) from None
    console.print(
        f"wrote {len(written)} files to {out}/: " + ", ".join(p.name for p in written),
        markup=False,
    )


def _run_meta(
    request: SimulateRequest,
    traces: dict[str, loaders.Trace],
    summaries: dict[str, loaders.LoadSummary],
) -> dict[str, Any]:
    """``summary.json``'s description of the run: the command line, policies, seeds, tune
    (``fgd`` only) and each trace's sources and summary."""
    return {
        "command": " ".join(["cohabit", "simulate", *sys.argv[2:]])
        if sys.argv[1:2] == ["simulate"]
        else "cohabit simulate",
        "policies": request.policies,
        "seeds": request.seeds,
        "tune": request.tune if request.mode == SimulationMode.FGD else None,
        "traces": {
            name: {
                "pods_source": t.pods_source,
                "nodes_source": t.nodes_source,
                **dataclasses.asdict(summaries[name]),
            }
            for name, t in traces.items()
        },
    }


def register(app: typer.Typer) -> None:
    """Add ``simulate`` to the ``cohabit`` app."""
    app.command("simulate")(simulate)
