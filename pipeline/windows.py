"""Event-time tumbling windows: pure arithmetic, the count aggregate, and the tracker.

The tracker keeps only what is not yet committed (deltas per window) and which
windows are open or closed; committed totals live in the store. A window closes
when the watermark passes its end plus the grace period.

The watermark is per partition first: each input partition's newest event time.
The combined watermark is the oldest of them over the partitions that are active
(a record within ``idle_ms``), so a partition read ahead of the others — a backlog,
a replay — cannot close windows the others still feed. When every partition is
idle, the newest event time moves on with the wall clock, so windows close on a
quiet stream too.
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


Partition = tuple[str, int]
ANY_PARTITION: Partition = ("", 0)


@dataclass
class Progress:
    """How far one partition has got: its newest event time, and when it last gave a record (or was assigned)."""

    max_event_ms: int | None
    last_seen_wall_ms: int


def combined_watermark(progress: Iterable[Progress], now_wall_ms: int, idle_ms: int) -> int | None:
    """Oldest newest-event-time over active partitions; when all are idle, the newest moved on by the wall clock.

    An active partition that has given no record yet holds the watermark back (``None``).
    """
    parts = list(progress)
    active = [p for p in parts if now_wall_ms - p.last_seen_wall_ms < idle_ms]
    if active:
        if any(p.max_event_ms is None for p in active):
            return None
        return min(p.max_event_ms for p in active if p.max_event_ms is not None)
    seen = [p for p in parts if p.max_event_ms is not None]
    if not seen:
        return None
    newest = max(p.max_event_ms for p in seen if p.max_event_ms is not None)
    return newest + max(0, now_wall_ms - max(p.last_seen_wall_ms for p in seen))


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
    idle_ms: int = 10_000
    deltas: dict[WindowKey, Counts] = field(default_factory=dict)
    open_starts: set[int] = field(default_factory=set)
    closed_starts: set[int] = field(default_factory=set)
    partitions: dict[Partition, Progress] = field(default_factory=dict)
    mark: int | None = None  # never moves back

    def assign(self, partitions: Iterable[Partition], now_wall_ms: int) -> None:
        for tp in partitions:
            self.partitions.setdefault(tp, Progress(None, now_wall_ms))

    def revoke(self, partitions: Iterable[Partition]) -> None:
        for tp in partitions:
            self.partitions.pop(tp, None)

    def watermark(self, now_wall_ms: int) -> int | None:
        current = combined_watermark(self.partitions.values(), now_wall_ms, self.idle_ms)
        if current is not None and (self.mark is None or current > self.mark):
            self.mark = current
        return self.mark

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
        partition: Partition = ANY_PARTITION,
    ) -> bool:
        """Count one scored message; ``False`` (and nothing added) if it is late."""
        progress = self.partitions.setdefault(partition, Progress(None, now_wall_ms))
        if progress.max_event_ms is None or event_time_ms > progress.max_event_ms:
            progress.max_event_ms = event_time_ms
        progress.last_seen_wall_ms = now_wall_ms
        if self.is_late(event_time_ms, now_wall_ms):
            return False
        start = window_start(event_time_ms, self.size_ms)
        self.open_starts.add(start)
        for dimension, key in keys:
            self.deltas.setdefault((dimension, key, start), Counts()).add(sentiment, p_negative, unique)
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
