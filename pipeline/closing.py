"""Closing windows in the store: one statement closes every window the watermark passed; the
detector judges them; their baselines and alerts are written in the same transaction."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from pipeline import tables as t
from pipeline.alerts import AlertRecord, ClosedWindow, Key, SpikeDetector, WindowRow


def close_windows(
    conn: Connection, mark: int, now: datetime, *, window_size_ms: int, grace_ms: int, detector: SpikeDetector
) -> tuple[list[AlertRecord], list[ClosedWindow]]:
    """Close every open window the watermark passed (one statement); the detector judges them."""
    w = t.windows.c
    cutoff = t.from_ms(mark - window_size_ms - grace_ms)
    rows = [
        WindowRow(r.dimension, r.key, t.to_ms(r.window_start), t.to_ms(r.window_end), r.n, r.n_negative)
        for r in conn.execute(
            update(t.windows)
            .where(w.closed.is_(False), w.window_start <= cutoff)
            .values(closed=True)
            .returning(w.dimension, w.key, w.window_start, w.window_end, w.n, w.n_negative)
        )
    ]
    if not rows:
        return [], []
    first, last = min(r.start_ms for r in rows), max(r.start_ms for r in rows)
    closed = detector.judge(
        rows,
        history(conn, first - detector.history_span_ms, last, detector.min_count),
        recent_alerts(conn, first - detector.cooldown_ms, last),
    )
    conn.execute(
        update(t.windows)
        .where(
            w.dimension == bindparam("b_dimension"),
            w.key == bindparam("b_key"),
            w.window_start == bindparam("b_start"),
        )
        .values(baseline=bindparam("b_baseline"), threshold=bindparam("b_threshold")),
        [
            {
                "b_dimension": c.dimension,
                "b_key": c.key,
                "b_start": c.window_start,
                "b_baseline": c.verdict.baseline.mean,
                "b_threshold": c.verdict.baseline.threshold,
            }
            for c in closed
            if c.verdict is not None
        ],
    )
    alerts: list[AlertRecord] = []
    for c in closed:
        if c.verdict is None or not c.verdict.is_spike:
            continue
        ids = example_ids(conn, c.dimension, c.key, c.window_start, t.from_ms(c.end_ms))
        record = AlertRecord.of(c, ids, now)
        inserted = conn.execute(
            t.insert_for(conn, t.alerts).on_conflict_do_nothing().returning(t.alerts.c.id),
            {**record.__dict__, "published": False},
        )
        if inserted.all():
            alerts.append(record)
    return alerts, closed


def history(conn: Connection, from_ms: int, before_ms: int, min_count: int) -> dict[Key, list[tuple[int, float]]]:
    """Negative ratios of closed windows with enough volume, per key, oldest first."""
    w = t.windows.c
    history: dict[Key, list[tuple[int, float]]] = defaultdict(list)
    for h in conn.execute(
        select(w.dimension, w.key, w.window_start, w.n, w.n_negative)
        .where(
            w.closed.is_(True),
            w.window_start >= t.from_ms(from_ms),
            w.window_start < t.from_ms(before_ms),
            w.n >= min_count,
        )
        .order_by(w.window_start)
    ):
        history[(h.dimension, h.key)].append((t.to_ms(h.window_start), h.n_negative / h.n))
    return history


def recent_alerts(conn: Connection, from_ms: int, before_ms: int) -> dict[Key, list[int]]:
    a = t.alerts.c
    recent: dict[Key, list[int]] = defaultdict(list)
    for r in conn.execute(
        select(a.dimension, a.key, a.window_start).where(
            a.window_start >= t.from_ms(from_ms), a.window_start < t.from_ms(before_ms)
        )
    ):
        recent[(r.dimension, r.key)].append(t.to_ms(r.window_start))
    return recent


def example_ids(
    conn: Connection, dimension: str, key: str, start: datetime, end: datetime, limit: int = 5
) -> list[str]:
    m = t.messages.c
    query = select(m.id).where(m.event_time >= start, m.event_time < end, t.about(dimension, key))
    return [r.id for r in conn.execute(query.order_by(m.p_negative.desc(), m.id).limit(limit))]
