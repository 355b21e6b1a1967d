"""Who may write what, on SQLite and the real PostgreSQL: owner epochs, the partitions windows wait for, one group.

A checkpoint is fenced on the owner epoch of each partition it writes for, so a member that lost a
partition cannot write an idle claim for it even while its offset still matches; the partitions a
window waits for are the store's (the largest count any daemon saw, and every partition with stored
progress), not one daemon's metadata; a second consumer group is refused on the same tables.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.alerts import SpikeDetector
from pipeline.ownership import GroupConflictError, RetireError
from pipeline.progress import PartitionProgress
from pipeline.spikes import SpikeRule
from pipeline.store import Checkpoint, FencedError, Store
from pipeline.tooling.broker import EmbeddedBroker
from pipeline.windows import Counts
from tests.helpers import ROOT, closed_window_starts, subprocess_env

pytestmark = pytest.mark.integration
MIN = 60_000
GRACE = 5_000
NEWS = [("news", p) for p in range(4)]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    url = f"sqlite:///{tmp_path / 's.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = Store(url, window_size_ms=MIN, grace_ms=GRACE, detector=SpikeDetector(SpikeRule(), MIN, 60))
    s.create_schema()
    yield s
    s.close()


def window_0(n: int) -> dict[tuple[str, str, int], Counts]:
    return {("all", "all", 0): Counts(n=n, n_unique=n, n_neutral=n)}


def test_windows_wait_for_partitions_that_only_another_daemon_has_seen(store: Store) -> None:
    # daemon B sees four partitions of news and a new topic, wires, added in a rolling deploy
    seen_by_b = frozenset({*NEWS, ("wires", 0)})
    cp = Checkpoint("g", {NEWS[0]: 1}, {NEWS[0]: None}, progress={NEWS[0]: PartitionProgress(10 * MIN)})
    assert store.commit_checkpoint(dataclasses.replace(cp, partitions=seen_by_b)).watermark_ms is None
    # daemon A's metadata is stale (two partitions of news, no wires): it reads news[1] far past window 0
    seen_by_a = frozenset(NEWS[:2])
    cp = Checkpoint(
        "g", {NEWS[1]: 1}, {NEWS[1]: None}, deltas=window_0(1), progress={NEWS[1]: PartitionProgress(10 * MIN)}
    )
    result = store.commit_checkpoint(dataclasses.replace(cp, partitions=seen_by_a))
    assert result.watermark_ms is None and result.closed == [], "news[2], news[3] and wires[0] were never read"
    assert closed_window_starts(store) == set()
    # every partition B saw has passed window 0: now it closes, whichever daemon commits
    progress = {tp: PartitionProgress(2 * MIN) for tp in [*NEWS[2:], ("wires", 0)]}
    cp = Checkpoint("g", dict.fromkeys(progress, 1), dict.fromkeys(progress), progress=progress, partitions=seen_by_a)
    assert store.commit_checkpoint(cp).watermark_ms == 2 * MIN
    assert closed_window_starts(store) == {0}


def test_a_partition_with_stored_progress_is_waited_for_beyond_the_registered_count(store: Store) -> None:
    five = ("news", 4)  # a partition added to the topic: one daemon already reads it, the others do not see it
    cp = Checkpoint("g", {five: 1}, {five: None}, progress={five: PartitionProgress(30_000)})
    store.commit_checkpoint(dataclasses.replace(cp, partitions=frozenset({*NEWS, five})))
    progress = {tp: PartitionProgress(10 * MIN) for tp in NEWS}
    cp = Checkpoint("g", dict.fromkeys(NEWS, 1), dict.fromkeys(NEWS), progress=progress, partitions=frozenset(NEWS))
    assert store.commit_checkpoint(cp).watermark_ms == 30_000, "news[4] holds the watermark at its own progress"


def test_a_retired_topic_is_no_longer_waited_for(store: Store) -> None:
    progress = {NEWS[0]: PartitionProgress(10 * MIN), ("old", 0): PartitionProgress(1_000)}
    seen = frozenset({NEWS[0], ("old", 0)})
    cp = Checkpoint("g", dict.fromkeys(progress, 1), dict.fromkeys(progress), progress=progress, partitions=seen)
    assert store.commit_checkpoint(cp, now=datetime.now(UTC) - timedelta(minutes=5)).watermark_ms == 1_000
    assert store.retire_topic("g", "old") == 1
    cp = Checkpoint("g", {NEWS[0]: 2}, {NEWS[0]: 1}, progress={NEWS[0]: PartitionProgress(10 * MIN)})
    assert store.commit_checkpoint(dataclasses.replace(cp, partitions=frozenset({NEWS[0]}))).watermark_ms == (10 * MIN)


def test_a_topic_a_daemon_still_reads_is_not_retired(store: Store) -> None:
    cp = Checkpoint("g", {("old", 0): 1}, {("old", 0): None}, progress={("old", 0): PartitionProgress(1_000)})
    store.commit_checkpoint(dataclasses.replace(cp, partitions=frozenset({("old", 0)})))
    with pytest.raises(RetireError, match=r"old was committed by group 'g' \d+ s ago: a daemon still reads it"):
        store.retire_topic("g", "old")
    assert store.load_offsets("g", [("old", 0)]) == {("old", 0): 1}, "its offsets are kept"


def test_a_member_that_lost_a_partition_cannot_write_for_it(store: Store) -> None:
    p0 = NEWS[0]
    a = store.assign_partitions("g", [p0])[p0]
    assert (a.next_offset, a.epoch) == (None, 1)
    store.commit_checkpoint(
        Checkpoint("g", {p0: 5}, {p0: None}, progress={p0: PartitionProgress(MIN)}, epochs={p0: a.epoch})
    )
    b = store.assign_partitions("g", [p0])[p0]  # member A froze; the group hands the partition to B
    assert (b.next_offset, b.event_ms, b.epoch) == (5, MIN, 2)
    claim = PartitionProgress(MIN, 0, 10)  # A, thawed: "idle" — and its offset still matches
    zombie = Checkpoint("g", {p0: 5}, {p0: 5}, progress={p0: claim}, epochs={p0: a.epoch}, partitions=frozenset([p0]))
    with pytest.raises(FencedError, match=r"news\[0\] was assigned again"):
        store.commit_checkpoint(zombie)
    assert store.load_partitions("g", [p0])[p0].quiet_since_ms is None, "nothing of the zombie's claim was written"
    owner = Checkpoint("g", {p0: 6}, {p0: 5}, progress={p0: PartitionProgress(2 * MIN)}, epochs={p0: b.epoch})
    assert store.commit_checkpoint(owner).watermark_ms is None


def test_a_second_group_is_refused_on_the_same_tables(store: Store) -> None:
    store.claim_group("desk-a")
    store.claim_group("desk-a")
    with pytest.raises(GroupConflictError, match="already holds the windows of consumer group 'desk-a'"):
        store.claim_group("desk-b")


def test_a_store_from_before_the_claim_belongs_to_the_group_that_committed_in_it(store: Store) -> None:
    store.commit_checkpoint(Checkpoint("desk-a", {NEWS[0]: 1}, {NEWS[0]: None}))
    with pytest.raises(GroupConflictError):
        store.claim_group("desk-b")
    store.claim_group("desk-a")


def test_finsent_run_refuses_a_second_group_at_start_up(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, model_dir: Path
) -> None:
    store_url = f"sqlite:///{tmp_path / 'shared.db'}"
    first = Store(store_url)  # the first deployment has committed in this store
    first.create_schema()
    first.commit_checkpoint(Checkpoint(f"{unique}-group", {(f"{unique}.news", 0): 1}, {(f"{unique}.news", 0): None}))
    first.close()
    env = subprocess_env(broker.bootstrap, unique, f"{unique}.news", store_url, model_dir, group_id=f"{unique}-other")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pipeline", "run"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError("a daemon of a second group kept running on the first group's store") from exc
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"already holds the windows of consumer group '{unique}-group'" in result.stderr
    assert "Traceback" not in result.stderr


def test_finsent_retire_topic_forgets_a_topic_for_its_group(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pipeline.cli import app

    url = f"sqlite:///{tmp_path / 'r.db'}"
    store = Store(url)
    store.create_schema()
    progress = {("old", 0): PartitionProgress(1_000), ("old", 1): PartitionProgress(1_000)}
    seen = frozenset(progress)
    store.commit_checkpoint(
        Checkpoint("g", dict.fromkeys(progress, 1), dict.fromkeys(progress), progress=progress, partitions=seen),
        now=datetime.now(UTC) - timedelta(minutes=5),  # the last daemon that read it stopped five minutes ago
    )
    result = CliRunner().invoke(app, ["retire-topic", "old", "--group-id", "g", "--store", url], env={})
    assert result.exit_code == 0, result.output
    assert "old retired for group g: 2 partition offsets forgotten" in result.output
    assert store.load_offsets("g", list(progress)) == dict.fromkeys(progress)
    store.close()
