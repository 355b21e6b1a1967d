"""Overview: KPIs, the analyst's watchlist, then per dimension (tickers, topics, sources) a heatmap of the range
beside its top movers; a click on a heatmap row (or a movers row) opens that key's chart with its threshold band.

Rows are sorted by how far each key's latest closed window sits above its baseline (the watchlist's tickers
first); columns are windows, or buckets of them when the range is long (``dashboard.timefmt``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import charts, data, grid, heatmap, timefmt
from dashboard import focus as focus_chart
from dashboard.ui import View, md_text, param, pct, set_param, ticker_column, ticker_link, ticker_url, viewer_zone

DIMENSIONS = {"ticker": "Tickers", "topic": "Topics", "source": "Sources"}
COLOURS = {"Negative ratio": "negative_ratio", "Sentiment index": "sentiment_index"}
MAX_ROWS = 30
INDEX_HELP = (
    "Confidence-weighted mean of p(positive) − p(negative) over the range's messages: "
    "−1 all confidently negative, 0 balanced or neutral, +1 all confidently positive."
)


def overall_index(frame: pd.DataFrame) -> float | None:
    """The index of several windows pooled (their sums added), ``None`` where nothing carries weight."""
    weight = float(frame["sum_confidence"].sum()) if not frame.empty else 0.0
    return max(-1.0, min(1.0, float(frame["sum_index"].sum()) / weight)) if weight > 0 else None


def kpis(view: View) -> None:
    k = data.kpis(view.url, view.range_name)
    index = k["index"]  # pooled in SQL: the range's sums of the stream's windows
    c1, c2, c3, c4, c5, c6 = st.columns(6)
    c1.metric("Messages / minute", f"{k['per_minute']:.0f}", help=f"{k['messages']} messages in range")
    c2.metric("Negative share", pct(float(k["negative_share"])))  # type: ignore[arg-type]
    c3.metric("Sentiment index", timefmt.signed(index), help=INDEX_HELP)  # type: ignore[arg-type]
    c4.metric("Alerts", str(k["alerts"]))
    c5.metric("Open incidents", str(k["open_incidents"]))
    c6.metric("Model", md_text(k["model_version"]))  # a metric's value is Markdown


def watched_strip(view: View, watched: tuple[str, ...], tickers: pd.DataFrame) -> None:
    """The analyst's tickers first: negative ratio over the range and its change against the baseline."""
    st.subheader("Your watchlist")
    sums = tickers.groupby("key")[["n", "n_negative", "base_n", "base_sum"]].sum() if not tickers.empty else None
    for start in range(0, len(watched), 6):
        for column, ticker in zip(st.columns(6), watched[start : start + 6], strict=False):
            row = sums.loc[ticker] if sums is not None and ticker in sums.index else None
            if row is None or row["n"] == 0:
                column.metric(ticker, "—", help="no messages in this range")
                continue
            ratio = row["n_negative"] / row["n"]
            change = ratio - row["base_sum"] / row["base_n"] if row["base_n"] > 0 else None
            column.metric(
                ticker,
                pct(ratio),
                delta=None if change is None else timefmt.points(change),
                delta_color="inverse",
                help=f"negative share of {int(row['n'])} messages; change against the baseline",
            )
    st.markdown("Open: " + " · ".join(ticker_link(k, view.range_name) for k in watched))


def focus_of(dimension: str) -> str | None:
    """The key whose chart is open in ``dimension``'s section (URL ``focus=dimension:key``)."""
    chosen = param("focus")
    if chosen and ":" in chosen:
        dim, key = chosen.split(":", 1)
        return key if dim == dimension and key else None
    return None


def pick(dimension: str, widget: str, rows: list[str]) -> None:
    """A heatmap click or a movers row chosen: open that key's chart (or close it when cleared)."""
    state: Any = st.session_state.get(widget)
    selection = getattr(state, "selection", None) or (state or {}).get("selection", {})
    key = None
    if isinstance(selection, dict) and selection.get(heatmap.SELECTION):
        key = selection[heatmap.SELECTION][0].get("key")
    elif isinstance(selection, dict) and selection.get("rows"):
        index = selection["rows"][0]
        key = rows[index] if index < len(rows) else None
    set_param("focus", f"{dimension}:{key}" if key else None)


