"""Reads behind the Overview's heatmaps, top movers and focused chart: the daemon's windows, bucketed in SQL.

One query per dimension reads every key's windows in the range, summed into time columns ``bucket``
seconds wide (``dashboard.timefmt.bucket_seconds``: one window per column wherever the range allows), on
the index ``ix_windows_dim_start`` (dimension, window_start). Columns of an hour or more are read from the
store's rollups instead (``window_rollups``: per key, the sums of its closed windows per hour and per UTC
day), plus the windows still open, so that a year is a few thousand rows rather than millions of windows;
``pieces`` says which part of a range comes from where, and the sums are the same either way. The heatmap,
the movers and the row order all come from that one frame; the latest closed window of each key is then
looked up on the windows' unique key, one probe per key. Baselines and thresholds of a column are the mean
over its closed windows, weighted by their messages.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy import select, text, true, tuple_

from dashboard import sums
from dashboard.data import cached, engine_for, latest_time, since
from pipeline import tables as t

SUMMED = ["sum_index", "sum_confidence", "base_sum", "thr_sum"]


def _ratios(frame: pd.DataFrame) -> pd.DataFrame:
    n = frame["n"].where(frame["n"] > 0)
    weight = frame["base_n"].where(frame["base_n"] > 0)
    confidence = frame["sum_confidence"].where(frame["sum_confidence"] > 0)
    return frame.assign(
        negative_ratio=(frame["n_negative"] / n).astype(float),
        baseline=(frame["base_sum"] / weight).astype(float),
        threshold=(frame["thr_sum"] / weight).astype(float),
        sentiment_index=(frame["sum_index"] / confidence).astype(float).clip(-1, 1),
    )


HISTORY_FROM_S = 3600  # columns this wide or wider: the columns before the last two are read once per HISTORY_TTL_S
HISTORY_TTL_S = 600


def _read(
    url: str, dimension: str, bucket_s: int, start: datetime | None, end: datetime | None, key: str | None = None
) -> pd.DataFrame:
    """The grid's sums of windows starting in [start, end) (either open), per key and column (``sums.read``)."""
    engine = engine_for(url)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":  # a hash of a few thousand groups, not a sort spilled to disk
            conn.execute(text("SET LOCAL work_mem = '64MB'"))
            conn.execute(text("SET LOCAL jit = off"))  # compiling costs more than a sub-second query saves
        return sums.read(conn, dimension, bucket_s, start, end, key=key)


@st.cache_data(ttl=HISTORY_TTL_S, show_spinner=False)
def _history(url: str, dimension: str, bucket_s: int, start: datetime | None, end: datetime) -> pd.DataFrame:
    return _read(url, dimension, bucket_s, start, end)


@cached
def grid(url: str, dimension: str, range_name: str, bucket_s: int) -> pd.DataFrame:
    """Per key and column: volume, negative ratio, sentiment index, mean baseline and threshold.

    With columns of an hour or more, all but the last two columns are windows long closed: they are read once
    per ``HISTORY_TTL_S`` (and the range starts on a column boundary, so that read is the same until a new
    column begins), the last two on every refresh. Shorter columns are read whole on every refresh.
    """
    start, newest = since(url, range_name), latest_time(url)
    if bucket_s >= HISTORY_FROM_S and newest is not None:
        step = timedelta(seconds=bucket_s)
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        cut = epoch + (newest - epoch) // step * step - step  # the start of the last column but one
        aligned = epoch + (start - epoch) // step * step if start else None
        frame = pd.concat(
            [_history(url, dimension, bucket_s, aligned, cut), _read(url, dimension, bucket_s, cut, None)]
        )
    else:
        frame = _read(url, dimension, bucket_s, start, None)
    frame = frame.reset_index(drop=True)
    frame["bucket"] = pd.to_datetime(frame["bucket"].astype("int64"), unit="s", utc=True)
    frame["bucket_end"] = frame["bucket"] + pd.Timedelta(seconds=bucket_s)
    frame["latest_closed"] = pd.to_datetime(frame["latest_closed"], utc=True)
    return _ratios(frame.astype({c: float for c in SUMMED}))


def latest_pairs(frame: pd.DataFrame) -> tuple[tuple[str, Any], ...]:
    """(key, start of its latest closed window) for every key of a ``grid`` frame that has one."""
    newest = frame.dropna(subset=["latest_closed"]).groupby("key")["latest_closed"].max()
    return tuple((str(k), v.to_pydatetime()) for k, v in newest.items())


