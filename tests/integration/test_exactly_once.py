"""Exact windows under faults: kills with dead members still holding partitions, a store outage, future times.

Each test compares the ``all`` windows with the truth computed from what was produced: for
every window, ``n`` equals the number of good records whose event time falls in it, and
``n_late`` is 0 — a restart, a rebalance, a second daemon or a paused partition must never
close a window early. Grace periods are short (5 s) so an early close would show.
"""

from __future__ import annotations

import json
import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pipeline.store import Store
from pipeline.tooling.broker import EmbeddedBroker
from pipeline.windows import window_start
from tests.helpers import (
    Deadline,
    news_stream,
    produce,
    produce_to,
    read_topic,
    start_daemon,
    subprocess_env,
    terminate,
    wait_until,
    window_totals,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BASE_MS = 1_767_261_600_000
MIN = 60_000


def totals(store: Store) -> dict[int, dict[str, float]]:
    try:
        return {start: row for (_, start), row in window_totals(store, "all").items()}
    except Exception:  # schema not there yet
        return {}


def counted(store: Store) -> int:
    return int(sum(row["n"] + row["n_late"] for row in totals(store).values()))


def truth(messages: list[dict[str, Any]], size_ms: int = MIN) -> dict[int, int]:
    return dict(Counter(window_start(m["published_at"], size_ms) for m in messages))


def assert_exact(store: Store, messages: list[dict[str, Any]], size_ms: int = MIN) -> None:
    got = totals(store)
    late = {start: row["n_late"] for start, row in got.items() if row["n_late"]}
    assert not late, f"events counted late: {late}"
    assert {start: row["n"] for start, row in got.items() if row["n"]} == truth(messages, size_ms)


def bad_records(n: int) -> list[bytes]:
    """Malformed records, each unique, of several kinds."""
    kinds = [
        lambda i: b'{"text": "truncated %d' % i,
        lambda i: json.dumps({"id": f"bad-{i}", "text": "a\u0000b"}).encode(),
        lambda i: json.dumps({"id": f"bad-{i}", "text": ""}).encode(),
        lambda i: b'{"id": "bad-%d", "text": "x", "published_at": NaN}' % i,
    ]
    return [kinds[i % len(kinds)](i) for i in range(n)]


def test_two_daemons_killed_twenty_times_count_every_event_once(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path, pg_url: str
) -> None:
    topic = f"{unique}.news"
    good = news_stream(30_000, BASE_MS, 40, seed=17)  # 20 minutes of event time
    bad = bad_records(300)
    values = [json.dumps(m).encode() for m in good]
    for i, value in enumerate(bad):
        values.insert((i + 1) * 100, value)
    produce(broker.bootstrap, topic, values)

    name = f"{unique}-x"
    # small batches keep the backlog going long enough for twenty kills
    env = subprocess_env(broker.bootstrap, name, topic, pg_url, model_dir, grace_s=5, idle_partition_s=3, batch_size=16)
    store = Store(pg_url)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [start_daemon(env, log) for log in logs]
    rng = random.Random(23)
    kills = 0
    try:
        wait_until(lambda: counted(store) > 500, 120, "both daemons to start counting", 0.2)
        while kills < 20:
            assert counted(store) < len(good), f"the backlog ran out after {kills} kills: make it longer"
            victim = rng.randrange(2)
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait(timeout=10)
            procs[victim] = start_daemon(env, logs[victim])  # at once: the dead member still holds its partitions
            kills += 1
            before = counted(store)
            wait_until(lambda b=before: counted(store) > b, 60, f"progress after kill {kills}", 0.1)
            time.sleep(rng.uniform(0.2, 1.5))  # the random moment of the next kill, not a wait for a condition
        wait_until(lambda: counted(store) >= len(good), 300, "the daemons to finish the backlog", 0.5)
    finally:
        codes = [terminate(p) for p in procs]
    assert codes == [0, 0], "\n".join(log.read_text()[-2000:] for log in logs)
    assert_exact(store, good)
    dead = read_topic(broker.bootstrap, f"{name}.dlq", len(bad), timeout_s=60)
    assert {r.value for r in dead} == set(bad), "every bad record is dead-lettered"
    duplicates = len(dead) - len({r.value for r in dead})
    assert duplicates <= 5 * kills, "only records between a kill and the last commit may be dead-lettered twice"
    store.close()


def test_store_outage_of_two_minutes_loses_nothing(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path, private_pg: Any
) -> None:
    topic = f"{unique}.news"
    good = news_stream(3000, BASE_MS, 200, seed=29)  # 10 minutes of event time
    produce(broker.bootstrap, topic, [json.dumps(m).encode() for m in good])
    env = subprocess_env(broker.bootstrap, unique, topic, private_pg.url, model_dir, grace_s=5, batch_size=32)
    store = Store(private_pg.url)
    log = tmp_path / "daemon.log"
    proc = start_daemon(env, log)
    try:
        wait_until(lambda: counted(store) > 300, 120, "the daemon to start counting", 0.2)
        store.close()
        private_pg.stop()
        outage = Deadline(120)
        while not outage.expired():  # the outage itself: the daemon must stay up all along
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(1)
        private_pg.start()
        store = Store(private_pg.url)
        wait_until(lambda: counted(store) >= len(good), 240, "the daemon to finish after the outage", 0.5)
    finally:
        code = terminate(proc)
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert "store unreachable, pausing consumption" in text and "store reachable again" in text
    assert_exact(store, good)
    store.close()


def test_a_record_far_in_the_future_blinds_nothing(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path
) -> None:
    topic = f"{unique}.news"
    now = int(time.time() * 1000)
    first = news_stream(600, now - 60_000, 100, seed=31, prefix="a")  # the last minute, up to now
    future = {"id": "future", "text": "Tesla shares soar after record deliveries", "published_at": now + 20 * 3600_000}
    soon = {"id": "soon", "text": "Apple to hold product event", "published_at": now + 240_000}  # within 300 s
    values = [json.dumps(m).encode() for m in first]
    values.insert(300, json.dumps(future).encode())
    values.insert(301, json.dumps(soon).encode())
    produce(broker.bootstrap, topic, values)
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    env = subprocess_env(
        broker.bootstrap, unique, topic, store_url, model_dir, grace_s=5, window_size_s=10, idle_partition_s=2
    )
    store = Store(store_url)
    log = tmp_path / "daemon.log"
    proc = start_daemon(env, log)
    try:
        wait_until(lambda: counted(store) >= 601, 120, "the first minute to be counted", 0.2)
        time.sleep(3)  # quiet long enough for every partition to count as idle
        second = news_stream(200, int(time.time() * 1000), 10, seed=37, prefix="b")  # fresh news after the lull
        produce(broker.bootstrap, topic, [json.dumps(m).encode() for m in second])
        wait_until(lambda: counted(store) >= 801, 120, "the fresh news to be counted", 0.2)
    finally:
        code = terminate(proc)
    assert code == 0, log.read_text()[-3000:]
    assert_exact(store, [*first, soon, *second], size_ms=10_000)
    dead = read_topic(broker.bootstrap, f"{unique}.dlq", 1, timeout_s=30)
    assert [(r.value, dict(r.headers)["finsent-error"]) for r in dead] == [
        (json.dumps(future).encode(), b"bad_timestamp")
    ]
    store.close()


def test_an_item_dated_ahead_closes_no_window_of_the_backlog_behind_it(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path
) -> None:
    """Partition 0 goes quiet a minute behind the others, then a source writes to it an item dated four
    minutes ahead (accepted: within FINSENT_MAX_FUTURE_S) and the backlog it held back. The others are
    idle at the wall clock, so only partition 0's own progress keeps the backlog's windows open; the
    item dated ahead must not move it on while the records behind it wait."""
    topic = f"{unique}.news"
    now = int(time.time() * 1000)
    old = news_stream(1, now - 60_000, 1, seed=41, prefix="a")
    recent = news_stream(30, now - 3_000, 100, seed=43, prefix="b")
    produce_to(broker.bootstrap, topic, 0, [json.dumps(m).encode() for m in old])
    for p in (1, 2, 3):
        produce_to(broker.bootstrap, topic, p, [json.dumps(m).encode() for m in recent[p - 1 :: 3]])
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    env = subprocess_env(  # checkpoints every 100 ms, batches of 4: many commits while the backlog is scored
        broker.bootstrap,
        unique,
        topic,
        store_url,
        model_dir,
        grace_s=5,
        window_size_s=10,
        idle_partition_s=2,
        progress_interval_ms=100,
        batch_size=4,
    )
    store = Store(store_url)
    log = tmp_path / "daemon.log"
    proc = start_daemon(env, log)
    try:
        wait_until(lambda: counted(store) >= 31, 120, "the first records to be counted", 0.2)
        time.sleep(3)  # every partition quiet long enough to count as idle
        later = int(time.time() * 1000)
        ahead = {"id": "ahead", "text": "Apple to hold product event", "published_at": later + 240_000}
        backlog = news_stream(200, later - 55_000, 100, seed=47, prefix="c")  # 55 to 35 s old
        produce_to(broker.bootstrap, topic, 0, [json.dumps(m).encode() for m in [ahead, *backlog]])
        wait_until(lambda: counted(store) >= 232, 120, "the backlog to be counted", 0.2)
    finally:
        code = terminate(proc)
    assert code == 0, log.read_text()[-3000:]
    assert_exact(store, [*old, *recent, ahead, *backlog], size_ms=10_000)
    store.close()
