"""SIGKILL the daemon at random moments mid-stream; totals must equal an undisturbed run's.

The shipped model's labels do not depend on the batch a text is scored in (static int8
scales), so the two runs batch differently (default batches for the undisturbed run, at
most 4 texts for the disturbed one, which also keeps it slow enough to be killed often) yet
must agree label for label: any difference is a counting error.

``n_unique`` is compared as a sum: which window gets a story's first sighting depends on
how partitions interleave, in any two runs, crashed or not.
"""

from __future__ import annotations

import random
import signal
import time
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

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N = 2500
BASE_MS = 1_767_261_600_000


def total_n(store: Store) -> int:
    try:
        return sum(v["n"] for v in window_totals(store, "all").values())
    except Exception:  # schema not there yet
        return 0


def without_unique(totals: dict) -> dict:  # type: ignore[type-arg]
    return {k: {f: v for f, v in row.items() if f != "n_unique"} for k, row in totals.items()}


def test_sigkill_loses_nothing_and_counts_nothing_twice(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path
) -> None:
    topic = f"{unique}.news"
    produce(broker.bootstrap, topic, as_json(news_stream(N, BASE_MS, 200, seed=3)))

    # the undisturbed run
    ref_settings = daemon_settings(
        broker.bootstrap, f"{unique}-ref", tmp_path / "ref", model_dir, input_topics=[topic], grace_s=5
    )
    (tmp_path / "ref").mkdir()
    with running_daemon(ref_settings) as ref:
        wait_until(lambda: total_n(ref.store) == N, 180, "the undisturbed run to count every message", 0.5)
        expected = {dim: window_totals(ref.store, dim) for dim in ("all", "topic", "ticker", "source")}

    # the disturbed run: killed at random moments, restarted each time
    store_url = f"sqlite:///{tmp_path / 'crash.db'}"
    env = subprocess_env(broker.bootstrap, f"{unique}-crash", topic, store_url, model_dir, grace_s=5, batch_size=4)
    store = Store(store_url)
    rng = random.Random(11)
    log = tmp_path / "daemon.log"
    kills = 0
    for _ in range(8):
        before = total_n(store)
        if before >= N:
            break
        proc = start_daemon(env, log)
        try:
            wait_until(lambda b=before: total_n(store) > b, 60, "progress after a restart", 0.1)
            time.sleep(rng.uniform(0.0, 0.6))  # the random moment of the kill, not a wait for a condition
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        kills += 1
    assert kills >= 5, f"the stream finished after {kills} kills: make it longer"
    assignments = log.read_text().count("partitions assigned")
    proc = start_daemon(env, log)
    try:
        wait_until(lambda: log.read_text().count("partitions assigned") > assignments, 60, "the last restart to join")
        wait_until(lambda: total_n(store) >= N, 240, "the restarted daemon to finish the stream", 0.5)
    finally:
        code = terminate(proc)
    assert code == 0, log.read_text()[-3000:]
    for dim, totals in expected.items():
        got = window_totals(store, dim)
        assert all(row["n_late"] == 0 for row in got.values()), f"events counted late in dimension {dim}"
        assert without_unique(got) == without_unique(totals), f"dimension {dim} differs after {kills} kills"
        assert sum(v["n_unique"] for v in got.values()) == sum(v["n_unique"] for v in totals.values())
    store.close()
