"""Reads of one company's page: is the ticker known, its messages, its incidents, the sources and topics behind it.

A ticker's messages come from ``message_tickers`` (one row per message and ticker, with that ticker's own
label, on the index (ticker, event_time)) where the daemon has written rows for it; until then from the
messages' ``tickers`` column (a LIKE match, and only the message's label). Its sources and topics over a long
range come from ``ticker_days`` (per ticker, UTC day, source and topic: its rows and how many are negative).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import String, and_, case, cast, exists, func, null, or_, select, true

from dashboard.data import (
    INCIDENT_COLUMNS,
    LONG_RANGE,
    MESSAGE_COLUMNS,
    RANGES,
    cached,
    engine_for,
    messages_frame,
    since,
)
from pipeline import tables as t

DAY_S = 86400
TICKER_MESSAGE_COLUMNS = [*MESSAGE_COLUMNS, "ticker_sentiment", "method"]


@cached
def known(url: str, ticker: str) -> bool:
    """Whether any window or message the store keeps names ``ticker`` (probes on unique keys and indexes)."""
    w, mt = t.windows.c, t.message_tickers.c
    with engine_for(url).connect() as conn:
        in_windows = select(exists().where(w.dimension == "ticker", w.key == ticker))
        in_messages = select(exists().where(mt.ticker == ticker))
        return bool(conn.execute(in_windows).scalar() or conn.execute(in_messages).scalar())


@cached
def has_own_labels(url: str, ticker: str) -> bool:
    """Whether the daemon writes ``message_tickers`` rows for this ticker (else: the LIKE fallback)."""
    mt = t.message_tickers.c
    with engine_for(url).connect() as conn:
        return bool(conn.execute(select(exists().where(mt.ticker == ticker))).scalar())


def _ticker_messages(url: str, ticker: str, range_name: str) -> tuple[Any, list[Any], list[Any], Any]:
    """FROM, extra columns, WHERE and order of the ticker's messages, by the indexed path when it is there."""
    m, mt, start = t.messages.c, t.message_tickers.c, since(url, range_name)
    if has_own_labels(url, ticker):
        source = t.message_tickers.join(t.messages, t.messages.c.id == mt.message_id)
        where = [mt.ticker == ticker, mt.event_time >= start if start else true()]
        return source, [mt.sentiment, mt.method], where, mt.event_time.desc()
    no_label = cast(null(), String(16))
    where = [t.about("ticker", ticker), m.event_time >= start if start else true()]
    return t.messages, [no_label, no_label], where, m.event_time.desc()


@cached
def messages(url: str, ticker: str, range_name: str, limit: int = 50, offset: int = 0) -> pd.DataFrame:
    """The ticker's messages, newest first, each with its own label for this ticker (``ticker_sentiment``,
    empty until the daemon writes it) and the message's label."""
    source, extra, where, order = _ticker_messages(url, ticker, range_name)
    m = t.messages.c
    query = select(*[m[c] for c in MESSAGE_COLUMNS], *extra).select_from(source).where(and_(True, *where))
    with engine_for(url).connect() as conn:
        rows = conn.execute(query.order_by(order).limit(limit).offset(offset)).all()
    frame = messages_frame([r[: len(MESSAGE_COLUMNS)] for r in rows])
    frame["ticker_sentiment"] = [r[len(MESSAGE_COLUMNS)] for r in rows]
    frame["method"] = [r[len(MESSAGE_COLUMNS) + 1] for r in rows]
    return frame


DRIVER_COLUMNS = ["source", "topic_label", "messages", "negative"]


@cached
def _by_source_and_topic(url: str, ticker: str, range_name: str) -> pd.DataFrame:
    """How many of the ticker's messages in the range, and how many negative (by the ticker's own label where there
    is one), per source and topic. Over a long range, whole UTC days come from ``ticker_days`` (the same count,
    kept by the daemon) and only the part of a day the range starts in from the messages."""
    span, start = RANGES.get(range_name), since(url, range_name)
    long_range = span is None or span > LONG_RANGE
    own = has_own_labels(url, ticker)
    first_day = -(-(t.to_ms(start) // 1000) // DAY_S) * DAY_S if start is not None else None
    frames = []
    with engine_for(url).connect() as conn:
        if own and long_range:
            d = t.ticker_days.c
            days = select(d.source, d.topic_label, func.sum(d.messages), func.sum(d.negative)).where(d.ticker == ticker)
            days = days.where(d.day_s >= first_day) if first_day is not None else days
            frames.append(
                pd.DataFrame(conn.execute(days.group_by(d.source, d.topic_label)).all(), columns=DRIVER_COLUMNS)
            )
        if not (own and long_range and first_day is None):
            source, extra, where, _ = _ticker_messages(url, ticker, range_name)
            if own and long_range and first_day is not None:  # the head of the range, before its first whole day
                where.append(t.message_tickers.c.event_time < t.from_ms(first_day * 1000))
            m = t.messages.c
            label = func.coalesce(extra[0], m.sentiment) if own else m.sentiment
            by_source, by_topic = func.coalesce(m.source, t.NO_SOURCE), m.topic_label
            query = (
                select(by_source, by_topic, func.count(), func.sum(case((label == "negative", 1), else_=0)))
                .select_from(source)
                .where(and_(True, *where))
                .group_by(by_source, by_topic)
            )
            frames.append(pd.DataFrame(conn.execute(query).all(), columns=DRIVER_COLUMNS))
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return frame.groupby(["source", "topic_label"], as_index=False)[["messages", "negative"]].sum()


def drivers(url: str, ticker: str, range_name: str, by: str) -> pd.DataFrame:
    """The ticker's messages in the range per ``by`` (``source`` or ``topic_label``): how many, how many negative,
    their negative share; most messages first, at most 20."""
    frame = _by_source_and_topic(url, ticker, range_name).groupby(by, as_index=False)[["messages", "negative"]].sum()
    frame = frame.sort_values(["messages", by], ascending=[False, True]).head(20).reset_index(drop=True)
    frame["negative_share"] = (frame["negative"] / frame["messages"].where(frame["messages"] > 0)).astype(float)
    return frame


@cached
def incidents(url: str, ticker: str, range_name: str) -> pd.DataFrame:
    """Incidents rooted at the ticker or holding one of its alerts, open first, newest first."""
    start, i, a = since(url, range_name), t.incidents.c, t.alerts.c
    member = select(a.incident_id).where(a.dimension == "ticker", a.key == ticker, a.incident_id.is_not(None))
    query = select(*[i[c] for c in INCIDENT_COLUMNS]).where(
        or_(and_(i.root_dimension == "ticker", i.root_key == ticker), i.id.in_(member)),
        i.window_start >= start if start else true(),
    )
    rank = case({"open": 0, "acknowledged": 1, "resolved": 2}, value=i.status, else_=3)
    with engine_for(url).connect() as conn:
        rows = conn.execute(query.order_by(rank, i.window_start.desc()).limit(50)).all()
    frame = pd.DataFrame(rows, columns=list(INCIDENT_COLUMNS))
    frame["window_start"] = pd.to_datetime(frame["window_start"], utc=True)
    return frame
