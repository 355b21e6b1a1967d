"""The dashboard script under Streamlit's AppTest, on a seeded SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import data
from pipeline.tooling.dashboard_server import APP
from tests.fixtures.seed_store import seed

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'seeded.db'}"
    seed(url).close()
    monkeypatch.setenv("FINSENT_STORE_URL", url)
    return url


def app(view: str, **params: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.query_params["view"] = view
    at.query_params["range"] = "all"
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


@pytest.mark.parametrize("view", ["Overview", "Alerts", "Incidents", "Ticker", "Explore", "Model", "Feedback"])
def test_every_view_renders(store_url: str, view: str) -> None:
    at = app(view)
    assert not at.exception, at.exception
    assert at.title[0].value == view


def test_overview_shows_kpis(store_url: str) -> None:
    at = app("Overview")
    labels = {m.label: m.value for m in at.metric}
    assert labels["Alerts"] == "4"  # the burst trips ticker ACME, its topic, "all" and its source
    assert labels["Model"] == "seed-v1"


def test_alert_lists_the_messages_behind_it(store_url: str) -> None:
    at = app("Alerts")
    assert "ticker **ACME**" in at.expander[0].label and "CRITICAL" in at.expander[0].label
    frame = at.expander[0].dataframe[0].value
    assert len(frame) == 18  # every ACME message of that window, the most negative first
    assert (
        frame["text"].head(16).str.contains("plunge").all() and not frame["text"].tail(2).str.contains("plunge").any()
    )


def test_filters_and_pages_change_what_is_shown(store_url: str) -> None:
    pages = [app("Explore", page=str(n)).dataframe[0].value for n in (1, 2, 3, 4)]
    negative = app("Explore", sentiment="negative").dataframe[0].value
    searched = app("Explore", q="fraud").dataframe[0].value
    globex = app("Explore", ticker="GLOBEX").dataframe[0].value
    assert [len(page) for page in pages] == [50, 50, 50, 50], "200 messages, 50 a page"
    assert len(set().union(*(set(page["id"]) for page in pages))) == 200, "pages do not overlap"
    assert (
        pages[0]["event_time"].is_monotonic_decreasing and pages[0]["event_time"].min() > pages[1]["event_time"].max()
    )
    assert len(negative) == 20 and (negative["sentiment"] == "negative").all()
    assert len(searched) == 16
    assert len(globex) > 0 and globex["tickers"].eq("GLOBEX").all()


def test_feedback_correction_lands_in_the_table(store_url: str) -> None:
    at = app("Feedback")
    at.selectbox(key="fb_message").set_value("msg-8-0")
    at.selectbox(key="fb_sentiment").set_value("neutral")
    at.text_input(key="fb_analyst").input("dana")
    at.button[0].click().run()
    assert not at.exception
    saved = data.feedback(store_url)
    assert saved[["message_id", "sentiment", "analyst", "model_sentiment"]].values.tolist() == [
        ["msg-8-0", "neutral", "dana", "negative"]
    ]
    csv = data.feedback_training_csv(store_url)
    assert csv.splitlines()[0] == '"text","sentiment","topic"' and "neutral" in csv


def test_unreachable_and_empty_stores_get_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINSENT_STORE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception and "store is empty" in at.info[0].value
    monkeypatch.setenv("FINSENT_STORE_URL", "postgresql://nobody@127.0.0.1:1/none")
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception and "cannot be reached" in at.error[0].value


def test_an_analyst_acknowledges_then_resolves_an_incident(store_url: str) -> None:
    before = data.incidents(store_url, "all")
    assert before["status"].tolist() == ["open"], "the seeded ACME burst is one open incident"
    incident = before["id"].iloc[0]
    at = app("Incidents")
    at.text_input(key=f"note_{incident}").input("looking into it")
    at.text_input(key=f"who_{incident}").input("dana")
    at.button(key=f"acknowledged_{incident}").click().run()
    assert not at.exception, at.exception
    row = data.incidents(store_url, "all").iloc[0]
    assert (row["status"], row["acknowledged_by"], row["note"]) == ("acknowledged", "dana", "looking into it")
    at = app("Incidents")
    assert not [b for b in at.button if b.key == f"acknowledged_{incident}"], "acknowledged once: only Resolve left"
    at.text_input(key=f"who_{incident}").input("dana")
    at.button(key=f"resolved_{incident}").click().run()
    assert data.incidents(store_url, "all").iloc[0]["status"] == "resolved"
