"""``cohabit recommend``: just-enough requests for a fleet from its telemetry, offline.

What the operator does for one workload at a time, done here for every pod of a telemetry
directory at once, as a VPA user would run the recommender over recorded metrics. The
operating point of each pod is chosen by the same nested, per-workload selection that
``cohabit evaluate rightsizing`` judges as ``just-enough``
(:func:`cohabit.predictors.select_operating_points`): each pod's history is cut into hourly
horizons, every candidate is back-tested on them, and every pod gets its own point under one
fleet-wide shortfall budget. The requests are then fitted on each pod's whole history
(:func:`cohabit.predictors.recommend`). The a-priori defaults' requests and the history's
peak are printed beside them.

Input: a GenAI-schema telemetry directory (``--data``, default the packaged subset). Output:
a table, and with ``--out DIR`` the file ``recommendations.csv`` (one row per pod and
resource). Unreadable input (a usage value that is negative, not finite or beyond its
range among them) exits 2 with the file, line and column; an option out of range exits 2
naming it. A resource whose every sample is 0 (an idle fleet) is left out of the selection
and said so.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from cohabit.cli._common import (
    ExecutorOption,
    SchedulerOption,
    active_resources,
    check_horizons,
    console,
    data_dir,
    execution,
    fail,
    fan_out_on,
    genai_frame,
    number,
    out_dir,
    staged,
    table,
)
from cohabit.predictors.telemetry_data import PACKAGED_GENAI

__all__ = ["register"]

RESOURCES = ("gpu_milli", "gpu_memory_mib")


def recommend_fleet(
    data: Path | None = typer.Option(
        None, "--data", help="GenAI-schema telemetry directory (default: the packaged copy)."),
    out: Path | None = typer.Option(None, "--out", help="Directory for recommendations.csv."),
    horizon_h: float = typer.Option(
        1.0, help="Refit horizon (hours, > 0) the points are chosen for."),
    evidence_half_life_h: float = typer.Option(
        6.0, help="Half-life (hours) of the back-test evidence; 0 = all horizons alike."),
    executor: ExecutorOption = "local",
    scheduler: SchedulerOption = None,
) -> None:
    """Per-pod GPU share (milli-GPU) and GPU memory (MiB) requests from telemetry."""
    import pandas as pd

    from cohabit.predictors import recommend, select_operating_points

    run_on = execution(executor, scheduler)
    number(horizon_h, "--horizon-h", above=0)
    number(evidence_half_life_h, "--evidence-half-life-h", at_least=0)
    if out is not None:
        out_dir(out)
    frame = genai_frame(data_dir(data, PACKAGED_GENAI))
    check_horizons(frame, horizon_h * 3600)
    with fan_out_on(run_on) as pool:
        selection = select_operating_points(
            frame, active_resources(frame, RESOURCES), horizon_s=horizon_h * 3600,
            evidence_half_life_s=evidence_half_life_h * 3600 if evidence_half_life_h > 0
            else None,
            executor=pool,
        )
    rows = []
    for pod, usage in frame.groupby("pod", sort=True):
        usage = usage[["time", *RESOURCES]]
        if usage[list(RESOURCES)].notna().sum().max() < 2:
            continue
        tuned = recommend(usage, selection=selection, workload=str(pod))
        prior = recommend(usage)
        for resource in RESOURCES:
            y = usage[resource].dropna()
            if y.empty:
                continue
            point = selection.points.get(str(pod), {}).get(resource)
            rows.append({
                "pod": str(pod), "resource": resource,
                "request": getattr(tuned.target, resource),
                "request_prior": getattr(prior.target, resource),
                "peak": float(y.max()),
                "confidence": tuned.confidence,
                "low_confidence": tuned.low_confidence,
                "operating_point": point.label() if point is not None else "prior",
                "how": selection.how.get(str(pod), {}).get(resource, "prior"),
            })
    if not rows:
        fail("no pod has two samples of GPU share or GPU memory")
    result = pd.DataFrame(rows)
    total = result.groupby("resource")[["request", "request_prior", "peak"]].sum()
    for resource, r in total.iterrows():
        if r["peak"] <= 0:
            console().print(f"{resource}: every pod's peak is 0 (idle); requests sum to "
                            f"{r['request']:,.0f}")
            continue
        console().print(
            f"{resource}: requests sum to {r['request']:,.0f} "
            f"({1 - r['request'] / r['peak']:.1%} below the pods' peaks; "
            f"a-priori defaults {1 - r['request_prior'] / r['peak']:.1%})")
    console().print(table(
        "Just-enough requests (per pod, operating point chosen on its own back-test)", result,
        ["pod", "resource", "request", "request_prior", "peak", "confidence",
         "operating_point"],
        {"request": ",.0f", "request_prior": ",.0f", "peak": ",.0f", "confidence": ".2f"},
    ))
    if out is not None:
        with staged(out) as dst:
            result.to_csv(dst / "recommendations.csv", index=False)
        console().print(f"wrote {escape(str(out / 'recommendations.csv'))}")


def register(app: typer.Typer) -> None:
    """Add the ``recommend`` command to the ``cohabit`` app."""
    app.command("recommend")(recommend_fleet)
