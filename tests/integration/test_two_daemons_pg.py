"""Two daemons in one group sharing PostgreSQL; one is SIGKILLed mid-stream; totals stay exact."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from pipeline.store import Store
from pipeline.tooling.broker import EmbeddedBroker
from tests.helpers import (
    as_json,
    news_stream,
    produce,
    start_daemon,
    subprocess_env,
    terminate,
    wait_until,
    window_totals,
)
from tests.integration.daemon_harness import daemon_settings, running_daemon
from tests.integration.test_crash import total_n, without_unique

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N = 4000
BASE_MS = 1_767_261_600_000


def test_two_daemons_one_killed(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path, pg_url: str
) -> None:
    topic = f"{unique}.news"
    produce(broker.bootstrap, topic, as_json(news_stream(N, BASE_MS, 250, seed=5)))
    ref_settings = daemon_settings(
        broker.bootstrap, f"{unique}-ref", tmp_path, model_dir, input_topics=[topic], grace_s=5
    )
    with running_daemon(ref_settings) as ref:
        wait_until(lambda: total_n(ref.store) == N, 180, "the undisturbed run", 0.5)
        expected = {dim: window_totals(ref.store, dim) for dim in ("all", "topic", "ticker", "source")}

    env = subprocess_env(broker.bootstrap, f"{unique}-pg", topic, pg_url, model_dir, grace_s=5, batch_size=4)
    store = Store(pg_url)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [start_daemon(env, log) for log in logs]
    try:
        wait_until(
            lambda: all(
                "partitions assigned: " in log.read_text()
                and "partitions assigned: none" not in log.read_text().rsplit("partitions", 1)[-1]
                for log in logs
            ),
            60,
            "both daemons to own partitions",
        )
        progress = total_n(store)
        wait_until(lambda: total_n(store) > progress + 100, 60, "both daemons to make progress", 0.2)
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(timeout=10)
        assert total_n(store) < N, "the stream ended before the kill: make it longer"
        wait_until(lambda: total_n(store) >= N, 240, "the survivor to finish the stream", 0.5)
    finally:
        code = terminate(procs[1])
        if procs[0].poll() is None:
            procs[0].kill()
    assert code == 0, logs[1].read_text()[-3000:]
    for dim, totals in expected.items():
        got = window_totals(store, dim)
        assert all(row["n_late"] == 0 for row in got.values()), f"events counted late in dimension {dim}"
        assert without_unique(got) == without_unique(totals), f"dimension {dim} differs"
        assert sum(v["n_unique"] for v in got.values()) == sum(v["n_unique"] for v in totals.values())
    store.close()
