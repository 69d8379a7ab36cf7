"""``cohabit evaluate``: judge the predictors on real telemetry against the baselines.

Subcommands (each prints a table, writes CSV files and PNG plots to ``--out``):

* ``rightsizing --data DIR``: GenAI-schema telemetry directory; JustEnough vs the static
  request, p95 x 1.15 and the VPA recommender, rolling origin per pod; JustEnough's operating
  point is selected on inner validation horizons of the fitting windows (nested rolling
  origin), its a-priori defaults judged beside it.
* ``interference --data PATH``: Gavel ``physical_cluster_throughputs.json`` (or its folder);
  probe-profile model vs no-profile, mean-fraction and no-interference, per GPU type (every
  type the file holds unless ``--gpu`` names some).
* ``peaks --data DIR``: GenAI-schema telemetry; Kube-Knots PP vs cohabit's quantile
  forecaster, and Kube-Knots correlation-based co-location.

Unreadable or malformed input, and an option out of its range, end the command with exit
code 2 and a message naming the file, line and field or the option; the options are checked
before the data is read. Output files appear in ``--out`` only when all of them were
written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from cohabit.cli._common import ExecutorOption, SchedulerOption, execution, fan_out_on
from cohabit.cli._common import active_resources as _active
from cohabit.cli._common import check_horizons as _check_horizons
from cohabit.cli._common import console as _console
from cohabit.cli._common import data_dir as _data
from cohabit.cli._common import fail as _fail
from cohabit.cli._common import genai_frame as _genai
from cohabit.cli._common import number as _number
from cohabit.cli._common import out_dir as _out_dir
from cohabit.cli._common import staged as _staged
from cohabit.cli._common import table as _table
from cohabit.predictors.telemetry_data import PACKAGED_GAVEL, PACKAGED_GENAI, TelemetryDataError

__all__ = ["register"]

evaluate_app = typer.Typer(
    help="Judge cohabit's predictors on real telemetry against the baselines.",
    no_args_is_help=True,
)

DATA_HELP = (
    "Input data: a GenAI-schema telemetry directory (rightsizing, peaks) or Gavel's "
    "physical_cluster_throughputs.json or its folder (interference). Default: the copy "
    "shipped inside the cohabit package."
)
_DataOption = Annotated[Path | None, typer.Option("--data", help=DATA_HELP)]
_OutOption = Annotated[Path, typer.Option("--out", help="Directory for CSV and PNG results.")]


def _figure(ncols: int, width: float):
    """A ``1 x ncols`` figure on the Agg canvas (no pyplot global state, nothing to close)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, 4.5), layout="tight")
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


@evaluate_app.command("rightsizing")
def rightsizing(
    out: _OutOption,
    data: _DataOption = None,
    horizon_h: float = typer.Option(
        1.0, help="Judged horizon per origin (hours, > 0; at most 1,000 per pod history)."),
    start: float = typer.Option(
        0.5, help="First origin as a fraction of each pod's history (between 0 and 1)."),
    evidence_half_life_h: float = typer.Option(
        6.0, help="Half-life (hours) of the validation evidence in the nested selection; "
        "0 = all validation horizons count alike."),
    executor: ExecutorOption = "local",
    scheduler: SchedulerOption = None,
) -> None:
    """Right-sizing: reserved vs static request, under-provisioning, QoS violations."""
    from cohabit.predictors.evaluation import (
        evaluate_rightsizing,
        per_pod_rightsizing,
        summarize_rightsizing,
    )
    from cohabit.predictors.selection import NestedSelection
    run_on = execution(executor, scheduler)
    _number(horizon_h, "--horizon-h", above=0)
    _number(start, "--start", above=0, below=1)
    _number(evidence_half_life_h, "--evidence-half-life-h", at_least=0)
    _out_dir(out)
    data = _data(data, PACKAGED_GENAI)
    frame = _genai(data)
    _check_horizons(frame, horizon_h * 3600)
    resources = _active(frame, ("gpu_milli", "gpu_memory_mib"))
    with fan_out_on(run_on) as pool:
        evaluation = evaluate_rightsizing(
            frame, resources, horizon_s=horizon_h * 3600, start_fraction=start,
            nested=NestedSelection(
                evidence_half_life_s=evidence_half_life_h * 3600 if evidence_half_life_h > 0
                else None),
            executor=pool,
        )
    results = evaluation.results
    if results.empty:
        _fail(f"{data}: no pod has enough history to evaluate")
    summary = summarize_rightsizing(results)
    per_pod = per_pod_rightsizing(results)
    _print_rightsizing(summary, evaluation.selection)
    fig = _plot_rightsizing(per_pod, list(dict.fromkeys(summary["resource"])))
    with _staged(out) as dst:
        summary.to_csv(dst / "rightsizing_summary.csv", index=False)
        per_pod.to_csv(dst / "rightsizing_per_pod.csv", index=False)
        evaluation.selection.to_csv(dst / "rightsizing_selection.csv", index=False)
        evaluation.candidates.to_csv(dst / "rightsizing_candidates.csv", index=False)
        fig.savefig(dst / "rightsizing_per_pod.png", dpi=110)
    _console().print(f"wrote {escape(str(out))}/rightsizing_summary.csv, "
                     "rightsizing_per_pod.csv/.png, rightsizing_selection.csv, "
                     "rightsizing_candidates.csv")


