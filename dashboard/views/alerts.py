"""Alerts: every spike in the range, newest first, with the messages behind it.

Message text is untrusted: it is shown with ``st.text`` and in a data frame, never as Markdown;
the alert's key (a ticker, topic or source taken from messages) is escaped in the title.
"""

from __future__ import annotations

import streamlit as st

from dashboard import data, timefmt
from dashboard.ui import View, current_page, md_text, pager, pct, ticker_links, viewer_zone

SHOWN_FIRST = 5  # messages listed above each alert's table
PAGE_SIZE = 20


def render(view: View) -> None:
    page, zone = current_page(), viewer_zone()
    alerts = data.alerts(view.url, view.range_name, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE)
    has_more, alerts = len(alerts) > PAGE_SIZE, alerts.head(PAGE_SIZE)
    if alerts.empty:
        st.success("No negative-sentiment spikes in this time range." if page == 1 else "No more alerts.")
        pager(page, False)
        return
    total = data.count_alerts(view.url, view.range_name)
    st.subheader(f"{total} alert(s), newest first")
    for i, alert in alerts.iterrows():
        when = timefmt.human(alert["window_start"], zone)
        title = (
            f"{md_text(alert['severity'].upper())} · {md_text(alert['dimension'])} **{md_text(alert['key'])}** · "
            f"{md_text(when)} {md_text(timefmt.zone_label(zone, alert['window_start']))} · "
            f"{pct(alert['negative_ratio'])} negative "
            f"vs threshold {pct(alert['threshold'])} (baseline {pct(alert['baseline'])}), n={alert['n']}"
        )
        with st.expander(title, expanded=bool(i == alerts.index[0]) and page == 1):
            behind = data.alert_messages(
                view.url,
                alert["dimension"],
                alert["key"],
                alert["window_start"].to_pydatetime(),
                alert["window_end"].to_pydatetime(),
            )
            for row in behind.head(SHOWN_FIRST).itertuples():
                st.text(f"{row.p_negative:.2f}  {row.text}  ({row.topic_label}; {row.source or 'unknown source'})")
            named = sorted({k for cell in behind["tickers"] for k in str(cell).split()})
            if alert["dimension"] == "ticker":
                named = [str(alert["key"]), *[k for k in named if k != alert["key"]]]
            if named:
                st.markdown("Ticker pages: " + ticker_links(named, view.range_name))
            st.dataframe(
                behind[["event_time", "text", "sentiment", "p_negative", "topic_label", "tickers", "source"]],
                hide_index=True,
                width="stretch",
                column_config={
                    "p_negative": st.column_config.ProgressColumn(
                        "p(negative)", min_value=0, max_value=1, format="%.2f"
                    )
                },
            )
    pager(page, has_more, max(1, -(-total // PAGE_SIZE)))
