"""The analyst's desk under AppTest on a seeded SQLite store: the Overview's heatmaps and movers, a row's chart,
the ticker page (known, unknown, hostile; its own labels through message_tickers), search, watchlists, links."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import insert, select
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

from dashboard import data
from pipeline import rollups
from pipeline import tables as t
from pipeline.engine import create_store_engine
from tests.unit.dashboard.test_app import app, store_url  # noqa: F401 - the fixture

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def charts(at: AppTest) -> list[dict[str, Any]]:
    """Every Vega-Lite spec on the page, with its datasets as frames under ``_data``."""
    out = []
    for element in at.get("vega_lite_chart"):
        spec = json.loads(element.proto.spec)
        spec["_data"] = {
            d.name: dataframe_util.convert_arrow_bytes_to_pandas_df(d.data.data) for d in element.proto.datasets
        }
        out.append(spec)
    return out


def heatmaps(at: AppTest) -> dict[str, dict[str, Any]]:
    """The Overview's heatmaps by dimension (from their titles)."""
    found = {}
    for spec in charts(at):
        title = spec.get("title", {})
        text = title.get("text", "") if isinstance(title, dict) else str(title)
        for dim in ("ticker", "topic", "source"):
            if f"per {dim} and" in text:
                found[dim] = spec
    return found


def layer_data(spec: dict[str, Any], index: int) -> pd.DataFrame:
    return spec["_data"][spec["layer"][index]["data"]["name"]]


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [str(e.value) for e in at.warning]
    parts += [str(e.value) for e in at.info] + [h.value for h in at.subheader] + [h.value for h in at.header]
    return "\n".join(parts)


# ---- the Overview ---------------------------------------------------------------------------------------------


def test_overview_draws_a_heatmap_per_dimension_with_alerts_outlined(store_url: str) -> None:  # noqa: F811
    at = app("Overview")
    assert not at.exception, at.exception
    maps = heatmaps(at)
    assert set(maps) == {"ticker", "topic", "source"}
    ticker = maps["ticker"]
    marks = [layer["mark"]["type"] for layer in ticker["layer"]]
    assert marks[:2] == ["rect", "rect"] and "rule" in marks and "text" in marks, marks
    assert ticker["params"][0]["name"] == "focus", "a click selects a row"
    cells = layer_data(ticker, 0)
    assert set(cells["key"]) == {"ACME", "GLOBEX"} and len(cells) == 20, "one cell per ticker and window"
    outlined = layer_data(ticker, 1)
    assert outlined[["key", "alerts"]].values.tolist() == [["ACME", 1]], "the burst window of ACME is outlined"
    assert pd.Timestamp(outlined["bucket"].iloc[0]) == pd.Timestamp("2026-01-01T10:08:00Z")
    labels = layer_data(ticker, 3)["label"].tolist()
    assert labels == ["INC ACME · open"], "the incident is marked on the time axis"
    # rows: by how far the latest closed window sits above its baseline (GLOBEX's last window is above, ACME's not)
    assert ticker["layer"][0]["encoding"]["y"]["sort"] == ["GLOBEX", "ACME"]
    axis = ticker["layer"][0]["encoding"]["x"]["axis"]["format"]
    assert axis == "%H:%M", "human time labels, never Vega's ':45'"


def test_overview_movers_rank_by_change_against_the_baseline(store_url: str) -> None:  # noqa: F811
    at = app("Overview")
    movers = at.dataframe[0].value  # the tickers' movers come first, each a link to its page
    assert movers["key"].tolist() == [
        "./?view=Ticker&ticker=ACME&range=all",
        "./?view=Ticker&ticker=GLOBEX&range=all",
    ]
    assert movers["change"].iloc[0].startswith("+") and movers["incident"].iloc[0] == "INC open"
    topics = at.dataframe[1].value
    assert topics["key"].tolist()[0] == "Stock Movement", "the burst's topic moved most"
    assert len(movers["trend"].iloc[0]) == 10, "a sparkline point per window"


def test_a_rows_chart_opens_with_its_threshold_band(store_url: str) -> None:  # noqa: F811
    closed = app("Overview")
    at = app("Overview", focus="ticker:ACME")
    assert not at.exception, at.exception
    assert len(charts(at)) == len(charts(closed)) + 3, "the row's ratio chart, its index and its volume"
    assert "Chart of ticker ACME" in texts(at)
    focus = next(s for s in charts(at) if str(s.get("title", "")).startswith("ACME: negative ratio"))
    band = next(layer for layer in focus["layer"] if layer["mark"]["type"] == "area")
    assert (band["encoding"]["y"]["field"], band["encoding"]["y2"]["field"]) == ("baseline", "threshold")
    series = layer_data(focus, 0)
    assert set(series["key"]) == {"ACME"} and len(series) == 10
    at.button(key="close_ticker").click().run()
    assert "focus" not in at.query_params and len(charts(at)) == len(charts(closed))