def _print_rightsizing(summary, selection) -> None:
    """The right-sizing table (one row per resource and method) and, when the nested
    selection ran, the three operating points chosen most often (share of origins)."""
    pct = ".1%"
    _console().print(_table(
        "Right-sizing (saving = 1 - reserved / static peak request)", summary,
        ["resource", "method", "saving", "under_share", "qos_violation_share", "saving_p10",
         "saving_p50", "saving_p90", "under_share_p50", "under_share_p90", "pods"],
        {"saving": pct, "under_share": ".2%", "qos_violation_share": ".2%", "saving_p10": pct,
         "saving_p50": pct, "saving_p90": pct, "under_share_p50": ".2%",
         "under_share_p90": ".2%"},
    ))
    if not selection.empty:
        chosen = selection.groupby(["resource", "method"])["candidate"]
        top = chosen.agg(lambda c: "; ".join(
            f"{k} ({v:.0%})" for k, v in c.value_counts(normalize=True).head(3).items()))
        _console().print(_table(
            "Nested selection: operating points chosen on validation horizons (share of origins)",
            top.reset_index(), ["resource", "method", "candidate"], {},
        ))


def _plot_rightsizing(per_pod, resources: list[str]):
    """Per-pod scatter, one panel per resource: under-provisioned intervals (%) against the
    reservation saved below the static request (%, clipped to -50..100)."""
    fig, axes = _figure(len(resources), 6)
    for ax, resource in zip(axes, resources, strict=True):
        for method, g in per_pod[per_pod["resource"] == resource].groupby("method", sort=False):
            ax.scatter(g["under_share"] * 100, g["saving"] * 100, s=12, label=method, alpha=0.7)
        ax.set_ylim(-50, 100)  # idle pods (static ~0) give huge negative savings: clipped
        ax.set_title(f"{resource}: per pod (y clipped to -50..100 %)")
        ax.set_xlabel("under-provisioned intervals (%)")
        ax.set_ylabel("reserved below static request (%)")
        ax.legend(fontsize=7)
    return fig


