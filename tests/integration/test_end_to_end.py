"""N good and M bad messages in -> N scored, M dead letters with reasons, window totals N, metrics agree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.tooling.broker import EmbeddedBroker
from tests.helpers import as_json, count, produce, read_topic, wait_until, window_totals
from tests.integration.daemon_harness import daemon_settings, running_daemon

pytestmark = pytest.mark.integration

BASE_MS = 1_767_261_600_000  # 2026-01-01T10:00:00Z

GOOD = [
    {"id": f"good-{i}", "text": text, "published_at": BASE_MS + i * 1000, "source": "wire", "extra": {"n": i}}
    for i, text in enumerate(
        [
            "$AAPL shares plunge after weak iPhone sales guidance",
            "Fed holds rates steady, signals patience on cuts",
            "Exxon declares quarterly dividend of $0.95",
            "Tesla upgraded to outperform at Baird; $TSLA price target raised",
            "Oil prices slide as OPEC+ agrees to raise output",
            "Goldman Sachs names new chief financial officer",
            "Nvidia slides after guidance cut",
        ]
        * 5
    )
]
BAD: list[tuple[bytes | None, str]] = [
    (b"\xff\xfe not utf-8", "not_utf8"),
    (b"{not json", "not_json"),
    (b"[1, 2, 3]", "not_object"),
    (b'{"title": "no text"}', "missing_text"),
    (b'{"text": "   "}', "empty_text"),
    (b'{"text": 42}', "bad_type"),
    (b'{"text": "from the far future", "published_at": "2999-01-01T00:00:00Z"}', "bad_timestamp"),
    (b'{"text": "' + b"x" * 3000 + b'"}', "too_large"),
]


def test_good_and_bad_messages(broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path) -> None:
    settings = daemon_settings(broker.bootstrap, unique, tmp_path, model_dir, max_message_bytes=2048)
    values = as_json(GOOD) + [v for v, _ in BAD]
    produce(broker.bootstrap, settings.input_topics[0], values)

    with running_daemon(settings) as daemon:
        wait_until(
            lambda: count(daemon.store, "messages") == len(GOOD) and daemon.pending.records == 0,
            60,
            "all good messages committed",
        )
        registry = daemon.metrics.registry
        scored = read_topic(broker.bootstrap, settings.scored_topic, len(GOOD))
        dlq = read_topic(broker.bootstrap, settings.dlq_topic, len(BAD))
        totals = window_totals(daemon.store, "all")

    assert len({r.key for r in scored}) == len(GOOD)
    event = json.loads(next(r.value for r in scored if r.key == b"good-0"))
    assert event["sentiment"] in ("negative", "neutral", "positive")
    assert abs(event["p_negative"] + event["p_neutral"] + event["p_positive"] - 1) < 1e-3
    assert event["tickers"] == ["AAPL"] and event["extra"] == {"n": 0}
    assert event["ticker_sources"] == {"AAPL": "cashtag"}
    named = json.loads(next(r.value for r in scored if r.key == b"good-6"))
    assert named["text"] == "Nvidia slides after guidance cut" and "tickers" not in GOOD[6]
    assert named["tickers"] == ["NVDA"] and named["ticker_sources"] == {"NVDA": "name"}, "a company named in plain text"
    assert event["input"]["topic"] == settings.input_topics[0]
    assert event["model_version"] and event["scored_at"].endswith("Z")

    assert sorted(r.value for r in dlq) == sorted(v for v, _ in BAD)
    reasons = {r.value: dict(r.headers) for r in dlq}
    for value, reason in BAD:
        headers = reasons[value]
        assert headers["finsent-error"].decode() == reason
        assert headers["finsent-error-detail"]
        assert headers["finsent-source-topic"].decode() == settings.input_topics[0]

    assert sum(v["n"] for v in totals.values()) == len(GOOD)
    assert sum(v["n_negative"] + v["n_neutral"] + v["n_positive"] for v in totals.values()) == len(GOOD)
    assert sum(v["n_unique"] for v in totals.values()) == 7, "each story repeated 5 times counts once as unique"

    def sample(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    assert sample("finsent_messages_consumed_total", topic=settings.input_topics[0]) == len(GOOD) + len(BAD)
    for _, reason in BAD:
        assert sample("finsent_messages_invalid_total", reason=reason) == 1
    scored_metric = sum(
        s.value
        for m in registry.collect()
        if m.name == "finsent_messages_scored"
        for s in m.samples
        if s.name.endswith("_total")
    )
    assert scored_metric == len(GOOD)


def test_every_compression_codec_is_read(broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path) -> None:
    settings = daemon_settings(broker.bootstrap, unique, tmp_path, model_dir)
    codecs = ("gzip", "snappy", "lz4", "zstd")
    for codec in codecs:
        produce(
            broker.bootstrap,
            settings.input_topics[0],
            as_json({"id": f"{codec}-{i}", "text": f"{codec} headline {i}: Apple shares rise"} for i in range(5)),
            compression_type=codec,
        )
    with running_daemon(settings) as daemon:
        wait_until(lambda: count(daemon.store, "messages") == 5 * len(codecs), 60, "every compressed record scored")
        assert daemon.metrics.registry.get_sample_value("finsent_messages_invalid_total", {"reason": "not_json"}) == 0
