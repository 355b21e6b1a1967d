"""A frozen member (SIGSTOP past the session timeout, then SIGCONT) closes no window early.

Member A owns one partition of two, caught up and idle. It is frozen; the group hands its partition
to member B. A record lands on that partition and stays in B's model (held: B must not call the
partition idle, and must not commit past it). Once the record's window would be closed by a claim of
"idle up to now", A is thawed — while the broker is frozen, so that A can neither fetch nor learn
from the coordinator that it lost the partition (a member cut off from the partition's leader).
Whatever A still believes about its old partition — a high-water mark read before the freeze, a
quiet spell from before it — must not close that window: the record ends up counted on time.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from pipeline.scorer import OnnxScorer
from pipeline.store import Store
from pipeline.tooling.broker import EmbeddedBroker
from tests.helpers import (
    Deadline,
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
from tests.integration.test_liveness import MARKER, BlockingScorer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WINDOW_S, GRACE_S, IDLE_S = 10, 2, 3
THAW_S = 4  # how long the thawed member may act before the held record is released


def message(name: str, text: str, at_ms: int) -> bytes:
    return json.dumps({"id": name, "text": text, "published_at": at_ms}).encode()


def test_a_frozen_member_closes_no_window_before_its_partitions_passed_it(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path, pg_url: str
) -> None:
    assert broker.process is not None
    topic = f"{unique}.news"
    create_topic(broker.bootstrap, topic, 2)
    start = now_ms()
    for partition in (0, 1):
        produce_to(broker.bootstrap, topic, partition, [message(f"first-{partition}", "Tesla opens new plant", start)])
    windows = {"window_size_s": WINDOW_S, "grace_s": GRACE_S, "idle_partition_s": IDLE_S}
    env = subprocess_env(broker.bootstrap, unique, topic, pg_url, model_dir, **windows)
    store = Store(pg_url)
    log = tmp_path / "a.log"
    member_a = start_daemon(env, log)
    try:
        wait_until(
            lambda: watermark_ms(store, f"{unique}-group") >= now_ms() - 5_000,
            120,
            "member A to claim both partitions idle (the watermark follows the wall clock)",
            0.5,
        )
        settings = daemon_settings(broker.bootstrap, unique, tmp_path, model_dir, store_url=pg_url, **windows)
        scorer = BlockingScorer(OnnxScorer(model_dir, threads=1))
        with running_daemon(settings, scorer=scorer, stop_timeout_s=60) as member_b:
            wait_until(lambda: len(member_b.partitions) == 1, 60, "the group to split the partitions")
            (taken,) = {0, 1} - {p for _, p in member_b.partitions.owned}
            member_a.send_signal(signal.SIGSTOP)
            try:
                wait_until(lambda: len(member_b.partitions) == 2, 60, "B to take over the frozen member's partition")
                held_at = now_ms()
                produce_to(broker.bootstrap, topic, taken, [message("held", f"Boeing {MARKER}", held_at)])
                wait_until(scorer.blocked.is_set, 30, "B to read the record and hold it in the model")
                # by now a claim of "idle up to now" on the partition would close the held record's window
                wait_until(lambda: now_ms() >= held_at + (WINDOW_S + GRACE_S + 2) * 1000, 30, "the window to age")
                os.kill(broker.process.pid, signal.SIGSTOP)
                try:
                    member_a.send_signal(signal.SIGCONT)
                    thaw = Deadline(THAW_S)
                    while not thaw.expired():  # the thawed member acts now, if it can: a span, not a condition
                        assert member_a.poll() is None, log.read_text()[-3000:]
                        time.sleep(0.2)
                finally:
                    os.kill(broker.process.pid, signal.SIGCONT)
            finally:
                member_a.send_signal(signal.SIGCONT)
            scorer.release.set()
            wait_until(lambda: "held" in ids_counted(store), 60, "the held record to be counted", 0.5)
    finally:
        code = terminate(member_a)
    assert code == 0, log.read_text()[-3000:]
    held_window = held_at - held_at % (WINDOW_S * 1000)
    totals = window_totals(store, "all")
    assert totals[("all", held_window)]["n_late"] == 0, "the held record was counted late: its window closed early"
    assert totals[("all", held_window)]["n"] >= 1
    store.close()


def watermark_ms(store: Store, group_id: str) -> int:
    try:
        return store.watermark(group_id) or 0
    except Exception:  # the schema is not there yet
        return 0


def ids_counted(store: Store) -> set[str]:
    from sqlalchemy import select

    from pipeline import tables

    with store.engine.connect() as conn:
        return {r.id for r in conn.execute(select(tables.messages.c.id))}
