"""Kubernetes Events from cohabit, as kube-scheduler and the VPA updater post them: the object
concerned as ``involvedObject``, a CamelCase ``reason``, a ``message``, ``type``
``Normal``/``Warning``, ``source.component: cohabit``.

Repeats are aggregated as client-go's event recorder does (``tools/record``'s
``EventCorrelator``), not posted anew every pass:

* the same object, type, reason and message again bumps ``count`` and ``lastTimestamp`` of the
  Event already posted (a PATCH), at most once per ``repeat_interval_s`` (repeats in between
  are counted and written with the next PATCH);
* more than ``similar_max`` distinct messages for the same object, type and reason within
  ``similar_window_s`` collapse into one Event whose message starts with
  ``(combined from similar events):`` (client-go's ``EventAggregator``).

Posting runs in a background thread from a bounded queue (as client-go's broadcaster), so a
pass binding 100 pods never waits for 100 POSTs; every API call has a timeout; a failure is
logged and never reaches the reconcile that recorded the event.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "ApiEventSink",
    "EventCorrelator",
    "EventRecorder",
    "MemoryEventSink",
    "ObjectRef",
    "PostedEvent",
]

log = logging.getLogger(__name__)

COMPONENT = "cohabit"
COMBINED_PREFIX = "(combined from similar events): "


@dataclass(frozen=True)
class ObjectRef:
    """The object an Event is about (core/v1 ``ObjectReference``).

    Attributes:
        kind: e.g. ``Pod``, ``GpuWorkload``.
        name: object name.
        namespace: ``""`` for cluster-scoped objects (their Events go to ``default``, as
            kube does for Nodes).
        uid: the object's UID (``kubectl describe`` finds Events by it; ``""`` = unknown).
        api_version: e.g. ``v1``, ``cohabit.io/v1alpha1``.
    """

    kind: str
    name: str
    namespace: str = ""
    uid: str = ""
    api_version: str = "v1"

    def as_dict(self) -> dict[str, str]:
        """The ``involvedObject`` dict."""
        out = {"kind": self.kind, "name": self.name, "apiVersion": self.api_version}
        if self.namespace:
            out["namespace"] = self.namespace
        if self.uid:
            out["uid"] = self.uid
        return out

    @property
    def event_namespace(self) -> str:
        """Where its Events live."""
        return self.namespace or "default"


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class PostedEvent:
    """One aggregated Event as cohabit knows it.

    Attributes:
        name: the Event object's name (``<object>.<random hex>``).
        ref, type, reason, message: what it says.
        count: occurrences so far; ``posted_count`` how many the API server has.
        first, last: epoch seconds of the first and latest occurrence.
        posted_at: epoch seconds of the last write (0 = never written).
    """

    name: str
    ref: ObjectRef
    type: str
    reason: str
    message: str
    count: int = 1
    first: float = 0.0
    last: float = 0.0
    posted_count: int = 0
    posted_at: float = 0.0

    def body(self) -> dict[str, Any]:
        """The core/v1 Event object."""
        return {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": self.name, "namespace": self.ref.event_namespace},
            "involvedObject": self.ref.as_dict(),
            "reason": self.reason, "message": self.message[:1024], "type": self.type,
            "source": {"component": COMPONENT}, "reportingComponent": COMPONENT,
            "reportingInstance": socket.gethostname()[:128],
            "firstTimestamp": _stamp(self.first), "lastTimestamp": _stamp(self.last),
            "count": self.count,
        }


@dataclass
class EventCorrelator:
    """Aggregation state (no I/O): which Event an occurrence belongs to and what is due.

    Args:
        repeat_interval_s: least seconds between two writes of the same Event.
        similar_max: distinct messages per (object, type, reason) within ``similar_window_s``
            before they are combined into one Event (client-go: 10 in 600 s).
        max_events: Events remembered (least recently seen are forgotten, as client-go's
            LRU cache of 4096).
    """

    repeat_interval_s: float = 30.0
    similar_max: int = 10
    similar_window_s: float = 600.0
    max_events: int = 4096
    events: OrderedDict = field(default_factory=OrderedDict)
    _similar: dict = field(default_factory=dict)

    def observe(self, ref: ObjectRef, type_: str, reason: str, message: str,
                now: float) -> PostedEvent:
        """Record one occurrence; returns the (possibly combined) Event it counts towards."""
        group = (ref, type_, reason)
        seen = self._similar.setdefault(group, {})
        for old in [m for m, t in seen.items() if now - t > self.similar_window_s]:
            del seen[old]
        seen[message] = now
        if len(seen) > self.similar_max:
            key: tuple = (*group, None)
            message = COMBINED_PREFIX + message
        else:
            key = (*group, message)
        event = self.events.get(key)
        if event is None:
            event = PostedEvent(f"{ref.name}.{uuid.uuid4().hex[:16]}", ref, type_, reason,
                                message, count=1, first=now, last=now)
            self.events[key] = event
            while len(self.events) > self.max_events:
                self.events.popitem(last=False)
        else:
            event.count += 1
            event.last = now
            event.message = message
            self.events.move_to_end(key)
        return event

    def due(self, now: float) -> list[PostedEvent]:
        """Events with occurrences the API server does not have yet and whose last write (or
        failed attempt) is at least ``repeat_interval_s`` old; new Events are due at once."""
        return [e for e in self.events.values() if e.count > e.posted_count
                and (e.posted_at == 0 or now - e.posted_at >= self.repeat_interval_s)]

    def next_due(self, now: float) -> float | None:
        """Seconds until the next deferred repeat is due (None = nothing waits)."""
        waits = [e.posted_at + self.repeat_interval_s - now for e in self.events.values()
                 if e.count > e.posted_count and e.posted_at]
        return max(0.0, min(waits)) if waits else None


class MemoryEventSink:
    """Keeps written Events in memory (the operator's unit tests, dry runs)."""

    def __init__(self) -> None:
        self.events: dict[str, dict[str, Any]] = {}
        self.writes = 0

    def create(self, body: dict[str, Any]) -> None:
        self.events[body["metadata"]["name"]] = body
        self.writes += 1

    def patch(self, namespace: str, name: str, changes: dict[str, Any]) -> bool:
        if name not in self.events:
            return False
        self.events[name].update(changes)
        self.writes += 1
        return True


class ApiEventSink:
    """Writes Events to the API server (core/v1), each call with ``timeout_s``.

    Args:
        api_client: a configured ``kubernetes.client.ApiClient``.
        timeout_s: per-request timeout, seconds.
    """

    def __init__(self, api_client: Any, timeout_s: float = 10.0) -> None:
        from kubernetes import client

        self.core = client.CoreV1Api(api_client)
        self.timeout_s = timeout_s

    def create(self, body: dict[str, Any]) -> None:
        """POST the Event.

        Raises:
            kubernetes.client.exceptions.ApiException: the server refused it.
        """
        # The client sends a dict body as it is (the API's JSON); its annotation names only
        # the model class.
        self.core.create_namespaced_event(body["metadata"]["namespace"],
                                          body,  # type: ignore[arg-type]
                                          _preload_content=False,
                                          _request_timeout=self.timeout_s)

    def patch(self, namespace: str, name: str, changes: dict[str, Any]) -> bool:
        """Merge-patch ``changes`` into the Event; False when it is gone (expired: Events
        live an hour by default)."""
        from kubernetes.client.exceptions import ApiException

        try:
            self.core.patch_namespaced_event(name, namespace, changes,
                                             _content_type="application/merge-patch+json",
                                             _preload_content=False,
                                             _request_timeout=self.timeout_s)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True


class EventRecorder:
    """Records Events for cohabit's objects and writes them through ``sink``.

    Args:
        sink: :class:`ApiEventSink` (the cluster) or :class:`MemoryEventSink`.
        correlator: aggregation state (default :class:`EventCorrelator`).
        background: write from a worker thread (started by :meth:`start`); False writes
            inside :meth:`record` (tests).
        max_queue: occurrences waiting for the worker; more are dropped and counted.
        clock: epoch-seconds clock.
        on_record: called with ``(type, reason)`` for every occurrence (metrics).
    """

    def __init__(self, sink: Any, *, correlator: EventCorrelator | None = None,
                 background: bool = True, max_queue: int = 1000,
                 clock: Callable[[], float] = time.time,
                 on_record: Callable[[str, str], None] | None = None) -> None:
        self.sink = sink
        self.correlator = correlator or EventCorrelator()
        self.background = background
        self.clock = clock
        self.on_record = on_record
        self.dropped = 0
        self.failures = 0
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned: set[str] = set()

    # -- recording (any thread) -------------------------------------------------------------

    def record(self, ref: ObjectRef, type_: str, reason: str, message: str) -> None:
        """One occurrence of ``reason`` on ``ref`` (``type_``: ``Normal`` or ``Warning``).
        Never raises and never blocks."""
        if self.on_record is not None:
            self.on_record(type_, reason)
        item = (ref, type_, reason, message, self.clock())
        if not self.background:
            self._observe(*item)
            self.flush()
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("event queue full: %d event(s) dropped so far (%s %s on %s/%s)",
                            self.dropped, type_, reason, ref.namespace, ref.name)

    def normal(self, ref: ObjectRef, reason: str, message: str) -> None:
        """:meth:`record` of a ``Normal`` Event."""
        self.record(ref, "Normal", reason, message)

    def warning(self, ref: ObjectRef, reason: str, message: str) -> None:
        """:meth:`record` of a ``Warning`` Event."""
        self.record(ref, "Warning", reason, message)

    # -- writing ----------------------------------------------------------------------------

    def _observe(self, ref: ObjectRef, type_: str, reason: str, message: str,
                 when: float) -> None:
        with self._lock:
            self.correlator.observe(ref, type_, reason, message, when)

    def flush(self) -> int:
        """Write every due Event now; returns how many writes were made."""
        with self._lock:
            due = self.correlator.due(self.clock())
        written = 0
        for event in due:
            written += self._write(event)
        return written

    def _write(self, event: PostedEvent) -> int:
        with self._lock:
            count, last, message = event.count, event.last, event.message
            create = event.posted_count == 0
        try:
            if not create:
                create = not self.sink.patch(
                    event.ref.event_namespace, event.name,
                    {"count": count, "lastTimestamp": _stamp(last), "message": message[:1024]})
            if create:
                self.sink.create(event.body())
        except Exception as exc:  # an Event is never worth failing a reconcile over
            self.failures += 1
            self._warn_once(exc, event)
            with self._lock:
                event.posted_at = self.clock()  # retry after repeat_interval_s
            return 0
        with self._lock:
            event.posted_count = count
            event.posted_at = self.clock()
        return 1

    def _warn_once(self, exc: Exception, event: PostedEvent) -> None:
        status = getattr(exc, "status", None)
        key = f"{type(exc).__name__}:{status}"
        text = (f"cannot write Event {event.reason} for {event.ref.kind} "
                f"{event.ref.namespace}/{event.ref.name}: "
                + (f"HTTP {status} {getattr(exc, 'reason', '')}" if status else str(exc)))
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s (further failures of this kind are logged at DEBUG)", text)
        else:
            log.debug("%s", text)

    # -- the worker -------------------------------------------------------------------------

    def start(self) -> EventRecorder:
        """Start the worker thread (background mode)."""
        if self.background and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="cohabit-events",
                                            daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                wait = self.correlator.next_due(self.clock())
            try:
                item = self._queue.get(timeout=1.0 if wait is None else min(1.0, wait + 0.01))
            except queue.Empty:
                item = None
            if item is not None:
                self._observe(*item)
                while True:  # take everything queued before writing (one write per Event)
                    try:
                        self._observe(*self._queue.get_nowait())
                    except queue.Empty:
                        break
            self.flush()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the worker after writing what is queued (at most ``timeout_s``)."""
        if self._stop.is_set() and self._thread is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        while True:
            try:
                self._observe(*self._queue.get_nowait())
            except queue.Empty:
                break
        deadline = time.monotonic() + timeout_s
        with self._lock:
            pending = [e for e in self.correlator.events.values() if e.count > e.posted_count]
        for event in pending:
            if time.monotonic() > deadline:
                break
            self._write(event)
