"""Every read of the dashboard, typed and cached for one refresh interval, on the tables the daemon writes.

Each function takes the store URL (hashable, so Streamlit can cache by it) and opens the store
through the one engine per URL that ``engine_for`` keeps. The dashboard sees nothing of the
store but its table definitions (``pipeline.tables``) and the engine factory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy import Engine, and_, case, func, select, true
from sqlalchemy.sql.elements import ColumnElement

from dashboard import sums
from pipeline import corrections
from pipeline import tables as t
from pipeline.engine import create_store_engine


def dimension_rank(column: Any) -> Any:
    """Tickers first, then topics, sources, and the whole stream last: what analysts look at first."""
    return case({"ticker": 0, "topic": 1, "source": 2}, value=column, else_=3)


RANGES: dict[str, timedelta | None] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "all": None,
}


@dataclass(frozen=True)
class Filters:
    """What the analyst narrowed the view to (all optional)."""

    range: str = "1h"
    topic: str | None = None
    ticker: str | None = None
    source: str | None = None
    sentiment: str | None = None


REFRESH_S = int(os.environ.get("FINSENT_DASHBOARD_REFRESH_S", "10"))
cached = st.cache_data(ttl=REFRESH_S, show_spinner=False)


@st.cache_resource
def engine_for(url: str) -> Engine:
    """One engine (connection pool) per store URL for the whole dashboard process."""
    return create_store_engine(url)


@cached
def has_schema(url: str) -> bool:
    from sqlalchemy import inspect

    return {"windows", "messages", "alerts"} <= set(inspect(engine_for(url)).get_table_names())


@cached
def latest_time(url: str) -> datetime | None:
    """Newest event time in the store: ranges count back from it, so replays of old data show too."""
    w = t.windows.c
    with engine_for(url).connect() as conn:  # the newest window by its indexed start, not a scan for max(end)
        value = conn.execute(select(w.window_end).order_by(w.window_start.desc()).limit(1)).scalar()
    return t.as_utc(value) if value is not None else None


@cached
def window_seconds(url: str) -> int:
    """The daemon's window length, read off the newest window (60 s unless configured otherwise)."""
    w = t.windows.c
    with engine_for(url).connect() as conn:
        row = conn.execute(select(w.window_start, w.window_end).order_by(w.window_start.desc()).limit(1)).first()
    if row is None:
        return 60
    return max(1, round((t.as_utc(row.window_end) - t.as_utc(row.window_start)).total_seconds()))


@cached
def span_seconds(url: str, range_name: str) -> float:
    """How long the chosen range is, in seconds; for ``all``, from the oldest window kept to the newest."""
    newest, start = latest_time(url), since(url, range_name)
    if newest is None:
        return 3600.0
    if start is None:
        with engine_for(url).connect() as conn:
            oldest = conn.execute(select(func.min(t.windows.c.window_start))).scalar()
        start = t.as_utc(oldest) if oldest is not None else newest
    return max(float(window_seconds(url)), (newest - start).total_seconds())


@cached
def since(url: str, range_name: str) -> datetime | None:
    span = RANGES.get(range_name)
    newest = latest_time(url)
    if span is None or newest is None:
        return None
    return newest - span


LONG_RANGE = timedelta(hours=24)  # ranges longer than this sum the rollups (``dashboard.sums``), not the windows


