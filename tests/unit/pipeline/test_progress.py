"""The progress rule, as tables: what a partition's owner claims, and what the watermark makes of it.

Idleness is a state: assignment, rebalance and rewind carry the stored quiet spell on; a record that
does not move a partition on (dead-lettered, late, duplicate) does not end it; an idle claim rests on
a fetch response seen after the quiet spell began and within the claim's time to live.
"""

from __future__ import annotations

import pytest

from pipeline.ownership import StoredPartition
from pipeline.partitions import OwnedPartitions
from pipeline.progress import PartitionProgress, global_watermark, is_idle, moves_on, wanted_partitions

TTL = 5_000
IDLE = 3_000
GRACE = 5_000
NOW = 1_000_000_000
P0, P1, P2 = ("t", 0), ("t", 1), ("t", 2)


def idle(event_ms: int | None, quiet_since: int, caught_up: int = NOW - 1_000) -> PartitionProgress:
    return PartitionProgress(event_ms, quiet_since, caught_up)


@pytest.mark.parametrize(
    ("stored", "expected", "why"),
    [
        ({}, None, "nothing stored: nobody has read any partition yet"),
        ({P0: PartitionProgress(5_000), P1: PartitionProgress(9_000)}, None, "partition 2 never committed holds back"),
        (
            {P0: PartitionProgress(5_000), P1: PartitionProgress(9_000), P2: PartitionProgress(7_000)},
            5_000,
            "the slowest partition decides, owned by us or not",
        ),
        (
            {P0: idle(5_000, NOW - 10_000), P1: PartitionProgress(90_000), P2: PartitionProgress(70_000)},
            15_000,
            "an idle partition moves on with the wall clock from its newest event",
        ),
        (
            {P0: idle(5_000, NOW - 900_000, NOW - TTL - 1), P1: PartitionProgress(9_000), P2: PartitionProgress(7_000)},
            5_000,
            "a claim on evidence older than its time to live is not trusted (frozen, cut-off or dead owner)",
        ),
        (
            {P0: idle(5_000, NOW - 900, NOW - 1_000), P1: PartitionProgress(9_000), P2: PartitionProgress(7_000)},
            5_000,
            "a claim on a high-water mark seen before the quiet spell began is not trusted",
        ),
        (
            {P0: PartitionProgress(5_000, NOW - 900_000), P1: PartitionProgress(9_000), P2: PartitionProgress(7_000)},
            5_000,
            "a quiet spell without a claim is not idleness (not known to be caught up)",
        ),
        (
            {P0: PartitionProgress(None), P1: PartitionProgress(9_000), P2: PartitionProgress(7_000)},
            None,
            "a partition committed without any event time and not idle holds back",
        ),
        (
            {P0: idle(None, NOW - 20_000), P1: idle(None, NOW - 5_000), P2: idle(NOW - 1_000, NOW - 1_000)},
            NOW,
            "all caught up and quiet on a live stream: windows close on the wall clock",
        ),
        (
            {P0: PartitionProgress(NOW + 72_000_000), P1: PartitionProgress(NOW + 500), P2: idle(None, NOW - 3_000)},
            NOW,
            "no event time moves progress past the wall clock",
        ),
    ],
)
def test_global_watermark(stored: dict, expected: int | None, why: str) -> None:  # type: ignore[type-arg]
    assert global_watermark(stored, [P0, P1, P2], NOW, TTL) == expected, why


def test_global_watermark_ignores_partitions_that_are_not_inputs() -> None:
    stored = {P0: PartitionProgress(5_000), ("old-topic", 0): PartitionProgress(1)}
    assert global_watermark(stored, [P0], NOW, TTL) == 5_000
    assert global_watermark(stored, [], NOW, TTL) is None, "no input partitions known: close nothing"