def test_a_long_range_is_drawn_in_buckets_with_dates_on_the_axis(store_url: str) -> None:  # noqa: F811
    engine = create_store_engine(store_url)
    with engine.begin() as conn:  # a window two days before the seeded ones: the range spans 2 days
        row = conn.execute(select(t.windows).where(t.windows.c.dimension == "ticker").limit(1)).one()._asdict()
        row.update(window_start=row["window_start"] - pd.Timedelta(days=2), window_end=row["window_end"])
        row["window_end"] = row["window_start"] + pd.Timedelta(minutes=1)
        conn.execute(insert(t.windows), [row])
        start_ms = t.to_ms(row["window_start"])  # and its rollups, as the daemon adds a window's when it closes it
        rollups.add_windows(conn, [(row["dimension"], row["key"], start_ms, row, row["baseline"], row["threshold"])])
    engine.dispose()
    ticker = heatmaps(app("Overview"))["ticker"]
    assert ticker["layer"][0]["encoding"]["x"]["axis"]["format"] == "%b %-d %H:%M"
    cells = layer_data(ticker, 0)
    widths = (pd.to_datetime(cells["bucket_end"]) - pd.to_datetime(cells["bucket"])).unique()
    assert len(widths) == 1 and widths[0] == pd.Timedelta(hours=1), "2 days in at most 96 columns: 1 hour each"
    assert cells["n"].sum() == 200 + row["n"], "every message still counted, in fewer columns"


def test_the_index_kpi_never_reads_minus_zero(store_url: str) -> None:  # noqa: F811
    engine = create_store_engine(store_url)
    with engine.begin() as conn:  # a store whose pooled index is a hair below zero
        conn.execute(t.windows.update().values(sum_index=-0.0001, sum_confidence=1.0))
        conn.execute(t.window_rollups.delete())  # summed again from the changed windows, as an upgrade fills them
        rollups.backfill(conn, ["window_rollups"])
    engine.dispose()
    values = {m.label: m.value for m in app("Overview").metric}
    assert values["Sentiment index"] == "0.00"


# ---- the ticker page ------------------------------------------------------------------------------------------


def test_ticker_page_by_url_shows_its_series_alerts_incidents_and_messages(store_url: str) -> None:  # noqa: F811
    at = app("Ticker", ticker="ACME")
    assert not at.exception, at.exception
    assert at.header[0].value == "ACME"
    values = {m.label: m.value for m in at.metric}
    assert values["Messages"] == "108" and values["Alerts"] == "1"
    alerts, incidents, sources, topics, messages = (d.value for d in at.dataframe)
    assert alerts["severity"].tolist() == ["critical"] and incidents["status"].tolist() == ["open"]
    assert incidents["by"].tolist() == [""], "nobody acknowledged it yet: blank, not None"
    assert incidents["root"].tolist() == ["ticker ACME"]
    assert sources["source"].tolist() == ["wire"]
    assert dict(zip(topics["topic_label"], topics["messages"], strict=True)) == {
        "Company | Product News": 92,
        "Stock Movement": 16,
    }
    assert len(messages) == 50 and messages["tickers"].eq("ACME").all()
    assert messages["when"].iloc[0] == "Jan 1, 10:09:18", "newest first, in the viewer's time"
    assert set(messages["ticker_sentiment"]) == {"—"}, "no per-company label written yet: the message's only"


def test_ticker_page_reads_the_companys_own_labels_when_the_daemon_wrote_them(store_url: str) -> None:  # noqa: F811
    engine = create_store_engine(store_url)
    with engine.begin() as conn:
        m = t.messages.c
        rows = conn.execute(select(m.id, m.event_time).where(m.tickers == ",ACME,")).all()
        conn.execute(  # the newest ACME message reads positive for ACME itself; the rest keep the message's label
            insert(t.message_tickers),
            [
                {"message_id": r.id, "ticker": "ACME", "event_time": r.event_time, "sentiment": s, "method": "m"}
                for r, s in zip(rows, ["positive" if r.id == "msg-9-18" else "neutral" for r in rows], strict=True)
            ],
        )
    engine.dispose()
    at = app("Ticker", ticker="ACME")
    messages = at.dataframe[-1].value
    assert messages.iloc[0][["ticker_sentiment", "sentiment"]].tolist() == ["positive", "neutral"]
    assert "message_tickers" not in texts(at), "no note about missing per-company labels"


@pytest.mark.parametrize(
    "ticker", ["ZZZZ", "nvda;drop", "<script>alert(1)</script>", "[x](https://evil.example)", "A" * 300, "%", ""]
)
def test_an_unknown_or_hostile_ticker_gets_a_sentence(store_url: str, ticker: str) -> None:  # noqa: F811
    at = app("Ticker", ticker=ticker)
    assert not at.exception, at.exception
    said = texts(at)
    assert "in this store: no window or message names it" in said or "Choose a ticker" in said, said
    assert not at.metric and not at.dataframe, "nothing of another ticker, no empty page"
    assert "](https" not in said and "<script>" not in said


