"""The desk on a real PostgreSQL: every page renders, search runs on the GIN-indexed tsvector (words, phrases,
stems, prefixes, exclusions, hostile text), the ticker page reads message_tickers, heatmaps bucket in SQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import insert, select
from streamlit.testing.v1 import AppTest

from dashboard import data, grid, search
from pipeline import rollups
from pipeline import tables as t
from pipeline.engine import create_store_engine
from pipeline.tooling.dashboard_server import APP
from tests.fixtures.seed_store import seed
from tests.unit.dashboard.test_desk import HOSTILE, heatmaps, layer_data, texts

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture
def pg_store(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    seed(pg_url).close()
    monkeypatch.setenv("FINSENT_STORE_URL", pg_url)
    yield pg_url
    data.engine_for(pg_url).dispose()  # the dashboard's pool, before the fixture drops the database


def page(view: str, **params: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    for key, value in {"view": view, "range": "all", **params}.items():
        at.query_params[key] = value
    return at.run()


@pytest.mark.parametrize("view", ["Overview", "Alerts", "Incidents", "Ticker", "Explore", "Model", "Feedback"])
def test_every_page_renders_on_postgresql(pg_store: str, view: str) -> None:
    at = page(view, ticker="ACME") if view == "Ticker" else page(view)
    assert not at.exception, at.exception
    assert at.title[0].value == view


def test_heatmaps_bucket_in_sql_on_postgresql(pg_store: str) -> None:
    at = page("Overview")
    cells = layer_data(heatmaps(at)["ticker"], 0)
    assert len(cells) == 20 and cells["n"].sum() == 200
    hourly = grid.grid(pg_store, "ticker", "all", 3600)
    assert hourly.groupby("key")["n"].sum().to_dict() == {"ACME": 108, "GLOBEX": 92}, "one column, every message"


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("fraud", 16),
        ('"fraud probe"', 16),
        ('"probe fraud"', 0),
        ("plunging", 16),  # English stemming: plunge
        ("plung*", 16),
        ('"fraud prob*"', 16),
        ("fra*", 16),
        ("fra", 0),
        ("announces -globex", 92),
        ("cut", 0),
        ("the", 0),  # a stop word alone: nothing to look up
    ],
)
def test_search_on_postgresql(pg_store: str, query: str, found: int) -> None:
    result = search.find(pg_store, query, data.Filters(range="all"), 1, 200)
    assert result.total == found == len(result.frame)
    if found:
        assert search.MARK_START in result.frame["marked"].iloc[0], "matches come back marked"


@pytest.mark.parametrize("query", HOSTILE, ids=lambda q: repr(q[:20]))
def test_hostile_searches_on_postgresql_give_results_or_a_sentence(pg_store: str, query: str) -> None:
    at = page("Explore", q=query)
    assert not at.exception, at.exception
    assert at.dataframe or "No message matches" in texts(at) or at.warning, texts(at)
    engine = create_store_engine(pg_store)
    with engine.connect() as conn:
        assert conn.execute(select(t.messages.c.id)).all().__len__() == 200, "nothing dropped"
    engine.dispose()


def test_ticker_page_reads_message_tickers_on_postgresql(pg_store: str) -> None:
    engine = create_store_engine(pg_store)
    with engine.begin() as conn:
        m = t.messages.c
        rows = conn.execute(select(m.id, m.event_time).where(m.tickers == ",GLOBEX,")).all()
        ticker_rows = [
            {"message_id": r.id, "ticker": "GLOBEX", "event_time": r.event_time, "sentiment": "negative"}
            | {"method": "target"}
            for r in rows
        ]
        conn.execute(insert(t.message_tickers), ticker_rows)
        rollups.add_ticker_rows(conn, ticker_rows, rollups.messages_of(conn, ticker_rows, {}))  # as a commit does
    engine.dispose()
    at = page("Ticker", ticker="GLOBEX")
    assert not at.exception, at.exception
    messages = at.dataframe[-1].value
    assert len(messages) == 50 and set(messages["ticker_sentiment"]) == {"negative"}
    topics = next(d.value for d in at.dataframe if "topic_label" in d.value.columns and "messages" in d.value.columns)
    assert topics["negative_share"].tolist() == [1.0], "the company's own labels drive its share"
