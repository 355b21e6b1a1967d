"""The e2e rig: a seeded store, the dashboard served from it, and headless Chromium."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.tooling.broker import free_port, wait_for_port
from tests.conftest import missing
from tests.e2e.pages import Dashboard
from tests.fixtures.seed_store import seed


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[Dashboard]:
    store_url = f"sqlite:///{tmp_path / 'seeded.db'}"
    seed(store_url).close()
    port = free_port()
    log = (tmp_path / "dashboard.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "dashboard", "--store", store_url, "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "FINSENT_DASHBOARD_REFRESH_S": "60"},
        start_new_session=True,  # its own process group: the server and anything it starts stop together
    )
    try:
        assert wait_for_port("127.0.0.1", port, 60), (tmp_path / "dashboard.log").read_text()
        yield Dashboard(f"http://127.0.0.1:{port}", store_url)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        log.close()


@pytest.fixture
def dashboard_url(dashboard: Dashboard) -> str:
    return dashboard.url


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
