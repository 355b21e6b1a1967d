"""Input records -> events or rejected records. Parsing never raises, whatever the bytes."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pipeline.tickers import extract_tickers

Reason = Literal[
    "too_large", "not_utf8", "not_json", "not_object", "missing_text", "empty_text", "bad_type", "bad_timestamp"
]
REASONS: tuple[Reason, ...] = (
    "too_large",
    "not_utf8",
    "not_json",
    "not_object",
    "missing_text",
    "empty_text",
    "bad_type",
    "bad_timestamp",
)
KINDS = ("news", "comment")
MAX_ID_CHARS = 128
MAX_SOURCE_CHARS = 64
_EARLIEST_MS = 0  # 1970: anything before is an impossible timestamp


@dataclass(frozen=True)
class Origin:
    """Where a record came from."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None
    key: bytes | None = None


@dataclass
class Event:
    """A valid input message, ready to score."""

    id: str
    text: str
    event_time_ms: int
    source: str | None
    kind: str
    tickers: list[str]
    origin: Origin
    fields: dict[str, Any] = field(default_factory=dict)  # the message as sent, passed through


@dataclass(frozen=True)
class Rejected:
    """A record that goes to the dead-letter topic with its original bytes."""

    value: bytes | None
    reason: Reason
    detail: str
    origin: Origin


class _Invalid(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def parse_timestamp(value: Any) -> int:
    """RFC 3339 string or epoch milliseconds -> epoch milliseconds (UTC)."""
    if isinstance(value, bool):
        raise _Invalid("bad_type", "published_at must be an RFC 3339 string or epoch milliseconds, not a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise _Invalid("bad_timestamp", f"published_at {value!r} is not a finite number")
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise _Invalid("bad_timestamp", f"published_at {value[:40]!r} is not an RFC 3339 time") from exc
        if parsed.tzinfo is None:
            raise _Invalid("bad_timestamp", f"published_at {value[:40]!r} has no time zone offset")
        return int(parsed.timestamp() * 1000)
    raise _Invalid("bad_type", f"published_at must be a string or a number, not {type(value).__name__}")


def _optional_str(obj: dict[str, Any], name: str, limit: int) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid("bad_type", f"{name} must be a string, not {type(value).__name__}")
    if len(value) > limit:
        raise _Invalid("bad_type", f"{name} is longer than {limit} characters")
    return value


def _build(
    value: bytes | None, origin: Origin, *, max_bytes: int, now_ms: int, max_future_ms: int, watchlist: frozenset[str]
) -> Event:
    if value is None:
        raise _Invalid("not_json", "the record has no value (tombstone)")
    if len(value) > max_bytes:
        raise _Invalid("too_large", f"value is {len(value)} bytes, over the {max_bytes}-byte limit")
    try:
        decoded = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Invalid("not_utf8", f"value is not UTF-8 (byte {exc.start})") from exc
    try:
        obj = json.loads(decoded)
    except (ValueError, RecursionError) as exc:
        raise _Invalid("not_json", f"value is not JSON: {str(exc)[:80]}") from exc
    if not isinstance(obj, dict):
        raise _Invalid("not_object", f"value is a JSON {type(obj).__name__}, not an object")
    if "text" not in obj:
        raise _Invalid("missing_text", "field 'text' is missing")
    text = obj["text"]
    if not isinstance(text, str):
        raise _Invalid("bad_type", f"text must be a string, not {type(text).__name__}")
    if not text.strip():
        raise _Invalid("empty_text", "text is empty")
    message_id = _optional_str(obj, "id", MAX_ID_CHARS) or f"{origin.topic}-{origin.partition}-{origin.offset}"
    source = _optional_str(obj, "source", MAX_SOURCE_CHARS)
    kind = obj.get("kind", "news")
    if kind not in KINDS:
        raise _Invalid("bad_type", f"kind must be 'news' or 'comment' (got {str(kind)[:20]!r})")
    if obj.get("published_at") is not None:
        event_time = parse_timestamp(obj["published_at"])
    elif origin.timestamp_ms is not None and origin.timestamp_ms >= 0:
        event_time = origin.timestamp_ms
    else:
        event_time = now_ms
    if event_time < _EARLIEST_MS:
        raise _Invalid("bad_timestamp", "published_at is before 1970")
    if event_time > now_ms + max_future_ms:
        raise _Invalid("bad_timestamp", "published_at is more than a day in the future")
    given = obj.get("tickers")
    if given is not None and (not isinstance(given, list) or not all(isinstance(t, str) for t in given)):
        raise _Invalid("bad_type", "tickers must be a list of strings")
    tickers = extract_tickers(text, given or (), watchlist)
    return Event(message_id, text, event_time, source, kind, tickers, origin, obj)


def parse_record(
    value: bytes | None,
    origin: Origin,
    *,
    now_ms: int,
    max_bytes: int = 1 << 20,
    max_future_ms: int = 24 * 3600 * 1000,
    watchlist: frozenset[str] = frozenset(),
) -> Event | Rejected:
    """One record -> ``Event`` or ``Rejected`` (with a reason code and a short detail)."""
    try:
        return _build(
            value, origin, max_bytes=max_bytes, now_ms=now_ms, max_future_ms=max_future_ms, watchlist=watchlist
        )
    except _Invalid as exc:
        return Rejected(value, exc.reason, exc.detail, origin)
    except Exception as exc:  # the contract is "never raises": anything unforeseen is bad input too
        return Rejected(value, "bad_type", f"unexpected {type(exc).__name__}: {str(exc)[:80]}", origin)
