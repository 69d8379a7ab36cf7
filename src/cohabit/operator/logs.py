"""The operator's log: one format naming the object a line is about, and kopf's watch pauses
surfaced.

* :class:`ObjectFormatter` prefixes ``[namespace/name]`` to every record that carries an
  object, whether kopf's own (its ``k8s_ref`` extra) or cohabit's (``extra={"object": ...}``,
  see :func:`obj`).
* :class:`PauseMonitor` is a filter on kopf's watch-stream logger: kopf says at DEBUG only
  that it pauses a watch (the peering CRD is missing, another operator has priority); the
  monitor re-levels that line to WARNING with the reason in plain words, and keeps the set
  of paused watches for ``/healthz``.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

__all__ = ["ObjectFormatter", "PauseMonitor", "configure_logging", "obj", "pause_monitor"]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
WATCH_LOGGER = "kopf._cogs.clients.watching"

_PAUSE = re.compile(r"^Pausing the watch-stream for (?P<resource>\S+) (?P<where>.+?)"
                    r"(?: \(blockers: (?P<blockers>.*)\))?\.$")
_RESUME = re.compile(r"^Resuming the watch-stream for (?P<resource>\S+) (?P<where>.+?)"
                     r"(?: \(resolved: .*\))?\.$")


def obj(namespace: str, name: str) -> dict[str, Any]:
    """``extra=`` for a log call about one object: ``log.info(..., extra=obj(ns, name))``."""
    return {"object": f"{namespace}/{name}" if namespace else name}


class ObjectFormatter(logging.Formatter):
    """:class:`logging.Formatter` adding ``[namespace/name]`` before the message of a record
    about an object (cohabit's ``object`` extra or kopf's ``k8s_ref``)."""

    def format(self, record: logging.LogRecord) -> str:
        name = getattr(record, "object", None)
        ref = getattr(record, "k8s_ref", None)
        if name is None and isinstance(ref, dict):
            ns, n = ref.get("namespace") or "", ref.get("name") or ""
            name = f"{ns}/{n}" if ns else n
        if name:
            record = logging.makeLogRecord(record.__dict__)
            record.msg = f"[{name}] {record.getMessage()}"
            record.args = None
        return super().format(record)


def _explain(blockers: str, peering: str) -> str:
    if "peering CRD is missing" in blockers:
        return ("the kopf peering CRD (clusterkopfpeerings.kopf.dev) is missing: install "
                "cohabit's CRDs (manifests/crds/) or run with --standalone")
    if f"{peering}@" in blockers:
        return (f"another cohabit operator of peering {peering!r} is active (higher "
                "priority, or the same priority: then every instance pauses)")
    return blockers or "paused by kopf"


class PauseMonitor(logging.Filter):
    """Filter on kopf's watch-stream logger: pause lines become WARNING (resume lines INFO)
    in plain words, other DEBUG lines pass only when ``verbose``.

    Args:
        peering: the peering name (for the message).
        verbose: let kopf's other DEBUG lines of this logger through.

    Attributes:
        paused: resource -> why its watch is paused (empty: nothing paused).
    """

    def __init__(self, peering: str = "cohabit", verbose: bool = False) -> None:
        super().__init__()
        self.peering = peering
        self.verbose = verbose
        self.paused: dict[str, str] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        pause = _PAUSE.match(text)
        if pause:
            why = _explain(pause.group("blockers") or "", self.peering)
            with self._lock:
                self.paused[pause.group("resource")] = why
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = (f"watch of {pause.group('resource')} "
                                       f"{pause.group('where')} paused: {why}"), None
            return True
        resume = _RESUME.match(text)
        if resume:
            with self._lock:
                was = self.paused.pop(resume.group("resource"), None)
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = (f"watch of {resume.group('resource')} "
                                       f"{resume.group('where')} resumed"), None
            return was is not None or self.verbose
        return self.verbose or record.levelno > logging.DEBUG

    def snapshot(self) -> dict[str, str]:
        """A copy of :attr:`paused`."""
        with self._lock:
            return dict(self.paused)


def configure_logging(verbose: bool = False, peering: str = "cohabit") -> PauseMonitor:
    """Root logging with :class:`ObjectFormatter` (INFO, or DEBUG when ``verbose``) and the
    :class:`PauseMonitor` on kopf's watch-stream logger (returned: the operator's
    ``/healthz`` reads it). Without ``verbose`` kopf's per-object "handler succeeded" lines
    and aiohttp's access log are left out (noise at scale)."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    handler = logging.StreamHandler()
    handler.setFormatter(ObjectFormatter(FORMAT))
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    if not verbose:
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return pause_monitor(peering, verbose, replace=True)


def pause_monitor(peering: str = "cohabit", verbose: bool = False, *,
                  replace: bool = False) -> PauseMonitor:
    """The :class:`PauseMonitor` on kopf's watch-stream logger, installed when there is none
    (or ``replace``)."""
    watching = logging.getLogger(WATCH_LOGGER)
    existing = [f for f in watching.filters if isinstance(f, PauseMonitor)]
    if existing and not replace:
        return existing[0]
    for old in existing:
        watching.removeFilter(old)
    monitor = PauseMonitor(peering, verbose)
    watching.setLevel(logging.DEBUG)  # the pause lines are DEBUG in kopf
    watching.addFilter(monitor)
    return monitor
