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
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from cohabit.execution import Execution, ExecutionError
from cohabit.simulator import checks, loaders, matrix, report
from cohabit.simulator.results import SimulationMode

__all__ = [
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


def _check_contention(model: str, mode: SimulationMode) -> None:
    from cohabit.simulator.contention import CONTENTION_MODELS

    if mode != SimulationMode.REPLAY:
        raise UsageError("--contention needs --mode replay")
    if model not in CONTENTION_MODELS:
        raise UsageError(f"--contention: {model!r} is not one of {', '.join(CONTENTION_MODELS)}")


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


def simulate(
    pods: str | None = typer.Option(
        None,
        "--pods",
        help="Pod list: a CSV file, a shipped list's name (default, gpushare40, multigpu20, "
        "cpu050, ...), a comma list of them, or 'published' (every list the FGD paper "
        "published). Default: the embedded openb default list.",
    ),
    nodes: str | None = typer.Option(
        None,
        "--nodes",
        help="Node list: a CSV file or a shipped name (gpu_node, all_node). Default: gpu_node "
        "(1,213 GPU nodes, 6,212 GPUs).",
    ),
    policy: str = typer.Option(
        DEFAULT_POLICIES,
        "--policy",
        help="Comma list of placement policies, 'paper' (default: the FGD paper's random, "
        "dot-product, gpu-clustering, gpu-packing, best-fit, fgd) or 'all' (adds cohabit, "
        "kube-default, kube-knots, load-aware).",
    ),
    seeds: str = typer.Option(
        DEFAULT_SEEDS, "--seeds", help="Seeds: 42, 42-51 or 42,45,50-52 (the paper uses 42-51)."
    ),
    tune: float = typer.Option(
        1.3,
        "--tune",
        max=10.0,
        help="--mode fgd: inflate the pod list to tune x cluster GPU capacity "
        "(0.9 to 10: the summary reports 90%, 100% and 130% arrived GPU demand).",
    ),
    mode: str = typer.Option(
        "fgd",
        "--mode",
        help="fgd: the paper's one-pass method; replay: arrivals and departures in trace time.",
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Directory for curves/series CSV, summary.json and PNG plots (created).",
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Worker processes (default: one per CPU core)."
    ),
    sample_every: float | None = typer.Option(
        None, "--sample-every", min=1.0, help="--mode replay: sampling period, seconds."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    executor: str = typer.Option(
        "local", "--executor",
        help="local: a process pool on this host (default); dask: the Dask cluster at "
        "--scheduler (dask.distributed).",
    ),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="--executor dask: the scheduler's address, "
        "e.g. tcp://10.0.0.5:8786."),
    rebind: bool = typer.Option(
        False,
        "--rebind/--no-rebind",
        help="Simulate-then-rebind: a pod that fits nowhere gets a move (at most 2 pods off "
        "one node, a chain of two levels; each move replayed first and kept only if it pays); "
        "--mode fgd also defragments once per 1 % of capacity arrived; migrations are "
        "counted. Without it no pod ever moves.",
    ),
    contention: str | None = typer.Option(
        None,
        "--contention",
        help="--mode replay: co-located pods slow each other under this model ('gavel': "
        "measured Gavel co-location throughputs, GenAI activity for LS pods).",
    ),
    slice_spec: str = typer.Option(
        "1",
        "--slice",
        help="--contention: replay on every N-th node, 'N' or 'N:OFFSET' (e.g. 22).",
    ),
    compress: float = typer.Option(
        1.0, "--compress", min=0.001, help="--contention: time compression of arrivals."
    ),
) -> None:
    """Simulate placement policies on an openb trace and compare them (and the FGD paper)."""
    console = _stdout()
    try:
        execution = Execution(executor, scheduler)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    try:
        if mode not in matrix.MODES:
            raise UsageError(f"--mode: {mode!r} is not one of {', '.join(matrix.MODES)}")
        run_mode = SimulationMode(mode)
        seed_list = parse_seeds(seeds)
        policy_list = parse_policies(policy, _known_policies())
        pod_specs = parse_pods(pods)
        slice_n, slice_offset = parse_slice(slice_spec)
        if contention is not None:
            _check_contention(contention, run_mode)
    except UsageError as exc:
        raise _fail(str(exc)) from None
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _fail(f"--out: cannot create directory {out}: {exc.strerror or exc}") from None

    t0 = time.perf_counter()
    traces: dict[str, loaders.Trace] = {}
    try:
        for spec in pod_specs:
            trace = loaders.load_trace(spec, nodes,
                                       require_times=(run_mode == SimulationMode.REPLAY))
            if trace.workload in traces:
                raise _fail(f"--pods: two pod lists are both named {trace.workload!r}")
            traces[trace.workload] = trace
    except loaders.TraceError as exc:
        raise _fail(str(exc)) from None
    notes = _check_runs(traces, run_mode, tune, sample_every)
    load_s = time.perf_counter() - t0

    summaries = {}
    for name, trace in traces.items():
        s = loaders.summarize(trace.nodes, trace.pods)
        summaries[name] = s
        console.print(
            f"[bold]{escape(name)}[/] ({escape(trace.pods_source)}; "
            f"nodes {escape(trace.nodes_source)})"
        )
        for line in s.lines():
            console.print(f"  {line}", markup=False)
    console.print(f"  loaded in {load_s:.2f} s", style="dim")
    for note in notes:
        typer.echo(note, err=True)

    cells = matrix.cells(
        run_mode, list(traces), policy_list, seed_list, tune=tune, sample_every_s=sample_every,
        rebind=rebind, contention=contention, slice_n=slice_n, slice_offset=slice_offset,
        compress=compress,
    )
    n_workers = min(workers or os.cpu_count() or 1, len(cells))
    console.print(
        f"running {len(cells)} run(s): {len(policy_list)} policies x {len(traces)} pod list(s) "
        f"x {len(seed_list)} seed(s), --mode {run_mode.value}"
        + (f", tune {tune:g}" if run_mode == SimulationMode.FGD else "")
        + (f", on {execution.label}" if execution.distributed else f", {n_workers} worker(s)")
    )
    try:
        result = matrix.run_matrix(
            cells,
            {k: (t.nodes, t.pods, t.gpu_spec_text) for k, t in traces.items()},
            workers=n_workers,
            progress=progress,
            execution=execution,
        )
    except matrix.MatrixError as exc:
        raise _fail(str(exc), code=1) from None
    except ExecutionError as exc:
        raise _fail(str(exc), code=1) from None
    except KeyboardInterrupt:
        raise _fail("interrupted", code=130) from None

    if run_mode == SimulationMode.FGD:
        summary = report.fgd_summary(result)
        if checks.nothing_measured(summary):
            raise _fail(
                f"nothing measured: {checks.why_nothing_measured(summary, result.curves, tune)}"
                + ("; nothing written to --out" if out is not None else "")
            )
        for table in report.fgd_tables(summary, tune=tune):
            console.print(table)
        if len(traces) > 1:
            fidelity = report.fidelity_table(summary)
            if fidelity is not None:
                console.print(fidelity)
    elif contention is not None:
        from cohabit.simulator import contended_report

        summary = contended_report.contended_summary(result)
        for table in contended_report.contended_tables(summary):
            console.print(table)
    else:
        summary = report.replay_summary(result)
        for table in report.replay_tables(summary, report.pending_summary(result)):
            console.print(table)
    if rebind:
        _print_migrations(console, result)
    console.print(
        f"{len(cells)} run(s) in {result.wall_s:.1f} s wall on {result.workers} worker(s)"
        + (f" of {execution.label}" if execution.distributed else ""),
        style="dim",
    )
    if out is not None:
        meta = {
            "command": " ".join(["cohabit", "simulate", *sys.argv[2:]])
            if sys.argv[1:2] == ["simulate"]
            else "cohabit simulate",
            "policies": policy_list,
            "seeds": seed_list,
            "tune": tune if run_mode == SimulationMode.FGD else None,
            "traces": {
                name: {
                    "pods_source": t.pods_source,
                    "nodes_source": t.nodes_source,
                    **dataclasses.asdict(summaries[name]),
                }
                for name, t in traces.items()
            },
        }
        try:
            if contention is not None:
                from cohabit.simulator import contended_report

                written = contended_report.write_contended(result, out)
            else:
                written = report.write_outputs(result, out, meta=meta)
        except (OSError, ValueError) as exc:
            raise _fail(f"--out: cannot write the results to {out} ({exc}); nothing written",
                        code=1) from None
        console.print(
            f"wrote {len(written)} files to {out}/: " + ", ".join(p.name for p in written),
            markup=False,
        )
    else:
        console.print("add --out DIR for tidy CSV, a JSON summary and PNG plots", style="dim")


def register(app: typer.Typer) -> None:
    """Add ``simulate`` to the ``cohabit`` app."""
    app.command("simulate")(simulate)