@cached
def kpis(url: str, range_name: str) -> dict[str, object]:
    start = since(url, range_name)
    span = RANGES.get(range_name)
    w = t.windows.c
    cond = [w.dimension == "all"] + ([w.window_start >= start] if start else [])
    with engine_for(url).connect() as conn:
        if span is None or span > LONG_RANGE:  # a year: a few hundred rollup rows, not half a million windows
            frame = sums.read(conn, "all", 86400, start, None, key="all")
            first = conn.execute(select(w.window_start).where(*cond).order_by(w.window_start).limit(1)).scalar()
            last = conn.execute(select(w.window_end).where(*cond).order_by(w.window_start.desc()).limit(1)).scalar()
            totals = [float(frame[c].sum()) for c in ("n", "n_negative", "sum_index", "sum_confidence")]
            row = (int(totals[0]), int(totals[1]), first, last, totals[2], totals[3])
        else:
            row = conn.execute(
                select(
                    func.coalesce(func.sum(w.n), 0),
                    func.coalesce(func.sum(w.n_negative), 0),
                    func.min(w.window_start),
                    func.max(w.window_end),
                    func.coalesce(func.sum(w.sum_index), 0.0),
                    func.coalesce(func.sum(w.sum_confidence), 0.0),
                ).where(*cond)
            ).one()
        a = t.alerts.c
        count_alerts = select(func.count()).select_from(t.alerts)
        if start:
            count_alerts = count_alerts.where(a.window_start >= start)
        alerts = conn.execute(count_alerts).scalar_one()
        version = conn.execute(  # the newest message by its indexed event time (scored_at has no index)
            select(t.messages.c.model_version).order_by(t.messages.c.event_time.desc()).limit(1)
        ).scalar()
        i = t.incidents.c
        open_incidents = conn.execute(select(func.count()).select_from(t.incidents).where(i.status == "open")).scalar()
    n, n_neg, first, last, sum_index, sum_confidence = row
    minutes = max(1.0, (t.as_utc(last) - t.as_utc(first)).total_seconds() / 60) if first and last else 1.0
    return {
        "messages": int(n),
        "per_minute": n / minutes,
        "negative_share": (n_neg / n) if n else 0.0,
        "alerts": int(alerts),
        "open_incidents": int(open_incidents or 0),
        # the range's pooled sentiment index (as ``pipeline.windows.sentiment_index``); None without weight
        "index": max(-1.0, min(1.0, sum_index / sum_confidence)) if sum_confidence > 0 else None,
        "model_version": version or "—",
    }


@cached
def sentiment_timeline(url: str, dimension: str, keys: list[str] | None, range_name: str) -> pd.DataFrame:
    """Per window and key: the sentiment index in [-1, 1]; NaN for a window of late messages only (no weight)."""
    start, w, columns = since(url, range_name), t.windows.c, ["window_start", "key", "n", "sum_index", "sum_confidence"]
    cond = [w.dimension == dimension, w.window_start >= start if start else true(), w.key.in_(keys) if keys else true()]
    with engine_for(url).connect() as conn:
        rows = conn.execute(select(*[w[c] for c in columns]).where(*cond).order_by(w.window_start)).all()
    frame = pd.DataFrame(rows, columns=columns)
    index = (frame["sum_index"] / frame["sum_confidence"].where(frame["sum_confidence"] > 0)).astype(float)
    return frame.assign(window_start=pd.to_datetime(frame["window_start"], utc=True), sentiment_index=index.clip(-1, 1))


@cached
def incident_keys(url: str, range_name: str) -> pd.DataFrame:
    """Every (incident id, dimension, key) its member alerts in the range touch: where a chart marks it."""
    start, a = since(url, range_name), t.alerts.c
    query = select(a.incident_id, a.dimension, a.key).where(a.incident_id.is_not(None)).distinct()
    with engine_for(url).connect() as conn:
        rows = conn.execute(query.where(a.window_start >= start) if start else query).all()
    return pd.DataFrame(rows, columns=["id", "dimension", "key"])


ALERT_COLUMNS: tuple[str, ...] = (
    "id",
    "window_start",
    "window_end",
    "dimension",
    "key",
    "severity",
    "negative_ratio",
    "baseline",
)
ALERT_COLUMNS += ("threshold", "score", "n", "n_negative", "example_ids", "created_at", "incident_id")


