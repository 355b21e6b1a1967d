"""Which closed windows raise alerts: pure decisions, no store, Kafka or metrics.

The store closes windows and hands their rows here, with the history this detector asks
for (``history_span_ms`` of earlier closed windows, ``cooldown_ms`` of earlier alerts); it
persists whatever comes back in the same transaction. A new kind of alert is a new
detector and a table row, not a change to the store.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline.spikes import SpikeRule, Verdict, alert_id, judge

Key = tuple[str, str]  # (dimension, key)


@dataclass(frozen=True)
class WindowRow:
    """A window as the store closed it."""

    dimension: str
    key: str
    start_ms: int
    end_ms: int
    n: int
    n_negative: int


@dataclass
class ClosedWindow:
    """A closed window and the detector's verdict on it."""

    dimension: str
    key: str
    window_start: datetime
    n: int
    negative_ratio: float
    verdict: Verdict | None = None
    start_ms: int = 0
    end_ms: int = 0
    n_negative: int = 0

    @property
    def alert_id(self) -> str:
        return alert_id(self.dimension, self.key, self.start_ms)


@dataclass
class AlertRecord:
    id: str
    dimension: str
    key: str
    window_start: datetime
    window_end: datetime
    negative_ratio: float
    baseline: float
    threshold: float
    score: float
    n: int
    n_negative: int
    severity: str
    example_ids: list[str]
    created_at: datetime
    incident_id: str | None = None  # the incident it belongs to (``pipeline.incidents``), set when stored

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for name in ("window_start", "window_end", "created_at"):
            value: datetime = out[name]
            value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
            out[name] = value.isoformat().replace("+00:00", "Z")
        return out

    @classmethod
    def of(cls, window: ClosedWindow, example_ids: list[str], created_at: datetime) -> AlertRecord:
        verdict = window.verdict
        if verdict is None or verdict.severity is None:
            raise ValueError(f"only spikes become alerts, not {window.dimension}={window.key}")
        return cls(
            id=window.alert_id,
            dimension=window.dimension,
            key=window.key,
            window_start=window.window_start,
            window_end=datetime.fromtimestamp(window.end_ms / 1000, tz=UTC),
            negative_ratio=verdict.ratio,
            baseline=verdict.baseline.mean,
            threshold=verdict.baseline.threshold,
            score=verdict.score,
            n=window.n,
            n_negative=window.n_negative,
            severity=verdict.severity,
            example_ids=example_ids,
            created_at=created_at,
        )


class SpikeDetector:
    """Negative-ratio spikes over a rolling baseline (``pipeline.spikes``), with a cooldown per key."""

    def __init__(self, rule: SpikeRule, window_size_ms: int, history_windows: int) -> None:
        self.rule = rule
        self.history_span_ms = window_size_ms * history_windows
        self.cooldown_ms = rule.cooldown_s * 1000
        self.min_count = rule.min_count

    def judge(
        self,
        closing: Sequence[WindowRow],
        history: Mapping[Key, list[tuple[int, float]]],
        recent_alerts: Mapping[Key, list[int]],
    ) -> list[ClosedWindow]:
        """Verdicts for the windows being closed, oldest first.

        ``history``: per key, (window start, negative ratio) of earlier closed windows with at least
        ``min_count`` messages, sorted by start. ``recent_alerts``: per key, window starts of alerts
        already raised. A spike found here puts its key in cooldown for the windows after it.
        """
        alerted = {k: list(v) for k, v in recent_alerts.items()}
        out: list[ClosedWindow] = []
        for row in sorted(closing, key=lambda r: (r.start_ms, r.dimension, r.key)):
            key = (row.dimension, row.key)
            past = history.get(key, [])
            lo = bisect.bisect_left(past, (row.start_ms - self.history_span_ms, float("-inf")))
            hi = bisect.bisect_left(past, (row.start_ms, float("-inf")))
            cooling = any(row.start_ms - self.cooldown_ms <= s < row.start_ms for s in alerted.get(key, ()))
            verdict = judge(row.n, row.n_negative, [r for _, r in past[lo:hi]], self.rule, in_cooldown=cooling)
            start = datetime.fromtimestamp(row.start_ms / 1000, tz=UTC)
            out.append(
                ClosedWindow(
                    row.dimension,
                    row.key,
                    start,
                    row.n,
                    verdict.ratio,
                    verdict,
                    row.start_ms,
                    row.end_ms,
                    row.n_negative,
                )
            )
            if verdict.is_spike:
                alerted.setdefault(key, []).append(row.start_ms)
        return out
