"""Scoring beside the loop: a worker thread runs the model while the loop polls, parses and commits.

ONNX Runtime releases the GIL while it computes, so the consume loop and the model overlap. The
loop hands the worker whatever is waiting as soon as the worker is free (a lone text at low load,
a full batch under backlog) and collects the results on its next turn. A checkpoint does not wait
for the batch in flight: it commits offsets only up to the oldest record not yet scored
(``unscored()``), so the model keeps working while the store commits.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.scorer import Score, Scorer


@dataclass
class Scored:
    """One batch back from the worker: its items and their scores, or the error the model raised."""

    items: list[Any]
    scores: list[Score] | None
    error: BaseException | None
    seconds: float


class ScoringWorker:
    """One batch in flight at a time; ``submit`` when ``idle``, ``collect`` what came back."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Scorer, list[Any]] | None] = queue.Queue(maxsize=1)
        self._done: queue.Queue[Scored] = queue.Queue()
        self.in_flight = 0
        self._items: deque[list[Any]] = deque()  # the batches handed over and not collected, oldest first
        self._since: float | None = None  # when the batch in flight was handed over
        self._thread = threading.Thread(target=self._work, name="finsent-scoring", daemon=True)
        self._thread.start()

    @property
    def idle(self) -> bool:
        return self.in_flight == 0

    def busy_for(self) -> float:
        """Seconds the batch in flight has been in the model (0 when idle)."""
        since = self._since
        return 0.0 if since is None or not self.in_flight else time.monotonic() - since

    def submit(self, scorer: Scorer, items: Sequence[Any], texts: list[str]) -> None:
        self.in_flight += 1
        self._since = time.monotonic()
        batch = list(items)
        self._items.append(batch)
        self._jobs.put((scorer, [batch, texts]))

    def unscored(self) -> Iterator[Any]:
        """The items handed over whose scores the loop has not collected, oldest first."""
        for batch in self._items:
            yield from batch

    def collect(self, wait_s: float = 0.0) -> list[Scored]:
        """Batches that came back; waits up to ``wait_s`` for the first one if one is in flight."""
        out: list[Scored] = []
        if wait_s > 0 and self.in_flight:
            try:
                out.append(self._done.get(timeout=wait_s))
            except queue.Empty:
                return out
        while True:
            try:
                out.append(self._done.get_nowait())
            except queue.Empty:
                break
        self.in_flight -= len(out)
        for _ in out:
            self._items.popleft()  # one batch in flight at a time: results come back in order
        return out

    def drain(self) -> list[Scored]:
        """Every batch in flight, waiting for them."""
        out: list[Scored] = []
        while self.in_flight:
            out.extend(self.collect(wait_s=1.0))
        return out

    def close(self) -> None:
        self.drain()
        self._jobs.put(None)
        self._thread.join(timeout=5)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            scorer, (items, texts) = job
            started = time.perf_counter()
            try:
                self._done.put(Scored(items, scorer.score(texts), None, time.perf_counter() - started))
            except BaseException as exc:  # the loop isolates the failing record
                self._done.put(Scored(items, None, exc, time.perf_counter() - started))
