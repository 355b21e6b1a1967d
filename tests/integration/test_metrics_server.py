"""The metrics server keeps answering scrapes while hundreds of idle or slow clients hold connections."""

from __future__ import annotations

import contextlib
import socket
import time
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter

from pipeline.http import HealthServer
from tests.helpers import wait_until

pytestmark = pytest.mark.integration

IDLE = 300


@contextlib.contextmanager
def serving(**options: float) -> Iterator[HealthServer]:
    registry = CollectorRegistry()
    Counter("finsent_probe", "a metric to find on the page", registry=registry).inc()
    server = HealthServer("127.0.0.1", 0, registry, lambda: {"store": True}, **options).start()  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.close()


@contextlib.contextmanager
def idle_connections(port: int, n: int, first_bytes: bytes = b"") -> Iterator[list[socket.socket]]:
    """``n`` loopback connections that send ``first_bytes`` (at most part of a request) and then nothing."""
    with contextlib.ExitStack() as stack:
        socks = []
        for _ in range(n):
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=2))
            if first_bytes:
                sock.sendall(first_bytes)
            socks.append(sock)
        yield socks


def scrape(port: int, path: str = "/metrics") -> tuple[int, bytes, float]:
    started = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
        return resp.status, resp.read(), time.monotonic() - started


def test_scrapes_answer_while_hundreds_of_connections_idle() -> None:
    with serving(request_timeout_s=30) as server, idle_connections(server.port, IDLE):
        with idle_connections(server.port, 20, b"GET /metrics HTTP/1.1\r\nHost: slow\r\n"):  # slowloris heads
            for _ in range(5):
                status, body, took_s = scrape(server.port)
                assert status == 200 and b"finsent_probe_total 1.0" in body
                assert took_s < 2.0, f"a scrape took {took_s:.2f}s with {IDLE} idle connections open"
        assert scrape(server.port, "/healthz")[0] == 200


def test_connection_bound_drops_the_longest_idle_first() -> None:
    with serving(max_connections=50, request_timeout_s=30) as server, idle_connections(server.port, 200) as socks:
        status, _, took_s = scrape(server.port)
        assert status == 200 and took_s < 2.0
        wait_until(lambda: len(server.pending) <= 50, 5, "the server to keep at most 50 connections")
        socks[0].settimeout(2)
        assert socks[0].recv(1) == b"", "the oldest idle connection was closed to make room"


def test_idle_and_slow_clients_time_out() -> None:
    with serving(request_timeout_s=0.5) as server, idle_connections(server.port, 2) as socks:
        socks[1].sendall(b"GET /metrics HTTP/1.1\r\n")  # a head that never ends
        for sock in socks:
            sock.settimeout(3)
            assert sock.recv(1) == b"", "closed by the server after its request timeout"
        wait_until(lambda: not server.pending, 3, "no connection left waiting")
        assert scrape(server.port)[0] == 200


def test_unknown_paths_and_methods() -> None:
    with serving() as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=2) as sock:
            sock.sendall(b"DELETE /metrics HTTP/1.0\r\n\r\n")
            assert sock.recv(64).startswith(b"HTTP/1.0 501")
        with pytest.raises(urllib.error.HTTPError) as caught:
            scrape(server.port, "/nowhere")
        assert caught.value.code == 404
