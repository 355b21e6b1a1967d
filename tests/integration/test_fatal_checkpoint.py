"""A checkpoint that fails for a reason retrying cannot fix stops the daemon with one sentence.

Closing windows raises here inside the detector, as a bug or an impossible setting would (a
``statistics.StatisticsError`` is a ``ValueError``, the kind of error a bad record's data raises
too). It is neither the store's fault nor a record's: the daemon must not pause and retry the same
checkpoint for ever, re-closing the same windows, but stop at once, with nothing of that
checkpoint committed.
"""

from __future__ import annotations

import statistics
import threading
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from pipeline.alerts import SpikeDetector
from pipeline.app import build_daemon, connect
from pipeline.tooling.broker import EmbeddedBroker
from tests.helpers import as_json, closed_window_starts, create_topic, news_stream, produce, wait_until
from tests.integration.daemon_harness import daemon_settings

pytestmark = [pytest.mark.integration]

BASE_MS = 1_767_261_600_000


class BrokenDetector(SpikeDetector):
    """Judges no window: every call raises."""

    calls = 0

    def judge(self, *args: Any, **kwargs: Any) -> Any:
        BrokenDetector.calls += 1
        raise statistics.StatisticsError("mean requires at least one data point")


def test_a_checkpoint_that_cannot_close_its_windows_stops_the_daemon(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path
) -> None:
    settings = daemon_settings(broker.bootstrap, unique, tmp_path, model_dir, grace_s=5, idle_partition_s=1)
    create_topic(broker.bootstrap, settings.input_topics[0], 1)
    produce(broker.bootstrap, settings.input_topics[0], as_json(news_stream(200, BASE_MS, 1000, seed=9)))
    daemon = build_daemon(settings, registry=CollectorRegistry())
    daemon.store.detector = BrokenDetector(daemon.store.detector.rule, settings.window_size_ms, 60)
    sink, source = connect(settings)
    daemon.start(sink, source)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            daemon.run()
        except BaseException as exc:  # what the command line turns into its one sentence
            errors.append(exc)

    thread = threading.Thread(target=target, name="daemon", daemon=True)
    thread.start()
    try:
        wait_until(lambda: not thread.is_alive(), 90, "the daemon to stop on a checkpoint it cannot complete", 0.2)
    finally:
        daemon.stop()
        thread.join(30)
        source.close()
        sink.close()
    assert BrokenDetector.calls == 1, f"the same windows were closed {BrokenDetector.calls} times"
    assert [type(e).__name__ for e in errors] == ["CheckpointError"], errors
    message = str(errors[0])
    assert "closing windows failed: StatisticsError: mean requires at least one data point" in message
    assert "\n" not in message
    assert closed_window_starts(daemon.store) == set(), "nothing of that checkpoint was committed"
    daemon.store.close()
