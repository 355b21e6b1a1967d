"""Four daemons on eight partitions sharing PostgreSQL, members added and killed mid-stream; totals stay exact.

The tiny ONNX model stands in for the real one, so what is exercised is the group, the fencing and the
store path under four writers. The stream is produced in four parts, each after a change of membership
has taken effect, so every phase has work to do:

1. two members start on the first part;
2. two more join (four on eight partitions, two each) and the second part arrives;
3. the third part is produced over a few seconds, and one member is SIGKILLed while it flows;
4. a replacement joins, the last part arrives, and the group finishes the stream.

The totals of every dimension must equal those of one undisturbed daemon reading the same topic.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from kafka import KafkaProducer

from pipeline.store import Store
from pipeline.tooling.broker import EmbeddedBroker
from tests.fixtures.tiny_onnx import write_tiny_onnx
from tests.helpers import (
    as_json,
    create_topic,
    news_stream,
    produce_to,
    start_daemon,
    subprocess_env,
    terminate,
    wait_until,
    window_totals,
)
from tests.integration.daemon_harness import daemon_settings, running_daemon
from tests.integration.test_crash import total_n, without_unique

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARTITIONS = 8
PARTS = 4
PER_PART = 1200  # records per part, spread over the eight partitions
N = PARTS * PER_PART
BASE_MS = 1_767_261_600_000
DIMENSIONS = ("all", "topic", "ticker", "source")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_onnx(tmp_path_factory.mktemp("tiny-onnx") / "model")


def assigned(log: Path) -> set[int] | None:
    """The partitions the member's last assignment gave it (``None`` before its first)."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if "partitions assigned: " in line]
    if not lines:
        return None
    return {int(p) for p in re.findall(r"\[(\d+)\]@", lines[-1])}


def settled(logs: list[Path], each: int) -> bool:
    """Every live member's last assignment has ``each`` partitions, and together they cover all of them."""
    owned = [assigned(log) for log in logs]
    if any(o is None or len(o) != each for o in owned):
        return False
    return set().union(*[o for o in owned if o]) == set(range(PARTITIONS))


def produce_part(bootstrap: str, topic: str, records: list[bytes], part: int) -> None:
    chunk = records[part * PER_PART : (part + 1) * PER_PART]
    for p in range(PARTITIONS):
        produce_to(bootstrap, topic, p, chunk[p::PARTITIONS])


def produce_part_paced(bootstrap: str, topic: str, records: list[bytes], part: int, seconds: float) -> None:
    """The part spread over ``seconds``, round the partitions: the stream is still flowing when a member dies,
    however fast the machine."""
    chunk = records[part * PER_PART : (part + 1) * PER_PART]
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    started = time.monotonic()
    for i, value in enumerate(chunk):
        delay = started + i * seconds / len(chunk) - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        producer.send(topic, value=value, partition=i % PARTITIONS)
    producer.flush(timeout=30)
    producer.close(timeout=5)


def test_four_daemons_eight_partitions_members_come_and_go(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, tiny_model: Path, pg_url: str
) -> None:
    topic = f"{unique}.news"
    create_topic(broker.bootstrap, topic, PARTITIONS)
    records = as_json(news_stream(N, BASE_MS, 100, seed=11))
    env = subprocess_env(
        broker.bootstrap, f"{unique}-pg", topic, pg_url, tiny_model, grace_s=5, batch_size=16, threads=1
    )
    store = Store(pg_url)
    logs: dict[str, Path] = {}
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(name: str) -> None:
        logs[name] = tmp_path / f"{name}.log"
        procs[name] = start_daemon(env, logs[name])

    def live() -> list[Path]:
        return [logs[n] for n, p in procs.items() if p.poll() is None]

    try:
        # 1. two members, the first part
        produce_part(broker.bootstrap, topic, records, 0)
        start("a")
        start("b")
        wait_until(lambda: settled(live(), 4), 180, "two members on four partitions each")
        wait_until(lambda: total_n(store) >= PER_PART // 2, 180, "the two members to make progress", 0.3)
        # 2. two more join: four members, two partitions each
        start("c")
        start("d")
        wait_until(lambda: settled(live(), 2), 180, "four members on two partitions each")
        produce_part(broker.bootstrap, topic, records, 1)
        wait_until(lambda: total_n(store) >= PER_PART + PER_PART // 2, 180, "four members to make progress", 0.3)
        # 3. one member is killed mid-stream (the part still being produced); the rest take its partitions over
        feeder = threading.Thread(
            target=produce_part_paced, args=(broker.bootstrap, topic, records, 2, 8.0), name="feeder", daemon=True
        )
        feeder.start()
        wait_until(lambda: total_n(store) > 2 * PER_PART + 50, 180, "the third part under way", 0.1)
        procs["b"].send_signal(signal.SIGKILL)
        procs["b"].wait(timeout=10)
        assert total_n(store) < 3 * PER_PART, "the third part was done before the kill"
        feeder.join(60)
        assert not feeder.is_alive(), "the third part was not produced within a minute"
        wait_until(lambda: total_n(store) >= 3 * PER_PART, 240, "the survivors to finish the third part", 0.3)
        # 4. a replacement joins; the last part
        start("e")
        wait_until(lambda: settled(live(), 2), 180, "four members on two partitions each again")
        produce_part(broker.bootstrap, topic, records, 3)
        wait_until(lambda: total_n(store) >= N, 240, "the group to finish the stream", 0.3)
    finally:
        codes = {name: terminate(proc, 30) for name, proc in procs.items() if proc.poll() is None}
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    for name, code in codes.items():
        assert code == 0, f"member {name} exited with {code}: {logs[name].read_text()[-3000:]}"

    ref_settings = daemon_settings(
        broker.bootstrap, f"{unique}-ref", tmp_path, tiny_model, input_topics=[topic], grace_s=5
    )
    with running_daemon(ref_settings) as ref:
        wait_until(lambda: total_n(ref.store) == N, 240, "the undisturbed reference run", 0.5)
        expected = {dim: window_totals(ref.store, dim) for dim in DIMENSIONS}
    assert total_n(store) == N
    for dim, totals in expected.items():
        got = window_totals(store, dim)
        assert all(row["n_late"] == 0 for row in got.values()), f"events counted late in dimension {dim}"
        assert without_unique(got) == without_unique(totals), f"dimension {dim} differs"
        assert sum(v["n_unique"] for v in got.values()) == sum(v["n_unique"] for v in totals.values())
    store.close()
