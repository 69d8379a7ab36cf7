"""A real Prometheus (Debian's ``/usr/bin/prometheus`` 2.42) on loopback, and exporters.

:func:`start_prometheus` writes a config that scrapes the given ``host:port`` targets every
``scrape_interval`` (default 1 s), starts Prometheus with a temporary TSDB on a free
127.0.0.1 port and waits for ``/-/ready``. The first sample of a target is queryable after
about one scrape interval plus the TSDB head commit (a few seconds); use
:meth:`PrometheusServer.wait_for` rather than sleeping.

:func:`serve_registry` serves a ``prometheus_client`` registry on 127.0.0.1 (free port) and
returns its ``target`` (``"127.0.0.1:PORT"``) for the Prometheus config.
"""

from __future__ import annotations

import json
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry, start_http_server

from . import binaries
from .procs import ManagedProcess, free_port, wait_until


@dataclass
class PrometheusServer:
    """A running Prometheus.

    Attributes:
        url: base URL, e.g. ``http://127.0.0.1:41234`` (give it to prometheus-api-client).
        config_path: the generated ``prometheus.yml``.
        process: the managed process (``stop()`` to simulate Prometheus being down).
    """

    url: str
    config_path: Path
    process: ManagedProcess
    targets: dict[str, list[str]] = field(default_factory=dict)

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query; returns ``data.result`` (list of ``{"metric": .., "value": [t, v]}``).

        Raises ``RuntimeError`` if Prometheus answers with an error status.
        """
        params = urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{params}", timeout=5) as resp:
            doc = json.loads(resp.read())
        if doc.get("status") != "success":
            raise RuntimeError(f"Prometheus query {promql!r} failed: {doc}")
        return doc["data"]["result"]

    def wait_for(self, promql: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll ``promql`` until it returns a non-empty result (returned); ``TimeoutError``
        after ``timeout`` seconds."""
        return wait_until(lambda: self.query(promql) or None, timeout=timeout,
                          what=f"Prometheus result for {promql!r}", interval=0.25,
                          alive=self.process.exited)

    def active_targets(self) -> list[dict[str, Any]]:
        """``/api/v1/targets`` active targets (scrape URL, health, lastError)."""
        with urllib.request.urlopen(f"{self.url}/api/v1/targets", timeout=5) as resp:
            return json.loads(resp.read())["data"]["activeTargets"]

    def stop(self) -> None:
        """Stop Prometheus (idempotent)."""
        self.process.stop()


def start_prometheus(
    targets: dict[str, list[str]] | list[str],
    workdir: Path | None = None,
    scrape_interval: str = "1s",
    extra_scrape_configs: list[dict[str, Any]] | None = None,
    rule_files: list[str] | None = None,
    port: int | None = None,
) -> PrometheusServer:
    """Start Prometheus scraping ``targets`` and wait until it is ready (about 1-2 s).

    Args:
        targets: ``{"job": ["127.0.0.1:PORT", ...]}`` or a plain list (job ``"test"``).
            Only loopback targets belong here.
        workdir: where config, TSDB and log go (a new temp dir if ``None``).
        scrape_interval: Prometheus duration string for scrape and evaluation interval.
        extra_scrape_configs: more ``scrape_configs`` entries, passed through verbatim.
        rule_files: paths of recording/alerting rule files.
        port: listen on this 127.0.0.1 port (default: a free one).
    Raises ``RuntimeError``/``TimeoutError`` with the log tail if Prometheus does not start.
    """
    binary = binaries.require("prometheus")
    if isinstance(targets, list):
        targets = {"test": targets}
    workdir = Path(workdir or tempfile.mkdtemp(prefix="cohabit-prometheus-"))
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval,
                   "scrape_timeout": scrape_interval},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": list(addrs)}]}
            for job, addrs in targets.items()
        ] + list(extra_scrape_configs or []),
    }
    if rule_files:
        config["rule_files"] = list(rule_files)
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    proc = ManagedProcess(
        "prometheus",
        [str(binary), f"--config.file={config_path}",
         f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
         "--storage.tsdb.retention.time=1d", "--web.enable-lifecycle", "--log.level=warn"],
        workdir / "prometheus.log",
    )

    def ready() -> bool | None:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as resp:
            return True if resp.status == 200 else None

    try:
        wait_until(ready, timeout=30, what="Prometheus /-/ready", alive=proc.exited)
    except BaseException:
        proc.stop()
        raise
    return PrometheusServer(url=url, config_path=config_path, process=proc, targets=targets)


@dataclass
class Exporter:
    """A ``prometheus_client`` registry served over HTTP on loopback.

    Attributes:
        target: ``"127.0.0.1:PORT"`` for a scrape config; ``url`` is its ``/metrics`` URL.
    """

    registry: CollectorRegistry
    target: str
    _server: Any
    _thread: Any

    @property
    def url(self) -> str:
        return f"http://{self.target}/metrics"

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None


def serve_registry(registry: CollectorRegistry) -> Exporter:
    """Serve ``registry`` on 127.0.0.1 at a free port; return the :class:`Exporter`."""
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    return Exporter(registry=registry, target=f"127.0.0.1:{server.server_port}",
                    _server=server, _thread=thread)
