"""The daemon's HTTP endpoint: /metrics for Prometheus, /healthz (alive), /readyz (ready to work).

``/healthz`` answers 503 when the consume loop has not turned for the liveness timeout, so a
supervisor (systemd's watchdog script, a k8s liveness probe) restarts a stuck daemon;
``/readyz`` answers 503 while the store is unreachable or no partition is assigned.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

Readiness = Callable[[], dict[str, bool]]
Liveness = Callable[[], dict[str, Any]]


def always_alive() -> dict[str, Any]:
    return {"alive": True}


def make_handler(
    registry: CollectorRegistry, readiness: Readiness, liveness: Liveness = always_alive
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
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
    ) -> None:
        self.server = ThreadingHTTPServer((host, port), make_handler(registry, readiness, liveness))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="finsent-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> HealthServer:
        self.thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
