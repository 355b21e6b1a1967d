"""The daemon's HTTP endpoint: /metrics for Prometheus, /healthz (alive), /readyz (ready to work).

``/healthz`` answers 503 when the consume loop has not turned for the liveness timeout, so a
supervisor (systemd's watchdog script, a k8s liveness probe) restarts a stuck daemon;
``/readyz`` answers 503 while the store is unreachable or no partition is assigned.

Idle or slow clients cannot starve a scrape. One thread watches every open connection
(a selector) and reads request heads without blocking; only a complete head goes to one of
a few worker threads, which answer and close (one request per connection, HTTP/1.0). A head
must arrive within ``request_timeout_s`` of connecting; at most ``max_connections`` are
open, and past that the connection that has waited longest without a full request is
dropped to make room, so a flood of idle connections never locks Prometheus out.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

Readiness = Callable[[], dict[str, bool]]
Liveness = Callable[[], dict[str, Any]]

DEFAULT_MAX_CONNECTIONS = 512  # open at once, idle ones included (each is one file descriptor)
DEFAULT_REQUEST_TIMEOUT_S = 10.0  # to send a request head; also each write of the answer
DEFAULT_WORKERS = 4  # requests answered at once
MAX_HEAD_BYTES = 16 * 1024


def always_alive() -> dict[str, Any]:
    return {"alive": True}


@dataclass
class Pending:
    """A connection whose request head is still arriving."""

    sock: socket.socket
    address: Any
    deadline: float
    head: bytearray = field(default_factory=bytearray)


class SendAll(io.BufferedIOBase):
    """A write-only file on a socket whose every write is one ``sendall`` (bounded by the socket timeout)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.sock.sendall(data)
        return len(data)


class Buffered:
    """What a handler is built from: the request head already read, and the socket to answer on."""

    def __init__(self, sock: socket.socket, head: bytes) -> None:
        self.sock = sock
        self.head = head


def make_handler(
    registry: CollectorRegistry,
    readiness: Readiness,
    liveness: Liveness = always_alive,
    write_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        request: Buffered

        def setup(self) -> None:  # the head is in memory; only the answer touches the socket
            self.connection = self.request.sock
            self.connection.settimeout(write_timeout_s)
            self.rfile = io.BytesIO(self.request.head)
            self.wfile = SendAll(self.connection)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                state = liveness()
                alive = bool(state.get("alive"))
                body = json.dumps({"status": "ok" if alive else "stuck", **state}).encode() + b"\n"
                self._send(200 if alive else 503, body, "application/json")
            elif path == "/readyz":
                checks = readiness()
                ok = all(checks.values())
                body = json.dumps({"ready": ok, "checks": checks}).encode() + b"\n"
                self._send(200 if ok else 503, body, "application/json")
            else:
                self._send(404, b"not found: try /metrics, /healthz or /readyz\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # silence per-request logs
            pass

    return Handler


class HealthServer:
    """A background HTTP server; ``port`` 0 picks a free port (see ``.port`` after start)."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        readiness: Readiness,
        liveness: Liveness = always_alive,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
        workers: int = DEFAULT_WORKERS,
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.listener = socket.create_server((host, port), family=family, backlog=128)
        self._port = int(self.listener.getsockname()[1])  # kept: still known after close()
        self.listener.setblocking(False)
        self.handler = make_handler(registry, readiness, liveness, request_timeout_s)
        self.max_connections = max(1, max_connections)
        self.request_timeout_s = request_timeout_s
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.workers = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="finsent-http-worker")
        self.pending: dict[socket.socket, Pending] = {}
        self.answering = 0  # handed to a worker, not yet closed
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="finsent-http", daemon=True)

    @property
    def port(self) -> int:
        return self._port

    def start(self) -> HealthServer:
        self.thread.start()
        return self

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.workers.shutdown(wait=True, cancel_futures=True)
        for pending in list(self.pending.values()):
            self._drop(pending)
        self.selector.close()
        self.listener.close()

    # ---- the selector thread ----------------------------------------------------------------------

    def _serve(self) -> None:
        while not self.stopping.is_set():
            for key, _ in self.selector.select(timeout=0.2):
                if key.fileobj is self.listener:
                    self._accept()
                elif (pending := self.pending.get(key.fileobj)) is not None:  # type: ignore[call-overload]
                    self._read(pending)  # (not dropped earlier in this turn to make room)
            self._expire(time.monotonic())

    def _accept(self) -> None:
        while True:
            try:
                sock, address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # out of file descriptors, or the client gave up: try again next turn
                return
            with self.lock:
                full = len(self.pending) + self.answering >= self.max_connections
            if full and not self._drop_oldest_pending():
                sock.close()  # every slot is answering a request: refuse
                continue
            sock.setblocking(False)
            pending = Pending(sock, address, time.monotonic() + self.request_timeout_s)
            self.pending[sock] = pending
            self.selector.register(sock, selectors.EVENT_READ)
            self._read(pending)  # a scraper's request is often there already

    def _read(self, pending: Pending) -> None:
        try:
            chunk = pending.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk or len(pending.head) + len(chunk) > MAX_HEAD_BYTES:
            self._drop(pending)
            return
        pending.head += chunk
        if b"\r\n\r\n" in pending.head or b"\n\n" in pending.head:
            self.selector.unregister(pending.sock)
            del self.pending[pending.sock]
            with self.lock:
                self.answering += 1
            self.workers.submit(self._answer, pending)

    def _expire(self, now: float) -> None:
        for pending in [p for p in self.pending.values() if p.deadline <= now]:
            self._drop(pending)

    def _drop_oldest_pending(self) -> bool:
        if not self.pending:
            return False
        self._drop(min(self.pending.values(), key=lambda p: p.deadline))
        return True

    def _drop(self, pending: Pending) -> None:
        if self.pending.pop(pending.sock, None) is not None:
            self.selector.unregister(pending.sock)
        pending.sock.close()

    # ---- a worker thread ----------------------------------------------------------------------------

    def _answer(self, pending: Pending) -> None:
        try:
            pending.sock.setblocking(True)
            self.handler(Buffered(pending.sock, bytes(pending.head)), pending.address, self)  # type: ignore[arg-type]
        except OSError as exc:  # the client went away or stopped reading: nothing to answer
            log.debug("answering %s: %s", pending.address, exc)
        except Exception:
            log.exception("answering %s failed", pending.address)
        finally:
            with contextlib.suppress(OSError):
                pending.sock.shutdown(socket.SHUT_RDWR)
            pending.sock.close()
            with self.lock:
                self.answering -= 1
