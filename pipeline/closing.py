"""Closing windows in the store: one statement closes every window the watermark passed; the
detector judges them; their baselines, alerts and incidents are written in the same transaction.

Incidents (``pipeline.incidents`` decides, this module persists): each new alert's evidence is the
ids of its window's negative messages about its key. Open incidents take alerts for the span of
windows after their own; an ACKNOWLEDGED incident takes them until it is resolved, however late: an
alert on its root key, or one whose evidence is mostly about its root key. Such an alert is stored
(with its deterministic id and its incident) but marked published: it is never sent to the alerts
topic as new, and it is not returned as a new alert.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.engine import Connection

from pipeline import rollups
from pipeline import tables as t
from pipeline.alerts import AlertRecord, ClosedWindow, Key, SpikeDetector, WindowRow
from pipeline.incidents import Candidate, Incident, OpenIncident, group_window
from pipeline.windows import COUNT_FIELDS, NEGATIVE


@dataclass
class Closed:
    """What closing windows produced: alerts to publish, every judged window, new incidents."""

    alerts: list[AlertRecord] = field(default_factory=list)
    closed: list[ClosedWindow] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)


def close_windows(
    conn: Connection,
    mark: int,
    now: datetime,
    *,
    window_size_ms: int,
    grace_ms: int,
    detector: SpikeDetector,
    incident_span_windows: int = 2,
) -> Closed:
    """Close every open window the watermark passed (one statement); the detector judges them; alerts
    are grouped into incidents."""
    w = t.windows.c
    cutoff = t.from_ms(mark - window_size_ms - grace_ms)
    counts: dict[tuple[str, str, int], dict[str, Any]] = {}  # every closed window's counts, for its rollups
    rows = []
    for r in conn.execute(
        update(t.windows)
        .where(w.closed.is_(False), w.window_start <= cutoff)
        .values(closed=True)
        .returning(w.dimension, w.key, w.window_start, w.window_end, *[w[name] for name in COUNT_FIELDS])
    ):
        rows.append(WindowRow(r.dimension, r.key, t.to_ms(r.window_start), t.to_ms(r.window_end), r.n, r.n_negative))
        counts[(r.dimension, r.key, rows[-1].start_ms)] = dict(r._mapping)
    if not rows:
        return Closed()
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
    verdicts = {(c.dimension, c.key, c.start_ms): c.verdict for c in closed if c.verdict is not None}
    rollups.add_windows(  # in this transaction: a window's counts enter its rollups when, and only when, it closes
        conn,
        [
            (*key, sums, *((v.baseline.mean, v.baseline.threshold) if (v := verdicts.get(key)) else (None, None)))
            for key, sums in counts.items()
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
    incidents, quiet = group_incidents(conn, alerts, now, window_size_ms * incident_span_windows)
    return Closed([a for a in alerts if a.id not in quiet], closed, incidents)


def group_incidents(
    conn: Connection, alerts: list[AlertRecord], now: datetime, span_ms: int
) -> tuple[list[Incident], set[str]]:
    """Put each new alert in an incident, window by window (oldest first); sets ``incident_id`` on them.

    Returns the new incidents and the ids of alerts that joined an acknowledged incident (not published).
    """
    new: list[Incident] = []
    quiet: set[str] = set()
    by_window: dict[datetime, list[AlertRecord]] = defaultdict(list)
    for a in alerts:
        by_window[t.as_utc(a.window_start)].append(a)
    for start, members in sorted(by_window.items()):
        end = t.as_utc(members[0].window_end)
        candidates = [
            Candidate(a.id, a.dimension, a.key, evidence(conn, a.dimension, a.key, start, end)) for a in members
        ]
        grouped = group_window(start, candidates, open_incidents(conn, start, end, span_ms))
        i = t.incidents.c
        for incident in grouped.new:
            conn.execute(
                t.insert_for(conn, t.incidents).on_conflict_do_nothing(),
                {
                    "id": incident.id,
                    "window_start": start,
                    "root_dimension": incident.root_dimension,
                    "root_key": incident.root_key,
                    "root_alert_id": incident.alert_ids[0],
                    "n_alerts": incident.n_alerts,
                    "status": incident.status,
                    "created_at": now,
                    "updated_at": now,
                },
            )
        joined_counts: dict[str, int] = defaultdict(int)
        for incident_id in grouped.joined.values():
            joined_counts[incident_id] += 1
        acknowledged: set[str] = set()
        for incident_id, k in sorted(joined_counts.items()):
            row = conn.execute(
                update(t.incidents)
                .where(i.id == incident_id)
                .values(n_alerts=i.n_alerts + k, updated_at=now)
                .returning(i.status)
            ).first()
            if row is not None and row.status == "acknowledged":
                acknowledged.add(incident_id)
        membership = {a: inc.id for inc in grouped.new for a in inc.alert_ids} | grouped.joined
        for a in members:
            a.incident_id = membership.get(a.id)
            if a.incident_id in acknowledged:
                quiet.add(a.id)
            conn.execute(
                update(t.alerts).where(t.alerts.c.id == a.id).values(incident_id=a.incident_id, published=a.id in quiet)
            )
        new.extend(grouped.new)
    return new, quiet


def evidence(conn: Connection, dimension: str, key: str, start: datetime, end: datetime) -> frozenset[str]:
    """Ids of the window's negative messages about ``dimension``/``key``: what an alert is made of.

    Under a ticker, a message counts by that company's own label (``message_tickers``), so "$AAPL beats,
    $MSFT misses" is evidence for MSFT and not for AAPL; messages stored without per-ticker rows (by an
    older release) count by their message label."""
    m = t.messages.c
    in_window = (m.event_time >= start, m.event_time < end)
    if dimension != "ticker":
        query = select(m.id).where(*in_window, m.sentiment == NEGATIVE, t.about(dimension, key))
        return frozenset(r.id for r in conn.execute(query))
    mt = t.message_tickers.c
    labelled = select(mt.message_id).where(mt.ticker == key, mt.event_time >= start, mt.event_time < end)
    own = labelled.where(mt.sentiment == NEGATIVE)
    older = select(m.id).where(
        *in_window, m.sentiment == NEGATIVE, t.about(dimension, key), m.id.not_in(labelled.scalar_subquery())
    )
    return frozenset(r[0] for r in conn.execute(own)) | frozenset(r.id for r in conn.execute(older))


def open_incidents(conn: Connection, start: datetime, end: datetime, span_ms: int) -> list[OpenIncident]:
    """Incidents a window's alerts may join: open ones started within the span before it, and acknowledged
    ones however old (until resolved); each with its root key's evidence in this window."""
    i = t.incidents.c
    since = t.from_ms(t.to_ms(start) - span_ms)
    rows = conn.execute(
        select(i.id, i.root_dimension, i.root_key, i.status)
        .where(
            i.status != "resolved",
            or_(
                i.window_start.between(since, start),
                i.status == "acknowledged",
            ),
        )
        .order_by(i.window_start, i.id)
    ).all()
    return [
        OpenIncident(
            r.id, r.root_dimension, r.root_key, r.status, evidence(conn, r.root_dimension, r.root_key, start, end)
        )
        for r in rows
    ]


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
