"""The input partitions this daemon owns: read position, what the store holds, owner epoch, and progress.

Idleness is a state carried with the partition (``pipeline.progress``): the quiet spell a partition
is in comes from the store on assignment and goes back to what the store holds on a rewind, so
neither a restart, a rebalance nor a rewind starts it again; only a record that moves the
partition's progress on does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from pipeline.ownership import StoredPartition
from pipeline.progress import PartitionProgress, is_idle, moves_on

TP = tuple[str, int]


@dataclass
class Owned:
    position: int  # next offset to read
    expected: int | None  # the store's next offset as we last saw it (None: never committed)
    epoch: int | None  # our owner epoch (``pipeline.ownership``): the store fences our writes on it
    event_ms: int | None  # newest event time that moved the partition on
    quiet_since_ms: int  # when the record that last moved it on was appended (or, never known, the assignment)
    stored_event_ms: int | None  # ... as the store holds them
    stored_quiet_since_ms: int
    quiet_known: bool = True  # False: ``quiet_since_ms`` is the assignment, no record's time
    stored_quiet_known: bool = True


class OwnedPartitions:
    """Per-partition state; ``caught_up(tp)`` is the wall-clock time (ms) of the fetch response that last
    showed the partition read to its log end, or ``None``."""

    def __init__(
        self, idle_ms: int, claim_ttl_ms: int, caught_up: Callable[[TP], int | None], lead_ms: int | None = None
    ) -> None:
        self.idle_ms = idle_ms
        self.lead_ms = lead_ms  # a record stamped further ahead of when it was written does not move progress
        self.claim_ttl_ms = claim_ttl_ms
        self.caught_up = caught_up
        self.owned: dict[TP, Owned] = {}

    def __contains__(self, tp: object) -> bool:
        return tp in self.owned

    def __bool__(self) -> bool:
        return bool(self.owned)

    def __len__(self) -> int:
        return len(self.owned)

    def assign(self, tp: TP, stored: StoredPartition, now_ms: int) -> None:
        """Take a partition over as the store holds it; its quiet spell goes on from the stored one."""
        quiet = stored.quiet_since_ms if stored.quiet_since_ms is not None else now_ms
        offset, known = stored.next_offset, stored.quiet_since_ms is not None
        self.owned[tp] = Owned(
            offset or 0, offset, stored.epoch, stored.event_ms, quiet, stored.event_ms, quiet, known, known
        )

    def restore(self, tp: TP, stored: StoredPartition, now_ms: int) -> None:
        """Back to what the store holds (a rewind), keeping our epoch: if another member took the partition
        meanwhile, our writes stay fenced until the group tells us."""
        epoch = self.owned[tp].epoch if tp in self.owned else stored.epoch
        self.assign(tp, StoredPartition(stored.next_offset, stored.event_ms, stored.quiet_since_ms, epoch), now_ms)

    def revoke(self, tps: Iterable[TP]) -> None:
        for tp in tps:
            with contextlib.suppress(KeyError):
                del self.owned[tp]

    def read(self, tp: TP, offset: int) -> None:
        """A record at ``offset`` was read (valid or not)."""
        self.owned[tp].position = offset + 1

    def skip_to(self, positions: Mapping[TP, int | None]) -> None:
        """The consumer's positions: past transaction markers and records the broker no longer holds."""
        for tp, position in positions.items():
            state = self.owned.get(tp)
            if state is not None and position is not None and position > state.position:
                state.position = position

    def saw_event(
        self, tp: TP, event_ms: int, now_ms: int, watermark_ms: int | None, appended_ms: int | None = None
    ) -> None:
        """A record of ``tp`` with this event time was scored and counted (records are handled in order).

        Only a record past both the partition's newest event time and the group's watermark, and stamped
        no more than ``lead_ms`` after it was written, moves it on and ends its quiet spell; a late,
        duplicate or future-stamped one changes nothing. The new spell starts when the record was
        appended (its Kafka timestamp), or when it was read if that is earlier or unknown: a record
        read late (a backlog, a daemon starting) is not a partition that just spoke."""
        state = self.owned.get(tp)
        if state is None:
            return
        at = now_ms if appended_ms is None or appended_ms < 0 else min(now_ms, appended_ms)
        if not moves_on(event_ms, state.event_ms, watermark_ms, at, self.lead_ms):
            return
        state.event_ms = event_ms
        state.quiet_since_ms = max(state.quiet_since_ms, at) if state.quiet_known else at
        state.quiet_known = True

    def positions(self, held: dict[TP, int] | None = None) -> dict[TP, int]:
        """The next offset to commit per partition: the read position, or the oldest record still
        waiting for the model (``held``), so nothing unscored is ever committed."""
        held = held or {}
        return {tp: min(s.position, held.get(tp, s.position)) for tp, s in self.owned.items()}

    def expected(self) -> dict[TP, int | None]:
        return {tp: s.expected for tp, s in self.owned.items()}

    def epochs(self) -> dict[TP, int]:
        return {tp: s.epoch for tp, s in self.owned.items() if s.epoch is not None}

    def progress(self, now_ms: int, held: dict[TP, int] | None = None) -> dict[TP, PartitionProgress]:
        """Newest event time (never past the wall clock) and quiet spell of each partition, with an idle
        claim where it is caught up, quiet for ``idle_ms`` and nothing of it waits for the model."""
        out = {}
        for tp, s in self.owned.items():
            caught_up = self.caught_up(tp)
            idle = is_idle(
                s.quiet_since_ms,
                caught_up,
                now_ms,
                idle_ms=self.idle_ms,
                claim_ttl_ms=self.claim_ttl_ms,
                waiting=tp in (held or {}),
            )
            newest = None if s.event_ms is None else min(s.event_ms, now_ms)
            out[tp] = PartitionProgress(newest, s.quiet_since_ms, caught_up if idle else None)
        return out

    def committed(self, offsets: dict[TP, int], progress: dict[TP, PartitionProgress]) -> None:
        for tp, offset in offsets.items():
            if tp in self.owned:
                self.owned[tp].expected = offset
        for tp, p in progress.items():
            if tp in self.owned:
                state = self.owned[tp]
                state.stored_event_ms = p.event_ms
                if p.quiet_since_ms is not None:
                    state.stored_quiet_since_ms, state.stored_quiet_known = p.quiet_since_ms, state.quiet_known

    def rewind(self) -> None:
        """Back to what the store holds (without seeking: for a daemon that is stopping)."""
        for s in self.owned.values():
            s.position = s.expected or 0
            s.event_ms = s.stored_event_ms
            s.quiet_since_ms, s.quiet_known = s.stored_quiet_since_ms, s.stored_quiet_known
