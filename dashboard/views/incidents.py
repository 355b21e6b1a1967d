"""Incidents: one story each, open first, with its member alerts; analysts acknowledge and resolve them."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from dashboard import data, identity, timefmt
from dashboard.feedback import TRANSITIONS, set_incident_status
from dashboard.ui import View, current_page, md_text, pager, pct, ticker_link, viewer_zone
from pipeline.tables import as_utc

ACTIONS = {"acknowledged": "Acknowledge", "resolved": "Resolve"}
PAGE_SIZE = 20  # open first, newest first


def t_utc(value: object) -> datetime:
    """A time as the store hands it back (naive UTC from SQLite), aware."""
    return as_utc(pd.Timestamp(value).to_pydatetime())


def actions(url: str, incident_id: str, status: str, who: identity.Identity) -> None:
    moves = TRANSITIONS.get(status, ())
    if not moves:
        return
    note = st.text_input("Note", key=f"note_{incident_id}", max_chars=500)
    typed = "" if who.name else st.text_input("Your name", key=f"who_{incident_id}", max_chars=128)
    for column, move in zip(st.columns(len(moves)), moves, strict=True):
        if column.button(ACTIONS[move], key=f"{move}_{incident_id}"):
            try:
                set_incident_status(
                    url,
                    incident_id,
                    move,
                    analyst=who.name or " ".join(typed.split()),
                    note=note,
                )
                st.success(f"{ACTIONS[move]}d.")
                st.rerun()
            except ValueError as exc:
                st.error(md_text(str(exc)))


def render(view: View) -> None:
    page = current_page()
    frame = data.incidents(view.url, view.range_name, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    counts = data.incident_counts(view.url, view.range_name)
    total = sum(counts.values())
    if frame.empty:
        st.success("No incidents in this time range." if page == 1 else "No more incidents.")
        pager(page, False)
        return
    who = identity.current()
    st.caption(who.describe())
    st.subheader(f"{total} incident(s), {counts.get('open', 0)} open")
    zone = viewer_zone()
    for row in frame.itertuples():
        when = timefmt.human(row.window_start, zone)
        title = (
            f"{str(row.status).upper()} · {md_text(str(row.root_dimension))} **{md_text(str(row.root_key))}** · "
            f"{md_text(when)} {md_text(timefmt.zone_label(zone, row.window_start))} · {row.n_alerts} alert(s)"
        )
        with st.expander(title, expanded=row.status == "open"):
            if row.acknowledged_by:
                st.text(f"{row.status} by {row.acknowledged_by} at {timefmt.human(t_utc(row.updated_at), zone)}")
            if row.note:
                st.text(f"Note: {row.note}")
            members = data.incident_alerts(view.url, str(row.id))
            tickers = members[members["dimension"] == "ticker"]["key"].tolist()
            if tickers:
                st.markdown("Ticker pages: " + " · ".join(ticker_link(k, view.range_name) for k in tickers))
            members["window_start"] = [timefmt.human(t_utc(ts), zone) for ts in members["window_start"]]
            members["negative_ratio"] = members["negative_ratio"].map(pct)
            st.dataframe(members, hide_index=True, width="stretch")
            actions(view.url, str(row.id), str(row.status), who)
    pages = max(1, -(-total // PAGE_SIZE))
    pager(page, page < pages, pages)
