"""Who may write what in the store: the store's one consumer group, each partition's owner epoch, fenced
offsets and progress, and the input partitions every window waits for.

* One group per store. ``windows``, ``stories``, ``alerts`` and ``incidents`` are not scoped by consumer
  group, so a second deployment on the same tables would add its counts to the first one's windows
  and close them on its own progress. The first daemon claims the store for its group; a daemon of
  another group is refused at start-up.
* Epochs. Every assignment raises the epoch of each partition it hands over (under the group's
  progress lock, so it is ordered with every checkpoint). A checkpoint names the epoch of each
  partition it writes for and is fenced when any moved on: a member that lost a partition — a frozen
  one, thawed — cannot write for it, not even an idle claim whose offset still matches.
* Input partitions. A daemon sees partitions added to a topic, or a topic added during a rolling
  deploy, only when its metadata catches up; the store keeps, per input topic, the largest partition
  count any daemon of the group has seen, and windows wait for those partitions and for every
  partition with stored progress. A topic leaves the set only when an operator retires it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, delete, func, or_, select, update
from sqlalchemy.engine import Connection

from pipeline import tables as t
from pipeline.engine import StoreError
from pipeline.progress import Partition, PartitionProgress

MEMBER = f"{socket.gethostname()}:{os.getpid()}"
RETIRE_QUIET_S = 60.0  # an input topic is retired only once no offset of it was committed for this long


class FencedError(RuntimeError):
    """Another member took one of our partitions, or committed for it: our pending work is stale."""


class RetireError(StoreError):
    """An input topic cannot be retired yet: a daemon may still read it."""


class GroupConflictError(StoreError):
    """The store already holds the windows of another consumer group."""


@dataclass(frozen=True)
class StoredPartition:
    """What the store holds for one partition: where to read from, its progress and its owner epoch."""

    next_offset: int | None = None  # None: never committed
    event_ms: int | None = None
    quiet_since_ms: int | None = None  # since when its progress has not moved on (a new owner continues it)
    epoch: int | None = None


def claim_group(conn: Connection, group_id: str, now: datetime) -> None:
    """Make ``group_id`` the store's group, or raise ``GroupConflictError`` when another group has it.

    A store from before the claim belongs to the one group that committed progress in it."""
    sg = t.store_group.c
    owner = conn.execute(select(sg.group_id).where(sg.id == 1)).scalar_one_or_none()
    if owner is None:
        earlier = sorted(set(conn.execute(select(t.progress.c.group_id)).scalars()))
        if len(earlier) > 1:
            raise GroupConflictError(
                f"the store already mixes the windows of consumer groups {', '.join(map(repr, earlier))}: start "
                f"group {group_id!r} on a store (database) of its own"
            )
        row = {"id": 1, "group_id": earlier[0] if earlier else group_id, "claimed_at": now}
        conn.execute(t.insert_for(conn, t.store_group).on_conflict_do_nothing(), row)
        owner = conn.execute(select(sg.group_id).where(sg.id == 1)).scalar_one()
    if owner != group_id:
        raise GroupConflictError(
            f"the store already holds the windows of consumer group {owner!r}, and a second group would mix its "
            f"counts into them: run group {group_id!r} on a store (database) of its own, or keep group {owner!r}"
        )


def assign(conn: Connection, group_id: str, partitions: Iterable[Partition], now: datetime) -> dict[Partition, int]:
    """Raise the owner epoch of each partition (the caller holds the group's progress lock); returns the new ones."""
    po = t.partition_owners.c
    epochs: dict[Partition, int] = {}
    for topic, partition in sorted(set(partitions)):
        stmt = t.insert_for(conn, t.partition_owners)
        stmt = stmt.on_conflict_do_update(
            index_elements=["group_id", "topic", "partition"],
            set_={"epoch": po.epoch + 1, "owner": stmt.excluded.owner, "assigned_at": stmt.excluded.assigned_at},
        ).returning(po.epoch)
        row = {"group_id": group_id, "topic": topic, "partition": partition, "epoch": 1, "owner": MEMBER}
        epochs[(topic, partition)] = conn.execute(stmt, {**row, "assigned_at": now}).scalar_one()
    return epochs


def load(conn: Connection, group_id: str, partitions: Iterable[Partition]) -> dict[Partition, StoredPartition]:
    """Offsets, progress and epochs as stored (``StoredPartition()`` for a partition never committed)."""
    wanted = set(partitions)
    o, po = t.offsets.c, t.partition_owners.c
    rows = conn.execute(
        select(o.topic, o.partition, o.next_offset, o.event_ms, o.quiet_since_ms, o.progressed_at_ms).where(
            o.group_id == group_id
        )
    ).all()
    epochs = {
        (r.topic, r.partition): r.epoch
        for r in conn.execute(select(po.topic, po.partition, po.epoch).where(po.group_id == group_id))
    }
    stored = {
        (r.topic, r.partition): StoredPartition(
            r.next_offset,
            r.event_ms,
            r.progressed_at_ms if r.progressed_at_ms is not None else r.quiet_since_ms,
        )
        for r in rows
    }
    return {
        tp: StoredPartition(**{**stored.get(tp, StoredPartition()).__dict__, "epoch": epochs.get(tp)}) for tp in wanted
    }


def check_epochs(conn: Connection, group_id: str, epochs: Mapping[Partition, int]) -> None:
    """Raise ``FencedError`` when a partition was assigned again since we took it."""
    if not epochs:
        return
    po = t.partition_owners.c
    keys = [and_(po.topic == topic, po.partition == partition) for topic, partition in epochs]
    stored = {
        (r.topic, r.partition): (r.epoch, r.owner)
        for r in conn.execute(
            select(po.topic, po.partition, po.epoch, po.owner).where(po.group_id == group_id, or_(*keys))
        )
    }
    for (topic, partition), epoch in sorted(epochs.items()):
        now_epoch, owner = stored.get((topic, partition), (None, None))
        if now_epoch != epoch:
            raise FencedError(f"{topic}[{partition}] was assigned again (epoch {now_epoch}, to {owner}; ours {epoch})")


def write_offsets(
    conn: Connection,
    group_id: str,
    offsets: Mapping[Partition, int],
    expected: Mapping[Partition, int | None],
    progress: Mapping[Partition, PartitionProgress],
    now: datetime,
) -> None:
    """Fenced offsets with each partition's progress: an offset that moved under us raises ``FencedError``.

    ``quiet_since_ms`` is written only with an idle claim (as older releases read it); the quiet spell
    itself is kept in ``progressed_at_ms`` whether idle or not.
    """
    o = t.offsets.c
    for (topic, partition), next_offset in sorted(offsets.items()):
        was = expected.get((topic, partition))
        p = progress.get((topic, partition))
        if was == next_offset and p is None:
            continue
        values: dict[str, Any] = {"next_offset": next_offset, "updated_at": now}
        if p is not None:
            claimed = p.caught_up_ms is not None
            values.update(
                event_ms=p.event_ms,
                quiet_since_ms=p.quiet_since_ms if claimed else None,
                caught_up_ms=p.caught_up_ms,
                progressed_at_ms=p.quiet_since_ms,
            )
        if was is None:
            stmt = t.insert_for(conn, t.offsets).on_conflict_do_nothing().returning(o.partition)
            result = conn.execute(stmt, {"group_id": group_id, "topic": topic, "partition": partition, **values})
        else:
            where = (o.group_id == group_id, o.topic == topic, o.partition == partition, o.next_offset == was)
            result = conn.execute(update(t.offsets).where(*where).values(**values).returning(o.partition))
        if len(result.all()) != 1:  # rowcount is unreliable for INSERT … ON CONFLICT on some drivers
            raise FencedError(f"{topic}[{partition}] was committed by another consumer (expected next offset {was})")


def stored_progress(conn: Connection, group_id: str) -> dict[Partition, PartitionProgress]:
    """Every partition's progress as stored; an idle claim only where its owner wrote one with its evidence."""
    o = t.offsets.c
    rows = conn.execute(
        select(o.topic, o.partition, o.event_ms, o.quiet_since_ms, o.caught_up_ms, o.progressed_at_ms).where(
            o.group_id == group_id
        )
    )
    return {
        (r.topic, r.partition): PartitionProgress(
            r.event_ms,
            r.progressed_at_ms if r.progressed_at_ms is not None else r.quiet_since_ms,
            r.caught_up_ms if r.quiet_since_ms is not None else None,
        )
        for r in rows
    }


def register_partitions(conn: Connection, group_id: str, seen: Iterable[Partition]) -> dict[str, int]:
    """Record the partition count of each topic this daemon sees (a count only grows); returns every
    registered topic of the group with its count."""
    counts: dict[str, int] = {}
    for topic, partition in seen:
        counts[topic] = max(counts.get(topic, 0), partition + 1)
    ip = t.input_partitions.c
    for topic, count in sorted(counts.items()):
        stmt = t.insert_for(conn, t.input_partitions)
        grown = case((stmt.excluded.partitions > ip.partitions, stmt.excluded.partitions), else_=ip.partitions)
        conn.execute(
            stmt.on_conflict_do_update(index_elements=["group_id", "topic"], set_={"partitions": grown}),
            {"group_id": group_id, "topic": topic, "partitions": count},
        )
    rows = conn.execute(select(ip.topic, ip.partitions).where(ip.group_id == group_id))
    return {r.topic: r.partitions for r in rows}


def retire_topic(conn: Connection, group_id: str, topic: str, now: datetime, quiet_s: float = RETIRE_QUIET_S) -> int:
    """Stop waiting for ``topic``: forget its partition count and offsets. Returns the offsets forgotten.

    Refused (``RetireError``) while a daemon may still read it — an offset committed within ``quiet_s``:
    that daemon would find its offsets gone and read the topic again from the start."""
    o, ip = t.offsets.c, t.input_partitions.c
    last = conn.execute(select(func.max(o.updated_at)).where(o.group_id == group_id, o.topic == topic)).scalar()
    if last is not None and (now - t.as_utc(last)).total_seconds() < quiet_s:
        raise RetireError(
            f"{topic} was committed by group {group_id!r} {(now - t.as_utc(last)).total_seconds():.0f} s ago: a "
            f"daemon still reads it; take it out of every daemon's FINSENT_INPUT_TOPICS, stop or restart them, and "
            f"retire it once nothing has committed it for {quiet_s:.0f} s"
        )
    forgotten = len(
        conn.execute(delete(t.offsets).where(o.group_id == group_id, o.topic == topic).returning(o.partition)).all()
    )
    conn.execute(delete(t.input_partitions).where(ip.group_id == group_id, ip.topic == topic))
    return forgotten
