"""One scored message, in the two shapes it leaves the daemon: the Kafka event and the store row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline.schema import Event
from pipeline.scorer import Score
from pipeline.tables import TICKER_ROWS, encode_tickers, from_ms


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ScoredMessage:
    """An input event with the model's verdict, as published on ``finsent.scored`` and kept for drill-down."""

    event: Event
    score: Score
    model_version: str
    scored_at_ms: int
    is_repeat: bool
    late: bool

    def ticker_scores(self) -> dict[str, tuple[str, float, float]]:
        """(label, p_negative, p_positive) of each company the model scored on its own."""
        return {t: (s.sentiment, s.p_negative, s.p_positive) for t, s in self.score.targets.items()}

    def ticker_sentiment(self) -> dict[str, str]:
        """Each ticker's label: its own where the model scored it alone, else the message's."""
        own = self.score.targets
        return {t: own[t].sentiment if t in own else self.score.sentiment for t in self.event.tickers}

    def payload(self) -> dict[str, Any]:
        """The scored event: the input fields passed through, plus the verdict (DESIGN.md, "Scored event")."""
        e, s, o = self.event, self.score, self.event.origin
        return {
            **e.fields,
            "id": e.id,
            "sentiment": s.sentiment,
            "p_negative": s.p_negative,
            "p_neutral": s.p_neutral,
            "p_positive": s.p_positive,
            "topic": s.topic,
            "p_topic": s.p_topic,
            "tickers": e.tickers,
            "ticker_sources": e.ticker_sources,
            "ticker_sentiment": self.ticker_sentiment(),
            # probabilities of the companies scored on their own (the others carry the message's)
            "ticker_sentiment_p": {
                t: {"negative": v.p_negative, "neutral": v.p_neutral, "positive": v.p_positive}
                for t, v in s.targets.items()
            },
            "kind": e.kind,
            "is_repeat": self.is_repeat,
            "late": self.late,
            "event_time": iso_ms(e.event_time_ms),
            "model_version": self.model_version,
            "scored_at": iso_ms(self.scored_at_ms),
            "input": {"topic": o.topic, "partition": o.partition, "offset": o.offset},
        } | ({"ticker_sentiment_capped": True} if s.targets_capped else {})

    def row(self, max_text_chars: int) -> dict[str, Any]:
        """The ``messages`` row (text cut to ``max_text_chars``)."""
        e, s, o = self.event, self.score, self.event.origin
        return {
            "id": e.id,
            "event_time": from_ms(e.event_time_ms),
            "scored_at": from_ms(self.scored_at_ms),
            "text": e.text[:max_text_chars],
            "source": e.source,
            "kind": e.kind,
            "tickers": encode_tickers(e.tickers),
            "topic_label": s.topic,
            "p_topic": s.p_topic,
            "sentiment": s.sentiment,
            "p_negative": s.p_negative,
            "p_neutral": s.p_neutral,
            "p_positive": s.p_positive,
            "is_repeat": self.is_repeat,
            "model_version": self.model_version,
            "input_topic": o.topic,
            "input_partition": o.partition,
            "input_offset": o.offset,
            # one message_tickers row per ticker, split off by the store (``tables.split_ticker_rows``)
            TICKER_ROWS: [
                {
                    "message_id": e.id,
                    "ticker": ticker,
                    "event_time": from_ms(e.event_time_ms),
                    "sentiment": label,
                    "method": "target" if ticker in s.targets else "message",
                }
                for ticker, label in self.ticker_sentiment().items()
            ],
        }
