"""The store's pre-aggregates (``tables.window_rollups``, ``tables.ticker_days``), kept in the transactions that change
what they sum, so that a long range reads a few thousand rows instead of a year of 1-minute windows or messages.

Exactly once, like the windows themselves: a window's counts enter its hourly and daily rollups in the transaction
that closes it (``closing.close_windows``), and anything a later commit adds to a window already closed (late counts)
enters in that commit (``add_windows`` on the rows the windows' upsert reports closed). Open windows are never in a
rollup; readers add them from ``windows``. A ticker's day counts enter with the ``message_tickers`` rows a commit
really inserted. Pruning takes out what it deletes: whole buckets before the cut are dropped, the bucket the cut
falls in is summed again from what is left. ``backfill`` fills both from what an older store already holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, case, func, literal, literal_column, select
from sqlalchemy.engine import Connection

from pipeline import tables as t
from pipeline.windows import COUNT_FIELDS, NEGATIVE

DAY_S = 86400
SUMMED = (*COUNT_FIELDS, *t.BASELINE_SUMS)
ROLLUP_KEY = ("grain_s", "dimension", "key", "bucket_s")
DAY_KEY = ("ticker", "day_s", "source", "topic_label")

WindowSums = tuple[str, str, int, Mapping[str, Any], float | None, float | None]  # dim, key, start ms, counts, b, t


def add_windows(conn: Connection, windows: Iterable[WindowSums]) -> None:
    """Add counts of closed windows to their rollups: (dimension, key, start ms, counts by column name, the window's
    baseline and threshold). A window with a baseline weighs it (and its threshold, capped at 1) by its ``n``."""
    sums: dict[tuple[int, str, str, int], dict[str, Any]] = {}
    for dimension, key, start_ms, counts, baseline, threshold in windows:
        start_s = start_ms // 1000
        for grain in t.ROLLUP_GRAINS_S:
            row = sums.setdefault(
                (grain, dimension, key, start_s // grain * grain), {name: 0 for name in SUMMED} | {"latest_s": None}
            )
            for name in COUNT_FIELDS:
                row[name] += counts.get(name) or 0
            if baseline is not None:
                n = counts.get("n") or 0
                row["base_n"] += n
                row["base_sum"] += baseline * n
                row["thr_sum"] += (min(threshold, 1.0) * n) if threshold is not None else 0.0
                row["latest_s"] = start_s if row["latest_s"] is None else max(row["latest_s"], start_s)
    rows = [dict(zip(ROLLUP_KEY, k, strict=True)) | v for k, v in sorted(sums.items())]  # fixed order: no deadlocks
    _upsert(conn, t.window_rollups, ROLLUP_KEY, rows, SUMMED)


def add_ticker_rows(conn: Connection, ticker_rows: Sequence[Mapping[str, Any]], messages: Mapping[str, Any]) -> None:
    """Count ``message_tickers`` rows a commit inserted into their ticker's day; ``messages``: the message row
    (``source``, ``topic_label``) of each, by id."""
    sums: dict[tuple[str, int, str, str], dict[str, int]] = {}
    for r in ticker_rows:
        message = messages.get(r["message_id"])
        if message is None:  # a row without its message: the join that readers make leaves it out too
            continue
        day = t.to_ms(r["event_time"]) // 1000 // DAY_S * DAY_S
        source = t.NO_SOURCE if message["source"] is None else message["source"]  # as COALESCE: '' stays ''
        key = (r["ticker"], day, source, message["topic_label"])
        row = sums.setdefault(key, {"messages": 0, "negative": 0})
        row["messages"] += 1
        row["negative"] += int(r["sentiment"] == NEGATIVE)
    rows = [dict(zip(DAY_KEY, k, strict=True)) | v for k, v in sorted(sums.items())]
    _upsert(conn, t.ticker_days, DAY_KEY, rows, ("messages", "negative"))


def messages_of(
    conn: Connection, ticker_rows: Sequence[Mapping[str, Any]], inserted: Mapping[str, Mapping[str, Any]]
) -> dict[str, Mapping[str, Any]]:
    """The stored message of each ticker row: the row this commit inserted, else the one already stored (read)."""
    out = dict(inserted)
    missing = sorted({r["message_id"] for r in ticker_rows} - out.keys())
    m = t.messages.c
    for i in range(0, len(missing), 500):
        for row in conn.execute(select(m.id, m.source, m.topic_label).where(m.id.in_(missing[i : i + 500]))):
            out[row.id] = {"source": row.source, "topic_label": row.topic_label}
    return out


def _upsert(
    conn: Connection, table: Any, keys: Sequence[str], rows: list[dict[str, Any]], summed: Sequence[str]
) -> None:
    if not rows:
        return
    stmt = t.insert_for(conn, table)
    new = stmt.excluded
    set_ = {name: table.c[name] + new[name] for name in summed}
    if "latest_s" in table.c:
        old = table.c.latest_s
        set_["latest_s"] = case(
            (new.latest_s.is_(None), old), (old.is_(None), new.latest_s), (new.latest_s > old, new.latest_s), else_=old
        )
    conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=set_), rows)


# ---- sums from what is stored: an older store's backfill, and the bucket a prune cuts through ---------------------
def _window_sums(conn: Connection, grain: int, since: datetime | None, before: datetime | None) -> Any:
    """SELECT of the rollup rows of ``grain`` summed from the closed windows starting in [since, before)."""
    w = t.windows.c
    start_s = t.epoch_seconds(w.window_start, conn.dialect.name)
    step: Any = literal_column(str(int(grain)))  # a literal: SELECT and GROUP BY are the same expression
    bucket = start_s.op("/")(step).op("*")(step)
    with_base = w.baseline.is_not(None)
    columns = [
        literal(grain, Integer).label("grain_s"),
        w.dimension,
        w.key,
        bucket.label("bucket_s"),
        *[func.sum(w[name]).label(name) for name in COUNT_FIELDS],
        func.sum(case((with_base, w.n), else_=0)).label("base_n"),
        func.sum(case((with_base, w.baseline * w.n), else_=0.0)).label("base_sum"),
        func.sum(case((with_base, case((w.threshold > 1.0, 1.0), else_=w.threshold) * w.n), else_=0.0)).label(
            "thr_sum"
        ),
        func.max(case((with_base, start_s))).label("latest_s"),
    ]
    where: list[Any] = [w.closed.is_(True)]
    where += [w.window_start >= since] if since is not None else []
    where += [w.window_start < before] if before is not None else []
    return select(*columns).where(*where).group_by(w.dimension, w.key, bucket)


def _day_sums(conn: Connection, since: datetime | None, before: datetime | None) -> Any:
    """SELECT of ``ticker_days`` rows summed from the message_tickers rows (and their messages) in [since, before)."""
    mt, m = t.message_tickers.c, t.messages.c
    step: Any = literal_column(str(DAY_S))
    day = t.epoch_seconds(mt.event_time, conn.dialect.name).op("/")(step).op("*")(step)
    source = func.coalesce(m.source, t.NO_SOURCE)
    where = [m.id == mt.message_id]
    for column in (mt.event_time, m.event_time):  # the same time, repeated: either index serves
        where += [column >= since] if since is not None else []
        where += [column < before] if before is not None else []
    negative = func.sum(case((mt.sentiment == NEGATIVE, 1), else_=0))
    return (
        select(
            mt.ticker,
            day.label("day_s"),
            source.label("source"),
            m.topic_label,
            func.count().label("messages"),
            negative.label("negative"),
        )
        .where(*where)
        .group_by(mt.ticker, day, source, m.topic_label)
    )


def backfill(conn: Connection, tables: Iterable[str]) -> None:
    """Fill new rollup tables from the windows and messages an older store holds."""
    if "window_rollups" in tables:
        for grain in t.ROLLUP_GRAINS_S:
            query = _window_sums(conn, grain, None, None)
            conn.execute(t.window_rollups.insert().from_select([c.name for c in query.selected_columns], query))
    if "ticker_days" in tables:
        query = _day_sums(conn, None, None)
        conn.execute(t.ticker_days.insert().from_select([c.name for c in query.selected_columns], query))


def lock_commits(conn: Connection) -> None:
    """Wait for, and hold off, every checkpoint (each locks its group's progress row first) until this transaction
    ends: a bucket summed again from the windows must not miss a commit's counts. SQLite has one writer anyway."""
    if conn.dialect.name == "postgresql":
        progress = t.progress.c  # in key order: two of these never wait for each other crosswise
        conn.execute(select(progress.group_id).order_by(progress.group_id).with_for_update()).all()


def prune_windows(conn: Connection, before: datetime) -> None:
    """After closed windows starting before ``before`` were deleted: drop their buckets, sum the cut one again."""
    r, cut_s = t.window_rollups.c, t.to_ms(before) // 1000
    for grain in t.ROLLUP_GRAINS_S:
        first = cut_s // grain * grain  # the bucket the cut falls in
        conn.execute(t.window_rollups.delete().where(r.grain_s == grain, r.bucket_s <= first))
        query = _window_sums(conn, grain, t.from_ms(first * 1000), t.from_ms((first + grain) * 1000))
        conn.execute(t.window_rollups.insert().from_select([c.name for c in query.selected_columns], query))


def prune_days(conn: Connection, before: datetime, newest_gone: datetime | None) -> None:
    """After message_tickers rows before ``before`` and messages scored before it were deleted: drop the days before
    the cut, sum again the days from the cut's to that of ``newest_gone`` (the newest event time of a deleted
    message: an event time may be ahead of its scoring time, and its row then loses its message)."""
    d, first = t.ticker_days.c, t.to_ms(before) // 1000 // DAY_S * DAY_S
    last = max(first, t.to_ms(newest_gone) // 1000 // DAY_S * DAY_S) if newest_gone is not None else first
    conn.execute(t.ticker_days.delete().where(d.day_s <= last))
    query = _day_sums(conn, t.from_ms(first * 1000), t.from_ms((last + DAY_S) * 1000))
    conn.execute(t.ticker_days.insert().from_select([c.name for c in query.selected_columns], query))


def newest_event(conn: Connection, scored_before: datetime) -> datetime | None:
    """The newest event time among messages scored before ``scored_before`` (those a prune deletes)."""
    m = t.messages.c
    value = conn.execute(select(func.max(m.event_time)).where(m.scored_at < scored_before)).scalar()
    return t.as_utc(value) if value is not None else None


def as_window_sums(rows: Iterable[Any], deltas: Mapping[tuple[str, str, int], Mapping[str, Any]]) -> list[WindowSums]:
    """The windows an upsert reported closed (``dimension, key, window_start, closed, baseline, threshold``), each
    with the counts that were added to it."""
    out: list[WindowSums] = []
    for r in rows:
        if r.closed:
            start_ms = t.to_ms(r.window_start)
            out.append((r.dimension, r.key, start_ms, deltas[(r.dimension, r.key, start_ms)], r.baseline, r.threshold))
    return out
