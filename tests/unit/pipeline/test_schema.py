from __future__ import annotations

import json

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from pipeline.schema import MAX_DEPTH, MAX_TICKERS, REASONS, Event, Origin, Rejected, parse_record

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
        ("2026-01-01T10:04:59Z", NOW + 299_000),  # within the default 5-minute allowance
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


def nested(depth: int, leaf: object = "x") -> dict:  # type: ignore[type-arg]
    """A message whose deepest container is at level ``depth`` (the message itself is level 1)."""
    inner: object = leaf
    for level in range(depth - 1):
        inner = {"k": inner} if level % 2 else [inner]
    return {"text": "deep", "meta": inner}


def ticker_message(tickers: object) -> bytes:
    return json.dumps({"text": "a", "tickers": tickers}).encode()


def future_message(ahead_ms: int) -> bytes:
    return json.dumps({"text": "a", "published_at": NOW + ahead_ms}).encode()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param(b'{"text": "a\\u0000b"}', "bad_string", id="nul-in-text"),
        pytest.param(b'{"text": "a", "meta": {"au\\u0000thor": "x"}}', "bad_string", id="nul-in-nested-key"),
        pytest.param(b'{"text": "a\\ud800"}', "bad_string", id="surrogate-in-text"),
        pytest.param(b'{"text": "a", "lang": "\\udfff"}', "bad_string", id="surrogate-in-extra-field"),
        pytest.param(b'{"text": "a", "\\ud83d": 1}', "bad_string", id="surrogate-in-key"),
        pytest.param(b'{"text": "a", "tags": ["ok", ["\\ud800x"]]}', "bad_string", id="surrogate-in-list"),
        pytest.param(b'{"text": "a", "id": "m\\u0000"}', "bad_string", id="nul-in-id"),
        pytest.param(json.dumps(nested(MAX_DEPTH + 1)).encode(), "too_deep", id="depth-33"),
        pytest.param(json.dumps(nested(500)).encode(), "too_deep", id="depth-500"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, "not_json", id="depth-100000-array"),
        pytest.param(b'{"text": "a", "score": NaN}', "not_json", id="nan"),
        pytest.param(b'{"text": "a", "score": Infinity}', "not_json", id="infinity"),
        pytest.param(b'{"text": "a", "score": -Infinity}', "not_json", id="minus-infinity"),
        pytest.param(b'{"text": "a", "score": [1e400]}', "not_json", id="1e400"),
        pytest.param(b'{"text": "a", "published_at": 1e400}', "not_json", id="1e400-timestamp"),
        pytest.param(b'{"text": "a\x00"}', "not_json", id="raw-nul-byte"),
        pytest.param(b'{"text": "a\xed\xa0\x80"}', "not_utf8", id="raw-encoded-surrogate"),
        pytest.param(ticker_message(["AAPL", "A" * 17]), "bad_type", id="ticker-17-chars"),
        pytest.param(ticker_message(["T"] * (MAX_TICKERS + 1)), "bad_type", id="33-tickers"),
        pytest.param(ticker_message(["BRK B"]), "bad_type", id="ticker-with-space"),
        pytest.param(ticker_message(["AAPL\n"]), "bad_type", id="ticker-with-newline"),
        pytest.param(ticker_message([""]), "bad_type", id="empty-ticker"),
        pytest.param(ticker_message(["AAPL", 5]), "bad_type", id="ticker-not-a-string"),
        pytest.param(future_message(20 * 3_600_000), "bad_timestamp", id="20h-future"),
        pytest.param(future_message(300_001), "bad_timestamp", id="just-past-allowance"),
    ],
)
def test_rejects_unusable_input(value: bytes, reason: str) -> None:
    result = parse(value)
    assert isinstance(result, Rejected)
    assert (result.reason, result.value, result.origin) == (reason, value, ORIGIN)
    assert 0 < len(result.detail) < 200
    assert "\x00" not in result.detail
    result.detail.encode("utf-8")  # goes into a Kafka header


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(json.dumps(nested(MAX_DEPTH)).encode(), id="depth-32"),
        pytest.param(json.dumps(nested(MAX_DEPTH, leaf="\u20ac \U0001f680")).encode(), id="depth-32-escaped-text"),
        pytest.param(ticker_message(["AAPL", "BRK.B", "RDS-A", "7203.T", "X" * 16]), id="real-tickers"),
        pytest.param(ticker_message(["T"] * MAX_TICKERS), id="32-tickers"),
        pytest.param(future_message(4 * 60_000), id="4min-future"),
        pytest.param(future_message(300_000), id="exactly-the-allowance"),
        pytest.param(b'{"text": "\\u20ac \\ud83d\\ude80 caf\\u00e9", "x": "\\\\u0000"}', id="escaped-but-valid"),
        pytest.param('{"text": "€ 🚀 café"}'.encode(), id="raw-non-ascii"),
    ],
)
def test_accepts_usable_input(value: bytes) -> None:
    assert isinstance(parse(value), Event)


