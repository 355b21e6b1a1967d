"""Run a daemon in-process against the real broker, with its own registry and a stop with a timeout."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from pipeline.app import build_daemon, connect
from pipeline.config import Settings, load_settings
from pipeline.daemon import Daemon
from pipeline.scorer import Scorer
from pipeline.sinks import KafkaSink
from pipeline.source import KafkaSource


def daemon_settings(bootstrap: str, name: str, tmp: Path, model_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "kafka_bootstrap": bootstrap,
        "input_topics": [f"{name}.news"],
        "group_id": f"{name}-group",
        "scored_topic": f"{name}.scored",
        "alerts_topic": f"{name}.alerts",
        "dlq_topic": f"{name}.dlq",
        "store_url": f"sqlite:///{tmp / 'store.db'}",
        "model_dir": model_dir,
        "session_timeout_ms": 3000,
        "heartbeat_interval_ms": 500,
        "max_poll_interval_ms": 10000,
        "commit_interval_ms": 200,
        "metrics_port": 0,
        "reload_check_s": 0,
        "threads": 1,
        "grace_s": 3600,
    }
    values.update(overrides)
    return load_settings(**values)


@contextmanager
def running_daemon(
    settings: Settings, scorer: Scorer | None = None, stop_timeout_s: float = 20.0, sink: KafkaSink | None = None
) -> Iterator[Daemon]:
    daemon = build_daemon(settings, registry=CollectorRegistry(), scorer=scorer)
    sink, source = connect(settings) if sink is None else (sink, KafkaSource(settings))
    daemon.start(sink, source)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            daemon.run()
        except BaseException as exc:  # surfaced in the test below
            errors.append(exc)

    thread = threading.Thread(target=target, name="daemon", daemon=True)
    thread.start()
    try:
        yield daemon
    finally:
        daemon.stop()
        thread.join(stop_timeout_s)
        alive = thread.is_alive()
        source.close()
        sink.close()
        daemon.store.close()
        assert not alive, f"daemon did not stop within {stop_timeout_s}s"
        assert not errors, f"daemon loop raised {errors[0]!r}"