def movers_table(view: View, dimension: str, frame: pd.DataFrame, incidents: pd.DataFrame) -> None:
    top = grid.movers(frame)
    if top.empty:
        st.caption("No key has a baseline in this range yet.")
        return
    open_roots = incidents[incidents["status"] != "resolved"]
    touched = open_roots[open_roots["root_dimension"] == dimension].set_index("root_key")["status"]
    top["incident"] = top["key"].map(lambda k: f"INC {touched[k]}" if k in touched.index else "")
    top["change"] = top["change"].map(timefmt.points)
    columns = ["key", "change", "trend", "n", "incident"]
    config: dict[str, Any] = {
        "key": st.column_config.TextColumn(DIMENSIONS[dimension][:-1].lower(), width=110),
        "change": st.column_config.TextColumn(
            "vs baseline", help="negative ratio over the range minus its baseline", width=80
        ),
        "trend": st.column_config.LineChartColumn("negative ratio", y_min=0.0, y_max=1.0, width=100),
        "n": st.column_config.NumberColumn("msgs", width=55),
        "incident": st.column_config.TextColumn("incident", width=80),
    }
    keys = top["key"].tolist()
    if dimension == "ticker":  # a ticker is a link to its page
        top["key"] = [ticker_url(k, view.range_name) for k in keys]
        config["key"] = ticker_column("ticker", width=110)
    widget = f"movers_{dimension}"
    st.dataframe(
        top[columns],
        width="stretch",
        hide_index=True,
        column_config=config,
        key=widget,
        on_select=lambda: pick(dimension, widget, keys),
        selection_mode="single-row",
    )


def section(view: View, dimension: str, colour: str, watched: tuple[str, ...], context: dict[str, Any]) -> None:
    """One dimension: heatmap beside its movers, and the chart of the row picked in either."""
    st.subheader(DIMENSIONS[dimension])
    frame = grid.grid(view.url, dimension, view.range_name, context["bucket"])
    if frame.empty:
        st.caption(f"No {DIMENSIONS[dimension].lower()} in this range yet.")
        return
    latest = grid.latest(view.url, dimension, grid.latest_pairs(frame))
    rows = grid.order_rows(frame, latest, list(watched) if dimension == "ticker" else None)
    shown = rows if st.session_state.get(f"all_{dimension}") else rows[:MAX_ROWS]
    labels = {k: ("★ " + k if k in watched and dimension == "ticker" else k) for k in shown}
    layout = heatmap.Layout(shown, labels, colour, context["axis"], context["tip"])
    alerts = grid.alert_cells(view.url, dimension, view.range_name)
    marks = charts.incident_marks(context["incidents"], context["members"], dimension, shown)
    what = "negative ratio" if colour == "negative_ratio" else "sentiment index"
    title = f"{what} per {dimension} and {context['width']} (outlined: alerts; dashed: incidents)"
    left, right = st.columns([5, 4])
    with left:
        widget = f"heat_{dimension}"
        st.vega_lite_chart(
            heatmap.heatmap(frame, alerts, marks, context["bucket"], layout, title),
            width="stretch",
            key=widget,
            on_select=lambda: pick(dimension, widget, shown),
            selection_mode=[heatmap.SELECTION],
        )
        if len(rows) > MAX_ROWS:
            st.toggle(f"Show all {len(rows)} {DIMENSIONS[dimension].lower()}", key=f"all_{dimension}")
    with right:
        st.caption("**Top movers**: largest change of the negative ratio against its baseline over the range")
        movers_table(view, dimension, frame, context["incidents"])
    key = focus_of(dimension)
    if key is not None:
        focus_chart.render(view, dimension, key, context)


def render(view: View) -> None:
    kpis(view)
    watched = view.watched
    context = focus_chart.context(view)
    newest = data.latest_time(view.url)
    zone = viewer_zone()
    if newest is not None:
        st.caption(
            f"Newest window ends {timefmt.human(newest, zone)} ({timefmt.zone_label(zone, newest)}); "
            "a click on a row opens its chart"
        )
    colour = COLOURS[st.radio("Colour", list(COLOURS), horizontal=True, key="overview_colour") or "Negative ratio"]
    if watched:
        watched_strip(view, watched, grid.grid(view.url, "ticker", view.range_name, context["bucket"]))
    for dimension in DIMENSIONS:
        section(view, dimension, colour, watched, context)
