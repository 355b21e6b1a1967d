"""Overview: KPIs, then per topic and per ticker the negative ratio with the spike thresholds and the incidents,
beside the sentiment index (or the volume)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, data
from dashboard.ui import View, md_text, pct

TOP_KEYS = 8
BESIDE = ("Sentiment index", "Volume")
INDEX_HELP = (
    "Confidence-weighted mean of p(positive) − p(negative) over the range's messages: "
    "−1 all confidently negative, 0 balanced or neutral, +1 all confidently positive."
)


def overall_index(frame: pd.DataFrame) -> float | None:
    """The index of several windows pooled (their sums added), ``None`` where nothing carries weight."""
    weight = float(frame["sum_confidence"].sum()) if not frame.empty else 0.0
    return max(-1.0, min(1.0, float(frame["sum_index"].sum()) / weight)) if weight > 0 else None


def render(view: View) -> None:
    k = data.kpis(view.url, view.range_name)
    index = overall_index(data.sentiment_timeline(view.url, "all", None, view.range_name))
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.metric("Messages / minute", f"{k['per_minute']:.0f}", help=f"{k['messages']} messages in range")
    c2.metric("Negative share", pct(float(k["negative_share"])))  # type: ignore[arg-type]
    c3.metric("Sentiment index", "—" if index is None else f"{index:+.2f}", help=INDEX_HELP)
    c4.metric("Alerts", str(k["alerts"]))
    c5.metric("Model", md_text(k["model_version"]))  # a metric's value is Markdown
    beside = st.radio("Beside the negative ratio", BESIDE, horizontal=True, key="overview_beside")
    alerts = data.alerts(view.url, view.range_name)
    incidents = data.incidents(view.url, view.range_name)
    members = data.incident_keys(view.url, view.range_name)
    for dimension in ("topic", "ticker"):
        keys = data.top_keys(view.url, dimension, view.range_name)
        flagged = alerts[alerts["dimension"] == dimension]["key"].unique().tolist()
        keys = list(dict.fromkeys(flagged + keys))[:TOP_KEYS]
        frame = data.timeline(view.url, dimension, keys, view.range_name)
        if frame.empty:
            st.caption(f"No {dimension} windows in this range yet.")
            continue
        left, right = st.columns([3, 2])
        spikes = alerts[alerts["dimension"] == dimension]
        marks = charts.incident_marks(incidents, members, dimension, keys)
        title = f"Negative ratio per {dimension} (dashed: spike threshold; rules: incidents)"
        left.altair_chart(charts.ratio_timeline(frame, spikes, title, marks), width="stretch")
        if beside == "Volume":
            right.altair_chart(charts.volume_bars(frame, f"Volume per {dimension}"), width="stretch")
        else:
            index = data.sentiment_timeline(view.url, dimension, keys, view.range_name)
            right.altair_chart(charts.index_timeline(index, f"Sentiment index per {dimension}"), width="stretch")
