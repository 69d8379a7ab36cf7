"""``cohabit profile database``: measure a real PostgreSQL under cgroup limits and recommend
its just-enough spec.

::

    cohabit profile database (--builtin tpcb-like|simple-update|select-only | --script FILE.sql)
        --scale N --rate TPS --clients N --p99-ms X
        [--cpu-milli LO:HI] [--memory-mib LO:HI] [--repeats K] [--point-seconds S] --out DIR

cohabit starts PostgreSQL (``/usr/lib/postgresql/15/bin``, or ``$COHABIT_PG_BINDIR``) in a
temporary directory on a Unix socket, in a cgroup of its own (as the ``postgres`` user when
run as root), loads the data set once (``pgbench -i``, unrestricted), then measures the
workload at the offered rate (``pgbench -R``) at the allocations the planner's search asks
for (:mod:`cohabit.planner.dbspec`), each run ``--point-seconds`` long and repeated. Output in
``DIR``: ``recommendation.json``, ``points.csv`` (every run), ``curve.png``.

Exit status: 0 with a recommendation; 2 on bad input, a missing prerequisite, a script that
fails in PostgreSQL, or a target no allowed spec meets (``points.csv`` and ``curve.png`` are
still written, and the best point found is printed). Nothing is left behind: the server is
stopped, its cgroup removed and its temporary directory deleted in every case.
"""

from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path
from typing import Any

import typer

from cohabit.cli._common import console, fail, out_dir

__all__ = ["register"]

profile_app = typer.Typer(
    help="Measure a workload under real limits and recommend its just-enough spec.",
    no_args_is_help=True,
)


def _range(text: str, option: str) -> tuple[int, int]:
    try:
        lo, hi = (int(v) for v in text.split(":"))
    except ValueError:
        fail(f"{option} must be LO:HI in whole numbers, got {text!r}")
    if lo <= 0 or hi < lo:
        fail(f"{option} must satisfy 0 < LO <= HI, got {text!r}")
    return lo, hi


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # unwinds through the session's cleanup


