"""Sums of a dimension's windows per key and time column, read from the windows or, for columns of an hour or
more, from the store's rollups (``window_rollups``: per key, the sums of its closed windows per hour and per UTC
day) plus the windows still open, so that a year is a few thousand rows rather than millions of windows.
``pieces`` says which part of a range comes from where; the sums are the same either way. No Streamlit here:
the callers cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import BigInteger, Integer, case, cast, func, literal_column, select
from sqlalchemy.engine import Connection

from pipeline import tables as t

GRID_COLUMNS = ["key", "bucket", "n", "n_negative", "sum_index", "sum_confidence", "base_n", "base_sum", "thr_sum"]
GRID_COLUMNS += ["latest_closed"]
READ_COLUMNS = [*GRID_COLUMNS, "n_unique"]


def bucket_of(column: Any, seconds: int, dialect: str) -> Any:
    """The start of the ``seconds``-wide column a time falls in, as epoch seconds (UTC-aligned, integer maths)."""
    step: Any = literal_column(str(int(seconds)))  # a literal, so SELECT and GROUP BY are the same expression
    if dialect == "postgresql":
        epoch = cast(func.extract("epoch", column), BigInteger)
    else:
        epoch = cast(func.strftime("%s", column), Integer)
    return epoch.op("/")(step).op("*")(step)


def window_sums(w: Any) -> list[Any]:
    closed = w.baseline.is_not(None)
    return [
        func.sum(w.n).label("n"),
        func.sum(w.n_negative).label("n_negative"),
        func.sum(w.sum_index).label("sum_index"),
        func.sum(w.sum_confidence).label("sum_confidence"),
        func.sum(case((closed, w.n), else_=0)).label("base_n"),
        func.sum(case((closed, w.baseline * w.n), else_=0.0)).label("base_sum"),
        func.sum(case((closed, case((w.threshold > 1.0, 1.0), else_=w.threshold) * w.n), else_=0.0)).label("thr_sum"),
        func.max(case((closed, w.window_start))).label("latest_closed"),
    ]


@dataclass(frozen=True)
class Piece:
    """A part of a range and where its sums come from: ``windows`` (every window starting in [start_s, end_s)),
    ``open`` (only those not closed yet) or ``rollups`` (the closed ones, from the rollups of ``grain`` s whose
    bucket starts in it). Epoch seconds; None: unbounded."""

    source: str
    start_s: int | None
    end_s: int | None
    grain: int = 0


def pieces(start_s: int | None, end_s: int | None, column_s: int) -> list[Piece]:
    """How to read the windows starting in [start_s, end_s) in columns ``column_s`` wide, exactly.

    Columns narrower than an hour (or not whole hours): the windows themselves. Otherwise the rollups of the
    widest grain a column holds whole (a UTC day, else an hour) plus the open windows: the windows of the partial
    hour the range starts in, the hourly rollups up to the first whole day, the grain's rollups from there on.
    ``end_s`` (when given) must fall on the grain; ``start_s`` need not. Every closed window is in exactly one
    rollup of each grain and every open one in none, so the pieces add up to the windows, no more, no less.
    """
    grain = next((g for g in t.ROLLUP_GRAINS_S if column_s % g == 0), None)  # largest first
    if grain is None:
        return [Piece("windows", start_s, end_s)]
    if end_s is not None and end_s % grain:
        raise ValueError(f"a range read from {grain} s rollups must end on one: {end_s}")
    hour = min(t.ROLLUP_GRAINS_S)
    if start_s is None:
        return [Piece("rollups", None, end_s, grain), Piece("open", None, end_s)]

    def up_to(seconds: int, step: int) -> int:  # the first multiple of ``step`` at or after, not past the end
        aligned = -(-seconds // step) * step
        return aligned if end_s is None else min(aligned, end_s)

    first_hour, first_grain = up_to(start_s, hour), up_to(start_s, grain)
    out = [Piece("windows", start_s, first_hour)] if start_s < first_hour else []
    out += [Piece("rollups", first_hour, first_grain, hour)] if first_hour < first_grain else []
    out += [Piece("rollups", first_grain, end_s, grain)] if end_s is None or first_grain < end_s else []
    out += [Piece("open", first_hour, end_s)] if end_s is None or first_hour < end_s else []
    return out


ROLLUP_SUMS = ["n", "n_negative", "sum_index", "sum_confidence", "base_n", "base_sum", "thr_sum"]


def piece_query(piece: Piece, dimension: str, key: str | None, bucket_s: int, dialect: str) -> Any:
    """SELECT of one piece's sums per key and column (GRID_COLUMNS, then ``n_unique``)."""
    if piece.source == "rollups":
        r = t.window_rollups.c
        step: Any = literal_column(str(int(bucket_s)))
        bucket = r.bucket_s.op("/")(step).op("*")(step).label("bucket")
        where = [r.grain_s == piece.grain, r.dimension == dimension]
        where += [r.key == key] if key is not None else []
        where += [r.bucket_s >= piece.start_s] if piece.start_s is not None else []
        where += [r.bucket_s < piece.end_s] if piece.end_s is not None else []
        summed = [func.sum(r[name]).label(name) for name in ROLLUP_SUMS]
        return (
            select(r.key, bucket, *summed, func.max(r.latest_s).label("latest_closed"), func.sum(r.n_unique))
            .where(*where)
            .group_by(r.key, bucket)
        )
    w = t.windows.c
    bucket = bucket_of(w.window_start, bucket_s, dialect).label("bucket")
    where = [w.dimension == dimension]
    where += [w.key == key] if key is not None else []
    where += [w.closed.is_(False)] if piece.source == "open" else []
    where += [w.window_start >= t.from_ms(piece.start_s * 1000)] if piece.start_s is not None else []
    where += [w.window_start < t.from_ms(piece.end_s * 1000)] if piece.end_s is not None else []
    return select(w.key, bucket, *window_sums(w), func.sum(w.n_unique)).where(*where).group_by(w.key, bucket)