@evaluate_app.command("interference")
def interference(
    out: _OutOption,
    data: _DataOption = None,
    gpu: list[str] | None = typer.Option(
        None, "--gpu", help="GPU type to judge; repeat for several. Default: every GPU type "
        "the file holds."),
    probes: int = typer.Option(3, min=1, max=3, help="Probe workloads per profile (<= 3)."),
    executor: ExecutorOption = "local",
    scheduler: SchedulerOption = None,
) -> None:
    """Interference: held-out Gavel jobs, co-located throughput fraction both directions."""
    from cohabit.predictors.interference import load_gavel

    run_on = execution(executor, scheduler)
    _out_dir(out)
    data = _data(data, PACKAGED_GAVEL)
    path = data / "physical_cluster_throughputs.json" if data.is_dir() else data
    try:
        pairs = load_gavel(path, gpu or None)
    except TelemetryDataError as exc:
        _fail(str(exc))
    with fan_out_on(run_on) as pool:
        preds, summary = _judge_gpu_types(pairs, probes, path, pool)
    metrics = ["spearman", "spearman_within_job", "mae_suffered", "mae_inflicted",
               "mae_job_p90", "mae_single_gpu", "mae_single_gpu_unprobed", "mae_nonzero"]
    _console().print(_table(
        f"Interference on held-out jobs ({probes}-probe profile)", summary,
        ["gpu", "method", "mae", *metrics, "pairs"],
        {k: ".3f" for k in ("mae", *metrics)},
    ))
    gpus = list(dict.fromkeys(summary["gpu"]))
    fig, axes = _figure(len(gpus), 5)
    for ax, g in zip(axes, gpus, strict=True):
        for method in ("probe-profile", "no-profile"):
            p = preds[(preds["gpu"] == g) & (preds["method"] == method)]
            ax.scatter(p["true"], p["pred"], s=6, alpha=0.5, label=method)
        ax.plot([0, 1], [0, 1], color="grey", lw=1)
        ax.set_title(f"{g}: predicted vs measured fraction")
        ax.set_xlabel("measured co-located throughput fraction")
        ax.set_ylabel("predicted")
        ax.legend(fontsize=7)
    with _staged(out) as dst:
        summary.to_csv(dst / "interference_summary.csv", index=False)
        preds.to_csv(dst / "interference_predictions.csv", index=False)
        fig.savefig(dst / "interference.png", dpi=110)
    _console().print(f"wrote {escape(str(out))}/interference_summary.csv, "
                     "interference_predictions.csv, .png")


def _judge_gpu_types(pairs, probes: int, path: Path, pool=None):
    """``evaluate_interference`` on each GPU type of ``pairs`` (its folds on ``pool``, an
    executor or ``None``); a type with too few jobs measured against every other to choose
    ``probes`` probes is skipped with a note (exit 2 when no type is left)."""
    import pandas as pd

    from cohabit.predictors.interference import evaluate_interference

    preds, summaries, skipped = [], [], []
    for gpu_type, group in pairs.groupby("gpu", sort=True):
        try:
            p, s = evaluate_interference(group, n_probes=probes, executor=pool)
        except ValueError as exc:  # choose_probes: too few complete co-runners
            skipped.append(f"{gpu_type} ({exc})")
            continue
        preds.append(p)
        summaries.append(s)
    for note in skipped:
        _console().print(f"skipped GPU type {note}", highlight=False)
    if not preds:
        _fail(f"{path}: no GPU type can be judged with {probes} probes: {'; '.join(skipped)}")
    return pd.concat(preds, ignore_index=True), pd.concat(summaries, ignore_index=True)


@evaluate_app.command("peaks")
def peaks(
    out: _OutOption,
    data: _DataOption = None,
    fit_fraction: float = typer.Option(
        0.5, help="Share of each series used for fitting (between 0 and 1)."),
    peak_target: float = typer.Option(
        0.1, help="Peak-oriented variant: allowed share of peaks under-predicted, held on an "
        "inner split of the fitting part when its quantile level is chosen."),
) -> None:
    """Peaks: one-step forecast error and peak under-prediction; correlation-based co-location."""
    from cohabit.predictors.peaks import evaluate_correlation, evaluate_peaks
    _number(fit_fraction, "--fit-fraction", above=0, below=1)
    _number(peak_target, "--peak-target", at_least=0, at_most=1)
    _out_dir(out)
    data = _data(data, PACKAGED_GENAI)
    frame = _genai(data)
    chosen: dict = {}
    per_pod = evaluate_peaks(frame, fit_fraction=fit_fraction, peak_target=peak_target,
                             selected=chosen)
    if per_pod.empty:
        _fail(f"{data}: no series long enough to evaluate (each needs 100 samples, and "
              f"--fit-fraction {fit_fraction:g} of them for fitting must be 20 or more)")
    summary = _peaks_summary(per_pod)
    _print_peaks(summary, chosen)
    corr = evaluate_correlation(frame, fit_fraction=fit_fraction)
    _print_correlation(corr)
    fig = _plot_peaks(summary, corr)
    with _staged(out) as dst:
        per_pod.to_csv(dst / "peaks_per_pod.csv", index=False)
        summary.to_csv(dst / "peaks_summary.csv", index=False)
        corr.to_csv(dst / "correlation_pairs.csv", index=False)
        fig.savefig(dst / "peaks.png", dpi=110)
    _console().print(
        f"wrote {escape(str(out))}/peaks_summary.csv, peaks_per_pod.csv, "
        "correlation_pairs.csv, peaks.png"
    )


