"""Feedback: analysts correct labels; the corrections download as training rows.

The analyst's name comes from the sign-in (``dashboard/identity.py``); only where there is none,
the loopback-only local demo, is it typed in.
"""

from __future__ import annotations

import streamlit as st

from dashboard import data, identity
from dashboard.feedback import add_correction
from dashboard.ui import View, md_text
from models.contract import SENTIMENT_LABELS, TOPIC_LABELS

UNCHANGED = "(unchanged)"
CANDIDATES = 300  # recent messages offered for correction


def correction_form(url: str, message_ids: list[str], who: identity.Identity) -> None:
    st.subheader("Correct a label")
    st.caption(md_text(who.describe()))
    with st.form("feedback", clear_on_submit=True):
        message_id = st.selectbox("Message id", message_ids, key="fb_message")
        sentiment = st.selectbox("Correct sentiment", [UNCHANGED, *SENTIMENT_LABELS], key="fb_sentiment")
        topic = st.selectbox("Correct topic", [UNCHANGED, *TOPIC_LABELS], key="fb_topic")
        typed = "" if who.name else st.text_input("Your name", key="fb_analyst", max_chars=identity.MAX_NAME_CHARS)
        if st.form_submit_button("Save correction"):
            try:
                add_correction(
                    url,
                    message_id,
                    analyst=who.name or " ".join(typed.split()),
                    sentiment=None if sentiment == UNCHANGED else sentiment,
                    topic=None if topic == UNCHANGED else topic,
                )
                st.success(f"Saved: {md_text(message_id)}")
            except ValueError as exc:
                st.error(md_text(exc))


def render(view: View) -> None:
    frame = data.messages(view.url, data.Filters(range=view.range_name), CANDIDATES)
    if frame.empty:
        st.info("No messages in this time range to correct.")
    else:
        correction_form(view.url, frame["id"].tolist(), identity.current())
    saved = data.feedback(view.url)
    st.subheader(f"{len(saved)} correction(s)")
    st.dataframe(saved, hide_index=True, width="stretch")
    st.download_button(
        "Download for retraining (finsent train --extra-data)",
        data.feedback_training_csv(view.url),
        file_name="finsent-feedback.csv",
        mime="text/csv",
        disabled=saved.empty,
    )
