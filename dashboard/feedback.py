"""The dashboard's only writes: analysts' corrections of a message's labels, for the next training run."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st
from sqlalchemy import insert, select

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
