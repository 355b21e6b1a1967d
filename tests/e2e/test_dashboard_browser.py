"""The dashboard in headless Chromium: a person sees the spike and its alert."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.tooling.broker import free_port, wait_for_port
from tests.conftest import missing
from tests.fixtures.seed_store import seed
from tests.helpers import ROOT, wait_until

pytestmark = pytest.mark.e2e
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def dashboard_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'seeded.db'}"
    seed(url).close()
    port = free_port()
    log = (tmp_path / "dashboard.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "dashboard", "--store", url, "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "FINSENT_DASHBOARD_REFRESH_S": "60"},
    )
    try:
        assert wait_for_port("127.0.0.1", port, 60), (tmp_path / "dashboard.log").read_text()
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        missing("Chromium", "install the Debian packages chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1500,1100",
        f"--user-data-dir={tmp_path / 'chrome'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def page_text(driver: object) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text  # type: ignore[attr-defined]


def test_analyst_sees_the_spike_and_its_alert(dashboard_url: str, browser: object) -> None:
    from selenium.webdriver.common.by import By

    ARTIFACTS.mkdir(exist_ok=True)
    browser.get(f"{dashboard_url}/?view=Overview&range=all")  # type: ignore[attr-defined]
    wait_until(lambda: "Negative share" in page_text(browser), 60, "the overview KPIs to render")
    charts = wait_until(
        lambda: browser.find_elements(By.CSS_SELECTOR, "canvas, .vega-embed svg"),  # type: ignore[attr-defined]
        60,
        "the timeline charts to draw",
    )
    assert len(charts) >= 2
    browser.save_screenshot(str(ARTIFACTS / "dashboard-overview.png"))  # type: ignore[attr-defined]

    browser.get(f"{dashboard_url}/?view=Alerts&range=all")  # type: ignore[attr-defined]

    def alert_text() -> str:
        text = page_text(browser)
        return text if "ACME" in text and "CRITICAL" in text and "plunge" in text else ""

    text = wait_until(alert_text, 60, "the ACME alert and its messages to be listed")
    assert "alert(s), newest first" in text
    assert "ACME shares plunge" in text, "the messages behind the spike are shown"
    browser.save_screenshot(str(ARTIFACTS / "dashboard-alerts.png"))  # type: ignore[attr-defined]
