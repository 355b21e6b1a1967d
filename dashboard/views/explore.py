"""Explore: scored messages filtered by time, topic, ticker, source and sentiment, and searched by their words.

The search is the database's full-text search (``dashboard/search.py``): words, "phrases", prefix* and -word,
combined with the filters, newest first, a page at a time, the matches highlighted. What cannot be searched
gets a sentence saying why, never an error page. Message text is untrusted: highlighted lines are built from
escaped pieces (``md_text``), the table shows it as plain cells.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import data, search, timefmt, watchlist
from dashboard.ui import (
    View,
    choose,
    current_page,
    md_inline,
    md_text,
    pager,
    param,
    set_param,
    ticker_column,
    ticker_links,
    ticker_url,
    viewer_zone,
    zone_name,
)
from models.contract import SENTIMENT_LABELS

PAGE_SIZE = 50
SHOWN_MATCHES = 20  # highlighted lines above the table
PROBABILITIES = ("p_negative", "p_neutral", "p_positive", "p_topic")
SEARCH_LABEL = "Search text"


def marked_line(row: Any, range_name: str) -> str:
    """One match as a Markdown line: when, labels, ticker links, and the text with its matches highlighted."""
    zone = viewer_zone()
    pieces = search.segments(row.marked)  # a match's piece stripped (for bold), the text around it spaced as it is
    text = "".join(f":orange-background[**{md_text(piece)}**]" if hit else md_inline(piece) for piece, hit in pieces)
    tickers = ticker_links(str(row.tickers).split(), range_name)
    source = md_text(row.source or "unknown source")
    return f"**{timefmt.human(row.event_time, zone)}** · {md_text(row.sentiment)} · {source} · {tickers} — {text}"


def table(frame: pd.DataFrame, range_name: str) -> None:
    shown = frame.drop(columns=["marked"], errors="ignore")
    shown["page"] = [ticker_url(k.split()[0], range_name) if k else None for k in shown["tickers"]]
    config: dict[str, Any] = {c: st.column_config.NumberColumn(format="%.2f") for c in PROBABILITIES}
    config["event_time"] = st.column_config.DatetimeColumn("time", format="MMM D, HH:mm:ss", timezone=zone_name())
    config["page"] = ticker_column()
    st.dataframe(shown, hide_index=True, width="stretch", key="messages_table", column_config=config)
    tickers = sorted({k for cell in frame["tickers"] for k in str(cell).split()})
    if tickers:
        st.markdown("Tickers here: " + ticker_links(tickers, range_name))


def searched(view: View, raw: str, filters: data.Filters) -> None:
    page = current_page()
    try:
        found = search.find(view.url, raw, filters, page, PAGE_SIZE)
        notes = search.parse(raw).notes
    except search.SearchError as exc:
        st.warning(md_text(str(exc)))
        return
    for note in notes:
        st.caption(md_text(note))
    total = "more than 10,000" if found.more_than_cap else f"{found.total:,}"
    if found.frame.empty and page > 1:
        st.info(f"No more matches: {total} in all, {PAGE_SIZE} per page.")
        pager(page, False)
        return
    if found.total == 0:
        st.info(f"No message matches {md_text(raw[:80])} with these filters. {md_text(search.HOW)}")
        return
    st.subheader(f"{total} message(s) match, newest first")
    for row in found.frame.head(SHOWN_MATCHES).itertuples():
        st.markdown(marked_line(row, view.range_name))
    table(found.frame, view.range_name)
    pages = None if found.more_than_cap else max(1, -(-found.total // PAGE_SIZE))
    pager(page, page * PAGE_SIZE < found.total, pages)


def browsed(view: View, filters: data.Filters) -> None:
    page = current_page()
    frame = data.messages(view.url, filters, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE)
    has_more, frame = len(frame) > PAGE_SIZE, frame.head(PAGE_SIZE)
    first = (page - 1) * PAGE_SIZE
    shown = f"{len(frame)} message(s)" if page == 1 else f"messages {first + 1}–{first + len(frame)}"
    st.subheader(f"{shown}, newest first" + (" (more on the next page)" if has_more else ""))
    table(frame, view.range_name)
    pager(page, has_more)


def render(view: View) -> None:
    filters = data.Filters(
        range=view.range_name,
        topic=choose("Topic", view.options["topic"], "topic"),
        ticker=choose("Ticker", watchlist.leading(list(view.watched), view.options["ticker"]), "ticker"),
        source=choose("Source", view.options["source"], "source"),
        sentiment=choose("Sentiment", list(SENTIMENT_LABELS), "sentiment"),
    )
    raw = st.text_input(SEARCH_LABEL, value=param("q", "") or "", key="w_q", help=search.HOW, placeholder=search.HOW)
    asked = (raw or "").strip()
    if asked != (param("q", "") or "").strip():
        set_param("page", None)  # a new search starts on its first page
    set_param("q", asked or None)
    if asked:
        searched(view, asked, filters)
    else:
        browsed(view, filters)