def _peaks_summary(per_pod):
    """``evaluate_peaks``' rows summed per series and method: MAE (mean, p90), mean
    forecast, peaks, peaks under-predicted, pods and the under-predicted share (NaN where
    a series had no peak)."""
    summary = per_pod.groupby(["series", "method"], sort=False).agg(
        mae=("mae", "mean"), mae_p90=("mae", lambda s: s.quantile(0.9)),
        forecast_mean=("reserved_mean", "mean"), peaks=("peaks", "sum"),
        peaks_under=("peaks_under", "sum"), pods=("pod", "nunique"),
    ).reset_index()
    peaks_n = summary["peaks"].where(summary["peaks"] > 0)
    summary["peak_under_rate"] = summary["peaks_under"] / peaks_n
    return summary


def _print_peaks(summary, chosen: dict) -> None:
    """The one-step forecast table and, per series, the peak quantile chosen on the
    fitting part with its validation under-prediction rates."""
    _console().print(_table(
        "One-step forecasts (peak = value >= the pod's fitting-window p95)", summary,
        ["series", "method", "mae", "mae_p90", "forecast_mean", "peaks", "peak_under_rate", "pods"],
        {"mae": ".1f", "mae_p90": ".1f", "forecast_mean": ".1f", "peak_under_rate": ".1%"},
    ))
    for column, (level, rates) in chosen.items():
        shown = ", ".join(f"q{q:g}: {r:.1%}" for q, r in rates.items())
        _console().print(f"ours-peak for {column}: quantile {level:g} chosen on the fitting "
                         f"part (validation peaks under-predicted: {shown})")


def _print_correlation(corr) -> None:
    """Correlation-based co-location: peak ratio of the pairs it would and would not
    co-locate (nothing when there are no pairs)."""
    if corr.empty:
        return
    by = corr.groupby("colocate")["peak_ratio"].agg(["mean", "median", "count"]).reset_index()
    names = {True: "CBP co-locate (corr < 0.5)", False: "CBP refuse"}
    by["colocate"] = by["colocate"].map(names)
    _console().print(_table(
        "Correlation-based co-location: peak(a+b) / (peak(a)+peak(b)) on the judged part",
        by.rename(columns={"colocate": "method"}), ["method", "mean", "median", "count"],
        {"mean": ".3f", "median": ".3f"},
    ))


def _plot_peaks(summary, corr):
    """Left: MAE against peaks under-predicted per series and method (log scale unless
    every error is 0); right: pairs' duty correlation against their peak ratio."""
    fig, axes = _figure(2, 5.5)
    for method, g in summary.groupby("method", sort=False):
        axes[0].scatter(g["peak_under_rate"] * 100, g["mae"], label=method)
        for _, r in g.iterrows():
            axes[0].annotate(r["series"], (r["peak_under_rate"] * 100, r["mae"]), fontsize=7)
    axes[0].set_xlabel("peaks under-predicted (%)")
    axes[0].set_ylabel("one-step MAE")
    if (summary["mae"] > 0).any():  # an idle fleet's errors are all 0: no log scale
        axes[0].set_yscale("log")
    axes[0].legend(fontsize=7)
    if not corr.empty:
        axes[1].scatter(corr["corr_fit"], corr["peak_ratio"], s=4, alpha=0.4)
        axes[1].axvline(0.5, color="red", lw=1)
    axes[1].set_xlabel("GPU duty correlation (fitting part)")
    axes[1].set_ylabel("peak(a+b) / (peak a + peak b), judged part")
    return fig


def register(app: typer.Typer) -> None:
    """Add the ``evaluate`` command group to the ``cohabit`` app."""
    app.add_typer(evaluate_app, name="evaluate")
