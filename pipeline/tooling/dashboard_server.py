"""How the dashboard is served: Streamlit running dashboard/app.py, headless."""

from __future__ import annotations

import sys
from pathlib import Path

import dashboard

APP = Path(dashboard.__file__).parent / "app.py"


def streamlit_command(host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.headless",
        "true",
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--theme.base",
        "light",
    ]
