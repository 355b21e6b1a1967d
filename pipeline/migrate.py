"""How a store made by an older release becomes one of this release: missing tables, columns and indexes are added,
text search is set up on SQLite, and the rollups are filled from what the store already holds.
``Store.create_schema()`` runs it at every daemon start; each step does nothing when there is nothing to do.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import Column, Engine, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateIndex

from pipeline import rollups
from pipeline import tables as t

log = logging.getLogger(__name__)

# Columns added after the first release: ``upgrade`` adds them to a store created before.
ADDED_COLUMNS: dict[str, tuple[str, ...]] = {
    "windows": ("n_late", "n_late_negative", "sum_confidence", "sum_index"),
    "offsets": ("event_ms", "quiet_since_ms", "caught_up_ms", "progressed_at_ms"),
    "alerts": ("incident_id",),
}


def upgrade(engine: Engine) -> list[str]:
    """Create missing tables, add missing columns and indexes, set up text search on SQLite, and fill the rollups from
    what the store holds when they are empty and it is not; returns what was added (``table.column``, ``index name``,
    ``messages_fts``, ``window_rollups``, ``ticker_days``)."""
    t.metadata.create_all(engine)
    added: list[str] = []
    inspector = inspect(engine)
    with engine.begin() as conn:
        for table_name, names in ADDED_COLUMNS.items():
            have = {c["name"] for c in inspector.get_columns(table_name)}
            for name in names:
                if name in have:
                    continue
                column = t.metadata.tables[table_name].c[name]
                ddl_type = column.type.compile(dialect=engine.dialect)
                default = f" DEFAULT {column.server_default.arg}" if column.server_default is not None else ""  # type: ignore[attr-defined]
                null = "" if column.nullable else " NOT NULL"
                conn.execute(text(f'ALTER TABLE {table_name} ADD COLUMN "{name}" {ddl_type}{default}{null}'))
                added.append(f"{table_name}.{name}")
        added += _add_indexes(conn)
        if engine.dialect.name == "sqlite":
            added += _sqlite_search(conn)
        added += _fill_rollups(conn)
    return added


def _add_indexes(conn: Connection) -> list[str]:
    """Indexes a store made by an older release lacks (``create_all`` adds indexes only with a new table)."""
    added = []
    inspector = inspect(conn)
    for table in t.metadata.sorted_tables:
        have = {ix["name"] for ix in inspector.get_indexes(table.name)}
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        for index in sorted(table.indexes, key=lambda ix: str(ix.name)):
            if index.name in have or (index.name in t.POSTGRESQL_ONLY and conn.dialect.name != "postgresql"):
                continue
            if not {c.name for c in index.columns if isinstance(c, Column)} <= columns:
                continue  # a table of some other shape: leave it be
            conn.execute(CreateIndex(index, if_not_exists=True))
            added.append(str(index.name))
    return added


def _sqlite_search(conn: Connection) -> list[str]:
    """The FTS5 table and its triggers; messages stored before it existed are indexed once."""
    exists = conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = :n"), {"n": t.MESSAGES_FTS}).first()
    for statement in t.SQLITE_SEARCH_DDL:
        conn.execute(text(statement))
    if exists or conn.execute(text("SELECT 1 FROM messages LIMIT 1")).first() is None:
        return []
    conn.execute(text("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')"))
    return [t.MESSAGES_FTS]


def _fill_rollups(conn: Connection) -> list[str]:
    """Rollups that are empty while what they sum is not (a store made before them, or an upgrade that stopped
    half-way: the tables may exist before their backfill commits) are filled from the windows and messages."""
    inspector, filled = inspect(conn), []
    rollups.lock_commits(conn)  # no checkpoint commits between the check and the fill (first: a checkpoint holding
    if conn.dialect.name == "postgresql":  # its progress row may wait for the rollups); two daemons starting at once:
        conn.execute(text("LOCK TABLE window_rollups, ticker_days IN SHARE ROW EXCLUSIVE MODE"))  # one fills them
    sources = {"window_rollups": ("windows",), "ticker_days": ("message_tickers", "messages")}
    for rollup, tables in sources.items():
        if any(
            {c.name for c in t.metadata.tables[name].c} - {c["name"] for c in inspector.get_columns(name)}
            for name in tables
        ):
            continue  # a table of some other shape: leave it be
        source = t.metadata.tables[tables[0]].select()
        source = source.where(t.windows.c.closed.is_(True)) if rollup == "window_rollups" else source
        empty = conn.execute(t.metadata.tables[rollup].select().limit(1)).first() is None
        if empty and conn.execute(source.limit(1)).first() is not None:
            started = time.perf_counter()
            rollups.backfill(conn, [rollup])
            log.info("%s filled from the store in %.1f s", rollup, time.perf_counter() - started)
            filled.append(rollup)
    return filled
