"""What a person sees and does on the dashboard, in Selenium terms: read the page, find a card, type, click.

Streamlit re-renders after every interaction, so a found element may go stale: lookups and actions are
retried inside the caller's bounded wait (``tests.helpers.wait_until``, with ``attempt``) rather than
trusted once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from selenium.common.exceptions import (
    ElementNotInteractableException,
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement


@dataclass(frozen=True)
class Dashboard:
    """A running dashboard: where the browser goes (``url``) and the store it reads (``store_url``)."""

    url: str
    store_url: str


def page_text(driver: WebDriver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def chart_texts(driver: WebDriver) -> list[str]:
    """Every piece of text drawn inside the page's Vega charts (titles, axes, legends, labels)."""
    try:
        drawn = driver.find_elements(By.CSS_SELECTOR, ".vega-embed svg text")
        return [el.get_attribute("textContent") or "" for el in drawn]
    except StaleElementReferenceException:
        return []


def card(driver: WebDriver, title_starts: str) -> WebElement | None:
    """The expander whose title starts with ``title_starts``, opened; ``None`` while it is not on the page."""
    try:
        for expander in driver.find_elements(By.CSS_SELECTOR, "[data-testid='stExpander']"):
            summary = expander.find_element(By.TAG_NAME, "summary")
            title = summary.find_element(By.CSS_SELECTOR, "[data-testid='stMarkdownContainer']").text
            if title.startswith(title_starts):
                if expander.find_element(By.TAG_NAME, "details").get_attribute("open") is None:
                    summary.click()
                return expander
    except StaleElementReferenceException:
        pass
    return None


def card_now(driver: WebDriver, title_starts: str) -> WebElement:
    """``card``, for use inside ``attempt``: not there (yet) raises, so the attempt is retried."""
    found = card(driver, title_starts)
    if found is None:
        raise NoSuchElementException(f"no card titled {title_starts!r} on the page")
    return found


def type_into(container: WebElement, label: str, text: str) -> None:
    """Replace what the text box labelled ``label`` holds with ``text``, as a person would."""
    box = container.find_element(By.CSS_SELECTOR, f"input[aria-label='{label}']")
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    box.send_keys(text)


def buttons(driver: WebDriver, title_starts: str) -> list[str] | None:
    """The labels of the buttons a person sees on a card; ``None`` while the card is not (fully) there."""
    try:
        found = card(driver, title_starts)
        return None if found is None else [b.text for b in found.find_elements(By.TAG_NAME, "button") if b.text]
    except StaleElementReferenceException:
        return None


def click_button(container: WebElement, label: str) -> None:
    container.find_element(By.XPATH, f".//button[normalize-space(.)='{label}']").click()


def attempt(action: Callable[[], None]) -> bool:
    """Run ``action``; ``False`` if the element it needed was re-rendered away or not there yet (try again)."""
    try:
        action()
    except (StaleElementReferenceException, NoSuchElementException, ElementNotInteractableException):
        return False
    return True
