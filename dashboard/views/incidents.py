"""Incidents: one story each, open first, with its member alerts; analysts acknowledge and resolve them."""

from __future__ import annotations

import streamlit as st

from dashboard import data, identity
from dashboard.feedback import TRANSITIONS, set_incident_status
from dashboard.ui import View, md_text, pct

ACTIONS = {"acknowledged": "Acknowledge", "resolved": "Resolve"}


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
    frame = data.incidents(view.url, view.range_name)
    if frame.empty:
        st.success("No incidents in this time range.")
        return
    who = identity.current()
    st.caption(who.describe())
    open_count = int((frame["status"] == "open").sum())
    st.subheader(f"{len(frame)} incident(s), {open_count} open")
    for row in frame.itertuples():
        title = (
            f"{str(row.status).upper()} · {md_text(str(row.root_dimension))} **{md_text(str(row.root_key))}** · "
            f"{row.window_start:%Y-%m-%d %H:%M:%S} UTC · {row.n_alerts} alert(s)"
        )
        with st.expander(title, expanded=row.status == "open"):
            if row.acknowledged_by:
                st.text(f"{row.status} by {row.acknowledged_by} at {row.updated_at:%Y-%m-%d %H:%M:%S}")
            if row.note:
                st.text(f"Note: {row.note}")
            members = data.incident_alerts(view.url, str(row.id))
            members["negative_ratio"] = members["negative_ratio"].map(pct)
            st.dataframe(members, hide_index=True, use_container_width=True)
            actions(view.url, str(row.id), str(row.status), who)
