"""Scoring beside the loop: worker threads run the model while the loop polls, parses and commits.

ONNX Runtime releases the GIL while it computes, and one session may run on several threads at
once, so the consume loop and the model overlap, and with one ONNX Runtime thread per worker
two small batches run on two cores at the same time (a small batch barely gains from a second
thread inside the model: measured 1.9x the texts/s of one two-thread session on batches of 4).
The loop hands a free worker whatever is waiting (a lone text at low load, a full batch under
backlog) and collects the results on its next turn, always in the order the batches were handed
over, so records are counted in the order they were read. A checkpoint does not wait for the
batches in flight: it commits offsets only up to the oldest record not yet scored
(``unscored()``), so the model keeps working while the store commits.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.scorer import Score, Scorer, score_with_targets


@dataclass
class Scored:
    """One batch back from the worker: its items and their scores, or the error the model raised."""

    items: list[Any]
    scores: list[Score] | None
    error: BaseException | None
    seconds: float


@dataclass
class _Slot:
    """A batch handed to the workers, until the loop collects its result."""

    items: list[Any]
    texts: list[str]
    handed_at: float
    targets: list[dict[str, str]] | None  # per text: ticker -> how the text names it (multi-company texts)
    done: threading.Event = field(default_factory=threading.Event)
    result: Scored | None = None


class ScoringWorker:
    """``workers`` threads scoring one batch each; ``submit`` while ``free``, ``collect`` what came back, in order."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = max(1, workers)
        self._jobs: queue.Queue[tuple[Scorer, _Slot] | None] = queue.Queue()
        self._slots: deque[_Slot] = deque()  # handed over and not collected, oldest first
        self._lock = threading.Lock()  # the loop changes the slots while /healthz reads them (busy_for)
        self._threads = [
            threading.Thread(target=self._work, name=f"finsent-scoring-{i}", daemon=True) for i in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def in_flight(self) -> int:
        return len(self._slots)

    @property
    def idle(self) -> bool:
        """Nothing handed over is waiting to be collected."""
        return not self._slots

    @property
    def free(self) -> bool:
        """A worker can take a batch now."""
        return len(self._slots) < self.workers

    @property
    def free_workers(self) -> int:
        return max(0, self.workers - len(self._slots))

    def busy_for(self) -> float:
        """Seconds the oldest batch not yet scored has been with the model (0 when none); safe from any thread."""
        with self._lock:
            slots = list(self._slots)
        for slot in slots:
            if not slot.done.is_set():
                return time.monotonic() - slot.handed_at
        return 0.0

    def submit(
        self, scorer: Scorer, items: Sequence[Any], texts: list[str], targets: list[dict[str, str]] | None = None
    ) -> None:
        slot = _Slot(list(items), texts, time.monotonic(), targets)
        with self._lock:
            self._slots.append(slot)
        self._jobs.put((scorer, slot))

    def unscored(self) -> Iterator[Any]:
        """The items handed over whose scores the loop has not collected, oldest first."""
        for slot in self._slots:
            yield from slot.items

    def collect(self, wait_s: float = 0.0) -> list[Scored]:
        """Batches scored, oldest first, up to the first one still in the model (a later batch that is
        done waits for it); waits up to ``wait_s`` for the oldest."""
        if wait_s > 0 and self._slots:
            self._slots[0].done.wait(wait_s)
        out: list[Scored] = []
        while self._slots and self._slots[0].done.is_set():
            with self._lock:
                result = self._slots.popleft().result
            if result is not None:
                out.append(result)
        return out

    def drain(self) -> list[Scored]:
        """Every batch handed over, waiting for them."""
        out: list[Scored] = []
        while self._slots:
            out.extend(self.collect(wait_s=1.0))
        return out

    def close(self) -> None:
        self.drain()
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=5)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            scorer, slot = job
            started = time.perf_counter()
            try:
                scores = (
                    score_with_targets(scorer, slot.texts, slot.targets) if slot.targets else scorer.score(slot.texts)
                )
                slot.result = Scored(slot.items, scores, None, time.perf_counter() - started)
            except BaseException as exc:  # the loop isolates the failing record
                slot.result = Scored(slot.items, None, exc, time.perf_counter() - started)
            slot.done.set()
