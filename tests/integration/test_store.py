"""The store on SQLite and on the real PostgreSQL: fenced offsets, additive deltas, global progress, spikes on close."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.alerts import SpikeDetector
from pipeline.progress import PartitionProgress
from pipeline.spikes import SpikeRule, alert_id
from pipeline.store import Checkpoint, FencedError, RecordError, Store
from pipeline.windows import Counts
from tests.helpers import window_totals

pytestmark = pytest.mark.integration
MIN = 60_000
GRACE = 5_000
P0, P1 = ("t", 0), ("t", 1)
BOTH = frozenset({P0, P1})


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    url = f"sqlite:///{tmp_path / 's.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = Store(
        url,
        window_size_ms=MIN,
        grace_ms=GRACE,
        detector=SpikeDetector(SpikeRule(min_count=5, min_history=2, floor=0.3, cold_start_ratio=0.6), MIN, 60),
    )
    s.create_schema()
    yield s
    s.close()


def test_offsets_are_fenced(store: Store) -> None:
    store.commit_checkpoint(Checkpoint("g", offsets={("t", 0): 10}, expected={("t", 0): None}))
    with pytest.raises(FencedError):  # a second owner that also thought the partition was new
        store.commit_checkpoint(Checkpoint("g", offsets={("t", 0): 4}, expected={("t", 0): None}))
    store.commit_checkpoint(Checkpoint("g", offsets={("t", 0): 20}, expected={("t", 0): 10}))
    with pytest.raises(FencedError):  # a stale owner
        store.commit_checkpoint(Checkpoint("g", offsets={("t", 0): 15}, expected={("t", 0): 10}))
    assert store.load_offsets("g", [("t", 0), ("t", 1)]) == {("t", 0): 20, ("t", 1): None}


def test_fenced_commit_writes_nothing(store: Store) -> None:
    store.commit_checkpoint(Checkpoint("g", offsets={("t", 0): 10}, expected={("t", 0): None}))
    stale = Checkpoint(
        "g", offsets={("t", 0): 12}, expected={("t", 0): 3}, deltas={("all", "all", 0): Counts(n=2, n_negative=2)}
    )
    with pytest.raises(FencedError):
        store.commit_checkpoint(stale)
    assert window_totals(store) == {}


def test_deltas_add_up_and_a_spike_raises_one_alert(store: Store) -> None:
    def window(start: int, n: int, neg: int) -> dict:  # type: ignore[type-arg]
        return {
            ("ticker", "ACME", start): Counts(
                n=n, n_unique=n, n_negative=neg, n_neutral=n - neg, sum_p_negative=float(neg)
            )
        }

    expected: dict[tuple[str, int], int | None] = {("t", 0): None}
    offset = 0
    for i, (n, neg) in enumerate([(10, 1), (10, 1), (10, 2), (10, 9)]):
        for half, neg_half in ((n // 2, neg // 2), (n - n // 2, neg - neg // 2)):  # two deltas must add up
            offset += half
            cp = Checkpoint(
                "g", offsets={("t", 0): offset}, expected=dict(expected), deltas=window(i * MIN, half, neg_half)
            )
            store.commit_checkpoint(cp)
            expected = {("t", 0): offset}
    result = store.commit_checkpoint(
        Checkpoint(
            "g",
            offsets={("t", 0): offset},
            expected=dict(expected),
            progress={("t", 0): PartitionProgress(4 * MIN + GRACE)},
            partitions=frozenset({("t", 0)}),
        )
    )
    assert [a.id for a in result.alerts] == [alert_id("ticker", "ACME", 3 * MIN)]
    totals = window_totals(store, "ticker")
    assert [totals[("ACME", i * MIN)]["n"] for i in range(4)] == [10, 10, 10, 10]
    assert [totals[("ACME", i * MIN)]["n_negative"] for i in range(4)] == [1, 1, 2, 9]
    again = store.commit_checkpoint(
        Checkpoint(
            "g",
            offsets={("t", 0): offset},
            expected=dict(expected),
            progress={("t", 0): PartitionProgress(9 * MIN)},
            partitions=frozenset({("t", 0)}),
        )
    )
    assert again.alerts == [], "closing again never duplicates an alert"
    assert [a.id for a in store.unpublished_alerts()] == [alert_id("ticker", "ACME", 3 * MIN)]
    store.mark_published([alert_id("ticker", "ACME", 3 * MIN)])
    assert store.unpublished_alerts() == []


def one(n: int, neg: int, start: int) -> dict[tuple[str, str, int], Counts]:
    return {("all", "all", start): Counts(n=n, n_unique=n, n_negative=neg, n_neutral=n - neg)}


def test_a_window_closes_only_when_every_partition_has_passed_it(store: Store) -> None:
    # partition 0 races ahead ten minutes; partition 1 is not even committed yet
    cp = Checkpoint(
        "g", {P0: 10}, {P0: None}, deltas=one(10, 1, 0), progress={P0: PartitionProgress(10 * MIN)}, partitions=BOTH
    )
    result = store.commit_checkpoint(cp)
    assert result.watermark_ms is None and result.closed == [], "partition 1 has not been read by anybody"
    # another daemon commits partition 1 at 30 s of event time: the watermark is the slower one
    cp = Checkpoint(
        "g", {P1: 3}, {P1: None}, deltas=one(3, 0, 0), progress={P1: PartitionProgress(30_000)}, partitions=BOTH
    )
    result = store.commit_checkpoint(cp)
    assert result.watermark_ms == 30_000 and result.closed == []
    cp = Checkpoint("g", {P1: 4}, {P1: 3}, deltas=one(1, 1, MIN), progress={P1: PartitionProgress(MIN + GRACE)})
    result = store.commit_checkpoint(dataclasses.replace(cp, partitions=BOTH))
    assert result.watermark_ms == MIN + GRACE
    assert [(w.key, w.n) for w in result.closed] == [("all", 13)], "window 0 closes with both partitions' counts"
    assert store.watermark("g") == MIN + GRACE


def test_counts_for_a_closed_window_are_late_never_lost(store: Store) -> None:
    cp = Checkpoint("g", {P0: 5}, {P0: None}, deltas=one(5, 0, 0), progress={P0: PartitionProgress(2 * MIN)})
    store.commit_checkpoint(dataclasses.replace(cp, partitions=frozenset({P0})))
    # a daemon that had not seen the watermark yet commits on-time counts for window 0: the store moves them
    late = Checkpoint("g", {P0: 7}, {P0: 5}, deltas=one(2, 1, 0), progress={P0: PartitionProgress(2 * MIN)})
    result = store.commit_checkpoint(dataclasses.replace(late, partitions=frozenset({P0})))
    assert result.moved_late == 2
    row = window_totals(store)[("all", 0)]
    assert (row["n"], row["n_negative"], row["n_late"], row["n_late_negative"]) == (5, 0, 2, 1)


def test_an_idle_claim_moves_progress_on_with_the_wall_clock_only_on_fresh_evidence(store: Store) -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    now_ms = int(now.timestamp() * 1000)
    base = now_ms - 10 * MIN
    earlier = now - timedelta(seconds=60)
    caught_up_then = now_ms - 60_000 - 100  # a fetch response just before the claim was written, 60 s ago
    idle_p1 = Checkpoint(
        "g", {P1: 0}, {P1: None}, progress={P1: PartitionProgress(None, now_ms - 80_000, caught_up_then)}
    )
    assert store.commit_checkpoint(dataclasses.replace(idle_p1, partitions=BOTH), now=earlier).watermark_ms is None
    busy_p0 = Checkpoint(
        "g", {P0: 5}, {P0: None}, deltas=one(5, 0, window_start(base)), progress={P0: PartitionProgress(base + 1000)}
    )
    result = store.commit_checkpoint(dataclasses.replace(busy_p0, partitions=BOTH), now=now)
    assert result.watermark_ms is None, "partition 1's claim rests on a fetch response 60 s old: it holds back"
    both_idle = Checkpoint(
        "g",
        {P0: 5, P1: 0},
        {P0: 5, P1: 0},
        progress={
            P0: PartitionProgress(base + 1000, now_ms - 5 * MIN, now_ms - 100),
            P1: PartitionProgress(None, now_ms - 80_000, now_ms - 100),
        },
        partitions=BOTH,
    )
    result = store.commit_checkpoint(both_idle, now=now)
    assert result.watermark_ms == base + 1000 + 5 * MIN, "quiet for 5 minutes: 5 minutes past its newest event"
    assert [w.n for w in result.closed] == [5]


def test_a_row_the_store_refuses_is_found_alone(store: Store) -> None:
    from pipeline.store import RecordRows

    good = RecordRows(None, one(1, 0, 0))
    bad = RecordRows(None, {("ticker", "X" * 300, 0): Counts(n=1)})  # wider than the key column
    if store.engine.dialect.name == "sqlite":  # SQLite does not enforce widths: refuse it with a trigger
        with store.engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON windows WHEN length(NEW.key) > 128 "
                "BEGIN SELECT RAISE(ABORT, 'key too long'); END"
            )
    assert store.unstorable([good, bad, good]) == [1]
    assert window_totals(store) == {}, "probing writes nothing"
    cp = Checkpoint("g", {P0: 3}, {P0: None}, deltas={**one(1, 0, 0), **bad.deltas})
    with pytest.raises(RecordError):
        store.commit_checkpoint(cp)
    assert window_totals(store) == {} and store.load_offsets("g", [P0]) == {P0: None}, "nothing half-written"


def window_start(ms: int) -> int:
    return ms - ms % MIN
