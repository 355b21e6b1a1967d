"""Event-time tumbling windows: pure arithmetic and the count aggregate.

Window progress is global: the watermark is the oldest progress over every partition of the
input topics (``pipeline.progress``). A window closes once the watermark reaches its end plus the
grace period. An event for a closed window is late: it is counted in the window's ``n_late``, never
in ``n``.

The sentiment index of a window is the confidence-weighted mean of ``p_positive - p_negative``
over its on-time messages, in [-1, 1]: each message weighs its confidence, the largest of its
three probabilities (``p_neutral = 1 - p_negative - p_positive``). A window keeps the two sums,
``sum_index`` (weighted values) and ``sum_confidence`` (weights), so that windows add up.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from models.contract import SENTIMENT_LABELS

Dimension = Literal["all", "topic", "ticker", "source"]
DIMENSIONS: tuple[Dimension, ...] = ("all", "topic", "ticker", "source")
NEGATIVE = SENTIMENT_LABELS[0]
WindowKey = tuple[str, str, int]  # (dimension, key, window_start_ms)
Partition = tuple[str, int]


def window_start(timestamp_ms: int, size_ms: int) -> int:
    """Start of the tumbling window holding ``timestamp_ms`` (start inclusive, end exclusive)."""
    return timestamp_ms - timestamp_ms % size_ms


def is_window_closed(start_ms: int, size_ms: int, grace_ms: int, watermark_ms: int | None) -> bool:
    """A window is closed once the watermark reaches its end plus the grace period."""
    return watermark_ms is not None and watermark_ms >= start_ms + size_ms + grace_ms


def last_closed_start(size_ms: int, grace_ms: int, watermark_ms: int) -> int:
    """The newest window start that ``watermark_ms`` closes (windows at or before it are closed)."""
    return window_start(watermark_ms - size_ms - grace_ms, size_ms)


def dimension_keys(topic: str, tickers: Iterable[str], source: str | None) -> Iterator[tuple[Dimension, str]]:
    """Every (dimension, key) a scored message counts under."""
    yield "all", "all"
    yield "topic", topic
    for ticker in tickers:
        yield "ticker", ticker
    if source:
        yield "source", source


COUNT_FIELDS = (
    "n",
    "n_unique",
    "n_negative",
    "n_neutral",
    "n_positive",
    "sum_p_negative",
    "sum_confidence",
    "sum_index",
    "n_late",
    "n_late_negative",
)


def sentiment_index(sum_index: float, sum_confidence: float) -> float | None:
    """The confidence-weighted mean of ``p_positive - p_negative``; ``None`` for a window without messages."""
    return max(-1.0, min(1.0, sum_index / sum_confidence)) if sum_confidence > 0 else None


@dataclass
class Counts:
    """The window aggregate: initialise with ``Counts()``, ``add`` one message, ``merge`` another."""

    n: int = 0
    n_unique: int = 0
    n_negative: int = 0
    n_neutral: int = 0
    n_positive: int = 0
    sum_p_negative: float = 0.0
    sum_confidence: float = 0.0
    sum_index: float = 0.0
    n_late: int = 0
    n_late_negative: int = 0

    def add(self, sentiment: str, p_negative: float, unique: bool, late: bool = False, p_positive: float = 0.0) -> None:
        negative = sentiment == NEGATIVE
        if late:
            self.n_late += 1
            self.n_late_negative += int(negative)
            return
        self.n += 1
        self.n_unique += int(unique)
        if negative:
            self.n_negative += 1
        elif sentiment == SENTIMENT_LABELS[1]:
            self.n_neutral += 1
        else:
            self.n_positive += 1
        self.sum_p_negative += p_negative
        confidence = max(p_negative, p_positive, 1.0 - p_negative - p_positive)
        self.sum_confidence += confidence
        self.sum_index += confidence * (p_positive - p_negative)

    def merge(self, other: Counts) -> None:
        for name in COUNT_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_late(self) -> Counts:
        """These counts, moved to the late columns (their window closed before they were committed).

        Like ``sum_p_negative``, the index sums keep on-time messages only: late ones are dropped."""
        return Counts(n_late=self.n_late + self.n, n_late_negative=self.n_late_negative + self.n_negative)

    @property
    def negative_ratio(self) -> float:
        return self.n_negative / self.n if self.n else 0.0

    @property
    def index(self) -> float | None:
        return sentiment_index(self.sum_index, self.sum_confidence)
