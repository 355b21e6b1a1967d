"""SIGTERM, a frozen broker, and a model swapped under a running daemon."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from models.card import sha256_of
from pipeline.store import Store
from pipeline.tooling.broker import EmbeddedBroker
from tests.helpers import (
    as_json,
    count,
    news_stream,
    produce,
    read_topic,
    start_daemon,
    subprocess_env,
    terminate,
    wait_until,
)
from tests.integration.daemon_harness import daemon_settings, running_daemon
from tests.integration.test_crash import total_n

pytestmark = pytest.mark.integration

BASE_MS = 1_767_261_600_000


def test_sigterm_exits_zero_within_10s_with_everything_committed(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path
) -> None:
    topic = f"{unique}.news"
    produce(broker.bootstrap, topic, as_json(news_stream(12000, BASE_MS, 50, seed=2)))
    store_url = f"sqlite:///{tmp_path / 's.db'}"
    env = subprocess_env(broker.bootstrap, unique, topic, store_url, model_dir, commit_interval_ms=2000)
    store = Store(store_url)
    proc = start_daemon(env, tmp_path / "d.log")
    try:
        wait_until(lambda: total_n(store) > 0, 60, "first commit", 0.1)
    finally:
        started = time.monotonic()
        code = terminate(proc)
        elapsed = time.monotonic() - started
    log = (tmp_path / "d.log").read_text()
    assert code == 0, log[-3000:]
    assert elapsed <= 10, f"took {elapsed:.1f}s to stop"
    counted = total_n(store)
    offsets = store.load_offsets(f"{unique}-group", [(topic, p) for p in range(4)])
    assert counted == sum(o or 0 for o in offsets.values()), "every record read was committed with its offset"
    assert 0 < counted < 12000, "stopped mid-stream"
    store.close()


def test_frozen_broker_recovers_without_loss(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path
) -> None:
    settings = daemon_settings(broker.bootstrap, unique, tmp_path, model_dir)
    first, second = (
        news_stream(400, BASE_MS, 500, seed=4, prefix="a"),
        news_stream(400, BASE_MS, 500, seed=5, prefix="b"),
    )
    produce(broker.bootstrap, settings.input_topics[0], as_json(first))
    assert broker.process is not None
    with running_daemon(settings, stop_timeout_s=60) as daemon:
        wait_until(lambda: total_n(daemon.store) == 400, 90, "the first half", 0.2)
        os.kill(broker.process.pid, signal.SIGSTOP)
        try:
            time.sleep(20)  # the outage itself
        finally:
            os.kill(broker.process.pid, signal.SIGCONT)
        produce(broker.bootstrap, settings.input_topics[0], as_json(second))
        wait_until(lambda: total_n(daemon.store) >= 800, 120, "the daemon to recover and count the second half", 0.5)
        time.sleep(1)
        assert total_n(daemon.store) == 800
        assert count(daemon.store, "messages") == 800


def _publish_version(src: Path, dst: Path, version: str, corrupt: bool = False) -> None:
    """Write a model folder the way a deploy would: files first, the card last, atomically."""
    for name in ("model.int8.onnx", "tokenizer.json"):
        shutil.copy(src / name, dst / f".{name}.tmp")
        os.replace(dst / f".{name}.tmp", dst / name)
    card = json.loads((src / "card.json").read_text())
    card["version"] = version
    if corrupt:
        card["files"]["model.int8.onnx"] = "0" * 64
    (dst / ".card.tmp").write_text(json.dumps(card))
    os.replace(dst / ".card.tmp", dst / "card.json")


def test_hot_reload_loses_nothing(broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path) -> None:
    live = tmp_path / "model"
    live.mkdir()
    _publish_version(model_dir, live, "v-one")
    assert sha256_of(live / "model.int8.onnx") == sha256_of(model_dir / "model.int8.onnx")
    settings = daemon_settings(broker.bootstrap, unique, tmp_path, live, reload_check_s=0.2)
    stream = news_stream(1200, BASE_MS, 200, seed=6)
    topic = settings.input_topics[0]
    produce(broker.bootstrap, topic, as_json(stream[:600]))
    with running_daemon(settings) as daemon:
        wait_until(lambda: total_n(daemon.store) >= 200, 60, "some messages under v-one", 0.1)
        _publish_version(model_dir, live, "v-two")
        wait_until(lambda: daemon.scorer.version == "v-two", 30, "the new model to be swapped in")
        produce(broker.bootstrap, topic, as_json(stream[600:900]))  # read after the swap: scored by v-two
        _publish_version(model_dir, live, "v-broken", corrupt=True)
        wait_until(
            lambda: daemon.metrics.registry.get_sample_value("finsent_model_reloads_total", {"outcome": "refused"}),
            30,
            "the broken model to be refused",
        )
        produce(broker.bootstrap, topic, as_json(stream[900:]))  # still v-two after the refusal
        wait_until(lambda: total_n(daemon.store) == 1200, 90, "every message counted", 0.2)
        info = daemon.metrics.registry.get_sample_value(
            "finsent_model_info", {"version": "v-two", "precision": "int8", "provider": "CPUExecutionProvider"}
        )
        assert daemon.scorer.version == "v-two"
    assert info == 1.0
    scored = {
        json.loads(r.value)["id"]: json.loads(r.value)["model_version"]
        for r in read_topic(broker.bootstrap, settings.scored_topic, 1200)
    }
    assert len(scored) == 1200, "no message lost across the swaps"
    assert {scored[m["id"]] for m in stream[600:]} == {"v-two"}
    assert "v-one" in {scored[m["id"]] for m in stream[:600]}
