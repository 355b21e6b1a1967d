"""The dashboard's only writes: analysts' corrections of a message's labels, for the next training run."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st
from sqlalchemy import insert, select, update

from dashboard.data import engine_for
from pipeline import tables as t


def add_correction(url: str, message_id: str, *, sentiment: str | None, topic: str | None, analyst: str) -> None:
    """Record an analyst's correction of one message (its text is kept: messages are pruned)."""
    if not (sentiment or topic):
        raise ValueError("a correction needs a sentiment or a topic")
    m = t.messages.c
    with engine_for(url).begin() as conn:
        row = conn.execute(select(m.text, m.sentiment, m.topic_label).where(m.id == message_id)).one_or_none()
        if row is None:
            raise ValueError(f"message {message_id} is not in the store (it may have been pruned)")
        conn.execute(
            insert(t.feedback).values(
                message_id=message_id,
                text=row.text,
                model_sentiment=row.sentiment,
                model_topic=row.topic_label,
                sentiment=sentiment,
                topic=topic,
                analyst=analyst or "anonymous",
                created_at=datetime.now(UTC),
            )
        )
    st.cache_data.clear()  # the next read shows it


# the moves an analyst may make; the daemon opens incidents and never reopens a resolved one
TRANSITIONS = {"open": ("acknowledged", "resolved"), "acknowledged": ("resolved",), "resolved": ()}


def set_incident_status(url: str, incident_id: str, status: str, *, analyst: str, note: str | None) -> None:
    """Acknowledge or resolve an incident: who, when and an optional note are recorded."""
    i = t.incidents.c
    with engine_for(url).begin() as conn:
        current = conn.execute(select(i.status).where(i.id == incident_id)).scalar_one_or_none()
        if current is None:
            raise ValueError(f"incident {incident_id} is not in the store")
        if status not in TRANSITIONS.get(current, ()):
            raise ValueError(f"an {current} incident cannot become {status}")
        conn.execute(
            update(t.incidents)
            .where(i.id == incident_id, i.status == current)
            .values(
                status=status,
                acknowledged_by=(analyst or "anonymous")[:128],
                note=(note or None),
                updated_at=datetime.now(UTC),
            )
        )
    st.cache_data.clear()
