"""FinSent Monitor dashboard: spikes at a glance, the messages behind them, corrections for the next model.

Run with ``finsent dashboard --store URL``. This script is the navigation: it checks the store,
keeps the view and filters in the URL (so a view can be shared), and hands over to one module
per page in ``dashboard/views``. Reads are in ``dashboard/data.py``, writes in
``dashboard/feedback.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from dashboard import data, identity, watchlist
from dashboard.ui import View, analyst_name, choose, md_text, set_param
from dashboard.views import alerts, explore, feedback, incidents, model, overview, ticker
from pipeline.engine import mask_url

DEFAULT_STORE = "sqlite:///finsent.db"
PAGES: dict[str, Callable[[View], None]] = {
    "Overview": overview.render,
    "Alerts": alerts.render,
    "Incidents": incidents.render,
    "Ticker": ticker.render,
    "Explore": explore.render,
    "Model": model.render,
    "Feedback": feedback.render,
}
LIVE = ("Overview", "Alerts")  # pages that refresh themselves

st.set_page_config(page_title="FinSent Monitor", layout="wide")

# ---- who is looking (see dashboard/identity.py) ------------------------------------------------------
analyst = identity.current()
if analyst.source == "login" and analyst.name is None:
    st.title("FinSent Monitor")
    st.info("Sign in with your organisation's identity provider to see the dashboard.")
    st.button("Log in", on_click=st.login, type="primary")
    st.stop()

# ---- store ---------------------------------------------------------------------------------------
store_url = os.environ.get("FINSENT_STORE_URL", DEFAULT_STORE)
st.sidebar.title("FinSent Monitor")
try:
    ready = data.has_schema(store_url)
except (SQLAlchemyError, ValueError, RuntimeError) as exc:
    st.error(f"The store at {md_text(mask_url(store_url))} cannot be reached: {md_text(str(exc).splitlines()[0])}")
    st.info("Check FINSENT_STORE_URL / --store, and that the database is running.")
    st.stop()
if not ready:
    st.info(
        "The store is empty: no daemon has written to it yet. Start one with `finsent run --store …`, "
        "or try everything at once with `finsent demo`."
    )
    st.stop()

# ---- navigation and filters (all in the URL) ----------------------------------------------------------
page = choose("View", list(PAGES), "view", "Overview", allow_none=False) or "Overview"
if st.session_state.get("last_view", page) != page:  # another page: its own paging and chart
    for stale in ("page", "focus"):
        set_param(stale, None)
st.session_state["last_view"] = page
range_name = choose("Time range", list(data.RANGES), "range", "1h", allow_none=False) or "1h"
name = analyst_name(analyst)
try:
    view = View(store_url, range_name, data.options(store_url), name, tuple(watchlist.tickers(store_url, name)))
except SQLAlchemyError as exc:
    st.error(f"The store stopped answering: {md_text(str(exc).splitlines()[0])}")
    st.stop()


def watchlist_panel() -> None:
    """The analyst's tickers, edited in the sidebar; they lead the Overview and the ticker selectors."""
    with st.sidebar.expander(f"Your watchlist ({len(view.watched)})", expanded=False):
        if not view.analyst:
            st.caption("Sign in, or type your name above, to keep a watchlist.")
        elif not watchlist.available(view.url):
            st.caption("This store has no watchlists table yet: a daemon of this release adds it when it starts.")
        else:
            chosen = st.multiselect(
                "Tickers you follow",
                watchlist.leading(list(view.watched), view.options["ticker"]),
                default=list(view.watched),
                key="w_watchlist",
                max_selections=watchlist.MAX_TICKERS,
            )
            if st.button("Save watchlist", key="save_watchlist"):
                watchlist.save(view.url, view.analyst, chosen)
                st.rerun()


watchlist_panel()
st.sidebar.caption(f"Store: {md_text(mask_url(store_url))} · refreshes every {data.REFRESH_S}s")
st.sidebar.caption(md_text(analyst.describe()))
if analyst.source == "login":
    st.sidebar.button("Log out", on_click=st.logout)


@st.fragment(run_every=data.REFRESH_S)
def live() -> None:
    try:
        PAGES[page](view)
    except SQLAlchemyError as exc:
        st.warning(f"The store did not answer this refresh ({md_text(str(exc).splitlines()[0])}); retrying.")


st.title(page)
if page in LIVE:
    live()
else:
    PAGES[page](view)
