"""What a checkpoint may commit while the model works: per-partition offsets and progress, and the worker's queue."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence

from pipeline.ownership import StoredPartition
from pipeline.partitions import OwnedPartitions
from pipeline.scorer import Score
from pipeline.scoring import ScoringWorker
from tests.helpers import Deadline

A, B = ("news", 0), ("news", 1)


def owned(caught_up: int | None = 0) -> OwnedPartitions:
    parts = OwnedPartitions(idle_ms=1000, claim_ttl_ms=60_000, caught_up=lambda tp: caught_up)
    parts.assign(A, StoredPartition(10, None), now_ms=0)
    parts.assign(B, StoredPartition(20, 5_000), now_ms=0)
    return parts


def test_offsets_stop_at_the_oldest_unscored_record() -> None:
    parts = owned()
    for offset in range(10, 15):
        parts.read(A, offset)
    assert parts.positions() == {A: 15, B: 20}
    assert parts.positions({A: 12}) == {A: 12, B: 20}
    assert parts.positions({A: 99}) == {A: 15, B: 20}, "never past what was read"


def test_progress_counts_handled_events_only_and_a_holding_partition_is_never_idle() -> None:
    parts = owned()
    parts.saw_event(A, 7_000, 0, None)
    parts.saw_event(A, 6_000, 0, None)  # event times are not monotonic: the newest counts
    parts.saw_event(("gone", 3), 9_000, 0, None)  # a partition taken away meanwhile: ignored
    quiet = parts.progress(now_ms=10_000)
    assert quiet[A].event_ms == 7_000 and quiet[A].caught_up_ms == 0
    assert quiet[B].event_ms == 5_000
    holding = parts.progress(now_ms=10_000, held={A: 12})
    assert holding[A].caught_up_ms is None, "records wait for the model: not idle"
    assert holding[B].caught_up_ms == 0


def test_progress_never_passes_the_wall_clock() -> None:
    parts = owned()
    parts.saw_event(A, 90_000, 0, None)
    assert parts.progress(now_ms=50_000)[A].event_ms == 50_000


class Gate:
    """A scorer that waits for the test before answering."""

    version = precision = provider = "gate"

    def __init__(self) -> None:
        self.go = threading.Event()

    def score(self, texts: Sequence[str]) -> list[Score]:
        self.go.wait(timeout=10)
        return [Score("neutral", 0.2, 0.6, 0.2, "Macro", 0.9) for _ in texts]


def test_worker_lists_what_it_holds_until_collected() -> None:
    worker = ScoringWorker()
    gate = Gate()
    try:
        worker.submit(gate, ["a", "b"], ["a", "b"])
        assert list(worker.unscored()) == ["a", "b"]
        assert worker.collect() == [] and not worker.idle
        gate.go.set()
        results = worker.drain()
        assert [r.items for r in results] == [["a", "b"]]
        assert list(worker.unscored()) == [] and worker.idle
    finally:
        gate.go.set()
        worker.close()


class Named(Gate):
    """Waits only on batches whose first text is ``"slow"``."""

    def __init__(self) -> None:
        super().__init__()
        self.fast_scored = threading.Event()

    def score(self, texts: Sequence[str]) -> list[Score]:
        if texts and texts[0] == "slow":
            return super().score(texts)
        self.fast_scored.set()
        return [Score("neutral", 0.2, 0.6, 0.2, "Macro", 0.9) for _ in texts]


def test_two_workers_score_side_by_side_but_results_come_back_in_order() -> None:
    worker = ScoringWorker(workers=2)
    gate = Named()
    try:
        worker.submit(gate, ["slow"], ["slow"])
        assert worker.free, "a second worker is free"
        worker.submit(gate, ["fast"], ["fast"])
        assert not worker.free
        assert gate.fast_scored.wait(timeout=10), "the second batch ran beside the first"
        time.sleep(0.05)  # let the worker hand its result over
        assert worker.collect() == [], "a later batch waits for the one before it"
        assert list(worker.unscored()) == ["slow", "fast"]
        gate.go.set()
        assert [r.items for r in worker.drain()] == [["slow"], ["fast"]]
    finally:
        gate.go.set()
        worker.close()


class Instant(Gate):
    def score(self, texts: Sequence[str]) -> list[Score]:
        return [Score("neutral", 0.2, 0.6, 0.2, "Macro", 0.9) for _ in texts]


def test_the_liveness_probe_reads_the_worker_while_the_loop_changes_it() -> None:
    """``/healthz`` asks ``busy_for`` from an HTTP thread while the loop hands batches over and collects them."""
    worker = ScoringWorker(workers=1)
    errors: list[BaseException] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            try:
                worker.busy_for()
            except RuntimeError as exc:  # "deque mutated during iteration"
                errors.append(exc)
                return

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: the race shows within a second
    prober = threading.Thread(target=probe, name="healthz")
    prober.start()
    try:
        span = Deadline(3)
        while not span.expired() and not errors:
            for i in range(64):
                worker.submit(Instant(), [i], ["x"])
            worker.drain()
    finally:
        stop.set()
        prober.join(timeout=10)
        sys.setswitchinterval(switch)
        worker.close()
    assert not errors, f"the probe failed: {errors[0]!r}"
