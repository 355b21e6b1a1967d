"""Ticker: one company's page (``?view=Ticker&ticker=NVDA``). Its negative ratio, sentiment index and volume over
the range with its threshold; its alerts and incidents; its messages newest first with their own label for this
company and the message's; the sources and topics behind it. An unknown ticker gets a sentence, not a traceback.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import data, focus, grid, tickerdata, timefmt, watchlist
from dashboard.ui import View, current_page, md_text, pager, param, pct, set_param, viewer_zone

PAGE_SIZE = 50
PICK = "(choose a ticker)"


def selector(view: View) -> str | None:
    """The ticker from the URL, or chosen here (the analyst's watchlist first)."""
    raw = param("ticker")
    options = watchlist.leading(list(view.watched), view.options["ticker"])
    if raw and raw not in options:
        options = [raw, *options]
    chosen = st.selectbox("Ticker", [PICK, *options], index=options.index(raw) + 1 if raw else 0, key="w_ticker_page")
    ticker = None if chosen == PICK else chosen
    if ticker != raw:
        set_param("ticker", ticker)
        set_param("page", None)
    return ticker


def watch_button(view: View, ticker: str) -> None:
    if not view.analyst:
        st.caption("Type your name in the sidebar to keep a watchlist.")
        return
    if not watchlist.available(view.url):
        st.caption("This store has no watchlists table yet: a daemon of this release adds it when it starts.")
        return
    if ticker in view.watched:
        if st.button(f"Remove {ticker} from my watchlist", key="unwatch"):
            watchlist.remove(view.url, view.analyst, ticker)
            st.rerun()
    elif st.button(f"Add {ticker} to my watchlist", key="watch", type="primary"):
        watchlist.add(view.url, view.analyst, ticker)
        st.rerun()


def summary(view: View, ticker: str, context: dict[str, Any]) -> int:
    """KPIs and the ticker's charts; returns its number of messages in the range."""
    frame = grid.focus(view.url, "ticker", ticker, view.range_name, context["bucket"])
    n, negative = int(frame["n"].sum()), int(frame["n_negative"].sum())
    weight = float(frame["sum_confidence"].sum())
    alerts = data.alerts(view.url, view.range_name, dimension="ticker", key=ticker)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Messages", str(n))
    c2.metric("Negative share", pct(negative / n) if n else "—")
    c3.metric("Sentiment index", timefmt.signed(float(frame["sum_index"].sum()) / weight if weight > 0 else None))
    c4.metric("Alerts", str(len(alerts)))
    focus.chart(view, "ticker", ticker, context)
    return n


def events(view: View, ticker: str) -> None:
    zone = viewer_zone()
    alerts = data.alerts(view.url, view.range_name, dimension="ticker", key=ticker)
    incidents = tickerdata.incidents(view.url, ticker, view.range_name)
    left, right = st.columns(2)
    left.subheader(f"Alerts ({len(alerts)})")
    if alerts.empty:
        left.caption("No spike in this range.")
    else:
        shown = alerts.assign(when=[timefmt.human(ts, zone) for ts in alerts["window_start"]])
        left.dataframe(
            shown[["when", "severity", "negative_ratio", "threshold", "n"]],
            hide_index=True,
            column_config={
                "negative_ratio": st.column_config.NumberColumn("negative", format="percent"),
                "threshold": st.column_config.NumberColumn("threshold", format="percent"),
            },
        )
    right.subheader(f"Incidents ({len(incidents)})")
    if incidents.empty:
        right.caption("No incident in this range.")
    else:
        shown = incidents.assign(
            when=[timefmt.human(ts, zone) for ts in incidents["window_start"]],
            root=[f"{d} {k}" for d, k in zip(incidents["root_dimension"], incidents["root_key"], strict=True)],
            by=incidents["acknowledged_by"].fillna("").astype(str),  # nobody yet: blank, not "None"
        )
        right.dataframe(
            shown[["when", "status", "root", "n_alerts", "by"]],
            hide_index=True,
            column_config={
                "root": st.column_config.TextColumn("started at", help="the key whose alert opened the incident"),
                "n_alerts": st.column_config.NumberColumn("alerts"),
                "by": st.column_config.TextColumn("acknowledged by"),
            },
        )
        right.markdown("[Act on them on the Incidents page](./?view=Incidents)")


def drivers(view: View, ticker: str) -> None:
    st.subheader("What drives it")
    left, right = st.columns(2)
    for column, by, title in ((left, "source", "Sources"), (right, "topic_label", "Topics")):
        frame = tickerdata.drivers(view.url, ticker, view.range_name, by)
        column.caption(f"{title}: messages in range and their negative share")
        column.dataframe(
            frame[[by, "messages", "negative_share"]],
            hide_index=True,
            column_config={"negative_share": st.column_config.ProgressColumn("negative", format="percent")},
        )


def message_list(view: View, ticker: str, total: int) -> None:
    own = tickerdata.has_own_labels(view.url, ticker)
    st.subheader("Messages, newest first")
    if not own:
        st.caption(
            "Each message's label is shown; a label of its own for this company appears once the daemon "
            "writes per-company sentiment (message_tickers)."
        )
    page = current_page()
    frame = tickerdata.messages(view.url, ticker, view.range_name, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE)
    if frame.empty:
        st.caption("No messages in this range." if page == 1 else "No more messages.")
        pager(page, False)
        return
    has_more, frame = len(frame) > PAGE_SIZE, frame.head(PAGE_SIZE)
    zone = viewer_zone()
    frame["when"] = [timefmt.human(ts, zone, seconds=True) for ts in frame["event_time"]]
    frame["ticker_sentiment"] = frame["ticker_sentiment"].fillna("—")
    st.dataframe(
        frame[["when", "text", "ticker_sentiment", "sentiment", "p_negative", "source", "topic_label", "tickers"]],
        hide_index=True,
        column_config={
            "ticker_sentiment": st.column_config.TextColumn(f"for {ticker}"),
            "sentiment": st.column_config.TextColumn("message"),
            "p_negative": st.column_config.ProgressColumn("p(negative)", min_value=0, max_value=1, format="%.2f"),
        },
    )
    pager(page, has_more, max(1, -(-total // PAGE_SIZE)))


def render(view: View) -> None:
    ticker = selector(view)
    if ticker is None:
        st.info("Choose a ticker above, or follow a ticker's link anywhere on the dashboard.")
        return
    clean = watchlist.clean_ticker(ticker)
    if clean is None or not tickerdata.known(view.url, clean):
        st.warning(
            f"No ticker {md_text(ticker[:40])} in this store: no window or message names it. "
            "Check the symbol (for example NVDA), or pick one from the list."
        )
        return
    st.header(md_text(clean))
    watch_button(view, clean)
    total = summary(view, clean, focus.context(view))
    events(view, clean)
    drivers(view, clean)
    message_list(view, clean, total)
