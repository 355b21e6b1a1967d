"""Windows keep closing on the wall clock when a partition goes quiet, whatever happens to it afterwards.

The measurement of issue 22 on the real daemon and broker: two partitions, partition 0 quiet after
one message, partition 1 live at one message a second; windows of 10 s, grace 2 s, idle after 3 s.
In every phase — live traffic, after a SIGTERM and restart, after one malformed record lands on the
quiet partition — the newest closed window must stay within window + grace + idle + a few seconds
of the wall clock. The lag is sampled once a second; the phases are long enough (25 s) for a
freeze to show.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from kafka import KafkaProducer
from sqlalchemy import func, select

from pipeline import tables
from pipeline.store import Store
from pipeline.tooling.broker import EmbeddedBroker
from tests.helpers import (
    Deadline,
    closed_window_starts,
    create_topic,
    now_ms,
    produce_to,
    start_daemon,
    subprocess_env,
    terminate,
    wait_until,
    window_totals,
)
from tests.integration.daemon_harness import daemon_settings, running_daemon

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WINDOW_S, GRACE_S, IDLE_S = 10, 2, 3
SLACK_S = 6  # a checkpoint, a poll and a fetch, on two busy cores
BOUND_S = WINDOW_S + GRACE_S + IDLE_S + SLACK_S
PHASE_S = 25


class Ticker(threading.Thread):
    """One message a second on one partition, stamped with the wall clock."""

    def __init__(self, bootstrap: str, topic: str, partition: int) -> None:
        super().__init__(name="ticker", daemon=True)
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        self.topic, self.partition = topic, partition
        self.stopped = threading.Event()
        self.sent = 0

    def run(self) -> None:
        while not self.stopped.is_set():
            message = {"id": f"tick-{self.sent}", "text": "Apple shares edge higher", "published_at": now_ms()}
            self.producer.send(self.topic, json.dumps(message).encode(), partition=self.partition)
            self.producer.flush(timeout=10)
            self.sent += 1
            self.stopped.wait(1.0)

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=15)
        self.producer.close(timeout=5)


def newest_closed_end_ms(store: Store) -> int | None:
    w = tables.windows.c
    try:
        with store.engine.connect() as conn:
            end = conn.execute(select(func.max(w.window_end)).where(w.dimension == "all", w.closed.is_(True))).scalar()
    except Exception:  # the schema is not there yet
        return None
    return None if end is None else tables.to_ms(end)


def lag_s(store: Store) -> float:
    end = newest_closed_end_ms(store)
    return float("inf") if end is None else (now_ms() - end) / 1000


def sample_lag(store: Store, seconds: float) -> list[float]:
    """The lag of the newest closed window behind the wall clock, once a second for ``seconds``."""
    samples = []
    span = Deadline(seconds)
    while not span.expired():
        samples.append(round(lag_s(store), 1))
        threading.Event().wait(min(1.0, span.remaining()))  # the sampling period, not a wait for a condition
    return samples


def test_a_quiet_partition_never_freezes_window_closing(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path
) -> None:
    topic = f"{unique}.news"
    create_topic(broker.bootstrap, topic, 2)
    produce_to(broker.bootstrap, topic, 0, [json.dumps({"id": "quiet-0", "text": "Exxon names new CFO"}).encode()])
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    env = subprocess_env(
        broker.bootstrap,
        unique,
        topic,
        store_url,
        model_dir,
        window_size_s=WINDOW_S,
        grace_s=GRACE_S,
        idle_partition_s=IDLE_S,
    )
    store = Store(store_url)
    log = tmp_path / "daemon.log"
    ticker = Ticker(broker.bootstrap, topic, 1)
    ticker.start()
    proc = start_daemon(env, log)
    lags: dict[str, list[float]] = {}
    try:
        wait_until(lambda: newest_closed_end_ms(store), 120, "the first window to close", 0.5)
        lags["live"] = sample_lag(store, PHASE_S)

        assert terminate(proc) == 0, log.read_text()[-3000:]
        joined = log.read_text().count("partitions assigned")
        proc = start_daemon(env, log)
        wait_until(lambda: log.read_text().count("partitions assigned") > joined, 60, "the restarted daemon to join")
        settling = sample_lag(store, 5)  # the first checkpoints of the new daemon: the gap of the restart itself
        lags["after restart"] = sample_lag(store, PHASE_S)

        produce_to(broker.bootstrap, topic, 0, [b'{"text": "a record cut short'])
        lags["after a bad record on the quiet partition"] = sample_lag(store, PHASE_S)
    finally:
        ticker.stop()
        code = terminate(proc)
    print({"restarting": settling, **{phase: max(samples) for phase, samples in lags.items()}})  # the figures
    assert code == 0, log.read_text()[-3000:]
    for phase, samples in lags.items():
        assert max(samples) <= BOUND_S, f"{phase}: the newest closed window lagged {max(samples)} s: {samples}"
    late = {k: row["n_late"] for k, row in window_totals(store, "all").items() if row["n_late"]}
    assert not late, f"live events counted late: {late}"
    store.close()


def test_a_partition_written_in_transactions_goes_idle(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path
) -> None:
    """A transactional producer leaves a commit marker after each batch: the log end is one past the last record."""
    settings = daemon_settings(
        broker.bootstrap, unique, tmp_path, model_dir, window_size_s=WINDOW_S, grace_s=GRACE_S, idle_partition_s=IDLE_S
    )
    topic = settings.input_topics[0]
    create_topic(broker.bootstrap, topic, 1)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id=f"{unique}-tx")
    producer.init_transactions()
    sent_at = now_ms()
    for i in range(3):
        producer.begin_transaction()
        message = {"id": f"tx-{i}", "text": "Nvidia raises guidance", "published_at": sent_at}
        producer.send(topic, json.dumps(message).encode())
        producer.commit_transaction()
    producer.close(timeout=5)
    window = sent_at - sent_at % (WINDOW_S * 1000)
    with running_daemon(settings) as daemon:
        wait_until(
            lambda: window in closed_window_starts(daemon.store),
            WINDOW_S + GRACE_S + IDLE_S + 45,
            "the window of the transactional records to close once the partition is quiet",
            0.5,
        )
        assert window_totals(daemon.store, "all")[("all", window)]["n"] == 3
