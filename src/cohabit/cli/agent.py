"""``cohabit agent``: the NVML node agent (a DaemonSet in the chart) serving ``/metrics``."""

from __future__ import annotations

import logging
import os
import threading

import typer


def _agent(
    port: int = typer.Option(9400, help="Port of /metrics."),
    node: str = typer.Option(None, help="Node name label (default: $NODE_NAME)."),
    proc_root: str = typer.Option("/proc", help="Where the host's /proc is mounted."),
    once: bool = typer.Option(False, help="Print one scrape to stdout and exit."),
) -> None:
    """Serve per-GPU and per-process GPU utilisation and memory read through NVML.

    Without an NVIDIA driver the agent logs why, keeps running and serves cohabit_nvml_up 0.
    """
    from prometheus_client import CollectorRegistry, generate_latest, start_http_server

    from cohabit.cli._common import port as _port

    _port(port, "--port")

    from cohabit.telemetry.nvml import NvmlCollector, NvmlReader

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    reader = NvmlReader(proc_root=proc_root)
    registry = CollectorRegistry()
    registry.register(NvmlCollector(reader, node or os.environ.get("NODE_NAME", "")))
    if once:
        typer.echo(generate_latest(registry).decode())
        reader.close()
        return
    start_http_server(port, registry=registry)
    logging.getLogger("cohabit.agent").info("serving /metrics on :%d (NVML %s)", port,
                                            "up" if reader.available else "down")
    threading.Event().wait()


def register(app: typer.Typer) -> None:
    """Add ``agent`` to the ``cohabit`` app."""
    app.command("agent")(_agent)
