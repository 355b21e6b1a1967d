"""The dashboard in headless Chromium: a person sees the spike and its alert."""

from __future__ import annotations

import pytest

from tests.e2e.pages import page_text
from tests.helpers import ROOT, wait_until

pytestmark = pytest.mark.e2e
ARTIFACTS = ROOT / "test-artifacts"


def test_analyst_sees_the_spike_and_its_alert(dashboard_url: str, browser: object) -> None:
    from selenium.webdriver.common.by import By

    ARTIFACTS.mkdir(exist_ok=True)
    browser.get(f"{dashboard_url}/?view=Overview&range=all")  # type: ignore[attr-defined]
    wait_until(lambda: "Negative share" in page_text(browser), 60, "the overview KPIs to render")
    wait_until(
        lambda: len(browser.find_elements(By.CSS_SELECTOR, ".vega-embed svg")) >= 3,  # type: ignore[attr-defined]
        60,
        "the heatmaps of tickers, topics and sources to draw",
    )
    browser.save_screenshot(str(ARTIFACTS / "dashboard-overview.png"))  # type: ignore[attr-defined]

    browser.get(f"{dashboard_url}/?view=Alerts&range=all")  # type: ignore[attr-defined]

    def alert_text() -> str:
        text = page_text(browser)
        return text if "ACME" in text and "CRITICAL" in text and "plunge" in text else ""

    text = wait_until(alert_text, 60, "the ACME alert and its messages to be listed")
    assert "alert(s), newest first" in text
    assert "ACME shares plunge" in text, "the messages behind the spike are shown"
    browser.save_screenshot(str(ARTIFACTS / "dashboard-alerts.png"))  # type: ignore[attr-defined]
