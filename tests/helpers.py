"""Shared test helpers: bounded waits, Kafka produce/read, daemon processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from kafka import KafkaConsumer, KafkaProducer

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]


class Deadline:
    """A time budget for a wait loop: ``while not deadline.expired(): ...``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.until = time.monotonic() + seconds

    def expired(self) -> bool:
        return time.monotonic() >= self.until

    def remaining(self) -> float:
        return max(0.0, self.until - time.monotonic())


def wait_until(predicate: Callable[[], T], timeout_s: float, what: str, interval_s: float = 0.1) -> T:
    """Poll ``predicate`` until it returns something truthy; fail the test naming ``what`` after the deadline."""
    deadline = Deadline(timeout_s)
    last: Any = None
    while not deadline.expired():
        last = predicate()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what} (last value: {last!r})")


def produce(
    bootstrap: str,
    topic: str,
    values: Iterable[bytes | None],
    keys: Iterable[bytes | None] | None = None,
    **options: Any,
) -> int:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all", **options)
    n = 0
    key_list = list(keys) if keys is not None else None
    for i, value in enumerate(values):
        producer.send(topic, value=value, key=key_list[i] if key_list else None)
        n += 1
    producer.flush(timeout=30)
    producer.close(timeout=5)
    return n


def as_json(messages: Iterable[dict[str, Any]]) -> list[bytes]:
    return [json.dumps(m).encode() for m in messages]


def read_topic(bootstrap: str, topic: str, expected: int, timeout_s: float = 60.0, settle_s: float = 1.0) -> list[Any]:
    """Read a topic from the beginning with a fresh group until ``expected`` records (and a quiet moment)."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"reader-{topic}-{time.time_ns()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=3000,
        heartbeat_interval_ms=500,
        max_poll_interval_ms=5000,
        consumer_timeout_ms=500,
    )
    records: list[Any] = []
    deadline = Deadline(timeout_s)
    quiet_since: float | None = None
    try:
        while not deadline.expired():
            batch = consumer.poll(timeout_ms=300)
            got = [r for rs in batch.values() for r in rs]
            records.extend(got)
            if len(records) >= expected:
                if got or quiet_since is None:
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since >= settle_s:
                    break
    finally:
        consumer.close(autocommit=False)
    return records


def daemon_env(**overrides: Any) -> dict[str, str]:
    """Environment for a ``finsent run`` subprocess: fast group joins, quick commits."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINSENT_")}
    env.update(
        {
            "FINSENT_SESSION_TIMEOUT_MS": "3000",
            "FINSENT_HEARTBEAT_INTERVAL_MS": "500",
            "FINSENT_MAX_POLL_INTERVAL_MS": "10000",
            "FINSENT_COMMIT_INTERVAL_MS": "300",
            "FINSENT_METRICS_PORT": "0",
            "FINSENT_METRICS_HOST": "127.0.0.1",
            "FINSENT_RELOAD_CHECK_S": "0",
            "FINSENT_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update({f"FINSENT_{k.upper()}": str(v) for k, v in overrides.items()})
    return env


def subprocess_env(
    bootstrap: str, name: str, topic: str, store_url: str, model_dir: Path, **overrides: Any
) -> dict[str, str]:
    """``daemon_env`` for a test's own group and output topics; nothing late (grace of an hour) unless overridden."""
    values: dict[str, Any] = {
        "kafka_bootstrap": bootstrap,
        "input_topics": topic,
        "group_id": f"{name}-group",
        "store_url": store_url,
        "model_dir": model_dir,
        "grace_s": 3600,
        "scored_topic": f"{name}.scored",
        "alerts_topic": f"{name}.alerts",
        "dlq_topic": f"{name}.dlq",
    }
    return daemon_env(**{**values, **overrides})


def terminate(proc: subprocess.Popen[bytes], timeout_s: float = 15) -> int:
    """SIGTERM and wait; a process that does not stop in time is killed and reported as -9."""
    proc.terminate()
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
        return -9


def start_daemon(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log = log_path.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
    )


COMPANIES = [
    ("Apple", "AAPL"),
    ("Tesla", "TSLA"),
    ("Exxon", "XOM"),
    ("Nvidia", "NVDA"),
    ("Pfizer", "PFE"),
    ("Boeing", "BA"),
    ("JPMorgan", "JPM"),
    ("Netflix", "NFLX"),
]
TEMPLATES = [
    "{name} shares plunge after quarterly revenue misses estimates ${tk}",
    "{name} beats earnings expectations and raises full-year guidance ${tk}",
    "{name} to present at investor conference next week ${tk}",
    "{name} downgraded to sell at Morgan Stanley, price target cut ${tk}",
    "{name} announces new share buyback program ${tk}",
    "{name} faces regulatory probe over accounting practices ${tk}",
    "{name} declares quarterly dividend ${tk}",
    "{name} names new chief financial officer ${tk}",
]


def news_stream(n: int, base_ms: int, step_ms: int, seed: int = 0, prefix: str = "m") -> list[dict[str, Any]]:
    """``n`` plausible headlines, one every ``step_ms`` of event time, each with a unique id."""
    import random

    rng = random.Random(seed)
    out = []
    for i in range(n):
        name, tk = rng.choice(COMPANIES)
        text = rng.choice(TEMPLATES).format(name=name, tk=tk) + f" #{rng.randint(0, 50)}"
        out.append(
            {
                "id": f"{prefix}-{i}",
                "text": text,
                "published_at": base_ms + i * step_ms,
                "source": rng.choice(["wire", "forum", "blog"]),
            }
        )
    return out


def closed_window_starts(store: Any) -> set[int]:
    """Starts (ms) of the closed windows of the ``all`` dimension."""
    from sqlalchemy import select

    from pipeline import tables

    w = tables.windows.c
    with store.engine.connect() as conn:
        rows = conn.execute(select(w.window_start).where(w.dimension == "all", w.closed.is_(True)))
        return {tables.to_ms(r.window_start) for r in rows}


def window_totals(store: Any, dimension: str = "all") -> dict[tuple[str, int], dict[str, float]]:
    """(key, window start ms) -> the counts of every window of ``dimension`` in the store."""
    from sqlalchemy import select

    from pipeline import tables

    w = tables.windows.c
    fields = ("n", "n_unique", "n_negative", "n_neutral", "n_positive", "n_late", "n_late_negative")
    with store.engine.connect() as conn:
        rows = conn.execute(select(tables.windows).where(w.dimension == dimension)).all()
    return {(r.key, tables.to_ms(r.window_start)): {f: getattr(r, f) for f in fields} for r in rows}


def count(store: Any, table: str, *conditions: Any) -> int:
    """Rows of ``table`` in the store (matching ``conditions``)."""
    from sqlalchemy import and_, func, select

    from pipeline import tables

    with store.engine.connect() as conn:
        query = select(func.count()).select_from(tables.metadata.tables[table]).where(and_(True, *conditions))
        return int(conn.execute(query).scalar_one())


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """A topic with exactly ``partitions`` partitions (the broker would auto-create four)."""
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        admin.close()


def produce_to(bootstrap: str, topic: str, partition: int, values: Iterable[bytes]) -> None:
    """Send ``values`` to one partition, in order."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    for value in values:
        producer.send(topic, value=value, partition=partition)
    producer.flush(timeout=30)
    producer.close(timeout=5)


def now_ms() -> int:
    return int(time.time() * 1000)