@pytest.mark.parametrize(
    ("event_ms", "newest", "watermark", "moves"),
    [
        (10, None, None, True),
        (10, 9, None, True),
        (10, 10, None, False),  # a duplicate, or a record re-read after a rewind
        (10, 11, None, False),  # out of order within the partition
        (10, 5, 10, False),  # late: the group already passed it
        (11, 5, 10, True),
    ],
)
def test_what_moves_a_partition_on(event_ms: int, newest: int | None, watermark: int | None, moves: bool) -> None:
    assert moves_on(event_ms, newest, watermark) is moves


@pytest.mark.parametrize(
    ("event_ms", "written", "moves", "why"),
    [
        (NOW, NOW, True, "stamped when it was written"),
        (NOW + GRACE, NOW, True, "a clock ahead by the grace period at most"),
        (NOW + GRACE + 1, NOW, False, "stamped further ahead than the grace period"),
        (NOW + 240_000, NOW, False, "an item dated four minutes ahead"),
        (NOW - 3600_000, NOW, True, "a replay of old news"),
        (NOW + 240_000, None, True, "no time it was written: only the newest and the watermark decide"),
    ],
)
def test_a_record_stamped_ahead_of_when_it_was_written_does_not_move_its_partition(
    event_ms: int, written: int | None, moves: bool, why: str
) -> None:
    assert moves_on(event_ms, NOW - 10_000_000, None, written, GRACE) is moves, why


def test_a_kafka_timestamp_set_ahead_with_the_event_time_does_not_move_the_partition() -> None:
    """A producer controls its records' Kafka timestamps: one that stamps both times four minutes ahead is
    judged against when the record was read, not against the timestamp it claims."""
    partitions = OwnedPartitions(IDLE, TTL, lambda tp: None, lead_ms=GRACE)
    partitions.assign(P0, IDLE_STORED, NOW)
    partitions.saw_event(P0, NOW + 240_000, NOW, None, appended_ms=NOW + 240_000)
    assert partitions.progress(NOW)[P0].event_ms == QUIET_LONG_AGO - 500, "not moved on"
    partitions.saw_event(P0, NOW + GRACE, NOW, None, appended_ms=NOW + 240_000)
    assert partitions.progress(NOW + GRACE)[P0].event_ms == NOW + GRACE, "within the grace period of its reading"


def test_a_record_dated_ahead_closes_no_window_of_the_records_behind_it() -> None:
    """A partition whose backlog holds one item dated minutes ahead, the others idle and caught up: the
    windows of the records behind that item stay open until they are counted."""
    behind = [NOW - 30_000 + i * 1_000 for i in range(30)]  # written and stamped in the last 30 s
    p0 = OwnedPartitions(IDLE, TTL, lambda tp: None, lead_ms=GRACE)
    p0.assign(P0, StoredPartition(next_offset=0, event_ms=NOW - 31_000, quiet_since_ms=NOW - 31_000), NOW)
    p0.saw_event(P0, NOW + 240_000, NOW + 5_000, None, appended_ms=NOW - 30_500)  # counted; the rest wait
    others = {tp: idle(NOW, NOW, caught_up=NOW + 4_000) for tp in (P1, P2)}
    stored = {**others, **p0.progress(NOW + 5_000, held={P0: 1})}
    mark = global_watermark(stored, [P0, P1, P2], NOW + 5_000, TTL)
    assert mark is not None and mark < behind[0], "the oldest record still to count is not behind the watermark"
    for event_ms in behind:
        p0.saw_event(P0, event_ms, NOW + 5_000, mark, appended_ms=event_ms)
    assert p0.progress(NOW + 5_000)[P0].event_ms == behind[-1], "the records written on time move it on"


@pytest.mark.parametrize(
    ("quiet_since", "caught_up", "waiting", "claims", "why"),
    [
        (NOW - IDLE, NOW - 100, False, True, "quiet long enough, caught up a moment ago"),
        (NOW - IDLE + 1, NOW - 100, False, False, "not quiet long enough yet"),
        (NOW - IDLE, None, False, False, "no fetch response shows it caught up"),
        (NOW - IDLE, NOW - IDLE - 1, False, False, "caught up before the quiet spell began: says nothing of it"),
        (NOW - 10 * TTL, NOW - TTL - 1, False, False, "the evidence is older than the claim's time to live"),
        (NOW - IDLE, NOW - 100, True, False, "a record of it waits for the model"),
    ],
)
def test_when_an_owner_claims_a_partition_idle(
    quiet_since: int, caught_up: int | None, waiting: bool, claims: bool, why: str
) -> None:
    assert is_idle(quiet_since, caught_up, NOW, idle_ms=IDLE, claim_ttl_ms=TTL, waiting=waiting) is claims, why


