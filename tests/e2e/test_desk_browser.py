"""The analyst's desk in headless Chromium: the Overview's heatmaps and a click that opens a row's chart, a ticker
page by URL and by a link, a search that finds a known message and survives hostile ones, a watchlist that is
still there after a reload. What the clicks wrote is read back from the store."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, quote, urlparse

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from sqlalchemy import Engine, select

from pipeline import tables as t
from pipeline.engine import create_store_engine
from tests.e2e.pages import Dashboard, attempt, chart_texts, page_text, type_into
from tests.helpers import ROOT, wait_until

pytestmark = pytest.mark.e2e
ARTIFACTS = ROOT / "test-artifacts"
HEATMAP_TITLE = "negative ratio per ticker and window (outlined: alerts; dashed: incidents)"


@pytest.fixture
def store(dashboard: Dashboard) -> Iterator[Engine]:
    engine = create_store_engine(dashboard.store_url)
    yield engine
    engine.dispose()


def no_error_box(driver: WebDriver) -> bool:
    return not driver.find_elements(By.CSS_SELECTOR, "[data-testid='stException']")


def heatmap_cells(driver: WebDriver) -> list[WebElement]:
    """The cells of the ticker heatmap: the paths of its first rect mark (none while it is not drawn)."""
    try:
        for embed in driver.find_elements(By.CSS_SELECTOR, ".vega-embed"):
            if HEATMAP_TITLE in (embed.get_attribute("textContent") or ""):
                return list(embed.find_element(By.CSS_SELECTOR, "g.mark-rect").find_elements(By.TAG_NAME, "path"))
    except (NoSuchElementException, StaleElementReferenceException):
        pass
    return []


def watchlist_rows(store: Engine) -> list[tuple[str, str]]:
    w = t.watchlists.c
    with store.connect() as conn:
        return [tuple(r) for r in conn.execute(select(w.analyst, w.ticker)).all()]


def query(driver: WebDriver) -> dict[str, list[str]]:
    return parse_qs(urlparse(driver.current_url).query)


def test_overview_heatmap_and_a_click_on_a_row_opens_its_chart(dashboard: Dashboard, browser: WebDriver) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    browser.get(f"{dashboard.url}/?view=Overview&range=all")
    wait_until(lambda: HEATMAP_TITLE in chart_texts(browser), 60, "the ticker heatmap to draw")
    texts = chart_texts(browser)
    assert {"ACME", "GLOBEX"} <= set(texts), "its rows are the tickers"
    assert "10:08" in texts and not [x for x in texts if x.startswith(":")], "time labels read like 10:08"
    cells = wait_until(lambda: heatmap_cells(browser), 30, "the heatmap's cells")
    assert len(cells) == 20, "two tickers, ten windows"
    browser.save_screenshot(str(ARTIFACTS / "desk-overview.png"))

    def click_a_cell() -> None:
        ActionChains(browser).move_to_element(heatmap_cells(browser)[-1]).click().perform()

    wait_until(lambda: attempt(click_a_cell) and "focus" in query(browser), 30, "a click on a cell to pick its row")
    dimension, key = query(browser)["focus"][0].split(":")
    assert dimension == "ticker" and key in ("ACME", "GLOBEX")
    wait_until(lambda: f"Chart of ticker {key}" in page_text(browser), 30, f"the chart of {key} to open")
    wait_until(lambda: any(x.startswith(f"{key}: negative ratio") for x in chart_texts(browser)), 30, "its ratio chart")
    browser.save_screenshot(str(ARTIFACTS / "desk-overview-focus.png"))
    assert no_error_box(browser)


def test_ticker_page_by_url_and_by_a_link(dashboard: Dashboard, browser: WebDriver) -> None:
    browser.get(f"{dashboard.url}/?view=Ticker&ticker=ACME&range=all")
    parts = ("Alerts (1)", "Incidents (1)", "What drives it", "Messages, newest first", "Page 1 of 3")
    wait_until(lambda: all(p in page_text(browser) for p in parts), 60, "the ACME page by its URL, all of it")
    wait_until(lambda: any(x.startswith("ACME: negative ratio") for x in chart_texts(browser)), 30, "its chart")
    browser.save_screenshot(str(ARTIFACTS / "desk-ticker.png"))

    browser.get(f"{dashboard.url}/?view=Ticker&ticker=NOSUCH&range=all")
    wait_until(lambda: "No ticker NOSUCH in this store" in page_text(browser), 60, "a sentence for an unknown ticker")
    assert no_error_box(browser)

    browser.get(f"{dashboard.url}/?view=Alerts&range=all")
    link = wait_until(
        lambda: next(iter(browser.find_elements(By.CSS_SELECTOR, "a[href*='view=Ticker'][href*='ticker=ACME']")), None),
        60,
        "a link to ACME's page on the Alerts page",
    )
    before = set(browser.window_handles)
    link.click()
    opened = set(browser.window_handles) - before
    if opened:  # Streamlit opens Markdown links in a new tab
        browser.switch_to.window(opened.pop())
    wait_until(lambda: "Messages, newest first" in page_text(browser), 60, "ACME's page, reached by the link")
    assert query(browser).get("ticker") == ["ACME"]


def test_search_finds_a_known_message_and_a_hostile_query_gets_a_sentence(
    dashboard: Dashboard, browser: WebDriver
) -> None:
    browser.get(f"{dashboard.url}/?view=Explore&range=all")
    wait_until(lambda: "newest first" in page_text(browser), 60, "the Explore page")

    def search(text: str) -> None:
        type_into(browser, "Search text", text)
        browser.find_element(By.CSS_SELECTOR, "input[aria-label='Search text']").send_keys(Keys.ENTER)

    wait_until(lambda: attempt(lambda: search('"fraud probe"')), 30, "typing a phrase into the search box")
    wait_until(lambda: "16 message(s) match" in page_text(browser), 60, "the burst's messages to be found")
    assert "ACME shares plunge 15% after fraud probe" in page_text(browser)
    marked = [el.text for el in browser.find_elements(By.CSS_SELECTOR, "[data-testid='stMarkdownContainer'] strong")]
    assert marked.count("fraud probe") == 16, "every match highlighted (the phrase as one)"
    browser.save_screenshot(str(ARTIFACTS / "desk-search.png"))

    wait_until(lambda: attempt(lambda: search("'; DROP TABLE messages; --")), 30, "typing an SQL fragment")
    wait_until(lambda: "No message matches" in page_text(browser), 60, "a sentence, not an error page")
    wait_until(lambda: attempt(lambda: search('%_" *')), 30, "typing only operators")
    wait_until(lambda: "nothing to search for" in page_text(browser), 60, "a sentence saying why")
    browser.get(f"{dashboard.url}/?view=Explore&range=all&q=" + quote('"' + "x" * 10_000 + " fraud"))
    wait_until(lambda: "first 500 characters" in page_text(browser), 60, "a 10 kB search cut, and said so")
    assert no_error_box(browser)


def test_a_watchlist_is_saved_and_shown_after_a_reload(dashboard: Dashboard, browser: WebDriver, store: Engine) -> None:
    browser.get(f"{dashboard.url}/?view=Ticker&ticker=GLOBEX&range=all")
    wait_until(lambda: "Type your name in the sidebar" in page_text(browser), 60, "the GLOBEX page")

    def name() -> None:
        type_into(browser, "Your name (local demo)", "Dana Okafor")
        browser.find_element(By.CSS_SELECTOR, "input[aria-label='Your name (local demo)']").send_keys(Keys.ENTER)

    wait_until(lambda: attempt(name), 30, "typing a name in the sidebar")
    button = wait_until(
        lambda: next(
            iter(browser.find_elements(By.XPATH, "//button[normalize-space(.)='Add GLOBEX to my watchlist']")), None
        ),
        30,
        "the button to add GLOBEX",
    )
    button.click()
    wait_until(lambda: watchlist_rows(store) == [("Dana Okafor", "GLOBEX")], 30, "the store to hold Dana's watchlist")
    browser.refresh()
    wait_until(lambda: "Remove GLOBEX from my watchlist" in page_text(browser), 60, "the watchlist after a reload")
    assert "Your watchlist (1)" in page_text(browser)
    browser.get(f"{dashboard.url}/?view=Overview&range=all&who=Dana+Okafor")
    wait_until(lambda: "Your watchlist\n" in page_text(browser), 60, "the watchlist leading the Overview")
    wait_until(lambda: "★ GLOBEX" in chart_texts(browser), 30, "GLOBEX starred at the top of the ticker heatmap")
    browser.save_screenshot(str(ARTIFACTS / "desk-watchlist.png"))
