"""A fault-injecting HTTPS proxy on loopback in front of a real kube-apiserver.

Clients point their kubeconfig at :attr:`FaultProxy.url` (same CA: the proxy serves the API
server's own certificate, whose SANs name 127.0.0.1) and their requests are forwarded,
headers and body intact, to the real server. A test installs a ``hook`` that sees every
request (method, path, body, ordinal) and returns a :class:`Fault` deciding what happens:

* ``forward`` -- pass it on and relay the answer (the default);
* ``drop`` -- hold it ``hold_s`` seconds (past the client's timeout), then close the
  connection without forwarding: the request never reaches the server;
* ``late`` -- hold it ``hold_s`` seconds, then forward it and close without answering: the
  server carries it out after the client gave up;
* ``reset`` -- forward it, then close without relaying the answer (carried out, answer lost).

``before`` runs before the forward, ``after`` once the answer is sent (or, for ``late`` and
``reset``, before the connection is closed): revoke an RBAC binding so the real server answers
403 and restore it, write the object so it answers 409, SIGKILL the client, stop the server.
When the upstream server is down the proxy closes the client's connection, as a dead server
would. Every request is logged in :attr:`FaultProxy.log` as ``(ordinal, method, path,
outcome)``.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host",
               "proxy-connection", "upgrade", "te", "trailer"}


@dataclass(frozen=True)
class Request:
    """One proxied request."""

    ordinal: int
    method: str
    path: str
    body: bytes


@dataclass
class Fault:
    """What the proxy does with one request (see the module doc)."""

    kind: str = "forward"
    hold_s: float = 0.0
    before: Callable[[], None] | None = None
    after: Callable[[], None] | None = None
    label: str = ""


Hook = Callable[[Request], Fault | None]


@dataclass
class FaultProxy:
    """The proxy (start with :meth:`start`, stop with :meth:`stop`).

    Args:
        upstream: the real API server URL (``https://127.0.0.1:PORT``).
        ca_file: CA that signed the upstream's certificate.
        cert_file, key_file: certificate the proxy serves (the upstream's own).
    """

    upstream: str
    ca_file: Path
    cert_file: Path
    key_file: Path
    hook: Hook | None = None
    log: list[tuple[int, str, str, str]] = field(default_factory=list)
    _count: int = 0
    _active: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _local: threading.local = field(default_factory=threading.local)
    _upstreams: list[http.client.HTTPSConnection] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                proxy._handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            for conn in self._upstreams:
                conn.close()
            self._upstreams.clear()

    # -- per request -------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        with self._lock:
            self._count += 1
            req = Request(self._count, h.command, h.path, body)
        fault = (self.hook(req) if self.hook is not None else None) or Fault()
        outcome = fault.label or fault.kind
        with self._lock:
            self._active += 1
        try:
            if fault.before is not None:
                fault.before()
            if fault.kind in ("drop", "late"):
                time.sleep(fault.hold_s)
            if fault.kind == "drop":
                h.close_connection = True
                return
            answer = self._forward(h, req)
            if answer is None:
                outcome += ":upstream-down"
            if answer is None or fault.kind in ("late", "reset"):
                if fault.after is not None:  # before the close: the client sees nothing
                    fault.after()
                h.close_connection = True
                return
            status, headers, data = answer
            outcome += f":{status}"
            h.send_response(status)
            for key, value in headers:
                if key.lower() not in HOP_HEADERS:
                    h.send_header(key, value)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            h.wfile.flush()
            if fault.after is not None:  # after the answer (e.g. restore a revoked right)
                fault.after()
        finally:
            self.log.append((req.ordinal, req.method, req.path, outcome))
            with self._lock:
                self._active -= 1

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until no request is being handled (held, forwarded or in a callback)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._active == 0:
                    return
            time.sleep(0.02)
        raise TimeoutError(f"proxy still handling {self._active} request(s)")

    def _forward(self, h: BaseHTTPRequestHandler, req: Request
                 ) -> tuple[int, list[tuple[str, str]], bytes] | None:
        """Send ``req`` upstream on this handler thread's kept-alive connection (a new one
        after any error); None when the upstream cannot be reached or dropped the request."""
        headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP_HEADERS}
        for attempt in range(2):
            conn = getattr(self._local, "conn", None)
            reused = conn is not None
            if conn is None:
                parts = urlsplit(self.upstream)
                ctx = ssl.create_default_context(cafile=str(self.ca_file))
                conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=ctx,
                                                   timeout=30)
                self._local.conn = conn
                with self._lock:  # kept until stop() closes it, whatever thread made it
                    self._upstreams.append(conn)
            try:
                conn.request(req.method, req.path, body=req.body or None, headers=headers)
                resp = conn.getresponse()
                return resp.status, resp.getheaders(), resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                self._local.conn = None
                # a kept-alive connection the server closed: one fresh try, reads only (a
                # write is never sent twice)
                if not (reused and attempt == 0 and req.method == "GET"):
                    return None
        return None
