"""Event-time progress of the input partitions and the global watermark: pure rules, no I/O.

Each partition's owner stores, beside its offset, the partition's progress: the newest event time
that moved it on (never past the wall clock), and since when it has been quiet — when that record
was appended to the log (its Kafka timestamp, or the time it was read if that is earlier), so a
record read late does not make a partition look as if it had just spoken. A record moves a
partition on only when its event time is past both the partition's newest and the group's
watermark: a dead-lettered, late or duplicate record does not, so it neither ends a quiet spell nor
pulls the partition below a watermark the group already passed. Nor does a record stamped further
ahead of the time it was written than the grace period (a source whose clock runs ahead, an item
dated for later): it is counted in its own window, but it says nothing of how far the stream has
come, and moving the partition on to it would close, before they are read, the windows of the
records written after it with the right time.

Idleness is a state, not a timer. The quiet spell is stored, so a restart, a rebalance or a rewind
continues it instead of starting a new one. An owner claims a partition idle while it has been
quiet for ``idle_ms``, nothing of it waits for the model, and a fetch response received after the
quiet spell began, and recently (within the claim's time to live), showed the read position at
the high-water mark. The claim names the time of that response; a claim whose evidence is older
than the time to live — a frozen or partitioned owner, a leader it cannot fetch from — holds the
partition at its newest event time again.

The global watermark is the oldest progress over every input partition, owned by this daemon or
not: a partition with nothing stored holds every window open. An idle partition moves on with the
wall clock from its newest event time, so windows close on a quiet stream — a live one and a replay
of old data alike — and no partition counts past the wall clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Partition = tuple[str, int]


@dataclass(frozen=True)
class PartitionProgress:
    """One partition's stored progress: its newest event time, since when it is quiet (wall clock), and,
    while its owner claims it idle, when a fetch response last showed it caught up (``caught_up_ms``)."""

    event_ms: int | None
    quiet_since_ms: int | None = None
    caught_up_ms: int | None = None

    def claims_idle(self, now_ms: int, claim_ttl_ms: int) -> bool:
        """The owner claims the partition idle on evidence seen after the quiet spell began, and recently."""
        if self.caught_up_ms is None or not 0 <= now_ms - self.caught_up_ms <= claim_ttl_ms:
            return False
        return self.quiet_since_ms is None or self.caught_up_ms >= self.quiet_since_ms

    def at(self, now_ms: int, claim_ttl_ms: int) -> int | None:
        """Where this partition holds the watermark at ``now_ms``; ``None`` holds every window open."""
        if self.claims_idle(now_ms, claim_ttl_ms):
            if self.event_ms is None:
                return now_ms  # caught up and never had an event: nothing to wait for
            quiet_for = max(0, now_ms - (self.quiet_since_ms if self.quiet_since_ms is not None else now_ms))
            return min(now_ms, self.event_ms + quiet_for)
        return None if self.event_ms is None else min(self.event_ms, now_ms)


def moves_on(
    event_ms: int,
    newest_ms: int | None,
    watermark_ms: int | None,
    written_ms: int | None = None,
    lead_ms: int | None = None,
) -> bool:
    """Whether a record with this event time moves its partition on (ends a quiet spell): past the
    partition's newest and the group's watermark, and, where ``lead_ms`` is given, stamped no more
    than ``lead_ms`` after ``written_ms``, when it was written."""
    if lead_ms is not None and written_ms is not None and event_ms - written_ms > lead_ms:
        return False
    return (newest_ms is None or event_ms > newest_ms) and (watermark_ms is None or event_ms > watermark_ms)


def is_idle(
    quiet_since_ms: int,
    caught_up_ms: int | None,
    now_ms: int,
    *,
    idle_ms: int,
    claim_ttl_ms: int,
    waiting: bool,
) -> bool:
    """The owner's side of a claim: quiet long enough, nothing waiting for the model, and caught up as a
    fetch response showed after the quiet spell began and within the claim's time to live."""
    if waiting or caught_up_ms is None or now_ms - quiet_since_ms < idle_ms:
        return False
    return caught_up_ms >= quiet_since_ms and 0 <= now_ms - caught_up_ms <= claim_ttl_ms


def global_watermark(
    stored: Mapping[Partition, PartitionProgress],
    partitions: Iterable[Partition],
    now_ms: int,
    claim_ttl_ms: int,
) -> int | None:
    """The oldest progress over every partition in ``partitions``; ``None`` holds every window open.

    A partition with nothing stored holds the watermark back (nobody has read it yet); one whose
    owner claims it idle counts at its newest event time plus the time it has been quiet; any other
    counts at its newest event time. No partition counts past ``now_ms``.
    """
    mark: int | None = None
    seen = False
    for tp in partitions:
        seen = True
        p = stored.get(tp)
        value = None if p is None else p.at(now_ms, claim_ttl_ms)
        if value is None:
            return None
        mark = value if mark is None else min(mark, value)
    return mark if seen else None


def wanted_partitions(
    registered: Mapping[str, int], stored: Iterable[Partition], seen: Iterable[Partition]
) -> frozenset[Partition]:
    """The partitions every window waits for: each registered input topic's partitions up to the largest count
    any daemon has seen, those with stored progress, and those this daemon's metadata shows."""
    out = {(topic, p) for topic, count in registered.items() for p in range(count)}
    out.update(tp for tp in stored if tp[0] in registered)
    out.update(seen)
    return frozenset(out)
