"""The one-command demo, headless, on a clean working directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from pipeline.store import Store
from pipeline.tables import as_utc, from_ms, incidents
from tests.helpers import closed_window_starts, count

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_runs_scores_rejects_and_alerts_on_the_spike(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'demo.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINSENT_")}
    env["FINSENT_DEMO_LOG_DIR"] = str(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "demo",
            "--duration",
            "150",
            "--no-dashboard",
            "--store",
            store_url,
            "--metrics-port",
            "0",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    logs = (tmp_path / "finsent-demo-logs" / "daemon.log").read_text()[-3000:]
    assert result.returncode == 0, result.stdout + result.stderr + logs
    assert "demo ran" in result.stdout
    store = Store(store_url)
    try:
        scored = count(store, "messages")
        alerts = store.all_alerts()
        starts = [from_ms(ms) for ms in closed_window_starts(store)]
        with store.engine.connect() as conn:
            stored_incidents = conn.execute(select(incidents)).all()
    finally:
        store.close()
    assert scored >= 2500, f"only {scored} messages scored"
    rejected = int(result.stdout.split("rejected to the DLQ ")[1].split(",")[0])
    assert rejected > 0, "the synthetic stream's malformed records went to the DLQ"
    nvda = [a for a in alerts if a.dimension == "ticker" and a.key == "NVDA"]
    assert nvda, f"no alert for the scripted NVDA burst: {[(a.dimension, a.key) for a in alerts]}"
    others = [a for a in alerts if a.dimension == "ticker" and a.key != "NVDA"]
    assert not others, f"alerts on quiet tickers: {[(a.key, a.negative_ratio) for a in others]}"
    first_window = min(starts)
    early = [(a.dimension, a.key) for a in alerts if (as_utc(a.window_start) - first_window).total_seconds() < 40]
    assert not early, f"alerts before the burst (it starts 60 s in): {early}"
    # the burst's alerts (ticker, topics, sources) tell one story: ONE incident rooted at ticker NVDA holds them
    rooted = [i for i in stored_incidents if (i.root_dimension, i.root_key) == ("ticker", "NVDA")]
    assert len(rooted) == 1, [(i.root_dimension, i.root_key, i.n_alerts) for i in stored_incidents]
    held = [(a.dimension, a.key) for a in alerts if a.incident_id == rooted[0].id]
    assert ("ticker", "NVDA") in held and len(held) == rooted[0].n_alerts > 1, held
    burst = [as_utc(a.window_start) for a in alerts if a.incident_id == rooted[0].id]
    outside = [
        (a.dimension, a.key, a.incident_id)
        for a in alerts
        if a.incident_id != rooted[0].id and min(burst) <= as_utc(a.window_start) <= max(burst)
    ]
    assert not outside, f"alerts of the burst outside its incident: {outside}"