def test_tickers_link_to_their_page_everywhere(store_url: str) -> None:  # noqa: F811
    link = "[ACME](./?view=Ticker&ticker=ACME&range=all)"
    assert link in texts(app("Alerts")), "the alert's ticker"
    assert link in texts(app("Incidents")), "the incident's member alert"
    assert link in texts(app("Explore", q="fraud")), "the matched message's ticker"
    explore = app("Explore").dataframe[0].value
    assert set(explore["page"]) == {
        "./?view=Ticker&ticker=ACME&range=all",
        "./?view=Ticker&ticker=GLOBEX&range=all",
    }


# ---- search ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("fraud", 16),
        ('"fraud probe"', 16),
        ('"probe fraud"', 0),
        ("plung*", 16),
        ("fra*", 16),  # a prefix that is no word's stem: found only as a prefix
        ("fra", 0),
        ("shares -fraud", 0),
        ("cut", 0),
    ],
)
def test_search_finds_words_phrases_and_prefixes(store_url: str, query: str, found: int) -> None:  # noqa: F811
    at = app("Explore", q=query)
    assert not at.exception, at.exception
    if found:
        frame = at.dataframe[0].value
        assert len(frame) == found and frame["text"].str.contains("plunge").all()
        assert f"{found} message(s) match" in texts(at)
    else:
        assert not at.dataframe and "No message matches" in texts(at)


def test_search_highlights_matches_and_combines_with_filters(store_url: str) -> None:  # noqa: F811
    at = app("Explore", q="fraud")
    lines = [m.value for m in at.markdown if "plunge" in m.value]
    assert len(lines) == 16 and ":orange-background[**fraud**]" in lines[0]
    assert "after :orange-background" in lines[0], "the text around a match keeps its spaces"
    assert not app("Explore", q="fraud", ticker="GLOBEX").dataframe, "the filters still apply"
    assert len(app("Explore", q="announces", sentiment="negative").dataframe[0].value) == 4


HOSTILE = [
    "'; DROP TABLE messages; --",
    '"',
    '"""',
    "%",
    "_",
    "%_%",
    "*",
    "-",
    "-fraud",
    "fraud OR",
    "NEAR(fraud probe)",
    "fraud AND NOT",
    "a:* & !b | c <-> d",
    "\\",
    "x" * 10_000,
    "fraud " * 2000,
    "\x00 fraud",
]


@pytest.mark.parametrize("query", HOSTILE, ids=lambda q: repr(q[:20]))
def test_hostile_searches_give_results_or_a_sentence(store_url: str, query: str) -> None:  # noqa: F811
    at = app("Explore", q=query)
    assert not at.exception, at.exception
    assert at.dataframe or "No message matches" in texts(at) or at.warning, texts(at)
    assert data.feedback(store_url).empty  # nothing was written, nothing dropped
    assert len(app("Explore", q="fraud").dataframe[0].value) == 16, "the messages are all still there"


# ---- watchlists -----------------------------------------------------------------------------------------------


def test_a_watchlist_is_saved_and_leads_the_overview_and_selectors(store_url: str) -> None:  # noqa: F811
    at = app("Ticker", ticker="GLOBEX", who="dana")
    at.button(key="watch").click().run()
    assert not at.exception, at.exception
    engine = create_store_engine(store_url)
    with engine.connect() as conn:
        saved = conn.execute(select(t.watchlists.c.analyst, t.watchlists.c.ticker)).all()
    engine.dispose()
    assert saved == [("dana", "GLOBEX")]
    overview = app("Overview", who="dana")
    assert "Your watchlist" in texts(overview) and {m.label for m in overview.metric} >= {"GLOBEX"}
    ticker_rows = heatmaps(overview)["ticker"]["layer"][0]["encoding"]["y"]["sort"]
    assert ticker_rows[0] == "★ GLOBEX"
    assert overview.multiselect(key="w_watchlist").value == ["GLOBEX"]
    explore = app("Explore", who="dana")
    assert explore.selectbox(key="w_ticker").options[:2] == ["(all)", "GLOBEX"], "watchlist first"
    assert "Your watchlist" not in texts(app("Overview", who="lee")), "another analyst's list is their own"
    removed = app("Ticker", ticker="GLOBEX", who="dana")
    removed.button(key="unwatch").click().run()
    assert "Your watchlist" not in texts(app("Overview", who="dana"))


def test_the_sidebar_edits_the_watchlist(store_url: str) -> None:  # noqa: F811
    at = app("Overview", who="dana")
    at.multiselect(key="w_watchlist").set_value(["ACME", "GLOBEX"])
    at.button(key="save_watchlist").click().run()
    assert not at.exception, at.exception
    assert at.multiselect(key="w_watchlist").value == ["ACME", "GLOBEX"]
    assert [m.label for m in app("Overview", who="dana").metric][-2:] == ["ACME", "GLOBEX"]


def test_without_a_name_there_is_no_watchlist_to_write(store_url: str) -> None:  # noqa: F811
    at = app("Ticker", ticker="ACME")
    assert not [b for b in at.button if b.key in ("watch", "unwatch")]
    assert "Type your name in the sidebar" in texts(at)