@cached
def latest(url: str, dimension: str, pairs: tuple[tuple[str, Any], ...]) -> pd.DataFrame:
    """Those latest closed windows (``latest_pairs``), read on the unique key: ratio, baseline, how far above."""
    w = t.windows.c
    rows: list[Any] = []
    with engine_for(url).connect() as conn:
        for i in range(0, len(pairs), 500):
            rows += conn.execute(
                select(w.key, w.window_start, w.n, w.n_negative, w.baseline, w.threshold).where(
                    w.dimension == dimension, tuple_(w.key, w.window_start).in_(list(pairs[i : i + 500]))
                )
            ).all()
    frame = pd.DataFrame(rows, columns=["key", "window_start", "n", "n_negative", "baseline", "threshold"])
    frame["window_start"] = pd.to_datetime(frame["window_start"], utc=True)
    ratio = (frame["n_negative"] / frame["n"].where(frame["n"] > 0)).astype(float)
    return frame.assign(negative_ratio=ratio, above=ratio - frame["baseline"].astype(float))


@cached
def alert_cells(url: str, dimension: str, range_name: str) -> pd.DataFrame:
    """The alerts of one dimension in the range: (key, window_start, severity, negative ratio, incident)."""
    start, a = since(url, range_name), t.alerts.c
    columns = ["key", "window_start", "severity", "negative_ratio", "incident_id"]
    query = select(*[a[c] for c in columns]).where(
        a.dimension == dimension, a.window_start >= start if start else true()
    )
    with engine_for(url).connect() as conn:
        frame = pd.DataFrame(conn.execute(query).all(), columns=columns)
    frame["window_start"] = pd.to_datetime(frame["window_start"], utc=True)
    return frame


@cached
def focus(url: str, dimension: str, key: str, range_name: str, bucket_s: int) -> pd.DataFrame:
    """One key over time, per column: what ``charts.ratio_timeline`` draws (ratio, baseline, threshold, volume)."""
    frame = _read(url, dimension, bucket_s, since(url, range_name), None, key=key)
    frame = frame.sort_values("bucket", kind="stable").reset_index(drop=True)
    frame["window_start"] = pd.to_datetime(frame["bucket"].astype("int64"), unit="s", utc=True)
    return _ratios(frame.astype({c: float for c in SUMMED}))


def order_rows(frame: pd.DataFrame, latest_rows: pd.DataFrame, first: list[str] | None = None) -> list[str]:
    """Keys in heatmap order: ``first`` (the watchlist) on top, then by how far the latest closed window sits
    above its baseline, highest first; keys without a closed window last, by volume."""
    volume = frame.groupby("key")["n"].sum()
    above = latest_rows.set_index("key")["above"].reindex(volume.index)
    order = pd.DataFrame({"above": above, "n": volume}).sort_values(
        ["above", "n"], ascending=[False, False], na_position="last", kind="stable"
    )
    keys = [str(k) for k in order.index]
    pinned = [k for k in (first or []) if k in set(keys)]
    return pinned + [k for k in keys if k not in set(pinned)]


def movers(frame: pd.DataFrame, limit: int = 10) -> pd.DataFrame:
    """Keys with the largest change of their negative ratio against their baseline over the range, each with
    its columns' ratios (a sparkline) and volume."""
    if frame.empty:
        return pd.DataFrame(columns=["key", "negative_ratio", "baseline", "change", "trend", "n"])
    sums = frame.groupby("key")[["n", "n_negative", "base_n", "base_sum"]].sum()
    sums = sums[sums["base_n"] > 0]
    out = pd.DataFrame(
        {
            "negative_ratio": sums["n_negative"] / sums["n"].where(sums["n"] > 0),
            "baseline": sums["base_sum"] / sums["base_n"],
            "n": sums["n"].astype(int),
        }
    )
    out["change"] = out["negative_ratio"] - out["baseline"]
    out = out.dropna(subset=["change"]).sort_values("change", ascending=False, kind="stable").head(limit)
    shown = frame[frame["key"].isin(out.index)].sort_values("bucket")  # sparklines of the shown keys only
    trend = shown["negative_ratio"].fillna(0.0).round(3).groupby(shown["key"]).agg(list)
    out["trend"] = trend.reindex(out.index)
    return out.reset_index()[["key", "negative_ratio", "baseline", "change", "trend", "n"]]