def test_the_store_waits_for_every_partition_any_daemon_saw() -> None:
    registered = {"news": 4, "wires": 2}
    stored = [("news", 0), ("wires", 5), ("retired", 0)]
    seen = [("news", 0), ("news", 1)]
    assert wanted_partitions(registered, stored, seen) == {
        *[("news", p) for p in range(4)],
        ("wires", 0),
        ("wires", 1),
        ("wires", 5),
    }, "a registered count, a stored partition beyond it; a topic nobody registers any more is not waited for"


# ---- the owner's side: one partition through assign, records, rewind and reassignment ------------------


def owned(caught_up: int | None, stored: StoredPartition) -> OwnedPartitions:
    partitions = OwnedPartitions(IDLE, TTL, lambda tp: caught_up)
    partitions.assign(P0, stored, NOW)
    return partitions


QUIET_LONG_AGO = NOW - 6 * 3600_000  # a partition quiet for six hours
IDLE_STORED = StoredPartition(next_offset=1, event_ms=QUIET_LONG_AGO - 500, quiet_since_ms=QUIET_LONG_AGO, epoch=7)


def test_an_idle_partition_stays_idle_across_a_restart_or_rebalance() -> None:
    partitions = owned(NOW - 100, IDLE_STORED)
    claim = partitions.progress(NOW)[P0]
    assert claim == PartitionProgress(QUIET_LONG_AGO - 500, QUIET_LONG_AGO, NOW - 100), "claimed at once, same spell"
    assert claim.at(NOW, TTL) == NOW - 500, "its progress does not fall back from the wall clock to its newest event"
    assert partitions.epochs() == {P0: 7}


def test_a_new_owner_claims_only_once_a_fetch_response_shows_it_caught_up() -> None:
    assert owned(None, IDLE_STORED).progress(NOW)[P0].caught_up_ms is None


def test_a_partition_never_stored_starts_its_quiet_spell_on_assignment() -> None:
    partitions = owned(NOW + IDLE, StoredPartition())
    assert partitions.progress(NOW + IDLE - 1)[P0].caught_up_ms is None
    assert partitions.progress(NOW + IDLE)[P0] == PartitionProgress(None, NOW, NOW + IDLE)


@pytest.mark.parametrize(
    ("event_ms", "watermark", "why"),
    [
        (None, None, "a dead-lettered record: no event time"),
        (QUIET_LONG_AGO - 500, None, "a duplicate of the newest event"),
        (QUIET_LONG_AGO - 10_000, None, "an older event"),
        (NOW - 60_000, NOW - 30_000, "a late event: the group's watermark already passed it"),
    ],
)
def test_a_record_that_does_not_move_the_partition_on_does_not_end_idleness(
    event_ms: int | None, watermark: int | None, why: str
) -> None:
    partitions = owned(NOW + 100, IDLE_STORED)
    partitions.read(P0, 1)
    if event_ms is not None:
        partitions.saw_event(P0, event_ms, NOW, watermark)
    claim = partitions.progress(NOW + 200)[P0]
    assert claim.caught_up_ms == NOW + 100 and claim.quiet_since_ms == QUIET_LONG_AGO, why
    assert claim.event_ms == QUIET_LONG_AGO - 500, why


