"""The input partitions this daemon owns: read position, what the store holds, and event-time progress."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pipeline.windows import PartitionProgress

TP = tuple[str, int]


@dataclass
class Owned:
    position: int  # next offset to read
    expected: int | None  # the store's next offset as we last saw it (None: never committed)
    event_ms: int | None  # newest event time of the records handled (scored or dead-lettered)
    stored_event_ms: int | None  # newest event time as the store holds it
    last_record_ms: int  # wall clock of the last record, or of the assignment


class OwnedPartitions:
    """Per-partition state; ``caught_up(tp, position)`` says whether a partition has read its log end."""

    def __init__(self, idle_ms: int, caught_up: Callable[[TP, int], bool]) -> None:
        self.idle_ms = idle_ms
        self.caught_up = caught_up
        self.owned: dict[TP, Owned] = {}

    def __contains__(self, tp: object) -> bool:
        return tp in self.owned

    def __bool__(self) -> bool:
        return bool(self.owned)

    def __len__(self) -> int:
        return len(self.owned)

    def assign(self, tp: TP, next_offset: int | None, event_ms: int | None, now_ms: int) -> None:
        self.owned[tp] = Owned(next_offset or 0, next_offset, event_ms, event_ms, now_ms)

    def revoke(self, tps: Iterable[TP]) -> None:
        for tp in tps:
            with contextlib.suppress(KeyError):
                del self.owned[tp]

    def read(self, tp: TP, offset: int, now_ms: int) -> None:
        """A record at ``offset`` was read (valid or not)."""
        state = self.owned[tp]
        state.position = offset + 1
        state.last_record_ms = now_ms

    def saw_event(self, tp: TP, event_ms: int) -> None:
        """A record of ``tp`` with this event time was scored and counted (records are handled in order)."""
        state = self.owned.get(tp)
        if state is not None and (state.event_ms is None or event_ms > state.event_ms):
            state.event_ms = event_ms

    def positions(self, held: dict[TP, int] | None = None) -> dict[TP, int]:
        """The next offset to commit per partition: the read position, or the oldest record still
        waiting for the model (``held``), so nothing unscored is ever committed."""
        held = held or {}
        return {tp: min(s.position, held.get(tp, s.position)) for tp, s in self.owned.items()}

    def expected(self) -> dict[TP, int | None]:
        return {tp: s.expected for tp, s in self.owned.items()}

    def progress(self, now_ms: int, held: dict[TP, int] | None = None) -> dict[TP, PartitionProgress]:
        """Newest event time handled (never past the wall clock), and an idle claim when caught up and
        quiet with nothing waiting for the model."""
        out = {}
        for tp, s in self.owned.items():
            idle = (
                now_ms - s.last_record_ms >= self.idle_ms and self.caught_up(tp, s.position) and tp not in (held or {})
            )
            newest = None if s.event_ms is None else min(s.event_ms, now_ms)
            out[tp] = PartitionProgress(newest, s.last_record_ms if idle else None)
        return out

    def committed(self, offsets: dict[TP, int], progress: dict[TP, PartitionProgress]) -> None:
        for tp, offset in offsets.items():
            if tp in self.owned:
                self.owned[tp].expected = offset
        for tp, p in progress.items():
            if tp in self.owned:
                self.owned[tp].stored_event_ms = p.event_ms

    def rewind(self) -> None:
        """Back to what the store holds (without seeking: for a daemon that is stopping)."""
        for s in self.owned.values():
            s.position = s.expected or 0
            s.event_ms = s.stored_event_ms
