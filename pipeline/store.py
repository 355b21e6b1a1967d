"""The store: window totals, offsets and partition progress, alerts, recent messages, feedback.

SQLite by default (WAL, so readers never block the writer), PostgreSQL by URL, one
code path (SQLAlchemy Core). ``commit_checkpoint`` is the exactly-once step: in ONE
transaction it locks the group's progress row (so a group's checkpoints never
interleave), checks the owner epochs and writes the fenced offsets with each partition's
event-time progress (``pipeline.ownership``), adds the window deltas (moving to the late
columns whatever the watermark already closed), stores messages and story hashes, computes
the global watermark from the stored progress of every input partition (``pipeline.progress``),
closes the windows it passed (one statement), raises their alerts and groups them into
incidents. A daemon whose partitions were taken over cannot commit stale work.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError, SQLAlchemyError, StatementError

from pipeline import migrate, ownership, rollups
from pipeline import tables as t
from pipeline.alerts import AlertRecord, ClosedWindow, SpikeDetector
from pipeline.closing import Closed, close_windows
from pipeline.engine import create_store_engine
from pipeline.incidents import Incident
from pipeline.ownership import FencedError, StoredPartition
from pipeline.progress import PartitionProgress, global_watermark, wanted_partitions
from pipeline.spikes import SpikeRule
from pipeline.windows import COUNT_FIELDS, Counts, Partition, WindowKey

log = logging.getLogger(__name__)

TopicPartition = Partition


class ClosingError(RuntimeError):
    """Closing windows failed for a reason that is neither the store's nor a record's (a bug, or a setting
    that cannot work): retrying the checkpoint cannot help."""


class RecordError(RuntimeError):
    """A statement failed because of the data it carried (not the connection): some record is unstorable."""


def is_record_error(exc: BaseException) -> bool:
    """True for errors about a row's data (retrying cannot help), false for the connection or the server."""
    if isinstance(exc, DataError | IntegrityError):
        return True
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
        return True  # the driver refused to bind a value (e.g. a NUL character for PostgreSQL)
    return isinstance(exc, ValueError | TypeError | OverflowError | UnicodeError)


@dataclass
class Checkpoint:
    """Everything one commit writes."""

    group_id: str
    offsets: dict[TopicPartition, int]  # next offset to read, per partition
    expected: dict[TopicPartition, int | None]  # what the store held when we last read or wrote it
    deltas: dict[WindowKey, Counts] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    stories: dict[str, int] = field(default_factory=dict)  # hash -> first seen (ms)
    story_windows: dict[str, list[WindowKey]] = field(default_factory=dict)  # where each counted as unique
    progress: dict[TopicPartition, PartitionProgress] = field(default_factory=dict)  # of partitions in offsets
    partitions: frozenset[TopicPartition] | None = None  # the input partitions we see; None: close nothing
    epochs: dict[TopicPartition, int] = field(default_factory=dict)  # owner epochs we hold: fenced on them


@dataclass
class CommitResult:
    alerts: list[AlertRecord]
    closed: list[ClosedWindow]
    watermark_ms: int | None = None  # the group's global watermark after this commit
    moved_late: int = 0  # on-time counts that reached the store after their window closed
    incidents: list[Incident] = field(default_factory=list)  # incidents this commit started


@dataclass
class RecordRows:
    """What one record adds to the store, for finding the record that a failed commit choked on."""

    message: dict[str, Any] | None
    deltas: dict[WindowKey, Counts]
    story: tuple[str, int] | None = None


