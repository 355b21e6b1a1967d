"""No poison pill: every class of bad record, alone and mixed into good ones, on SQLite and PostgreSQL.

For each case: every good record is counted exactly once in the ``all`` windows, every bad one
is on the DLQ topic once with its original bytes and the right ``finsent-error``, the loop keeps
turning (and raised nothing, which ``running_daemon`` checks on exit), and a restart on the same
store and group dead-letters nothing again and leaves the totals as they were.

Records go to partition 0 of the input topic so their order, and so which batch and which
checkpoint each one is in, is known. Two classes are failures downstream of the parser, made
real rather than mocked: the model (the real scorer, wrapped so that a batch holding
``POISON-MODEL`` raises, as a tokenizer or model bug would) and the store (the real database
refuses a row holding ``POISON-STORE``: a CHECK constraint on PostgreSQL, a trigger on SQLite).

A scored event or dead letter that would not fit on the output topics (``broker_max_message_bytes``)
is covered in ``test_outputs.py``.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer
from kafka.serializer import Serializer
from sqlalchemy import text

from pipeline.config import Settings
from pipeline.daemon import Daemon
from pipeline.schema import REASONS
from pipeline.scorer import OnnxScorer, Score
from pipeline.store import Store
from pipeline.tooling.broker import EmbeddedBroker
from tests.helpers import as_json, count, news_stream, read_topic, wait_until, window_totals
from tests.integration.daemon_harness import daemon_settings, running_daemon

pytestmark = [pytest.mark.integration]

BASE_MS = 1_767_261_600_000  # 2026-01-01T10:00:00Z
MAX_MESSAGE_BYTES = 4096
MODEL_MARKER = "POISON-MODEL"
STORE_MARKER = "POISON-STORE"
NO_KEY = object()  # sent as a record key, serialised to "no key": a tombstone with neither key nor value


@dataclass(frozen=True)
class Poison:
    name: str
    value: bytes | None
    reason: str
    detail: str  # a part of the ``finsent-error-detail`` header


def poisons(prefix: str) -> list[Poison]:
    """One record of each class; JSON escapes (``\\u0000``, ``\\ud800``) are written as the producer would send them."""

    def obj(name: str, body: str) -> bytes:
        return f'{{"id": "{prefix}-{name}", "published_at": {BASE_MS + 500}, {body}}}'.encode()

    return [
        Poison("nul_in_text", obj("nul_in_text", '"text": "Apple a\\u0000b"'), "bad_string", "NUL"),
        Poison(
            "surrogate_in_text", obj("surrogate_in_text", '"text": "Apple \\ud800 rises"'), "bad_string", "surrogate"
        ),
        Poison(
            "surrogate_in_extra",
            obj("surrogate_in_extra", '"text": "Apple shares rise", "meta": {"tags": ["ok", "\\ud800"]}'),
            "bad_string",
            "meta.tags[1]",
        ),
        Poison(
            "nested_40_deep",
            obj("nested_40_deep", '"text": "Apple shares rise", "nest": ' + "[" * 40 + "]" * 40),
            "too_deep",
            "nested deeper",
        ),
        Poison("nan", obj("nan", '"text": "Apple shares rise", "score": NaN'), "not_json", "NaN"),
        Poison("1e400", obj("1e400", '"text": "Apple shares rise", "score": 1e400'), "not_json", "1e400"),
        Poison(
            "long_ticker",
            obj("long_ticker", '"text": "Apple shares rise", "tickers": ["' + "X" * 300 + '"]'),
            "bad_type",
            "tickers[0]",
        ),
        Poison("tombstone", None, "not_json", "tombstone"),
        Poison("too_large", obj("too_large", '"text": "' + "Apple " * 800 + '"'), "too_large", str(MAX_MESSAGE_BYTES)),
        Poison("model_fails", obj("model_fails", f'"text": "Apple shares rise {MODEL_MARKER}"'), "unprocessable", ""),
        Poison("store_refuses", obj("store_refuses", f'"text": "Nvidia guidance {STORE_MARKER}"'), "unprocessable", ""),
    ]


class FaultyScorer:
    """The real model, except that a batch with ``POISON-MODEL`` in a text raises."""

    def __init__(self, inner: OnnxScorer) -> None:
        self.inner = inner
        self.version = inner.version
        self.precision = inner.precision
        self.provider = inner.provider
        self.failed_batch_sizes: list[int] = []

    def score(self, texts: Sequence[str]) -> list[Score]:
        if any(MODEL_MARKER in t for t in texts):
            self.failed_batch_sizes.append(len(texts))
            raise RuntimeError(f"the model cannot score {MODEL_MARKER}")
        return self.inner.score(texts)


class _KeyOrNone(Serializer):
    def serialize(self, topic: str, headers: Any, data: Any) -> bytes | None:
        return None if data is NO_KEY else data


class Partition0:
    """A producer to partition 0 that can send a tombstone without a key; ``send`` returns the offsets."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, key_serializer=_KeyOrNone())

    def send(self, values: Sequence[bytes | None]) -> list[int]:
        futures = [
            self.producer.send(self.topic, value=v, key=NO_KEY if v is None else None, partition=0) for v in values
        ]
        self.producer.flush(timeout=30)
        return [f.get(timeout=10).offset for f in futures]

    def close(self) -> None:
        self.producer.close(timeout=5)