@cached
def alerts(
    url: str, range_name: str, limit: int = 200, offset: int = 0, dimension: str | None = None, key: str | None = None
) -> pd.DataFrame:
    """Alerts in the range, newest first (optionally of one dimension and key), ``limit`` from ``offset``."""
    start, a = since(url, range_name), t.alerts.c
    conds = [a.window_start >= start if start else true()]
    conds += [a.dimension == dimension] if dimension else []
    conds += [a.key == key] if key else []
    order = (a.window_start.desc(), dimension_rank(a.dimension), a.n.desc(), a.key)
    with engine_for(url).connect() as conn:
        rows = conn.execute(
            select(*[a[c] for c in ALERT_COLUMNS]).where(*conds).order_by(*order).limit(limit).offset(offset)
        ).all()
    frame = pd.DataFrame(rows, columns=list(ALERT_COLUMNS))
    for col in ("window_start", "window_end", "created_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


@cached
def count_alerts(url: str, range_name: str) -> int:
    start, a = since(url, range_name), t.alerts.c
    with engine_for(url).connect() as conn:
        query = select(func.count()).select_from(t.alerts).where(a.window_start >= start if start else true())
        return int(conn.execute(query).scalar_one())


MESSAGE_COLUMNS = ["id", "event_time", "text", "sentiment", "p_negative", "p_neutral", "p_positive", "topic_label"]
MESSAGE_COLUMNS += ["p_topic", "tickers", "source", "kind", "is_repeat", "model_version"]


def message_conditions(url: str, filters: Filters) -> list[ColumnElement[bool]]:
    """The WHERE clauses of ``filters`` on the messages table (also used by the text search)."""
    m = t.messages.c
    conds: list[ColumnElement[bool]] = []
    start = since(url, filters.range)
    if start:
        conds.append(m.event_time >= start)
    if filters.topic:
        conds.append(m.topic_label == filters.topic)
    if filters.ticker:
        conds.append(t.about("ticker", filters.ticker.upper()))
    if filters.source:
        conds.append(m.source == filters.source)
    if filters.sentiment:
        conds.append(m.sentiment == filters.sentiment)
    return conds


@cached
def messages(url: str, filters: Filters, limit: int = 500, offset: int = 0) -> pd.DataFrame:
    """The filtered messages, newest first, ``limit`` from ``offset`` (the event-time index serves the order)."""
    m = t.messages.c
    query = select(*[getattr(m, c) for c in MESSAGE_COLUMNS]).where(and_(True, *message_conditions(url, filters)))
    with engine_for(url).connect() as conn:
        rows = conn.execute(query.order_by(m.event_time.desc()).limit(limit).offset(offset)).all()
    return messages_frame(rows)


@cached
def messages_by_ids(url: str, ids: list[str]) -> pd.DataFrame:
    if not ids:
        return messages_frame([])
    m = t.messages.c
    with engine_for(url).connect() as conn:
        rows = conn.execute(
            select(*[getattr(m, c) for c in MESSAGE_COLUMNS]).where(m.id.in_(ids)).order_by(m.p_negative.desc())
        ).all()
    return messages_frame(rows)


@cached
def alert_messages(url: str, dimension: str, key: str, start: datetime, end: datetime, limit: int = 50) -> pd.DataFrame:
    """The messages behind an alert: its window and key, most negative first."""
    m = t.messages.c
    conds = [m.event_time >= start, m.event_time < end, t.about(dimension, key)]
    with engine_for(url).connect() as conn:
        rows = conn.execute(
            select(*[getattr(m, c) for c in MESSAGE_COLUMNS]).where(*conds).order_by(m.p_negative.desc()).limit(limit)
        ).all()
    return messages_frame(rows)


def messages_frame(rows: Sequence[Any]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=MESSAGE_COLUMNS)
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True)
    frame["tickers"] = [" ".join(t.decode_tickers(v)) for v in frame["tickers"]]
    return frame


MAX_OPTIONS = 2000