class Store:
    """Typed operations on the store; each public method is one transaction."""

    def __init__(
        self,
        url: str,
        *,
        window_size_ms: int = 60_000,
        grace_ms: int = 30_000,
        claim_ttl_ms: int = 5_000,
        detector: SpikeDetector | None = None,
        incident_span_windows: int = 2,
    ) -> None:
        self.url = url
        self.engine = create_store_engine(url)
        self.window_size_ms = window_size_ms
        self.grace_ms = grace_ms
        self.claim_ttl_ms = claim_ttl_ms
        self.detector = detector or SpikeDetector(SpikeRule(), window_size_ms, history_windows=60)
        self.incident_span_windows = incident_span_windows

    def create_schema(self) -> None:
        """Create the tables, and add the columns a store made by an older release lacks."""
        added = migrate.upgrade(self.engine)
        if added:
            log.info("store upgraded: added %s", ", ".join(added))

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
            return True
        except OperationalError:
            return False

    def close(self) -> None:
        self.engine.dispose()

    # ---- start-up reads -------------------------------------------------------------
    def load_offsets(self, group_id: str, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int | None]:
        return {tp: p.next_offset for tp, p in self.load_partitions(group_id, partitions).items()}

    def load_partitions(
        self, group_id: str, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, StoredPartition]:
        """Offset, progress and owner epoch per partition, as stored (for a rewind: no epoch changes)."""
        with self.engine.connect() as conn:
            return ownership.load(conn, group_id, partitions)

    def assign_partitions(
        self, group_id: str, partitions: Iterable[TopicPartition], now: datetime | None = None
    ) -> dict[TopicPartition, StoredPartition]:
        """Take partitions over: raise their owner epochs (fencing their previous owner) and read them back."""
        now = now or datetime.now(UTC)
        wanted = list(partitions)
        with self.engine.begin() as conn:
            self._lock_progress(conn, group_id, now)
            ownership.assign(conn, group_id, wanted, now)
            return ownership.load(conn, group_id, wanted)

    def claim_group(self, group_id: str) -> None:
        """Refuse (``ownership.GroupConflictError``) to serve a second consumer group from the same tables."""
        with self.engine.begin() as conn:
            ownership.claim_group(conn, group_id, datetime.now(UTC))

    def retire_topic(self, group_id: str, topic: str) -> int:
        """Windows stop waiting for an input topic no daemon of the group reads any more (``RetireError`` while
        one may still read it)."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            self._lock_progress(conn, group_id, now)
            return ownership.retire_topic(conn, group_id, topic, now)

    def watermark(self, group_id: str) -> int | None:
        """The group's global watermark as last committed (every window it closed is closed)."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(t.progress.c.watermark_ms).where(t.progress.c.group_id == group_id)
            ).scalar_one_or_none()

    def story_hashes(self, limit: int | None = None) -> dict[str, int]:
        """Stories remembered for repeat detection, newest first up to ``limit``."""
        s = t.stories.c
        query = select(s.story_hash, s.first_seen).order_by(s.first_seen.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {r.story_hash: t.to_ms(r.first_seen) for r in reversed(rows)}

    # ---- the exactly-once commit -----------------------------------------------------
    def commit_checkpoint(self, cp: Checkpoint, now: datetime | None = None) -> CommitResult:
        """Lock, fence offsets, add deltas, store messages and stories, close windows, raise alerts and
        incidents: one transaction.

        Raises ``FencedError`` (stale work), ``RecordError`` (some record's data cannot be stored;
        nothing was written) or ``SQLAlchemyError`` (the store is unreachable or failing).
        """
        now = now or datetime.now(UTC)
        try:
            with self.engine.begin() as conn:
                mark = self._lock_progress(conn, cp.group_id, now)
                ownership.check_epochs(conn, cp.group_id, cp.epochs)
                ownership.write_offsets(conn, cp.group_id, cp.offsets, cp.expected, cp.progress, now)
                deltas, moved = self._move_late(self._claim_stories(conn, cp), mark)
                self._add_deltas(conn, deltas, mark)
                self._insert_messages(conn, cp.messages)
                mark, closed = self._close(conn, cp, mark, now)
        except (FencedError, OperationalError, ClosingError):
            raise
        except Exception as exc:
            if is_record_error(exc):
                raise RecordError(f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from exc
            raise
        return CommitResult(closed.alerts, closed.closed, mark, moved, closed.incidents)

    def _close(self, conn: Connection, cp: Checkpoint, mark: int | None, now: datetime) -> tuple[int | None, Closed]:
        """Move the group's watermark on from the stored progress of every input partition, close the windows
        it passed, judge them. Anything but a store error here is a ``ClosingError``: no record is to blame."""
        try:
            if cp.partitions is not None:
                stored = ownership.stored_progress(conn, cp.group_id)
                registered = ownership.register_partitions(conn, cp.group_id, cp.partitions)
                wanted = wanted_partitions(registered, stored, cp.partitions)
                reached = global_watermark(stored, wanted, t.to_ms(now), self.claim_ttl_ms)
                if reached is not None and (mark is None or reached > mark):
                    mark = reached
                    conn.execute(
                        update(t.progress).where(t.progress.c.group_id == cp.group_id).values(watermark_ms=mark)
                    )
            if mark is None:
                return mark, Closed()
            return mark, close_windows(
                conn,
                mark,
                now,
                window_size_ms=self.window_size_ms,
                grace_ms=self.grace_ms,
                detector=self.detector,
                incident_span_windows=self.incident_span_windows,
            )
        except SQLAlchemyError:
            raise
        except Exception as exc:
            raise ClosingError(f"closing windows failed: {type(exc).__name__}: {str(exc)[:300]}") from exc

    def _lock_progress(self, conn: Connection, group_id: str, now: datetime) -> int | None:
        """Lock the group's progress row (creating it the first time) and return its watermark."""
        p = t.progress.c
        lock = update(t.progress).where(p.group_id == group_id).values(updated_at=now).returning(p.watermark_ms)
        row = conn.execute(lock).first()
        if row is None:
            conn.execute(
                t.insert_for(conn, t.progress).on_conflict_do_nothing(),
                {"group_id": group_id, "watermark_ms": None, "updated_at": now},
            )
            row = conn.execute(lock).first()
        return None if row is None else row.watermark_ms

    def _claim_stories(self, conn: Connection, cp: Checkpoint) -> dict[WindowKey, Counts]:
        """Record new stories; one another daemon recorded first is a repeat after all: un-count it as unique."""
        if not cp.stories:
            return cp.deltas
        rows = [{"story_hash": h, "first_seen": t.from_ms(ms)} for h, ms in cp.stories.items()]
        claimed = {
            r.story_hash
            for r in conn.execute(
                t.insert_for(conn, t.stories).on_conflict_do_nothing().returning(t.stories.c.story_hash), rows
            )
        }
        lost = [h for h in cp.stories if h not in claimed]
        if not lost:
            return cp.deltas
        deltas = {k: Counts(**c.__dict__) for k, c in cp.deltas.items()}  # the caller's copy stays intact
        for story in lost:
            for key in cp.story_windows.get(story, ()):
                if key in deltas and deltas[key].n_unique > 0:
                    deltas[key].n_unique -= 1
        return deltas

    def _closed_by(self, start_ms: int, mark: int | None) -> bool:
        return mark is not None and start_ms + self.window_size_ms + self.grace_ms <= mark

    def _move_late(self, deltas: dict[WindowKey, Counts], mark: int | None) -> tuple[dict[WindowKey, Counts], int]:
        """Counts for windows the watermark already closed go to the late columns: the store decides lateness."""
        moved = 0
        out: dict[WindowKey, Counts] = {}
        for key, counts in deltas.items():
            if counts.n and self._closed_by(key[2], mark):
                if key[0] == "all":
                    moved += counts.n
                out[key] = counts.as_late()
            else:
                out[key] = counts
        return out, moved

    def _add_deltas(self, conn: Connection, deltas: dict[WindowKey, Counts], mark: int | None) -> None:
        if not deltas:
            return
        size = timedelta(milliseconds=self.window_size_ms)
        rows = []
        for (dimension, key, start_ms), c in sorted(deltas.items()):  # fixed order: no deadlocks between daemons
            start = t.from_ms(start_ms)
            rows.append(
                {
                    "dimension": dimension,
                    "key": key,
                    "window_start": start,
                    "window_end": start + size,
                    **{name: getattr(c, name) for name in COUNT_FIELDS},
                    "closed": self._closed_by(start_ms, mark),
                }
            )
        stmt = t.insert_for(conn, t.windows)
        w = t.windows.c
        stmt = stmt.on_conflict_do_update(
            index_elements=["dimension", "key", "window_start"],
            set_={name: getattr(t.windows.c, name) + getattr(stmt.excluded, name) for name in COUNT_FIELDS},
        ).returning(w.dimension, w.key, w.window_start, w.closed, w.baseline, w.threshold)
        added = {(r["dimension"], r["key"], t.to_ms(r["window_start"])): r for r in rows}
        rollups.add_windows(conn, rollups.as_window_sums(conn.execute(stmt, rows), added))  # closed ones: late counts

    def _insert_messages(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """The drill-down rows, and each message's per-ticker labels beside them."""
        messages, tickers = t.split_ticker_rows(rows)
        stored: dict[str, dict[str, Any]] = {}  # the messages this call inserted, by id (the first of a repeated id)
        if messages:
            stmt = t.insert_for(conn, t.messages).on_conflict_do_nothing().returning(t.messages.c.id)
            inserted_ids = set(conn.execute(stmt, messages).scalars())
            for m in messages:
                if m["id"] in inserted_ids:
                    stored.setdefault(m["id"], m)
        if tickers:  # each row it inserts counts in its ticker's day, with the source and topic of its stored message
            mt = t.message_tickers.c
            stmt = t.insert_for(conn, t.message_tickers).on_conflict_do_nothing().returning(mt.message_id, mt.ticker)
            inserted = {tuple(r) for r in conn.execute(stmt, tickers)}
            new = [r for r in tickers if (r["message_id"], r["ticker"]) in inserted]
            rollups.add_ticker_rows(conn, new, rollups.messages_of(conn, new, stored))

    # ---- finding the record a failed commit choked on ------------------------------------
    def unstorable(self, records: Sequence[RecordRows]) -> list[int]:
        """Indices of the records whose rows the store refuses; each is tried alone and rolled back."""
        bad: list[int] = []
        with self.engine.connect() as conn:
            for i, rec in enumerate(records):
                trans = conn.begin()
                try:
                    if rec.message is not None:
                        self._insert_messages(conn, [rec.message])
                    if rec.story is not None:
                        conn.execute(
                            t.insert_for(conn, t.stories).on_conflict_do_nothing(),
                            [{"story_hash": rec.story[0], "first_seen": t.from_ms(rec.story[1])}],
                        )
                    self._add_deltas(conn, rec.deltas, None)
                except OperationalError:
                    raise
                except Exception as exc:
                    if not is_record_error(exc):
                        raise
                    bad.append(i)
                finally:
                    trans.rollback()
        return bad

    # ---- alert outbox ------------------------------------------------------------------
    def unpublished_alerts(self) -> list[AlertRecord]:
        return self.all_alerts(t.alerts.c.published.is_(False))

    def all_alerts(self, *conditions: Any) -> list[AlertRecord]:
        """Alerts, oldest window first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.alerts).where(and_(True, *conditions)).order_by(t.alerts.c.window_start, t.alerts.c.id)
            ).all()
        fields = AlertRecord.__dataclass_fields__
        return [AlertRecord(**{k: v for k, v in r._mapping.items() if k in fields}) for r in rows]

    def mark_published(self, ids: Sequence[str]) -> None:
        if ids:
            with self.engine.begin() as conn:
                conn.execute(update(t.alerts).where(t.alerts.c.id.in_(list(ids))).values(published=True))

    # ---- housekeeping ------------------------------------------------------------------
    def prune(
        self, messages_before: datetime, stories_before: datetime, windows_before: datetime | None = None
    ) -> None:
        """Drop messages scored, stories first seen and closed windows started before the given times, and take
        them out of the rollups (checkpoints wait meanwhile: a rollup summed again must not miss one)."""
        with self.engine.begin() as conn:
            rollups.lock_commits(conn)
            newest_gone = rollups.newest_event(conn, messages_before)
            conn.execute(t.messages.delete().where(t.messages.c.scored_at < messages_before))
            conn.execute(t.message_tickers.delete().where(t.message_tickers.c.event_time < messages_before))
            rollups.prune_days(conn, messages_before, newest_gone)
            conn.execute(t.stories.delete().where(t.stories.c.first_seen < stories_before))
            if windows_before is not None:
                w = t.windows.c
                conn.execute(t.windows.delete().where(w.closed.is_(True), w.window_start < windows_before))
                rollups.prune_windows(conn, windows_before)
