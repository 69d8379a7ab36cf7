"""The Prometheus HTTP API under a total deadline, and its answers checked before use.

* :func:`post_form` sends one API request and returns the decoded JSON answer within a
  **total** deadline: a watchdog shuts the socket down when the deadline passes, so a server
  that accepts and never answers, answers slowly or trickles its answer a byte at a time is
  cut off at the deadline, not after a per-read timeout that every trickled byte restarts.
  (prometheus-api-client and requests only offer per-read timeouts, hence the standard
  library's ``http.client`` here.) Bodies above :data:`MAX_BODY_BYTES` are refused.
* :func:`parse_matrix` checks a ``query_range`` answer has the documented shape
  (``{"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {...},
  "values": [[<time>, "<value>"], ...]}]}}``) and returns plain series; anything else, or a
  Prometheus error answer, raises :class:`~cohabit.telemetry.base.TelemetryUnavailable`
  naming what is wrong. Sample values keep Prometheus' spelling (``NaN``, ``+Inf``) as
  floats: the caller decides what a non-finite value means.

Reference: Prometheus HTTP API, https://prometheus.io/docs/prometheus/latest/querying/api/
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import socket
import ssl
import threading
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

from cohabit.telemetry.base import TelemetryUnavailable

__all__ = ["MAX_BODY_BYTES", "Series", "parse_matrix", "post_form"]

MAX_BODY_BYTES = 64 * 2**20
"""Largest answer read, bytes (a day of 60 s steps is ~45 KB per series)."""

Series = tuple[dict[str, str], list[tuple[float, float]]]
"""``(labels, [(epoch seconds, value), ...])`` of one series."""


class _Watchdog:
    """Shuts ``sock`` down at the deadline (a blocked read then returns at once)."""

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._sock: socket.socket | None = None
        self._timer = threading.Timer(max(0.0, seconds), self._fire)
        self._timer.daemon = True
        self._lock = threading.Lock()

    def watch(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sock = sock
            if self.fired:
                self._shutdown()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            self._shutdown()

    def _shutdown(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):  # closed already
                self._sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TelemetryUnavailable(f"Prometheus URL {url!r} is not http(s)://host[:port]")
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout,
                                           context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    return conn, parts.path.rstrip("/")


def post_form(url: str, path: str, form: dict[str, str], timeout_s: float,
              max_bytes: int = MAX_BODY_BYTES) -> Any:
    """``POST <url><path>`` with a form body; the decoded JSON answer (any HTTP status).

    Args:
        url: Prometheus base URL (``http://prometheus:9090``, a path prefix is kept).
        path: API path (``/api/v1/query_range``).
        form: form fields (``query``, ``start``, ...).
        timeout_s: total deadline in seconds: connect, send, headers and the whole body.
        max_bytes: larger answers are refused.

    Raises:
        TelemetryUnavailable: connection refused or reset, deadline passed, body too large
            or not JSON; the message names the URL and the cause.
    """
    where = f"Prometheus {url}"
    conn, prefix = _connection(url, timeout_s)
    body = urlencode(form).encode()
    started = time.monotonic()
    with _Watchdog(timeout_s) as dog:
        try:
            conn.connect()
            dog.watch(conn.sock)
            conn.request("POST", prefix + path, body=body, headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json", "Accept-Encoding": "identity"})
            resp = conn.getresponse()
            data = _read(resp, max_bytes, where)
        except (OSError, http.client.HTTPException) as exc:
            if dog.fired:
                raise TelemetryUnavailable(
                    f"{where}: no complete answer within the {timeout_s:g} s deadline "
                    f"(after {time.monotonic() - started:.1f} s)") from exc
            raise TelemetryUnavailable(f"{where}: {type(exc).__name__}: {exc}") from exc
        finally:
            conn.close()
    if dog.fired:
        raise TelemetryUnavailable(f"{where}: no complete answer within the {timeout_s:g} s "
                                   "deadline")
    try:
        decoded = json.loads(data)
    except (ValueError, RecursionError) as exc:  # RecursionError: hostile nesting depth
        snippet = data[:120].decode("utf-8", "replace")
        raise TelemetryUnavailable(f"{where}: HTTP {resp.status} answer is not JSON "
                                   f"({exc}): {snippet!r}") from exc
    if not 200 <= resp.status < 300 and not isinstance(decoded, dict):
        raise TelemetryUnavailable(f"{where}: HTTP {resp.status}")
    return decoded


def _read(resp: http.client.HTTPResponse, max_bytes: int, where: str) -> bytes:
    length = resp.getheader("Content-Length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise TelemetryUnavailable(f"{where}: answer of {length} bytes is above the "
                                   f"{max_bytes} byte limit")
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = resp.read1(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise TelemetryUnavailable(f"{where}: answer above the {max_bytes} byte limit")
        chunks.append(chunk)


def _number(raw: Any, what: str) -> float:
    """A sample time or value: a JSON number or a numeric string (``"NaN"``, ``"+Inf"``)."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise TelemetryUnavailable(f"{what} is {raw!r}, not a number")
    if isinstance(raw, str) and len(raw) > 64:
        raise TelemetryUnavailable(f"{what} is a {len(raw)}-character string, not a number")
    try:
        return float(raw)
    except (ValueError, OverflowError) as exc:
        raise TelemetryUnavailable(f"{what} is {raw!r}, not a number") from exc


def parse_matrix(answer: Any, what: str) -> list[Series]:
    """The series of a ``query_range`` answer (see the module doc), checked.

    Args:
        answer: the decoded JSON.
        what: names the query in errors (e.g. ``"query 'up'"``).

    Returns:
        one ``(labels, samples)`` per series; sample times are finite; values are floats
        and may be NaN or infinite (as Prometheus sent them).

    Raises:
        TelemetryUnavailable: an error answer (``errorType``/``error``) or any shape other
            than the documented one, naming the offending part.
    """
    if not isinstance(answer, dict):
        raise TelemetryUnavailable(f"{what}: answer is a JSON {type(answer).__name__}, not an "
                                   "object")
    status = answer.get("status")
    if status != "success":
        kind = answer.get("errorType", "?")
        raise TelemetryUnavailable(f"{what} failed: {str(kind)[:80]}: "
                                   f"{str(answer.get('error', status))[:300]}")
    data = answer.get("data")
    if not isinstance(data, dict):
        raise TelemetryUnavailable(f"{what}: answer has no data object")
    if data.get("resultType") != "matrix":
        raise TelemetryUnavailable(f"{what}: resultType is {data.get('resultType')!r}, not "
                                   "'matrix'")
    result = data.get("result")
    if not isinstance(result, list):
        raise TelemetryUnavailable(f"{what}: data.result is not a list")
    return [_series(item, f"{what}: data.result[{i}]") for i, item in enumerate(result)]


def _series(item: Any, where: str) -> Series:
    if not isinstance(item, dict):
        raise TelemetryUnavailable(f"{where} is not an object")
    labels = item.get("metric", {})
    if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise TelemetryUnavailable(f"{where}.metric is not a map of label strings")
    values = item.get("values")
    if not isinstance(values, list):
        raise TelemetryUnavailable(f"{where}.values is not a list")
    samples = []
    for j, pair in enumerate(values):
        if not isinstance(pair, list) or len(pair) != 2:
            raise TelemetryUnavailable(f"{where}.values[{j}] is not a [time, value] pair: "
                                       f"{str(pair)[:80]}")
        t = _number(pair[0], f"{where}.values[{j}] time")
        if not math.isfinite(t):
            raise TelemetryUnavailable(f"{where}.values[{j}] time {pair[0]!r} is not finite")
        samples.append((t, _number(pair[1], f"{where}.values[{j}] value")))
    return labels, samples
