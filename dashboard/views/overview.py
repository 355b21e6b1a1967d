"""Overview: KPIs, then the negative ratio per topic and per ticker with the spike thresholds."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, data
from dashboard.ui import View, md_text, pct

TOP_KEYS = 8


def render(view: View) -> None:
    k = data.kpis(view.url, view.range_name)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Messages / minute", f"{k['per_minute']:.0f}", help=f"{k['messages']} messages in range")
    c2.metric("Negative share", pct(float(k["negative_share"])))  # type: ignore[arg-type]
    c3.metric("Alerts", str(k["alerts"]))
    c4.metric("Model", md_text(k["model_version"]))  # a metric's value is Markdown
    alerts = data.alerts(view.url, view.range_name)
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
        left.altair_chart(
            charts.ratio_timeline(frame, spikes, f"Negative ratio per {dimension} (dashed: spike threshold)"),
            use_container_width=True,
        )
        right.altair_chart(charts.volume_bars(frame, f"Volume per {dimension}"), use_container_width=True)
