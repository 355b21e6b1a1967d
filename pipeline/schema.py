"""Input records -> events or rejected records. Parsing never raises, whatever the bytes."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from pipeline.tickers import NameLinker, TickerSource, ticker_sources

Reason = Literal[
    "too_large",
    "not_utf8",
    "not_json",
    "not_object",
    "missing_text",
    "empty_text",
    "bad_type",
    "bad_timestamp",
    "bad_string",  # a NUL or a lone surrogate in any key or value: the store / producer cannot take it
    "too_deep",  # nesting deeper than MAX_DEPTH
    "unprocessable",  # failed downstream of the parser (set by the daemon, never by parse_record)
]
REASONS: tuple[Reason, ...] = get_args(Reason)  # one list: metrics pre-create a label per reason
KINDS = ("news", "comment")
MAX_ID_CHARS = 128
MAX_SOURCE_CHARS = 64
MAX_DEPTH = 32  # containers (objects and arrays) nested in each other, the message itself being level 1
MAX_TICKERS = 32  # entries of a message's own ``tickers`` list
DEFAULT_MAX_FUTURE_MS = 300_000  # FINSENT_MAX_FUTURE_S default: event times up to 5 min ahead of the wall clock
_TICKER_RE = re.compile(r"\S{1,16}")  # AAPL, BRK.B, RDS-A, 7203.T; the store's ticker columns are bounded
_EARLIEST_MS = 0  # 1970: anything before is an impossible timestamp
_MAX_PATH_CHARS = 100

_PathNode = tuple["_PathNode", str | int] | None  # (parent, key or index); the message itself is None


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
    ticker_sources: dict[str, TickerSource] = field(default_factory=dict)  # where each ticker came from


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


def _reject_constant(name: str) -> Any:
    raise _Invalid("not_json", f"{name} is not allowed: the value must be strict JSON (finite numbers only)")


def _finite_float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise _Invalid("not_json", f"number {literal[:24]} is out of range (not a finite float)")
    return number


def _path_text(node: _PathNode) -> str:
    """``(((None, "meta"), "tags"), 2)`` -> ``meta.tags[2]``, shortened from the left past ``_MAX_PATH_CHARS``."""
    parts: list[str] = []
    while node is not None:
        node, key = node
        if isinstance(key, int):
            parts.append(f"[{key}]")
        else:
            name = key[:40] if key.isprintable() else ascii(key[:40])[1:-1]
            parts.append(f".{name}" if node is not None else name)
    text = "".join(reversed(parts)) or "the message"
    return text if len(text) <= _MAX_PATH_CHARS else "…" + text[-_MAX_PATH_CHARS:]


def _string_problem(value: str) -> str | None:
    """What makes a string unusable downstream, or ``None``; never quotes the string itself."""
    if "\x00" in value:
        return "contains a NUL character"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate (not encodable as UTF-8)"
    return None


def _check_nesting_and_strings(obj: dict[str, Any], *, check_strings: bool = True) -> None:
    """Raise ``too_deep`` past ``MAX_DEPTH`` levels, ``bad_string`` for a NUL or lone surrogate in any key or value.

    One walk with an explicit stack, so no object can make it recurse too far. The path of a
    container is a linked tuple, turned into text (``meta.tags[2]``) only for the detail.
    """
    stack: list[tuple[dict[str, Any] | list[Any], _PathNode, int]] = [(obj, None, 1)]
    while stack:
        container, path, depth = stack.pop()
        children: Any
        if isinstance(container, dict):
            if check_strings:
                for key in container:
                    problem = _string_problem(key)
                    if problem:
                        raise _Invalid("bad_string", f"a key in {_path_text(path)} {problem}")
            children = container.items()
        else:
            children = enumerate(container)
        for key, child in children:
            if isinstance(child, str):
                if check_strings:
                    problem = _string_problem(child)
                    if problem:
                        raise _Invalid("bad_string", f"{_path_text((path, key))} {problem}")
            elif isinstance(child, dict | list):
                if depth >= MAX_DEPTH:
                    where = _path_text((path, key))
                    raise _Invalid("too_deep", f"{where} is nested deeper than {MAX_DEPTH} levels")
                stack.append((child, (path, key), depth + 1))


def _check_tickers(given: Any) -> None:
    if not isinstance(given, list):
        raise _Invalid("bad_type", f"tickers must be a list of strings, not {type(given).__name__}")
    if len(given) > MAX_TICKERS:
        raise _Invalid("bad_type", f"tickers has {len(given)} entries, over the limit of {MAX_TICKERS}")
    for index, ticker in enumerate(given):
        if not isinstance(ticker, str):
            raise _Invalid("bad_type", f"tickers[{index}] must be a string, not {type(ticker).__name__}")
        if not _TICKER_RE.fullmatch(ticker):
            raise _Invalid("bad_type", f"tickers[{index}] must be 1-16 characters without whitespace")


def _seconds_text(ms: int) -> str:
    return str(ms // 1000) if ms % 1000 == 0 else f"{ms / 1000:.3f}"


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
    value: bytes | None,
    origin: Origin,
    *,
    max_bytes: int,
    now_ms: int,
    max_future_ms: int,
    watchlist: frozenset[str],
    linker: NameLinker | None,
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
        obj = json.loads(decoded, parse_float=_finite_float, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise _Invalid("not_json", f"value is not JSON: {str(exc)[:80]}") from exc
    if not isinstance(obj, dict):
        raise _Invalid("not_object", f"value is a JSON {type(obj).__name__}, not an object")
    # Strict JSON refuses raw control characters in strings and strict UTF-8 refuses encoded
    # surrogates, so a NUL or a lone surrogate can only come from a \u escape: without one,
    # skip the per-string checks (the common case) and only measure the nesting.
    _check_nesting_and_strings(obj, check_strings="\\u" in decoded)
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
        name = "published_at" if obj.get("published_at") is not None else "the record timestamp"
        ahead_s = -(-(event_time - now_ms) // 1000)  # rounded up, so "301 s" never reads as allowed
        raise _Invalid(
            "bad_timestamp", f"{name} is {ahead_s} s in the future (allowed: {_seconds_text(max_future_ms)} s)"
        )
    given = obj.get("tickers")
    if given is not None:
        _check_tickers(given)
    sources = ticker_sources(text, given or (), watchlist, linker)
    return Event(message_id, text, event_time, source, kind, list(sources), origin, obj, sources)


def parse_record(
    value: bytes | None,
    origin: Origin,
    *,
    now_ms: int,
    max_bytes: int = 1 << 20,
    max_future_ms: int = DEFAULT_MAX_FUTURE_MS,
    watchlist: frozenset[str] = frozenset(),
    linker: NameLinker | None = None,
) -> Event | Rejected:
    """One record -> ``Event`` or ``Rejected`` (with a reason code and a short detail).

    ``linker`` finds companies named in plain text (``pipeline.linker``); without one, tickers come
    only from the message's ``tickers`` field, cashtags and the watchlist.
    """
    try:
        return _build(
            value,
            origin,
            max_bytes=max_bytes,
            now_ms=now_ms,
            max_future_ms=max_future_ms,
            watchlist=watchlist,
            linker=linker,
        )
    except _Invalid as exc:
        return Rejected(value, exc.reason, exc.detail, origin)
    except Exception as exc:  # the contract is "never raises": anything unforeseen is bad input too
        return Rejected(value, "bad_type", f"unexpected {type(exc).__name__}: {str(exc)[:80]}", origin)
