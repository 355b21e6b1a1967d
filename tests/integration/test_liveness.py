"""Liveness: ``/healthz`` answers 503 once the pipeline is stuck, and 200 again when it moves on.

The model runs beside the loop, so a batch that never comes back leaves the loop turning (polling,
committing what was scored); liveness counts the time the oldest batch has been in the model too.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pipeline.http import HealthServer
from pipeline.scorer import OnnxScorer, Score
from pipeline.tooling.broker import EmbeddedBroker
from tests.helpers import Deadline, as_json, count, news_stream, produce, wait_until
from tests.integration.daemon_harness import daemon_settings, running_daemon

pytestmark = [pytest.mark.integration]

BASE_MS = 1_767_261_600_000
MARKER = "BLOCK-THE-MODEL"
LIVENESS_TIMEOUT_S = 2
BLOCK_LIMIT_S = 60  # a failing test must not hang the loop for ever


class BlockingScorer:
    """The real model, except that a batch with ``BLOCK-THE-MODEL`` waits until ``release`` is set."""

    def __init__(self, inner: OnnxScorer) -> None:
        self.inner = inner
        self.version = inner.version
        self.precision = inner.precision
        self.provider = inner.provider
        self.blocked = threading.Event()
        self.release = threading.Event()

    def score(self, texts: Sequence[str]) -> list[Score]:
        if any(MARKER in t for t in texts):
            self.blocked.set()
            self.release.wait(BLOCK_LIMIT_S)
        return self.inner.score(texts)


def healthz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def healthz_answering(port: int, status: int) -> dict[str, Any]:
    """The ``/healthz`` body when it answers ``status``, else an empty (falsy) dict, for ``wait_until``."""
    got, body = healthz(port)
    return body if got == status else {}


def test_healthz_fails_while_the_model_is_stuck(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path
) -> None:
    settings = daemon_settings(broker.bootstrap, unique, tmp_path, model_dir, liveness_timeout_s=LIVENESS_TIMEOUT_S)
    scorer = BlockingScorer(OnnxScorer(model_dir, threads=1))
    topic = settings.input_topics[0]
    produce(broker.bootstrap, topic, as_json(news_stream(20, BASE_MS, 1000, prefix=f"{unique}-a")))
    with running_daemon(settings, scorer=scorer) as daemon:
        server = HealthServer("127.0.0.1", 0, daemon.metrics.registry, daemon.readiness, daemon.liveness).start()
        try:
            wait_until(lambda: count(daemon.store, "messages") == 20, 60, "the first records scored")
            # turning (idle polls included): 200 throughout a span longer than the liveness timeout
            span = Deadline(LIVENESS_TIMEOUT_S * 1.5)
            while not span.expired():
                status, body = healthz(server.port)
                assert status == 200 and body["status"] == "ok", (status, body)
                time.sleep(0.1)

            produce(
                broker.bootstrap,
                topic,
                as_json([{"id": f"{unique}-block", "text": f"Apple {MARKER}", "published_at": BASE_MS}]),
            )
            wait_until(scorer.blocked.is_set, 30, "a batch to block in the model")
            body = wait_until(lambda: healthz_answering(server.port, 503), 10, "/healthz to answer 503", 0.2)
            assert body["status"] == "stuck" and body["alive"] is False, body
            assert body["seconds_in_model"] >= LIVENESS_TIMEOUT_S, body
            status, body = healthz(server.port)
            assert status == 503, "a stuck loop stays reported as stuck"

            scorer.release.set()
            body = wait_until(lambda: healthz_answering(server.port, 200), 10, "/healthz to answer 200 again", 0.2)
            assert body["status"] == "ok", body
            wait_until(lambda: count(daemon.store, "messages") == 21, 30, "the blocked record scored after release")
        finally:
            scorer.release.set()
            server.close()
