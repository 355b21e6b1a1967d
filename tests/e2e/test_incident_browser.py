"""An analyst in headless Chromium takes an incident from open to acknowledged to resolved; the store agrees.

The browser only types and clicks; what happened is read back from the store itself (SQLAlchemy on its
URL), so the test fails if a button does nothing, a note is lost or the wrong name is recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.remote.webdriver import WebDriver
from sqlalchemy import Engine, select

from pipeline import tables as t
from pipeline.engine import create_store_engine
from tests.e2e.pages import Dashboard, attempt, buttons, card, card_now, chart_texts, click_button, page_text, type_into
from tests.helpers import ROOT, wait_until

pytestmark = pytest.mark.e2e
ARTIFACTS = ROOT / "test-artifacts"
ANALYST = "Dana Okafor"
ACK_NOTE = "Desk confirms the fraud-probe story; watching ACME"
RESOLVE_NOTE = "Probe denied by the company; ratio back to baseline"


@pytest.fixture
def store(dashboard: Dashboard) -> Iterator[Engine]:
    engine = create_store_engine(dashboard.store_url)
    yield engine
    engine.dispose()


def incident_row(store: Engine, incident_id: str) -> Any:
    i = t.incidents.c
    with store.connect() as conn:
        return conn.execute(select(i.status, i.note, i.acknowledged_by).where(i.id == incident_id)).one()


def the_open_incident(store: Engine) -> str:
    i = t.incidents.c
    with store.connect() as conn:
        rows = conn.execute(select(i.id, i.status, i.root_key)).all()
    assert [(r.status, r.root_key) for r in rows] == [("open", "ACME")], "the seed holds one open ACME incident"
    return str(rows[0].id)


def wait_for_overview_marks(browser: WebDriver, dashboard: Dashboard, label: str) -> None:
    """Open the Overview and wait until its three heatmaps draw ``label`` on their time axis: tickers (the
    incident's root, ACME), topics (its member alert on "Stock Movement") and sources (on "wire")."""
    browser.get(f"{dashboard.url}/?view=Overview&range=all")
    wait_until(
        lambda: chart_texts(browser).count(label) == 3,
        60,
        f"the three Overview heatmaps to mark the incident as {label!r}",
    )


def test_analyst_acknowledges_then_resolves_an_incident(
    dashboard: Dashboard, browser: WebDriver, store: Engine
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    incident = the_open_incident(store)
    wait_for_overview_marks(browser, dashboard, "INC ACME · open")

    browser.get(f"{dashboard.url}/?view=Incidents&range=all")
    wait_until(
        lambda: buttons(browser, "OPEN · ticker ACME") == ["Acknowledge", "Resolve"],
        60,
        "the open ACME incident's card, with its two actions",
    )
    assert incident_row(store, incident).status == "open", "nothing is written before the analyst acts"

    def acknowledge() -> None:
        found = card_now(browser, "OPEN · ticker ACME")
        type_into(found, "Note", ACK_NOTE)
        type_into(found, "Your name", ANALYST)
        click_button(found, "Acknowledge")

    wait_until(lambda: attempt(acknowledge), 30, "the note, the name and a click on Acknowledge")
    row = wait_until(
        lambda: (r := incident_row(store, incident)).status == "acknowledged" and r,
        30,
        "the store to record the acknowledgement",
    )
    assert (row.note, row.acknowledged_by) == (ACK_NOTE, ANALYST)

    acked = wait_until(lambda: card(browser, "ACKNOWLEDGED · ticker ACME"), 30, "the card to show its new status")
    wait_until(lambda: f"Note: {ACK_NOTE}" in acked.text, 30, "the note to show on the card")
    wait_until(
        lambda: buttons(browser, "ACKNOWLEDGED · ticker ACME") == ["Resolve"],
        30,
        "an acknowledged incident to offer Resolve, and only Resolve",
    )
    browser.save_screenshot(str(ARTIFACTS / "dashboard-incident-acknowledged.png"))

    def resolve() -> None:
        found = card_now(browser, "ACKNOWLEDGED · ticker ACME")
        type_into(found, "Note", RESOLVE_NOTE)
        type_into(found, "Your name", ANALYST)
        click_button(found, "Resolve")

    wait_until(lambda: attempt(resolve), 30, "a new note and a click on Resolve")
    row = wait_until(
        lambda: (r := incident_row(store, incident)).status == "resolved" and r,
        30,
        "the store to record the resolution",
    )
    assert (row.note, row.acknowledged_by) == (RESOLVE_NOTE, ANALYST)
    resolved = wait_until(lambda: card(browser, "RESOLVED · ticker ACME"), 30, "the card to show it resolved")
    wait_until(lambda: f"Note: {RESOLVE_NOTE}" in resolved.text, 30, "the new note to show on the card")
    assert buttons(browser, "RESOLVED · ticker ACME") == [], "a resolved incident is closed"
    assert "0 open" in page_text(browser)

    wait_for_overview_marks(browser, dashboard, "INC ACME · resolved")
    browser.save_screenshot(str(ARTIFACTS / "dashboard-overview-incident.png"))
