"""The work read since the last checkpoint, record by record, and what it adds up to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.schema import Event
from pipeline.store import RecordRows
from pipeline.windows import Counts, WindowKey


@dataclass
class Accounted:
    """One scored record since the last checkpoint: what it adds to the store, and how to dead-letter it."""

    event: Event
    value: bytes | None
    start: int
    keys: list[tuple[str, str]]
    sentiment: str
    p_negative: float
    unique: bool
    late: bool
    story: str | None  # the story hash when this record was its first sighting
    message: dict[str, Any]
    dropped: bool = False
    p_positive: float = 0.0
    # ticker -> (its own label, p_negative, p_positive) where the model scored that company on its own
    tickers: dict[str, tuple[str, float, float]] = field(default_factory=dict)

    def deltas(self) -> dict[WindowKey, Counts]:
        """Ticker windows count each company's own label; topic, source and ``all`` windows the message's."""
        out: dict[WindowKey, Counts] = {}
        message = (self.sentiment, self.p_negative, self.p_positive)
        for dimension, key in self.keys:
            sentiment, p_negative, p_positive = self.tickers.get(key, message) if dimension == "ticker" else message
            out.setdefault((dimension, key, self.start), Counts()).add(
                sentiment, p_negative, self.unique, self.late, p_positive=p_positive
            )
        return out

    def rows(self) -> RecordRows:
        return RecordRows(self.message, self.deltas(), (self.story, self.event.event_time_ms) if self.story else None)


@dataclass
class Pending:
    """Work read since the last checkpoint."""

    batch: list[tuple[Event, bytes | None]] = field(default_factory=list)
    accounted: list[Accounted] = field(default_factory=list)
    records: int = 0

    def live(self) -> list[Accounted]:
        return [a for a in self.accounted if not a.dropped]

    def totals(self) -> tuple[dict[WindowKey, Counts], dict[str, list[WindowKey]], list[dict[str, Any]]]:
        """Window deltas, where each first-seen story counted as unique, and the drill-down rows."""
        deltas: dict[WindowKey, Counts] = {}
        story_windows: dict[str, list[WindowKey]] = {}
        live = self.live()
        for a in live:
            for key, counts in a.deltas().items():
                deltas.setdefault(key, Counts()).merge(counts)
            if a.story is not None and not a.late:
                story_windows[a.story] = [(d, k, a.start) for d, k in a.keys]
        return deltas, story_windows, [a.message for a in live]
