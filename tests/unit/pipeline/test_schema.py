from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.schema import Event, Origin, Rejected, parse_record

NOW = 1_767_261_600_000  # 2026-01-01T10:00:00Z
ORIGIN = Origin("news", 2, 41, timestamp_ms=NOW - 5000)


def parse(value: bytes | None, **kw: object) -> Event | Rejected:
    return parse_record(value, ORIGIN, now_ms=NOW, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "not_json"),
        (b"\xff\xfe", "not_utf8"),
        (b"", "not_json"),
        (b"{oops", "not_json"),
        (b"[]", "not_object"),
        (b'"text"', "not_object"),
        (b"{}", "missing_text"),
        (b'{"text": ""}', "empty_text"),
        (b'{"text": " \\n\\t "}', "empty_text"),
        (b'{"text": ["a"]}', "bad_type"),
        (b'{"text": "a", "id": 5}', "bad_type"),
        (b'{"text": "a", "id": "' + b"x" * 129 + b'"}', "bad_type"),
        (b'{"text": "a", "source": "' + b"s" * 65 + b'"}', "bad_type"),
        (b'{"text": "a", "kind": "rumour"}', "bad_type"),
        (b'{"text": "a", "tickers": "AAPL"}', "bad_type"),
        (b'{"text": "a", "published_at": true}', "bad_type"),
        (b'{"text": "a", "published_at": "yesterday"}', "bad_timestamp"),
        (b'{"text": "a", "published_at": "2026-01-01T10:00:00"}', "bad_timestamp"),
        (b'{"text": "a", "published_at": -1}', "bad_timestamp"),
        (b'{"text": "a", "published_at": "2026-01-03T10:00:01Z"}', "bad_timestamp"),
    ],
)
def test_rejects_with_reason(value: bytes | None, reason: str) -> None:
    result = parse(value)
    assert isinstance(result, Rejected)
    assert result.reason == reason
    assert result.value == value and result.origin == ORIGIN
    assert result.detail


def test_too_large_is_rejected_before_decoding() -> None:
    result = parse(b'{"text": "' + b"a" * 2000 + b'"}', max_bytes=1024)
    assert isinstance(result, Rejected) and result.reason == "too_large"


def test_minimal_message_gets_defaults() -> None:
    result = parse(b'{"text": "Shares of $aapl fall"}')
    assert isinstance(result, Event)
    assert result.id == "news-2-41"
    assert result.event_time_ms == NOW - 5000  # the record timestamp
    assert result.kind == "news" and result.source is None
    assert result.tickers == ["AAPL"]


@pytest.mark.parametrize(
    ("published_at", "expected_ms"),
    [
        ("2026-01-01T09:00:00Z", NOW - 3_600_000),
        ("2026-01-01T11:00:00+02:00", NOW - 3_600_000),
        ("2026-01-01T09:00:00.250Z", NOW - 3_600_000 + 250),
        (NOW - 1234, NOW - 1234),
        ("2026-01-02T09:59:59Z", NOW + 86_399_000),  # less than a day ahead is fine
    ],
)
def test_published_at_forms(published_at: object, expected_ms: int) -> None:
    result = parse(json.dumps({"text": "x", "published_at": published_at}).encode())
    assert isinstance(result, Event)
    assert result.event_time_ms == expected_ms


def test_fields_pass_through_and_given_tickers_merge() -> None:
    msg = {
        "text": "TSLA and $nvda rally",
        "id": "m1",
        "source": "forum",
        "kind": "comment",
        "tickers": ["msft"],
        "lang": "en",
    }
    result = parse_record(json.dumps(msg).encode(), ORIGIN, now_ms=NOW, watchlist=frozenset({"TSLA"}))
    assert isinstance(result, Event)
    assert result.fields["lang"] == "en"
    assert result.tickers == ["MSFT", "NVDA", "TSLA"]
    assert (result.id, result.source, result.kind) == ("m1", "forum", "comment")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_never_raises_on_bytes(value: bytes) -> None:
    assert isinstance(parse(value), Event | Rejected)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["text", "id", "published_at", "source", "kind", "tickers", "x"]), json_values, max_size=6
    )
)
def test_never_raises_on_json_objects(obj: dict) -> None:  # type: ignore[type-arg]
    result = parse(json.dumps(obj).encode())
    assert isinstance(result, Event | Rejected)
    if isinstance(result, Event):
        assert result.text.strip()
