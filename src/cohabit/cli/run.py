"""``cohabit operator`` (alias ``cohabit run``): start the operator."""

from __future__ import annotations

import os

import typer

from cohabit.config import OperatorSettings, SettingsError


def _operator(
    kubeconfig: str = typer.Option(None, help="kubeconfig file (default: in-cluster, then "
                                              "KUBECONFIG)."),
    prometheus_url: str = typer.Option(None, help="Prometheus base URL (overrides "
                                                  "COHABIT_PROMETHEUS_URL)."),
    namespace: str = typer.Option(None, help="Watch one namespace (default: all)."),
    standalone: bool = typer.Option(False, help="No peering: a single instance (no peering "
                                                "resource needed)."),
    priority: int = typer.Option(0, help="kopf peering priority."),
    metrics_port: int = typer.Option(None, help="Port of /metrics."),
    liveness_port: int = typer.Option(None, help="Port of /healthz."),
    ledger_namespace: str = typer.Option(
        None, help="Namespace of the eviction-ledger ConfigMap (default: "
                   "COHABIT_LEDGER_NAMESPACE; empty = in memory)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
) -> None:
    """Run the cohabit operator (kopf): reconcile workloads, schedule and rebind pods.

    Settings come from COHABIT_* environment variables (see cohabit.config.settings);
    options override them.
    """
    from dataclasses import replace

    from cohabit.cli._common import port
    from cohabit.operator.logs import configure_logging
    from cohabit.operator.main import OperatorStartError, run

    port(metrics_port, "--metrics-port")
    port(liveness_port, "--liveness-port")
    try:
        settings = OperatorSettings.from_env()
    except SettingsError as exc:
        raise typer.BadParameter(str(exc)) from exc
    # [namespace/name] on every line about an object; kopf's paused watches at WARNING
    configure_logging(verbose, settings.peering)
    if prometheus_url is not None:
        settings = replace(settings, prometheus=replace(settings.prometheus, url=prometheus_url))
    if namespace is not None:
        settings = replace(settings, namespace=namespace)
    metrics = settings.metrics
    if metrics_port is not None:
        metrics = replace(metrics, port=metrics_port)
    if liveness_port is not None:
        metrics = replace(metrics, liveness_port=liveness_port)
    settings = replace(settings, metrics=metrics)
    ledger = (ledger_namespace if ledger_namespace is not None
              else os.environ.get("COHABIT_LEDGER_NAMESPACE", ""))
    try:
        run(settings, kubeconfig=kubeconfig, standalone=standalone, priority=priority,
            ledger_namespace=ledger)
    except OperatorStartError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def register(app: typer.Typer) -> None:
    """Add ``operator`` and its alias ``run`` to the ``cohabit`` app."""
    app.command("operator")(_operator)
    app.command("run", help="Alias of `cohabit operator`.")(_operator)
