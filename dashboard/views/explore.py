"""Explore: scored messages, filtered by topic, ticker, source, sentiment and text."""

from __future__ import annotations

import streamlit as st

from dashboard import data
from dashboard.ui import View, choose, param, set_param
from models.contract import SENTIMENT_LABELS

LIMIT = 500
PROBABILITIES = ("p_negative", "p_neutral", "p_positive", "p_topic")


def render(view: View) -> None:
    filters = data.Filters(
        range=view.range_name,
        topic=choose("Topic", view.options["topic"], "topic"),
        ticker=choose("Ticker", view.options["ticker"], "ticker"),
        source=choose("Source", view.options["source"], "source"),
        sentiment=choose("Sentiment", list(SENTIMENT_LABELS), "sentiment"),
        search=st.sidebar.text_input("Search text", value=param("q", "") or "", key="w_q") or None,
    )
    set_param("q", filters.search)
    frame = data.messages(view.url, filters, LIMIT)
    st.subheader(f"{len(frame)} message(s)" + (f" (newest {LIMIT})" if len(frame) == LIMIT else ""))
    st.dataframe(
        frame,
        hide_index=True,
        use_container_width=True,
        key="messages_table",
        column_config={
            c: st.column_config.NumberColumn(format="%.2f")
            for c in ("p_negative", "p_neutral", "p_positive", "p_topic")
        },
    )