def read_rows(conn: Connection, query: Any, source: str) -> pd.DataFrame:
    """The rows of one piece's query (``piece_query``) as a frame of READ_COLUMNS."""
    frame = pd.DataFrame(conn.execute(query).all(), columns=READ_COLUMNS)
    latest = frame["latest_closed"]
    if source == "rollups":  # epoch seconds there, a stored time in the windows
        frame["latest_closed"] = pd.to_datetime(latest.astype("float64"), unit="s", utc=True)
    else:
        frame["latest_closed"] = pd.to_datetime(latest, utc=True)
    return frame


def read(
    conn: Connection,
    dimension: str,
    bucket_s: int,
    start: datetime | None,
    end: datetime | None,
    key: str | None = None,
) -> pd.DataFrame:
    """The sums of ``dimension``'s windows (of one ``key``, or all) starting in [start, end) (either open), per key
    and column ``bucket_s`` wide (READ_COLUMNS; ``latest_closed``: the start of the newest closed window)."""
    start_s = t.to_ms(start) // 1000 if start is not None else None
    end_s = t.to_ms(end) // 1000 if end is not None else None
    frames = [
        read_rows(conn, piece_query(piece, dimension, key, bucket_s, conn.dialect.name), piece.source)
        for piece in pieces(start_s, end_s, bucket_s)
    ]
    found = [f for f in frames if not f.empty]
    if len(found) <= 1:  # a year of closed windows: all in the rollups, nothing to add up again
        return found[0] if found else frames[0]
    frame = pd.concat(found, ignore_index=True)
    summed = {name: "sum" for name in [*ROLLUP_SUMS, "n_unique"]}
    return frame.groupby(["key", "bucket"], as_index=False, sort=False).agg({**summed, "latest_closed": "max"})[
        READ_COLUMNS
    ]