def database(
    builtin: str | None = typer.Option(
        None, "--builtin", help="pgbench builtin: tpcb-like, simple-update or select-only."),
    script: Path | None = typer.Option(None, "--script", help="pgbench script file (SQL)."),
    scale: int = typer.Option(..., "--scale", help="pgbench scale factor of the data set."),
    rate: float = typer.Option(..., "--rate", help="Offered load, transactions per second."),
    clients: int = typer.Option(..., "--clients", help="Concurrent connections."),
    p99_ms: float = typer.Option(..., "--p99-ms", help="p99 latency target (ms)."),
    out: Path = typer.Option(..., "--out", help="Output directory."),
    cpu_milli: str = typer.Option("100:4000", "--cpu-milli", help="CPU quota range LO:HI."),
    memory_mib: str = typer.Option("128:8192", "--memory-mib", help="Memory range LO:HI MiB."),
    repeats: int = typer.Option(3, "--repeats", help="Runs per allocation (>= 2)."),
    point_seconds: float = typer.Option(10.0, "--point-seconds", help="Length of a run (s)."),
    config: Path | None = typer.Option(
        None, "--config", help="Your postgresql.conf settings (override shared_buffers=25%)."),
    confidence: float = typer.Option(
        0.9, "--confidence", help="Required P(a fresh run meets the target)."),
    warmup_seconds: float = typer.Option(5.0, "--warmup-seconds", help="Warm-up after start."),
    cfs_period_us: int = typer.Option(100_000, "--cfs-period-us", help="CFS period (us)."),
    cpu_step: float = typer.Option(0.10, "--cpu-step", help="Relative CPU grid step."),
    max_minutes: float = typer.Option(
        10.0, "--max-minutes", help="Time budget (data load included); 0 = none."),
    price_core_hour: float = typer.Option(
        0.04048, "--price-core-hour", help="Cost per vCPU-hour (AWS Fargate us-east-1)."),
    price_gib_hour: float = typer.Option(
        0.004445, "--price-gib-hour", help="Cost per GiB-hour (AWS Fargate us-east-1)."),
) -> None:
    """Profile a PostgreSQL workload's p99 against CPU and memory; recommend the cheapest spec
    meeting --p99-ms with confidence."""
    from cohabit.planner.dbspec import CostWeights, SearchSpace, SpecSearch
    from cohabit.profiling import BUILTINS, LoadSpec, ProfilingError

    if (builtin is None) == (script is None):
        fail("give exactly one of --builtin or --script")
    if builtin is not None and builtin not in BUILTINS:
        fail(f"unknown --builtin {builtin!r}; known: {', '.join(BUILTINS)}")
    if not (p99_ms > 0 and math.isfinite(p99_ms)):
        fail(f"--p99-ms must be a positive number, got {p99_ms}")
    if point_seconds < 1:
        fail(f"--point-seconds must be >= 1, got {point_seconds}")
    if warmup_seconds < 0:
        fail(f"--warmup-seconds must be >= 0, got {warmup_seconds}")
    if max_minutes < 0:
        fail(f"--max-minutes must be >= 0, got {max_minutes}")
    if config is not None and not os.access(config, os.R_OK):
        fail(f"cannot read --config {config}")
    cpu_lo, cpu_hi = _range(cpu_milli, "--cpu-milli")
    mem_lo, mem_hi = _range(memory_mib, "--memory-mib")
    try:
        load = LoadSpec.of(builtin=builtin, script=script, scale=scale, clients=clients,
                           rate_tps=rate)
        space = SearchSpace(cpu_lo, cpu_hi, mem_lo, mem_hi, cpu_step=cpu_step)
        search = SpecSearch(space, p99_ms, confidence=confidence, repeats=repeats,
                            max_repeats=2 * repeats,
                            cost=CostWeights(price_core_hour, price_gib_hour))
        if cpu_lo * cfs_period_us / 1000 < 1000:
            raise ValueError(f"--cpu-milli LO={cpu_lo} gives a CFS quota below the kernel's "
                             f"1 ms minimum at --cfs-period-us {cfs_period_us}")
    except (ProfilingError, ValueError) as exc:
        fail(str(exc))
    directory = out_dir(out)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        _run(load, search, directory, config=config, point_seconds=point_seconds,
             warmup_seconds=warmup_seconds, cfs_period_us=cfs_period_us,
             max_seconds=max_minutes * 60 if max_minutes > 0 else None)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(load, search, directory: Path, *, config: Path | None, point_seconds: float,
         warmup_seconds: float, cfs_period_us: int, max_seconds: float | None) -> None:
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from cohabit.actuator.cgroup import LocalCgroupActuator
    from cohabit.engine.dbprofile import ProfileSettings, profile_database
    from cohabit.profiling import DatabaseSession, ProfilingError

    settings = ProfileSettings(point_seconds=point_seconds, warmup_seconds=warmup_seconds,
                               period_us=cfs_period_us, max_seconds=max_seconds)
    load_before = os.getloadavg()
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.completed:.0f} runs"), TimeElapsedColumn())
    try:
        with DatabaseSession(load, name=f"profile-{load.name}", user_config=config) as session, \
                Progress(*columns, console=console(), transient=False) as bar:
            task = bar.add_task(f"loading scale {load.scale}", total=None)
            actuator = LocalCgroupActuator({session.name: session.server_cgroup},
                                           period_us=cfs_period_us)

            def progress(event: str, info: dict) -> None:
                if event == "load":
                    bar.update(task, description=f"data loaded ({info['data_mib']:.0f} MiB)")
                elif event == "step":
                    s = info["step"]
                    bar.update(task, description=f"{s.phase}: {s.cpu_milli}m / "
                               f"{s.memory_mib} MiB")
                elif event == "run":
                    bar.advance(task)
                    p99 = info["p99_ms"]
                    bar.console.print(
                        f"  {info['cpu_milli']:>5}m {info['memory_mib']:>5} MiB  p99 "
                        f"{p99:8.1f} ms  tps {info['tps']:7.1f}  throttled "
                        f"{info['nr_throttled']}/{info['nr_periods']}  load "
                        f"{info['load1']:.1f}", highlight=False)

            result = profile_database(session, actuator, search, settings, progress=progress)
    except ProfilingError as exc:
        fail(str(exc))
    _write(result, load, search, settings, directory, load_before, config)


