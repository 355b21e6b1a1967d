"""Alerts: every spike in the range, newest first, with the messages behind it.

Message text is untrusted: it is shown with ``st.text`` and in a data frame, never as Markdown;
the alert's key (a ticker, topic or source taken from messages) is escaped in the title.
"""

from __future__ import annotations

import streamlit as st

from dashboard import data
from dashboard.ui import View, md_text, pct

SHOWN_FIRST = 5  # messages listed above each alert's table


def render(view: View) -> None:
    alerts = data.alerts(view.url, view.range_name)
    if alerts.empty:
        st.success("No negative-sentiment spikes in this time range.")
        return
    st.subheader(f"{len(alerts)} alert(s), newest first")
    for i, alert in alerts.iterrows():
        title = (
            f"{md_text(alert['severity'].upper())} · {md_text(alert['dimension'])} **{md_text(alert['key'])}** · "
            f"{alert['window_start']:%Y-%m-%d %H:%M:%S} UTC · {pct(alert['negative_ratio'])} negative "
            f"vs threshold {pct(alert['threshold'])} (baseline {pct(alert['baseline'])}), n={alert['n']}"
        )
        with st.expander(title, expanded=bool(i == alerts.index[0])):
            behind = data.alert_messages(
                view.url,
                alert["dimension"],
                alert["key"],
                alert["window_start"].to_pydatetime(),
                alert["window_end"].to_pydatetime(),
            )
            for row in behind.head(SHOWN_FIRST).itertuples():
                st.text(f"{row.p_negative:.2f}  {row.text}  ({row.topic_label}; {row.source or 'unknown source'})")
            st.dataframe(
                behind[["event_time", "text", "sentiment", "p_negative", "topic_label", "tickers", "source"]],
                hide_index=True,
                use_container_width=True,
                column_config={
                    "p_negative": st.column_config.ProgressColumn(
                        "p(negative)", min_value=0, max_value=1, format="%.2f"
                    )
                },
            )