@pytest.fixture(scope="module")
def real_scorer(model_dir: Path) -> OnnxScorer:
    return OnnxScorer(model_dir, threads=1)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store whose database refuses any message row holding ``POISON-STORE`` (created before the daemon runs)."""
    url = f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    store = Store(url)
    try:
        store.create_schema()
        with store.engine.begin() as conn:
            if store.engine.dialect.name == "postgresql":
                conn.execute(
                    text(f"ALTER TABLE messages ADD CONSTRAINT no_poison CHECK (text NOT LIKE '%{STORE_MARKER}%')")
                )
            else:
                conn.execute(
                    text(
                        f"CREATE TRIGGER no_poison BEFORE INSERT ON messages WHEN NEW.text LIKE '%{STORE_MARKER}%' "
                        "BEGIN SELECT RAISE(ABORT, 'poison'); END"
                    )
                )
    finally:
        store.close()
    return url


@pytest.fixture
def producer(broker: EmbeddedBroker, unique: str) -> Iterator[Partition0]:
    p = Partition0(broker.bootstrap, f"{unique}.news")
    yield p
    p.close()


def settings_for(broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path, store_url: str) -> Settings:
    # batch_size large enough that a mix read in one poll goes to the model as one batch
    return daemon_settings(
        broker.bootstrap,
        unique,
        tmp_path,
        model_dir,
        store_url=store_url,
        max_message_bytes=MAX_MESSAGE_BYTES,
        batch_size=256,
    )


def sample(daemon: Daemon, name: str, **labels: str) -> float:
    return daemon.metrics.registry.get_sample_value(name, labels) or 0.0


def stored_offset(daemon: Daemon, settings: Settings) -> int | None:
    tp = (settings.input_topics[0], 0)
    return daemon.store.load_offsets(settings.group_id, [tp])[tp]


def assert_loop_alive(daemon: Daemon) -> None:
    """The loop thread that ``running_daemon`` started is still running and turned within the liveness timeout."""
    loops = [t for t in threading.enumerate() if t.name == "daemon"]
    assert loops and all(t.is_alive() for t in loops), "the daemon thread died"
    assert daemon.liveness()["alive"], daemon.liveness()


def dead_lettered_and_passed(daemon: Daemon, settings: Settings, reason: str, count: float, next_offset: int) -> bool:
    """``count`` records dead-lettered for ``reason``, and the store's offset of partition 0 at ``next_offset``."""
    return (
        sample(daemon, "finsent_messages_invalid_total", reason=reason) == count
        and stored_offset(daemon, settings) == next_offset
    )


def counted(totals: dict[tuple[str, int], dict[str, float]]) -> tuple[int, int]:
    """(n, n_late) summed over the ``all`` windows."""
    return int(sum(w["n"] for w in totals.values())), int(sum(w["n_late"] for w in totals.values()))


def assert_dead_lettered(dlq: list[Any], bad: dict[int, Poison], settings: Settings) -> None:
    """Each bad record (by its input offset) on the DLQ exactly once, with its original bytes and reason."""
    by_offset: dict[int, list[Any]] = {}
    for record in dlq:
        headers = dict(record.headers)
        assert headers["finsent-source-topic"].decode() == settings.input_topics[0]
        by_offset.setdefault(int(headers["finsent-source-offset"]), []).append(record)
    assert sorted(by_offset) == sorted(bad), "the DLQ holds exactly the bad records"
    for offset, poison in bad.items():
        records = by_offset[offset]
        assert len(records) == 1, f"{poison.name} dead-lettered {len(records)} times"
        record = records[0]
        headers = dict(record.headers)
        assert headers["finsent-error"].decode() == poison.reason, poison.name
        detail = headers["finsent-error-detail"].decode()
        assert poison.detail in detail, f"{poison.name}: {detail!r}"
        if poison.value is None:
            assert record.value == b"", "a tombstone without a key is dead-lettered with an empty value"
            assert record.key is None
        else:
            assert record.value == poison.value, f"{poison.name}: not the original bytes"
        if poison.name == "model_fails":
            assert detail == f"RuntimeError: the model cannot score {MODEL_MARKER}"
        if poison.name == "store_refuses":
            assert "IntegrityError" in detail and "poison" in detail, detail


