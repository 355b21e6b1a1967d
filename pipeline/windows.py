"""Event-time tumbling windows: pure arithmetic, the count aggregate, and the tracker.

The tracker keeps only what is not yet committed (deltas per window) and which
windows are open or closed; committed totals live in the store. A window closes
when the watermark passes its end plus the grace period. The watermark is the
newest event time seen, advanced by wall-clock time while the input is quiet, so
windows close on a quiet stream too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from models.contract import SENTIMENT_LABELS

Dimension = Literal["all", "topic", "ticker", "source"]
DIMENSIONS: tuple[Dimension, ...] = ("all", "topic", "ticker", "source")
WindowKey = tuple[str, str, int]  # (dimension, key, window_start_ms)


def window_start(timestamp_ms: int, size_ms: int) -> int:
    """Start of the tumbling window holding ``timestamp_ms`` (start inclusive, end exclusive)."""
    return timestamp_ms - timestamp_ms % size_ms


def is_window_closed(start_ms: int, size_ms: int, grace_ms: int, watermark_ms: int | None) -> bool:
    """A window is closed once the watermark reaches its end plus the grace period."""
    return watermark_ms is not None and watermark_ms >= start_ms + size_ms + grace_ms


def watermark(max_event_ms: int | None, last_event_wall_ms: int | None, now_wall_ms: int) -> int | None:
    """Newest event time seen, moved on by the wall-clock time elapsed since it was seen."""
    if max_event_ms is None or last_event_wall_ms is None:
        return None
    return max_event_ms + max(0, now_wall_ms - last_event_wall_ms)


def dimension_keys(topic: str, tickers: Iterable[str], source: str | None) -> Iterator[tuple[Dimension, str]]:
    """Every (dimension, key) a scored message counts under."""
    yield "all", "all"
    yield "topic", topic
    for ticker in tickers:
        yield "ticker", ticker
    if source:
        yield "source", source


@dataclass
class Counts:
    """The window aggregate: initialise with ``Counts()``, ``add`` one message, ``merge`` another."""

    n: int = 0
    n_unique: int = 0
    n_negative: int = 0
    n_neutral: int = 0
    n_positive: int = 0
    sum_p_negative: float = 0.0

    def add(self, sentiment: str, p_negative: float, unique: bool) -> None:
        self.n += 1
        self.n_unique += int(unique)
        if sentiment == SENTIMENT_LABELS[0]:
            self.n_negative += 1
        elif sentiment == SENTIMENT_LABELS[1]:
            self.n_neutral += 1
        else:
            self.n_positive += 1
        self.sum_p_negative += p_negative

    def merge(self, other: Counts) -> None:
        self.n += other.n
        self.n_unique += other.n_unique
        self.n_negative += other.n_negative
        self.n_neutral += other.n_neutral
        self.n_positive += other.n_positive
        self.sum_p_negative += other.sum_p_negative

    @property
    def negative_ratio(self) -> float:
        return self.n_negative / self.n if self.n else 0.0


@dataclass
class WindowTracker:
    """Uncommitted deltas, open and closed window starts, and the watermark inputs."""

    size_ms: int
    grace_ms: int
    deltas: dict[WindowKey, Counts] = field(default_factory=dict)
    open_starts: set[int] = field(default_factory=set)
    closed_starts: set[int] = field(default_factory=set)
    max_event_ms: int | None = None
    last_event_wall_ms: int | None = None

    def watermark(self, now_wall_ms: int) -> int | None:
        return watermark(self.max_event_ms, self.last_event_wall_ms, now_wall_ms)

    def is_late(self, event_time_ms: int, now_wall_ms: int) -> bool:
        start = window_start(event_time_ms, self.size_ms)
        if start in self.closed_starts:
            return True
        return is_window_closed(start, self.size_ms, self.grace_ms, self.watermark(now_wall_ms))

    def add(
        self,
        event_time_ms: int,
        now_wall_ms: int,
        keys: Iterable[tuple[Dimension, str]],
        sentiment: str,
        p_negative: float,
        unique: bool,
    ) -> bool:
        """Count one scored message; ``False`` (and nothing added) if it is late."""
        if self.is_late(event_time_ms, now_wall_ms):
            return False
        start = window_start(event_time_ms, self.size_ms)
        self.open_starts.add(start)
        for dimension, key in keys:
            self.deltas.setdefault((dimension, key, start), Counts()).add(sentiment, p_negative, unique)
        if self.max_event_ms is None or event_time_ms > self.max_event_ms:
            self.max_event_ms = event_time_ms
        self.last_event_wall_ms = now_wall_ms
        return True

    def due(self, now_wall_ms: int) -> list[int]:
        """Open window starts that the watermark has closed, oldest first."""
        mark = self.watermark(now_wall_ms)
        return sorted(s for s in self.open_starts if is_window_closed(s, self.size_ms, self.grace_ms, mark))

    def take_deltas(self) -> dict[WindowKey, Counts]:
        taken, self.deltas = self.deltas, {}
        return taken

    def mark_closed(self, starts: Iterable[int]) -> None:
        for start in starts:
            self.open_starts.discard(start)
            self.closed_starts.add(start)

    def forget_closed_before(self, start_ms: int) -> None:
        """Bound memory: windows this old are late by the watermark rule anyway."""
        self.closed_starts = {s for s in self.closed_starts if s >= start_ms}
