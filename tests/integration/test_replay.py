"""finsent replay: files in, records on the topic as sent, malformed lines included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kafka import KafkaProducer

from pipeline.tooling.broker import EmbeddedBroker
from pipeline.tooling.replay import ReplayError, read_files, replay
from tests.helpers import read_topic

pytestmark = pytest.mark.integration


def test_replay_jsonl_and_csv(broker: EmbeddedBroker, unique: str, tmp_path: Path) -> None:
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"text": "Apple rallies", "id": "j1"}\n{not json}\n\n{"text": "Oil slides", "id": "j2"}\n')
    csv_file = tmp_path / "b.csv"
    csv_file.write_text(
        'text,published_at,source,tickers\n"Fed holds, again",1767261600000,wire,\n'
        'Tesla falls,2026-01-01T10:00:00Z,forum,"TSLA, F"\n'
    )
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    sent = replay(read_files([jsonl, csv_file]), producer, f"{unique}.in", rate=200, progress=False)
    producer.close()
    assert sent == 5
    values = [r.value for r in read_topic(broker.bootstrap, f"{unique}.in", 5)]
    assert b"{not json}" in values, "malformed lines are sent as they are (the DLQ path sees them)"
    rows = [json.loads(v) for v in values if v != b"{not json}"]
    tesla = next(r for r in rows if r["text"] == "Tesla falls")
    assert tesla == {
        "text": "Tesla falls",
        "source": "forum",
        "published_at": "2026-01-01T10:00:00Z",
        "tickers": ["TSLA", "F"],
    }
    assert next(r for r in rows if r["text"] == "Fed holds, again")["published_at"] == 1767261600000


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="does not exist"):
        list(read_files([tmp_path / "nope.jsonl"]))