def assert_restart_changes_nothing(
    settings: Settings, scorer: FaultyScorer, dlq_count: int, totals: dict[tuple[str, int], dict[str, float]]
) -> None:
    """A daemon restarted on the same store and group reads nothing twice: no new dead letter, same totals."""
    with running_daemon(settings, scorer=scorer) as daemon:
        wait_until(lambda: bool(daemon.partitions), 30, "the restarted daemon's partitions")
        commits = sample(daemon, "finsent_commits_total")
        wait_until(
            lambda: sample(daemon, "finsent_commits_total") >= commits + 3, 30, "three checkpoints after restart"
        )
        invalid = sum(sample(daemon, "finsent_messages_invalid_total", reason=r) for r in REASONS)
        assert invalid == 0, "the restarted daemon dead-lettered a record again"
        assert window_totals(daemon.store, "all") == totals
    dlq = read_topic(settings.kafka_bootstrap, settings.dlq_topic, dlq_count, timeout_s=30, settle_s=2)
    assert len(dlq) == dlq_count, "a restart added dead letters"


def test_each_poison_alone(
    broker: EmbeddedBroker,
    unique: str,
    tmp_path: Path,
    model_dir: Path,
    store_url: str,
    real_scorer: OnnxScorer,
    producer: Partition0,
) -> None:
    """Each bad record is the only one in its poll, batch and checkpoint, between good records."""
    settings = settings_for(broker, unique, tmp_path, model_dir, store_url)
    scorer = FaultyScorer(real_scorer)
    good = news_stream(10, BASE_MS, 1000, prefix=f"{unique}-good")
    bad: dict[int, Poison] = {}
    producer.send(as_json(good[:5]))
    with running_daemon(settings, scorer=scorer) as daemon:
        wait_until(lambda: stored_offset(daemon, settings) == 5, 60, "the first good records committed")
        for poison in poisons(unique):
            before = sample(daemon, "finsent_messages_invalid_total", reason=poison.reason)
            [offset] = producer.send([poison.value])
            bad[offset] = poison
            wait_until(
                partial(dead_lettered_and_passed, daemon, settings, poison.reason, before + 1, offset + 1),
                30,
                f"{poison.name} dead-lettered and committed past",
            )
        producer.send(as_json(good[5:]))
        end = 5 + len(bad) + 5
        wait_until(lambda: stored_offset(daemon, settings) == end, 60, "the last good records committed")
        assert_loop_alive(daemon)
        totals = window_totals(daemon.store, "all")
        assert count(daemon.store, "messages") == len(good)

    assert scorer.failed_batch_sizes == [1], "the model poison was scored alone, once"
    assert counted(totals) == (len(good), 0)
    dlq = read_topic(broker.bootstrap, settings.dlq_topic, len(bad))
    assert_dead_lettered(dlq, bad, settings)
    assert_restart_changes_nothing(settings, scorer, len(bad), totals)


def test_poisons_mixed_into_good_records(
    broker: EmbeddedBroker,
    unique: str,
    tmp_path: Path,
    model_dir: Path,
    store_url: str,
    real_scorer: OnnxScorer,
    producer: Partition0,
) -> None:
    """Every bad record in one batch with 40 good ones: the good ones are scored and counted once."""
    settings = settings_for(broker, unique, tmp_path, model_dir, store_url)
    scorer = FaultyScorer(real_scorer)
    good = as_json(news_stream(40, BASE_MS, 1000, prefix=f"{unique}-good"))
    mix: list[tuple[bytes | None, Poison | None]] = [(v, None) for v in good]
    for i, poison in enumerate(poisons(unique)):
        mix.insert(3 + i * 4, (poison.value, poison))
    offsets = producer.send([v for v, _ in mix])
    bad = {offset: poison for offset, (_, poison) in zip(offsets, mix, strict=True) if poison is not None}

    with running_daemon(settings, scorer=scorer) as daemon:
        wait_until(lambda: stored_offset(daemon, settings) == len(mix), 60, "the whole mix committed")
        assert_loop_alive(daemon)
        totals = window_totals(daemon.store, "all")
        assert count(daemon.store, "messages") == len(good)
        invalid = Counter(p.reason for p in bad.values())
        for reason, n in invalid.items():
            assert sample(daemon, "finsent_messages_invalid_total", reason=reason) == n, reason

    assert max(scorer.failed_batch_sizes) > 1, "the model poison shared its batch with good records"
    assert counted(totals) == (len(good), 0)
    dlq = read_topic(broker.bootstrap, settings.dlq_topic, len(bad))
    assert_dead_lettered(dlq, bad, settings)
    assert_restart_changes_nothing(settings, scorer, len(bad), totals)
