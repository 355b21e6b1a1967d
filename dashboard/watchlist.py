"""Analysts' watchlists: the tickers each follows, kept in the store's ``watchlists`` table (the dashboard's own,
like feedback: its PostgreSQL role may insert and delete there and nowhere else of the daemon's tables).

The analyst is the signed-in identity, or in the local demo the name typed in the sidebar. A watchlist
leads the Overview and the ticker selectors.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import streamlit as st
from sqlalchemy import delete, inspect, select

from dashboard.data import cached, engine_for
from pipeline import tables as t

MAX_TICKERS = 50
TICKER = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,15}$")  # what a ticker may look like (message_tickers.ticker: 16)


def clean_ticker(raw: object) -> str | None:
    """``raw`` as a ticker symbol (upper case, 1-16 of A-Z 0-9 . -), or ``None`` if it cannot be one."""
    value = str(raw or "").strip().lstrip("$").upper()
    return value if TICKER.match(value) else None


@cached
def available(url: str) -> bool:
    """Whether the store has the table (a store not yet upgraded by a daemon of this release has not)."""
    return "watchlists" in inspect(engine_for(url)).get_table_names()


@cached
def tickers(url: str, analyst: str | None) -> list[str]:
    """The analyst's tickers, in the order they were added."""
    if not analyst or not available(url):
        return []
    w = t.watchlists.c
    with engine_for(url).connect() as conn:
        rows = conn.execute(select(w.ticker).where(w.analyst == analyst).order_by(w.added_at, w.ticker)).scalars()
        return [str(r) for r in rows]


def save(url: str, analyst: str, wanted: list[str]) -> list[str]:
    """Make the analyst's watchlist exactly ``wanted`` (cleaned, at most ``MAX_TICKERS``); returns what it holds."""
    if not analyst:
        raise ValueError("a watchlist needs a name: sign in, or type your name in the sidebar")
    clean = list(dict.fromkeys(c for c in (clean_ticker(x) for x in wanted) if c))[:MAX_TICKERS]
    w = t.watchlists.c
    now = datetime.now(UTC)
    with engine_for(url).begin() as conn:
        have = set(conn.execute(select(w.ticker).where(w.analyst == analyst)).scalars())
        gone = sorted(have - set(clean))
        if gone:
            conn.execute(delete(t.watchlists).where(w.analyst == analyst, w.ticker.in_(gone)))
        new = [{"analyst": analyst, "ticker": k, "added_at": now} for k in clean if k not in have]
        if new:
            conn.execute(t.insert_for(conn, t.watchlists).on_conflict_do_nothing(), new)
    st.cache_data.clear()  # the next read shows it
    return clean


def add(url: str, analyst: str, ticker: str) -> list[str]:
    return save(url, analyst, [*tickers(url, analyst), ticker])


def remove(url: str, analyst: str, ticker: str) -> list[str]:
    return save(url, analyst, [k for k in tickers(url, analyst) if k != ticker])


def leading(watched: list[str], others: list[str]) -> list[str]:
    """``others`` with the watched tickers first (a selector's options)."""
    return [*watched, *[k for k in others if k not in set(watched)]]
