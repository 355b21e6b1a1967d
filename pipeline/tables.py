"""The store's tables (SQLAlchemy Core): one schema for SQLite and PostgreSQL.

Times are UTC. SQLite keeps them as naive ISO strings, PostgreSQL as timestamptz;
``as_utc`` reads either back as an aware datetime.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    cast,
    func,
    literal_column,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from pipeline.windows import COUNT_FIELDS

metadata = MetaData()
BASELINE_SUMS = ("base_n", "base_sum", "thr_sum")  # see window_rollups

windows = Table(
    "windows",
    metadata,
    Column("dimension", String(16), nullable=False),
    Column("key", String(128), nullable=False),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("n", Integer, nullable=False, default=0),
    Column("n_unique", Integer, nullable=False, default=0),
    Column("n_negative", Integer, nullable=False, default=0),
    Column("n_neutral", Integer, nullable=False, default=0),
    Column("n_positive", Integer, nullable=False, default=0),
    Column("sum_p_negative", Float, nullable=False, default=0.0),
    # sentiment index = sum_index / sum_confidence (``pipeline.windows.Counts``)
    Column("sum_confidence", Float, nullable=False, default=0.0, server_default="0"),
    Column("sum_index", Float, nullable=False, default=0.0, server_default="0"),
    Column("n_late", Integer, nullable=False, default=0, server_default="0"),
    Column("n_late_negative", Integer, nullable=False, default=0, server_default="0"),
    Column("closed", Boolean, nullable=False, default=False),
    Column("baseline", Float, nullable=True),
    Column("threshold", Float, nullable=True),
    UniqueConstraint("dimension", "key", "window_start", name="uq_windows_dim_key_start"),
)
Index("ix_windows_start", windows.c.window_start)
Index("ix_windows_closed_dim", windows.c.closed, windows.c.dimension, windows.c.window_start)
# the dashboard's reads of one dimension over a time range (heatmap, top movers): without it, a range of
# ticker windows reads every ticker window ever kept (the unique key leads with the key, not the time)
Index("ix_windows_dim_start", windows.c.dimension, windows.c.window_start)

alerts = Table(
    "alerts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("dimension", String(16), nullable=False),
    Column("key", String(128), nullable=False),
    Column("negative_ratio", Float, nullable=False),
    Column("baseline", Float, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("score", Float, nullable=False),
    Column("n", Integer, nullable=False),
    Column("n_negative", Integer, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("example_ids", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("published", Boolean, nullable=False, default=False),
    Column("incident_id", String(64), nullable=True),
)
Index("ix_alerts_key", alerts.c.dimension, alerts.c.key, alerts.c.window_start)
Index("ix_alerts_incident", alerts.c.incident_id)

# Alerts that tell one story (``pipeline.incidents``); ``id`` is a hash of the root alert's id.
incidents = Table(
    "incidents",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("root_dimension", String(16), nullable=False),
    Column("root_key", String(128), nullable=False),
    Column("root_alert_id", String(64), nullable=False),
    Column("n_alerts", Integer, nullable=False),
    Column("status", String(16), nullable=False, default="open"),  # open / acknowledged / resolved
    Column("acknowledged_by", String(128), nullable=True),
    Column("note", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_incidents_status_start", incidents.c.status, incidents.c.window_start)
Index("ix_incidents_root", incidents.c.root_dimension, incidents.c.root_key, incidents.c.status)

offsets = Table(
    "offsets",
    metadata,
    Column("group_id", String(255), primary_key=True),
    Column("topic", String(255), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # the partition's event-time progress: newest event time read before next_offset (ms, capped at the wall clock)
    Column("event_ms", BigInteger, nullable=True),
    # while the owner claims the partition idle (caught up with its log end and quiet): quiet since (wall, ms)
    Column("quiet_since_ms", BigInteger, nullable=True),
    # ... and when a fetch response showed it caught up: the claim is trusted while that is recent
    Column("caught_up_ms", BigInteger, nullable=True),
    # when its progress last moved on (wall, ms), idle or not: a new owner continues the quiet spell from there
    Column("progressed_at_ms", BigInteger, nullable=True),
)

# Each input partition's owner epoch, raised on every assignment; checkpoints are fenced on it (``pipeline.ownership``).
partition_owners = Table(
    "partition_owners",
    metadata,
    Column("group_id", String(255), primary_key=True),
    Column("topic", String(255), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("epoch", BigInteger, nullable=False),
    Column("owner", String(255), nullable=False),  # host:pid of the member that took it last
    Column("assigned_at", DateTime(timezone=True), nullable=False),
)

# Partitions per input topic: the largest count any daemon of the group saw (only grows); windows wait for them all.
input_partitions = Table(
    "input_partitions",
    metadata,
    Column("group_id", String(255), primary_key=True),
    Column("topic", String(255), primary_key=True),
    Column("partitions", Integer, nullable=False),
)

# The one consumer group whose windows, stories and alerts the store holds (one row, id 1).
store_group = Table(
    "store_group",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("group_id", String(255), nullable=False),
    Column("claimed_at", DateTime(timezone=True), nullable=False),
)

# One row per consumer group: the global watermark every checkpoint of the group has reached.
# Every checkpoint locks this row first, so a group's checkpoints are serialised and a window
# is never closed while another daemon is adding on-time counts to it.
progress = Table(
    "progress",
    metadata,
    Column("group_id", String(255), primary_key=True),
    Column("watermark_ms", BigInteger, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("event_time", DateTime(timezone=True), nullable=False),
    Column("scored_at", DateTime(timezone=True), nullable=False),
    Column("text", Text, nullable=False),
    Column("source", String(64)),
    Column("kind", String(16), nullable=False),
    Column("tickers", String(512), nullable=False, default=""),  # ",AAPL,TSLA," for LIKE look-ups
    Column("topic_label", String(64), nullable=False),
    Column("p_topic", Float, nullable=False),
    Column("sentiment", String(16), nullable=False),
    Column("p_negative", Float, nullable=False),
    Column("p_neutral", Float, nullable=False),
    Column("p_positive", Float, nullable=False),
    Column("is_repeat", Boolean, nullable=False, default=False),
    Column("model_version", String(64), nullable=False),
    Column("input_topic", String(255), nullable=False),
    Column("input_partition", Integer, nullable=False),
    Column("input_offset", BigInteger, nullable=False),
)
Index("ix_messages_event_time", messages.c.event_time)

# Full-text search over message text (the dashboard's Explore page). PostgreSQL: a GIN index on the
# English tsvector of the text, an expression index, so nothing on the write path changes; a query must
# use ``text_search_vector()`` to be served by it. SQLite: an FTS5 table over messages, kept in step by
# triggers (``SQLITE_SEARCH_DDL``), so every insert, retention delete and correction of a message's text
# reaches it without the daemon knowing.
SEARCH_CONFIG = "english"
POSTGRESQL_ONLY = {"ix_messages_text_search"}


def text_search_vector() -> ColumnElement[Any]:
    """``to_tsvector('english', messages.text)``, exactly as the GIN index is built on it."""
    return func.to_tsvector(literal_column(f"'{SEARCH_CONFIG}'::regconfig"), messages.c.text)


Index("ix_messages_text_search", text_search_vector(), postgresql_using="gin", _table=messages).ddl_if(
    dialect="postgresql"
)

MESSAGES_FTS = "messages_fts"  # SQLite: rowid = messages.rowid; query with ``messages_fts MATCH :query``
SQLITE_SEARCH_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(text, content='messages', content_rowid='rowid', "
    "tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS messages_fts_insert AFTER INSERT ON messages BEGIN "
    "INSERT INTO messages_fts(rowid, text) VALUES (new.rowid, new.text); END",
    "CREATE TRIGGER IF NOT EXISTS messages_fts_delete AFTER DELETE ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text); END",
    "CREATE TRIGGER IF NOT EXISTS messages_fts_update AFTER UPDATE OF text ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text); "
    "INSERT INTO messages_fts(rowid, text) VALUES (new.rowid, new.text); END",
)

# One row per (message, ticker): the ticker's own sentiment when a message names several companies
# ("$AAPL beats, $MSFT misses"), the message's label otherwise. Written with the message; event_time
# is repeated here so that "the newest messages under one ticker" is one index range scan.
message_tickers = Table(
    "message_tickers",
    metadata,
    Column("message_id", String(128), primary_key=True),
    Column("ticker", String(16), primary_key=True),
    Column("event_time", DateTime(timezone=True), nullable=False),
    Column("sentiment", String(16), nullable=False),
    Column("method", String(16), nullable=False),  # "target": its own pass; "message": the message's label
)
Index("ix_message_tickers_ticker_time", message_tickers.c.ticker, message_tickers.c.event_time)
TICKER_ROWS = "_ticker_rows"  # key of a messages row holding its message_tickers rows until the store splits them


def split_ticker_rows(rows: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``messages`` rows without their per-ticker rows, and those ``message_tickers`` rows."""
    plain = [{k: v for k, v in r.items() if k != TICKER_ROWS} for r in rows]
    return plain, [t for r in rows for t in r.get(TICKER_ROWS, ())]


feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(128), nullable=False),
    Column("text", Text, nullable=False),
    Column("model_sentiment", String(16)),
    Column("model_topic", String(64)),
    Column("sentiment", String(16)),
    Column("topic", String(64)),
    Column("analyst", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# The tickers each analyst follows (the signed-in identity, or the name typed in the local demo): they lead
# the Overview and the ticker selector. The dashboard's own table, like feedback: its role inserts and deletes.
watchlists = Table(
    "watchlists",
    metadata,
    Column("analyst", String(128), primary_key=True),
    Column("ticker", String(16), primary_key=True),
    Column("added_at", DateTime(timezone=True), nullable=False),
)

stories = Table(
    "stories",
    metadata,
    Column("story_hash", String(40), primary_key=True),
    Column("first_seen", DateTime(timezone=True), nullable=False),
)

# Every model a daemon served or refused (``pipeline.model_history``): one row per daemon, version and
# outcome, rewritten when the same event recurs, so a retried write never duplicates a row.
model_versions = Table(
    "model_versions",
    metadata,
    Column("daemon", String(255), primary_key=True),  # host:pid of the daemon that loaded or refused it
    Column("version", String(128), primary_key=True),
    Column("outcome", String(16), primary_key=True),  # loaded / refused
    Column("loaded_at", DateTime(timezone=True), nullable=False),  # when it was loaded, or refused
    Column("reason", Text, nullable=True),  # the gate's sentence (why refused, or how it compared)
    Column("precision", String(16), nullable=True),
    Column("model_sha256", String(64), nullable=True),
    Column("metrics", JSON, nullable=False),  # the card's test-set figures per task
)
Index("ix_model_versions_loaded_at", model_versions.c.loaded_at)


# Pre-aggregated windows (``pipeline.rollups``), what long ranges read instead of a year of 1-minute windows: per
# grain (an hour, a UTC day) and key, the sums of the count columns of the key's CLOSED windows that start in
# [bucket_s, bucket_s + grain_s) (epoch seconds), and of their baselines what the heatmap needs (base_n: messages of
# the windows with a baseline, base_sum and thr_sum: baseline and threshold capped at 1 weighted by them; latest_s:
# the newest of those windows). A window's counts enter once, in the transaction that closes it; counts added to a
# window already closed (late ones) enter in the transaction that adds them; pruning windows takes them out.
ROLLUP_GRAINS_S = (86400, 3600)  # largest first
window_rollups = Table(
    "window_rollups",
    metadata,
    Column("grain_s", Integer, primary_key=True, autoincrement=False),
    Column("dimension", String(16), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("bucket_s", BigInteger, primary_key=True, autoincrement=False),
    *[Column(n, windows.c[n].type, nullable=False, server_default="0") for n in COUNT_FIELDS],
    *[Column(n, Integer if n == "base_n" else Float, nullable=False, server_default="0") for n in BASELINE_SUMS],
    Column("latest_s", BigInteger, nullable=True),
)
Index("ix_window_rollups_dim_bucket", window_rollups.c.grain_s, window_rollups.c.dimension, window_rollups.c.bucket_s)

# A ticker's sources and topics over a long range: per ticker, UTC day of the event time (epoch seconds), source
# ('(none)' for a message without one) and topic, its message_tickers rows joined to their messages, and how many of
# them carry a negative label for the ticker. Written with the rows; pruning messages takes them out.
ticker_days = Table(
    "ticker_days",
    metadata,
    Column("ticker", String(16), primary_key=True),
    Column("day_s", BigInteger, primary_key=True, autoincrement=False),
    Column("source", String(64), primary_key=True),
    Column("topic_label", String(64), primary_key=True),
    Column("messages", Integer, nullable=False),
    Column("negative", Integer, nullable=False),
)
NO_SOURCE = "(none)"


def insert_for(conn: Connection, table: Table) -> Any:
    """An INSERT with ``on_conflict_do_nothing`` / ``on_conflict_do_update`` in the connection's dialect."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def encode_tickers(tickers: Sequence[str]) -> str:
    """The ``messages.tickers`` column: ``",AAPL,NVDA,"`` so that one ticker is a LIKE pattern away."""
    return "," + ",".join(tickers) + "," if tickers else ""


def decode_tickers(column: str | None) -> list[str]:
    return [t for t in (column or "").split(",") if t]


def about(dimension: str, key: str) -> ColumnElement[bool]:
    """The messages a window of ``dimension``/``key`` counts (``all``: every message)."""
    m = messages.c
    if dimension == "topic":
        return m.topic_label == key
    if dimension == "ticker":
        return m.tickers.like(f"%,{key},%")
    if dimension == "source":
        return m.source == key
    return true()


def epoch_seconds(column: Any, dialect: str) -> Any:
    """Whole seconds since the epoch (rounded down) of a stored time, in SQL: UTC in either dialect."""
    if dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", column)), BigInteger)
    return cast(func.strftime("%s", column), Integer)


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime, whatever the database handed back."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def to_ms(value: datetime) -> int:
    return round(as_utc(value).timestamp() * 1000)
