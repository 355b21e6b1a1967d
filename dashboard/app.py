"""FinSent Monitor dashboard: spikes at a glance, the messages behind them, corrections for the next model.

Run with ``finsent dashboard --store URL``. The view and filters live in the URL, so a view can be
shared; the live parts refresh themselves without losing them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from dashboard import charts, queries
from models.contract import SENTIMENT_LABELS, TOPIC_LABELS
from pipeline.config import mask_url

VIEWS = ("Overview", "Alerts", "Explore", "Model", "Feedback")
DEFAULT_STORE = "sqlite:///finsent.db"
REFRESH_S = int(os.environ.get("FINSENT_DASHBOARD_REFRESH_S", "10"))

st.set_page_config(page_title="FinSent Monitor", layout="wide")


@st.cache_resource
def engine_for(url: str) -> Engine:
    return queries.connect(url)


@st.cache_data(ttl=REFRESH_S, show_spinner=False)
def cached_query(url: str, query: str, *args: Any, **kwargs: Any) -> Any:
    """A read query of ``dashboard.queries`` on the store at ``url``, cached for one refresh interval."""
    return getattr(queries, query)(engine_for(url), *args, **kwargs)


def cached(query: str, *args: Any, **kwargs: Any) -> Any:
    return cached_query(store_url, query, *args, **kwargs)


def param(name: str, default: str | None = None) -> str | None:
    value = st.query_params.get(name)
    return value if value else default


def set_param(name: str, value: str | None) -> None:
    if value:
        st.query_params[name] = value
    elif name in st.query_params:
        del st.query_params[name]


def choose(label: str, options: list[str], key: str, default: str | None = None, allow_none: bool = True) -> str | None:
    """A select box whose value is kept in the URL under ``key``."""
    choices = (["(all)"] if allow_none else []) + options
    current = param(key, default)
    index = choices.index(current) if current in choices else 0
    value = st.sidebar.selectbox(label, choices, index=index, key=f"w_{key}")
    chosen = None if value == "(all)" else value
    set_param(key, chosen)
    return chosen


def pct(x: float) -> str:
    return f"{x:.0%}"


# ---- store ---------------------------------------------------------------------------------------
store_url = os.environ.get("FINSENT_STORE_URL", DEFAULT_STORE)
st.sidebar.title("FinSent Monitor")
try:
    engine = engine_for(store_url)
    ready = queries.has_schema(engine)
except (SQLAlchemyError, ValueError, RuntimeError) as exc:
    st.error(f"The store at {mask_url(store_url)} cannot be reached: {str(exc).splitlines()[0]}")
    st.info("Check FINSENT_STORE_URL / --store, and that the database is running.")
    st.stop()
if not ready:
    st.info(
        "The store is empty: no daemon has written to it yet. Start one with `finsent run --store …`, "
        "or try everything at once with `finsent demo`."
    )
    st.stop()

# ---- navigation and filters (all in the URL) ----------------------------------------------------------
view = choose("View", list(VIEWS), "view", "Overview", allow_none=False) or "Overview"
range_name = choose("Time range", list(queries.RANGES), "range", "1h", allow_none=False) or "1h"
try:
    opts = cached("options")
except SQLAlchemyError as exc:
    st.error(f"The store stopped answering: {str(exc).splitlines()[0]}")
    st.stop()
st.sidebar.caption(f"Store: `{mask_url(store_url)}` · refreshes every {REFRESH_S}s")


def overview() -> None:
    k = cached("kpis", range_name)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Messages / minute", f"{k['per_minute']:.0f}", help=f"{k['messages']} messages in range")
    c2.metric("Negative share", pct(float(k["negative_share"])))  # type: ignore[arg-type]
    c3.metric("Alerts", str(k["alerts"]))
    c4.metric("Model", str(k["model_version"]))
    alerts = cached("alerts", range_name)
    for dimension, label in (("topic", "topic"), ("ticker", "ticker")):
        keys = cached("top_keys", dimension, range_name)
        flagged = alerts[alerts["dimension"] == dimension]["key"].unique().tolist()
        keys = list(dict.fromkeys(flagged + keys))[:8]
        frame = cached("timeline", dimension, keys, range_name)
        if frame.empty:
            st.caption(f"No {label} windows in this range yet.")
            continue
        left, right = st.columns([3, 2])
        spikes = alerts[alerts["dimension"] == dimension]
        left.altair_chart(
            charts.ratio_timeline(frame, spikes, f"Negative ratio per {label} (dashed: spike threshold)"),
            use_container_width=True,
        )
        right.altair_chart(charts.volume_bars(frame, f"Volume per {label}"), use_container_width=True)


def alerts_view() -> None:
    alerts = cached("alerts", range_name)
    if alerts.empty:
        st.success("No negative-sentiment spikes in this time range.")
        return
    st.subheader(f"{len(alerts)} alert(s), newest first")
    for _, alert in alerts.iterrows():
        title = (
            f"{alert['severity'].upper()} · {alert['dimension']} **{alert['key']}** · "
            f"{alert['window_start']:%Y-%m-%d %H:%M:%S} UTC · {pct(alert['negative_ratio'])} negative "
            f"vs threshold {pct(alert['threshold'])} (baseline {pct(alert['baseline'])}), n={alert['n']}"
        )
        with st.expander(title, expanded=bool(_ == alerts.index[0])):
            behind = cached(
                "alert_messages",
                alert["dimension"],
                alert["key"],
                alert["window_start"].to_pydatetime(),
                alert["window_end"].to_pydatetime(),
            )
            st.markdown(
                "\n".join(
                    f"- **{row.p_negative:.2f}** {row.text} _({row.topic_label}; {row.source or 'unknown source'})_"
                    for row in behind.head(5).itertuples()
                )
            )
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


@st.fragment(run_every=REFRESH_S)
def live() -> None:
    try:
        if view == "Overview":
            overview()
        else:
            alerts_view()
    except SQLAlchemyError as exc:
        st.warning(f"The store did not answer this refresh ({str(exc).splitlines()[0]}); retrying.")


def explore() -> queries.Filters:
    filters = queries.Filters(
        range=range_name,
        topic=choose("Topic", opts["topic"], "topic"),
        ticker=choose("Ticker", opts["ticker"], "ticker"),
        source=choose("Source", opts["source"], "source"),
        sentiment=choose("Sentiment", list(SENTIMENT_LABELS), "sentiment"),
        search=st.sidebar.text_input("Search text", value=param("q", "") or "", key="w_q") or None,
    )
    set_param("q", filters.search)
    frame = cached("messages", filters)
    st.subheader(f"{len(frame)} message(s)" + (" (newest 500)" if len(frame) == 500 else ""))
    st.dataframe(
        frame,
        hide_index=True,
        use_container_width=True,
        key="messages_table",
        column_config={
            c: st.column_config.NumberColumn(format="%.2f")
            for c in ("p_negative", "p_neutral", "p_positive", "p_topic")
        },
    )
    return filters


def correction_form(frame_ids: list[str]) -> None:
    st.subheader("Correct a label")
    with st.form("feedback", clear_on_submit=True):
        message_id = st.selectbox("Message id", frame_ids, key="fb_message")
        sentiment = st.selectbox("Correct sentiment", ["(unchanged)", *SENTIMENT_LABELS], key="fb_sentiment")
        topic = st.selectbox("Correct topic", ["(unchanged)", *TOPIC_LABELS], key="fb_topic")
        analyst = st.text_input("Your name", key="fb_analyst")
        if st.form_submit_button("Save correction"):
            try:
                queries.add_feedback(
                    engine,
                    message_id,
                    analyst=analyst,
                    sentiment=None if sentiment == "(unchanged)" else sentiment,
                    topic=None if topic == "(unchanged)" else topic,
                )
                st.cache_data.clear()
                st.success(f"Saved: {message_id}")
            except ValueError as exc:
                st.error(str(exc))


def feedback_view() -> None:
    frame = cached("messages", queries.Filters(range=range_name), limit=300)
    if frame.empty:
        st.info("No messages in this time range to correct.")
    else:
        correction_form(frame["id"].tolist())
    saved = queries.feedback(engine)
    st.subheader(f"{len(saved)} correction(s)")
    st.dataframe(saved, hide_index=True, use_container_width=True)
    st.download_button(
        "Download for retraining (finsent train --extra-data)",
        queries.feedback_training_csv(engine),
        file_name="finsent-feedback.csv",
        mime="text/csv",
        disabled=saved.empty,
    )


def model_view() -> None:
    from models.card import SHIPPED_MODEL_DIR, card_path

    folder = Path(os.environ.get("FINSENT_MODEL_DIR", SHIPPED_MODEL_DIR))
    path = card_path(folder)
    if not path.is_file():
        st.warning(f"No model card at {path}.")
        return
    card = json.loads(path.read_text())
    st.subheader(f"{card['version']} · {card['precision']} · base {Path(card.get('base_model', '')).name or '?'}")
    rows = []
    metrics = card.get("metrics", {})
    for task in ("sentiment", "topic"):
        for variant in ("test", "test_dedup"):
            m = metrics.get(task, {}).get(variant)
            if m:
                rows.append(
                    {
                        "task": task,
                        "test set": variant,
                        "n": m["n"],
                        "accuracy": m["accuracy"],
                        "macro-F1": m["macro_f1"],
                        "ECE": m["ece"],
                    }
                )
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    fp32 = metrics.get("fp32_reference")
    if fp32:
        st.caption(
            f"fp32 graph of the same checkpoint: sentiment accuracy {fp32['sentiment']['accuracy']:.4f}, "
            f"topic accuracy {fp32['topic']['accuracy']:.4f}"
        )
    images = sorted(path.parent.glob("confusion_*.png"))
    for column, image in zip(st.columns(max(1, len(images))), images, strict=False):
        column.image(str(image), caption=image.stem.replace("_", " "))
    with st.expander("Card (JSON)"):
        st.json(card)


st.title(f"{view}")
if view in ("Overview", "Alerts"):
    live()
elif view == "Explore":
    explore()
elif view == "Feedback":
    feedback_view()
else:
    model_view()