def test_bad_string_detail_names_the_path_not_the_string() -> None:
    value = json.dumps({"text": "a", "meta": {"author": "Bob\x00"}, "tickers": ["A", "B"]}).encode()
    result = parse(value)
    assert isinstance(result, Rejected)
    assert result.detail == "meta.author contains a NUL character"
    result = parse(b'{"text": "a", "tickers": ["A", "B", "\\ud800"]}')
    assert isinstance(result, Rejected)
    assert result.detail == "tickers[2] contains a lone surrogate (not encodable as UTF-8)"
    assert "Bob" not in result.detail


def test_bad_string_detail_stays_short_under_long_keys() -> None:
    value = json.dumps({"text": "a", "k" * 10_000: {"\n" * 500: [{"x" * 300: "\x00"}]}}).encode()
    result = parse(value)
    assert isinstance(result, Rejected) and result.reason == "bad_string"
    assert len(result.detail) < 200


def test_floats_stay_exact() -> None:
    result = parse(b'{"text": "a", "score": 0.1, "big": 1.7976931348623157e308, "n": 12345678901234567890}')
    assert isinstance(result, Event)
    assert result.fields["score"] == 0.1
    assert result.fields["big"] == 1.7976931348623157e308
    assert result.fields["n"] == 12345678901234567890


def test_future_detail_states_the_allowance() -> None:
    result = parse(future_message(20 * 3_600_000))
    assert isinstance(result, Rejected)
    assert result.detail == "published_at is 72000 s in the future (allowed: 300 s)"
    late_origin = Origin("news", 2, 41, timestamp_ms=NOW + 600_000)
    result = parse_record(b'{"text": "a"}', late_origin, now_ms=NOW, max_future_ms=60_000)
    assert isinstance(result, Rejected) and result.reason == "bad_timestamp"
    assert result.detail == "the record timestamp is 600 s in the future (allowed: 60 s)"
    assert isinstance(parse(future_message(20 * 3_600_000), max_future_ms=24 * 3_600_000), Event)


def test_unprocessable_is_a_reason_for_the_daemon() -> None:
    assert {"bad_string", "too_deep", "unprocessable"} <= set(REASONS)
    assert len(set(REASONS)) == len(REASONS)


hostile_text = st.text(
    st.characters(categories=["Cs", "Cc", "Cf", "Zs", "Lu", "Ll", "Nd", "Po", "So"])
    | st.sampled_from(["\x00", "\ud800", "\udfff", "\\", '"']),
    max_size=12,
)
hostile_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | hostile_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(hostile_text, children, max_size=4),
    max_leaves=16,
)


def all_strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *all_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in all_strings(v)]
    return []


message_fields = st.dictionaries(
    st.sampled_from(["id", "source", "kind", "published_at", "meta"]) | hostile_text, hostile_values, max_size=5
)
clean_tickers = st.lists(st.sampled_from(["AAPL", "$nvda", "BRK.B", "7203.T"]), max_size=3)


@settings(max_examples=300, deadline=None)
@given(
    message_fields,
    st.none() | hostile_text | st.sampled_from(["$AAPL jumps", "Nvidia slides", "caf\u00e9 \U0001f680"]),
    st.none() | clean_tickers | st.lists(hostile_text, max_size=3),
    st.booleans(),
)
def test_never_raises_and_events_reserialise(
    fields: dict,  # type: ignore[type-arg]
    text: str | None,
    tickers: list[str] | None,
    escaped: bool,
) -> None:
    obj = {**fields, **({} if text is None else {"text": text}), **({} if tickers is None else {"tickers": tickers})}
    if escaped:  # \uXXXX escapes: NUL and surrogates reach the parser as strings
        value = json.dumps(obj).encode()
    else:  # raw UTF-8: surrogates can only arrive as invalid bytes
        value = json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")
    result = parse(value)
    event(result.reason if isinstance(result, Rejected) else "accepted")  # see --hypothesis-show-statistics
    if isinstance(result, Rejected):
        assert result.reason in REASONS and result.reason != "unprocessable"
        assert result.value == value
        assert len(result.detail) < 200
        result.detail.encode("utf-8")
        return
    json.dumps(result.fields, ensure_ascii=False, allow_nan=False).encode("utf-8")
    json.dumps([result.id, result.text, result.source, result.tickers], ensure_ascii=False).encode("utf-8")
    assert not any("\x00" in s for s in all_strings(result.fields))
