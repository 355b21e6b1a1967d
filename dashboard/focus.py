"""One key's chart: its negative ratio over the range with its own threshold band (baseline to threshold), its
alerts and incidents, and beside it the sentiment index and the volume. Opened from an Overview row, and the
top of a ticker's page."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import charts, data, grid, timefmt
from dashboard.ui import View, md_text, set_param, ticker_link


def context(view: View) -> dict[str, Any]:
    """What every chart of the range shares: column width (``bucket`` s, and in words), time formats, incidents."""
    span = data.span_seconds(view.url, view.range_name)
    window = data.window_seconds(view.url)
    bucket = timefmt.bucket_seconds(span, window)
    if bucket == window:
        width = "window"
    elif bucket < 3600:
        width = f"{bucket // 60}-minute column"
    else:
        width = f"{bucket // 3600}-hour column" if bucket < 86400 else f"{bucket // 86400}-day column"
    return {
        "bucket": bucket,
        "width": width,
        "axis": timefmt.axis_format(bucket, span),
        "tip": timefmt.tooltip_format(bucket),
        "incidents": data.incidents(view.url, view.range_name),
        "members": data.incident_keys(view.url, view.range_name),
    }


def chart(view: View, dimension: str, key: str, context: dict[str, Any]) -> bool:
    """Draw the key's charts; ``False`` when it has no window in the range."""
    frame = grid.focus(view.url, dimension, key, view.range_name, context["bucket"])
    if frame.empty:
        st.info(f"No {md_text(dimension)} windows of {md_text(key)} in this range.")
        return False
    alerts = grid.alert_cells(view.url, dimension, view.range_name)
    alerts = alerts[alerts["key"] == key]
    keyed = charts.incident_marks(context["incidents"], context["members"], dimension, [key])
    formats = (context["axis"], context["tip"])
    title = f"{key}: negative ratio per {context['width']} (band: baseline to spike threshold)"
    left, right = st.columns([3, 2])
    left.altair_chart(charts.ratio_timeline(frame, alerts, title, keyed, formats), width="stretch", height=330)
    index = charts.index_timeline(frame, f"{key}: sentiment index", formats)
    right.altair_chart(index, width="stretch", height=160)  # heights here: a layered chart's own collapses
    right.altair_chart(charts.volume_bars(frame, f"{key}: messages", formats), width="stretch", height=150)
    return True


def render(view: View, dimension: str, key: str, context: dict[str, Any]) -> None:
    """The chart of the row picked on the Overview, with a way to close it (and to the ticker's page)."""
    with st.container(border=True):
        head, close = st.columns([5, 1])
        page = f" · its page: {ticker_link(key, view.range_name)}" if dimension == "ticker" else ""
        head.markdown(f"**Chart of {md_text(dimension)} {md_text(key)}**{page}")
        if close.button("Close chart", key=f"close_{dimension}"):
            set_param("focus", None)
            st.rerun()
        chart(view, dimension, key, context)