def distinct_keys(conn: Any, dimension: str, limit: int = MAX_OPTIONS) -> list[str]:
    """The keys of ``dimension`` in key order, found by one index probe per key (a recursive "next key after"),
    not by reading every window ever kept."""
    w = t.windows.c
    keys = select(func.min(w.key).label("key")).where(w.dimension == dimension).cte("keys", recursive=True)
    after = select(func.min(w.key)).where(w.dimension == dimension, w.key > keys.c.key).scalar_subquery()
    keys = keys.union_all(select(after).where(keys.c.key.is_not(None)))
    return list(conn.execute(select(keys.c.key).where(keys.c.key.is_not(None)).limit(limit)).scalars())


@cached
def options(url: str) -> dict[str, list[str]]:
    """Values for the filter drop-downs: every topic, ticker and source the windows know, in key order."""
    with engine_for(url).connect() as conn:
        return {dim: distinct_keys(conn, dim) for dim in ("topic", "ticker", "source")}


FEEDBACK_COLUMNS: tuple[str, ...] = (
    "id",
    "message_id",
    "text",
    "model_sentiment",
    "sentiment",
    "model_topic",
    "topic",
    "analyst",
)
FEEDBACK_COLUMNS += ("created_at",)


@cached
def feedback(url: str) -> pd.DataFrame:
    f = t.feedback.c
    with engine_for(url).connect() as conn:
        rows = conn.execute(select(*[f[c] for c in FEEDBACK_COLUMNS]).order_by(f.created_at.desc())).all()
    return pd.DataFrame(rows, columns=list(FEEDBACK_COLUMNS))


@cached
def feedback_training_csv(url: str) -> str:
    """The corrections as a CSV that ``finsent train --extra-data`` reads (text, sentiment, topic).

    Message text is untrusted: a cell that a spreadsheet would run as a formula starts with ``'``
    (OWASP's advice), which ``read_extra`` removes again.
    """
    return corrections.training_csv(engine_for(url))[0]  # the same file as `finsent feedback-export`


INCIDENT_COLUMNS = (
    "id",
    "window_start",
    "root_dimension",
    "root_key",
    "n_alerts",
    "status",
    "acknowledged_by",
    "note",
    "updated_at",
)
STATUS_ORDER = {"open": 0, "acknowledged": 1, "resolved": 2}


@cached
def incidents(url: str, range_name: str, limit: int = 100, offset: int = 0) -> pd.DataFrame:
    """Incidents in the range, open first, newest first within a status; ``limit`` from ``offset``."""
    start = since(url, range_name)
    i = t.incidents.c
    query = select(*[getattr(i, c) for c in INCIDENT_COLUMNS])
    if start:
        query = query.where(i.window_start >= start)
    status_rank = case(STATUS_ORDER, value=i.status, else_=len(STATUS_ORDER))
    with engine_for(url).connect() as conn:
        rows = conn.execute(query.order_by(status_rank, i.window_start.desc()).limit(limit).offset(offset)).all()
    frame = pd.DataFrame(rows, columns=list(INCIDENT_COLUMNS))
    frame["window_start"] = pd.to_datetime(frame["window_start"], utc=True)
    return frame


@cached
def incident_counts(url: str, range_name: str) -> dict[str, int]:
    """How many incidents in the range have each status."""
    start, i = since(url, range_name), t.incidents.c
    query = select(i.status, func.count()).where(i.window_start >= start if start else true()).group_by(i.status)
    with engine_for(url).connect() as conn:
        return {str(status): int(n) for status, n in conn.execute(query).all()}


@cached
def incident_alerts(url: str, incident_id: str) -> pd.DataFrame:
    """The member alerts of one incident, oldest window first."""
    a = t.alerts.c
    columns = ("window_start", "dimension", "key", "severity", "negative_ratio", "threshold", "n")
    with engine_for(url).connect() as conn:
        rows = conn.execute(
            select(*[getattr(a, c) for c in columns])
            .where(a.incident_id == incident_id)
            .order_by(a.window_start, dimension_rank(a.dimension), a.key)
        ).all()
    return pd.DataFrame(rows, columns=list(columns))
