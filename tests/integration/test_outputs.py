"""Nothing stored is stranded and nothing near the size limit is lost, on the real broker.

Alerts: an alert committed but never published (its daemon was SIGKILLed first, or the commit's
acknowledgement was lost) is drained from the store on a timer, without waiting for a new alert; an
alert the producer refuses is never marked published. Sizes: outputs are sized against the output
topics' limit, headers included (the test broker has no limit of its own, so the daemon's rule is
what is tested); a dead letter that would not fit is sent truncated with a header saying so, and one
the producer refuses anyway is sent again truncated: no offset moves past a record that went nowhere.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.record.default_records import DefaultRecordBatchBuilder
from sqlalchemy import insert, select

from pipeline import tables
from pipeline.sinks import KafkaSink, producer_options
from pipeline.spikes import alert_id
from pipeline.store import Store
from pipeline.tooling.broker import EmbeddedBroker
from tests.helpers import as_json, count, produce, read_topic, wait_until
from tests.integration.daemon_harness import daemon_settings, running_daemon

pytestmark = [pytest.mark.integration]

BASE_MS = 1_767_261_600_000
LIMIT = 8192


def stored_alert(store: Store, key: str, example_ids: list[str]) -> str:
    """An alert row as a daemon commits it, not yet published: what a daemon SIGKILLed before publishing leaves."""
    start = datetime.fromtimestamp(BASE_MS / 1000, tz=UTC)
    row = {
        "id": alert_id("ticker", key, BASE_MS),
        "window_start": start,
        "window_end": start,
        "dimension": "ticker",
        "key": key,
        "negative_ratio": 0.9,
        "baseline": 0.1,
        "threshold": 0.4,
        "score": 9.0,
        "n": 30,
        "n_negative": 27,
        "severity": "critical",
        "example_ids": example_ids,
        "created_at": start,
        "published": False,
    }
    with store.engine.begin() as conn:
        conn.execute(insert(tables.alerts), row)
    return str(row["id"])


def published(store: Store) -> dict[str, bool]:
    with store.engine.connect() as conn:
        return {r.id: r.published for r in conn.execute(select(tables.alerts.c.id, tables.alerts.c.published))}


def test_a_stored_alert_nobody_published_is_drained_without_waiting_for_a_new_one(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path
) -> None:
    settings = daemon_settings(broker.bootstrap, unique, tmp_path, model_dir)
    produce(broker.bootstrap, settings.input_topics[0], as_json([{"text": "Apple names new CFO", "id": "one"}]))
    with running_daemon(settings) as daemon:
        wait_until(lambda: count(daemon.store, "messages") == 1, 60, "the daemon to start committing")
        stranded = stored_alert(daemon.store, "ACME", ["m-1"])  # after the daemon's start-up drain
        wait_until(lambda: published(daemon.store).get(stranded), 30, "the stranded alert to be published", 0.5)
    sent = read_topic(broker.bootstrap, settings.alerts_topic, 1, timeout_s=30)
    assert [r.key.decode() for r in sent] == [stranded]


def test_an_alert_the_producer_refuses_is_never_marked_published(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path
) -> None:
    settings = daemon_settings(broker.bootstrap, unique, tmp_path, model_dir)
    store = Store(settings.store_url.get_secret_value())
    store.create_schema()
    too_big = stored_alert(store, "HUGE", ["x" * (3 << 20)])  # larger than any record the producer sends
    fine = stored_alert(store, "ACME", ["m-1"])
    store.close()
    with running_daemon(settings) as daemon:
        wait_until(lambda: published(daemon.store).get(fine), 30, "the other alert to be published", 0.5)
        assert published(daemon.store)[too_big] is False, "an alert that never went out is marked published"
    sent = read_topic(broker.bootstrap, settings.alerts_topic, 1, timeout_s=30)
    assert [r.key.decode() for r in sent] == [fine]


def record_size(record: object) -> int:
    headers = [(k, v) for k, v in record.headers]  # type: ignore[attr-defined]
    return DefaultRecordBatchBuilder.estimate_size_in_bytes(record.key, record.value, headers)  # type: ignore[attr-defined]


def test_outputs_are_sized_against_the_brokers_limit_headers_included(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path
) -> None:
    settings = daemon_settings(
        broker.bootstrap, unique, tmp_path, model_dir, max_message_bytes=16384, broker_max_message_bytes=LIMIT
    )
    near = json.dumps({"id": "near", "text": "Tesla shares slide " + "a" * 7900}).encode()  # scored: over LIMIT
    broken = b"{not json " + b"b" * 12000  # a dead letter over LIMIT
    fine = json.dumps({"id": "fine", "text": "Exxon declares dividend"}).encode()
    produce(broker.bootstrap, settings.input_topics[0], [near, broken, fine], keys=[b"k"] * 3)
    with running_daemon(settings) as daemon:
        wait_until(lambda: count(daemon.store, "messages") == 1, 60, "the small record to be counted")
        wait_until(lambda: daemon.pending.records == 0, 30, "every record committed")
    scored = read_topic(broker.bootstrap, settings.scored_topic, 1)
    dead = {dict(r.headers)["finsent-source-offset"]: r for r in read_topic(broker.bootstrap, settings.dlq_topic, 2)}
    assert set(dead) == {b"0", b"1"}
    assert [json.loads(r.value)["id"] for r in scored] == ["fine"]
    for record in [*scored, *dead.values()]:
        assert record_size(record) <= LIMIT, f"{record_size(record)} bytes on a topic that takes {LIMIT}"
    for offset, original, reason in [(b"0", near, b"too_large"), (b"1", broken, b"not_json")]:  # one partition
        headers = dict(dead[offset].headers)
        assert headers["finsent-error"] == reason
        assert headers["finsent-truncated-from"] == str(len(original)).encode()
        assert original.startswith(dead[offset].value), "a truncated copy is the original's first bytes"


def test_a_dead_letter_the_producer_refuses_is_sent_again_truncated(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path
) -> None:
    """The limit configured is wrong (the topic takes less than the daemon was told): the first send fails."""
    settings = daemon_settings(broker.bootstrap, unique, tmp_path, model_dir, max_message_bytes=16384)
    producer = KafkaProducer(**{**producer_options(settings), "max_request_size": 4096})
    broken = b"{not json " + b"c" * 6000
    fine = json.dumps({"id": "fine", "text": "Exxon declares dividend"}).encode()
    produce(broker.bootstrap, settings.input_topics[0], [broken, fine])
    with running_daemon(settings, sink=KafkaSink(settings, producer=producer)) as daemon:
        wait_until(lambda: count(daemon.store, "messages") == 1, 60, "the good record to be counted")
        wait_until(lambda: daemon.pending.records == 0, 30, "every record committed")
    dead = read_topic(broker.bootstrap, settings.dlq_topic, 1, timeout_s=20)
    assert len(dead) == 1, "the record went nowhere, yet its offset was committed"
    headers = dict(dead[0].headers)
    assert headers["finsent-error"] == b"not_json" and headers["finsent-truncated-from"] == str(len(broken)).encode()
    assert broken.startswith(dead[0].value) and len(dead[0].value) < 4096
