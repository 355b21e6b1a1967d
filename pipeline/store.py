"""The store: window totals, offsets, alerts, recent messages, feedback.

SQLite by default (WAL, so readers never block the writer), PostgreSQL by URL, one
code path (SQLAlchemy Core). ``commit_checkpoint`` is the exactly-once step: window
deltas, closed windows with their alerts, messages, story hashes and the next
offsets of the partitions they came from are written in ONE transaction, and the
offsets are fenced — a daemon whose partitions were taken over by another cannot
commit stale work.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, create_engine, event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError, OperationalError

from pipeline import tables as t
from pipeline.spikes import SpikeRule, Verdict, alert_id, judge
from pipeline.windows import Counts, WindowKey

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]


class StoreError(RuntimeError):
    """The store URL is unusable (bad scheme, missing driver)."""


class FencedError(RuntimeError):
    """Another daemon committed offsets for one of our partitions: our pending work is stale."""


@dataclass
class AlertRecord:
    id: str
    dimension: str
    key: str
    window_start: datetime
    window_end: datetime
    negative_ratio: float
    baseline: float
    threshold: float
    score: float
    n: int
    n_negative: int
    severity: str
    example_ids: list[str]
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for name in ("window_start", "window_end", "created_at"):
            out[name] = t.as_utc(out[name]).isoformat().replace("+00:00", "Z")
        return out


@dataclass
class ClosedWindow:
    dimension: str
    key: str
    window_start: datetime
    n: int
    negative_ratio: float
    verdict: Verdict | None = None


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
    close_starts: list[int] = field(default_factory=list)


@dataclass
class CommitResult:
    alerts: list[AlertRecord]
    closed: list[ClosedWindow]


def _insert(conn: Connection, table: Any) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def create_store_engine(url: str) -> Engine:
    """An engine for a SQLite or PostgreSQL URL; SQLite gets WAL and a busy timeout."""
    for plain in ("postgresql://", "postgres://"):  # psycopg 3 is the driver we ship
        if url.startswith(plain):
            url = "postgresql+psycopg://" + url[len(plain) :]
    try:
        engine = create_engine(url, pool_pre_ping=True, future=True)
    except (ArgumentError, ImportError) as exc:
        raise StoreError(f"store URL is not usable ({exc}); use sqlite:///PATH or postgresql://USER@HOST/DB") from exc
    if engine.dialect.name not in ("sqlite", "postgresql"):
        raise StoreError(f"store must be SQLite or PostgreSQL (got: {engine.dialect.name})")
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

    return engine


class Store:
    """Typed operations on the store; each public method is one transaction."""

    def __init__(
        self, url: str, *, window_size_ms: int = 60_000, rule: SpikeRule | None = None, history_windows: int = 60
    ) -> None:
        self.url = url
        self.engine = create_store_engine(url)
        self.window_size_ms = window_size_ms
        self.rule = rule or SpikeRule()
        self.history_windows = history_windows

    def create_schema(self) -> None:
        t.metadata.create_all(self.engine)

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
        wanted = set(partitions)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.offsets.c.topic, t.offsets.c.partition, t.offsets.c.next_offset).where(
                    t.offsets.c.group_id == group_id
                )
            ).all()
        stored = {(r.topic, r.partition): r.next_offset for r in rows}
        return {tp: stored.get(tp) for tp in wanted}

    def window_starts(self, *, closed: bool, since_ms: int | None = None) -> set[int]:
        query = select(t.windows.c.window_start).where(t.windows.c.dimension == "all", t.windows.c.closed == closed)
        if since_ms is not None:
            query = query.where(t.windows.c.window_start >= t.from_ms(since_ms))
        with self.engine.connect() as conn:
            return {t.to_ms(r.window_start) for r in conn.execute(query)}

    def story_hashes(self) -> dict[str, int]:
        """Stories remembered for repeat detection (pruned by event time in housekeeping)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.stories))
            return {r.story_hash: t.to_ms(r.first_seen) for r in rows}

    # ---- the exactly-once commit -----------------------------------------------------
    def commit_checkpoint(self, cp: Checkpoint, now: datetime | None = None) -> CommitResult:
        """Fence offsets, add deltas, store messages and stories, close windows, raise alerts: one transaction."""
        now = now or datetime.now(UTC)
        with self.engine.begin() as conn:
            self._write_offsets(conn, cp, now)
            self._add_deltas(conn, self._claim_stories(conn, cp))
            if cp.messages:
                conn.execute(_insert(conn, t.messages).on_conflict_do_nothing(), cp.messages)
            alerts: list[AlertRecord] = []
            closed: list[ClosedWindow] = []
            for start in sorted(cp.close_starts):
                new_alerts, new_closed = self._close_window(conn, start, now)
                alerts.extend(new_alerts)
                closed.extend(new_closed)
        return CommitResult(alerts, closed)

    def _write_offsets(self, conn: Connection, cp: Checkpoint, now: datetime) -> None:
        for (topic, partition), next_offset in sorted(cp.offsets.items()):
            expected = cp.expected.get((topic, partition))
            if expected == next_offset:
                continue
            if expected is None:
                result = conn.execute(
                    _insert(conn, t.offsets).on_conflict_do_nothing().returning(t.offsets.c.partition),
                    {
                        "group_id": cp.group_id,
                        "topic": topic,
                        "partition": partition,
                        "next_offset": next_offset,
                        "updated_at": now,
                    },
                )
            else:
                result = conn.execute(
                    update(t.offsets)
                    .where(
                        t.offsets.c.group_id == cp.group_id,
                        t.offsets.c.topic == topic,
                        t.offsets.c.partition == partition,
                        t.offsets.c.next_offset == expected,
                    )
                    .values(next_offset=next_offset, updated_at=now)
                    .returning(t.offsets.c.partition)
                )
            if len(result.all()) != 1:  # rowcount is unreliable for INSERT … ON CONFLICT on some drivers
                raise FencedError(
                    f"{topic}[{partition}] was committed by another consumer (expected next offset {expected})"
                )

    def _claim_stories(self, conn: Connection, cp: Checkpoint) -> dict[WindowKey, Counts]:
        """Record new stories; one another daemon recorded first is a repeat after all: un-count it as unique."""
        if not cp.stories:
            return cp.deltas
        rows = [{"story_hash": h, "first_seen": t.from_ms(ms)} for h, ms in cp.stories.items()]
        claimed = {
            r.story_hash
            for r in conn.execute(
                _insert(conn, t.stories).on_conflict_do_nothing().returning(t.stories.c.story_hash), rows
            )
        }
        lost = [h for h in cp.stories if h not in claimed]
        if not lost:
            return cp.deltas
        deltas = {k: Counts(**c.__dict__) for k, c in cp.deltas.items()}  # the caller's copy stays intact
        for story in lost:
            for key in cp.story_windows.get(story, ()):
                if key in deltas:
                    deltas[key].n_unique -= 1
        return deltas

    def _add_deltas(self, conn: Connection, deltas: dict[WindowKey, Counts]) -> None:
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
                    "n": c.n,
                    "n_unique": c.n_unique,
                    "n_negative": c.n_negative,
                    "n_neutral": c.n_neutral,
                    "n_positive": c.n_positive,
                    "sum_p_negative": c.sum_p_negative,
                    "closed": False,
                }
            )
        stmt = _insert(conn, t.windows)
        stmt = stmt.on_conflict_do_update(
            index_elements=["dimension", "key", "window_start"],
            set_={
                name: getattr(t.windows.c, name) + getattr(stmt.excluded, name)
                for name in ("n", "n_unique", "n_negative", "n_neutral", "n_positive", "sum_p_negative")
            },
        )
        conn.execute(stmt, rows)

    def _close_window(
        self, conn: Connection, start_ms: int, now: datetime
    ) -> tuple[list[AlertRecord], list[ClosedWindow]]:
        start = t.from_ms(start_ms)
        w = t.windows.c
        rows = conn.execute(select(t.windows).where(w.window_start == start, w.closed.is_(False))).all()
        if not rows:
            return [], []
        history_from = start - timedelta(milliseconds=self.window_size_ms * self.history_windows)
        history: dict[tuple[str, str], list[float]] = defaultdict(list)
        for h in conn.execute(
            select(w.dimension, w.key, w.n, w.n_negative)
            .where(
                w.closed.is_(True), w.window_start >= history_from, w.window_start < start, w.n >= self.rule.min_count
            )
            .order_by(w.window_start)
        ):
            history[(h.dimension, h.key)].append(h.n_negative / h.n)
        cooldown_from = start - timedelta(seconds=self.rule.cooldown_s)
        a = t.alerts.c
        cooling = {
            (r.dimension, r.key)
            for r in conn.execute(
                select(a.dimension, a.key).where(a.window_start >= cooldown_from, a.window_start < start)
            )
        }
        alerts: list[AlertRecord] = []
        closed: list[ClosedWindow] = []
        for row in rows:
            verdict = judge(
                row.n,
                row.n_negative,
                history[(row.dimension, row.key)],
                self.rule,
                in_cooldown=(row.dimension, row.key) in cooling,
            )
            closed.append(ClosedWindow(row.dimension, row.key, start, row.n, verdict.ratio, verdict))
            conn.execute(
                update(t.windows)
                .where(w.dimension == row.dimension, w.key == row.key, w.window_start == start)
                .values(closed=True, baseline=verdict.baseline.mean, threshold=verdict.baseline.threshold)
            )
            if verdict.is_spike and verdict.severity is not None:
                record = AlertRecord(
                    id=alert_id(row.dimension, row.key, start_ms),
                    dimension=row.dimension,
                    key=row.key,
                    window_start=start,
                    window_end=t.as_utc(row.window_end),
                    negative_ratio=verdict.ratio,
                    baseline=verdict.baseline.mean,
                    threshold=verdict.baseline.threshold,
                    score=verdict.score,
                    n=row.n,
                    n_negative=row.n_negative,
                    severity=verdict.severity,
                    example_ids=self._examples(conn, row.dimension, row.key, start, t.as_utc(row.window_end)),
                    created_at=now,
                )
                inserted = conn.execute(
                    _insert(conn, t.alerts).on_conflict_do_nothing().returning(t.alerts.c.id),
                    {**record.__dict__, "published": False},
                )
                if inserted.all():
                    alerts.append(record)
        return alerts, closed

    def _examples(
        self, conn: Connection, dimension: str, key: str, start: datetime, end: datetime, limit: int = 5
    ) -> list[str]:
        m = t.messages.c
        query = select(m.id).where(m.event_time >= start, m.event_time < end)
        if dimension == "topic":
            query = query.where(m.topic_label == key)
        elif dimension == "ticker":
            query = query.where(m.tickers.like(f"%,{key},%"))
        elif dimension == "source":
            query = query.where(m.source == key)
        return [r.id for r in conn.execute(query.order_by(m.p_negative.desc(), m.id).limit(limit))]

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
    def prune(self, messages_before: datetime, stories_before: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(t.messages.delete().where(t.messages.c.scored_at < messages_before))
            conn.execute(t.stories.delete().where(t.stories.c.first_seen < stories_before))

    # ---- reads for tests, the demo summary and the dashboard --------------------------------
    def window_totals(self, dimension: str = "all") -> dict[tuple[str, int], dict[str, float]]:
        w = t.windows.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.windows).where(w.dimension == dimension)).all()
        return {
            (r.key, t.to_ms(r.window_start)): {
                "n": r.n,
                "n_unique": r.n_unique,
                "n_negative": r.n_negative,
                "n_neutral": r.n_neutral,
                "n_positive": r.n_positive,
            }
            for r in rows
        }

    def count(self, table: str, *conditions: Any) -> int:
        tbl = t.metadata.tables[table]
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(tbl).where(and_(True, *conditions))).scalar_one())
