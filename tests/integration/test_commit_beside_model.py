"""A commit does not wait for the model, and never commits what the model has not scored.

The real model is wrapped so that a batch holding ``HOLD-MODEL`` blocks until the test lets it go:
while it is held, records read after it wait for the model; checkpoints keep committing (the loop
and the store are not stopped by a slow model), but each partition's offset stops at the held
record, so a crash at that moment re-reads it and everything after it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from kafka import KafkaProducer

from pipeline.scorer import OnnxScorer, Score
from pipeline.tooling.broker import EmbeddedBroker
from tests.helpers import wait_until, window_totals
from tests.integration.daemon_harness import daemon_settings, running_daemon

pytestmark = [pytest.mark.integration]

BASE_MS = 1_767_261_600_000  # 2026-01-01T10:00:00Z
MARKER = "HOLD-MODEL"


class HeldScorer:
    """The real model; a batch with ``HOLD-MODEL`` in a text waits until ``release`` (30 s at most)."""

    def __init__(self, inner: OnnxScorer) -> None:
        self.inner = inner
        self.version = inner.version
        self.precision = inner.precision
        self.provider = inner.provider
        self.holding = threading.Event()
        self.released = threading.Event()

    def score(self, texts: Sequence[str]) -> list[Score]:
        if any(MARKER in t for t in texts):
            self.holding.set()
            self.released.wait(timeout=30)
        return self.inner.score(texts)


def send(producer: KafkaProducer, topic: str, texts: list[str], first_ms: int) -> list[int]:
    futures = [
        producer.send(topic, json.dumps({"text": t, "published_at": first_ms + i}).encode(), partition=0)
        for i, t in enumerate(texts)
    ]
    producer.flush(timeout=30)
    return [f.get(timeout=10).offset for f in futures]


def test_checkpoints_go_on_while_the_model_works_and_stop_at_the_oldest_unscored_record(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path
) -> None:
    settings = daemon_settings(broker.bootstrap, unique, tmp_path, model_dir, progress_interval_ms=200)
    topic = settings.input_topics[0]
    tp = (topic, 0)
    scorer = HeldScorer(OnnxScorer(model_dir, threads=1))
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5)
    try:
        with running_daemon(settings, scorer=scorer) as daemon:

            def stored() -> int | None:
                return daemon.store.load_offsets(settings.group_id, [tp])[tp]

            def commits() -> float:
                return daemon.metrics.registry.get_sample_value("finsent_commits_total") or 0.0

            first = send(producer, topic, [f"Nvidia shares rise {i}" for i in range(5)], BASE_MS)
            wait_until(lambda: stored() == first[-1] + 1, 60, "the first five records committed")
            held = send(producer, topic, [f"Apple {MARKER} guidance"], BASE_MS + 10)[0]
            wait_until(scorer.holding.is_set, 30, "the model holding a batch")
            after = send(producer, topic, [f"Tesla deliveries beat {i}" for i in range(4)], BASE_MS + 20)

            # the model is held: records after it were read, yet the commits go on and stop at the held one
            wait_until(lambda: daemon.partitions.owned[tp].position == after[-1] + 1, 30, "the later records read")
            before = commits()
            wait_until(lambda: commits() >= before + 3, 30, "commits while the model is held")
            assert stored() == held, "a commit went past a record the model had not scored"
            totals = window_totals(daemon.store)
            assert sum(t["n"] for t in totals.values()) == len(first)

            scorer.released.set()
            wait_until(lambda: stored() == after[-1] + 1, 60, "everything committed once the model answers")
            totals = window_totals(daemon.store)
            assert sum(t["n"] for t in totals.values()) == len(first) + 1 + len(after)
            assert sum(t["n_late"] for t in totals.values()) == 0
    finally:
        scorer.released.set()
        producer.close(timeout=5)