def test_a_record_that_moves_the_partition_on_ends_idleness_until_it_is_quiet_again() -> None:
    partitions = owned(NOW + 100, IDLE_STORED)
    partitions.read(P0, 1)
    partitions.saw_event(P0, NOW - 2_000, NOW, NOW - 30_000)
    assert partitions.progress(NOW + 200)[P0] == PartitionProgress(NOW - 2_000, NOW, None)
    later = OwnedPartitions(IDLE, TTL, lambda tp: NOW + IDLE)
    later.owned = partitions.owned
    assert later.progress(NOW + IDLE)[P0] == PartitionProgress(NOW - 2_000, NOW, NOW + IDLE)


def test_a_rewind_goes_back_to_the_stored_quiet_spell_and_keeps_the_epoch() -> None:
    partitions = owned(NOW + 100, IDLE_STORED)
    partitions.read(P0, 1)
    partitions.saw_event(P0, NOW - 2_000, NOW, None)  # read, not committed
    partitions.rewind()
    claim = partitions.progress(NOW + 200)[P0]
    assert claim == PartitionProgress(QUIET_LONG_AGO - 500, QUIET_LONG_AGO, NOW + 100)
    partitions.saw_event(P0, NOW - 2_000, NOW, None)
    partitions.restore(P0, StoredPartition(1, QUIET_LONG_AGO - 500, QUIET_LONG_AGO, epoch=8), NOW + 300)
    assert partitions.epochs() == {P0: 7}, "a rewind never takes a partition over: a newer epoch stays fenced"
    assert partitions.progress(NOW + 400)[P0].quiet_since_ms == QUIET_LONG_AGO


def test_a_committed_quiet_spell_is_what_a_rewind_returns_to() -> None:
    partitions = owned(NOW + 100, IDLE_STORED)
    partitions.read(P0, 1)
    partitions.saw_event(P0, NOW - 2_000, NOW, None)
    progress = partitions.progress(NOW + 50)
    partitions.committed(partitions.positions(), progress)
    partitions.rewind()
    assert partitions.progress(NOW + 60)[P0].quiet_since_ms == NOW


def test_commits_step_over_transaction_markers_and_deleted_records_but_never_back() -> None:
    partitions = owned(None, StoredPartition())
    partitions.skip_to({P0: 100})  # retention deleted 0..99: the consumer starts at the log start
    assert partitions.positions() == {P0: 100}
    partitions.read(P0, 104)
    partitions.skip_to({P0: 106, P1: 3})  # a commit marker at 105; a partition we do not own
    assert partitions.positions() == {P0: 106}
    partitions.skip_to({P0: 50})
    assert partitions.positions() == {P0: 106}
    assert partitions.positions({P0: 104}) == {P0: 104}, "never past a record still waiting for the model"


def test_a_quiet_spell_starts_when_the_record_was_appended_not_when_it_was_read() -> None:
    partitions = owned(None, StoredPartition())  # a first start: the partition's spell is not known yet
    partitions.read(P0, 0)
    partitions.saw_event(P0, NOW - 16_000, NOW, None, appended_ms=NOW - 16_000)  # read 16 s after it was written
    assert partitions.progress(NOW)[P0].quiet_since_ms == NOW - 16_000, "not the assignment, not the read"
    claim = OwnedPartitions(IDLE, TTL, lambda tp: NOW + 100)
    claim.owned = partitions.owned
    assert claim.progress(NOW + 200)[P0].at(NOW + 200, TTL) == NOW + 200, "caught up: it follows the wall clock"


@pytest.mark.parametrize(
    ("appended", "expected", "why"),
    [
        (NOW + 60_000, NOW, "a producer clock ahead of ours: the time it was read"),
        (None, NOW, "no Kafka timestamp: the time it was read"),
        (-1, NOW, "no Kafka timestamp (-1): the time it was read"),
        (QUIET_LONG_AGO - 1_000, QUIET_LONG_AGO, "appended before the spell already known: the spell never goes back"),
    ],
)
def test_where_a_quiet_spell_starts(appended: int | None, expected: int, why: str) -> None:
    partitions = owned(None, IDLE_STORED)
    partitions.saw_event(P0, NOW - 5_000, NOW, None, appended_ms=appended)
    assert partitions.progress(NOW)[P0].quiet_since_ms == expected, why
