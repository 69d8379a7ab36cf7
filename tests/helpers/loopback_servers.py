"""Real sockets on loopback for the actuator's timeout tests: a port nothing listens on, and a
server that accepts connections and never answers (each with an ``ApiClient`` pointed at it,
urllib3 retries off as the operator configures them)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

from kubernetes import client


def _api(url: str) -> client.ApiClient:
    cfg = client.Configuration()
    cfg.host = url
    cfg.retries = 0
    return client.ApiClient(cfg)


@contextlib.contextmanager
def closed_port_client() -> Iterator[client.ApiClient]:
    """An ``ApiClient`` for ``http://127.0.0.1:<port>`` where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api = _api(f"http://127.0.0.1:{port}")
    try:
        yield api
    finally:
        api.close()


@contextlib.contextmanager
def silent_server_client() -> Iterator[client.ApiClient]:
    """An ``ApiClient`` for a server that accepts every connection, reads, never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    api = _api(f"http://127.0.0.1:{server.getsockname()[1]}")
    try:
        yield api
    finally:
        api.close()
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        server.close()