def _write(result, load, search, settings, directory: Path, load_before, config) -> None:
    from cohabit.cli._common import table
    from cohabit.cli._dbplots import curve_png

    points_path = directory / "points.csv"
    result.points.to_csv(points_path, index=False)
    choice = result.choice
    chosen = (choice.cpu_milli, choice.memory_mib) if choice and choice.feasible else None
    curve_png(result.points, result.curve, search.target_p99_ms, directory / "curve.png",
              chosen=chosen, title=f"{load.name} scale {load.scale} @ {load.rate_tps:g} TPS, "
              f"{load.clients} clients: p99 target {search.target_p99_ms:g} ms",
              ceiling_ms=settings.limit_ms(search.target_p99_ms))
    summary = result.summary.copy()
    states = search.states(summary)
    summary["state"] = [states[(int(c), int(m))] for c, m in
                        zip(summary["cpu_milli"], summary["memory_mib"], strict=True)]
    summary["cost_per_hour"] = [search.cost.cost(c, m) for c, m in
                                zip(summary["cpu_milli"], summary["memory_mib"], strict=True)]
    out = console()
    out.print(table(
        f"Measured allocations ({len(result.points)} runs, {len(summary)} allocations, "
        f"{result.elapsed_s / 60:.1f} min)", summary,
        ["cpu_milli", "memory_mib", "n", "p99_measured_ms", "p99_ms", "p99_upper_ms",
         "p_meet", "state", "cost_per_hour"],
        {"p99_measured_ms": ".1f", "p99_ms": ".1f", "p99_upper_ms": ".1f", "p_meet": ".2f",
         "cost_per_hour": ".4f"}))
    load_after = os.getloadavg()
    if result.stopped != "search complete":
        out.print(f"[yellow]the search stopped early ({result.stopped}); the choice is the "
                  "best of what was measured[/]")
    if choice is None or not choice.feasible:
        out.print(f"wrote {points_path} and {directory / 'curve.png'}")
        fail(choice.why if choice else "nothing was measured")
    rec = {
        "cpu_milli": choice.cpu_milli,
        "memory_mib": choice.memory_mib,
        "cfs_period_us": settings.period_us,
        "p99_ms_expected": round(choice.p99_ms_expected, 3),
        "p99_ms_upper": round(choice.p99_upper_ms, 3),
        "confidence": round(choice.confidence, 4),
        "target_p99_ms": search.target_p99_ms,
        "required_confidence": search.confidence,
        "why": choice.why,
        "resources": {k: {"cpu": f"{choice.cpu_milli}m", "memory": f"{choice.memory_mib}Mi"}
                      for k in ("requests", "limits")},
        "shared_buffers": ("from --config" if config else
                           f"{max(16, choice.memory_mib // 4)}MB (25% of the memory limit)"),
        "cfs_period_note": ("CPU is a CFS quota per period; at small quotas the period "
                            "changes p99 a lot (a transaction that exhausts the quota waits "
                            "for the next period): keep the container runtime's period at "
                            f"{settings.period_us} us for this spec to hold"),
        "cost_per_hour": round(choice.cost_per_hour, 6),
        "cost_source": search.cost.source,
        "workload": {"name": load.name, "builtin": load.builtin,
                     "script": str(load.script) if load.script else None,
                     "scale": load.scale, "clients": load.clients, "rate_tps": load.rate_tps,
                     "data_mib": round(result.data_mib, 1)},
        "search": {"runs": len(result.points), "allocations": len(summary),
                   "runs_at_choice": choice.runs, "repeats": search.repeats,
                   "point_seconds": settings.point_seconds, "elapsed_s": round(
                       result.elapsed_s, 1), "stopped": result.stopped,
                   "cpu_grid_step": search.space.cpu_step,
                   "memory_levels": list(search.space.memory_levels())},
        "load_average": {"before": [round(v, 2) for v in load_before],
                         "after": [round(v, 2) for v in load_after]},
    }
    (directory / "recommendation.json").write_text(json.dumps(rec, indent=2) + "\n")
    out.print(f"[bold]recommended:[/] {choice.cpu_milli}m CPU (CFS period "
              f"{settings.period_us} us), {choice.memory_mib} MiB: expected p99 "
              f"{choice.p99_ms_expected:.1f} ms (<= {choice.p99_upper_ms:.1f} ms at "
              f"{search.confidence:.0%}), P(meets {search.target_p99_ms:g} ms) = "
              f"{choice.confidence:.2f}")
    out.print(f"wrote {directory / 'recommendation.json'}, {points_path}, "
              f"{directory / 'curve.png'}")


def register(app: typer.Typer) -> None:
    """Add the ``profile`` command group to the ``cohabit`` app."""
    profile_app.command("database")(database)
    app.add_typer(profile_app, name="profile")
